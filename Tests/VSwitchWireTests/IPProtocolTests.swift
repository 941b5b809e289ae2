import Testing
import VSwitchWire

@Suite struct IPProtocolTests {
    @Test(arguments: [
        (IPProtocol.icmp, 1 as UInt8, "ICMP"), (.tcp, 6, "TCP"), (.udp, 17, "UDP"), (.icmpv6, 58, "ICMPv6"),
        (IPProtocol(rawValue: 47), 47, "0x2f"), (IPProtocol(rawValue: 0), 0, "0x00"), (IPProtocol(rawValue: 255), 255, "0xff"),
    ])
    func valuesAndDescriptions(proto: IPProtocol, rawValue: UInt8, text: String) {
        #expect(proto.rawValue == rawValue)
        #expect(proto.description == text)
        #expect(IPProtocol(rawValue: rawValue) == proto)
    }
}
