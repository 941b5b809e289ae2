/// A 12-bit IEEE 802.1Q VLAN identifier, 0...4095.
///
/// Every 12-bit value can appear on the wire, so every one is representable; two are not VLANs:
/// 0 marks a priority-tagged frame (the tag carries only PCP/DEI; the frame belongs to the port's
/// native VLAN) and 4095 is reserved. `isAssignable` is the check for "names a VLAN" (1...4094).
public struct VLANID: RawRepresentable, Hashable, Comparable, Sendable {
    public let rawValue: UInt16

    /// A VLAN ID, or nil if `rawValue` does not fit in 12 bits (is above 4095).
    @inlinable
    public init?(rawValue: UInt16) {
        guard rawValue <= VLANID.maxRawValue else { return nil }
        self.rawValue = rawValue
    }

    /// A VLAN ID, or nil if `value` is outside 0...4095.
    @inlinable
    public init?<Value: BinaryInteger>(_ value: Value) {
        guard let raw = UInt16(exactly: value) else { return nil }
        self.init(rawValue: raw)
    }

    /// The low 12 bits of `bits`, as read from a tag's TCI; cannot fail.
    @inlinable
    init(masking bits: UInt16) { self.rawValue = bits & VLANID.maxRawValue }

    @usableFromInline
    static var maxRawValue: UInt16 { 0x0fff }

    /// VID 0: no VLAN; the tag only carries priority.
    public static let null = VLANID(masking: 0)

    /// VID 1, the default PVID of IEEE 802.1Q bridges.
    public static let `default` = VLANID(masking: 1)

    /// True for 1...4094, the IDs that name a VLAN; false for 0 (priority tag) and 4095 (reserved).
    @inlinable
    public var isAssignable: Bool { rawValue != 0 && rawValue != 0x0fff }

    @inlinable
    public static func < (lhs: VLANID, rhs: VLANID) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension VLANID: CustomStringConvertible {
    /// Decimal, as `ip link` and switch CLIs print it: `100`.
    public var description: String { String(rawValue) }
}
