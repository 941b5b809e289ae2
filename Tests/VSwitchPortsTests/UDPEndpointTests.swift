#if canImport(Glibc)
import Glibc
#endif
import Testing
import VSwitchPorts

@Suite struct UDPEndpointTests {
    @Test func numericAddressesWithAndWithoutPort() throws {
        #expect(try UDPEndpoint("198.18.0.1:4790").description == "198.18.0.1:4790")
        #expect(try UDPEndpoint("198.18.0.1").description == "198.18.0.1:4789", "the VXLAN port by default")
        #expect(try UDPEndpoint("[2001:2::1]:4789").description == "[2001:2::1]:4789")
        #expect(try UDPEndpoint("[2001:2::1]").isIPv6)
    }

    @Test func hostNamesAreResolvedWhenTheEndpointIsMade() throws {
        let e = try UDPEndpoint("localhost:4789", family: AF_INET)
        #expect(e.description == "127.0.0.1:4789")
        #expect(e.text == "localhost:4789")
    }

    @Test(arguments: ["", ":4789", "198.18.0.1:99999", "198.18.0.1:port", "[2001:2::1", "[2001:2::1]x", "no-such-host.invalid:4789"])
    func badEndpointsAreRefusedWithAMessage(_ text: String) {
        #expect(throws: PortError.self) { try UDPEndpoint(text) }
    }
}
