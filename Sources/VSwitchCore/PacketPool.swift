/// A fixed pool of packet buffers carved from one allocation, owned by one data-plane thread.
///
/// The pool never grows: a thread asks for its buffers once, as `PacketBatch`es, and reuses them
/// for every batch. Frames leave the pool only by being copied out (a TAP write copies into the
/// kernel synchronously), so every buffer is free again when its batch has been flushed.
public final class PacketPool {
    public static let defaultHeadroom = 128
    public static let defaultBufferSize = 65_536 + 512

    public let bufferSize: Int
    public let headroom: Int
    public let bufferCount: Int
    @usableFromInline let slab: UnsafeMutableRawPointer
    private var nextFree = 0

    public init(bufferCount: Int, bufferSize: Int = PacketPool.defaultBufferSize, headroom: Int = PacketPool.defaultHeadroom) {
        precondition(bufferCount > 0 && bufferSize > headroom + 64)
        self.bufferCount = bufferCount
        self.bufferSize = bufferSize
        self.headroom = headroom
        self.slab = .allocate(byteCount: bufferCount * bufferSize, alignment: 64)
    }

    deinit { slab.deallocate() }

    /// Hands out `capacity` buffers as a batch; nil when the pool has fewer left.
    public func makeBatch(capacity: Int) -> PacketBatch? {
        guard capacity > 0, nextFree + capacity <= bufferCount else { return nil }
        let batch = PacketBatch(pool: self, first: nextFree, capacity: capacity)
        nextFree += capacity
        return batch
    }
}

/// Up to `capacity` frames handled together: received from one port, forwarded, flushed.
public final class PacketBatch {
    public let capacity: Int
    /// Frames `buffers[0 ..< count]` are valid.
    public var count: Int = 0
    public let buffers: UnsafeMutablePointer<PacketBuffer>
    public let headroom: Int
    private let pool: PacketPool  // keeps the slab alive

    init(pool: PacketPool, first: Int, capacity: Int) {
        self.pool = pool
        self.capacity = capacity
        self.headroom = pool.headroom
        buffers = .allocate(capacity: capacity)
        for i in 0..<capacity {
            let base = pool.slab + (first + i) * pool.bufferSize
            (buffers + i).initialize(to: PacketBuffer(base: base, capacity: pool.bufferSize, offset: pool.headroom))
        }
    }

    /// A batch with its own small pool, for tests and tools.
    public convenience init(capacity: Int, bufferSize: Int = PacketPool.defaultBufferSize) {
        let pool = PacketPool(bufferCount: capacity, bufferSize: bufferSize)
        self.init(pool: pool, first: 0, capacity: capacity)
    }

    deinit { buffers.deallocate() }

    /// Empties the batch; buffers are reset as ports fill them.
    @inlinable public func reset() { count = 0 }

    @inlinable public var isFull: Bool { count == capacity }

    /// The next free buffer, reset to an empty frame at the headroom; call `commit()` once filled.
    @inlinable public var next: UnsafeMutablePointer<PacketBuffer> {
        let b = buffers + count
        b.pointee.offset = headroom
        b.pointee.length = 0
        b.pointee.offloadLength = 0
        return b
    }

    @inlinable public func commit() { count += 1 }

    /// Appends a copy of `bytes` as a frame (tests, tools, in-memory ports). False if full or too big.
    @discardableResult
    public func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard count < capacity else { return false }
        let b = next
        guard bytes.count <= b.pointee.capacity - b.pointee.offset else { return false }
        if let src = bytes.baseAddress { b.pointee.frame.copyMemory(from: src, byteCount: bytes.count) }
        b.pointee.length = bytes.count
        commit()
        return true
    }

    @discardableResult
    public func append(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { append($0) }
    }
}
