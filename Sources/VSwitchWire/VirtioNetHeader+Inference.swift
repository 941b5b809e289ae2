// Offload inference: a virtio-net header for a frame that arrived without one.
//
// libpcap on a Linux interface sees the local stack's frames before the NIC finishes them, and
// GRO'd frames after the stack merged them. So a captured frame can be
//
//   * checksum-partial: the TCP/UDP checksum field holds the folded pseudo-header sum, with the L4
//     length in it, and nothing else (`__tcp_v4_send_check`, `udp4_hwcsum`, `tcp4_gro_complete`
//     and their IPv6 twins store `~csum_tcpudp_magic(...)`, which is that folded sum);
//   * a superframe: larger than the MTU, its IPv4 total length or IPv6 payload length covering all
//     of it, to be cut at the MSS on the way out.
//
// Sent as is to a TAP or a wire, the first arrives with a bad checksum and the second is refused
// or dropped. `infer` recognises both and describes them the way a TAP would have.

extension VirtioNetHeader {
    /// The header a TAP would have put in front of `frame`, or nil if the frame needs none.
    ///
    /// Looks at Ethernet frames (up to two VLAN tags) carrying IPv4 (any IHL, not a fragment) or
    /// IPv6 (TCP or UDP as the next header, no extension headers) with TCP or UDP, whose IP length
    /// field ends exactly at the end of the frame (a padded frame came off a wire, where checksums
    /// are complete). With P the folded pseudo-header sum for the packet's L4 length:
    ///
    /// - IP packet longer than `mtu` (a superframe): `needsChecksum` and GSO: TCPV4/TCPV6 (plus the
    ///   ECN bit when CWR is set, as `tcp_gro_complete` does) with `gsoSize` = mtu - IP header -
    ///   TCP header, or UDP_L4 with `gsoSize` = mtu - IP header - 8; `segmentHeaderLength` = L2 + L3
    ///   + L4 headers. The checksum field is rewritten to P, whatever it held, so the segmenter or
    ///   the kernel computes each segment's checksum right. Nil if `mtu` leaves no room for payload.
    /// - Otherwise, checksum field equal to P: checksum-partial; `needsChecksum` with `checksumStart`
    ///   at the TCP/UDP header (from the start of the frame) and `checksumOffset` 16 or 6. A complete
    ///   checksum that happens to equal P (1 in 65,536) is also taken as partial, which is harmless:
    ///   completing it again yields the same value, because the sum over the packet without the
    ///   field is then exactly the complement of P.
    /// - Otherwise nil: the checksum is complete, or the frame is not TCP/UDP over IP.
    ///
    /// The frame is written only in the superframe case, and only its checksum field.
    public static func infer(frame: UnsafeMutableRawBufferPointer, mtu: Int) -> VirtioNetHeader? {
        let bytes = UnsafeRawBufferPointer(frame)
        guard case .success(let layout) = TransportLayout.parse(bytes), layout.packetEnd == bytes.count else { return nil }
        let fieldOffset = layout.transportOffset + layout.checksumFieldOffset
        let partialSum = ~layout.pseudoHeaderSum(bytes, transportLength: layout.transportLength).value
        var header = VirtioNetHeader(flags: .needsChecksum,
                                     checksumStart: UInt16(truncatingIfNeeded: layout.transportOffset),
                                     checksumOffset: UInt16(truncatingIfNeeded: layout.checksumFieldOffset))
        guard layout.networkLength > mtu else {
            return bytes.loadBigEndian(fromByteOffset: fieldOffset, as: UInt16.self) == partialSum ? header : nil
        }
        // Compared before subtracting, so no `mtu` can overflow.
        let headersLength = layout.networkHeaderLength + layout.transportHeaderLength
        guard mtu > headersLength, let gsoSize = UInt16(exactly: mtu - headersLength),
              let segmentHeaderLength = UInt16(exactly: layout.headersEnd)
        else { return nil }
        if layout.isTCP {
            header.gsoType = layout.isIPv6 ? .tcpv6 : .tcpv4
            let flags = bytes[layout.transportOffset + TransportLayout.TCPField.flags]
            if flags & GSOSegmenter.tcpCWR != 0 { header.gsoType = GSOType(rawValue: header.gsoType.rawValue | GSOType.ecn.rawValue) }
        } else {
            header.gsoType = .udpL4
        }
        header.gsoSize = gsoSize
        header.segmentHeaderLength = segmentHeaderLength
        frame.storeBigEndian(partialSum, toByteOffset: fieldOffset)
        return header
    }

    /// `infer(frame:mtu:)` for `length` bytes at `frame`.
    @inlinable
    public static func infer(frame: UnsafeMutableRawPointer, length: Int, mtu: Int) -> VirtioNetHeader? {
        guard length >= 0 else { return nil }
        return infer(frame: UnsafeMutableRawBufferPointer(start: frame, count: length), mtu: mtu)
    }
}
