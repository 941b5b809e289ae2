import Testing
import VSwitchWire

@Suite struct IPv4AddressTests {
    @Test(arguments: [
        ("0.0.0.0", 0 as UInt32), ("255.255.255.255", 0xffff_ffff), ("192.0.2.1", 0xc000_0201),
        ("10.0.0.255", 0x0a00_00ff), ("127.0.0.1", 0x7f00_0001), ("1.20.100.200", 0x0114_64c8),
    ])
    func parsesAndPrints(text: String, rawValue: UInt32) {
        #expect(IPv4Address(text)?.rawValue == rawValue)
        #expect(IPv4Address(rawValue: rawValue).description == text)
    }

    @Test(arguments: [
        "", ".", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.256", "01.2.3.4", "1.2.3.00", "1..2.3", "1.2.3.",
        ".1.2.3", "a.b.c.d", " 1.2.3.4", "1.2.3.4 ", "1.2.3.-4", "+1.2.3.4", "4294967295", "1.2.3.4/24",
        "1000.2.3.4", "99999999999999999999.1.1.1", "::ffff:1.2.3.4", "１.2.3.4",
    ])
    func rejectsInvalidStrings(text: String) {
        #expect(IPv4Address(text) == nil)
    }

    @Test func octetsAndClassification() {
        let address = IPv4Address(192, 0, 2, 1)
        #expect(address.octets == [192, 0, 2, 1])
        #expect(IPv4Address("224.0.0.251")!.isMulticast && !address.isMulticast)
        #expect(IPv4Address("127.1.2.3")!.isLoopback && !address.isLoopback)
        #expect(IPv4Address.any.isUnspecified && IPv4Address.broadcast.description == "255.255.255.255")
        #expect(IPv4Address("9.255.255.255")! < IPv4Address("10.0.0.0")!)
    }

    @Test func descriptionRoundTrips() {
        var generator = SeededGenerator(seed: 4)
        for _ in 0..<1_000 {
            let address = IPv4Address(rawValue: .random(in: 0...UInt32.max, using: &generator))
            #expect(IPv4Address(address.description) == address)
        }
    }
}
