import CChecksum

/// The Internet checksum (RFC 1071): the one's complement of the one's complement sum of 16-bit
/// big-endian words, as used by the IPv4 header, ICMP, UDP and TCP.
///
/// An accumulator, so a pseudo-header and a payload can be summed in pieces; pieces of odd length are
/// handled (the dangling byte pairs with the first byte of the next piece).
public struct InternetChecksum: Sendable {
    /// Running sum of 32-bit words. The one's complement sum modulo 0xffff is the same whether it is
    /// taken over 16- or 32-bit words (2^16 = 1 mod 0xffff), and a 64-bit accumulator cannot overflow
    /// before 2^32 additions, far beyond any packet.
    private var sum: UInt64 = 0
    /// A byte left over from an odd-length piece, waiting for its low half.
    private var danglingByte: UInt8?

    public init() {}

    /// Adds `bytes` to the sum.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var offset = 0
        let count = bytes.count
        if let high = danglingByte {
            sum &+= UInt64(high) << 8 | UInt64(bytes[0])
            danglingByte = nil
            offset = 1
        }
        // Whole 16-bit words through the C loop (host order, 8 bytes at a time); an odd byte
        // waits for the next piece.
        let words = (count - offset) & ~1
        if words > 0 { sum &+= UInt64(vswitch_csum_fold(vswitch_csum_partial(base + offset, words, 0))) }
        offset += words
        if offset < count { danglingByte = bytes[offset] }
    }

    /// Adds bytes already summed by `copySumming` (at an even position: nothing may dangle).
    public mutating func add(summed partial: UInt64) {
        assert(danglingByte == nil, "a summed piece must start on a 16-bit word")
        sum &+= UInt64(vswitch_csum_fold(partial))
    }

    /// Copies `count` bytes from `source` to `destination` and returns their sum for
    /// `add(summed:)`, in one pass over the bytes.
    public static func copySumming(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int) -> UInt64 {
        vswitch_csum_copy(destination, source, count, 0)
    }

    /// The sum of `count` bytes at `source`, for `add(summed:)`: `copySumming` without the copy.
    public static func summing(_ source: UnsafeRawPointer, count: Int) -> UInt64 {
        vswitch_csum_partial(source, count, 0)
    }

    /// Adds one 16-bit word as its two big-endian bytes (a pseudo-header field, say).
    public mutating func add(_ word: UInt16) {
        // Plain arithmetic: the C loop is for runs of bytes, not a call per pseudo-header field.
        if let high = danglingByte {
            // The dangling byte takes the word's high byte; its low byte now dangles.
            sum &+= UInt64(high) << 8 | UInt64(word >> 8)
            danglingByte = UInt8(truncatingIfNeeded: word)
        } else {
            sum &+= UInt64(word)
        }
    }

    /// The checksum of everything added so far: the value to put in the checksum field. Summing data
    /// that already contains a correct checksum gives 0.
    public var value: UInt16 {
        var folded = sum
        if let high = danglingByte { folded &+= UInt64(high) << 8 }
        while folded > 0xffff { folded = (folded & 0xffff) + (folded >> 16) }
        return ~UInt16(truncatingIfNeeded: folded)
    }

    /// The checksum of `bytes` alone.
    public static func compute(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var checksum = InternetChecksum()
        checksum.add(bytes)
        return checksum.value
    }
}
