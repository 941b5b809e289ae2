import Testing
import VSwitchWire

@Suite struct VirtioNetHeaderInferenceTests {
    /// `infer` over a copy of `bytes`; returns the header and the frame as `infer` left it.
    static func infer(_ bytes: [UInt8], mtu: Int = 1_500) -> (header: VirtioNetHeader?, frame: [UInt8]) {
        var frame = bytes
        let header = frame.withUnsafeMutableBytes { VirtioNetHeader.infer(frame: $0, mtu: mtu) }
        return (header, frame)
    }

    @Test(arguments: [(false, true, false), (false, true, true), (true, true, false), (true, true, true),
                      (false, false, false), (true, false, true)])
    func recognisesAChecksumPartialFrame(ipv6: Bool, tcp: Bool, vlan: Bool) {
        let partial = OffloadFrame(ipv6: ipv6, vlan: vlan, tcp: tcp, payload: OffloadFrame.payload(count: 600), checksum: .partial)
        let result = Self.infer(partial.bytes)
        #expect(result.header == VirtioNetHeader(flags: .needsChecksum, checksumStart: UInt16(partial.transportOffset),
                                                 checksumOffset: tcp ? 16 : 6))
        #expect(result.frame == partial.bytes, "a frame within the MTU is not written")
        // And what the header describes completes to the right checksum.
        var frame = result.frame
        var header = result.header!
        #expect(frame.withUnsafeMutableBytes { header.completeChecksum(in: $0) })
        #expect(frame == OffloadFrame(ipv6: ipv6, vlan: vlan, tcp: tcp, payload: OffloadFrame.payload(count: 600)).bytes)
    }

    @Test func findsTheTransportHeaderBehindIPv4Options() {
        let partial = OffloadFrame(payload: OffloadFrame.payload(count: 50), ipv4OptionBytes: 4, checksum: .partial)
        let header = Self.infer(partial.bytes).header
        #expect(header?.checksumStart == UInt16(14 + 24))
        #expect(header?.flags == .needsChecksum && header?.checksumOffset == 16)
    }

    @Test(arguments: [(false, true), (true, true), (false, false), (true, false)])
    func leavesCompleteFramesAlone(ipv6: Bool, tcp: Bool) {
        for count in [0, 1, 100, 1_400] {
            let complete = OffloadFrame(ipv6: ipv6, vlan: count == 1, tcp: tcp, payload: OffloadFrame.payload(count: count))
            let result = Self.infer(complete.bytes)
            #expect(result.header == nil && result.frame == complete.bytes)
        }
        // UDP over IPv4 without a checksum (0) is complete too.
        let unchecked = OffloadFrame(tcp: false, payload: OffloadFrame.payload(count: 100), checksum: .zero)
        #expect(Self.infer(unchecked.bytes).header == nil)
    }

    @Test func aCompleteChecksumEqualToThePartialSumSurvivesCompletion() throws {
        // Pick the first payload word so the complete checksum comes out equal to P.
        var frame = OffloadFrame(payload: OffloadFrame.payload(count: 64), checksum: .zero)
        frame.bytes[frame.headersEnd] = 0
        frame.bytes[frame.headersEnd + 1] = 0
        let partialSum = frame.partialSum
        let foldedWithoutWord = ~OffloadFrame.referenceTransportChecksum(frame.bytes, networkOffset: frame.networkOffset)
        let wanted = UInt32(~partialSum) + UInt32(~foldedWithoutWord)
        let word = UInt16(truncatingIfNeeded: (wanted & 0xffff) + (wanted >> 16))
        frame.bytes[frame.headersEnd] = UInt8(word >> 8)
        frame.bytes[frame.headersEnd + 1] = UInt8(word & 0xff)
        let checksum = OffloadFrame.referenceTransportChecksum(frame.bytes, networkOffset: frame.networkOffset)
        try #require(checksum == partialSum)
        frame.setChecksumField(checksum)
        #expect(OffloadFrame.transportChecksumHolds(frame.bytes, networkOffset: frame.networkOffset))

        var result = Self.infer(frame.bytes)
        var header = try #require(result.header, "indistinguishable from a partial frame")
        #expect(result.frame.withUnsafeMutableBytes { header.completeChecksum(in: $0) })
        #expect(result.frame == frame.bytes, "completing it again changes nothing")
    }

    @Test(arguments: [(false, false, OffloadFrame.Checksum.complete), (false, true, .partial),
                      (true, false, .partial), (true, true, .complete)])
    func describesATCPSuperframe(ipv6: Bool, vlan: Bool, checksum: OffloadFrame.Checksum) {
        let superframe = OffloadFrame(ipv6: ipv6, vlan: vlan, payload: OffloadFrame.payload(count: 20_000),
                                      tcpFlags: 0x18, checksum: checksum)
        let result = Self.infer(superframe.bytes)
        let networkHeaderLength = ipv6 ? 40 : 20
        let mss = 1_500 - networkHeaderLength - 32
        #expect(result.header == VirtioNetHeader(flags: .needsChecksum, gsoType: ipv6 ? .tcpv6 : .tcpv4,
                                                 segmentHeaderLength: UInt16(superframe.headersEnd), gsoSize: UInt16(mss),
                                                 checksumStart: UInt16(superframe.transportOffset), checksumOffset: 16))
        var expected = superframe
        expected.setChecksumField(superframe.partialSum)
        #expect(result.frame == expected.bytes, "only the checksum field is rewritten, to P")

        // What the segmenter makes of it fits the MTU and checks out.
        let output = segments(of: result.frame, header: result.header)
        #expect(output.result == .success((20_000 + mss - 1) / mss))
        #expect(output.segments.allSatisfy { $0.count - superframe.networkOffset <= 1_500 })
        GSOSegmenterTests.checkSegments(output.segments, of: expected, mss: mss)
    }

    @Test func marksCWRWithTheECNBit() {
        let superframe = OffloadFrame(payload: OffloadFrame.payload(count: 3_000), tcpFlags: 0x90)
        let type = Self.infer(superframe.bytes).header?.gsoType
        #expect(type?.withoutECN == .tcpv4 && type?.hasECN == true)
    }

    @Test(arguments: [false, true])
    func describesAUDPSuperframe(ipv6: Bool) {
        let superframe = OffloadFrame(ipv6: ipv6, tcp: false, payload: OffloadFrame.payload(count: 8_000))
        let result = Self.infer(superframe.bytes)
        let segmentSize = 1_500 - (ipv6 ? 40 : 20) - 8
        #expect(result.header == VirtioNetHeader(flags: .needsChecksum, gsoType: .udpL4,
                                                 segmentHeaderLength: UInt16(superframe.headersEnd), gsoSize: UInt16(segmentSize),
                                                 checksumStart: UInt16(superframe.transportOffset), checksumOffset: 6))
        var expected = superframe
        expected.setChecksumField(superframe.partialSum)
        #expect(result.frame == expected.bytes)
        let output = segments(of: result.frame, header: result.header)
        #expect(output.result == .success(6))
        #expect(output.segments.allSatisfy { $0.count - superframe.networkOffset <= 1_500 })
        GSOSegmenterTests.checkSegments(output.segments, of: expected, mss: segmentSize)
    }

    @Test func theMTUItselfIsNoSuperframe() {
        // 20 + 32 + 1448 = 1500 exactly: complete stays alone, partial is only partial.
        let complete = OffloadFrame(payload: OffloadFrame.payload(count: 1_448))
        #expect(Self.infer(complete.bytes).header == nil)
        #expect(Self.infer(complete.bytes, mtu: 1_499).header?.gsoSize == 1_447)
        let partial = OffloadFrame(payload: OffloadFrame.payload(count: 1_448), checksum: .partial)
        #expect(Self.infer(partial.bytes).header?.gsoType == VirtioNetHeader.GSOType.none)
    }

    @Test func refusesAnMTUWithNoRoomForPayload() {
        let superframe = OffloadFrame(payload: OffloadFrame.payload(count: 100), checksum: .partial)
        for mtu in [Int.min, -1, 0, 20, 52] {
            let result = Self.infer(superframe.bytes, mtu: mtu)
            #expect(result.header == nil && result.frame == superframe.bytes, "mtu \(mtu)")
        }
        #expect(Self.infer(superframe.bytes, mtu: 53).header?.gsoSize == 1)
    }

    @Test func leavesFragmentsAndOtherProtocolsAlone() {
        for fragment: UInt16 in [0x2000, 0x0001, 0x4010, 0x3fff] {
            let partial = OffloadFrame(payload: OffloadFrame.payload(count: 3_000), fragment: fragment, checksum: .partial)
            let result = Self.infer(partial.bytes)
            #expect(result.header == nil && result.frame == partial.bytes, "fragment field \(fragment)")
        }
        #expect(Self.infer(Fixture.vlanTaggedIPv4Frame).header == nil)    // ICMP
        #expect(Self.infer(Fixture.arpRequestFrame).header == nil)
        #expect(Self.infer(Fixture.qinqIPv6Frame).header == nil)          // ICMPv6 behind two tags
        var hopByHop = OffloadFrame(ipv6: true, payload: OffloadFrame.payload(count: 3_000), checksum: .partial)
        hopByHop.bytes[hopByHop.networkOffset + 6] = 0
        #expect(Self.infer(hopByHop.bytes).header == nil)
    }

    @Test func leavesPaddedFramesAlone() {
        // Padding after the IP packet means the frame came off a wire, where checksums are complete.
        let partial = OffloadFrame(payload: [1, 2], checksum: .partial)
        #expect(Self.infer(partial.bytes).header != nil)
        #expect(Self.infer(partial.bytes + [0, 0, 0, 0]).header == nil)
    }

    @Test func takesAPointerAndLength() {
        var frame = OffloadFrame(payload: OffloadFrame.payload(count: 40), checksum: .partial).bytes
        let header = frame.withUnsafeMutableBytes { VirtioNetHeader.infer(frame: $0.baseAddress!, length: $0.count, mtu: 1_500) }
        #expect(header?.flags == .needsChecksum)
        #expect(frame.withUnsafeMutableBytes { VirtioNetHeader.infer(frame: $0.baseAddress!, length: -1, mtu: 1_500) } == nil)
    }
}
