import VSwitchCore

/// A port that counts what it is given and keeps nothing, and receives nothing: the sink of
/// benchmarks and allocation checks. Its transmit does no work beyond the counters.
public final class DiscardPort: Port {
    public let name: String
    public var readinessDescriptor: Int32 { -1 }
    public init(name: String) { self.name = name }
    public func receive(into batch: PacketBatch, counters: PortCounters) {}
    public func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        var bytes: UInt64 = 0
        let buffers = batch.buffers
        for i in 0..<count { bytes &+= UInt64(truncatingIfNeeded: buffers[Int(truncatingIfNeeded: indices[i])].length) }
        counters.txPackets &+= UInt64(count)
        counters.txBytes &+= bytes
    }
}
