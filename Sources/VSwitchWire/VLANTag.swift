/// A checked view of an IEEE 802.1Q (or 802.1ad) VLAN tag and what follows it.
///
/// The view starts right after the TPID, that is at the tagged frame's `payload`, and covers the
/// tag control information (TCI) and the encapsulated EtherType, the same 4 bytes as Linux's
/// `struct vlan_hdr`; the TPID itself is the outer frame's `etherType`.
///
///     0                   2           4
///     +-----+---+---------+-----------+---------
///     | PCP |DEI| VLAN ID | EtherType | payload
///     | 3b  |1b |  12b    |           |
public struct VLANTag {
    /// The tag and everything after it.
    public let bytes: UnsafeRawBufferPointer

    /// TCI and encapsulated EtherType: 4 bytes.
    public static let headerLength = 4

    /// Byte offsets of the tag fields (IEEE 802.1Q clause 9.6).
    @usableFromInline
    enum Field {
        @inlinable static var tagControl: Range<Int> { 0..<2 }
        @inlinable static var etherType: Range<Int> { 2..<4 }
        @inlinable static var payload: Int { 4 }
    }

    /// A view of `bytes`, or nil if they are shorter than the 4-byte tag.
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Field.payload else { return nil }
        self.bytes = bytes
    }

    /// The raw 16-bit TCI: PCP, DEI and VLAN ID together.
    @inlinable
    public var tagControl: UInt16 { bytes.loadBigEndian(fromByteOffset: Field.tagControl.lowerBound, as: UInt16.self) }

    /// Priority code point (IEEE 802.1p class of service), 0...7.
    @inlinable
    public var priorityCodePoint: UInt8 { UInt8(truncatingIfNeeded: tagControl >> 13) }

    /// Drop eligible indicator.
    @inlinable
    public var dropEligible: Bool { tagControl & 0x1000 != 0 }

    /// The VLAN the frame belongs to; 0 for a priority-tagged frame.
    @inlinable
    public var vlanID: VLANID { VLANID(masking: tagControl) }

    /// The EtherType of what the tag encapsulates (`.vlan` again for the inner tag of Q-in-Q).
    @inlinable
    public var etherType: EtherType {
        EtherType(rawValue: bytes.loadBigEndian(fromByteOffset: Field.etherType.lowerBound, as: UInt16.self))
    }

    /// Everything after the tag.
    @inlinable
    public var payload: UnsafeRawBufferPointer { bytes.slice(Field.payload..<bytes.count) }
}

extension VLANTag: CustomStringConvertible {
    /// `VLAN vid=100 pcp=0 dei=0 type=IPv4`.
    public var description: String {
        "VLAN vid=\(vlanID) pcp=\(priorityCodePoint) dei=\(dropEligible ? 1 : 0) type=\(etherType)"
    }
}

/// The fields of a VLAN tag (after the TPID), to build one or to keep one.
public struct VLANTagRepr: Hashable, Sendable {
    public var vlanID: VLANID
    /// 0...7; `emit` refuses larger values.
    public var priorityCodePoint: UInt8
    public var dropEligible: Bool
    /// The EtherType of what follows the tag.
    public var etherType: EtherType

    public init(vlanID: VLANID, priorityCodePoint: UInt8 = 0, dropEligible: Bool = false, etherType: EtherType) {
        self.vlanID = vlanID
        self.priorityCodePoint = priorityCodePoint
        self.dropEligible = dropEligible
        self.etherType = etherType
    }

    /// The fields of a validated tag. Cannot fail: every 4 bytes are a valid tag.
    public static func parse(_ tag: VLANTag) -> VLANTagRepr {
        VLANTagRepr(vlanID: tag.vlanID, priorityCodePoint: tag.priorityCodePoint,
                    dropEligible: tag.dropEligible, etherType: tag.etherType)
    }

    /// Bytes `emit(into:)` writes: 4.
    public var headerLength: Int { VLANTag.headerLength }

    /// Writes TCI and EtherType at the start of `buffer` and returns 4; nil (writing nothing) if the
    /// buffer is shorter than that or `priorityCodePoint` is above 7. A tagged frame is an
    /// `EthernetRepr` with etherType `.vlan` followed by this at offset 14.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        guard buffer.count >= VLANTag.headerLength, priorityCodePoint <= 7 else { return nil }
        var tagControl = UInt16(priorityCodePoint) << 13 | vlanID.rawValue
        if dropEligible { tagControl |= 0x1000 }
        buffer.storeBigEndian(tagControl, toByteOffset: VLANTag.Field.tagControl.lowerBound)
        buffer.storeBigEndian(etherType.rawValue, toByteOffset: VLANTag.Field.etherType.lowerBound)
        return VLANTag.headerLength
    }
}
