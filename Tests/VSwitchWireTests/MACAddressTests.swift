import Testing
@testable import VSwitchWire

@Suite struct MACAddressTests {
    @Test(arguments: [
        ("aa:bb:cc:dd:ee:ff", 0xaabb_ccdd_eeff as UInt64),
        ("AA:BB:CC:DD:EE:FF", 0xaabb_ccdd_eeff),
        ("aA-bB-Cc-dD-0e-F0", 0xaabb_ccdd_0ef0),
        ("00:00:00:00:00:00", 0),
        ("ff:ff:ff:ff:ff:ff", 0xffff_ffff_ffff),
        ("52:54:00:12:34:56", 0x5254_0012_3456),
    ])
    func parsesValidStrings(text: String, rawValue: UInt64) {
        #expect(MACAddress(text)?.rawValue == rawValue)
    }

    @Test(arguments: [
        "", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aa:bb-cc:dd:ee:ff", "aa-bb-cc-dd-ee:ff",
        "aa:bb:cc:dd:ee:fg", " aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff ", "aabb.ccdd.eeff", "aabbccddeeff",
        "a:bb:cc:dd:ee:fff", "aa::bb:cc:dd:ee:f", "aa.bb.cc.dd.ee.ff", "+a:bb:cc:dd:ee:ff", "éa:bb:cc:dd:ee:f",
        "aa:bb:cc:dd:ee:\u{0}f",
    ])
    func rejectsInvalidStrings(text: String) {
        #expect(MACAddress(text) == nil)
    }

    @Test func printsLowercaseColonForm() {
        #expect(MACAddress(0xaa, 0xbb, 0xcc, 0x0d, 0x0e, 0x0f).description == "aa:bb:cc:0d:0e:0f")
        #expect(MACAddress.zero.description == "00:00:00:00:00:00")
        #expect(MACAddress.broadcast.description == "ff:ff:ff:ff:ff:ff")
        #expect("\(MACAddress(rawValue: 0x0200_5e10_0001))" == "02:00:5e:10:00:01")
    }

    @Test func descriptionRoundTrips() {
        var generator = SeededGenerator(seed: 1)
        for _ in 0..<1_000 {
            let address = MACAddress(rawValue: UInt64.random(in: 0...UInt64.max, using: &generator))
            #expect(MACAddress(address.description) == address)
        }
    }

    @Test func octetsAndRawValueAgree() {
        let address = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
        #expect(address.rawValue == 0x5254_0012_3456)
        #expect(address.octets == [0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        #expect(MACAddress(octets: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]) == address)
        #expect(MACAddress(octets: [0x52, 0x54, 0x00, 0x12, 0x34]) == nil)
        #expect(MACAddress(octets: [UInt8](repeating: 0, count: 7)) == nil)
    }

    @Test func rawValueIgnoresHighBits() {
        // A (VLAN, MAC) key can be handed straight to init(rawValue:).
        let key: UInt64 = 100 << 48 | 0x0200_0000_0001
        #expect(MACAddress(rawValue: key) == MACAddress(0x02, 0, 0, 0, 0, 0x01))
        #expect(MACAddress(rawValue: .max) == .broadcast)
    }

    @Test func classifiesAddresses() {
        #expect(MACAddress.broadcast.isBroadcast && MACAddress.broadcast.isMulticast && !MACAddress.broadcast.isUnicast)
        let mdns = MACAddress("01:00:5e:00:00:fb")!
        #expect(mdns.isMulticast && !mdns.isBroadcast && !mdns.isUnicast && !mdns.isZero)
        let ipv6AllNodes = MACAddress("33:33:00:00:00:01")!
        #expect(ipv6AllNodes.isMulticast && ipv6AllNodes.isLocallyAdministered)
        let tap = MACAddress("02:00:00:00:00:01")!
        #expect(tap.isUnicast && tap.isLocallyAdministered && !tap.isMulticast)
        let vendor = MACAddress("52:54:00:12:34:56")!
        #expect(vendor.isUnicast && vendor.isLocallyAdministered)
        let global = MACAddress("00:1b:21:0a:0b:0c")!
        #expect(global.isUnicast && !global.isLocallyAdministered)
        #expect(MACAddress.zero.isZero && MACAddress.zero.isUnicast && !MACAddress.zero.isMulticast)
    }

    @Test func ordersLikeItsBytes() {
        let sorted = ["00:00:00:00:00:01", "00:00:00:00:01:00", "01:00:00:00:00:00", "ff:00:00:00:00:00"]
            .map { MACAddress($0)! }
        #expect(sorted.shuffled().sorted() == sorted)
    }
}
