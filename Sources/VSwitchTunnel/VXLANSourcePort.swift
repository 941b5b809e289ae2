/// The outer UDP source port for a tunnel datagram, chosen per inner flow the way the kernel's
/// `vxlan` device does: the flow hash scaled into the kernel's default `ip_local_port_range`.
public enum VXLANSourcePort {
    /// The kernel's default `net.ipv4.ip_local_port_range`, 32768...60999: ephemeral ports, so the
    /// tunnel's source ports look like any client's and stay clear of well-known services.
    public static let range: ClosedRange<UInt16> = 32768...60999

    /// The source port for `frame`'s flow: the same for every frame of a flow, within `range`.
    public static func forFrame(_ frame: UnsafeRawBufferPointer) -> UInt16 {
        forHash(FlowHash.compute(frame: frame))
    }

    /// `hash` scaled onto `range` by multiplication (the kernel's `reciprocal_scale`), so that
    /// every hash bit counts and no modulo is needed.
    public static func forHash(_ hash: UInt32) -> UInt16 {
        let span = UInt64(range.upperBound - range.lowerBound) + 1
        return range.lowerBound + UInt16(truncatingIfNeeded: (UInt64(hash) &* span) >> 32)
    }
}
