import Testing
import VSwitchWire

@Suite struct EtherTypeTests {
    @Test func knownValues() {
        #expect(EtherType.ipv4.rawValue == 0x0800)
        #expect(EtherType.arp.rawValue == 0x0806)
        #expect(EtherType.vlan.rawValue == 0x8100)
        #expect(EtherType.qinq.rawValue == 0x88a8)
        #expect(EtherType.ipv6.rawValue == 0x86dd)
    }

    @Test(arguments: [
        (EtherType.ipv4, "IPv4"), (.arp, "ARP"), (.vlan, "VLAN"), (.qinq, "QinQ"), (.ipv6, "IPv6"),
        (EtherType(rawValue: 0x88cc), "0x88cc"), (EtherType(rawValue: 0x0000), "0x0000"),
        (EtherType(rawValue: 0x0042), "0x0042"), (EtherType(rawValue: 0xffff), "0xffff"),
    ])
    func describes(type: EtherType, text: String) {
        #expect(type.description == text)
    }

    @Test func keepsUnknownValues() {
        let lldp = EtherType(rawValue: 0x88cc)
        #expect(lldp.rawValue == 0x88cc)
        #expect(lldp != .ipv4 && lldp == EtherType(rawValue: 0x88cc))
    }

    @Test func recognisesVLANTPIDs() {
        #expect(EtherType.vlan.isVLANTag && EtherType.qinq.isVLANTag)
        #expect(!EtherType.ipv4.isVLANTag && !EtherType(rawValue: 0x9100).isVLANTag)
    }
}
