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
            var steps = Int(min(counter / 64 - highest / 64, UInt64(words)))
            var index = Int(highest / 64 % UInt64(words))
            // A plain loop over Int: a range of UInt64 allocated an iterator in debug builds.
            while steps > 0 {
                index = (index + 1) % words
                self.words[index] = 0
                steps -= 1
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
