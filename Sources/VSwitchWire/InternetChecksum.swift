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
        var offset = 0
        let count = bytes.count
        if let high = danglingByte, count > 0 {
            sum &+= UInt64(high) << 8 | UInt64(bytes[0])
            danglingByte = nil
            offset = 1
        }
        while offset + 4 <= count {
            sum &+= UInt64(bytes.loadBigEndian(fromByteOffset: offset, as: UInt32.self))
            offset += 4
        }
        if offset + 2 <= count {
            sum &+= UInt64(bytes.loadBigEndian(fromByteOffset: offset, as: UInt16.self))
            offset += 2
        }
        if offset < count { danglingByte = bytes[offset] }
    }

    /// Adds one 16-bit word as its two big-endian bytes (a pseudo-header field, say).
    public mutating func add(_ word: UInt16) {
        withUnsafeBytes(of: word.bigEndian) { add($0) }
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
