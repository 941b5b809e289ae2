import Testing
import VSwitchPorts
import VSwitchWire

@Suite struct PeerAddressTests {
    @Test func parsesBothFamilies() throws {
        let v4 = try #require(PeerAddress(cidr: "198.18.5.2/24"))
        #expect(v4.ipv4 == IPv4Address(198, 18, 5, 2) && v4.prefixLength == 24 && v4.isIPv4)
        #expect(v4.description == "198.18.5.2/24")
        let v6 = try #require(PeerAddress(cidr: "2001:2:0:5::2/64"))
        #expect(v6.key == IPv6Address("2001:2:0:5::2") && v6.prefixLength == 64 && !v6.isIPv4)
        #expect(v6.description == "2001:2:0:5::2/64")
        #expect(PeerAddress(cidr: "198.18.5.2")?.prefixLength == 32)
        #expect(PeerAddress(cidr: "2001:2::2")?.prefixLength == 128)
    }

    @Test(arguments: ["", "/24", "198.18.5.2/", "198.18.5.2/33", "198.18.5.2/-1", "198.18.5.2/+8", "2001:2::2/129",
                      "0.0.0.0/0", "127.0.0.1/8", "224.0.0.1/4", "255.255.255.255/32", "::/0", "::1/128", "ff02::1/16",
                      "::ffff:198.18.5.2/120", "198.18.5.2/24/1", "eth0", "198.18.5.2 /24"])
    func refusesWhatNoHostOwns(text: String) {
        #expect(PeerAddress(cidr: text) == nil)
    }

    @Test func prefixContainment() throws {
        let v4 = try #require(PeerAddress(cidr: "198.18.5.2/24"))
        #expect(v4.contains(IPv6Address(ipv4Mapped: IPv4Address(198, 18, 5, 200))))
        #expect(!v4.contains(IPv6Address(ipv4Mapped: IPv4Address(198, 18, 6, 1))))
        #expect(!v4.contains(IPv6Address("2001:2:0:5::1")!))
        let v6 = try #require(PeerAddress(cidr: "2001:2:0:5::2/64"))
        #expect(v6.contains(IPv6Address("2001:2:0:5:ffff::1")!))
        #expect(!v6.contains(IPv6Address("2001:2:0:6::1")!))
        #expect(!v6.contains(IPv6Address(ipv4Mapped: IPv4Address(198, 18, 5, 1))))
        let narrow = try #require(PeerAddress(cidr: "2001:2:0:5::2/127"))
        #expect(narrow.contains(IPv6Address("2001:2:0:5::3")!) && !narrow.contains(IPv6Address("2001:2:0:5::4")!))
        #expect(try #require(PeerAddress(cidr: "198.18.5.2/0")).contains(IPv6Address(ipv4Mapped: IPv4Address(1, 2, 3, 4))))
    }

    @Test func directedBroadcast() {
        #expect(PeerAddress(cidr: "198.18.5.2/24")?.directedBroadcast == IPv4Address(198, 18, 5, 255))
        #expect(PeerAddress(cidr: "198.18.5.2/30")?.directedBroadcast == IPv4Address(198, 18, 5, 3))
        #expect(PeerAddress(cidr: "198.18.5.2/31")?.directedBroadcast == nil)
        #expect(PeerAddress(cidr: "2001:2::2/64")?.directedBroadcast == nil)
    }
}
