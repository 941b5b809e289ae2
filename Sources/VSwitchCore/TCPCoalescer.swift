import CChecksum
/// Userspace GRO: merges runs of consecutive TCP segments of one flow, adjacent in a batch, into
/// one superframe with a virtio-net header (NEEDS_CSUM + TSO), so a TAP opened with IFF_VNET_HDR
/// and TSO takes a whole run with one write instead of one write per segment.
///
/// What merges (conservative, after Linux's `inet_gro_receive`/`ipv6_gro_receive`/`tcp_gro_receive`):
///
///   * Ethernet II carrying IPv4 or IPv6 directly (no VLAN tag). The IP packet ends exactly at the
///     end of the frame (no link-layer padding).
///   * IPv4: IHL 5 (no options), header checksum valid, DF set, not a fragment (MF 0, offset 0),
///     protocol TCP. IPv6: next header TCP (no extension headers).
///   * TCP: flags exactly ACK, or ACK|PSH (which ends the run); reserved bits and AE clear; at
///     least one payload byte; data offset within the packet; options well formed (at most one
///     timestamp, 10 bytes long).
///   * Checksums the coalescer can vouch for: a frame with no virtio-net header (or an all-plain
///     one) has its TCP checksum verified (unless `verifyChecksums` is false); a frame whose header
///     says NEEDS_CSUM for exactly this TCP checksum field (nothing else) or DATA_VALID is trusted
///     as the kernel would. Any other header (odd offsets, unknown flags, GSO) keeps the frame out,
///     with one exception: a superframe as this coalescer writes them (NEEDS_CSUM, TCPV4 or TCPV6,
///     hdr_len and checksum offsets of this packet) whose payload is a whole number of its
///     gso_size may head a run, and takes the segments that continue it. So a run that arrives
///     in two pieces (a sender's superframe cut into two UDP GSO sends, say) still becomes one
///     frame, whichever call merged the first piece.
///
/// And against the frame before it in the run (frame i+1 continues frame i's run; no flow table):
///
///   * the same Ethernet header; IPv4: same source, destination, TOS and TTL; IPv6: same first
///     word (version, traffic class, flow label), hop limit, source and destination;
///   * the same ports, ACK number, window and TCP header length; options byte-identical except
///     the TSval of a timestamp option, which may only stay or grow (TSecr must be equal); the
///     merged frame keeps the first segment's options, so the receiver sees the earliest TSval
///     (Linux's `tcp_gro_receive` is stricter: it wants the options identical, TSval included,
///     which in practice still merges every segment sent within one timestamp tick);
///   * sequence number = previous sequence + previous payload length;
///   * every segment but the last carries exactly the first segment's payload length (the gso
///     size); a shorter segment, or one with PSH, is the last of its run;
///   * the result fits `maxLength`, the first buffer's capacity, the IP length field (65,535) and
///     `maxSegments`.
///
/// The merged frame is the first frame with the others' payloads appended in order: IPv4 total
/// length and header checksum (or IPv6 payload length) rewritten, PSH set if the last segment had
/// it, the TCP checksum field set to the folded pseudo-header sum (not complemented) for the new
/// TCP length, and a virtio-net header stored in the 10 bytes before the frame (`offloadLength`
/// 10): NEEDS_CSUM, TCPV4 or TCPV6, hdr_len = Ethernet + IP + TCP headers, gso_size = the first
/// segment's payload length, csum_start = the TCP header's offset, csum_offset = 16. A run of one
/// frame is left untouched (header or not).
///
/// The batch is compacted: kept frames stay in order in `buffers[first ..< count]`; the buffer
/// structs of absorbed frames are moved past `count`, so every buffer stays in the array exactly
/// once. Buffer memory never moves; only payload bytes are copied. Nothing allocates.
public enum TCPCoalescer {
    /// The largest merged Ethernet frame by default: an IPv4 packet of 65,535 bytes plus Ethernet.
    public static let defaultMaxLength = 65_535 + 14
    /// At most this many segments in one superframe by default (a bound in the spirit of GRO's,
    /// which stops a flow's superframe at a fixed number of fragments).
    public static let defaultMaxSegments = 64
    /// Bytes of the virtio-net header written in front of a merged frame.
    public static let virtioHeaderLength = 10

    /// Merges runs in `batch.buffers[first ..< batch.count]` as described above and returns the
    /// number of frames removed from the batch (`batch.count` is lowered by that much).
    @discardableResult
    public static func coalesce(_ batch: PacketBatch, from first: Int = 0, maxLength: Int = defaultMaxLength,
                                maxSegments: Int = defaultMaxSegments, verifyChecksums: Bool = true) -> Int {
        let count = batch.count
        guard first >= 0, first < count - 1, maxSegments >= 2 else { return 0 }
        let buffers = batch.buffers
        var write = first
        var read = first
        while read < count {
            let runLength = mergeRun(buffers, at: read, end: count, maxLength: maxLength, maxSegments: maxSegments,
                                     verifyChecksums: verifyChecksums)
            if write != read {
                let kept = buffers[read]
                buffers[read] = buffers[write]
                buffers[write] = kept
            }
            write += 1
            read += runLength
        }
        batch.count = write
        return count - write
    }

    // MARK: - One run

    /// Merges the frames after `buffers[start]` that continue its run into it and returns how many
    /// frames the run took (1: nothing merged, the frame untouched).
    @inline(__always)
    private static func mergeRun(_ buffers: UnsafeMutablePointer<PacketBuffer>, at start: Int, end: Int,
                                 maxLength: Int, maxSegments: Int, verifyChecksums: Bool) -> Int {
        guard start + 1 < end, let head = parse(buffers[start]) else { return 1 }
        if head.endsRun { return 1 }
        // A superframe merged before carries on only if no short segment ended it.
        if head.mergedSegmentSize > 0 && head.payloadLength % head.mergedSegmentSize != 0 { return 1 }
        let headBuffer = buffers + start
        guard headBuffer.pointee.offset >= virtioHeaderLength else { return 1 }
        // IPv4 total length (from the IP header) or IPv6 payload length (after the fixed header)
        // must fit 16 bits.
        let ipLimit = head.isIPv6 ? ethernetHeaderLength + 40 + 65_535 : ethernetHeaderLength + 65_535
        let frameLimit = min(maxLength, headBuffer.pointee.capacity - headBuffer.pointee.offset, ipLimit)
        let frame = headBuffer.pointee.frame
        let gsoSize = head.mergedSegmentSize > 0 ? head.mergedSegmentSize : head.payloadLength
        var length = headBuffer.pointee.length
        var previous = head
        var lastFlags = head.flags
        var taken = 1
        var segments = head.payloadLength / gsoSize
        var headVerified = head.trusted || !verifyChecksums
        while start + taken < end, segments < maxSegments {
            let candidateBuffer = buffers[start + taken]
            guard let next = parse(candidateBuffer), next.mergedSegmentSize == 0 else { break }
            let candidate = UnsafeRawPointer(candidateBuffer.frame)
            guard next.isIPv6 == head.isIPv6, next.headerLength == head.headerLength,
                  next.payloadLength <= gsoSize,
                  length + next.payloadLength <= frameLimit,
                  next.sequence == previous.sequence &+ UInt32(truncatingIfNeeded: previous.payloadLength),
                  sameFlow(UnsafeRawPointer(frame), candidate, head: head),
                  sameOptions(UnsafeRawPointer(frame), candidate, head: head, previous: previous, next: next)
            else { break }
            if !headVerified {
                guard checksumIsValid(UnsafeRawPointer(frame), head) else { return 1 }
                headVerified = true
            }
            if !next.trusted && verifyChecksums {
                // Copy and sum the payload in one pass; a bad checksum leaves the copy past
                // `length`, where nothing reads it.
                let payloadSum = vswitch_csum_copy(frame + length, candidate + next.payloadOffset, next.payloadLength, 0)
                guard checksumIsValid(candidate, next, payloadSum: payloadSum) else { break }
            } else {
                (frame + length).copyMemory(from: candidate + next.payloadOffset, byteCount: next.payloadLength)
            }
            length += next.payloadLength
            lastFlags = next.flags
            previous = next
            taken += 1
            segments += 1
            if next.endsRun || next.payloadLength < gsoSize { break }
        }
        guard taken > 1 else { return 1 }

        headBuffer.pointee.length = length
        let l3 = UnsafeMutableRawPointer(frame + ethernetHeaderLength)
        let tcp = frame + head.transportOffset
        if head.isIPv6 {
            store16(UInt16(truncatingIfNeeded: length - head.transportOffset), l3 + 4)
        } else {
            store16(UInt16(truncatingIfNeeded: length - ethernetHeaderLength), l3 + 2)
            store16(0, l3 + 10)
            store16(~fold(sum(UnsafeRawPointer(l3), 20)), l3 + 10)
        }
        tcp.storeBytes(of: lastFlags, toByteOffset: 13, as: UInt8.self)
        let pseudo = pseudoHeaderSum(UnsafeRawPointer(frame), head, transportLength: length - head.transportOffset)
        store16(fold(pseudo), tcp + 16)

        let vnet = frame - virtioHeaderLength
        vnet.storeBytes(of: 1, toByteOffset: 0, as: UInt8.self)                        // NEEDS_CSUM
        vnet.storeBytes(of: head.isIPv6 ? 4 : 1, toByteOffset: 1, as: UInt8.self)      // TCPV6 / TCPV4
        vnet.storeBytes(of: UInt16(truncatingIfNeeded: head.payloadOffset).littleEndian, toByteOffset: 2, as: UInt16.self)
        vnet.storeBytes(of: UInt16(truncatingIfNeeded: gsoSize).littleEndian, toByteOffset: 4, as: UInt16.self)
        vnet.storeBytes(of: UInt16(truncatingIfNeeded: head.transportOffset).littleEndian, toByteOffset: 6, as: UInt16.self)
        vnet.storeBytes(of: UInt16(16).littleEndian, toByteOffset: 8, as: UInt16.self)
        headBuffer.pointee.offloadLength = virtioHeaderLength
        return taken
    }

    // MARK: - Parsing one frame

    static let ethernetHeaderLength = 14
    static let etherTypeIPv4: UInt16 = 0x0800
    static let etherTypeIPv6: UInt16 = 0x86DD
    static let tcpProtocol: UInt8 = 6
    static let flagACK: UInt8 = 0x10
    static let flagPSH: UInt8 = 0x08

    /// What `parse` found out about a frame that may take part in a merge.
    struct Segment {
        var isIPv6: Bool
        /// Offset of the TCP header in the frame.
        var transportOffset: Int
        /// TCP header length (20 ... 60).
        var headerLength: Int
        var payloadLength: Int
        var sequence: UInt32
        var flags: UInt8
        /// Offset of a timestamp option's TSval in the frame, or -1.
        var timestampOffset: Int
        /// That TSval (0 without a timestamp option).
        var timestampValue: UInt32
        /// The checksum need not (cannot) be verified: NEEDS_CSUM or DATA_VALID.
        var trusted: Bool
        /// A superframe merged earlier: its segments' payload length (gso_size); 0 for a segment.
        var mergedSegmentSize: Int = 0

        var payloadOffset: Int { transportOffset + headerLength }
        var endsRun: Bool { flags != flagACK }
    }

    /// The frame as a mergeable TCP segment, or nil if it must not take part in a merge.
    @inline(__always)
    static func parse(_ buffer: PacketBuffer) -> Segment? {
        let length = buffer.length
        guard length >= ethernetHeaderLength + 40, buffer.offset >= 0, buffer.offset <= buffer.capacity,
              length <= buffer.capacity - buffer.offset else { return nil }
        let frame = UnsafeRawPointer(buffer.frame)
        let isIPv6: Bool
        let transportOffset: Int
        switch load16(frame + 12) {
        case etherTypeIPv4:
            let ip = frame + ethernetHeaderLength
            guard ip.load(as: UInt8.self) == 0x45,                               // version 4, IHL 5
                  Int(load16(ip + 2)) == length - ethernetHeaderLength,           // no padding
                  load16(ip + 6) == 0x4000,                                       // DF; MF 0, offset 0
                  ip.load(fromByteOffset: 9, as: UInt8.self) == tcpProtocol,
                  fold(sum(ip, 20)) == 0xffff                                     // header checksum valid
            else { return nil }
            isIPv6 = false
            transportOffset = ethernetHeaderLength + 20
        case etherTypeIPv6:
            let ip = frame + ethernetHeaderLength
            guard length >= ethernetHeaderLength + 40 + 20,
                  ip.load(as: UInt8.self) >> 4 == 6,
                  Int(load16(ip + 4)) == length - ethernetHeaderLength - 40,
                  ip.load(fromByteOffset: 6, as: UInt8.self) == tcpProtocol
            else { return nil }
            isIPv6 = true
            transportOffset = ethernetHeaderLength + 40
        default:
            return nil
        }
        let tcp = frame + transportOffset
        let headerLength = Int(tcp.load(fromByteOffset: 12, as: UInt8.self) >> 4) * 4
        let flags = tcp.load(fromByteOffset: 13, as: UInt8.self)
        guard headerLength >= 20, transportOffset + headerLength < length,         // at least one payload byte
              flags == flagACK || flags == flagACK | flagPSH,
              tcp.load(fromByteOffset: 12, as: UInt8.self) & 0x0F == 0              // reserved bits (and AE) clear
        else { return nil }

        // Offload metadata: none, or a header this coalescer understands.
        var trusted = false
        var mergedSegmentSize = 0
        if buffer.offloadLength == virtioHeaderLength {
            guard buffer.offset >= virtioHeaderLength else { return nil }
            let vnet = frame - virtioHeaderLength
            let vflags = vnet.load(as: UInt8.self)
            let gsoType = vnet.load(fromByteOffset: 1, as: UInt8.self)
            guard vflags & ~3 == 0 else { return nil }
            if vflags & 1 != 0 {
                let csumStart = UInt16(littleEndian: vnet.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
                let csumOffset = UInt16(littleEndian: vnet.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
                guard Int(csumStart) == transportOffset, csumOffset == 16 else { return nil }
            }
            if gsoType != 0 {
                // Only a superframe as `mergeRun` writes them: NEEDS_CSUM, TCPV4/TCPV6 matching
                // the packet, hdr_len at the payload, a gso_size no larger than the payload.
                let hdrLen = Int(UInt16(littleEndian: vnet.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
                let size = Int(UInt16(littleEndian: vnet.loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
                guard vflags == 1, gsoType == (isIPv6 ? 4 : 1), hdrLen == transportOffset + headerLength,
                      size > 0, size <= length - hdrLen
                else { return nil }
                mergedSegmentSize = size
            }
            trusted = vflags != 0
        } else if buffer.offloadLength != 0 {
            return nil
        }

        // Options: well formed; remember where a timestamp's TSval sits.
        var timestampOffset = -1
        var option = transportOffset + 20
        let optionsEnd = transportOffset + headerLength
        while option < optionsEnd {
            let kind = frame.load(fromByteOffset: option, as: UInt8.self)
            if kind == 0 { break }                                                 // end of options
            if kind == 1 { option += 1; continue }                                 // NOP
            guard option + 1 < optionsEnd else { return nil }
            let optionLength = Int(frame.load(fromByteOffset: option + 1, as: UInt8.self))
            guard optionLength >= 2, option + optionLength <= optionsEnd else { return nil }
            if kind == 8 {
                guard optionLength == 10, timestampOffset < 0 else { return nil }
                timestampOffset = option + 2
            }
            option += optionLength
        }

        return Segment(isIPv6: isIPv6, transportOffset: transportOffset, headerLength: headerLength,
                       payloadLength: length - transportOffset - headerLength,
                       sequence: load32(tcp + 4), flags: flags, timestampOffset: timestampOffset,
                       timestampValue: timestampOffset >= 0 ? load32(frame + timestampOffset) : 0, trusted: trusted,
                       mergedSegmentSize: mergedSegmentSize)
    }

    // MARK: - Comparing two frames

    /// Same Ethernet header, same IP fields that must not differ, same ports, ACK and window.
    @inline(__always)
    static func sameFlow(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, head: Segment) -> Bool {
        // Ethernet: 12 address bytes (the EtherType matched in parse, with isIPv6).
        guard equal(a, b, 0, 8), equal32(a, b, 8) else { return false }
        let l3 = ethernetHeaderLength
        if head.isIPv6 {
            // First word (version, traffic class, flow label), next header + hop limit, addresses.
            guard equal32(a, b, l3), equal16(a, b, l3 + 6), equal(a, b, l3 + 8, 32) else { return false }
        } else {
            // TOS; TTL + protocol; addresses.
            guard a.load(fromByteOffset: l3 + 1, as: UInt8.self) == b.load(fromByteOffset: l3 + 1, as: UInt8.self),
                  equal16(a, b, l3 + 8), equal(a, b, l3 + 12, 8) else { return false }
        }
        let t = head.transportOffset
        // Ports; ACK number; data offset + flags are compared by the caller (length) and parse
        // (flags); window.
        return equal32(a, b, t) && equal32(a, b, t + 8) && equal16(a, b, t + 14)
    }

    /// Options byte-identical, except a timestamp's TSval, which may not go backwards.
    @inline(__always)
    static func sameOptions(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, head: Segment, previous: Segment, next: Segment) -> Bool {
        let start = head.transportOffset + 20
        let end = head.payloadOffset
        let ts = head.timestampOffset
        guard next.timestampOffset == ts else { return false }
        var i = start
        while i < end {
            if i == ts {
                i += 4
                continue
            }
            guard a.load(fromByteOffset: i, as: UInt8.self) == b.load(fromByteOffset: i, as: UInt8.self) else { return false }
            i += 1
        }
        // TSval may stay or grow (serial arithmetic) from one segment to the next; TSecr is equal.
        if ts >= 0 && Int32(bitPattern: next.timestampValue &- previous.timestampValue) < 0 { return false }
        return true
    }

    // MARK: - Checksums

    /// As `checksumIsValid(_:_:)`, with the payload's sum already taken (by `vswitch_csum_copy`).
    @inline(__always)
    static func checksumIsValid(_ frame: UnsafeRawPointer, _ segment: Segment, payloadSum: UInt64) -> Bool {
        let transportLength = segment.headerLength + segment.payloadLength
        var total = pseudoHeaderSum(frame, segment, transportLength: transportLength)
        total &+= sum(frame + segment.transportOffset, segment.headerLength)
        total &+= UInt64(vswitch_csum_fold(payloadSum))
        return fold(total) == 0xffff
    }

    /// True if the TCP checksum of the segment (pseudo-header, header, payload) is correct.
    @inline(__always)
    static func checksumIsValid(_ frame: UnsafeRawPointer, _ segment: Segment) -> Bool {
        let transportLength = segment.headerLength + segment.payloadLength
        var total = pseudoHeaderSum(frame, segment, transportLength: transportLength)
        total &+= UInt64(fold(sum(frame + segment.transportOffset, transportLength)))
        return fold(total) == 0xffff
    }

    /// The TCP pseudo-header (addresses, protocol, TCP length), summed as big-endian words, unfolded.
    @inline(__always)
    static func pseudoHeaderSum(_ frame: UnsafeRawPointer, _ segment: Segment, transportLength: Int) -> UInt64 {
        let addresses = segment.isIPv6 ? sum(frame + ethernetHeaderLength + 8, 32) : sum(frame + ethernetHeaderLength + 12, 8)
        return UInt64(fold(addresses)) &+ UInt64(tcpProtocol) &+ UInt64(transportLength & 0xffff) &+ UInt64(transportLength >> 16)
    }

    /// The one's complement sum of `count` bytes as big-endian 16-bit words (an odd last byte is the
    /// high half of a word), unfolded. Words are summed in host order, 8 bytes at a time, and
    /// swapped at the end (RFC 1071 2(B): the sum is byte-order independent).
    @inline(__always)
    static func sum(_ p: UnsafeRawPointer, _ count: Int) -> UInt64 {
        UInt64(vswitch_csum_fold(vswitch_csum_partial(p, count, 0)))
    }

    /// Folds a sum to 16 bits with end-around carry (0 only for a sum of 0).
    @inline(__always)
    static func fold(_ value: UInt64) -> UInt16 {
        var v = value
        while v > 0xffff { v = (v & 0xffff) &+ (v >> 16) }
        return UInt16(truncatingIfNeeded: v)
    }

    // MARK: - Loads and stores

    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> UInt16 { UInt16(bigEndian: p.loadUnaligned(as: UInt16.self)) }
    @inline(__always) static func load32(_ p: UnsafeRawPointer) -> UInt32 { UInt32(bigEndian: p.loadUnaligned(as: UInt32.self)) }
    @inline(__always) static func store16(_ v: UInt16, _ p: UnsafeMutableRawPointer) { p.storeBytes(of: v.bigEndian, as: UInt16.self) }

    @inline(__always) static func equal16(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ at: Int) -> Bool {
        a.loadUnaligned(fromByteOffset: at, as: UInt16.self) == b.loadUnaligned(fromByteOffset: at, as: UInt16.self)
    }
    @inline(__always) static func equal32(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ at: Int) -> Bool {
        a.loadUnaligned(fromByteOffset: at, as: UInt32.self) == b.loadUnaligned(fromByteOffset: at, as: UInt32.self)
    }
    /// `count` bytes from `at`, `count` a multiple of 8.
    @inline(__always) static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ at: Int, _ count: Int) -> Bool {
        var i = at
        while i < at + count {
            guard a.loadUnaligned(fromByteOffset: i, as: UInt64.self) == b.loadUnaligned(fromByteOffset: i, as: UInt64.self) else { return false }
            i += 8
        }
        return true
    }
}
