/// A checked view of an IPv4 header (RFC 791) and the payload it announces.
///
///     0       1       2       3       4       6       8     9      10      12      16      20
///     +---+---+-------+-------+-------+-------+-------+-----+-------+-------+-------+--------
///     |ver|IHL|DSCP|EC| total length  |  id   |flg|off| TTL |proto|checksum|  src  |  dst  | options
///
/// Validation: at least 20 bytes, version 4, IHL at least 5, the header (IHL * 4) within the buffer,
/// and total length at least the header and at most the buffer. Bytes past total length (Ethernet
/// padding) are not part of `payload`. The checksum is not checked here; see `verifyChecksum()`.
public struct IPv4Header {
    /// The packet as received, possibly followed by link-layer padding.
    public let bytes: UnsafeRawBufferPointer

    /// The fixed part of the header, without options: 20 bytes.
    public static let minimumHeaderLength = 20

    /// Byte offsets of the fixed header fields.
    enum Field {
        static let versionAndHeaderLength = 0
        static let dscpAndECN = 1
        static let totalLength = 2..<4
        static let identification = 4..<6
        static let flagsAndFragmentOffset = 6..<8
        static let timeToLive = 8
        static let `protocol` = 9
        static let checksum = 10..<12
        static let source = 12..<16
        static let destination = 16..<20
        static let options = 20
    }

    /// A view of `bytes`, or nil unless they hold a whole IPv4 header and the total length it claims.
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Field.options else { return nil }
        let first = bytes[Field.versionAndHeaderLength]
        guard first >> 4 == 4 else { return nil }
        let headerLength = Int(first & 0x0f) * 4
        guard headerLength >= Field.options, headerLength <= bytes.count else { return nil }
        let totalLength = Int(bytes.loadBigEndian(fromByteOffset: Field.totalLength.lowerBound, as: UInt16.self))
        guard totalLength >= headerLength, totalLength <= bytes.count else { return nil }
        self.bytes = bytes
    }

    /// 4.
    public var version: UInt8 { bytes[Field.versionAndHeaderLength] >> 4 }

    /// Header length in bytes, options included: IHL * 4, 20...60.
    public var headerLength: Int { Int(bytes[Field.versionAndHeaderLength] & 0x0f) * 4 }

    /// Differentiated services code point, 0...63.
    public var dscp: UInt8 { bytes[Field.dscpAndECN] >> 2 }

    /// Explicit congestion notification, 0...3.
    public var ecn: UInt8 { bytes[Field.dscpAndECN] & 0x03 }

    /// Header plus payload, in bytes.
    public var totalLength: Int {
        Int(bytes.loadBigEndian(fromByteOffset: Field.totalLength.lowerBound, as: UInt16.self))
    }

    public var identification: UInt16 {
        bytes.loadBigEndian(fromByteOffset: Field.identification.lowerBound, as: UInt16.self)
    }

    private var flagsAndFragmentOffset: UInt16 {
        bytes.loadBigEndian(fromByteOffset: Field.flagsAndFragmentOffset.lowerBound, as: UInt16.self)
    }

    /// The three flag bits (reserved, DF, MF) as the low 3 bits.
    public var flags: UInt8 { UInt8(truncatingIfNeeded: flagsAndFragmentOffset >> 13) }

    /// DF: the packet must not be fragmented.
    public var dontFragment: Bool { flagsAndFragmentOffset & 0x4000 != 0 }

    /// MF: more fragments follow.
    public var moreFragments: Bool { flagsAndFragmentOffset & 0x2000 != 0 }

    /// Where this fragment's data sits in the original payload, in bytes (the field counts 8-byte
    /// units; this is already multiplied out), 0...65528.
    public var fragmentByteOffset: Int { Int(flagsAndFragmentOffset & 0x1fff) * 8 }

    public var timeToLive: UInt8 { bytes[Field.timeToLive] }

    public var `protocol`: IPProtocol { IPProtocol(rawValue: bytes[Field.protocol]) }

    /// The checksum field as received.
    public var checksum: UInt16 { bytes.loadBigEndian(fromByteOffset: Field.checksum.lowerBound, as: UInt16.self) }

    public var source: IPv4Address {
        IPv4Address(rawValue: bytes.loadBigEndian(fromByteOffset: Field.source.lowerBound, as: UInt32.self))
    }

    public var destination: IPv4Address {
        IPv4Address(rawValue: bytes.loadBigEndian(fromByteOffset: Field.destination.lowerBound, as: UInt32.self))
    }

    /// The options, between the fixed header and `headerLength`; empty when IHL is 5.
    public var options: UnsafeRawBufferPointer { bytes.slice(Field.options..<headerLength) }

    /// The payload: from `headerLength` to `totalLength`, excluding any padding after it.
    public var payload: UnsafeRawBufferPointer { bytes.slice(headerLength..<totalLength) }

    /// The checksum the header should carry: RFC 1071 over the header, options included, with the
    /// checksum field taken as zero.
    public func computeChecksum() -> UInt16 {
        var checksum = InternetChecksum()
        checksum.add(bytes.slice(0..<Field.checksum.lowerBound))
        checksum.add(bytes.slice(Field.checksum.upperBound..<headerLength))
        return checksum.value
    }

    /// True if the checksum field matches the header.
    public func verifyChecksum() -> Bool {
        InternetChecksum.compute(bytes.slice(0..<headerLength)) == 0
    }
}

extension IPv4Header: CustomStringConvertible {
    /// `IPv4 src=192.0.2.1 dst=192.0.2.2 proto=ICMP ttl=64 len=84`.
    public var description: String {
        var text = "IPv4 src=\(source) dst=\(destination) proto=\(self.protocol) ttl=\(timeToLive) len=\(totalLength)"
        if moreFragments || fragmentByteOffset != 0 { text += " frag=\(fragmentByteOffset)\(moreFragments ? "+" : "")" }
        return text
    }
}

/// The fields of an IPv4 header without options. `emit` always writes a 20-byte header.
public struct IPv4Repr: Hashable, Sendable {
    public var source: IPv4Address
    public var destination: IPv4Address
    public var `protocol`: IPProtocol
    /// Bytes of payload that will follow the header; 0...65515.
    public var payloadLength: Int
    public var timeToLive: UInt8
    /// 0...63.
    public var dscp: UInt8
    /// 0...3.
    public var ecn: UInt8
    public var identification: UInt16
    public var dontFragment: Bool
    public var moreFragments: Bool
    /// In bytes; a multiple of 8, 0...65528.
    public var fragmentByteOffset: Int

    public init(source: IPv4Address, destination: IPv4Address, protocol: IPProtocol, payloadLength: Int,
                timeToLive: UInt8 = 64, dscp: UInt8 = 0, ecn: UInt8 = 0, identification: UInt16 = 0,
                dontFragment: Bool = false, moreFragments: Bool = false, fragmentByteOffset: Int = 0) {
        self.source = source
        self.destination = destination
        self.protocol = `protocol`
        self.payloadLength = payloadLength
        self.timeToLive = timeToLive
        self.dscp = dscp
        self.ecn = ecn
        self.identification = identification
        self.dontFragment = dontFragment
        self.moreFragments = moreFragments
        self.fragmentByteOffset = fragmentByteOffset
    }

    /// The fields of a validated header, or nil if `verifyingChecksum` and the checksum is wrong.
    /// Options are not represented: they are dropped, and `payloadLength` excludes them.
    public static func parse(_ header: IPv4Header, verifyingChecksum: Bool = true) -> IPv4Repr? {
        if verifyingChecksum && !header.verifyChecksum() { return nil }
        return IPv4Repr(source: header.source, destination: header.destination, protocol: header.protocol,
                        payloadLength: header.totalLength - header.headerLength,
                        timeToLive: header.timeToLive, dscp: header.dscp, ecn: header.ecn,
                        identification: header.identification,
                        dontFragment: header.dontFragment, moreFragments: header.moreFragments,
                        fragmentByteOffset: header.fragmentByteOffset)
    }

    /// Bytes `emit(into:)` writes: 20.
    public var headerLength: Int { IPv4Header.minimumHeaderLength }

    /// Writes a 20-byte header (IHL 5, checksum filled in) at the start of `buffer` and returns 20.
    /// Returns nil, writing nothing, if the buffer is shorter than 20 or a field does not fit: dscp
    /// above 63, ecn above 3, payloadLength outside 0...65515, fragmentByteOffset not a multiple of 8
    /// in 0...65528. The payload is the caller's to write after the header.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        typealias Field = IPv4Header.Field
        let headerLength = IPv4Header.minimumHeaderLength
        guard buffer.count >= headerLength,
              dscp <= 63, ecn <= 3,
              payloadLength >= 0, payloadLength <= Int(UInt16.max) - headerLength,
              fragmentByteOffset >= 0, fragmentByteOffset <= 0x1fff * 8, fragmentByteOffset % 8 == 0
        else { return nil }
        buffer[Field.versionAndHeaderLength] = 0x40 | UInt8(headerLength / 4)
        buffer[Field.dscpAndECN] = dscp << 2 | ecn
        buffer.storeBigEndian(UInt16(headerLength + payloadLength), toByteOffset: Field.totalLength.lowerBound)
        buffer.storeBigEndian(identification, toByteOffset: Field.identification.lowerBound)
        var flagsAndFragmentOffset = UInt16(fragmentByteOffset / 8)
        if dontFragment { flagsAndFragmentOffset |= 0x4000 }
        if moreFragments { flagsAndFragmentOffset |= 0x2000 }
        buffer.storeBigEndian(flagsAndFragmentOffset, toByteOffset: Field.flagsAndFragmentOffset.lowerBound)
        buffer[Field.timeToLive] = timeToLive
        buffer[Field.protocol] = self.protocol.rawValue
        buffer.storeBigEndian(UInt16(0), toByteOffset: Field.checksum.lowerBound)
        buffer.storeBigEndian(source.rawValue, toByteOffset: Field.source.lowerBound)
        buffer.storeBigEndian(destination.rawValue, toByteOffset: Field.destination.lowerBound)
        let checksum = InternetChecksum.compute(UnsafeRawBufferPointer(rebasing: buffer[0..<headerLength]))
        buffer.storeBigEndian(checksum, toByteOffset: Field.checksum.lowerBound)
        return headerLength
    }
}
