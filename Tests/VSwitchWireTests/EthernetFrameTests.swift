import Testing
import VSwitchWire

@Suite struct EthernetFrameTests {
    @Test(arguments: [0, 1, 3, 7])
    func parsesARPRequestFrame(misalignment: Int) throws {
        try withBytes(Fixture.arpRequestFrame, misalignment: misalignment) { buffer in
            let frame = try #require(EthernetFrame(validating: buffer))
            #expect(frame.destination == .broadcast)
            #expect(frame.source == MACAddress("52:54:00:12:34:56"))
            #expect(frame.etherType == .arp)
            #expect(frame.payload.count == 60 - 14)
            #expect(frame.payload.first == 0x00 && frame.payload[1] == 0x01)
            #expect(frame.vlanTag == nil)
            #expect(frame.description == "Ethernet src=52:54:00:12:34:56 dst=ff:ff:ff:ff:ff:ff type=ARP")
        }
    }

    @Test func parsesTaggedFrame() throws {
        try withBytes(Fixture.vlanTaggedIPv4Frame) { buffer in
            let frame = try #require(EthernetFrame(validating: buffer))
            #expect(frame.etherType == .vlan)
            let tag = try #require(frame.vlanTag)
            #expect(tag.vlanID == VLANID(100))
            #expect(tag.etherType == .ipv4)
            #expect(frame.payload.count == Fixture.vlanTaggedIPv4Frame.count - 14)
        }
    }

    @Test func acceptsExactlyTheHeader() throws {
        let header = Array(Fixture.arpRequestFrame[..<14])
        try withBytes(header) { buffer in
            let frame = try #require(EthernetFrame(validating: buffer))
            #expect(frame.payload.isEmpty)
        }
    }

    @Test func rejectsEveryTruncationOfAnUntaggedFrame() {
        let frame = Fixture.arpRequestFrame
        withBytes(frame) { buffer in
            for length in 0...frame.count {
                let prefix = UnsafeRawBufferPointer(rebasing: buffer[..<length])
                let parsed = EthernetFrame(validating: prefix)
                #expect((parsed == nil) == (length < EthernetFrame.headerLength), "length \(length)")
                if let parsed { #expect(parsed.payload.count == length - 14) }
            }
        }
    }

    @Test func rejectsEveryTruncationOfATaggedFrame() {
        for frame in [Fixture.vlanTaggedIPv4Frame, Fixture.qinqIPv6Frame] {
            withBytes(frame) { buffer in
                for length in 0...frame.count {
                    let prefix = UnsafeRawBufferPointer(rebasing: buffer[..<length])
                    let parsed = EthernetFrame(validating: prefix)
                    #expect((parsed == nil) == (length < EthernetFrame.taggedHeaderLength), "length \(length)")
                    if let parsed { #expect(parsed.vlanTag != nil) }
                }
            }
        }
    }

    @Test func rejectsTheEmptyBuffer() {
        #expect(EthernetFrame(validating: UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
    }

    @Test func reprParsesAndEmitsTheFixtureHeader() throws {
        let expected = EthernetRepr(destination: .broadcast, source: MACAddress("52:54:00:12:34:56")!, etherType: .arp)
        try withBytes(Fixture.arpRequestFrame) { buffer in
            let frame = try #require(EthernetFrame(validating: buffer))
            #expect(EthernetRepr.parse(frame) == expected)
        }
        let output = emitted(count: 16) { expected.emit(into: $0) }
        #expect(output.result == 14)
        #expect(Array(output.bytes[..<14]) == Array(Fixture.arpRequestFrame[..<14]))
        #expect(output.bytes[14...] == [0xee, 0xee], "emit wrote past the header")
    }

    @Test func reprRefusesABufferTooSmall() {
        let repr = EthernetRepr(destination: .broadcast, source: .zero, etherType: .ipv4)
        for count in 0..<14 {
            let output = emitted(count: count) { repr.emit(into: $0) }
            #expect(output.result == nil)
            #expect(output.bytes.allSatisfy { $0 == 0xee }, "emit wrote into a buffer it refused")
        }
    }

    @Test func reprRoundTrips() throws {
        var generator = SeededGenerator(seed: 2)
        for _ in 0..<500 {
            let repr = EthernetRepr(destination: MACAddress(rawValue: .random(in: 0...UInt64.max, using: &generator)),
                                    source: MACAddress(rawValue: .random(in: 0...UInt64.max, using: &generator)),
                                    etherType: EtherType(rawValue: .random(in: 0...UInt16.max, using: &generator)))
            // Room for a tag, in case the random EtherType is a TPID.
            let output = emitted(count: 18) { repr.emit(into: $0) }
            try withBytes(output.bytes) { buffer in
                let frame = try #require(EthernetFrame(validating: buffer))
                #expect(EthernetRepr.parse(frame) == repr)
            }
        }
    }
}
