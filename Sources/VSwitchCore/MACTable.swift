/// The forwarding database: (VLAN, MAC) -> port, with ageing, static entries and a hard limit.
///
/// Open addressing with linear probing over a power-of-two array sized at creation to at least
/// twice the limit, so the load factor never passes 0.5 and learning never allocates. Keys pack
/// the 48-bit MAC and the 12-bit VLAN into one UInt64 (bit 63 marks a used slot); a slot is two
/// words, the key and a value packing port (bits 0-15), static flag (bit 16) and last-seen second
/// (bits 32-63), so refreshing a known MAC on its port is one compare and one store. Hashing
/// mixes in a per-table random seed, so a sender cannot choose MACs that collide. Deletion shifts
/// later entries back (no tombstones), so lookups stay short after churn.
///
/// Like OVS's mac-learning, the limit is hard: when full, new MACs are not learned (counted in
/// `learnRefused`) while existing entries keep working, so a random-source flood cannot exhaust
/// memory or evict the hosts that are already known.
///
/// Mutable state lives behind pointers, never in class `var`s, so the per-frame path pays for no
/// exclusivity checks; the switch copies `layout` into registers once per batch.
public final class MACTable {
    public struct Entry: Equatable {
        @usableFromInline var key: UInt64
        @usableFromInline var value: UInt64

        @usableFromInline static let staticBit: UInt64 = 1 << 16

        @inlinable init(key: UInt64, value: UInt64) { self.key = key; self.value = value }

        @inlinable static func value(port: PortNumber, isStatic: Bool, lastSeen: UInt32) -> UInt64 {
            UInt64(UInt16(truncatingIfNeeded: port)) | (isStatic ? staticBit : 0) | UInt64(lastSeen) << 32
        }

        @inlinable public var mac: UInt64 { key & 0xFFFF_FFFF_FFFF }
        @inlinable public var vlan: UInt16 { UInt16(truncatingIfNeeded: key >> 48) & 0xFFF }
        @inlinable public var portNumber: PortNumber { Int(value & 0xFFFF) }
        @inlinable public var isStaticEntry: Bool { value & Self.staticBit != 0 }
        /// Seconds on the switch clock when the entry was last refreshed.
        @inlinable public var lastSeenSeconds: UInt32 { UInt32(truncatingIfNeeded: value >> 32) }
    }

    public enum LearnResult: Equatable {
        case refreshed, learned, moved, refused, staticConflict
    }

    /// Where the slots are and how keys map to them: fixed for the table's life.
    @usableFromInline struct Layout {
        @usableFromInline let slots: UnsafeMutablePointer<Entry>
        @usableFromInline let mask: Int
        @usableFromInline let shift: UInt64
        @usableFromInline let seed: UInt64

        @inlinable init(slots: UnsafeMutablePointer<Entry>, mask: Int, shift: UInt64, seed: UInt64) {
            self.slots = slots; self.mask = mask; self.shift = shift; self.seed = seed
        }

        @inlinable @inline(__always)
        func home(_ key: UInt64) -> Int {
            Int(truncatingIfNeeded: ((key ^ seed) &* 0x9E37_79B9_7F4A_7C15) &>> shift)
        }

        /// The slot holding `key`, or the empty slot where it would go.
        @inlinable @inline(__always)
        func slot(for key: UInt64) -> UnsafeMutablePointer<Entry> {
            var i = home(key)
            while true {
                let k = slots[i].key
                if k == key || k == 0 { return slots + i }
                i = (i &+ 1) & mask
            }
        }
    }

    /// Counts that change as the table is used.
    @usableFromInline struct State {
        @usableFromInline var count = 0
        @usableFromInline var learned: UInt64 = 0
        @usableFromInline var moved: UInt64 = 0
        @usableFromInline var aged: UInt64 = 0
        @usableFromInline var learnRefused: UInt64 = 0
        @usableFromInline var limit: Int
        /// Entries per port, and each port's limit (0: none), indexed by port number.
        @usableFromInline let portCounts: UnsafeMutablePointer<Int32>
        @usableFromInline let portLimits: UnsafeMutablePointer<Int32>
        @usableFromInline let portCount: Int
        /// Recent moves, for MAC-move (flapping) detection; touched only when a MAC moves.
        @usableFromInline let movers: UnsafeMutablePointer<MoveTracker>
        @inlinable init(limit: Int, portCount: Int) {
            self.limit = limit
            self.portCount = portCount
            movers = .allocate(capacity: 1)
            movers.initialize(to: MoveTracker())
            portCounts = .allocate(capacity: portCount)
            portCounts.initialize(repeating: 0, count: portCount)
            portLimits = .allocate(capacity: portCount)
            portLimits.initialize(repeating: 0, count: portCount)
        }

        /// Whether `port` may take one more entry.
        @inlinable func hasRoom(_ port: Int) -> Bool {
            let l = portLimits[port]
            return l == 0 || portCounts[port] < l
        }
    }

    @usableFromInline let layout: Layout
    @usableFromInline let state: UnsafeMutablePointer<State>
    public let slotCount: Int

    @usableFromInline static let used: UInt64 = 1 << 63

    /// A table for at most `limit` entries on ports 0 ..< `portCount`.
    public init(limit: Int, portCount: Int = 1024, seed: UInt64 = UInt64.random(in: 1...UInt64.max)) {
        precondition(limit >= 1 && portCount >= 1 && portCount <= 65_536)
        var size = 16
        while size < limit * 2 { size <<= 1 }
        slotCount = size
        let slots = UnsafeMutablePointer<Entry>.allocate(capacity: size)
        slots.initialize(repeating: Entry(key: 0, value: 0), count: size)
        layout = Layout(slots: slots, mask: size - 1, shift: UInt64(64 - size.trailingZeroBitCount), seed: seed | 1)
        state = .allocate(capacity: 1)
        state.initialize(to: State(limit: limit, portCount: portCount))
    }

    deinit {
        layout.slots.deallocate()
        state.pointee.portCounts.deallocate()
        state.pointee.portLimits.deallocate()
        state.pointee.movers.pointee.release()
        state.pointee.movers.deallocate()
        state.deallocate()
    }

    /// Most entries port `port` may hold (learned and static); 0 for no limit beyond the table's.
    public func setLimit(_ limit: Int, for port: PortNumber) {
        guard port >= 0, port < state.pointee.portCount else { return }
        state.pointee.portLimits[port] = Int32(clamping: limit)
    }

    public func limit(for port: PortNumber) -> Int {
        port >= 0 && port < state.pointee.portCount ? Int(state.pointee.portLimits[port]) : 0
    }

    /// MACs flagged as moving back and forth (more than `MoveTracker.threshold` moves within
    /// `MoveTracker.window` seconds), cumulative.
    public var flapping: UInt64 { state.pointee.movers.pointee.flagged }

    /// Whether `key` is currently flagged as moving back and forth.
    public func isFlapping(_ key: UInt64, now: UInt32) -> Bool { state.pointee.movers.pointee.isFlapping(key, now: now) }

    /// Takes the flapping events since the last call (control path: for log lines).
    public func takeMoveEvents() -> [MoveEvent] { state.pointee.movers.pointee.take() }

    /// Entries on `port`.
    public func count(on port: PortNumber) -> Int {
        port >= 0 && port < state.pointee.portCount ? Int(state.pointee.portCounts[port]) : 0
    }

    /// Most entries the table accepts (static and learned together).
    public var limit: Int { state.pointee.limit }
    /// Entries in use.
    public var count: Int { state.pointee.count }
    public var learned: UInt64 { get { state.pointee.learned } set { state.pointee.learned = newValue } }
    public var moved: UInt64 { get { state.pointee.moved } set { state.pointee.moved = newValue } }
    public var aged: UInt64 { get { state.pointee.aged } set { state.pointee.aged = newValue } }
    public var learnRefused: UInt64 { get { state.pointee.learnRefused } set { state.pointee.learnRefused = newValue } }

    /// Packs a VLAN and a MAC into a table key.
    @inlinable @inline(__always)
    public static func key(mac: UInt64, vlan: UInt16) -> UInt64 {
        used | (UInt64(vlan & 0xFFF) << 48) | (mac & 0xFFFF_FFFF_FFFF)
    }

    /// The port for `key`, or -1.
    @inlinable @inline(__always)
    public func lookup(_ key: UInt64) -> PortNumber {
        Self.lookup(key, in: layout)
    }

    @inlinable @inline(__always)
    static func lookup(_ key: UInt64, in layout: Layout) -> PortNumber {
        let s = layout.slot(for: key)
        return s.pointee.key == key ? Int(s.pointee.value & 0xFFFF) : -1
    }

    /// Learns that `key` was seen on `port` at `now` (seconds).
    @inlinable @inline(__always) @discardableResult
    public func learn(_ key: UInt64, port: PortNumber, now: UInt32) -> LearnResult {
        Self.learn(key, fresh: Entry.value(port: port, isStatic: false, lastSeen: now), in: layout, state: state)
    }

    /// The per-frame learning step. `fresh` is the learned value for (port, now), computed once
    /// per batch; the common case, a known MAC on the same port, is a compare and a store.
    @inlinable @inline(__always) @discardableResult
    static func learn(_ key: UInt64, fresh: UInt64, in layout: Layout, state: UnsafeMutablePointer<State>) -> LearnResult {
        let s = layout.slot(for: key)
        if s.pointee.key == key {
            let v = s.pointee.value
            // Same port and not static (the static bit is in the low 32 bits): refresh.
            if UInt32(truncatingIfNeeded: v) == UInt32(truncatingIfNeeded: fresh) {
                s.pointee.value = fresh
                return .refreshed
            }
            return relearn(s, fresh: fresh, state: state)
        }
        let port = Int(fresh & 0xFFFF)
        if state.pointee.count >= state.pointee.limit || !state.pointee.hasRoom(port) {
            state.pointee.learnRefused &+= 1
            return .refused
        }
        s.pointee = Entry(key: key, value: fresh)
        state.pointee.count &+= 1
        state.pointee.portCounts[port] &+= 1
        state.pointee.learned &+= 1
        return .learned
    }

    /// A known key seen on another port, or a static entry.
    @usableFromInline
    static func relearn(_ s: UnsafeMutablePointer<Entry>, fresh: UInt64, state: UnsafeMutablePointer<State>) -> LearnResult {
        let v = s.pointee.value
        if v & Entry.staticBit != 0 {
            return v & 0xFFFF == fresh & 0xFFFF ? .refreshed : .staticConflict
        }
        let old = Int(v & 0xFFFF), new = Int(fresh & 0xFFFF)
        // A port at its limit takes no MAC from another port either: the entry stays where it was.
        guard state.pointee.hasRoom(new) else {
            state.pointee.learnRefused &+= 1
            return .refused
        }
        s.pointee.value = fresh
        state.pointee.portCounts[old] &-= 1
        state.pointee.portCounts[new] &+= 1
        state.pointee.moved &+= 1
        state.pointee.movers.pointee.record(s.pointee.key, from: old, to: new, now: UInt32(truncatingIfNeeded: fresh >> 32))
        return .moved
    }

    /// Adds or replaces a static entry. False when the table is full.
    @discardableResult
    public func addStatic(_ key: UInt64, port: PortNumber) -> Bool {
        let s = layout.slot(for: key)
        if s.pointee.key != key {
            guard count < limit else { return false }
            state.pointee.count += 1
        } else {
            state.pointee.portCounts[s.pointee.portNumber] -= 1
        }
        s.pointee = Entry(key: key, value: Entry.value(port: port, isStatic: true, lastSeen: 0))
        state.pointee.portCounts[port] += 1
        return true
    }

    /// Removes `key`; returns whether it was present.
    @discardableResult
    public func remove(_ key: UInt64) -> Bool {
        let s = layout.slot(for: key)
        guard s.pointee.key == key else { return false }
        delete(at: s - layout.slots)
        return true
    }

    /// Removes learned entries not refreshed for `ageingTime` seconds. Returns how many aged out.
    @discardableResult
    public func sweep(now: UInt32, ageingTime: UInt32) -> Int {
        let n = removeAll { e in !e.isStaticEntry && now &- e.lastSeenSeconds >= ageingTime }
        state.pointee.aged &+= UInt64(n)
        return n
    }

    /// Removes learned (or, with `includingStatic`, all) entries on `port`, or on every port if nil.
    @discardableResult
    public func flush(port: PortNumber? = nil, includingStatic: Bool = false) -> Int {
        removeAll { e in (includingStatic || !e.isStaticEntry) && (port == nil || e.portNumber == port!) }
    }

    /// Every entry, for snapshots (allocates; control path only).
    public var entries: [Entry] {
        var out: [Entry] = []
        out.reserveCapacity(count)
        for i in 0..<slotCount where layout.slots[i].key != 0 { out.append(layout.slots[i]) }
        return out
    }

    // MARK: - Internals

    /// Backward-shift deletion: pulls later entries of the same probe run into the hole.
    func delete(at index: Int) {
        let slots = layout.slots, mask = layout.mask
        state.pointee.portCounts[slots[index].portNumber] -= 1
        var hole = index
        var j = index
        while true {
            j = (j + 1) & mask
            let k = slots[j].key
            if k == 0 { break }
            let h = layout.home(k)
            // Move slots[j] into the hole unless its home lies cyclically in (hole, j].
            let inRange = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
            if !inRange {
                slots[hole] = slots[j]
                hole = j
            }
        }
        slots[hole].key = 0
        state.pointee.count -= 1
    }

    private func removeAll(where shouldRemove: (Entry) -> Bool) -> Int {
        // Collect first, then delete: backward shifts would otherwise move entries past the cursor.
        var doomed: [UInt64] = []
        for i in 0..<slotCount where layout.slots[i].key != 0 && shouldRemove(layout.slots[i]) { doomed.append(layout.slots[i].key) }
        for k in doomed { remove(k) }
        return doomed.count
    }
}

/// A MAC seen moving between ports more than `MoveTracker.threshold` times within
/// `MoveTracker.window` seconds: usually a loop, or two hosts using one MAC.
public struct MoveEvent: Sendable, Equatable {
    public var key: UInt64
    public var from: PortNumber
    public var to: PortNumber
    public var moves: Int
    public var mac: UInt64 { key & 0xFFFF_FFFF_FFFF }
    public var vlan: UInt16 { UInt16(truncatingIfNeeded: key >> 48) & 0xFFF }
}

/// MAC-move detection in fixed memory: a small direct-mapped table of recent movers (a busy
/// mover may evict another; detection is a heuristic, like OVS's), and a bounded list of events
/// for the control plane to log. Only the move path touches it.
public struct MoveTracker {
    public static let threshold = 5
    public static let window: UInt32 = 10
    static let slotCount = 256
    static let eventCapacity = 64

    struct Slot { var key: UInt64 = 0; var start: UInt32 = 0; var moves: UInt16 = 0; var flagged = false }
    let slots: UnsafeMutablePointer<Slot>
    var events: UnsafeMutablePointer<MoveEvent>
    var eventCount = 0
    var flagged: UInt64 = 0

    @usableFromInline init() {
        slots = .allocate(capacity: Self.slotCount)
        slots.initialize(repeating: Slot(), count: Self.slotCount)
        events = .allocate(capacity: Self.eventCapacity)
    }

    @usableFromInline func release() {
        slots.deallocate()
        events.deallocate()
    }

    @usableFromInline
    mutating func record(_ key: UInt64, from: Int, to: Int, now: UInt32) {
        let i = Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 56) & (Self.slotCount - 1)
        let s = slots + i
        if s.pointee.key != key || now &- s.pointee.start >= Self.window {
            s.pointee = Slot(key: key, start: now, moves: 1, flagged: false)
            return
        }
        s.pointee.moves &+= 1
        if Int(s.pointee.moves) > Self.threshold && !s.pointee.flagged {
            s.pointee.flagged = true
            flagged &+= 1
            if eventCount < Self.eventCapacity {
                events[eventCount] = MoveEvent(key: key, from: from, to: to, moves: Int(s.pointee.moves))
                eventCount += 1
            }
        }
    }

    func isFlapping(_ key: UInt64, now: UInt32) -> Bool {
        let i = Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 56) & (Self.slotCount - 1)
        return slots[i].key == key && slots[i].flagged && now &- slots[i].start < Self.window
    }

    mutating func take() -> [MoveEvent] {
        defer { eventCount = 0 }
        return (0..<eventCount).map { events[$0] }
    }
}
