/// Userspace GRO's header rules, the inverse of `GSOSegmenter`: may a TCP segment join the run of
/// segments before it, and what does the superframe they make say in its headers. After Linux's
/// `inet_gro_receive`/`ipv6_gro_receive`/`tcp_gro_receive` (the rules) and `tcp_gro_complete`
/// (the header). Walking a batch and copying payloads is the merging port's job (`TCPCoalescer`,
/// beside the tunnel port that uses it); this holds only what the bytes must say.
///
/// What may take part (conservative):
///
///   * Ethernet II carrying IPv4 or IPv6 directly (no VLAN tag). The IP packet ends exactly at the
///     end of the frame (no link-layer padding).
///   * IPv4: IHL 5 (no options), header checksum valid, DF set, not a fragment (MF 0, offset 0),
///     protocol TCP. IPv6: next header TCP (no extension headers).
///   * TCP: flags exactly ACK, or ACK|PSH (which ends the run); reserved bits and AE clear; at
///     least one payload byte; data offset within the packet; options well formed (at most one
///     timestamp, 10 bytes long).
///   * Checksums the merger can vouch for: a frame with no virtio-net header (or an all-plain one)
///     has its TCP checksum verified by the merger (`checksumIsValid`) unless it trusts its source;
///     a header that says NEEDS_CSUM for exactly this TCP checksum field (nothing else) or
///     DATA_VALID is trusted, as the kernel would. Any other header (odd offsets, unknown flags,
///     GSO) keeps the frame out, with one exception: a superframe as `completeMerge` describes them
///     (NEEDS_CSUM, TCPV4 or TCPV6, hdr_len and checksum offsets of this packet) may head a run
///     if its payload is a whole number of its gso_size, and takes the segments that continue it.
///     So a run that arrives in two pieces (a sender's superframe cut into two UDP GSO sends, say)
///     still becomes one frame, whichever call merged the first piece.
///
/// And against the segment before it in the run (`continues`; no flow table):
///
///   * the same Ethernet header; IPv4: same source, destination, TOS and TTL; IPv6: same first
///     word (version, traffic class, flow label), hop limit, source and destination;
///   * the same ports, ACK number, window and TCP header length; options byte-identical except
///     the TSval of a timestamp option, which may only stay or grow (TSecr must be equal); the
///     merged frame keeps the first segment's options, so the receiver sees the earliest TSval
///     (Linux's `tcp_gro_receive` is stricter: it wants the options identical, TSval included,
///     which in practice still merges every segment sent within one timestamp tick);
///   * sequence number = previous sequence + previous payload length;
///   * every segment but the last carries exactly the run's segment size (the first segment's
///     payload length); a shorter segment, or one with PSH, is the last of its run (`endsRun`).
///
/// The merged frame is the first frame with the others' payloads appended in order; then
/// `completeMerge` rewrites the IPv4 total length and header checksum (or the IPv6 payload
/// length), sets PSH if the last segment had it, stores the folded pseudo-header sum (not
/// complemented) for the new TCP length in the TCP checksum field, and returns the virtio-net
/// header for it: NEEDS_CSUM, TCPV4 or TCPV6, hdr_len = Ethernet + IP + TCP headers, gso_size = the
/// segment size, csum_start = the TCP header's offset, csum_offset = 16.
///
/// The numbers. Every check reads the headers once (~70 bytes); the work that matters is the
/// payload copy, fused with the checksum (`InternetChecksum.copySumming`), ~1,448 bytes per segment.
/// Nothing here allocates or writes outside the frame it is given.
public enum TCPSegmentMerge {
    /// A frame that may take part in a merge, with what the rules need from it, read once. A view:
    /// it borrows the frame's bytes and is valid only while they are.
    @frozen
    public struct Segment {
        /// The frame (Ethernet header first), exactly as long as its IP packet.
        public let frame: UnsafeRawBufferPointer
        public let isIPv6: Bool
        /// Offset of the TCP header in the frame.
        public let transportOffset: Int
        /// TCP header length (20 ... 60).
        public let headerLength: Int
        public let payloadLength: Int
        public let sequence: UInt32
        /// The TCP flags byte: ACK, or ACK|PSH.
        public let flags: UInt8
        /// True if no segment may follow this one in its run: PSH is set.
        public let endsRun: Bool
        /// Offset of a timestamp option's TSval in the frame, or -1.
        public let timestampOffset: Int
        /// That TSval (0 without a timestamp option).
        public let timestampValue: UInt32
        /// The checksum need not (cannot) be verified: NEEDS_CSUM or DATA_VALID.
        public let trusted: Bool
        /// A superframe merged earlier: its segments' payload length (gso_size); 0 for a segment.
        public let mergedSegmentSize: Int

        /// Offset of the payload in the frame.
        @inlinable public var payloadOffset: Int { transportOffset + headerLength }

        /// The payload length of each segment of a run this frame heads: its own, or the
        /// gso_size of a superframe merged before.
        @inlinable public var segmentSize: Int { mergedSegmentSize > 0 ? mergedSegmentSize : payloadLength }

        /// The number of segments this frame already holds (1 for a segment).
        @inlinable public var segmentCount: Int { payloadLength / segmentSize }

        /// True if segments may be appended to this frame: it is not the last of its run, and, if
        /// a superframe, no short segment ended it.
        @inlinable public var canHeadRun: Bool {
            !endsRun && (mergedSegmentSize == 0 || payloadLength % mergedSegmentSize == 0)
        }

        /// The longest frame a run headed by this one may grow to: the IPv4 total length or IPv6
        /// payload length must fit 16 bits.
        @inlinable public var maximumMergedLength: Int {
            isIPv6 ? EthernetFrame.headerLength + IPv6Header.headerLength + 65_535 : EthernetFrame.headerLength + 65_535
        }

        /// The frame as a mergeable TCP segment, or nil if it must not take part in a merge.
        /// `offload` is the virtio-net header in front of the frame, if it has one.
        public init?(validating frame: UnsafeRawBufferPointer, offload: VirtioNetHeader?) {
            typealias TCPField = TransportLayout.TCPField
            guard let ethernet = EthernetFrame(validating: frame) else { return nil }
            let network = frame.slice(EthernetFrame.headerLength..<frame.count)
            let transportOffset: Int
            switch ethernet.etherType {
            case .ipv4:
                guard let ip = IPv4Header(validating: network),
                      ip.headerLength == IPv4Header.minimumHeaderLength,          // no options
                      ip.totalLength == network.count,                            // no padding
                      ip.flags == 0b010, ip.fragmentByteOffset == 0,              // DF; MF 0, offset 0
                      ip.protocol == .tcp,
                      ip.verifyChecksum()
                else { return nil }
                isIPv6 = false
                transportOffset = EthernetFrame.headerLength + IPv4Header.minimumHeaderLength
            case .ipv6:
                guard let ip = IPv6Header(validating: network),
                      ip.payloadLength == network.count - IPv6Header.headerLength,
                      ip.nextHeader == .tcp
                else { return nil }
                isIPv6 = true
                transportOffset = EthernetFrame.headerLength + IPv6Header.headerLength
            default:
                return nil
            }
            guard frame.count >= transportOffset + TCPField.minimumHeaderLength else { return nil }
            let dataOffset = frame[transportOffset + TCPField.dataOffset]
            let headerLength = Int(dataOffset >> 4) * 4
            let flags = frame[transportOffset + TCPField.flags]
            guard headerLength >= TCPField.minimumHeaderLength,
                  transportOffset + headerLength < frame.count,                   // at least one payload byte
                  flags == GSOSegmenter.tcpACK || flags == GSOSegmenter.tcpACK | GSOSegmenter.tcpPSH,
                  dataOffset & 0x0f == 0                                          // reserved bits (and AE) clear
            else { return nil }
            let payloadOffset = transportOffset + headerLength

            // Offload metadata: none, or a header the rules understand.
            var trusted = false
            var mergedSegmentSize = 0
            if let offload {
                guard offload.flags.isSubset(of: [.needsChecksum, .dataValid]) else { return nil }
                if offload.flags.contains(.needsChecksum) {
                    guard Int(offload.checksumStart) == transportOffset,
                          offload.checksumOffset == VirtioNetHeader.tcpChecksumOffset
                    else { return nil }
                }
                if offload.gsoType != .none {
                    // Only a superframe as `completeMerge` describes them: NEEDS_CSUM, TCPV4/TCPV6
                    // matching the packet, hdr_len at the payload, a gso_size no larger than the payload.
                    let size = Int(offload.gsoSize)
                    guard offload.flags == .needsChecksum, offload.gsoType == (isIPv6 ? .tcpv6 : .tcpv4),
                          Int(offload.segmentHeaderLength) == payloadOffset,
                          size > 0, size <= frame.count - payloadOffset
                    else { return nil }
                    mergedSegmentSize = size
                }
                trusted = !offload.flags.isEmpty
            }

            // Options: well formed; remember where a timestamp's TSval sits.
            var timestampOffset = -1
            var option = transportOffset + TCPField.minimumHeaderLength
            while option < payloadOffset {
                let kind = frame[option]
                if kind == TCPField.endOfOptions { break }
                if kind == TCPField.noOperation { option += 1; continue }
                guard option + 1 < payloadOffset else { return nil }
                let optionLength = Int(frame[option + 1])
                guard optionLength >= 2, option + optionLength <= payloadOffset else { return nil }
                if kind == TCPField.timestampKind {
                    guard optionLength == TCPField.timestampLength, timestampOffset < 0 else { return nil }
                    timestampOffset = option + 2
                }
                option += optionLength
            }

            self.frame = frame
            self.transportOffset = transportOffset
            self.headerLength = headerLength
            self.payloadLength = frame.count - payloadOffset
            self.sequence = frame.loadBigEndian(fromByteOffset: transportOffset + TCPField.sequenceNumber.lowerBound, as: UInt32.self)
            self.flags = flags
            self.endsRun = flags != GSOSegmenter.tcpACK
            self.timestampOffset = timestampOffset
            self.timestampValue = timestampOffset >= 0 ? frame.loadBigEndian(fromByteOffset: timestampOffset, as: UInt32.self) : 0
            self.trusted = trusted
            self.mergedSegmentSize = mergedSegmentSize
        }

        /// Where the headers sit, for the pseudo-header sum.
        var layout: TransportLayout {
            TransportLayout(networkOffset: EthernetFrame.headerLength, isIPv6: isIPv6, transportOffset: transportOffset,
                            transportProtocol: .tcp, transportHeaderLength: headerLength, packetEnd: frame.count)
        }
    }

    // MARK: - Comparing two segments

    /// True if `next` may be appended to the run that `head` began and `previous` (maybe `head`
    /// itself) last extended: a single segment (not a superframe) of the same flow, with the same
    /// header lengths and options, in sequence, and no larger than the run's segment size.
    /// (Whether it fits the merged frame's buffer is the caller's to check.)
    public static func continues(_ next: Segment, after previous: Segment, head: Segment) -> Bool {
        next.mergedSegmentSize == 0
            && next.isIPv6 == head.isIPv6 && next.headerLength == head.headerLength
            && next.payloadLength <= head.segmentSize
            && next.sequence == previous.sequence &+ UInt32(truncatingIfNeeded: previous.payloadLength)
            && sameFlow(head, next)
            && sameOptions(head, next, previous: previous)
    }

    /// True if nothing may follow `segment`, appended to the run `head` began: it has PSH, or it is
    /// shorter than the run's segment size.
    @inlinable
    public static func endsRun(_ segment: Segment, head: Segment) -> Bool {
        segment.endsRun || segment.payloadLength < head.segmentSize
    }

    /// Same Ethernet header, same IP fields that must not differ, same ports, ACK and window.
    @inline(__always)
    static func sameFlow(_ a: Segment, _ b: Segment) -> Bool {
        let x = a.frame, y = b.frame
        typealias Ethernet = EthernetFrame.Field
        // The EtherType matched with isIPv6.
        guard x.loadMACAddress(fromByteOffset: Ethernet.destination.lowerBound) == y.loadMACAddress(fromByteOffset: Ethernet.destination.lowerBound),
              x.loadMACAddress(fromByteOffset: Ethernet.source.lowerBound) == y.loadMACAddress(fromByteOffset: Ethernet.source.lowerBound)
        else { return false }
        let ip = EthernetFrame.headerLength
        if a.isIPv6 {
            typealias Field = IPv6Header.Field
            // First word (version, traffic class, flow label), next header + hop limit, addresses.
            guard same(UInt32.self, x, y, ip + Field.versionClassAndFlow.lowerBound),
                  x[ip + Field.hopLimit] == y[ip + Field.hopLimit],
                  same(UInt64.self, x, y, ip + Field.source.lowerBound), same(UInt64.self, x, y, ip + Field.source.lowerBound + 8),
                  same(UInt64.self, x, y, ip + Field.destination.lowerBound),
                  same(UInt64.self, x, y, ip + Field.destination.lowerBound + 8)
            else { return false }
        } else {
            typealias Field = IPv4Header.Field
            // TOS; TTL; addresses (adjacent); the protocol is TCP in both.
            guard x[ip + Field.dscpAndECN] == y[ip + Field.dscpAndECN], x[ip + Field.timeToLive] == y[ip + Field.timeToLive],
                  same(UInt64.self, x, y, ip + Field.source.lowerBound)
            else { return false }
        }
        typealias TCP = TransportLayout.TCPField
        let t = a.transportOffset
        // Ports; ACK number; window. Data offset and flags were compared as lengths and flags.
        return same(UInt32.self, x, y, t + TCP.ports.lowerBound) && same(UInt32.self, x, y, t + TCP.acknowledgmentNumber.lowerBound)
            && same(UInt16.self, x, y, t + TCP.window.lowerBound)
    }

    /// Options byte-identical, except a timestamp's TSval, which may not go backwards.
    @inline(__always)
    static func sameOptions(_ head: Segment, _ next: Segment, previous: Segment) -> Bool {
        let ts = head.timestampOffset
        guard next.timestampOffset == ts else { return false }
        let x = head.frame, y = next.frame
        var i = head.transportOffset + TransportLayout.TCPField.minimumHeaderLength
        let end = head.payloadOffset
        while i < end {
            if i == ts {
                i += 4
                continue
            }
            guard x[i] == y[i] else { return false }
            i += 1
        }
        // TSval may stay or grow (serial arithmetic) from one segment to the next; TSecr is equal.
        if ts >= 0 && Int32(bitPattern: next.timestampValue &- previous.timestampValue) < 0 { return false }
        return true
    }

    /// True if the `T`-sized field at `offset` holds the same bytes in both frames.
    @inline(__always)
    static func same<T: FixedWidthInteger>(_: T.Type, _ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer, _ offset: Int) -> Bool {
        x.loadUnaligned(fromByteOffset: offset, as: T.self) == y.loadUnaligned(fromByteOffset: offset, as: T.self)
    }

    // MARK: - Checksums

    /// True if the TCP checksum of `segment` (pseudo-header, header, payload) is correct.
    public static func checksumIsValid(_ segment: Segment) -> Bool {
        var sum = segment.layout.pseudoHeaderSum(segment.frame, transportLength: segment.headerLength + segment.payloadLength)
        sum.add(segment.frame.slice(segment.transportOffset..<segment.frame.count))
        return sum.value == 0
    }

    /// As `checksumIsValid(_:)`, with the payload's sum already taken (by
    /// `InternetChecksum.copySumming`, while copying it into the merged frame).
    public static func checksumIsValid(_ segment: Segment, payloadSum: UInt64) -> Bool {
        var sum = segment.layout.pseudoHeaderSum(segment.frame, transportLength: segment.headerLength + segment.payloadLength)
        sum.add(segment.frame.slice(segment.transportOffset..<segment.payloadOffset))
        sum.add(summed: payloadSum)
        return sum.value == 0
    }

    // MARK: - The merged frame's headers

    /// Rewrites the headers of `frame`, the frame of `head` with the payloads of the segments
    /// appended to it (now `frame.count` bytes), to describe the merged frame: IP length (and IPv4
    /// header checksum), TCP flags (`lastFlags`: PSH if the last segment had it), the TCP checksum
    /// field set to the folded pseudo-header sum. Returns the virtio-net header to store in front
    /// of it.
    public static func completeMerge(_ frame: UnsafeMutableRawBufferPointer, head: Segment, lastFlags: UInt8) -> VirtioNetHeader {
        let ip = EthernetFrame.headerLength
        let transport = head.transportOffset
        let transportLength = frame.count - transport
        if head.isIPv6 {
            frame.storeBigEndian(UInt16(truncatingIfNeeded: transportLength), toByteOffset: ip + IPv6Header.Field.payloadLength.lowerBound)
        } else {
            typealias Field = IPv4Header.Field
            frame.storeBigEndian(UInt16(truncatingIfNeeded: frame.count - ip), toByteOffset: ip + Field.totalLength.lowerBound)
            frame.storeBigEndian(UInt16(0), toByteOffset: ip + Field.checksum.lowerBound)
            let checksum = InternetChecksum.compute(UnsafeRawBufferPointer(frame).slice(ip..<transport))
            frame.storeBigEndian(checksum, toByteOffset: ip + Field.checksum.lowerBound)
        }
        frame[transport + TransportLayout.TCPField.flags] = lastFlags
        let pseudo = head.layout.pseudoHeaderSum(UnsafeRawBufferPointer(frame), transportLength: transportLength)
        frame.storeBigEndian(~pseudo.value, toByteOffset: transport + TransportLayout.TCPField.checksum.lowerBound)
        return VirtioNetHeader(flags: .needsChecksum, gsoType: head.isIPv6 ? .tcpv6 : .tcpv4,
                               segmentHeaderLength: UInt16(truncatingIfNeeded: head.payloadOffset),
                               gsoSize: UInt16(truncatingIfNeeded: head.segmentSize),
                               checksumStart: UInt16(truncatingIfNeeded: transport),
                               checksumOffset: VirtioNetHeader.tcpChecksumOffset)
    }
}
