import Testing
import VSwitchWire

@Suite struct IPv6AddressTests {
    /// Input text and its RFC 5952 canonical form.
    @Test(arguments: [
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:DB8::A", "2001:db8::a"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("fe80::1:2", "fe80::1:2"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),      // tie: the first run is compressed
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),                  // the longest run wins
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),   // a single zero group stays
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("0:0:1::", "0:0:1::"),
        ("ff02::fb", "ff02::fb"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("::ffff:c000:0201", "::ffff:192.0.2.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("::0.0.0.1", "::1"),
    ])
    func parsesAndPrintsCanonically(text: String, canonical: String) throws {
        let address = try #require(IPv6Address(text))
        #expect(address.description == canonical)
        #expect(IPv6Address(canonical) == address)
    }

    @Test(arguments: [
        "", ":", ":::", "1:::2", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::", "g::", ":1::",
        "1::2:", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4::5:6:7:8", "::1.2.3", "1.2.3.4::",
        "::1.2.3.4:5", "fe80::1%eth0", "[::1]", "::ffff:256.0.0.1", "1:2:3:4:5:6:7:1.2.3.4", "1.2.3.4",
        " ::1", "::1 ", "2001:db8::-1", "::01.2.3.4", "0000:0000:0000:0000:0000:0000:0000:0000:0",
        "2001:0db8:0000:0000:0000:0000:0000:00001",
    ])
    func rejectsInvalidStrings(text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test func layoutAndAccessors() {
        let address = IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)
        #expect(address.high == 0x2001_0db8_0000_0000 && address.low == 1)
        #expect(address.segments == [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])
        #expect(address.octets == [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1])
        #expect(IPv6Address(octets: address.octets) == address)
        #expect(IPv6Address(octets: [UInt8](repeating: 0, count: 15)) == nil)
        #expect(IPv6Address(ipv4Mapped: IPv4Address(192, 0, 2, 1)).description == "::ffff:192.0.2.1")
        #expect(IPv6Address("::ffff:192.0.2.1")?.ipv4Mapped == IPv4Address(192, 0, 2, 1))
        #expect(address.ipv4Mapped == nil)
    }

    @Test func classifies() {
        #expect(IPv6Address("ff02::1")!.isMulticast && !IPv6Address("fe80::1")!.isMulticast)
        #expect(IPv6Address("fe80::1")!.isLinkLocal && IPv6Address("febf::1")!.isLinkLocal)
        #expect(!IPv6Address("fec0::1")!.isLinkLocal && !IPv6Address("2001:db8::1")!.isLinkLocal)
        #expect(IPv6Address.unspecified.isUnspecified && IPv6Address.loopback.isLoopback)
        #expect(IPv6Address("::1")! < IPv6Address("1::")!)
    }

    @Test func descriptionRoundTrips() {
        var generator = SeededGenerator(seed: 5)
        for _ in 0..<2_000 {
            // Mostly-zero groups, so that compression is exercised.
            let groups = (0..<8).map { _ in Bool.random(using: &generator) ? 0 : UInt16.random(in: 0...UInt16.max, using: &generator) }
            let address = IPv6Address(groups[0], groups[1], groups[2], groups[3], groups[4], groups[5], groups[6], groups[7])
            let text = address.description
            #expect(IPv6Address(text) == address, "\(text)")
            #expect(!text.contains(":::") && text.ranges(of: "::").count <= 1, "\(text)")
        }
    }
}
