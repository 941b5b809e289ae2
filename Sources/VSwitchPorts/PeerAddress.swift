import VSwitchWire

/// An address of the host behind a TUN port, with the prefix that is on-link for it
/// (`--peer 198.18.5.2/24`, `--peer 2001:2:0:5::2/64`).
///
/// The port answers ARP and neighbour solicitations for `address`, and uses it as the sender of
/// its own solicitations for destinations in the prefix. IPv4 addresses are kept IPv4-mapped
/// (`::ffff:198.18.5.2`), so one 128-bit key serves both families in the neighbour table.
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address, IPv4 ones IPv4-mapped.
    public let key: IPv6Address
    /// Within the address's own family: 0...32 for IPv4, 0...128 for IPv6.
    public let prefixLength: Int

    public init(_ address: IPv4Address, prefixLength: Int) {
        precondition((0...32).contains(prefixLength))
        key = IPv6Address(ipv4Mapped: address)
        self.prefixLength = prefixLength
    }

    public init(_ address: IPv6Address, prefixLength: Int) {
        precondition((0...128).contains(prefixLength) && address.ipv4Mapped == nil)
        key = address
        self.prefixLength = prefixLength
    }

    /// Parses "198.18.5.2/24" or "2001:2:0:5::2/64"; without a prefix, a /32 or /128. Nil for
    /// anything else, and for addresses no host can own (unspecified, loopback, multicast,
    /// IPv4 broadcast).
    public init?(cidr text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addressText = String(parts[0])
        var prefix: Int?
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let value = Int(parts[1]) else { return nil }
            prefix = value
        }
        if let v4 = IPv4Address(addressText) {
            let length = prefix ?? 32
            guard (0...32).contains(length), !v4.isUnspecified, !v4.isLoopback, !v4.isMulticast, v4 != .broadcast
            else { return nil }
            self.init(v4, prefixLength: length)
        } else if let v6 = IPv6Address(addressText) {
            let length = prefix ?? 128
            guard (0...128).contains(length), !v6.isUnspecified, !v6.isLoopback, !v6.isMulticast, v6.ipv4Mapped == nil
            else { return nil }
            self.init(v6, prefixLength: length)
        } else {
            return nil
        }
    }

    /// The IPv4 address, or nil for an IPv6 peer.
    public var ipv4: IPv4Address? { key.ipv4Mapped }

    public var isIPv4: Bool { key.ipv4Mapped != nil }

    /// Whether `other` (a key: IPv4-mapped or IPv6) lies in this peer's prefix.
    @inline(__always)
    public func contains(_ other: IPv6Address) -> Bool {
        if let mine = key.ipv4Mapped {
            guard let theirs = other.ipv4Mapped else { return false }
            let mask: UInt32 = prefixLength == 0 ? 0 : ~0 << UInt32(32 - prefixLength)
            return mine.rawValue & mask == theirs.rawValue & mask
        }
        guard other.ipv4Mapped == nil else { return false }
        let highMask: UInt64 = prefixLength == 0 ? 0 : (prefixLength >= 64 ? ~0 : ~0 << UInt64(64 - prefixLength))
        let lowMask: UInt64 = prefixLength <= 64 ? 0 : (prefixLength == 128 ? ~0 : ~0 << UInt64(128 - prefixLength))
        return key.high & highMask == other.high & highMask && key.low & lowMask == other.low & lowMask
    }

    /// For an IPv4 peer with a prefix of /30 or shorter, the prefix's broadcast address
    /// (198.18.5.255 for /24); nil otherwise.
    public var directedBroadcast: IPv4Address? {
        guard let mine = ipv4, prefixLength <= 30 else { return nil }
        let host: UInt32 = prefixLength == 0 ? ~0 : ~(~0 << UInt32(32 - prefixLength))
        return IPv4Address(rawValue: mine.rawValue | host)
    }

    /// "198.18.5.2/24", "2001:2:0:5::2/64".
    public var description: String {
        if let v4 = ipv4 { return "\(v4)/\(prefixLength)" }
        return "\(key)/\(prefixLength)"
    }
}
