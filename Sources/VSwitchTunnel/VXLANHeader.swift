import VSwitchWire
/// A checked view of a VXLAN header (RFC 7348 section 5) and the inner Ethernet frame after it.
///
///     0       1               4                       7       8
///     +-------+---------------+-----------------------+-------+----------------
///     | flags | reserved (24) |        VNI (24)       | rsvd  | inner Ethernet frame
///     |  I=08 |               |                       |       |
///
/// Validation: at least 8 bytes and the I flag (0x08) set, which says the VNI is valid. As the RFC
/// asks of a receiver, the reserved bits and the other flag bits are ignored (the kernel's `vxlan`
/// device and Open vSwitch use some of them for extensions such as GBP). The view borrows `bytes`.
///
/// The tunnel port decodes every received datagram through it, so it is inlinable: the check and
/// the accessors compile to the loads a hand-written decode would make, in the caller's module.
@frozen
public struct VXLANHeader {
    /// The header and the inner frame.
    public let bytes: UnsafeRawBufferPointer

    /// The VXLAN header: 8 bytes.
    public static let headerLength = 8

    /// The I flag: the VNI field is valid. The only flag a sender of RFC 7348 sets.
    @inlinable public static var vniValidFlag: UInt8 { 0x08 }

    /// The IANA-assigned UDP destination port (RFC 7348 section 5).
    public static let udpPort: UInt16 = 4789

    /// The largest VNI: 24 bits.
    public static let maximumVNI: UInt32 = 0xff_ffff

    /// Byte offsets of the header fields. Computed rather than stored so that, inlined into the
    /// port, they fold to constants instead of calls to a global's accessor.
    @usableFromInline
    enum Field {
        @inlinable static var flags: Int { 0 }
        /// VNI in the high 24 bits, a reserved byte in the low 8.
        @inlinable static var vniAndReserved: Range<Int> { 4..<8 }
        @inlinable static var payload: Int { 8 }
    }

    /// A view of `bytes`, or nil if they are shorter than 8 bytes or the I flag is clear.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Field.payload, bytes[Field.flags] & Self.vniValidFlag != 0 else { return nil }
        self.bytes = bytes
    }

    /// The flags byte as received (0x08 from an RFC 7348 sender).
    @inlinable
    public var flags: UInt8 { bytes[Field.flags] }

    /// The VXLAN network identifier, 0...0xffffff.
    @inlinable
    public var vni: UInt32 {
        bytes.loadBigEndian(fromByteOffset: Field.vniAndReserved.lowerBound, as: UInt32.self) >> 8
    }

    /// The inner Ethernet frame: everything after the 8-byte header.
    @inlinable
    public var payload: UnsafeRawBufferPointer { bytes.slice(Field.payload..<bytes.count) }
}

extension VXLANHeader: CustomStringConvertible {
    /// `VXLAN vni=42`.
    public var description: String { "VXLAN vni=\(vni)" }
}

/// The one field of a VXLAN header a sender chooses, to build a header or to keep it.
public struct VXLANRepr: Hashable, Sendable {
    /// The VXLAN network identifier, 0...0xffffff.
    public var vni: UInt32

    public init(vni: UInt32) {
        self.vni = vni
    }

    /// The fields of a validated header. Cannot fail: a valid view always has a VNI.
    public static func parse(_ header: VXLANHeader) -> VXLANRepr {
        VXLANRepr(vni: header.vni)
    }

    /// Bytes `emit(into:)` writes: 8.
    public var headerLength: Int { VXLANHeader.headerLength }

    /// Writes the 8-byte header (flags 0x08, reserved bits zero) at the start of `buffer` and returns
    /// 8, or returns nil, writing nothing, if `buffer` is shorter or the VNI does not fit 24 bits.
    /// The inner frame is the caller's to place after it, typically already there, the header going
    /// into the headroom in front of it.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        typealias Field = VXLANHeader.Field
        guard buffer.count >= VXLANHeader.headerLength, vni <= VXLANHeader.maximumVNI else { return nil }
        buffer.storeBigEndian(UInt32(VXLANHeader.vniValidFlag) << 24, toByteOffset: Field.flags)
        buffer.storeBigEndian(vni << 8, toByteOffset: Field.vniAndReserved.lowerBound)
        return VXLANHeader.headerLength
    }
}
