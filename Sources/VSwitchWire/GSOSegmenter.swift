/// Software segmentation (GSO): cuts a superframe that a TAP handed over with a virtio-net header
/// into the frames the kernel would have put on the wire, for a port that speaks no offloads
/// (pcap, a tunnel, an in-memory port).
///
/// What each segment gets, as Linux's `tcp_gso_segment`, `__udp_gso_segment`, `inet_gso_segment`
/// and `ipv6_gso_segment` do it:
///
///   * a copy of the Ethernet header (and VLAN tags), IP header (IPv4 options included) and TCP or
///     UDP header, then the next `gsoSize` payload bytes (the last segment gets the rest);
///   * IPv4: total length of the segment, identification incremented per segment (the first keeps
///     the superframe's), header checksum recomputed. IPv6: payload length of the segment;
///   * TCP: sequence number advanced by the payload before it; FIN and PSH only on the last
///     segment, CWR only on the first; the checksum computed in full over pseudo-header, header
///     and payload. UDP (`udpL4`): length and checksum of the segment (a computed 0 becomes 0xffff).
///
/// A superframe whose payload fits one segment comes out as one frame with its checksum done, as it
/// does from the kernel. A frame with `needsChecksum` and no GSO comes out with its checksum
/// completed; a plain frame (no header, or one with nothing to do) is handed over as it is.
///
/// Nothing allocates: the frame is read, never written, and each segment is built in `scratch`,
/// memory the caller owns, then handed to `body`, which must be done with it (send it, copy it)
/// before returning, as the next segment overwrites it. A scratch as large as the frame always
/// suffices. Every length is checked against the frame before it is used; hostile input comes back
/// as a `Failure`, never a trap.
///
/// The numbers. A 64 KiB superframe with an MSS of 1448 makes 46 segments; the work per segment is a
/// copy of ~70 header bytes and up to `gsoSize` payload bytes, plus one pass over them for the
/// checksum. `gsoSize` is not bounded from below beyond 1, so a hostile header can ask for up to
/// 65,535 segments of one byte each: bounded, but the caller may want to refuse tiny sizes.
public enum GSOSegmenter {
    /// Why a frame could not be segmented or completed: one drop reason each.
    public enum Failure: Error, Hashable, Sendable {
        /// Shorter than the Ethernet header or a VLAN tag it announces.
        case truncatedFrame
        /// Not IPv4 or IPv6 after at most two VLAN tags.
        case unsupportedNetworkProtocol
        /// An IPv4 or IPv6 header inconsistent with the frame: version, header length, or a length
        /// field reaching past the end.
        case malformedIPHeader
        /// An IPv4 fragment (MF set or offset not 0).
        case ipv4Fragment
        /// Neither TCP nor UDP right after the IP header (IPv6 extension headers included).
        case unsupportedTransport
        /// A TCP header shorter than 20 bytes or longer than the packet, or a UDP header cut short.
        case malformedTransportHeader
        /// `gsoType` names a protocol the frame does not carry (TCPV4 on an IPv6 frame, say).
        case gsoTypeMismatch
        /// `gsoType` is UFO (deprecated), or a value we do not know.
        case unsupportedGSOType
        /// `gsoSize` is 0 on a superframe.
        case zeroSegmentSize
        /// `hdr_len` reaches past the end of the frame.
        case headerLengthBeyondFrame
        /// The checksum field (`csum_start + csum_offset`) lies outside the frame, or, on a
        /// superframe, is not the TCP/UDP checksum of the packet.
        case invalidChecksumOffsets
        /// `scratch` cannot hold the largest segment.
        case scratchTooSmall
    }

    /// Hands the frames that `frame` with `header` makes on the wire to `body`, in order, each as
    /// bytes valid only until `body` returns. `body` returns false to stop early (a full transmit
    /// queue, say); the remaining segments are then not built.
    ///
    /// - `header` nil or plain (no `needsChecksum`, no GSO): `body` gets `frame` itself.
    /// - `needsChecksum` without GSO: `body` gets a copy in `scratch` with the checksum completed.
    /// - GSO TCPV4, TCPV6 or UDP_L4: `body` gets each segment, built in `scratch`.
    ///
    /// `scratch` must not overlap `frame`. Any header, even a plain one, whose `segmentHeaderLength`
    /// reaches past the frame is refused, as the kernel's TAP driver does.
    ///
    /// Returns the number of frames `frame` makes (1 unless segmented), whether or not `body`
    /// stopped early, or the failure; on failure `body` was not called.
    ///
    /// `placement`, for GSO segments: given a segment's length, where to build it instead of
    /// `scratch` (so a caller can lay segments out end to end where they will be sent from, with
    /// no second copy); nil stops the segmentation there (as `body` returning false does).
    public static func forEachSegment(
        of frame: UnsafeRawBufferPointer,
        header: VirtioNetHeader?,
        scratch: UnsafeMutableRawBufferPointer,
        placement: (Int) -> UnsafeMutableRawPointer? = { _ in nil },
        usesPlacement: Bool = false,
        _ body: (UnsafeRawBufferPointer) -> Bool
    ) -> Result<Int, Failure> {
        guard let header else {
            _ = body(frame)
            return .success(1)
        }
        guard Int(header.segmentHeaderLength) <= frame.count else { return .failure(.headerLengthBeyondFrame) }
        let gsoType = header.gsoType.withoutECN
        if gsoType == .none {
            guard header.flags.contains(.needsChecksum) else {
                _ = body(frame)
                return .success(1)
            }
            let start = Int(header.checksumStart), offset = Int(header.checksumOffset)
            guard VirtioNetHeader.checksumFieldFits(start: start, offset: offset, length: frame.count) else {
                return .failure(.invalidChecksumOffsets)
            }
            guard scratch.count >= frame.count, let destination = scratch.baseAddress else { return .failure(.scratchTooSmall) }
            if let source = frame.baseAddress { destination.copyMemory(from: source, byteCount: frame.count) }
            let copy = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<frame.count])
            _ = VirtioNetHeader.completeChecksum(in: copy, start: start, offset: offset)
            _ = body(UnsafeRawBufferPointer(copy))
            return .success(1)
        }

        let plan: Plan
        switch Plan.make(frame, header) {
        case .success(let made): plan = made
        case .failure(let failure): return .failure(failure)
        }
        let headersEnd = plan.layout.headersEnd
        guard scratch.count >= headersEnd + min(plan.segmentSize, plan.payloadLength), let destination = scratch.baseAddress,
              let source = frame.baseAddress
        else { return .failure(.scratchTooSmall) }

        var payloadOffset = 0
        for index in 0..<plan.segmentCount {
            let chunk = min(plan.segmentSize, plan.payloadLength - payloadOffset)
            var destination = destination
            if usesPlacement {
                guard let placed = placement(headersEnd + chunk) else { break }
                destination = placed
            }
            destination.copyMemory(from: source, byteCount: headersEnd)
            // The payload is copied and summed in one pass; the checksum adds the headers to it.
            let payloadSum = InternetChecksum.copySumming(to: destination + headersEnd, from: source + headersEnd + payloadOffset, count: chunk)
            rewriteHeaders(UnsafeMutableRawBufferPointer(start: destination, count: headersEnd), segmentLength: headersEnd + chunk,
                           plan: plan, index: index, payloadOffset: payloadOffset, payloadSum: payloadSum)
            payloadOffset += chunk
            guard body(UnsafeRawBufferPointer(start: destination, count: headersEnd + chunk)) else { break }
        }
        return .success(plan.segmentCount)
    }

    /// The segments of a GSO superframe (TCPV4, TCPV6 or UDP_L4) without copying their payload:
    /// each segment's headers are built at `headers(headersLength, segmentLength)` (memory for
    /// `headersLength` bytes, or nil to stop there), and `body` gets those headers and
    /// the segment's payload as a slice of `frame` itself. The checksum is computed over both, so
    /// headers followed by payload are exactly the segment `forEachSegment` builds: for a sender
    /// that gathers (`sendmsg` with an iovec per piece), which saves writing every payload byte
    /// once more in userspace.
    ///
    /// A frame without a GSO type is refused as `unsupportedGSOType`: it has no segments.
    /// Returns the number of segments, or the failure (`body` then was not called).
    public static func forEachSegmentGathering(
        of frame: UnsafeRawBufferPointer,
        header: VirtioNetHeader,
        headers: (_ headersLength: Int, _ segmentLength: Int) -> UnsafeMutableRawPointer?,
        _ body: (_ headers: UnsafeRawBufferPointer, _ payload: UnsafeRawBufferPointer) -> Bool
    ) -> Result<Int, Failure> {
        guard Int(header.segmentHeaderLength) <= frame.count else { return .failure(.headerLengthBeyondFrame) }
        let plan: Plan
        switch Plan.make(frame, header) {
        case .success(let made): plan = made
        case .failure(let failure): return .failure(failure)
        }
        guard let source = frame.baseAddress else { return .failure(.truncatedFrame) }
        let headersEnd = plan.layout.headersEnd
        var payloadOffset = 0
        for index in 0..<plan.segmentCount {
            let chunk = min(plan.segmentSize, plan.payloadLength - payloadOffset)
            guard let destination = headers(headersEnd, headersEnd + chunk) else { break }
            destination.copyMemory(from: source, byteCount: headersEnd)
            let payload = UnsafeRawBufferPointer(start: source + headersEnd + payloadOffset, count: chunk)
            let payloadSum = InternetChecksum.summing(source + headersEnd + payloadOffset, count: chunk)
            rewriteHeaders(UnsafeMutableRawBufferPointer(start: destination, count: headersEnd), segmentLength: headersEnd + chunk,
                           plan: plan, index: index, payloadOffset: payloadOffset, payloadSum: payloadSum)
            payloadOffset += chunk
            guard body(UnsafeRawBufferPointer(start: destination, count: headersEnd), payload) else { break }
        }
        return .success(plan.segmentCount)
    }

    /// A superframe checked and measured for segmentation, and what varies per segment, read once.
    struct Plan {
        let layout: TransportLayout
        let segmentSize: Int
        let payloadLength: Int
        let segmentCount: Int
        let identification: UInt16
        let firstSequenceNumber: UInt32

        /// Checks `frame` against `header` (a GSO type it carries, a segment size, the checksum
        /// offsets if given): the part of the checks that segmenting and gathering share.
        static func make(_ frame: UnsafeRawBufferPointer, _ header: VirtioNetHeader) -> Result<Plan, Failure> {
            let gsoType = header.gsoType.withoutECN
            guard gsoType == .tcpv4 || gsoType == .tcpv6 || gsoType == .udpL4 else { return .failure(.unsupportedGSOType) }
            guard header.gsoSize > 0 else { return .failure(.zeroSegmentSize) }
            let layout: TransportLayout
            switch TransportLayout.parse(frame) {
            case .success(let parsed): layout = parsed
            case .failure(let failure): return .failure(failure)
            }
            switch gsoType {
            case .tcpv4: guard layout.isTCP && !layout.isIPv6 else { return .failure(.gsoTypeMismatch) }
            case .tcpv6: guard layout.isTCP && layout.isIPv6 else { return .failure(.gsoTypeMismatch) }
            default: guard !layout.isTCP else { return .failure(.gsoTypeMismatch) }
            }
            if header.flags.contains(.needsChecksum) {
                // The header must describe this packet's checksum, or it and we disagree about the frame.
                guard Int(header.checksumStart) == layout.transportOffset,
                      Int(header.checksumOffset) == layout.checksumFieldOffset
                else { return .failure(.invalidChecksumOffsets) }
            }
            let segmentSize = Int(header.gsoSize)
            let payloadLength = layout.packetEnd - layout.headersEnd
            let identification: UInt16 = layout.isIPv6 ? 0
                : frame.loadBigEndian(fromByteOffset: layout.networkOffset + IPv4Header.Field.identification.lowerBound, as: UInt16.self)
            let firstSequenceNumber: UInt32 = layout.isTCP
                ? frame.loadBigEndian(fromByteOffset: layout.transportOffset + TransportLayout.TCPField.sequenceNumber.lowerBound, as: UInt32.self)
                : 0
            return .success(Plan(layout: layout, segmentSize: segmentSize, payloadLength: payloadLength,
                                 segmentCount: max(1, (payloadLength + segmentSize - 1) / segmentSize),
                                 identification: identification, firstSequenceNumber: firstSequenceNumber))
        }
    }

    /// Makes the copied headers of segment `index` (at `headers`, the segment being
    /// `segmentLength` bytes with its payload) describe it: IP length (and for IPv4 the
    /// identification and header checksum), TCP sequence number and flags or UDP length, and the
    /// full TCP/UDP checksum. `payloadSum` is the sum of the bytes after its headers, starting
    /// `payloadOffset` bytes into the superframe's payload.
    private static func rewriteHeaders(_ segment: UnsafeMutableRawBufferPointer, segmentLength: Int, plan: Plan, index: Int,
                                       payloadOffset: Int, payloadSum: UInt64) {
        let layout = plan.layout
        let identification = plan.identification &+ UInt16(truncatingIfNeeded: index)
        let sequenceNumber = plan.firstSequenceNumber &+ UInt32(truncatingIfNeeded: payloadOffset)
        let isFirst = index == 0, isLast = index == plan.segmentCount - 1
        let network = layout.networkOffset, transport = layout.transportOffset
        let transportLength = segmentLength - transport
        if layout.isIPv6 {
            typealias Field = IPv6Header.Field
            segment.storeBigEndian(UInt16(truncatingIfNeeded: segmentLength - network - IPv6Header.headerLength),
                                   toByteOffset: network + Field.payloadLength.lowerBound)
        } else {
            typealias Field = IPv4Header.Field
            segment.storeBigEndian(UInt16(truncatingIfNeeded: segmentLength - network), toByteOffset: network + Field.totalLength.lowerBound)
            segment.storeBigEndian(identification, toByteOffset: network + Field.identification.lowerBound)
            segment.storeBigEndian(UInt16(0), toByteOffset: network + Field.checksum.lowerBound)
            let checksum = InternetChecksum.compute(UnsafeRawBufferPointer(rebasing: segment[network..<transport]))
            segment.storeBigEndian(checksum, toByteOffset: network + Field.checksum.lowerBound)
        }

        if layout.isTCP {
            typealias Field = TransportLayout.TCPField
            segment.storeBigEndian(sequenceNumber, toByteOffset: transport + Field.sequenceNumber.lowerBound)
            var flags = segment[transport + Field.flags]
            if !isLast { flags &= ~(tcpFIN | tcpPSH) }
            if !isFirst { flags &= ~tcpCWR }
            segment[transport + Field.flags] = flags
        } else {
            segment.storeBigEndian(UInt16(truncatingIfNeeded: transportLength),
                                   toByteOffset: transport + TransportLayout.UDPField.length.lowerBound)
        }
        let checksumField = transport + layout.checksumFieldOffset
        segment.storeBigEndian(UInt16(0), toByteOffset: checksumField)
        var sum = layout.pseudoHeaderSum(UnsafeRawBufferPointer(segment), transportLength: transportLength)
        sum.add(UnsafeRawBufferPointer(rebasing: segment[transport..<layout.headersEnd]))
        sum.add(summed: payloadSum)
        let checksum = sum.value
        segment.storeBigEndian(checksum == 0 ? 0xffff : checksum, toByteOffset: checksumField)
    }

    /// TCP flag bits in byte 13 of the header.
    static let tcpFIN: UInt8 = 0x01
    static let tcpPSH: UInt8 = 0x08
    static let tcpACK: UInt8 = 0x10
    static let tcpCWR: UInt8 = 0x80
}
