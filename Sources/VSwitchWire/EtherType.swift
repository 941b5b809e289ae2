/// The 16-bit EtherType of an Ethernet II frame (or of the frame inside an 802.1Q tag).
///
/// A struct over the raw value rather than an enum, so values we do not know are carried and
/// re-emitted unchanged, and print in hex.
public struct EtherType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt16

    @inlinable
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let ipv4 = EtherType(rawValue: 0x0800)
    public static let arp = EtherType(rawValue: 0x0806)
    /// IEEE 802.1Q customer VLAN tag (C-tag).
    public static let vlan = EtherType(rawValue: 0x8100)
    /// IEEE 802.1ad service VLAN tag (S-tag, "Q-in-Q").
    public static let qinq = EtherType(rawValue: 0x88a8)
    public static let ipv6 = EtherType(rawValue: 0x86dd)

    /// True for the TPIDs that announce a 4-byte VLAN tag after the MAC addresses (0x8100, 0x88a8).
    @inlinable
    public var isVLANTag: Bool { rawValue == 0x8100 || rawValue == 0x88a8 }
}

extension EtherType: CustomStringConvertible {
    /// The protocol's name for known values (`IPv4`, `ARP`, `VLAN`, `QinQ`, `IPv6`), else hex: `0x88cc`.
    public var description: String {
        switch self {
        case .ipv4: return "IPv4"
        case .arp: return "ARP"
        case .vlan: return "VLAN"
        case .qinq: return "QinQ"
        case .ipv6: return "IPv6"
        default: return hexString(rawValue, digits: 4)
        }
    }
}
