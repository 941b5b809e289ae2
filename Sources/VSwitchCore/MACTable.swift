/// The forwarding database: (VLAN, MAC) -> port, with ageing, static entries and a hard limit.
///
/// Open addressing with linear probing over a power-of-two array sized at creation to at least
/// twice the limit, so the load factor never passes 0.5 and learning never allocates. Keys pack
/// the 48-bit MAC and the 12-bit VLAN into one UInt64 (bit 63 marks a used slot); slots are 16
/// bytes. Hashing mixes in a per-table random seed, so a sender cannot choose MACs that collide.
/// Deletion shifts later entries back (no tombstones), so lookups stay short after churn.
///
/// Like OVS's mac-learning, the limit is hard: when full, new MACs are not learned (counted in
/// `learnRefused`) while existing entries keep working, so a random-source flood cannot exhaust
/// memory or evict the hosts that are already known.
public final class MACTable {
    public struct Entry: Equatable {
        @usableFromInline var key: UInt64
        @usableFromInline var port: UInt16
        @usableFromInline var isStatic: Bool
        @usableFromInline var lastSeen: UInt32

        @inlinable public var mac: UInt64 { key & 0xFFFF_FFFF_FFFF }
        @inlinable public var vlan: UInt16 { UInt16(truncatingIfNeeded: key >> 48) & 0xFFF }
        @inlinable public var portNumber: PortNumber { Int(port) }
        @inlinable public var isStaticEntry: Bool { isStatic }
        /// Seconds on the switch clock when the entry was last refreshed.
        @inlinable public var lastSeenSeconds: UInt32 { lastSeen }

        @usableFromInline init(key: UInt64, port: UInt16, isStatic: Bool, lastSeen: UInt32) {
            self.key = key
            self.port = port
            self.isStatic = isStatic
            self.lastSeen = lastSeen
        }
    }

    public enum LearnResult: Equatable {
        case refreshed, learned, moved, refused, staticConflict
    }

    @usableFromInline let slots: UnsafeMutablePointer<Entry>
    @usableFromInline let mask: Int
    @usableFromInline let shift: UInt64
    @usableFromInline let seed: UInt64
    public let slotCount: Int
    /// Most entries the table accepts (static and learned together).
    public var limit: Int
    /// Entries in use.
    public var count: Int { used_ }
    @usableFromInline var used_ = 0

    // Statistics, cumulative.
    public var learned: UInt64 = 0
    public var moved: UInt64 = 0
    public var aged: UInt64 = 0
    public var learnRefused: UInt64 = 0

    @usableFromInline static let used: UInt64 = 1 << 63

    public init(limit: Int, seed: UInt64 = UInt64.random(in: 1...UInt64.max)) {
        precondition(limit >= 1)
        self.limit = limit
        var size = 16
        while size < limit * 2 { size <<= 1 }
        slotCount = size
        mask = size - 1
        shift = UInt64(64 - size.trailingZeroBitCount)
        self.seed = seed | 1
        slots = .allocate(capacity: size)
        slots.initialize(repeating: Entry(key: 0, port: 0, isStatic: false, lastSeen: 0), count: size)
    }

    deinit { slots.deallocate() }

    /// Packs a VLAN and a MAC into a table key.
    @inlinable @inline(__always)
    public static func key(mac: UInt64, vlan: UInt16) -> UInt64 {
        used | (UInt64(vlan & 0xFFF) << 48) | (mac & 0xFFFF_FFFF_FFFF)
    }

    @inlinable @inline(__always)
    func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: ((key ^ seed) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The port for `key`, or -1.
    @inlinable @inline(__always)
    public func lookup(_ key: UInt64) -> PortNumber {
        var i = home(key)
        while true {
            let k = slots[i].key
            if k == key { return Int(slots[i].port) }
            if k == 0 { return -1 }
            i = (i &+ 1) & mask
        }
    }

    /// Learns that `key` was seen on `port` at `now` (seconds).
    @inlinable @inline(__always) @discardableResult
    public func learn(_ key: UInt64, port: PortNumber, now: UInt32) -> LearnResult {
        var i = home(key)
        while true {
            let slot = slots + i
            let k = slot.pointee.key
            if k == key {
                if slot.pointee.isStatic {
                    return slot.pointee.port == UInt16(truncatingIfNeeded: port) ? .refreshed : .staticConflict
                }
                slot.pointee.lastSeen = now
                if slot.pointee.port != UInt16(truncatingIfNeeded: port) {
                    slot.pointee.port = UInt16(truncatingIfNeeded: port)
                    moved &+= 1
                    return .moved
                }
                return .refreshed
            }
            if k == 0 {
                if used_ >= limit { learnRefused &+= 1; return .refused }
                slot.pointee = Entry(key: key, port: UInt16(truncatingIfNeeded: port), isStatic: false, lastSeen: now)
                used_ += 1
                learned &+= 1
                return .learned
            }
            i = (i &+ 1) & mask
        }
    }

    /// Adds or replaces a static entry. False when the table is full.
    @discardableResult
    public func addStatic(_ key: UInt64, port: PortNumber) -> Bool {
        if let i = index(of: key) {
            slots[i].port = UInt16(truncatingIfNeeded: port)
            slots[i].isStatic = true
            return true
        }
        guard used_ < limit else { return false }
        var i = home(key)
        while slots[i].key != 0 { i = (i + 1) & mask }
        slots[i] = Entry(key: key, port: UInt16(truncatingIfNeeded: port), isStatic: true, lastSeen: 0)
        used_ += 1
        return true
    }

    /// Removes `key`; returns whether it was present.
    @discardableResult
    public func remove(_ key: UInt64) -> Bool {
        guard let i = index(of: key) else { return false }
        delete(at: i)
        return true
    }

    /// Removes learned entries not refreshed for `ageingTime` seconds. Returns how many aged out.
    @discardableResult
    public func sweep(now: UInt32, ageingTime: UInt32) -> Int {
        let n = removeAll { e in !e.isStatic && now &- e.lastSeen >= ageingTime }
        aged &+= UInt64(n)
        return n
    }

    /// Removes learned (or, with `includingStatic`, all) entries on `port`, or on every port if nil.
    @discardableResult
    public func flush(port: PortNumber? = nil, includingStatic: Bool = false) -> Int {
        removeAll { e in (includingStatic || !e.isStatic) && (port == nil || Int(e.port) == port!) }
    }

    /// Every entry, for snapshots (allocates; control path only).
    public var entries: [Entry] {
        var out: [Entry] = []
        out.reserveCapacity(count)
        for i in 0..<slotCount where slots[i].key != 0 { out.append(slots[i]) }
        return out
    }

    // MARK: - Internals

    func index(of key: UInt64) -> Int? {
        var i = home(key)
        while true {
            let k = slots[i].key
            if k == key { return i }
            if k == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    /// Backward-shift deletion: pulls later entries of the same probe run into the hole.
    func delete(at index: Int) {
        var hole = index
        var j = index
        while true {
            j = (j + 1) & mask
            let k = slots[j].key
            if k == 0 { break }
            let h = home(k)
            // Move slots[j] into the hole unless its home lies cyclically in (hole, j].
            let inRange = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
            if !inRange {
                slots[hole] = slots[j]
                hole = j
            }
        }
        slots[hole].key = 0
        used_ -= 1
    }

    private func removeAll(where shouldRemove: (Entry) -> Bool) -> Int {
        // Collect first, then delete: backward shifts would otherwise move entries past the cursor.
        var doomed: [UInt64] = []
        for i in 0..<slotCount where slots[i].key != 0 && shouldRemove(slots[i]) { doomed.append(slots[i].key) }
        for k in doomed { remove(k) }
        return doomed.count
    }
}
