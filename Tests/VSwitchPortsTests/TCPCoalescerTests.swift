// TCPCoalescer (userspace GRO over a batch, with TCPSegmentMerge's wire rules): frames built byte
// by byte here, checksums with a plain RFC 1071 reference sum, so the tests do not lean on the code
// they test.

import CMallocCounter
import Testing
import VSwitchCore
import VSwitchPorts
import VSwitchTesting

/// One TCP segment in an Ethernet frame, and what to vary in it.
private struct Segment {
    var ipv6 = false
    var sequence: UInt32
    var acknowledgement: UInt32 = 0x1000_0000
    var flags: UInt8 = 0x10
    var window: UInt16 = 0x1f00
    var payload: [UInt8]
    var sourcePort: UInt16 = 40_000
    var destinationPort: UInt16 = 5201
    /// TSval/TSecr of a NOP, NOP, timestamp option block; nil for no options.
    var timestamp: (value: UInt32, echo: UInt32)? = (100, 7)
    var ttl: UInt8 = 64
    var tos: UInt8 = 0
    var ipv4Options: [UInt8] = []
    var fragment: UInt16 = 0x4000
    var ipProtocol: UInt8 = 6
    var sourceHost: UInt8 = 1
    var identification: UInt16 = 0x1234
    /// Store the folded pseudo-header sum instead of the checksum (a checksum-partial frame).
    var partialChecksum = false
    var corruptChecksum = false

    var tcpHeaderLength: Int { timestamp == nil ? 20 : 32 }

    var bytes: [UInt8] {
        var frame: [UInt8] = [0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a]
        frame += ipv6 ? [0x86, 0xdd] : [0x08, 0x00]
        var tcp: [UInt8] = be16(sourcePort) + be16(destinationPort) + be32(sequence) + be32(acknowledgement)
        tcp += [UInt8(tcpHeaderLength / 4) << 4, flags] + be16(window) + [0, 0, 0, 0]
        if let timestamp { tcp += [1, 1, 8, 10] + be32(timestamp.value) + be32(timestamp.echo) }
        tcp += payload
        let source: [UInt8], destination: [UInt8]
        if ipv6 {
            source = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, sourceHost]
            destination = [0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 0x02]
            frame += [0x60 | tos >> 4, tos << 4 | 0x0a, 0xbc, 0xde] + be16(UInt16(tcp.count)) + [ipProtocol, ttl]
            frame += source + destination
        } else {
            source = [192, 0, 2, sourceHost]
            destination = [198, 51, 100, 7]
            let headerLength = 20 + ipv4Options.count
            var ip: [UInt8] = [0x40 | UInt8(headerLength / 4), tos] + be16(UInt16(headerLength + tcp.count)) + be16(identification)
            ip += be16(fragment) + [ttl, ipProtocol, 0, 0] + source + destination + ipv4Options
            let checksum = referenceChecksum(ip)
            ip[10] = UInt8(checksum >> 8); ip[11] = UInt8(checksum & 0xff)
            frame += ip
        }
        let pseudo = pseudoHeader(source: source, destination: destination, length: tcp.count)
        let field: UInt16 = partialChecksum ? ~referenceChecksum(pseudo) : referenceChecksum(pseudo + tcp)
        tcp[16] = UInt8(field >> 8); tcp[17] = UInt8(field & 0xff)
        if corruptChecksum { tcp[tcp.count - 1] ^= 0x40 }
        return frame + tcp
    }
}

/// A non-IP Ethernet frame (46 payload bytes) between two MACs.
private func plainFrame(type: UInt16 = 0x88B5) -> [UInt8] {
    [0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x0b, UInt8(type >> 8), UInt8(type & 0xff)] + [UInt8](repeating: 0, count: 46)
}

private func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
private func load16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }
private func load32(_ b: [UInt8], _ at: Int) -> UInt32 { UInt32(load16(b, at)) << 16 | UInt32(load16(b, at + 2)) }

/// RFC 1071, the plain way: the complement of the folded sum of big-endian words.
private func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i < bytes.count {
        sum += UInt32(bytes[i]) << 8 | (i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0)
        i += 2
    }
    while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
    return ~UInt16(sum)
}

private func pseudoHeader(source: [UInt8], destination: [UInt8], length: Int) -> [UInt8] {
    source.count == 16
        ? source + destination + be32(UInt32(length)) + [0, 0, 0, 6]
        : source + destination + [0, 6] + be16(UInt16(length))
}

/// `count` segments of one flow, `size` payload bytes each (recognisable per segment and offset).
private func stream(count: Int, size: Int, ipv6: Bool = false, start: UInt32 = 0xffff_f000) -> [Segment] {
    (0..<count).map { i in
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i &* 13 &+ $0 >> 8) }
        return Segment(ipv6: ipv6, sequence: start &+ UInt32(i * size), payload: payload,
                       timestamp: (100 + UInt32(i / 10), 7))
    }
}

private func makeBatch(_ frames: [[UInt8]], capacity: Int = 64, bufferSize: Int = PacketPool.defaultBufferSize) -> PacketBatch {
    let batch = PacketBatch(capacity: capacity, bufferSize: bufferSize)
    for f in frames { #expect(batch.append(f)) }
    return batch
}

private func frameBytes(_ batch: PacketBatch, _ i: Int) -> [UInt8] { Array(batch.buffers[i].bytes) }

private func vnetHeader(_ batch: PacketBatch, _ i: Int) -> [UInt8] {
    let b = batch.buffers[i]
    return Array(UnsafeRawBufferPointer(start: b.frame - 10, count: 10))
}

/// Every buffer of the batch is in `buffers[0 ..< capacity]` exactly once.
private func expectBuffersKept(_ batch: PacketBatch, _ bases: [UnsafeMutableRawPointer], sourceLocation: SourceLocation = #_sourceLocation) {
    let now = (0..<batch.capacity).map { batch.buffers[$0].base }
    #expect(Set(now) == Set(bases) && Set(now).count == batch.capacity, "buffers lost or duplicated", sourceLocation: sourceLocation)
}

private func bases(_ batch: PacketBatch) -> [UnsafeMutableRawPointer] { (0..<batch.capacity).map { batch.buffers[$0].base } }

/// Checks a merged frame (`offloadLength` 10) made of `segments` in order.
private func expectMerged(_ batch: PacketBatch, _ index: Int, _ segments: [Segment], sourceLocation: SourceLocation = #_sourceLocation) {
    let merged = frameBytes(batch, index)
    let first = segments[0], last = segments[segments.count - 1]
    let ipHeader = first.ipv6 ? 40 : 20
    let l4 = 14 + ipHeader
    let headers = l4 + first.tcpHeaderLength
    #expect(batch.buffers[index].offloadLength == 10, sourceLocation: sourceLocation)
    #expect(merged.count == headers + segments.reduce(0) { $0 + $1.payload.count }, sourceLocation: sourceLocation)
    guard merged.count > headers else { return }
    // Headers are the first frame's but for the lengths, checksums and flags.
    let original = first.bytes
    #expect(Array(merged[0..<14]) == Array(original[0..<14]), sourceLocation: sourceLocation)
    #expect(Array(merged[headers...]) == segments.flatMap(\.payload), "payload is the concatenation", sourceLocation: sourceLocation)
    if first.ipv6 {
        #expect(Int(load16(merged, 18)) == merged.count - 54, sourceLocation: sourceLocation)
        #expect(Array(merged[14..<18]) == Array(original[14..<18]) && Array(merged[20..<54]) == Array(original[20..<54]),
                sourceLocation: sourceLocation)
    } else {
        #expect(Int(load16(merged, 16)) == merged.count - 14, "total length", sourceLocation: sourceLocation)
        #expect(referenceChecksum(Array(merged[14..<34])) == 0, "IPv4 header checksum valid", sourceLocation: sourceLocation)
        #expect(Array(merged[18..<24]) == Array(original[18..<24]) && Array(merged[26..<34]) == Array(original[26..<34]),
                sourceLocation: sourceLocation)
    }
    #expect(load32(merged, l4 + 4) == first.sequence, sourceLocation: sourceLocation)
    #expect(merged[l4 + 13] == last.flags, "flags of the last segment (PSH)", sourceLocation: sourceLocation)
    #expect(Array(merged[l4 + 20..<headers]) == Array(original[l4 + 20..<headers]), "first segment's options", sourceLocation: sourceLocation)
    // Checksum field: the folded pseudo-header sum for the new TCP length.
    let source = first.ipv6 ? Array(merged[22..<38]) : Array(merged[26..<30])
    let destination = first.ipv6 ? Array(merged[38..<54]) : Array(merged[30..<34])
    let pseudo = pseudoHeader(source: source, destination: destination, length: merged.count - l4)
    #expect(load16(merged, l4 + 16) == ~referenceChecksum(pseudo), "partial checksum", sourceLocation: sourceLocation)
    // Completing it as skb_checksum_help does yields a valid TCP checksum.
    var completed = merged
    let sum = referenceChecksum(Array(completed[l4...]))
    completed[l4 + 16] = UInt8(sum >> 8); completed[l4 + 17] = UInt8(sum & 0xff)
    #expect(referenceChecksum(pseudo + Array(completed[l4...])) == 0, "completed checksum valid", sourceLocation: sourceLocation)
    // virtio-net header.
    let vnet = vnetHeader(batch, index)
    func le16(_ at: Int) -> Int { Int(vnet[at]) | Int(vnet[at + 1]) << 8 }
    #expect(vnet[0] == 1, "NEEDS_CSUM", sourceLocation: sourceLocation)
    #expect(vnet[1] == (first.ipv6 ? 4 : 1), "gso type", sourceLocation: sourceLocation)
    #expect(le16(2) == headers, "hdr_len", sourceLocation: sourceLocation)
    #expect(le16(4) == first.payload.count, "gso_size", sourceLocation: sourceLocation)
    #expect(le16(6) == l4, "csum_start", sourceLocation: sourceLocation)
    #expect(le16(8) == 16, "csum_offset", sourceLocation: sourceLocation)
}

/// Coalesces `segments` (as frames, with `extra` frames substituted where given) and checks the
/// result is `groups`: each a run merged into one frame, or a single frame left untouched.
private func expectGroups(_ frames: [[UInt8]], segments: [Int: Segment], groups: [[Int]], from first: Int = 0,
                          maxLength: Int = TCPCoalescer.defaultMaxLength, bufferSize: Int = PacketPool.defaultBufferSize,
                          sourceLocation: SourceLocation = #_sourceLocation) {
    let batch = makeBatch(frames, bufferSize: bufferSize)
    let all = bases(batch)
    let removed = TCPCoalescer.coalesce(batch, from: first, maxLength: maxLength)
    #expect(removed == frames.count - groups.count, sourceLocation: sourceLocation)
    #expect(batch.count == groups.count, sourceLocation: sourceLocation)
    expectBuffersKept(batch, all, sourceLocation: sourceLocation)
    for (index, group) in groups.enumerated() where index < batch.count {
        if group.count == 1 {
            #expect(frameBytes(batch, index) == frames[group[0]], "frame \(group[0]) untouched", sourceLocation: sourceLocation)
            #expect(batch.buffers[index].offloadLength == 0, sourceLocation: sourceLocation)
        } else {
            expectMerged(batch, index, group.map { segments[$0]! }, sourceLocation: sourceLocation)
        }
    }
}

private func expectGroups(_ segments: [Segment], groups: [[Int]], from first: Int = 0,
                          maxLength: Int = TCPCoalescer.defaultMaxLength, bufferSize: Int = PacketPool.defaultBufferSize,
                          sourceLocation: SourceLocation = #_sourceLocation) {
    var byIndex: [Int: Segment] = [:]
    for (i, s) in segments.enumerated() { byIndex[i] = s }
    expectGroups(segments.map(\.bytes), segments: byIndex, groups: groups, from: first, maxLength: maxLength,
                 bufferSize: bufferSize, sourceLocation: sourceLocation)
}

@Suite struct TCPCoalescerTests {
    @Test func mergesIPv4Stream() {
        var segments = stream(count: 45, size: 1410)
        segments[44].flags = 0x18  // PSH on the last
        expectGroups(segments, groups: [Array(0..<45)])
    }

    @Test func mergesIPv6StreamWithShortLastSegment() {
        var segments = stream(count: 45, size: 1390, ipv6: true)
        segments[44].payload = Array(segments[44].payload[0..<700])
        expectGroups(segments, groups: [Array(0..<45)])
    }

    @Test func mergesWithoutOptionsAndAcrossSequenceWrap() {
        var segments = stream(count: 6, size: 1000, start: 0xffff_f000)
        for i in segments.indices { segments[i].timestamp = nil }
        expectGroups(segments, groups: [Array(0..<6)])
    }

    @Test func leavesSingleFramesAndShortBatchesAlone() {
        let one = stream(count: 1, size: 1410)
        expectGroups(one, groups: [[0]])
        expectGroups([], segments: [:], groups: [])
        // Runs of one between unrelated frames stay as they are.
        let a = stream(count: 1, size: 100)[0]
        var b = a; b.sourcePort = 1
        expectGroups([a, b, a], groups: [[0], [1], [2]])
    }

    @Test func checksumPartialFramesMerge() {
        // A NEEDS_CSUM-only header in front of each frame (as UDPTunnelPort infers for a local peer).
        var segments = stream(count: 5, size: 1200)
        for i in segments.indices { segments[i].partialChecksum = true }
        let batch = makeBatch(segments.map(\.bytes))
        for i in 0..<5 {
            let b = batch.buffers + i
            let header: [UInt8] = [1, 0, 0, 0, 0, 0, 34, 0, 16, 0]
            header.withUnsafeBytes { (b.pointee.frame - 10).copyMemory(from: $0.baseAddress!, byteCount: 10) }
            b.pointee.offloadLength = 10
        }
        #expect(TCPCoalescer.coalesce(batch, from: 0) == 4)
        expectMerged(batch, 0, segments)
    }

    @Test func otherOffloadHeadersPreventMerging() {
        let segments = stream(count: 4, size: 1200)
        for header: [UInt8] in [[1, 1, 66, 0, 0xb0, 4, 34, 0, 16, 0],   // a superframe header
                                [1, 0, 0, 0, 0, 0, 34, 0, 6, 0],       // NEEDS_CSUM at the wrong field
                                [4, 0, 0, 0, 0, 0, 0, 0, 0, 0]] {      // unknown flag
            let batch = makeBatch(segments.map(\.bytes))
            for i in 0..<4 {
                let b = batch.buffers + i
                header.withUnsafeBytes { (b.pointee.frame - 10).copyMemory(from: $0.baseAddress!, byteCount: 10) }
                b.pointee.offloadLength = 10
            }
            #expect(TCPCoalescer.coalesce(batch, from: 0) == 0)
            for i in 0..<4 {
                #expect(frameBytes(batch, i) == segments[i].bytes)
                #expect(vnetHeader(batch, i) == header)
            }
        }
    }

    /// A run cut in two, its first piece merged by an earlier call (a sender's superframe that
    /// arrived in two UDP GSO messages), still becomes one frame. A merged frame that a short
    /// segment ended, or that reached the segment limit, takes no more; nor is a merged frame
    /// ever absorbed into another.
    @Test func aMergedFrameTakesTheSegmentsThatContinueIt() {
        var segments = stream(count: 45, size: 1448)
        segments[44].flags = 0x18
        let batch = makeBatch(segments[0..<30].map(\.bytes))
        #expect(TCPCoalescer.coalesce(batch, from: 0) == 29)
        for s in segments[30...] { #expect(batch.append(s.bytes)) }
        #expect(TCPCoalescer.coalesce(batch, from: 0) == 15)
        #expect(batch.count == 1)
        expectMerged(batch, 0, segments)

        var short = stream(count: 4, size: 1000)
        short[2].payload = Array(short[2].payload[0..<500])
        short[3].sequence = short[0].sequence &+ 2500
        let ended = makeBatch(short[0..<3].map(\.bytes))
        #expect(TCPCoalescer.coalesce(ended, from: 0) == 2)
        #expect(ended.append(short[3].bytes))
        #expect(TCPCoalescer.coalesce(ended, from: 0) == 0)
        #expect(ended.count == 2)

        let ten = stream(count: 10, size: 1000)
        let limited = makeBatch(ten[0..<4].map(\.bytes))
        #expect(TCPCoalescer.coalesce(limited, from: 0, maxSegments: 5) == 3)
        for s in ten[4...] { #expect(limited.append(s.bytes)) }
        #expect(TCPCoalescer.coalesce(limited, from: 0, maxSegments: 5) == 5)
        #expect(limited.count == 2)
        expectMerged(limited, 0, Array(ten[0..<5]))
        expectMerged(limited, 1, Array(ten[5..<10]))

        // Two merged halves side by side stay two frames: only single segments are taken.
        let halves = makeBatch(ten[0..<5].map(\.bytes))
        #expect(TCPCoalescer.coalesce(halves, from: 0) == 4)
        let second = makeBatch(ten[5...].map(\.bytes))
        #expect(TCPCoalescer.coalesce(second, from: 0) == 4)
        #expect(halves.append(Array(second.buffers[0].bytes)))
        halves.buffers[1].offloadLength = 10
        (halves.buffers[1].frame - 10).copyMemory(from: second.buffers[0].frame - 10, byteCount: 10)
        #expect(TCPCoalescer.coalesce(halves, from: 0) == 0)
        #expect(halves.count == 2)
    }

    @Test func sequenceGapSplitsRuns() {
        var segments = stream(count: 8, size: 1000)
        for i in 4..<8 { segments[i].sequence &+= 1000 }
        expectGroups(segments, groups: [[0, 1, 2, 3], [4, 5, 6, 7]])
    }

    @Test func otherFlowInTheMiddleSplitsRuns() {
        var segments = stream(count: 5, size: 1000)
        var other = stream(count: 1, size: 600, start: 77)[0]
        other.destinationPort = 80
        segments.insert(other, at: 2)
        expectGroups(segments, groups: [[0, 1], [2], [3, 4, 5]])
    }

    @Test func controlFlagsPreventMerging() {
        for flags: UInt8 in [0x02, 0x12, 0x11, 0x19, 0x04, 0x14, 0x30, 0x50, 0x90, 0x00, 0x18 | 0x40] {
            var segments = stream(count: 4, size: 1000)
            segments[2].flags = flags
            expectGroups(segments, groups: [[0, 1], [2], [3]])
        }
    }

    @Test func pushEndsRun() {
        var segments = stream(count: 5, size: 1000)
        segments[1].flags = 0x18
        expectGroups(segments, groups: [[0, 1], [2, 3, 4]])
    }

    @Test func segmentSizes() {
        // Larger than the first: breaks.
        var larger = stream(count: 4, size: 1000)
        larger[2].payload += [1, 2, 3]
        larger[3].sequence &+= 3
        expectGroups(larger, groups: [[0, 1], [2, 3]])
        // Shorter: ends the run; the next continues the sequence but starts a new run.
        var shorter = stream(count: 5, size: 1000)
        shorter[1].payload = Array(shorter[1].payload[0..<500])
        for i in 2..<5 { shorter[i].sequence &-= 500 }
        expectGroups(shorter, groups: [[0, 1], [2, 3, 4]])
        // No payload: never merged.
        var empty = stream(count: 4, size: 1000)
        empty[2].payload = []
        empty[3].sequence = empty[2].sequence
        expectGroups(empty, groups: [[0, 1], [2], [3]])
    }

    @Test func differingFieldsBreakRuns() {
        let changes: [(inout Segment) -> Void] = [
            { $0.acknowledgement &+= 1 },
            { $0.window &+= 1 },
            { $0.ttl = 63 },
            { $0.tos = 0x02 },                       // ECN bits count
            { $0.sourceHost = 9 },
            { $0.timestamp = ($0.timestamp!.value, 8) },   // TSecr
            { $0.timestamp = ($0.timestamp!.value &- 1, 7) },  // TSval backwards
            { $0.timestamp = nil },                  // option length
        ]
        for ipv6 in [false, true] {
            for change in changes {
                var segments = stream(count: 4, size: 1000, ipv6: ipv6)
                change(&segments[2])
                change(&segments[3])
                expectGroups(segments, groups: [[0, 1], [2, 3]])
            }
        }
        // A TSval that grows is fine.
        var growing = stream(count: 4, size: 1000)
        for i in 0..<4 { growing[i].timestamp = (1000 + UInt32(i), 7) }
        expectGroups(growing, groups: [[0, 1, 2, 3]])
    }

    @Test func ipv4OptionsAndFragmentsPreventMerging() {
        for change: (inout Segment) -> Void in [
            { $0.ipv4Options = [1, 1, 1, 0] },
            { $0.fragment = 0x6000 },     // DF + MF
            { $0.fragment = 0x4010 },     // offset
            { $0.fragment = 0x0000 },     // DF clear
            { $0.fragment = 0xC000 },     // reserved bit
            { $0.corruptChecksum = true },
        ] {
            var segments = stream(count: 3, size: 1000)
            for i in 0..<3 { change(&segments[i]) }
            expectGroups(segments, groups: [[0], [1], [2]])
        }
    }

    @Test func badChecksumIsNotMerged() {
        var segments = stream(count: 6, size: 1000)
        segments[2].corruptChecksum = true
        expectGroups(segments, groups: [[0, 1], [2], [3, 4, 5]])
        // A bad first frame: the rest still merge.
        var first = stream(count: 3, size: 1000)
        first[0].corruptChecksum = true
        expectGroups(first, groups: [[0], [1, 2]])
        // A bad IPv4 header checksum.
        let good = stream(count: 3, size: 1000)
        var frames = good.map(\.bytes)
        frames[1][24] ^= 1
        var byIndex: [Int: Segment] = [:]
        for (i, s) in good.enumerated() { byIndex[i] = s }
        expectGroups(frames, segments: byIndex, groups: [[0], [1], [2]])
    }

    @Test func nonTCPFramesPassThrough() {
        var udp = stream(count: 3, size: 500)
        for i in 0..<3 { udp[i].ipProtocol = 17 }
        expectGroups(udp, groups: [[0], [1], [2]])
        var ipv6UDP = stream(count: 3, size: 500, ipv6: true)
        for i in 0..<3 { ipv6UDP[i].ipProtocol = 17 }
        expectGroups(ipv6UDP, groups: [[0], [1], [2]])
        // Non-IP frames around a run, and a VLAN-tagged copy of a segment.
        let segments = stream(count: 3, size: 500)
        var frames: [[UInt8]] = [plainFrame(), segments[0].bytes, segments[1].bytes, plainFrame(type: 0x0806),
                                 segments[2].bytes]
        var tagged = segments[2].bytes
        tagged.insert(contentsOf: [0x81, 0x00, 0x00, 0x64], at: 12)
        frames.append(tagged)
        expectGroups(frames, segments: [1: segments[0], 2: segments[1]], groups: [[0], [1, 2], [3], [4], [5]])
    }

    @Test func startsAtFirst() {
        let segments = stream(count: 6, size: 1000)
        let frames = segments.map(\.bytes)
        let batch = makeBatch(frames)
        let all = bases(batch)
        #expect(TCPCoalescer.coalesce(batch, from: 3) == 2)
        #expect(batch.count == 4)
        for i in 0..<3 { #expect(frameBytes(batch, i) == frames[i] && batch.buffers[i].offloadLength == 0) }
        expectMerged(batch, 3, Array(segments[3..<6]))
        expectBuffersKept(batch, all)
        #expect(TCPCoalescer.coalesce(batch, from: 4) == 0)
        #expect(TCPCoalescer.coalesce(batch, from: -1) == 0)
        #expect(TCPCoalescer.coalesce(batch, from: 99) == 0)
        #expect(batch.count == 4)
    }

    @Test func limitsAreRespected() {
        // Buffers of 8 KiB (8064 bytes past the headroom): 66 + 5 * 1410 fits, 6 do not.
        let segments = stream(count: 12, size: 1410)
        expectGroups(segments, groups: [Array(0..<5), Array(5..<10), [10, 11]], bufferSize: 8192)
        // maxLength: two segments per frame.
        expectGroups(segments, groups: [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]], maxLength: 66 + 2 * 1410)
        // The IP length field: 1 + 64 KiB of segments does not fit one frame.
        let small = stream(count: 64, size: 1100)
        // 66 + 59 * 1100 = 64,966 <= 65,549; 60 would be 66,066.
        expectGroups(small, groups: [Array(0..<59), Array(59..<64)], maxLength: 1 << 20)
        // maxSegments: 64 by default.
        let tiny = stream(count: 64, size: 100)
        let batch = makeBatch(tiny.map(\.bytes))
        #expect(TCPCoalescer.coalesce(batch, maxSegments: 10) == 64 - 7)
        expectMerged(batch, 0, Array(tiny[0..<10]))
        expectMerged(batch, 6, Array(tiny[60..<64]))
    }

    @Test func randomAndTruncatedFramesNeverTrap() {
        var rng = SplitMix64(seed: 0x6a0)
        let segments = stream(count: 4, size: 60) + stream(count: 4, size: 60, ipv6: true)
        let templates = segments.map(\.bytes)
        // Every truncation, before, after and between good segments of its flow.
        for t in templates.indices {
            let template = templates[t]
            let flow = t < 4 ? Array(templates[0..<4]) : Array(templates[4..<8])
            for cut in 0...min(80, template.count) {
                let truncated = Array(template[0..<cut])
                for frames in [[truncated] + flow, flow + [truncated], [flow[0], truncated, flow[1], flow[2]]] {
                    let batch = makeBatch(frames)
                    let all = bases(batch)
                    let before = batch.count
                    let removed = TCPCoalescer.coalesce(batch)
                    #expect(batch.count == before - removed)
                    expectBuffersKept(batch, all)
                }
            }
        }
        // Random mutations of good frames, and random bytes behind an IP EtherType.
        for round in 0..<3000 {
            var frames: [[UInt8]] = []
            for _ in 0..<Int(rng.next() % 6 + 2) {
                var f = templates[Int(rng.next() % UInt64(templates.count))]
                if round % 3 == 0 {
                    f = (0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    if f.count >= 14 { f[12] = rng.next() & 1 == 0 ? 0x08 : 0x86; f[13] = f[12] == 0x08 ? 0x00 : 0xdd }
                } else {
                    for _ in 0..<Int(rng.next() % 4) where !f.isEmpty {
                        f[Int(rng.next() % UInt64(f.count))] = UInt8(truncatingIfNeeded: rng.next())
                    }
                    if rng.next() % 4 == 0 { f = Array(f[0..<Int(rng.next() % UInt64(f.count + 1))]) }
                }
                frames.append(f)
            }
            let batch = makeBatch(frames, capacity: 8)
            for i in 0..<batch.count where rng.next() % 4 == 0 {
                let b = batch.buffers + i
                for k in 0..<10 { (b.pointee.frame - 10).storeBytes(of: UInt8(truncatingIfNeeded: rng.next()), toByteOffset: k, as: UInt8.self) }
                b.pointee.offloadLength = 10
            }
            let all = bases(batch)
            let before = batch.count
            let removed = TCPCoalescer.coalesce(batch, from: Int(rng.next() % 3))
            #expect(batch.count == before - removed)
            expectBuffersKept(batch, all)
        }
    }

    @Test func coalescingAllocatesNothing() {
        // A batch of two runs and some frames that break them, refilled before every call.
        var segments = stream(count: 12, size: 1410)
        segments[5].flags = 0x18
        segments[8].corruptChecksum = true
        var frames = segments.map(\.bytes)
        frames.insert(plainFrame(), at: 3)
        frames += stream(count: 4, size: 1000, ipv6: true).map(\.bytes)
        let total = frames.reduce(0) { $0 + $1.count }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 8)
        defer { storage.deallocate() }
        var starts: [Int] = []
        var offset = 0
        for f in frames {
            starts.append(offset)
            f.withUnsafeBytes { storage.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: f.count) }
            offset += f.count
        }
        let lengths = frames.map(\.count)
        let batch = PacketBatch(capacity: 32)
        var removed = 0
        func round() {
            batch.reset()
            for i in 0..<starts.count {
                batch.append(UnsafeRawBufferPointer(start: storage + starts[i], count: lengths[i]))
            }
            removed &+= TCPCoalescer.coalesce(batch, from: 0)
        }
        for _ in 0..<10 { round() }
        removed = 0
        vswitch_malloc_counter_enable(1)
        let before = vswitch_malloc_count()
        for _ in 0..<1000 { round() }
        let allocations = vswitch_malloc_count() - before
        vswitch_malloc_counter_enable(0)
        #expect(allocations == 0)
        // Runs: 0-2 | frame | 3-5 (PSH) | 6-7 | 8 (bad) | 9-11 | 4 IPv6: 17 frames become 7.
        #expect(removed == 1000 * (frames.count - 7))
    }
}
