import VSwitchWire

/// A 32-bit hash of an Ethernet frame's flow, for picking a tunnel's outer UDP source port.
///
/// Peers and the underlay spread tunnel traffic over paths and receive queues (ECMP, RSS) by the
/// outer 5-tuple, whose only varying field is the UDP source port. So, like the kernel's
/// `udp_flow_src_port()`, a tunnel sends each inner flow from its own source port and keeps it
/// there, so one TCP connection's segments stay on one path and in order.
///
/// What is hashed, after up to two VLAN tags (whose VLAN IDs are hashed too):
///   * IPv4: source, destination, protocol, and for TCP, UDP, UDP-Lite, SCTP and DCCP the two
///     ports, except in fragments (none of which are hashed with ports, so that every fragment of
///     a datagram takes the same path as its first);
///   * IPv6: source, destination, next header, and the ports when the transport header follows the
///     fixed header directly;
///   * anything else (ARP, malformed IP, unknown EtherTypes): destination and source MAC and the
///     EtherType.
/// The hash is deterministic (no per-boot key), so a flow keeps its port across restarts too; it
/// only steers load and protects nothing. Frames shorter than an Ethernet header hash to a constant.
public enum FlowHash {
    /// The flow hash of `frame`, an Ethernet frame. Never traps, whatever the bytes.
    public static func compute(frame: UnsafeRawBufferPointer) -> UInt32 {
        var hasher = Hasher64()
        guard let ethernet = EthernetFrame(validating: frame) else { return hasher.finalize() }
        var etherType = ethernet.etherType
        var payload = ethernet.payload
        var tags = 0
        while etherType.isVLANTag, tags < 2, let tag = VLANTag(validating: payload) {
            hasher.combine(UInt64(tag.vlanID.rawValue))
            etherType = tag.etherType
            payload = tag.payload
            tags += 1
        }
        if etherType == .ipv4, let ip = IPv4Header(validating: payload) {
            hasher.combine(UInt64(ip.source.rawValue) << 32 | UInt64(ip.destination.rawValue))
            hasher.combine(UInt64(ip.protocol.rawValue) << 32 | UInt64(transportPorts(ip.protocol, ip.payload,
                isFragment: ip.moreFragments || ip.fragmentByteOffset != 0)))
        } else if etherType == .ipv6, let ip = IPv6Header(validating: payload) {
            hasher.combine(ip.source.high)
            hasher.combine(ip.source.low)
            hasher.combine(ip.destination.high)
            hasher.combine(ip.destination.low)
            hasher.combine(UInt64(ip.nextHeader.rawValue) << 32 | UInt64(transportPorts(ip.nextHeader, ip.payload,
                isFragment: false)))
        } else {
            hasher.combine(ethernet.destination.rawValue)
            hasher.combine(ethernet.source.rawValue << 16 | UInt64(etherType.rawValue))
        }
        return hasher.finalize()
    }

    /// Source and destination port as one word, or 0 if `protocol` has no ports at the start of its
    /// header, the packet is a fragment, or the header is cut short.
    private static func transportPorts(_ protocol: IPProtocol, _ payload: UnsafeRawBufferPointer,
                                       isFragment: Bool) -> UInt32 {
        switch `protocol`.rawValue {
        case 6, 17, 33, 132, 136:  // TCP, UDP, DCCP, SCTP, UDP-Lite: ports in the first 4 bytes
            guard !isFragment, payload.count >= 4 else { return 0 }
            return payload.loadBigEndian(fromByteOffset: 0, as: UInt32.self)
        default:
            return 0
        }
    }
}

/// A small multiply-xorshift hash over 64-bit words with a SplitMix64 finaliser: quick, no tables,
/// and every input bit reaches every output bit, which is all a flow hash needs.
struct Hasher64 {
    private var state: UInt64 = 0x243f_6a88_85a3_08d3

    mutating func combine(_ word: UInt64) {
        state = (state ^ word) &* 0x9e37_79b9_7f4a_7c15
        state ^= state >> 29
    }

    func finalize() -> UInt32 {
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        z ^= z >> 31
        return UInt32(truncatingIfNeeded: z >> 32)
    }
}
