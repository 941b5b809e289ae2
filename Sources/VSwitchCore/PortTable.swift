/// Per-port state of a switch, as one struct of arrays in one allocation.
///
/// Each array has one element per port number (`0 ..< capacity`); a port's state is the elements
/// at its number. `reset(_:)` is the one place that says what a freshly attached port starts
/// with, so new per-port state means editing this type (a field, its size in `init`, its value in
/// `reset`) and the code that uses it, nowhere else.
///
/// The fields are pointers that never change after `init`, so the forwarding loop copies the ones
/// it needs into locals once per batch (as `MACTable.Layout` does) and pays no exclusivity checks,
/// reference counts or bounds checks per frame.
@usableFromInline
struct PortTable {
    /// Port numbers are `0 ..< capacity`.
    @usableFromInline let capacity: Int
    /// Frames per batch: the length of each port's transmit queue.
    @usableFromInline let batchCapacity: Int

    /// Counter rows (`counterStride` words per port).
    @usableFromInline let counterRows: UnsafeMutablePointer<UInt64>
    /// `PortCounters.wordCount`, kept here so the packet path reads a field, not a lazy global.
    @usableFromInline let counterStride: Int
    /// Transmit queues: frame indices for port n at `txQueues[n * batchCapacity ..< + txCounts[n]]`.
    @usableFromInline let txQueues: UnsafeMutablePointer<UInt16>
    @usableFromInline let txCounts: UnsafeMutablePointer<Int>
    /// Rate limits for flooded (broadcast, multicast, unknown unicast) ingress frames.
    @usableFromInline let floodLimits: UnsafeMutablePointer<FloodLimit>
    /// Trunk membership: 4,096 bits (64 words) per port.
    @usableFromInline let vlanMembers: UnsafeMutablePointer<UInt64>
    /// VLAN mode and tag (access VLAN, or a trunk's native VLAN; 0 for none).
    @usableFromInline let vlanTags: UnsafeMutablePointer<UInt16>
    @usableFromInline let vlanModes: UnsafeMutablePointer<VLANMode>
    /// `LearningSwitch.PortOptions` bits.
    @usableFromInline let options: UnsafeMutablePointer<UInt8>
    /// `SpanningTree.ForwardingState` (0 forwarding, 1 learning, 2 discarding).
    @usableFromInline let forwardingStates: UnsafeMutablePointer<UInt8>
    @usableFromInline let isAttached: UnsafeMutablePointer<Bool>

    init(capacity: Int, batchCapacity: Int) {
        self.capacity = capacity
        self.batchCapacity = batchCapacity
        counterStride = PortCounters.wordCount
        // One allocation, cut into arrays in order of decreasing alignment.
        var layout = Carver()
        let counters = layout.reserve(UInt64.self, capacity * PortCounters.wordCount)
        let members = layout.reserve(UInt64.self, capacity * 64)
        let limits = layout.reserve(FloodLimit.self, capacity)
        let counts = layout.reserve(Int.self, capacity)
        let queues = layout.reserve(UInt16.self, capacity * batchCapacity)
        let tags = layout.reserve(UInt16.self, capacity)
        let modes = layout.reserve(VLANMode.self, capacity)
        let opts = layout.reserve(UInt8.self, capacity)
        let states = layout.reserve(UInt8.self, capacity)
        let attached = layout.reserve(Bool.self, capacity)
        let base = UnsafeMutableRawPointer.allocate(byteCount: layout.size, alignment: 64)
        counterRows = (base + counters).bindMemory(to: UInt64.self, capacity: capacity * PortCounters.wordCount)
        vlanMembers = (base + members).bindMemory(to: UInt64.self, capacity: capacity * 64)
        floodLimits = (base + limits).bindMemory(to: FloodLimit.self, capacity: capacity)
        txCounts = (base + counts).bindMemory(to: Int.self, capacity: capacity)
        txQueues = (base + queues).bindMemory(to: UInt16.self, capacity: capacity * batchCapacity)
        vlanTags = (base + tags).bindMemory(to: UInt16.self, capacity: capacity)
        vlanModes = (base + modes).bindMemory(to: VLANMode.self, capacity: capacity)
        options = (base + opts).bindMemory(to: UInt8.self, capacity: capacity)
        forwardingStates = (base + states).bindMemory(to: UInt8.self, capacity: capacity)
        isAttached = (base + attached).bindMemory(to: Bool.self, capacity: capacity)
        txQueues.initialize(repeating: 0, count: capacity * batchCapacity)
        isAttached.initialize(repeating: false, count: capacity)
        for n in 0..<capacity { reset(n) }
    }

    /// Frees the allocation (the owning switch's deinit).
    func deallocate() { UnsafeMutableRawPointer(counterRows).deallocate() }

    /// Gives port `n` the state of a port just attached: zero counters, no options, no VLAN
    /// mode, no flood limit, forwarding, nothing queued. (`isAttached` is the caller's.)
    @usableFromInline
    func reset(_ n: PortNumber) {
        (counterRows + n * counterStride).initialize(repeating: 0, count: counterStride)
        (vlanMembers + n * 64).initialize(repeating: 0, count: 64)
        (floodLimits + n).initialize(to: FloodLimit())
        (txCounts + n).initialize(to: 0)
        (vlanTags + n).initialize(to: 0)
        (vlanModes + n).initialize(to: .none)
        (options + n).initialize(to: 0)
        (forwardingStates + n).initialize(to: 0)
    }

    /// Port `n`'s counters, live.
    @inlinable @inline(__always)
    func counters(_ n: PortNumber) -> PortCounters {
        PortCounters(row: counterRows + n &* counterStride)
    }

    /// Port `n`'s transmit queue.
    @inlinable @inline(__always)
    func queue(_ n: PortNumber) -> UnsafeMutablePointer<UInt16> { txQueues + n &* batchCapacity }

    /// Appends frame `index` to port `out`'s transmit queue.
    @inlinable @inline(__always)
    func enqueue(_ index: UInt16, for out: PortNumber) {
        let n = txCounts[out]
        txQueues[out &* batchCapacity &+ n] = index
        txCounts[out] = n &+ 1
    }

    /// Byte offsets of arrays within one allocation.
    private struct Carver {
        var size = 0
        mutating func reserve<T>(_: T.Type, _ count: Int) -> Int {
            let offset = (size + MemoryLayout<T>.alignment - 1) / MemoryLayout<T>.alignment * MemoryLayout<T>.alignment
            size = offset + MemoryLayout<T>.stride * count
            return offset
        }
    }
}

/// A token bucket for one port's flooded ingress frames (`broadcast-limit=PPS`).
@usableFromInline struct FloodLimit {
    /// Frames per second; 0 for no limit.
    @usableFromInline var rate: UInt64 = 0
    @usableFromInline var tokens: UInt64 = 0
    @usableFromInline var refilled: UInt64 = 0
    @inlinable init() {}

    /// Adds the tokens earned since the last refill, up to one second's worth (the burst).
    @inlinable mutating func refill(now: UInt64) {
        guard now > refilled else { return }
        let earned = (now - refilled) / 1_000_000 &* rate / 1000
        if earned > 0 || tokens >= rate {
            tokens = min(rate, tokens &+ earned)
            refilled = now
        }
    }

    /// Takes a token for one flooded frame; false when none is left.
    @inlinable @inline(__always) mutating func take() -> Bool {
        if tokens == 0 { return false }
        tokens &-= 1
        return true
    }
}

/// The ports a frame can be flooded to: attached ports in attach order, and those of them that
/// forward (every attached port while the spanning tree is off). Counts sit behind pointers, like
/// all per-frame state.
@usableFromInline
struct FloodSet {
    /// Attached port numbers in attach order: `attached[0 ..< attachedCount.pointee]`.
    @usableFromInline let attached: UnsafeMutablePointer<Int>
    @usableFromInline let attachedCount: UnsafeMutablePointer<Int>
    /// The attached ports that forward, in attach order: `ports[0 ..< count.pointee]`.
    @usableFromInline let ports: UnsafeMutablePointer<Int>
    @usableFromInline let count: UnsafeMutablePointer<Int>

    init(capacity: Int) {
        let base = UnsafeMutablePointer<Int>.allocate(capacity: 2 * capacity + 2)
        base.initialize(repeating: 0, count: 2 * capacity + 2)
        attachedCount = base
        count = base + 1
        attached = base + 2
        ports = base + 2 + capacity
    }

    func deallocate() { attachedCount.deallocate() }

    var attachedPorts: [PortNumber] { (0..<attachedCount.pointee).map { attached[$0] } }

    func append(_ n: PortNumber) {
        attached[attachedCount.pointee] = n
        attachedCount.pointee += 1
    }

    func remove(_ n: PortNumber) {
        let count = attachedCount.pointee
        guard let i = (0..<count).first(where: { attached[$0] == n }) else { return }
        (attached + i).update(from: attached + i + 1, count: count - i - 1)
        attachedCount.pointee = count - 1
    }

    /// Rebuilds the forwarding set from the attached ports' states.
    func rebuild(states: UnsafeMutablePointer<UInt8>) {
        var k = 0
        for a in 0..<attachedCount.pointee where states[attached[a]] == 0 {
            ports[k] = attached[a]
            k += 1
        }
        count.pointee = k
    }
}

/// BPDUs received during a batch, kept for the spanning tree until the batch is done: frames of
/// up to `slotSize` bytes in fixed slots, with the ports they came from.
@usableFromInline
struct BPDUInbox {
    @usableFromInline static var slots: Int { 64 }
    @usableFromInline static var slotSize: Int { 128 }
    @usableFromInline let frames: UnsafeMutableRawPointer
    @usableFromInline let lengths: UnsafeMutablePointer<Int>
    @usableFromInline let ports: UnsafeMutablePointer<Int>
    @usableFromInline let count: UnsafeMutablePointer<Int>

    init() {
        frames = .allocate(byteCount: Self.slots * Self.slotSize, alignment: 8)
        let words = UnsafeMutablePointer<Int>.allocate(capacity: 2 * Self.slots + 1)
        words.initialize(repeating: 0, count: 2 * Self.slots + 1)
        count = words
        lengths = words + 1
        ports = words + 1 + Self.slots
    }

    func deallocate() {
        frames.deallocate()
        count.deallocate()
    }

    /// Keeps a copy of `frame` (its first `slotSize` bytes); false when the inbox is full.
    func append(_ frame: UnsafeRawPointer, length: Int, port: PortNumber) -> Bool {
        let n = count.pointee
        guard n < Self.slots else { return false }
        let kept = min(length, Self.slotSize)
        (frames + n * Self.slotSize).copyMemory(from: frame, byteCount: kept)
        lengths[n] = kept
        ports[n] = port
        count.pointee = n + 1
        return true
    }

    func frame(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: frames + i * Self.slotSize, count: lengths[i])
    }
}

/// Scratch for the batch being forwarded, one element per frame of a batch.
@usableFromInline
struct BatchScratch {
    /// Per frame: its VLAN, with `VLANMode.taggedBit` if it carries an 802.1Q tag as received.
    @usableFromInline let frameVLANs: UnsafeMutablePointer<UInt16>
    /// Frames sent to a reserved link-local group (indices), handled after the loop, so the loop
    /// makes no calls for them.
    @usableFromInline let linkLocalFrames: UnsafeMutablePointer<UInt16>
    @usableFromInline let linkLocalCount: UnsafeMutablePointer<Int>
    /// `0, 1, 2, ...`: the indices of a batch of retagged copies.
    @usableFromInline let identity: UnsafeMutablePointer<UInt16>

    init(batchCapacity: Int) {
        let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: 3 * batchCapacity)
        halves.initialize(repeating: 0, count: 3 * batchCapacity)
        frameVLANs = halves
        linkLocalFrames = halves + batchCapacity
        identity = halves + 2 * batchCapacity
        for i in 0..<batchCapacity { identity[i] = UInt16(i) }
        linkLocalCount = .allocate(capacity: 1)
        linkLocalCount.initialize(to: 0)
    }

    func deallocate() {
        frameVLANs.deallocate()
        linkLocalCount.deallocate()
    }

    /// Notes frame `f` as sent to a reserved link-local group (two stores, no call).
    @inlinable @inline(__always)
    func deferLinkLocal(_ f: Int) {
        let n = linkLocalCount.pointee
        linkLocalFrames[n] = UInt16(truncatingIfNeeded: f)
        linkLocalCount.pointee = n &+ 1
    }
}
