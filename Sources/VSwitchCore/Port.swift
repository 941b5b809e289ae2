/// A port's number within its switch: an index into the switch's port slots.
public typealias PortNumber = Int

/// The one interface every port kind implements (TAP, pcap, UDP tunnel, TUN, internal, in-memory).
///
/// Both directions are batched: a data-plane thread calls `receive` once per batch and `transmit`
/// once per batch and port, so the existential call is paid per batch, never per frame. A port is
/// owned by one data-plane thread from `attach` to `detach` and is never touched by another.
public protocol Port: AnyObject {
    /// The port's name, as the user gave it.
    var name: String { get }

    /// An fd that polls readable when `receive` has frames to give; -1 for ports that are driven
    /// another way (in-memory ports in tests).
    var readinessDescriptor: Int32 { get }

    /// Appends received frames to `batch` (from `batch.count` up to its capacity) and returns
    /// when the batch is full or the source has nothing more right now. Frames that cannot be
    /// read whole count as `rxErrors` or drops in `counters`, never as a crash.
    func receive(into batch: PacketBatch, counters: PortCounters)

    /// Sends the frames `batch.buffers[indices[0 ..< count]]`, counting what went out
    /// (`txPackets`, `txBytes`) and what did not (`txDrops` when the device is full,
    /// `txErrors` when it refused a frame).
    func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters)
}

/// A port that reads from its device more than one batch may take (a tunnel port's UDP GRO
/// messages of up to 64 datagrams each): what it holds is no longer readable on its
/// `readinessDescriptor`, so the data plane asks, and polls it again before sleeping.
public protocol BufferingPort: Port {
    /// Whether `receive` has frames to give that it already read from the device.
    var hasBufferedInput: Bool { get }
}

/// What the spanning tree asks of a port (with defaults for ports that cannot tell).
public protocol LinkStatePort: Port {
    /// Whether the link is up (administratively up and with carrier). The spanning tree polls it
    /// about ten times a second, so a cut link is noticed at once rather than after three hellos.
    var isLinkUp: Bool { get }
}

/// A port that carries only IP (a TUN port): it never gets BPDUs and acts as an edge port.
public protocol LayerThreePort: Port {}

/// A port that keeps its own idea of where MACs are (a multipoint tunnel's MAC -> remote cache):
/// told to forget it when the switch flushes the port's MACs for a topology change.
public protocol LearningPort: Port {
    func forgetLearned()
}
