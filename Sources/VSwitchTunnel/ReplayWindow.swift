/// Which counters one sender has already used, so that each datagram is delivered at most once.
///
/// A sliding window over the highest counter accepted so far, after RFC 6479 (and WireGuard's
/// `replay.Filter`): a bitmap of 2,048 bits in 32 words used as a ring, one bit per counter. A
/// counter above the highest moves the window (clearing only the words it passes, at most all 32);
/// one below is accepted once if it is no more than `size` (1,984) behind the highest, which
/// leaves one word of the ring as slack so that moving never clears a bit still in the window.
/// Counter 0 is never accepted (senders start at 1).
///
/// Fixed size (264 bytes) and no allocation; `check` reads, `accept` records. The secure opener
/// calls `check` before decrypting (cheap rejection of replays) and `accept` only after the
/// datagram authenticated, so forged datagrams can never move a window.
public struct ReplayWindow: Sendable {
    /// Words in the bitmap: 32 of 64 bits.
    public static let wordCount = 32

    /// How far behind the highest accepted counter a counter may be and still be accepted once:
    /// 1,984 (the bitmap less one word).
    public static let size: UInt64 = UInt64(wordCount - 1) * 64

    /// The highest counter accepted so far; 0 before the first.
    public private(set) var highest: UInt64 = 0

    private var words = InlineArray<32, UInt64>(repeating: 0)

    public init() {}

    /// True if `accept(counter)` would accept it: not 0, not seen, not older than the window.
    public func check(_ counter: UInt64) -> Bool {
        guard counter != 0 else { return false }
        if counter > highest { return true }
        guard highest - counter < Self.size else { return false }
        let (word, bit) = Self.position(counter)
        return words[word] & bit == 0
    }

    /// Records `counter` and returns true, or returns false (changing nothing) if `check` would.
    public mutating func accept(_ counter: UInt64) -> Bool {
        guard check(counter) else { return false }
        if counter > highest {
            let words = Self.wordCount
            let steps = min(counter / 64 - highest / 64, UInt64(words))
            var index = Int(highest / 64 % UInt64(words))
            for _ in 0..<steps {
                index = (index + 1) % words
                self.words[index] = 0
            }
            highest = counter
        }
        let (word, bit) = Self.position(counter)
        words[word] |= bit
        return true
    }

    /// The ring word holding `counter`'s bit, and the bit.
    @inline(__always)
    private static func position(_ counter: UInt64) -> (word: Int, bit: UInt64) {
        (Int(counter / 64 % UInt64(wordCount)), 1 << (counter % 64))
    }
}

/// The replay windows of the senders a secure port hears from: a fixed number of entries, each a
/// (sender id, key id) and its `ReplayWindow`, the least recently used replaced by a new sender.
///
/// Sixteen entries by default (4.4 KiB, allocated once): a multipoint tunnel has a handful of
/// peers, each with one sender id per process start, plus one more per key during a rotation.
/// Lookup is a linear scan, which at this size is quicker than hashing. Entries are only ever
/// created by `accept`, after authentication, so forged datagrams cannot evict a real sender.
public struct ReplayTable: Sendable {
    /// The default number of senders remembered per port.
    public static let defaultCapacity = 16

    private struct Entry: Sendable {
        /// Key id << 32 | sender id, with bit 40 set when the entry is in use.
        var tag: UInt64 = 0
        /// The table's clock when the entry last accepted a counter.
        var lastUsed: UInt64 = 0
        var window = ReplayWindow()
    }

    private var entries: [Entry]
    private var clock: UInt64 = 0

    /// A table of `capacity` senders (at least 1).
    public init(capacity: Int = ReplayTable.defaultCapacity) {
        precondition(capacity >= 1, "a replay table needs room for one sender")
        entries = Array(repeating: Entry(), count: capacity)
    }

    /// Senders currently held.
    public var count: Int { entries.reduce(0) { $0 + ($1.tag != 0 ? 1 : 0) } }

    /// True if `accept` would accept this counter from this sender (a sender not in the table
    /// accepts any counter but 0).
    public func check(sender: UInt32, keyID: UInt8, counter: UInt64) -> Bool {
        if let index = find(Self.tag(sender, keyID)) { return entries[index].window.check(counter) }
        return counter != 0
    }

    /// Records the counter and returns true, or returns false if it is a replay or too old. A new
    /// sender takes a free entry, or the least recently used one.
    public mutating func accept(sender: UInt32, keyID: UInt8, counter: UInt64) -> Bool {
        let tag = Self.tag(sender, keyID)
        let index: Int
        if let found = find(tag) {
            index = found
        } else {
            guard counter != 0 else { return false }
            index = leastRecentlyUsed()
            entries[index] = Entry(tag: tag)
        }
        guard entries[index].window.accept(counter) else { return false }
        clock += 1
        entries[index].lastUsed = clock
        return true
    }

    private static func tag(_ sender: UInt32, _ keyID: UInt8) -> UInt64 {
        1 << 40 | UInt64(keyID) << 32 | UInt64(sender)
    }

    private func find(_ tag: UInt64) -> Int? {
        for index in entries.indices where entries[index].tag == tag { return index }
        return nil
    }

    /// A free entry if there is one (its `lastUsed` is 0), else the one used longest ago.
    private func leastRecentlyUsed() -> Int {
        var oldest = 0
        for index in entries.indices where entries[index].lastUsed < entries[oldest].lastUsed { oldest = index }
        return oldest
    }
}
