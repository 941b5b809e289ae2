/// The 10-byte `struct virtio_net_hdr` (virtio 1.x, section 5.1.6) that a TAP opened with
/// `IFF_VNET_HDR` puts in front of every frame: which checksum the receiver still has to compute,
/// and how to cut a superframe into segments.
///
///     0      1        2         4          6            8             10
///     +------+--------+---------+----------+------------+-------------+
///     |flags |gso_type| hdr_len | gso_size | csum_start | csum_offset |
///
/// Multi-byte fields are little endian (a TAP with `TUNSETVNETLE`, or any little-endian host).
/// Unlike the other formats here this is not a view over borrowed bytes: it is a small value,
/// loaded from and stored to the headroom in front of a frame, because the switch reads all of it
/// for every frame that has one and rewrites it when frames change shape.
///
/// The offload work itself lives beside it: `completeChecksum(in:)` (checksum partial to complete),
/// `GSOSegmenter` (superframe to wire-sized frames) and `infer(frame:mtu:)` (a header for a frame
/// captured without one).
public struct VirtioNetHeader: Hashable, Sendable {
    /// `VIRTIO_NET_HDR_F_*`. Unknown bits are kept.
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// `NEEDS_CSUM`: the checksum over `[checksumStart, end)` is still to be computed and
        /// stored at `checksumStart + checksumOffset`, where the pseudo-header sum already sits.
        public static let needsChecksum = Flags(rawValue: 1)
        /// `DATA_VALID`: the checksums have been verified (receive side only).
        public static let dataValid = Flags(rawValue: 2)
    }

    /// `VIRTIO_NET_HDR_GSO_*`: what kind of superframe this is. A struct over the raw value so
    /// unknown types are kept and print in hex; the ECN bit may be or-ed into any of them.
    public struct GSOType: RawRepresentable, Hashable, Sendable {
        public let rawValue: UInt8
        @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Not a superframe.
        public static let none = GSOType(rawValue: 0)
        /// TCP over IPv4 (TSO).
        public static let tcpv4 = GSOType(rawValue: 1)
        /// UDP fragmentation offload (UFO): deprecated, and not segmented by `GSOSegmenter`.
        public static let udp = GSOType(rawValue: 3)
        /// TCP over IPv6 (TSO).
        public static let tcpv6 = GSOType(rawValue: 4)
        /// UDP segmentation (USO), over IPv4 or IPv6: each segment its own UDP datagram.
        public static let udpL4 = GSOType(rawValue: 5)
        /// Bit: the TCP superframe carries CWR, so only its first segment may (`SKB_GSO_TCP_ECN`).
        public static let ecn = GSOType(rawValue: 0x80)

        /// The type without the ECN bit.
        @inlinable public var withoutECN: GSOType { GSOType(rawValue: rawValue & ~GSOType.ecn.rawValue) }

        /// True if the ECN bit is set.
        @inlinable public var hasECN: Bool { rawValue & GSOType.ecn.rawValue != 0 }
    }

    public var flags: Flags
    public var gsoType: GSOType
    /// `hdr_len`: bytes of Ethernet, IP and TCP/UDP headers in front of the payload, which every
    /// segment repeats. The kernel treats it as a hint; `GSOSegmenter` only checks it lies within
    /// the frame and takes the real lengths from the headers.
    public var segmentHeaderLength: UInt16
    /// `gso_size`: payload bytes per segment (the MSS for TCP); 0 when not a superframe.
    public var gsoSize: UInt16
    /// `csum_start`: offset from the start of the frame where checksumming starts (the TCP/UDP header).
    public var checksumStart: UInt16
    /// `csum_offset`: where the checksum field is, from `checksumStart` (16 for TCP, 6 for UDP).
    public var checksumOffset: UInt16

    /// `sizeof(struct virtio_net_hdr)`: 10 bytes.
    public static let headerLength = 10

    /// Byte offsets of the fields.
    @usableFromInline
    enum Field {
        @inlinable static var flags: Int { 0 }
        @inlinable static var gsoType: Int { 1 }
        @inlinable static var segmentHeaderLength: Range<Int> { 2..<4 }
        @inlinable static var gsoSize: Range<Int> { 4..<6 }
        @inlinable static var checksumStart: Range<Int> { 6..<8 }
        @inlinable static var checksumOffset: Range<Int> { 8..<10 }
    }

    /// The checksum field's offset in a TCP header.
    public static let tcpChecksumOffset: UInt16 = 16
    /// The checksum field's offset in a UDP header.
    public static let udpChecksumOffset: UInt16 = 6

    /// An all-zero header means "a plain frame, checksums complete": what a frame from a port
    /// without offloads gets on its way to a TAP.
    public init(flags: Flags = [], gsoType: GSOType = .none, segmentHeaderLength: UInt16 = 0, gsoSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.segmentHeaderLength = segmentHeaderLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// Loads the 10 bytes at `pointer`, whatever their alignment. The caller guarantees they are
    /// there (the headroom in front of a frame with `offloadLength == 10`).
    @inlinable
    public init(loadingFrom pointer: UnsafeRawPointer) {
        func load16(_ offset: Int) -> UInt16 {
            UInt16(littleEndian: pointer.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        }
        self.init(flags: Flags(rawValue: pointer.load(fromByteOffset: Field.flags, as: UInt8.self)),
                  gsoType: GSOType(rawValue: pointer.load(fromByteOffset: Field.gsoType, as: UInt8.self)),
                  segmentHeaderLength: load16(Field.segmentHeaderLength.lowerBound),
                  gsoSize: load16(Field.gsoSize.lowerBound),
                  checksumStart: load16(Field.checksumStart.lowerBound),
                  checksumOffset: load16(Field.checksumOffset.lowerBound))
    }

    /// The header at the start of `bytes`, or nil if they are shorter than 10 bytes.
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.headerLength, let base = bytes.baseAddress else { return nil }
        self.init(loadingFrom: base)
    }

    /// Stores the 10 bytes at `pointer`, whatever its alignment. The caller guarantees the room.
    @inlinable
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: flags.rawValue, toByteOffset: Field.flags, as: UInt8.self)
        pointer.storeBytes(of: gsoType.rawValue, toByteOffset: Field.gsoType, as: UInt8.self)
        pointer.storeBytes(of: segmentHeaderLength.littleEndian, toByteOffset: Field.segmentHeaderLength.lowerBound, as: UInt16.self)
        pointer.storeBytes(of: gsoSize.littleEndian, toByteOffset: Field.gsoSize.lowerBound, as: UInt16.self)
        pointer.storeBytes(of: checksumStart.littleEndian, toByteOffset: Field.checksumStart.lowerBound, as: UInt16.self)
        pointer.storeBytes(of: checksumOffset.littleEndian, toByteOffset: Field.checksumOffset.lowerBound, as: UInt16.self)
    }

    /// Writes the header at the start of `buffer` and returns 10, or nil (writing nothing) if the
    /// buffer is shorter than that.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        guard buffer.count >= Self.headerLength, let base = buffer.baseAddress else { return nil }
        store(to: base)
        return Self.headerLength
    }

    /// True if the frame needs no work from a receiver without offloads: no checksum left to
    /// compute and not a superframe.
    @inlinable
    public var isPlain: Bool { !flags.contains(.needsChecksum) && gsoType.withoutECN == .none }

    /// The header for the same frame after `delta` bytes were inserted (positive) or removed
    /// (negative) in front of its L3 packet: an Ethernet header added or stripped, a VLAN tag
    /// pushed or popped. `checksumStart` moves when `needsChecksum` is set and `segmentHeaderLength`
    /// when it is not zero (both count from the start of the frame); the other fields do not
    /// depend on where the frame starts. Nil if a moved field would fall below 0 or above 65535.
    public func shifted(by delta: Int) -> VirtioNetHeader? {
        var header = self
        if flags.contains(.needsChecksum) {
            guard let start = UInt16(exactly: Int(checksumStart) + delta) else { return nil }
            header.checksumStart = start
        }
        if segmentHeaderLength != 0 {
            guard let length = UInt16(exactly: Int(segmentHeaderLength) + delta) else { return nil }
            header.segmentHeaderLength = length
        }
        return header
    }
}

extension VirtioNetHeader.GSOType: CustomStringConvertible {
    /// `none`, `tcpv4`, `udp`, `tcpv6`, `udp_l4`, else hex; `+ecn` when the ECN bit is set.
    public var description: String {
        let base: String
        switch withoutECN {
        case .none: base = "none"
        case .tcpv4: base = "tcpv4"
        case .udp: base = "udp"
        case .tcpv6: base = "tcpv6"
        case .udpL4: base = "udp_l4"
        default: base = hexString(withoutECN.rawValue, digits: 2)
        }
        return hasECN ? base + "+ecn" : base
    }
}

extension VirtioNetHeader: CustomStringConvertible {
    /// `vnet flags=0x01 gso=tcpv4 hdr_len=66 gso_size=1448 csum_start=34 csum_offset=16`.
    public var description: String {
        "vnet flags=\(hexString(flags.rawValue, digits: 2)) gso=\(gsoType) hdr_len=\(segmentHeaderLength) "
            + "gso_size=\(gsoSize) csum_start=\(checksumStart) csum_offset=\(checksumOffset)"
    }
}
