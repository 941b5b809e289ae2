/// Where the headers of an Ethernet frame carrying TCP or UDP over IP sit: what the offload
/// helpers (`GSOSegmenter`, `VirtioNetHeader.infer`) need to know before they touch a byte.
///
///     0        networkOffset     transportOffset    headersEnd                 packetEnd   count
///     +--------+-----------------+------------------+--------------------------+-----------+
///     | L2     | IPv4/IPv6       | TCP/UDP header   | payload                  | padding   |
///
/// `parse` checks every length against the buffer and against the IP header's own length field, so
/// all offsets it returns satisfy 0 < networkOffset < transportOffset < headersEnd <= packetEnd <=
/// frame.count, and reading any of the header fields named here cannot go out of bounds.
struct TransportLayout {
    /// Start of the IP header.
    var networkOffset: Int
    var isIPv6: Bool
    /// Start of the TCP or UDP header.
    var transportOffset: Int
    /// `.tcp` or `.udp`.
    var transportProtocol: IPProtocol
    /// TCP data offset in bytes (20...60), or 8 for UDP.
    var transportHeaderLength: Int
    /// End of the IP packet as its length field says; bytes after it are link-layer padding.
    var packetEnd: Int

    /// Bytes of the IP header (IPv4 options included).
    var networkHeaderLength: Int { transportOffset - networkOffset }
    /// End of the TCP/UDP header: what every segment repeats.
    var headersEnd: Int { transportOffset + transportHeaderLength }
    /// The IP packet's length: IPv4 total length, or 40 + IPv6 payload length.
    var networkLength: Int { packetEnd - networkOffset }
    /// The TCP/UDP header and payload.
    var transportLength: Int { packetEnd - transportOffset }
    var isTCP: Bool { transportProtocol == .tcp }
    /// Where the TCP or UDP checksum field is, from `transportOffset`.
    var checksumFieldOffset: Int { isTCP ? Int(VirtioNetHeader.tcpChecksumOffset) : Int(VirtioNetHeader.udpChecksumOffset) }

    /// VLAN tags looked through in front of the IP header: an 802.1ad S-tag and an 802.1Q C-tag.
    static let maximumVLANTags = 2

    /// TCP header fields used here.
    enum TCPField {
        /// Source and destination port.
        static let ports = 0..<4
        static let sequenceNumber = 4..<8
        static let acknowledgmentNumber = 8..<12
        static let dataOffset = 12
        static let flags = 13
        static let window = 14..<16
        static let checksum = 16..<18
        static let minimumHeaderLength = 20
        /// Option kinds (RFC 9293 section 3.2, RFC 7323) and the timestamp option's length.
        static let endOfOptions: UInt8 = 0
        static let noOperation: UInt8 = 1
        static let timestampKind: UInt8 = 8
        static let timestampLength = 10
    }

    /// UDP header fields used here.
    enum UDPField {
        static let length = 4..<6
        static let checksum = 6..<8
        static let headerLength = 8
    }

    /// The layout of `frame`, or why it is not an Ethernet frame with up to two VLAN tags, then
    /// IPv4 (not a fragment) or IPv6 (no extension headers), then a whole TCP or UDP header.
    static func parse(_ frame: UnsafeRawBufferPointer) -> Result<TransportLayout, GSOSegmenter.Failure> {
        guard let ethernet = EthernetFrame(validating: frame) else { return .failure(.truncatedFrame) }
        var etherType = ethernet.etherType
        var offset = EthernetFrame.headerLength
        var tags = 0
        while etherType.isVLANTag {
            guard tags < maximumVLANTags else { return .failure(.unsupportedNetworkProtocol) }
            guard let tag = VLANTag(validating: frame.slice(offset..<frame.count)) else { return .failure(.truncatedFrame) }
            etherType = tag.etherType
            offset += VLANTag.headerLength
            tags += 1
        }
        let network = frame.slice(offset..<frame.count)
        var layout: TransportLayout
        switch etherType {
        case .ipv4:
            guard let ip = IPv4Header(validating: network) else { return .failure(.malformedIPHeader) }
            guard !ip.moreFragments, ip.fragmentByteOffset == 0 else { return .failure(.ipv4Fragment) }
            layout = TransportLayout(networkOffset: offset, isIPv6: false, transportOffset: offset + ip.headerLength,
                                     transportProtocol: ip.protocol, transportHeaderLength: 0,
                                     packetEnd: offset + ip.totalLength)
        case .ipv6:
            guard let ip = IPv6Header(validating: network) else { return .failure(.malformedIPHeader) }
            layout = TransportLayout(networkOffset: offset, isIPv6: true, transportOffset: offset + IPv6Header.headerLength,
                                     transportProtocol: ip.nextHeader, transportHeaderLength: 0,
                                     packetEnd: offset + IPv6Header.headerLength + ip.payloadLength)
        default:
            return .failure(.unsupportedNetworkProtocol)
        }
        // Both views guarantee packetEnd <= frame.count and transportOffset <= packetEnd.
        let available = layout.packetEnd - layout.transportOffset
        switch layout.transportProtocol {
        case .tcp:
            guard available >= TCPField.minimumHeaderLength else { return .failure(.malformedTransportHeader) }
            let length = Int(frame[layout.transportOffset + TCPField.dataOffset] >> 4) * 4
            guard length >= TCPField.minimumHeaderLength, length <= available else { return .failure(.malformedTransportHeader) }
            layout.transportHeaderLength = length
        case .udp:
            guard available >= UDPField.headerLength else { return .failure(.malformedTransportHeader) }
            layout.transportHeaderLength = UDPField.headerLength
        default:
            // For IPv6 this includes every extension header: hop-by-hop, routing, fragment, ...
            return .failure(.unsupportedTransport)
        }
        return .success(layout)
    }

    /// The TCP/UDP pseudo-header (RFC 793 / RFC 768 for IPv4, RFC 8200 section 8.1 for IPv6) of
    /// `frame`'s packet with `transportLength` as its upper-layer length, summed.
    func pseudoHeaderSum(_ frame: UnsafeRawBufferPointer, transportLength: Int) -> InternetChecksum {
        var sum = InternetChecksum()
        // Source and destination are adjacent in both headers.
        if isIPv6 {
            typealias Field = IPv6Header.Field
            sum.add(frame.slice(networkOffset + Field.source.lowerBound..<networkOffset + Field.destination.upperBound))
            sum.add(UInt16(truncatingIfNeeded: transportLength >> 16))
        } else {
            typealias Field = IPv4Header.Field
            sum.add(frame.slice(networkOffset + Field.source.lowerBound..<networkOffset + Field.destination.upperBound))
        }
        sum.add(UInt16(truncatingIfNeeded: transportLength))
        sum.add(UInt16(transportProtocol.rawValue))
        return sum
    }
}
