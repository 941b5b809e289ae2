/// A 32-bit IPv4 address; the first octet on the wire is the most significant byte of `rawValue`.
public struct IPv4Address: RawRepresentable, Hashable, Comparable, Sendable {
    public let rawValue: UInt32

    @inlinable
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `IPv4Address(192, 0, 2, 1)` is 192.0.2.1.
    @inlinable
    public init(_ o0: UInt8, _ o1: UInt8, _ o2: UInt8, _ o3: UInt8) {
        self.rawValue = UInt32(o0) << 24 | UInt32(o1) << 16 | UInt32(o2) << 8 | UInt32(o3)
    }

    /// 0.0.0.0.
    public static let any = IPv4Address(rawValue: 0)
    /// 255.255.255.255.
    public static let broadcast = IPv4Address(rawValue: 0xffff_ffff)

    /// The four octets in wire order. Allocates; not for the per-packet path.
    public var octets: [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: rawValue >> (24 - 8 * UInt32($0))) } }

    /// 224.0.0.0/4.
    public var isMulticast: Bool { rawValue >> 28 == 0xe }
    /// 127.0.0.0/8.
    public var isLoopback: Bool { rawValue >> 24 == 127 }
    /// 0.0.0.0.
    public var isUnspecified: Bool { rawValue == 0 }

    @inlinable
    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension IPv4Address: LosslessStringConvertible {
    /// Parses strict dotted-quad: four decimal octets 0...255 without leading zeros (`010` is
    /// ambiguous, octal to some parsers, so it is refused, as `inet_pton` does).
    public init?(_ string: String) {
        guard let value = IPv4Address.parse(string.utf8) else { return nil }
        self.rawValue = value
    }

    /// Dotted quad: `192.0.2.1`.
    public var description: String {
        octets.lazy.map { String($0) }.joined(separator: ".")
    }

    /// The dotted-quad in `text`, or nil. Shared with `IPv6Address` for its embedded-IPv4 form.
    static func parse<Text: Sequence<UInt8>>(_ text: Text) -> UInt32? {
        var value: UInt32 = 0
        var octetCount = 0
        var digits = 0
        var octet: UInt32 = 0
        for character in text {
            if character == UInt8(ascii: ".") {
                guard digits > 0, octetCount < 3 else { return nil }
                value = value << 8 | octet
                octetCount += 1
                digits = 0
                octet = 0
            } else if character >= UInt8(ascii: "0") && character <= UInt8(ascii: "9") {
                if digits > 0 && octet == 0 { return nil }  // leading zero
                octet = octet * 10 + UInt32(character - UInt8(ascii: "0"))
                digits += 1
                guard octet <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, octetCount == 3 else { return nil }
        return value << 8 | octet
    }
}
