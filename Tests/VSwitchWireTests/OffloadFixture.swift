// Frames for the offload tests (virtio-net header, checksum completion, GSO, inference), built byte
// by byte here rather than with the module's Reprs, and checked with a pseudo-header laid out by
// hand and the plain RFC 1071 reference sum, so the tests do not lean on the code they test.

import VSwitchWire

/// A TCP or UDP frame over IPv4 or IPv6, optionally VLAN-tagged, and where its parts are.
struct OffloadFrame {
    enum Checksum { case complete, partial, zero }

    var bytes: [UInt8]
    /// Start of the IP header, of the TCP/UDP header, and end of the TCP/UDP header.
    var networkOffset: Int
    var transportOffset: Int
    var headersEnd: Int
    var isIPv6: Bool
    var isTCP: Bool

    var payload: ArraySlice<UInt8> { bytes[headersEnd...] }
    var checksumFieldOffset: Int { transportOffset + (isTCP ? 16 : 6) }
    var checksumField: UInt16 { UInt16(bytes[checksumFieldOffset]) << 8 | UInt16(bytes[checksumFieldOffset + 1]) }

    static let sourceIPv4: [UInt8] = [192, 0, 2, 1]
    static let destinationIPv4: [UInt8] = [198, 51, 100, 7]
    static let sourceIPv6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]
    static let destinationIPv6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 0x02]

    /// Payload bytes with no short period, so a misplaced chunk shows.
    static func payload(count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8 &+ $0 >> 13) }
    }

    /// Builds the frame. `ipv4OptionBytes` and `tcpOptionBytes` are multiples of 4 (the TCP options
    /// are NOPs and a timestamp-like block; the IPv4 options NOPs and an EOL).
    init(ipv6: Bool = false, vlan: Bool = false, tcp: Bool = true, payload: [UInt8],
         ipv4OptionBytes: Int = 0, tcpOptionBytes: Int = 12,
         sequenceNumber: UInt32 = 0xffff_d000, tcpFlags: UInt8 = 0x18, identification: UInt16 = 0xfffa,
         fragment: UInt16 = 0x4000, checksum: Checksum = .complete) {
        var frame: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]
        if vlan { frame += [0x81, 0x00, 0x20, 0x64] }          // PCP 1, VLAN 100
        frame += ipv6 ? [0x86, 0xdd] : [0x08, 0x00]
        let networkOffset = frame.count
        let transportHeaderLength = tcp ? 20 + tcpOptionBytes : 8
        let transportLength = transportHeaderLength + payload.count
        let proto: UInt8 = tcp ? 6 : 17
        if ipv6 {
            frame += [0x60, 0x0a, 0xbc, 0xde, UInt8(transportLength >> 8), UInt8(transportLength & 0xff), proto, 64]
            frame += Self.sourceIPv6 + Self.destinationIPv6
        } else {
            let headerLength = 20 + ipv4OptionBytes
            let total = headerLength + transportLength
            frame += [0x40 | UInt8(headerLength / 4), 0x00, UInt8(total >> 8), UInt8(total & 0xff),
                      UInt8(identification >> 8), UInt8(identification & 0xff), UInt8(fragment >> 8), UInt8(fragment & 0xff),
                      64, proto, 0, 0] + Self.sourceIPv4 + Self.destinationIPv4
            frame += [UInt8](repeating: 0x01, count: max(0, ipv4OptionBytes - 1)) + (ipv4OptionBytes > 0 ? [0x00] : [])
            let sum = InternetChecksumTests.reference(Array(frame[networkOffset...]))
            frame[networkOffset + 10] = UInt8(sum >> 8)
            frame[networkOffset + 11] = UInt8(sum & 0xff)
        }
        let transportOffset = frame.count
        if tcp {
            frame += [0xc3, 0x50, 0x01, 0xbb]                          // ports 50000 -> 443
            frame += [UInt8(sequenceNumber >> 24), UInt8(sequenceNumber >> 16 & 0xff),
                      UInt8(sequenceNumber >> 8 & 0xff), UInt8(sequenceNumber & 0xff)]
            frame += [0x11, 0x22, 0x33, 0x44]                          // ack
            frame += [UInt8(transportHeaderLength / 4) << 4, tcpFlags, 0xfa, 0xf0, 0, 0, 0, 0]
            for index in 0..<tcpOptionBytes { frame.append(index < 2 ? 0x01 : UInt8(0x08 &+ index)) }
        } else {
            frame += [0x30, 0x39, 0x11, 0x5c, UInt8(transportLength >> 8), UInt8(transportLength & 0xff), 0, 0]
        }
        let headersEnd = frame.count
        frame += payload
        self.bytes = frame
        self.networkOffset = networkOffset
        self.transportOffset = transportOffset
        self.headersEnd = headersEnd
        self.isIPv6 = ipv6
        self.isTCP = tcp
        switch checksum {
        case .zero: break
        case .complete: setChecksumField(Self.referenceTransportChecksum(bytes, networkOffset: networkOffset))
        case .partial: setChecksumField(partialSum)
        }
    }

    mutating func setChecksumField(_ value: UInt16) {
        bytes[checksumFieldOffset] = UInt8(value >> 8)
        bytes[checksumFieldOffset + 1] = UInt8(value & 0xff)
    }

    /// P: the folded, uncomplemented pseudo-header sum, what Linux leaves in a partial checksum field.
    var partialSum: UInt16 { ~InternetChecksumTests.reference(Self.pseudoHeader(bytes, networkOffset: networkOffset)) }

    /// The pseudo-header of the packet at `networkOffset`, laid out as the RFCs draw it, with the
    /// upper-layer length taken from the IP header's length field.
    static func pseudoHeader(_ frame: [UInt8], networkOffset n: Int) -> [UInt8] {
        if frame[n] >> 4 == 6 {
            let length = Int(frame[n + 4]) << 8 | Int(frame[n + 5])
            return Array(frame[n + 8 ..< n + 40]) + [0, 0, UInt8(length >> 8), UInt8(length & 0xff), 0, 0, 0, frame[n + 6]]
        }
        let headerLength = Int(frame[n] & 0x0f) * 4
        let length = (Int(frame[n + 2]) << 8 | Int(frame[n + 3])) - headerLength
        return Array(frame[n + 12 ..< n + 20]) + [0, frame[n + 9], UInt8(length >> 8), UInt8(length & 0xff)]
    }

    /// The transport range of the packet at `networkOffset`: after the IP header, up to its length field.
    static func transportRange(_ frame: [UInt8], networkOffset n: Int) -> Range<Int> {
        if frame[n] >> 4 == 6 { return n + 40 ..< n + 40 + (Int(frame[n + 4]) << 8 | Int(frame[n + 5])) }
        return n + Int(frame[n] & 0x0f) * 4 ..< n + (Int(frame[n + 2]) << 8 | Int(frame[n + 3]))
    }

    /// The complete TCP/UDP checksum of the packet, computed with the checksum field as zero.
    static func referenceTransportChecksum(_ frame: [UInt8], networkOffset: Int) -> UInt16 {
        var segment = Array(frame[transportRange(frame, networkOffset: networkOffset)])
        let field = (frame[frame[networkOffset] >> 4 == 6 ? networkOffset + 6 : networkOffset + 9] == 6) ? 16 : 6
        segment[field] = 0
        segment[field + 1] = 0
        let sum = InternetChecksumTests.reference(pseudoHeader(frame, networkOffset: networkOffset) + segment)
        return sum == 0 ? 0xffff : sum
    }

    /// True if the TCP/UDP checksum of the packet at `networkOffset` holds (sums to zero with the
    /// pseudo-header), by the reference sum.
    static func transportChecksumHolds(_ frame: [UInt8], networkOffset: Int) -> Bool {
        let segment = Array(frame[transportRange(frame, networkOffset: networkOffset)])
        return InternetChecksumTests.reference(pseudoHeader(frame, networkOffset: networkOffset) + segment) == 0
    }
}

/// Runs `GSOSegmenter.forEachSegment` over a copy of `frame` with a 64 KiB scratch and returns
/// the result and every segment handed to the body, copied out.
func segments(of frame: [UInt8], header: VirtioNetHeader?, scratchCount: Int = 65_536,
              stopAfter limit: Int = .max) -> (result: Result<Int, GSOSegmenter.Failure>, segments: [[UInt8]]) {
    var output: [[UInt8]] = []
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: scratchCount, alignment: 8)
    defer { scratch.deallocate() }
    let result = withBytes(frame, misalignment: 2) { buffer in
        GSOSegmenter.forEachSegment(of: buffer, header: header, scratch: scratch) { segment in
            output.append(Array(segment))
            return output.count < limit
        }
    }
    return (result, output)
}

/// What `GSOSegmenter.forEachSegmentGathering` hands over, each segment as its headers followed by
/// its payload; `payloadsInFrame` says whether every payload was a slice of the frame itself and
/// every header was built where asked.
func gatheredSegments(of frame: [UInt8], header: VirtioNetHeader, stopAfter limit: Int = .max)
    -> (result: Result<Int, GSOSegmenter.Failure>, segments: [[UInt8]], payloadsInFrame: Bool) {
    var output: [[UInt8]] = []
    var inFrame = true
    let area = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    defer { area.deallocate() }
    let result = withBytes(frame, misalignment: 2) { buffer in
        GSOSegmenter.forEachSegmentGathering(of: buffer, header: header, headers: { _, _ in area.baseAddress! }) { headers, payload in
            inFrame = inFrame && headers.baseAddress == UnsafeRawPointer(area.baseAddress!)
            if payload.count > 0 {
                inFrame = inFrame && FuzzTests.contains(buffer, payload)
            }
            output.append(Array(headers) + Array(payload))
            return output.count < limit
        }
    }
    return (result, output, inFrame)
}
