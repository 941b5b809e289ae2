// TCPSegmentMerge: userspace GRO's header rules, one frame or one pair at a time. The batch walk
// and its many cases are tested with TCPCoalescer (VSwitchPortsTests).

import Testing
import VSwitchWire

/// A segment of the fixture's flow: ACK only, no options, `count` payload bytes at `sequence`.
private func segment(_ sequence: UInt32, count: Int = 1000, ipv6: Bool = false, flags: UInt8 = 0x10) -> OffloadFrame {
    OffloadFrame(ipv6: ipv6, payload: OffloadFrame.payload(count: count), tcpOptionBytes: 0, sequenceNumber: sequence, tcpFlags: flags)
}

@Suite struct TCPSegmentMergeTests {
    @Test func readsASegment() {
        for ipv6 in [false, true] {
            let frame = segment(0x1234_5678, count: 700, ipv6: ipv6)
            withBytes(frame.bytes) { bytes in
                guard let s = TCPSegmentMerge.Segment(validating: bytes, offload: nil) else { Issue.record("refused"); return }
                #expect(s.isIPv6 == ipv6)
                #expect(s.transportOffset == frame.transportOffset && s.payloadOffset == frame.headersEnd)
                #expect(s.payloadLength == 700 && s.sequence == 0x1234_5678)
                #expect(s.timestampOffset == -1 && !s.trusted && s.mergedSegmentSize == 0)
                #expect(!s.endsRun && s.canHeadRun && s.segmentSize == 700 && s.segmentCount == 1)
                #expect(TCPSegmentMerge.checksumIsValid(s))
            }
        }
    }

    @Test func refusesWhatMustNotMerge() {
        var padded = segment(1).bytes
        padded += [0, 0]
        var badIPChecksum = segment(1).bytes
        badIPChecksum[14 + 10] ^= 1
        let refused: [[UInt8]] = [
            OffloadFrame(payload: [1, 2, 3], tcpOptionBytes: 0, tcpFlags: 0x11).bytes,   // FIN
            OffloadFrame(payload: [1, 2, 3], tcpOptionBytes: 0, tcpFlags: 0x12).bytes,   // SYN
            OffloadFrame(vlan: true, payload: [1, 2, 3], tcpOptionBytes: 0, tcpFlags: 0x10).bytes,
            OffloadFrame(payload: [1, 2, 3], ipv4OptionBytes: 4, tcpOptionBytes: 0, tcpFlags: 0x10).bytes,
            OffloadFrame(tcp: false, payload: [1, 2, 3]).bytes,
            OffloadFrame(payload: [1, 2, 3], tcpOptionBytes: 0, tcpFlags: 0x10, fragment: 0x2000).bytes,
            segment(1, count: 0).bytes,                                                  // no payload
            padded, badIPChecksum,
        ]
        for frame in refused {
            withBytes(frame) { #expect(TCPSegmentMerge.Segment(validating: $0, offload: nil) == nil) }
        }
    }

    @Test func offloadHeaders() {
        let frame = segment(1)
        let start = UInt16(frame.transportOffset)
        withBytes(frame.bytes) { bytes in
            let partial = VirtioNetHeader(flags: .needsChecksum, checksumStart: start, checksumOffset: 16)
            #expect(TCPSegmentMerge.Segment(validating: bytes, offload: partial)?.trusted == true)
            #expect(TCPSegmentMerge.Segment(validating: bytes, offload: VirtioNetHeader(flags: .dataValid))?.trusted == true)
            #expect(TCPSegmentMerge.Segment(validating: bytes, offload: VirtioNetHeader())?.trusted == false)
            for header in [VirtioNetHeader(flags: .needsChecksum, checksumStart: start, checksumOffset: 6),
                           VirtioNetHeader(flags: VirtioNetHeader.Flags(rawValue: 4)),
                           VirtioNetHeader(flags: .needsChecksum, gsoType: .tcpv6, segmentHeaderLength: UInt16(frame.headersEnd),
                                           gsoSize: 500, checksumStart: start, checksumOffset: 16),
                           VirtioNetHeader(flags: .needsChecksum, gsoType: VirtioNetHeader.GSOType(rawValue: 0x81),
                                           segmentHeaderLength: UInt16(frame.headersEnd), gsoSize: 500, checksumStart: start,
                                           checksumOffset: 16)] {
                #expect(TCPSegmentMerge.Segment(validating: bytes, offload: header) == nil, "\(header)")
            }
            let merged = VirtioNetHeader(flags: .needsChecksum, gsoType: .tcpv4, segmentHeaderLength: UInt16(frame.headersEnd),
                                         gsoSize: 500, checksumStart: start, checksumOffset: 16)
            let s = TCPSegmentMerge.Segment(validating: bytes, offload: merged)
            #expect(s?.mergedSegmentSize == 500 && s?.segmentSize == 500 && s?.segmentCount == 2 && s?.canHeadRun == true)
        }
    }

    @Test func continuesInSequenceOnly() {
        let first = segment(1000), next = segment(2000), gap = segment(2001), larger = segment(2000, count: 1001)
        var otherPort = segment(2000)
        otherPort.bytes[otherPort.transportOffset + 1] ^= 1
        withBytes(first.bytes) { a in
            let head = TCPSegmentMerge.Segment(validating: a, offload: nil)!
            for (frame, expected) in [(next, true), (gap, false), (larger, false), (otherPort, false)] {
                withBytes(frame.bytes) { b in
                    let s = TCPSegmentMerge.Segment(validating: b, offload: nil)!
                    #expect(TCPSegmentMerge.continues(s, after: head, head: head) == expected)
                }
            }
        }
    }

    @Test func completeMergeWritesTheHeaders() {
        for ipv6 in [false, true] {
            // Two segments of 1000 bytes, the second with PSH, merged by hand.
            let first = segment(1000, ipv6: ipv6), second = segment(2000, ipv6: ipv6, flags: 0x18)
            var merged = first.bytes + second.payload
            merged.withUnsafeMutableBytes { raw in
                let head = TCPSegmentMerge.Segment(validating: UnsafeRawBufferPointer(start: raw.baseAddress, count: first.bytes.count),
                                                   offload: nil)!
                let header = TCPSegmentMerge.completeMerge(raw, head: head, lastFlags: 0x18)
                #expect(header == VirtioNetHeader(flags: .needsChecksum, gsoType: ipv6 ? .tcpv6 : .tcpv4,
                                                  segmentHeaderLength: UInt16(first.headersEnd), gsoSize: 1000,
                                                  checksumStart: UInt16(first.transportOffset), checksumOffset: 16))
            }
            let expected = OffloadFrame(ipv6: ipv6, payload: Array(first.payload + second.payload), tcpOptionBytes: 0,
                                        sequenceNumber: 1000, tcpFlags: 0x18, checksum: .partial)
            if !ipv6 { #expect(Array(merged[14..<34]) == Array(expected.bytes[14..<34]), "IPv4 length and checksum") }
            #expect(merged == expected.bytes)
        }
    }
}
