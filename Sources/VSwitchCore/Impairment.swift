/// Impairments a port applies to the frames it transmits: delay with jitter, random loss, and a
/// rate limit. They make labs behave like real links on any kernel (this one has no netem), the
/// way VDE's wirefilter does.
///
/// Frames are copied into a `DelayLine` (the packet buffers must go back to the pool after each
/// batch) and leave when their departure time comes: `max(now + delay ± jitter, previous departure)`
/// plus, with a rate, the previous frame's serialisation time. Frames never reorder. A full line
/// drops the frame as `tx-queue-full`, like a qdisc's limit.
public struct Impairment: Sendable, Equatable {
    public var delayNanoseconds: UInt64 = 0
    public var jitterNanoseconds: UInt64 = 0
    /// Loss probability as parts per million (0 ... 1,000,000).
    public var lossPPM: UInt32 = 0
    /// Bytes per second; 0 for no limit.
    public var rateBytesPerSecond: UInt64 = 0

    public init(delayNanoseconds: UInt64 = 0, jitterNanoseconds: UInt64 = 0, lossPPM: UInt32 = 0, rateBytesPerSecond: UInt64 = 0) {
        self.delayNanoseconds = delayNanoseconds
        self.jitterNanoseconds = jitterNanoseconds
        self.lossPPM = lossPPM
        self.rateBytesPerSecond = rateBytesPerSecond
    }

    public var isNone: Bool { delayNanoseconds == 0 && jitterNanoseconds == 0 && lossPPM == 0 && rateBytesPerSecond == 0 }
    /// Whether frames must wait in a delay line (loss alone needs none).
    public var needsQueue: Bool { delayNanoseconds > 0 || jitterNanoseconds > 0 || rateBytesPerSecond > 0 }
}

/// A port whose transmit path holds frames for later: the data plane calls `service` when
/// `nextDeadline` has come (and keeps its epoll timeout no longer than that).
public protocol TimedPort: Port {
    /// Whether the port holds frames at all now (an impairment with a delay line): only then does
    /// the data plane serve it between batches.
    var isTimed: Bool { get }
    /// The earliest time (nanoseconds, the data plane's clock) a held frame is due; nil if none.
    var nextDeadline: UInt64? { get }
    /// Sends what is due at `now`.
    func service(now: UInt64, counters: inout PortCounters)
}

/// A timed port whose impairment the control plane can change (through the data plane).
public protocol ImpairablePort: TimedPort {
    var impairment: Impairment { get set }
}

/// A FIFO of frames with departure times, in one fixed allocation (a byte ring), owned by the
/// port's data-plane thread.
public final class DelayLine {
    public let capacity: Int
    private let storage: UnsafeMutableRawPointer
    private var head = 0      // offset of the oldest record
    private var tail = 0      // offset where the next record goes
    private var used = 0      // bytes in use, including wrap padding
    public private(set) var count = 0
    private var lastDeparture: UInt64 = 0
    private var rng: UInt64
    public var impairment: Impairment

    /// A record: departure time (8 bytes), frame length (4), offload length (4), the bytes,
    /// padded to 8. A length of UInt32.max marks padding up to the end of the ring.
    static let recordHeader = 16
    static let wrapMarker = UInt32.max

    public init(capacity: Int = 8 << 20, impairment: Impairment, seed: UInt64 = 0x5DEE_CE66_D1CE_B00C) {
        self.capacity = capacity
        self.impairment = impairment
        storage = .allocate(byteCount: capacity, alignment: 8)
        rng = seed | 1
    }

    deinit { storage.deallocate() }

    @inline(__always) private func random() -> UInt64 {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
        return rng
    }

    /// Whether the next frame is lost (draws from the loss probability).
    public func dropsNext() -> Bool {
        impairment.lossPPM > 0 && random() % 1_000_000 < UInt64(impairment.lossPPM)
    }

    /// The departure time of the oldest held frame.
    public var nextDeparture: UInt64? {
        guard count > 0 else { return nil }
        skipPadding()
        return storage.load(fromByteOffset: head, as: UInt64.self)
    }

    /// Moves `head` past wrap padding at the end of the ring.
    private func skipPadding() {
        if capacity - head < Self.recordHeader || storage.load(fromByteOffset: head + 8, as: UInt32.self) == Self.wrapMarker {
            used -= capacity - head
            head = 0
        }
    }

    /// Holds `length` bytes at `bytes` (`offloadLength` of them offload metadata before the
    /// frame) until their departure. False when the line is full.
    public func enqueue(_ bytes: UnsafeRawPointer, length: Int, offloadLength: Int, now: UInt64) -> Bool {
        let size = (Self.recordHeader + length + 7) & ~7
        guard size <= capacity else { return false }
        var start = tail
        var padding = 0
        if start + size > capacity { padding = capacity - start; start = 0 }
        guard used + padding + size <= capacity else { return false }
        if padding > 0 {
            if padding >= 12 { storage.storeBytes(of: Self.wrapMarker, toByteOffset: tail + 8, as: UInt32.self) }
            used += padding
        }
        let imp = impairment
        var departure = now &+ imp.delayNanoseconds
        if imp.jitterNanoseconds > 0 {
            let j = random() % (2 * imp.jitterNanoseconds + 1)
            departure = departure &+ j &- min(imp.jitterNanoseconds, departure)
        }
        departure = max(departure, lastDeparture)
        if imp.rateBytesPerSecond > 0 {
            departure = max(departure, lastDeparture &+ UInt64(length) &* 1_000_000_000 / imp.rateBytesPerSecond)
        }
        lastDeparture = departure
        storage.storeBytes(of: departure, toByteOffset: start, as: UInt64.self)
        storage.storeBytes(of: UInt32(length), toByteOffset: start + 8, as: UInt32.self)
        storage.storeBytes(of: UInt32(offloadLength), toByteOffset: start + 12, as: UInt32.self)
        (storage + start + Self.recordHeader).copyMemory(from: bytes, byteCount: length)
        tail = start + size
        if tail == capacity { tail = 0 }
        used += size
        count += 1
        return true
    }

    /// Hands every frame due at `now` to `body(bytes, length, offloadLength)`, oldest first.
    /// Returns how many left.
    @discardableResult
    public func dequeue(now: UInt64, _ body: (UnsafeRawPointer, Int, Int) -> Void) -> Int {
        var sent = 0
        while count > 0 {
            skipPadding()
            let departure = storage.load(fromByteOffset: head, as: UInt64.self)
            if departure > now { break }
            let length = Int(storage.load(fromByteOffset: head + 8, as: UInt32.self))
            let offload = Int(storage.load(fromByteOffset: head + 12, as: UInt32.self))
            body(UnsafeRawPointer(storage + head + Self.recordHeader), length, offload)
            let size = (Self.recordHeader + length + 7) & ~7
            head += size
            if head == capacity { head = 0 }
            used -= size
            count -= 1
            sent += 1
        }
        if count == 0 { head = 0; tail = 0; used = 0 }
        return sent
    }
}
