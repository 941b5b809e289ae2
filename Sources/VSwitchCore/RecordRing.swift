/// A FIFO of variable-length byte records in one fixed allocation, owned by one thread: the
/// storage behind `DelayLine` (frames held for later) and `CaptureRing` (copies for capture).
///
/// A record is a stamp (8 bytes), a tag (4), the byte count (4) and the bytes, padded to 8.
/// A record that does not fit before the end of the ring starts again at 0; the gap is marked
/// (a count of UInt32.max) or, when under a header long, skipped by size.
public struct RecordRing {
    public let capacity: Int
    private let storage: UnsafeMutableRawPointer
    private var head = 0, tail = 0, used = 0
    public private(set) var count = 0

    static let header = 16
    static let gap = UInt32.max

    public init(capacity: Int) {
        precondition(capacity >= 64 && capacity % 8 == 0)
        self.capacity = capacity
        storage = .allocate(byteCount: capacity, alignment: 8)
    }

    /// Frees the storage; the ring is unusable after.
    public func deallocate() { storage.deallocate() }

    static func size(_ n: Int) -> Int { (header + n + 7) & ~7 }

    /// Appends a record; false (nothing written) when it does not fit.
    public mutating func append(stamp: UInt64, tag: UInt32, _ bytes: UnsafeRawPointer, count n: Int) -> Bool {
        let size = Self.size(n)
        var start = tail
        var padding = 0
        if start + size > capacity { padding = capacity - start; start = 0 }
        guard size <= capacity, used + padding + size <= capacity else { return false }
        if padding >= Self.header { storage.storeBytes(of: Self.gap, toByteOffset: tail + 12, as: UInt32.self) }
        used += padding
        storage.storeBytes(of: stamp, toByteOffset: start, as: UInt64.self)
        storage.storeBytes(of: tag, toByteOffset: start + 8, as: UInt32.self)
        storage.storeBytes(of: UInt32(n), toByteOffset: start + 12, as: UInt32.self)
        (storage + start + Self.header).copyMemory(from: bytes, byteCount: n)
        tail = start + size
        if tail == capacity { tail = 0 }
        used += size
        count += 1
        return true
    }

    /// Moves `head` past a gap at the end of the ring.
    private mutating func skipGap() {
        if capacity - head < Self.header || storage.load(fromByteOffset: head + 12, as: UInt32.self) == Self.gap {
            used -= capacity - head
            head = 0
        }
    }

    /// The oldest record's stamp.
    public mutating func firstStamp() -> UInt64? {
        guard count > 0 else { return nil }
        skipGap()
        return storage.load(fromByteOffset: head, as: UInt64.self)
    }

    /// Hands records, oldest first, to `body(stamp, tag, bytes)` while `take(stamp)` says so and
    /// fewer than `max` were handed. Returns how many.
    @discardableResult
    public mutating func drain(max: Int = .max, while take: (UInt64) -> Bool = { _ in true },
                               _ body: (UInt64, UInt32, UnsafeRawBufferPointer) -> Void) -> Int {
        var n = 0
        while count > 0 && n < max {
            skipGap()
            let stamp = storage.load(fromByteOffset: head, as: UInt64.self)
            guard take(stamp) else { break }
            let tag = storage.load(fromByteOffset: head + 8, as: UInt32.self)
            let length = Int(storage.load(fromByteOffset: head + 12, as: UInt32.self))
            body(stamp, tag, UnsafeRawBufferPointer(start: storage + head + Self.header, count: length))
            let size = Self.size(length)
            head += size
            if head == capacity { head = 0 }
            used -= size
            count -= 1
            n += 1
        }
        if count == 0 { head = 0; tail = 0; used = 0 }
        return n
    }
}
