/// A 48-bit IEEE 802 MAC address, packed into the low 48 bits of a `UInt64`.
///
/// The first octet on the wire is the most significant of the 48 bits, so comparing `rawValue`s orders
/// addresses the way their bytes sort, and a MAC table can use the address as one integer key (with the
/// high 16 bits free for a VLAN ID).
public struct MACAddress: RawRepresentable, Hashable, Comparable, Sendable {
    /// The address in bits 47...0; bits 63...48 are always zero.
    public let rawValue: UInt64

    /// An address from its packed form. Bits 63...48 are ignored, so a (VLAN, MAC) key can be passed
    /// straight in.
    @inlinable
    public init(rawValue: UInt64) {
        self.rawValue = rawValue & 0xffff_ffff_ffff
    }

    /// An address from its six octets in wire order.
    @inlinable
    public init(_ o0: UInt8, _ o1: UInt8, _ o2: UInt8, _ o3: UInt8, _ o4: UInt8, _ o5: UInt8) {
        var value = UInt64(o0) << 40 | UInt64(o1) << 32 | UInt64(o2) << 24
        value |= UInt64(o3) << 16 | UInt64(o4) << 8 | UInt64(o5)
        self.rawValue = value
    }

    /// An address from exactly six octets in wire order; nil for any other count.
    public init?<Octets: Collection<UInt8>>(octets: Octets) {
        guard octets.count == 6 else { return nil }
        var value: UInt64 = 0
        for octet in octets { value = value << 8 | UInt64(octet) }
        self.rawValue = value
    }

    /// ff:ff:ff:ff:ff:ff.
    public static let broadcast = MACAddress(rawValue: 0xffff_ffff_ffff)
    /// 00:00:00:00:00:00.
    public static let zero = MACAddress(rawValue: 0)

    /// The six octets in wire order. Allocates; not for the per-frame path.
    public var octets: [UInt8] {
        (0..<6).map { UInt8(truncatingIfNeeded: rawValue >> (40 - 8 * UInt64($0))) }
    }

    /// The I/G bit (least significant bit of the first octet): group address, delivered to many.
    /// Broadcast is a multicast address.
    @inlinable
    public var isMulticast: Bool { rawValue & (1 << 40) != 0 }

    /// ff:ff:ff:ff:ff:ff.
    @inlinable
    public var isBroadcast: Bool { rawValue == 0xffff_ffff_ffff }

    /// 00:00:00:00:00:00, which no station owns; a switch should not learn it.
    @inlinable
    public var isZero: Bool { rawValue == 0 }

    /// An individual address (I/G bit clear). The zero address counts as unicast here; test `isZero`
    /// separately where it matters.
    @inlinable
    public var isUnicast: Bool { !isMulticast }

    /// The U/L bit (second least significant bit of the first octet): assigned locally rather than by
    /// the manufacturer, as for TAP devices and generated addresses.
    @inlinable
    public var isLocallyAdministered: Bool { rawValue & (1 << 41) != 0 }

    @inlinable
    public static func < (lhs: MACAddress, rhs: MACAddress) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension MACAddress: LosslessStringConvertible {
    /// Parses six two-digit hex octets separated by `:` or `-` (one kind throughout), either case:
    /// `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`. Anything else, including surrounding spaces, is nil.
    public init?(_ string: String) {
        let utf8 = Array(string.utf8)
        guard utf8.count == 17 else { return nil }
        let separator = utf8[2]
        guard separator == UInt8(ascii: ":") || separator == UInt8(ascii: "-") else { return nil }
        var value: UInt64 = 0
        for octet in 0..<6 {
            let start = octet * 3
            if octet > 0 && utf8[start - 1] != separator { return nil }
            guard let high = hexDigitValue(utf8[start]), let low = hexDigitValue(utf8[start + 1]) else { return nil }
            value = value << 8 | UInt64(high << 4 | low)
        }
        self.rawValue = value
    }

    /// Lowercase, colon-separated, two digits per octet: `02:00:5e:10:00:01`.
    public var description: String {
        var text = [UInt8](repeating: UInt8(ascii: ":"), count: 17)
        for octet in 0..<6 {
            let byte = UInt8(truncatingIfNeeded: rawValue >> UInt64(40 - 8 * octet))
            text[octet * 3] = hexDigit(byte >> 4)
            text[octet * 3 + 1] = hexDigit(byte & 0xf)
        }
        return String(decoding: text, as: UTF8.self)
    }
}
