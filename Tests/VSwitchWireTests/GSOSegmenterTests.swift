import Testing
import VSwitchWire

@Suite struct GSOSegmenterTests {
    static let payloadCount = 20_000
    static let mss = 1_448

    /// The header a TAP gives a TCP superframe: checksum partial, TSO at `mss`.
    static func tsoHeader(_ frame: OffloadFrame, gsoSize: UInt16 = UInt16(mss), ecn: Bool = false) -> VirtioNetHeader {
        var type: VirtioNetHeader.GSOType = frame.isTCP ? (frame.isIPv6 ? .tcpv6 : .tcpv4) : .udpL4
        if ecn { type = VirtioNetHeader.GSOType(rawValue: type.rawValue | VirtioNetHeader.GSOType.ecn.rawValue) }
        return VirtioNetHeader(flags: .needsChecksum, gsoType: type, segmentHeaderLength: UInt16(frame.headersEnd),
                               gsoSize: gsoSize, checksumStart: UInt16(frame.transportOffset),
                               checksumOffset: frame.isTCP ? 16 : 6)
    }

    static func load16(_ bytes: [UInt8], _ offset: Int) -> UInt16 { UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]) }
    static func load32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(load16(bytes, offset)) << 16 | UInt32(load16(bytes, offset + 2))
    }

    /// Checks every segment of `superframe` the way a receiver would, and that the payloads put
    /// back together are the original.
    static func checkSegments(_ segments: [[UInt8]], of superframe: OffloadFrame, mss: Int) {
        let payload = Array(superframe.payload)
        let expectedCount = max(1, (payload.count + mss - 1) / mss)
        #expect(segments.count == expectedCount)
        let original = superframe.bytes
        let n = superframe.networkOffset, t = superframe.transportOffset, h = superframe.headersEnd
        var reassembled: [UInt8] = []
        for (index, segment) in segments.enumerated() {
            let isLast = index == segments.count - 1
            let chunk = isLast ? payload.count - mss * (segments.count - 1) : mss
            #expect(segment.count == h + chunk, "segment \(index)")
            guard segment.count >= h else { continue }
            // L2 (and VLAN tag) unchanged.
            #expect(segment[..<n] == original[..<n])
            if superframe.isIPv6 {
                #expect(Int(load16(segment, n + 4)) == segment.count - n - 40)
                #expect(segment[n..<n + 4] == original[n..<n + 4] && segment[n + 6..<t] == original[n + 6..<t])
            } else {
                #expect(Int(load16(segment, n + 2)) == segment.count - n)
                #expect(load16(segment, n + 4) == load16(original, n + 4) &+ UInt16(index))
                #expect(InternetChecksumTests.reference(Array(segment[n..<t])) == 0, "IPv4 header checksum of segment \(index)")
                // Everything else in the IP header (options included) as in the superframe.
                #expect(segment[n..<n + 2] == original[n..<n + 2] && segment[n + 6..<n + 10] == original[n + 6..<n + 10])
                #expect(segment[n + 12..<t] == original[n + 12..<t])
            }
            #expect(OffloadFrame.transportChecksumHolds(segment, networkOffset: n), "L4 checksum of segment \(index)")
            #expect(OffloadFrame.referenceTransportChecksum(segment, networkOffset: n) == load16(segment, superframe.checksumFieldOffset))
            if superframe.isTCP {
                #expect(load32(segment, t + 4) == load32(original, t + 4) &+ UInt32(index * mss), "sequence of \(index)")
                var flags = original[t + 13]
                if !isLast { flags &= ~0x09 }      // FIN, PSH
                if index != 0 { flags &= ~0x80 }   // CWR
                #expect(segment[t + 13] == flags, "flags of segment \(index)")
                // Ports, ack, data offset, window, urgent pointer and options as in the superframe.
                #expect(segment[t..<t + 4] == original[t..<t + 4] && segment[t + 8..<t + 13] == original[t + 8..<t + 13])
                #expect(segment[t + 14..<t + 16] == original[t + 14..<t + 16] && segment[t + 18..<h] == original[t + 18..<h])
            } else {
                #expect(Int(load16(segment, t + 4)) == segment.count - t)
                #expect(segment[t..<t + 4] == original[t..<t + 4])
            }
            reassembled += segment[h...]
        }
        #expect(reassembled == payload)
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func segmentsTCPSuperframes(ipv6: Bool, vlan: Bool) {
        let superframe = OffloadFrame(ipv6: ipv6, vlan: vlan, payload: OffloadFrame.payload(count: Self.payloadCount),
                                      tcpFlags: 0x80 | 0x10 | 0x08 | 0x01, checksum: .partial)
        let output = segments(of: superframe.bytes, header: Self.tsoHeader(superframe, ecn: true))
        #expect(output.result == .success(14))
        Self.checkSegments(output.segments, of: superframe, mss: Self.mss)
        #expect(output.segments.allSatisfy { $0.count <= superframe.headersEnd + Self.mss })
    }

    /// With `placement`, segments are built end to end where the caller says, each behind room
    /// for an 8-byte header, and come out the same as through the scratch.
    @Test func placementBuildsSegmentsEndToEnd() {
        let superframe = OffloadFrame(ipv6: false, vlan: false, payload: OffloadFrame.payload(count: Self.payloadCount),
                                      tcpFlags: 0x10, checksum: .partial)
        let expected = segments(of: superframe.bytes, header: Self.tsoHeader(superframe)).segments
        let area = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 * 1024, alignment: 8)
        defer { area.deallocate() }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 8)
        defer { scratch.deallocate() }
        var used = 0
        var handed: [[UInt8]] = []
        let result = superframe.bytes.withUnsafeBytes { frame in
            GSOSegmenter.forEachSegment(of: frame, header: Self.tsoHeader(superframe), scratch: scratch,
                                        placement: { length in
                                            defer { used += 8 + length }
                                            return area.baseAddress! + used + 8
                                        }, usesPlacement: true) { segment in
                #expect(segment.baseAddress == UnsafeRawPointer(area.baseAddress! + used - segment.count), "built in place")
                handed.append(Array(segment))
                return true
            }
        }
        #expect(result == .success(expected.count))
        #expect(handed == expected)
        // Laid out end to end: segment i starts 8 bytes after segment i-1 ends.
        var offset = 8
        for segment in expected {
            #expect(Array(area[offset..<offset + segment.count]) == segment)
            offset += segment.count + 8
        }
    }

    /// Gathering builds only the headers and hands each payload over as a slice of the frame;
    /// headers and payload together are exactly the segment `forEachSegment` builds.
    @Test(arguments: [(false, false, true, 0), (true, true, true, 0), (false, true, false, 0), (true, false, false, 0),
                      (false, false, true, 8)])
    func gatheringHandsOverTheSameSegments(ipv6: Bool, vlan: Bool, tcp: Bool, ipv4OptionBytes: Int) {
        let superframe = OffloadFrame(ipv6: ipv6, vlan: vlan, tcp: tcp, payload: OffloadFrame.payload(count: Self.payloadCount),
                                      ipv4OptionBytes: ipv4OptionBytes, tcpFlags: 0x80 | 0x10 | 0x08 | 0x01, checksum: .partial)
        let header = Self.tsoHeader(superframe, gsoSize: tcp ? UInt16(Self.mss) : 1_472)
        let expected = segments(of: superframe.bytes, header: header)
        let gathered = gatheredSegments(of: superframe.bytes, header: header)
        #expect(gathered.result == expected.result)
        #expect(gathered.segments == expected.segments)
        #expect(gathered.payloadsInFrame)
        Self.checkSegments(gathered.segments, of: superframe, mss: tcp ? Self.mss : 1_472)
        // Stopping early: headers asked for no more.
        #expect(gatheredSegments(of: superframe.bytes, header: header, stopAfter: 3).segments == Array(expected.segments.prefix(3)))
    }

    @Test func gatheringRefusesFramesWithoutSegments() {
        let frame = OffloadFrame(payload: OffloadFrame.payload(count: 100), checksum: .partial)
        let plain = VirtioNetHeader(flags: .needsChecksum, checksumStart: UInt16(frame.transportOffset), checksumOffset: 16)
        let output = gatheredSegments(of: frame.bytes, header: plain)
        #expect(output.result == .failure(.unsupportedGSOType) && output.segments.isEmpty)
    }

    @Test(arguments: [false, true])
    func segmentsUDPSuperframes(ipv6: Bool) {
        let superframe = OffloadFrame(ipv6: ipv6, vlan: true, tcp: false, payload: OffloadFrame.payload(count: 9_000),
                                      checksum: .partial)
        let output = segments(of: superframe.bytes, header: Self.tsoHeader(superframe, gsoSize: 1_472))
        #expect(output.result == .success(7))
        Self.checkSegments(output.segments, of: superframe, mss: 1_472)
    }

    @Test func copiesIPv4OptionsIntoEverySegment() {
        let superframe = OffloadFrame(payload: OffloadFrame.payload(count: 5_000), ipv4OptionBytes: 8, tcpOptionBytes: 0,
                                      checksum: .partial)
        let output = segments(of: superframe.bytes, header: Self.tsoHeader(superframe, gsoSize: 1_000))
        #expect(output.result == .success(5))
        Self.checkSegments(output.segments, of: superframe, mss: 1_000)
    }

    @Test func worksWithoutNeedsChecksum() {
        // The kernel accepts a TSO frame without NEEDS_CSUM and fixes the checksum up; so do we.
        let superframe = OffloadFrame(payload: OffloadFrame.payload(count: 3_000), checksum: .zero)
        var header = Self.tsoHeader(superframe)
        header.flags = []
        header.checksumStart = 0
        header.checksumOffset = 0
        let output = segments(of: superframe.bytes, header: header)
        #expect(output.result == .success(3))
        Self.checkSegments(output.segments, of: superframe, mss: Self.mss)
    }

    @Test(arguments: [0, 1, 1_000, 1_448])
    func aSuperframeThatFitsOneSegmentKeepsItsFlags(payloadCount: Int) {
        let superframe = OffloadFrame(payload: OffloadFrame.payload(count: payloadCount), tcpFlags: 0x80 | 0x19,
                                      checksum: .partial)
        let output = segments(of: superframe.bytes, header: Self.tsoHeader(superframe))
        #expect(output.result == .success(1))
        #expect(output.segments.count == 1)
        var expected = superframe
        expected.setChecksumField(OffloadFrame.referenceTransportChecksum(superframe.bytes, networkOffset: superframe.networkOffset))
        #expect(output.segments.first == expected.bytes)
    }

    @Test func ignoresLinkLayerPaddingAfterTheIPPacket() {
        let superframe = OffloadFrame(payload: OffloadFrame.payload(count: 3_000), checksum: .partial)
        var padded = superframe.bytes
        padded += [0xde, 0xad, 0xbe, 0xef]
        let output = segments(of: padded, header: Self.tsoHeader(superframe))
        #expect(output.result == .success(3))
        Self.checkSegments(output.segments, of: superframe, mss: Self.mss)
    }

    @Test func completesTheChecksumOfAPartialFrame() {
        for (ipv6, tcp) in [(false, true), (true, true), (false, false), (true, false)] {
            let frame = OffloadFrame(ipv6: ipv6, vlan: true, tcp: tcp, payload: OffloadFrame.payload(count: 777), checksum: .partial)
            let header = VirtioNetHeader(flags: .needsChecksum, checksumStart: UInt16(frame.transportOffset),
                                         checksumOffset: tcp ? 16 : 6)
            let output = segments(of: frame.bytes, header: header)
            #expect(output.result == .success(1))
            let complete = OffloadFrame(ipv6: ipv6, vlan: true, tcp: tcp, payload: OffloadFrame.payload(count: 777))
            #expect(output.segments == [complete.bytes])
        }
    }

    @Test func passesPlainFramesThroughUncopied() {
        let frame = OffloadFrame(payload: OffloadFrame.payload(count: 100), checksum: .partial)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 8)
        defer { scratch.deallocate() }
        for header in [nil, VirtioNetHeader(), VirtioNetHeader(flags: .dataValid)] {
            var calls = 0
            let result = withBytes(frame.bytes) { buffer in
                GSOSegmenter.forEachSegment(of: buffer, header: header, scratch: scratch) { segment in
                    calls += 1
                    #expect(segment.baseAddress == buffer.baseAddress && segment.count == buffer.count)
                    return true
                }
            }
            #expect(result == .success(1) && calls == 1)
        }
    }

    @Test func stopsWhenTheBodySaysSo() {
        let superframe = OffloadFrame(payload: OffloadFrame.payload(count: Self.payloadCount), checksum: .partial)
        let output = segments(of: superframe.bytes, header: Self.tsoHeader(superframe), stopAfter: 3)
        #expect(output.result == .success(14))
        #expect(output.segments.count == 3)
    }

    @Test func needsScratchForTheLargestSegmentOnly() {
        let superframe = OffloadFrame(payload: OffloadFrame.payload(count: Self.payloadCount), checksum: .partial)
        let header = Self.tsoHeader(superframe)
        let largest = superframe.headersEnd + Self.mss
        #expect(segments(of: superframe.bytes, header: header, scratchCount: largest - 1).result == .failure(.scratchTooSmall))
        let output = segments(of: superframe.bytes, header: header, scratchCount: largest)
        #expect(output.result == .success(14))
        Self.checkSegments(output.segments, of: superframe, mss: Self.mss)

        let partial = VirtioNetHeader(flags: .needsChecksum, checksumStart: UInt16(superframe.transportOffset), checksumOffset: 16)
        #expect(segments(of: superframe.bytes, header: partial, scratchCount: superframe.bytes.count - 1).result == .failure(.scratchTooSmall))
    }

    /// One malformed input per failure, each otherwise a valid TSO frame.
    @Test func reportsMalformedInput() {
        let tcp4 = OffloadFrame(payload: OffloadFrame.payload(count: 3_000), checksum: .partial)
        let tcp6 = OffloadFrame(ipv6: true, payload: OffloadFrame.payload(count: 3_000), checksum: .partial)
        let good = Self.tsoHeader(tcp4)
        func failure(_ bytes: [UInt8], _ header: VirtioNetHeader) -> GSOSegmenter.Failure? {
            let output = segments(of: bytes, header: header)
            guard case .failure(let failure) = output.result else { return nil }
            #expect(output.segments.isEmpty, "the body must not be called on failure")
            return failure
        }
        #expect(failure(tcp4.bytes, good) == nil)

        var header = good
        header.gsoSize = 0
        #expect(failure(tcp4.bytes, header) == .zeroSegmentSize)
        header = good
        header.segmentHeaderLength = UInt16(tcp4.bytes.count + 1)
        #expect(failure(tcp4.bytes, header) == .headerLengthBeyondFrame)
        header = good
        header.checksumStart += 1
        #expect(failure(tcp4.bytes, header) == .invalidChecksumOffsets)
        header = good
        header.checksumOffset = 6
        #expect(failure(tcp4.bytes, header) == .invalidChecksumOffsets)
        header = VirtioNetHeader(flags: .needsChecksum, checksumStart: UInt16(tcp4.bytes.count - 1), checksumOffset: 0)
        #expect(failure(tcp4.bytes, header) == .invalidChecksumOffsets)
        header = VirtioNetHeader(flags: .needsChecksum, checksumStart: 0, checksumOffset: UInt16.max)
        #expect(failure(tcp4.bytes, header) == .invalidChecksumOffsets)
        header = good
        header.gsoType = .udp
        #expect(failure(tcp4.bytes, header) == .unsupportedGSOType)
        header.gsoType = VirtioNetHeader.GSOType(rawValue: 0x42)
        #expect(failure(tcp4.bytes, header) == .unsupportedGSOType)
        header = good
        header.gsoType = .tcpv6
        #expect(failure(tcp4.bytes, header) == .gsoTypeMismatch)
        #expect(failure(tcp6.bytes, good) == .gsoTypeMismatch)
        header.gsoType = .udpL4
        #expect(failure(tcp4.bytes, header) == .gsoTypeMismatch)

        var bytes = tcp4.bytes
        bytes[tcp4.networkOffset + 6] |= 0x20                                   // MF
        #expect(failure(bytes, good) == .ipv4Fragment)
        bytes = tcp4.bytes
        bytes[tcp4.networkOffset + 7] = 0x10                                    // offset 128
        #expect(failure(bytes, good) == .ipv4Fragment)
        bytes = tcp4.bytes
        bytes[tcp4.networkOffset + 9] = 1                                       // ICMP
        #expect(failure(bytes, good) == .unsupportedTransport)
        bytes = tcp6.bytes
        bytes[tcp6.networkOffset + 6] = 0                                       // hop-by-hop options
        #expect(failure(bytes, Self.tsoHeader(tcp6)) == .unsupportedTransport)
        bytes = tcp4.bytes
        bytes[tcp4.networkOffset + 2] = 0xff                                    // total length past the end
        #expect(failure(bytes, good) == .malformedIPHeader)
        bytes = tcp4.bytes
        bytes[tcp4.networkOffset] = 0x65                                        // version 6 in an IPv4 frame
        #expect(failure(bytes, good) == .malformedIPHeader)
        bytes = tcp4.bytes
        bytes[tcp4.transportOffset + 12] = 0x40                                 // data offset 16 bytes
        #expect(failure(bytes, good) == .malformedTransportHeader)
        bytes = tcp4.bytes
        bytes[12] = 0x08; bytes[13] = 0x06                                      // ARP
        #expect(failure(bytes, good) == .unsupportedNetworkProtocol)
        bytes = Array(tcp4.bytes[..<12]) + [UInt8](repeating: 0, count: 10).flatMap { _ in [0x81, 0x00] }  // tags all the way down
        #expect(failure(bytes, VirtioNetHeader(gsoType: .tcpv4, gsoSize: 1)) == .unsupportedNetworkProtocol)
        #expect(failure(Array(tcp4.bytes[..<13]), VirtioNetHeader(gsoType: .tcpv4, gsoSize: 1)) == .truncatedFrame)
    }
}
