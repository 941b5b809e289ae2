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
    func service(now: UInt64, counters: PortCounters)
}

/// A timed port whose impairment the control plane can change (through the data plane).
public protocol ImpairablePort: TimedPort {
    var impairment: Impairment { get set }
}

/// A FIFO of frames with departure times (a `RecordRing`), owned by the port's data-plane thread.
public final class DelayLine {
    public let capacity: Int
    /// Records: stamp = departure time, tag = offload length, bytes = offload header and frame.
    private var ring: RecordRing
    public var count: Int { ring.count }
    private var lastDeparture: UInt64 = 0
    private var rng: UInt64
    public var impairment: Impairment

    public init(capacity: Int = 8 << 20, impairment: Impairment, seed: UInt64 = 0x5DEE_CE66_D1CE_B00C) {
        self.capacity = capacity
        self.impairment = impairment
        ring = RecordRing(capacity: capacity)
        rng = seed | 1
    }

    deinit { ring.deallocate() }

    @inline(__always) private func random() -> UInt64 {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
        return rng
    }

    /// Whether the next frame is lost (draws from the loss probability).
    public func dropsNext() -> Bool {
        impairment.lossPPM > 0 && random() % 1_000_000 < UInt64(impairment.lossPPM)
    }

    /// The departure time of the oldest held frame.
    public var nextDeparture: UInt64? { ring.firstStamp() }

    /// Holds `length` bytes at `bytes` (`offloadLength` of them offload metadata before the
    /// frame) until their departure. False when the line is full.
    public func enqueue(_ bytes: UnsafeRawPointer, length: Int, offloadLength: Int, now: UInt64) -> Bool {
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
        guard ring.append(stamp: departure, tag: UInt32(offloadLength), bytes, count: length) else { return false }
        lastDeparture = departure
        return true
    }

    /// Hands every frame due at `now` to `body(bytes, length, offloadLength)`, oldest first.
    /// Returns how many left.
    @discardableResult
    public func dequeue(now: UInt64, _ body: (UnsafeRawPointer, Int, Int) -> Void) -> Int {
        ring.drain(while: { $0 <= now }) { _, offload, bytes in body(bytes.baseAddress!, bytes.count, Int(offload)) }
    }
}
