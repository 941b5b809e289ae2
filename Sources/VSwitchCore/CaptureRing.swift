/// Copies of a port's frames for `vswitchctl capture`, in one fixed allocation made when a capture
/// starts and freed when it stops: a port nobody captures costs one pointer test per batch.
///
/// Owned by the data-plane thread, which appends (receive and transmit side); the control plane
/// drains it through `DataPlane.perform`. A full ring drops the copy (counted in `dropped`), never
/// the frame.
public final class CaptureRing {
    public let capacity: Int
    /// Bytes kept of each frame (the rest is cut, as tcpdump's snap length does).
    public let snapLength: Int
    /// Records: stamp = time, tag = the frame's original length, bytes = what was kept.
    private var ring: RecordRing
    public var count: Int { ring.count }
    public private(set) var dropped: UInt64 = 0

    public init(capacity: Int = 4 << 20, snapLength: Int = 65_535) {
        self.capacity = capacity
        self.snapLength = snapLength
        ring = RecordRing(capacity: capacity)
    }

    deinit { ring.deallocate() }

    /// Copies a frame seen at `time` (the data plane's clock).
    public func append(_ bytes: UnsafeRawPointer, length: Int, time: UInt64) {
        if !ring.append(stamp: time, tag: UInt32(truncatingIfNeeded: length), bytes, count: min(length, snapLength)) { dropped &+= 1 }
    }

    /// Hands up to `max` frames, oldest first, to `body(time, originalLength, keptBytes)`.
    public func drain(max: Int, _ body: (UInt64, Int, UnsafeRawBufferPointer) -> Void) {
        ring.drain(max: max) { time, length, bytes in body(time, Int(length), bytes) }
    }
}
