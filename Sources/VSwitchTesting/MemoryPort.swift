import VSwitchCore

/// A port that lives in memory: frames queued with `inject` come out of `receive`, and frames the
/// switch transmits are kept in `transmitted` (or only counted, with `keepsFrames = false`, for
/// benchmarks). Unit tests and Tools/bench use it in place of a device.
public final class MemoryPort: Port {
    public let name: String
    public var readinessDescriptor: Int32 { -1 }
    /// Frames waiting to be received.
    public var pending: [[UInt8]] = []
    /// Frames the switch sent out of this port.
    public private(set) var transmitted: [[UInt8]] = []
    public var keepsFrames: Bool
    /// Capacity of the "device": frames beyond it in one transmit are dropped as queue-full.
    public var transmitLimit: Int = .max

    public init(name: String, keepsFrames: Bool = true) {
        self.name = name
        self.keepsFrames = keepsFrames
    }

    public func inject(_ frame: [UInt8]) { pending.append(frame) }

    /// Returns and clears what was transmitted.
    public func takeTransmitted() -> [[UInt8]] {
        defer { transmitted.removeAll() }
        return transmitted
    }

    public func receive(into batch: PacketBatch, counters: PortCounters) {
        var taken = 0
        while taken < pending.count, !batch.isFull {
            if !batch.append(pending[taken]) { counters.rxErrors &+= 1 }
            taken += 1
        }
        pending.removeFirst(taken)
    }

    public func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        for i in 0..<count {
            if i >= transmitLimit { counters.drop(.transmitQueueFull); continue }
            let buffer = batch.buffers[Int(indices[i])]
            if keepsFrames { transmitted.append(Array(buffer.bytes)) }
            counters.txPackets &+= 1
            counters.txBytes &+= UInt64(buffer.length)
        }
    }
}
