/// A checked view of the fixed IPv6 header (RFC 8200) and the payload it announces.
///
///     0      1      2      4        6     7     8            24           40
///     +------+------+------+--------+-----+-----+------------+------------+--------
///     |ver|TC|  flow label | length |next |hops |   source   |destination | payload
///
/// Validation: at least 40 bytes, version 6, and payload length within the rest of the buffer.
/// Extension headers are part of `payload`; `nextHeader` names the first of them. Jumbograms
/// (payload length 0 plus a hop-by-hop option) are not interpreted: their `payload` is empty.
public struct IPv6Header {
    /// The packet as received, possibly followed by link-layer padding.
    public let bytes: UnsafeRawBufferPointer

    /// The fixed header: 40 bytes.
    public static let headerLength = 40

    /// Byte offsets of the header fields.
    enum Field {
        static let versionClassAndFlow = 0..<4
        static let payloadLength = 4..<6
        static let nextHeader = 6
        static let hopLimit = 7
        static let source = 8..<24
        static let destination = 24..<40
        static let payload = 40
    }

    /// A view of `bytes`, or nil unless they hold the 40-byte header, version 6, and the payload
    /// length it claims.
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Field.payload, bytes[0] >> 4 == 6 else { return nil }
        let payloadLength = Int(bytes.loadBigEndian(fromByteOffset: Field.payloadLength.lowerBound, as: UInt16.self))
        guard payloadLength <= bytes.count - Field.payload else { return nil }
        self.bytes = bytes
    }

    private var versionClassAndFlow: UInt32 {
        bytes.loadBigEndian(fromByteOffset: Field.versionClassAndFlow.lowerBound, as: UInt32.self)
    }

    /// 6.
    public var version: UInt8 { UInt8(truncatingIfNeeded: versionClassAndFlow >> 28) }

    /// Traffic class: DSCP in the high 6 bits, ECN in the low 2.
    public var trafficClass: UInt8 { UInt8(truncatingIfNeeded: versionClassAndFlow >> 20) }

    /// The 20-bit flow label.
    public var flowLabel: UInt32 { versionClassAndFlow & 0x000f_ffff }

    /// Bytes after the fixed header that belong to the packet (extension headers included).
    public var payloadLength: Int {
        Int(bytes.loadBigEndian(fromByteOffset: Field.payloadLength.lowerBound, as: UInt16.self))
    }

    /// The type of the first extension header or of the upper-layer payload.
    public var nextHeader: IPProtocol { IPProtocol(rawValue: bytes[Field.nextHeader]) }

    public var hopLimit: UInt8 { bytes[Field.hopLimit] }

    public var source: IPv6Address { loadAddress(at: Field.source.lowerBound) }

    public var destination: IPv6Address { loadAddress(at: Field.destination.lowerBound) }

    /// The payload: `payloadLength` bytes after the fixed header, excluding any padding after it.
    public var payload: UnsafeRawBufferPointer { bytes.slice(Field.payload..<(Field.payload + payloadLength)) }

    private func loadAddress(at offset: Int) -> IPv6Address {
        IPv6Address(high: bytes.loadBigEndian(fromByteOffset: offset, as: UInt64.self),
                    low: bytes.loadBigEndian(fromByteOffset: offset + 8, as: UInt64.self))
    }
}

extension IPv6Header: CustomStringConvertible {
    /// `IPv6 src=2001:db8::1 dst=2001:db8::2 next=ICMPv6 hops=64 len=8`.
    public var description: String {
        "IPv6 src=\(source) dst=\(destination) next=\(nextHeader) hops=\(hopLimit) len=\(payloadLength)"
    }
}

/// The fields of a fixed IPv6 header.
public struct IPv6Repr: Hashable, Sendable {
    public var source: IPv6Address
    public var destination: IPv6Address
    public var nextHeader: IPProtocol
    /// Bytes that will follow the fixed header; 0...65535.
    public var payloadLength: Int
    public var hopLimit: UInt8
    public var trafficClass: UInt8
    /// 0...0xfffff.
    public var flowLabel: UInt32

    public init(source: IPv6Address, destination: IPv6Address, nextHeader: IPProtocol, payloadLength: Int,
                hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0) {
        self.source = source
        self.destination = destination
        self.nextHeader = nextHeader
        self.payloadLength = payloadLength
        self.hopLimit = hopLimit
        self.trafficClass = trafficClass
        self.flowLabel = flowLabel
    }

    /// The fields of a validated header. Cannot fail: IPv6 has no header checksum.
    public static func parse(_ header: IPv6Header) -> IPv6Repr {
        IPv6Repr(source: header.source, destination: header.destination, nextHeader: header.nextHeader,
                 payloadLength: header.payloadLength, hopLimit: header.hopLimit,
                 trafficClass: header.trafficClass, flowLabel: header.flowLabel)
    }

    /// Bytes `emit(into:)` writes: 40.
    public var headerLength: Int { IPv6Header.headerLength }

    /// Writes the 40-byte header at the start of `buffer` and returns 40. Returns nil, writing
    /// nothing, if the buffer is shorter than 40, payloadLength is outside 0...65535 or flowLabel
    /// does not fit in 20 bits. The payload is the caller's to write after the header.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        typealias Field = IPv6Header.Field
        guard buffer.count >= IPv6Header.headerLength,
              let payloadLength = UInt16(exactly: payloadLength),
              flowLabel <= 0x000f_ffff
        else { return nil }
        let versionClassAndFlow = 6 << 28 | UInt32(trafficClass) << 20 | flowLabel
        buffer.storeBigEndian(versionClassAndFlow, toByteOffset: Field.versionClassAndFlow.lowerBound)
        buffer.storeBigEndian(payloadLength, toByteOffset: Field.payloadLength.lowerBound)
        buffer[Field.nextHeader] = nextHeader.rawValue
        buffer[Field.hopLimit] = hopLimit
        buffer.storeBigEndian(source.high, toByteOffset: Field.source.lowerBound)
        buffer.storeBigEndian(source.low, toByteOffset: Field.source.lowerBound + 8)
        buffer.storeBigEndian(destination.high, toByteOffset: Field.destination.lowerBound)
        buffer.storeBigEndian(destination.low, toByteOffset: Field.destination.lowerBound + 8)
        return IPv6Header.headerLength
    }
}
