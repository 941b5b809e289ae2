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
    private let storage: UnsafeMutableRawPointer
    private var head = 0, tail = 0, used = 0
    public private(set) var count = 0
    public private(set) var dropped: UInt64 = 0

    /// A record: time (8) | original length (4) | kept length (4) | bytes, padded to 8.
    static let recordHeader = 16

    public init(capacity: Int = 4 << 20, snapLength: Int = 65_535) {
        self.capacity = capacity
        self.snapLength = snapLength
        storage = .allocate(byteCount: capacity, alignment: 8)
    }

    deinit { storage.deallocate() }

    @inline(__always) static func size(_ kept: Int) -> Int { (recordHeader + kept + 7) & ~7 }

    /// Copies a frame seen at `time` (the data plane's clock).
    public func append(_ bytes: UnsafeRawPointer, length: Int, time: UInt64) {
        let kept = min(length, snapLength)
        let size = Self.size(kept)
        var start = tail
        var padding = 0
        if start + size > capacity { padding = capacity - start; start = 0 }
        guard size <= capacity, used + padding + size <= capacity else { dropped &+= 1; return }
        if padding >= Self.recordHeader { storage.storeBytes(of: UInt32.max, toByteOffset: tail + 12, as: UInt32.self) }
        used += padding
        storage.storeBytes(of: time, toByteOffset: start, as: UInt64.self)
        storage.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: start + 8, as: UInt32.self)
        storage.storeBytes(of: UInt32(kept), toByteOffset: start + 12, as: UInt32.self)
        (storage + start + Self.recordHeader).copyMemory(from: bytes, byteCount: kept)
        tail = start + size
        if tail == capacity { tail = 0 }
        used += size
        count += 1
    }

    /// Hands up to `max` frames, oldest first, to `body(time, originalLength, keptBytes)`.
    public func drain(max: Int, _ body: (UInt64, Int, UnsafeRawBufferPointer) -> Void) {
        var n = 0
        while count > 0 && n < max {
            if capacity - head < Self.recordHeader || storage.load(fromByteOffset: head + 12, as: UInt32.self) == UInt32.max {
                used -= capacity - head
                head = 0
                continue
            }
            let time = storage.load(fromByteOffset: head, as: UInt64.self)
            let length = Int(storage.load(fromByteOffset: head + 8, as: UInt32.self))
            let kept = Int(storage.load(fromByteOffset: head + 12, as: UInt32.self))
            body(time, length, UnsafeRawBufferPointer(start: storage + head + Self.recordHeader, count: kept))
            let size = Self.size(kept)
            head += size
            if head == capacity { head = 0 }
            used -= size
            count -= 1
            n += 1
        }
        if count == 0 { head = 0; tail = 0; used = 0 }
    }
}
