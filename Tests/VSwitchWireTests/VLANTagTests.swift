import Testing
import VSwitchWire

@Suite struct VLANTagTests {
    @Test func parsesSingleTag() throws {
        try withBytes(Fixture.vlanTaggedIPv4Frame, misalignment: 1) { buffer in
            let frame = try #require(EthernetFrame(validating: buffer))
            let tag = try #require(frame.vlanTag)
            #expect(tag.tagControl == 0x6064)
            #expect(tag.priorityCodePoint == 3)
            #expect(!tag.dropEligible)
            #expect(tag.vlanID.rawValue == 100)
            #expect(tag.etherType == .ipv4)
            #expect(tag.description == "VLAN vid=100 pcp=3 dei=0 type=IPv4")
            let inner = try #require(IPv4Header(validating: tag.payload))
            #expect(inner.protocol == .icmp)
            #expect(VLANTagRepr.parse(tag) == VLANTagRepr(vlanID: VLANID(100)!, priorityCodePoint: 3, etherType: .ipv4))
        }
    }

    @Test func parsesQinQ() throws {
        try withBytes(Fixture.qinqIPv6Frame) { buffer in
            let frame = try #require(EthernetFrame(validating: buffer))
            #expect(frame.etherType == .qinq)
            let outer = try #require(frame.vlanTag)
            #expect(outer.vlanID == VLANID(10))
            #expect(outer.etherType == .vlan)
            let inner = try #require(VLANTag(validating: outer.payload))
            #expect(inner.vlanID == VLANID(200))
            #expect(inner.etherType == .ipv6)
            #expect(IPv6Header(validating: inner.payload) != nil)
        }
    }

    @Test(arguments: [
        (0xffff as UInt16, 7 as UInt8, true, 4095 as UInt16),
        (0x0000, 0, false, 0),
        (0x1000, 0, true, 0),
        (0xe001, 7, false, 1),
        (0xb0c8, 5, true, 200),
    ])
    func splitsTagControlBits(tci: UInt16, pcp: UInt8, dei: Bool, vid: UInt16) throws {
        try withBytes([UInt8(tci >> 8), UInt8(tci & 0xff), 0x08, 0x06]) { buffer in
            let tag = try #require(VLANTag(validating: buffer))
            #expect(tag.priorityCodePoint == pcp)
            #expect(tag.dropEligible == dei)
            #expect(tag.vlanID.rawValue == vid)
            #expect(tag.etherType == .arp)
            #expect(tag.payload.isEmpty)
        }
    }

    @Test func rejectsEveryTruncation() {
        let tag = Array(Fixture.vlanTaggedIPv4Frame[14...])
        withBytes(tag) { buffer in
            for length in 0...tag.count {
                let parsed = VLANTag(validating: UnsafeRawBufferPointer(rebasing: buffer[..<length]))
                #expect((parsed == nil) == (length < VLANTag.headerLength), "length \(length)")
            }
        }
    }

    @Test func emitsTheFixtureTag() {
        let repr = VLANTagRepr(vlanID: VLANID(100)!, priorityCodePoint: 3, etherType: .ipv4)
        let output = emitted(count: 5) { repr.emit(into: $0) }
        #expect(output.result == 4)
        #expect(output.bytes == [0x60, 0x64, 0x08, 0x00, 0xee])
    }

    @Test func buildsATaggedFrameLayerByLayer() throws {
        let ethernet = EthernetRepr(destination: MACAddress("02:00:00:00:00:02")!,
                                    source: MACAddress("02:00:00:00:00:01")!, etherType: .vlan)
        let tag = VLANTagRepr(vlanID: VLANID(100)!, priorityCodePoint: 3, etherType: .ipv4)
        let output = emitted(count: 18) { buffer in
            guard let header = ethernet.emit(into: buffer),
                  let tagLength = tag.emit(into: UnsafeMutableRawBufferPointer(rebasing: buffer[header...]))
            else { return nil }
            return header + tagLength
        }
        #expect(output.result == 18)
        #expect(output.bytes == Array(Fixture.vlanTaggedIPv4Frame[..<18]))
    }

    @Test func refusesWhatDoesNotFit() {
        let tooHigh = VLANTagRepr(vlanID: VLANID(1)!, priorityCodePoint: 8, etherType: .ipv4)
        let refused = emitted(count: 4) { tooHigh.emit(into: $0) }
        #expect(refused.result == nil && refused.bytes == [0xee, 0xee, 0xee, 0xee])
        let fine = VLANTagRepr(vlanID: VLANID(1)!, etherType: .ipv4)
        for count in 0..<4 {
            #expect(emitted(count: count) { fine.emit(into: $0) }.result == nil)
        }
    }

    @Test func reprRoundTrips() throws {
        for pcp in UInt8(0)...7 {
            for dei in [false, true] {
                for vid in [0, 1, 2, 100, 2047, 4094, 4095] {
                    let repr = VLANTagRepr(vlanID: VLANID(vid)!, priorityCodePoint: pcp, dropEligible: dei,
                                           etherType: EtherType(rawValue: UInt16(vid) &* 31))
                    let output = emitted(count: 4) { repr.emit(into: $0) }
                    try withBytes(output.bytes) { buffer in
                        let tag = try #require(VLANTag(validating: buffer))
                        #expect(VLANTagRepr.parse(tag) == repr)
                    }
                }
            }
        }
    }
}
