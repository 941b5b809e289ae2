/// A 128-bit IPv6 address as two big-endian halves: `high` holds wire bytes 0...7, `low` bytes 8...15.
///
/// Two integers rather than 16 bytes, so equality, hashing and ordering are two word operations.
public struct IPv6Address: Hashable, Comparable, Sendable {
    /// Bytes 0...7; the first byte on the wire is the most significant.
    public let high: UInt64
    /// Bytes 8...15.
    public let low: UInt64

    @inlinable
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An address from its eight 16-bit groups in order: `IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)`.
    public init(_ g0: UInt16, _ g1: UInt16, _ g2: UInt16, _ g3: UInt16,
                _ g4: UInt16, _ g5: UInt16, _ g6: UInt16, _ g7: UInt16) {
        self.high = UInt64(g0) << 48 | UInt64(g1) << 32 | UInt64(g2) << 16 | UInt64(g3)
        self.low = UInt64(g4) << 48 | UInt64(g5) << 32 | UInt64(g6) << 16 | UInt64(g7)
    }

    /// An address from exactly 16 octets in wire order; nil for any other count.
    public init?<Octets: Collection<UInt8>>(octets: Octets) {
        guard octets.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, octet) in octets.enumerated() {
            if index < 8 { high = high << 8 | UInt64(octet) } else { low = low << 8 | UInt64(octet) }
        }
        self.init(high: high, low: low)
    }

    /// The IPv4-mapped address `::ffff:a.b.c.d` (RFC 4291 section 2.5.5.2).
    public init(ipv4Mapped address: IPv4Address) {
        self.init(high: 0, low: 0xffff_0000_0000 | UInt64(address.rawValue))
    }

    /// `::`.
    public static let unspecified = IPv6Address(high: 0, low: 0)
    /// `::1`.
    public static let loopback = IPv6Address(high: 0, low: 1)

    /// The eight 16-bit groups in order. Allocates; not for the per-packet path.
    public var segments: [UInt16] {
        (0..<8).map { index in
            let half = index < 4 ? high : low
            return UInt16(truncatingIfNeeded: half >> UInt64(48 - 16 * (index % 4)))
        }
    }

    /// The 16 octets in wire order. Allocates; not for the per-packet path.
    public var octets: [UInt8] {
        (0..<16).map { index in
            let half = index < 8 ? high : low
            return UInt8(truncatingIfNeeded: half >> UInt64(56 - 8 * (index % 8)))
        }
    }

    /// ff00::/8.
    public var isMulticast: Bool { high >> 56 == 0xff }
    /// fe80::/10.
    public var isLinkLocal: Bool { high >> 54 == 0xfe80 >> 6 }
    /// `::`.
    public var isUnspecified: Bool { high == 0 && low == 0 }
    /// `::1`.
    public var isLoopback: Bool { high == 0 && low == 1 }

    /// The embedded IPv4 address if this is `::ffff:a.b.c.d`, else nil.
    public var ipv4Mapped: IPv4Address? {
        guard high == 0, low >> 32 == 0xffff else { return nil }
        return IPv4Address(rawValue: UInt32(truncatingIfNeeded: low))
    }

    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}

extension IPv6Address: LosslessStringConvertible {
    /// Parses the RFC 4291 text forms: eight groups of 1...4 hex digits (either case), at most one
    /// `::` standing for one or more zero groups, and optionally a dotted-quad IPv4 address as the
    /// last 32 bits (`::ffff:192.0.2.1`). Zone identifiers (`%eth0`) and brackets are refused.
    public init?(_ string: String) {
        let text = Array(string.utf8)
        guard !text.isEmpty, text.count <= 45 else { return nil }  // 45: the longest valid form
        var groups: [UInt16]
        if let gap = IPv6Address.firstDoubleColon(in: text) {
            guard let left = IPv6Address.parseGroups(text[..<gap], allowingIPv4Tail: false),
                  let right = IPv6Address.parseGroups(text[(gap + 2)...], allowingIPv4Tail: true),
                  left.count + right.count <= 7
            else { return nil }
            groups = left + [UInt16](repeating: 0, count: 8 - left.count - right.count) + right
        } else {
            guard let all = IPv6Address.parseGroups(text[...], allowingIPv4Tail: true), all.count == 8 else { return nil }
            groups = all
        }
        self.init(groups[0], groups[1], groups[2], groups[3], groups[4], groups[5], groups[6], groups[7])
    }

    /// RFC 5952 canonical text: lowercase, no leading zeros, the longest run of two or more zero
    /// groups (the first, on a tie) as `::`, and IPv4-mapped addresses as `::ffff:192.0.2.1`.
    public var description: String {
        if let ipv4 = ipv4Mapped { return "::ffff:\(ipv4)" }
        let groups = segments
        // The longest run of zero groups, if it is at least 2 long.
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > bestLength {
                bestStart = index
                bestLength = end - index
            }
            index = end
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].lazy.map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    private static func firstDoubleColon(in text: [UInt8]) -> Int? {
        let colon = UInt8(ascii: ":")
        var index = 0
        while index + 1 < text.count {
            if text[index] == colon && text[index + 1] == colon { return index }
            index += 1
        }
        return nil
    }

    /// Colon-separated groups of 1...4 hex digits; an empty string is no groups. With
    /// `allowingIPv4Tail`, the last group may be a dotted quad, which counts as two groups.
    private static func parseGroups(_ text: ArraySlice<UInt8>, allowingIPv4Tail: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        let pieces = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        var groups: [UInt16] = []
        for (index, piece) in pieces.enumerated() {
            if piece.contains(UInt8(ascii: ".")) {
                guard allowingIPv4Tail, index == pieces.count - 1, let ipv4 = IPv4Address.parse(piece) else { return nil }
                groups.append(UInt16(truncatingIfNeeded: ipv4 >> 16))
                groups.append(UInt16(truncatingIfNeeded: ipv4))
                continue
            }
            guard (1...4).contains(piece.count) else { return nil }
            var group: UInt16 = 0
            for character in piece {
                guard let digit = hexDigitValue(character) else { return nil }
                group = group << 4 | UInt16(digit)
            }
            groups.append(group)
        }
        return groups
    }
}
