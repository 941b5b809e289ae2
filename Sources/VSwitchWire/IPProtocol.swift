/// The IPv4 Protocol / IPv6 Next Header number (IANA "Assigned Internet Protocol Numbers").
///
/// A struct over the raw value rather than an enum, so unknown protocols are kept and print in hex.
public struct IPProtocol: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt8

    @inlinable
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let icmp = IPProtocol(rawValue: 1)
    public static let tcp = IPProtocol(rawValue: 6)
    public static let udp = IPProtocol(rawValue: 17)
    public static let icmpv6 = IPProtocol(rawValue: 58)
}

extension IPProtocol: CustomStringConvertible {
    /// The protocol's name for known values (`ICMP`, `TCP`, `UDP`, `ICMPv6`), else hex: `0x2f`.
    public var description: String {
        switch self {
        case .icmp: return "ICMP"
        case .tcp: return "TCP"
        case .udp: return "UDP"
        case .icmpv6: return "ICMPv6"
        default: return hexString(rawValue, digits: 2)
        }
    }
}
