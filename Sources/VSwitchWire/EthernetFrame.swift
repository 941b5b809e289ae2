/// A checked view of an Ethernet II frame: 14-byte header, then payload (no preamble, no FCS).
///
///     0      6      12     14
///     +------+------+------+---------
///     | dst  | src  | type | payload
///
/// If the EtherType is a VLAN TPID (0x8100 or 0x88a8), validation also requires the 4-byte tag, so
/// `vlanTag` never fails on a valid frame. The view borrows `bytes`; it is valid only while they are.
public struct EthernetFrame {
    /// The whole frame, header included.
    public let bytes: UnsafeRawBufferPointer

    /// Destination, source and EtherType.
    public static let headerLength = 14

    /// Header plus one 802.1Q tag.
    public static let taggedHeaderLength = 18

    /// Byte offsets of the header fields (IEEE 802.3 clause 3.1.1).
    ///
    /// Computed rather than stored so that, inlined into the switch core, they fold to constants
    /// instead of calls to a global's accessor.
    @usableFromInline
    enum Field {
        @inlinable static var destination: Range<Int> { 0..<6 }
        @inlinable static var source: Range<Int> { 6..<12 }
        @inlinable static var etherType: Range<Int> { 12..<14 }
        @inlinable static var payload: Int { 14 }
    }

    /// A view of `bytes`, or nil if they are shorter than the header (14 bytes), or if the EtherType
    /// announces a VLAN tag and they are shorter than header and tag (18 bytes).
    @inlinable
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Field.payload else { return nil }
        self.bytes = bytes
        if etherType.isVLANTag && bytes.count < Field.payload + VLANTag.Field.payload { return nil }
    }

    /// Where the frame is going.
    @inlinable
    public var destination: MACAddress { bytes.loadMACAddress(fromByteOffset: Field.destination.lowerBound) }

    /// Who sent it.
    @inlinable
    public var source: MACAddress { bytes.loadMACAddress(fromByteOffset: Field.source.lowerBound) }

    /// The outer EtherType: for a tagged frame, the TPID (`.vlan` or `.qinq`).
    @inlinable
    public var etherType: EtherType {
        EtherType(rawValue: bytes.loadBigEndian(fromByteOffset: Field.etherType.lowerBound, as: UInt16.self))
    }

    /// Everything after the 14-byte header (for a tagged frame, starting with the tag).
    @inlinable
    public var payload: UnsafeRawBufferPointer { bytes.slice(Field.payload..<bytes.count) }

    /// The 802.1Q/802.1ad tag, or nil for an untagged frame. For Q-in-Q this is the outer (S-)tag;
    /// parse its payload with `VLANTag(validating:)` to reach the inner one.
    @inlinable
    public var vlanTag: VLANTag? {
        guard etherType.isVLANTag else { return nil }
        return VLANTag(validating: payload)
    }
}

extension EthernetFrame: CustomStringConvertible {
    /// `Ethernet src=02:00:00:00:00:01 dst=ff:ff:ff:ff:ff:ff type=ARP`.
    public var description: String {
        "Ethernet src=\(source) dst=\(destination) type=\(etherType)"
    }
}

/// The fields of an Ethernet II header, to build one or to hold one past the buffer's lifetime.
public struct EthernetRepr: Hashable, Sendable {
    public var destination: MACAddress
    public var source: MACAddress
    public var etherType: EtherType

    public init(destination: MACAddress, source: MACAddress, etherType: EtherType) {
        self.destination = destination
        self.source = source
        self.etherType = etherType
    }

    /// The header of a validated frame. Cannot fail: every 14 bytes are a valid Ethernet header.
    @inlinable
    public static func parse(_ frame: EthernetFrame) -> EthernetRepr {
        EthernetRepr(destination: frame.destination, source: frame.source, etherType: frame.etherType)
    }

    /// Bytes `emit(into:)` writes: 14.
    public var headerLength: Int { EthernetFrame.headerLength }

    /// Writes the 14-byte header at the start of `buffer` and returns 14, or returns nil (writing
    /// nothing) if `buffer` is shorter than that. The payload is the caller's to write after it.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        typealias Field = EthernetFrame.Field
        guard buffer.count >= EthernetFrame.headerLength else { return nil }
        buffer.storeMACAddress(destination, toByteOffset: Field.destination.lowerBound)
        buffer.storeMACAddress(source, toByteOffset: Field.source.lowerBound)
        buffer.storeBigEndian(etherType.rawValue, toByteOffset: Field.etherType.lowerBound)
        return EthernetFrame.headerLength
    }
}
