/// IPv4 or IPv6.
public enum AddressFamily: String, Sendable, Equatable, Codable, CustomStringConvertible {
    case ipv4 = "ipv4"
    case ipv6 = "ipv6"

    public var description: String { self == .ipv4 ? "inet" : "inet6" }
}

/// One interface address (`ip addr show`), with what it takes to add it again as it was
/// (`NetlinkSocket.addAddress(_:to:)` with an AddressInfo, or `addAddresses(_:to:)` for several).
/// Codable, to be kept with other state until it is put back.
public struct AddressInfo: Sendable, Equatable, Codable, CustomStringConvertible {
    public var family: AddressFamily
    /// The address alone: "198.18.0.1", "2001:2::1".
    public var address: String
    public var prefixLength: Int
    /// The interface it is on.
    public var ifindex: Int32
    /// RT_SCOPE_* (0 global, 253 link, 254 host); see `AddressInfo.Scope`.
    public var scope: UInt8
    /// IFA_F_* flags (`AddressFlags`): what the kernel reports, state included (permanent, secondary,
    /// tentative...). Only `AddressFlags.settable` of them can be given back to `addAddress`.
    public var flags: UInt32
    /// The IPv4 label (`ip addr ... label eth0:1`); the kernel reports the device name when none was
    /// given. nil for IPv6, which has no labels.
    public var label: String?
    /// The IPv4 broadcast address, when one was set (`ip addr add ... brd +`); nil otherwise and for IPv6.
    public var broadcast: String?
    /// Seconds of validity left; nil for "forever" (a permanent address).
    public var validLifetime: UInt32?
    /// Seconds left before the address is deprecated; nil for "forever".
    public var preferredLifetime: UInt32?

    public init(family: AddressFamily, address: String, prefixLength: Int, ifindex: Int32, scope: UInt8 = 0,
                flags: UInt32 = 0, label: String? = nil, broadcast: String? = nil, validLifetime: UInt32? = nil,
                preferredLifetime: UInt32? = nil) {
        self.family = family
        self.address = address
        self.prefixLength = prefixLength
        self.ifindex = ifindex
        self.scope = scope
        self.flags = flags
        self.label = label
        self.broadcast = broadcast
        self.validLifetime = validLifetime
        self.preferredLifetime = preferredLifetime
    }

    /// "198.18.0.1/24".
    public var cidr: String { "\(address)/\(prefixLength)" }

    /// IFA_F_SECONDARY: another address of the same subnet came first (IPv4). Deleting the primary
    /// deletes its secondaries too, unless net.ipv4.conf.DEV.promote_secondaries is set.
    public var isSecondary: Bool { flags & AddressFlags.secondary != 0 }
    /// IFA_F_PERMANENT: no lifetime (added by hand rather than by autoconfiguration or DHCP).
    public var isPermanent: Bool { flags & AddressFlags.permanent != 0 }
    /// IFA_F_TENTATIVE: IPv6 duplicate address detection has not finished; not usable yet.
    public var isTentative: Bool { flags & AddressFlags.tentative != 0 }

    public var description: String { "\(family) \(cidr) ifindex \(ifindex)" }

    /// RT_SCOPE_* values an address can have.
    public enum Scope {
        public static let global: UInt8 = 0   // RT_SCOPE_UNIVERSE
        public static let site: UInt8 = 200   // RT_SCOPE_SITE
        public static let link: UInt8 = 253   // RT_SCOPE_LINK
        public static let host: UInt8 = 254   // RT_SCOPE_HOST
    }
}

/// IFA_F_* (linux/if_addr.h): the flags of `AddressInfo.flags` and of `addAddress(flags:)`.
public enum AddressFlags {
    public static let secondary: UInt32 = 0x01
    public static let noDAD: UInt32 = 0x02
    public static let optimistic: UInt32 = 0x04
    public static let dadFailed: UInt32 = 0x08
    public static let homeAddress: UInt32 = 0x10
    public static let deprecated: UInt32 = 0x20
    public static let tentative: UInt32 = 0x40
    public static let permanent: UInt32 = 0x80
    public static let manageTempAddress: UInt32 = 0x100
    public static let noPrefixRoute: UInt32 = 0x200
    public static let mcAutoJoin: UInt32 = 0x400
    public static let stablePrivacy: UInt32 = 0x800

    /// The flags a request can set. The others are state the kernel derives itself (secondary from the
    /// other addresses, permanent from the lifetime, tentative/dadfailed/deprecated from DAD and time):
    /// `addAddress` drops them, so a listed `flags` can be passed back as it is.
    public static let settable: UInt32 = noDAD | optimistic | homeAddress | manageTempAddress | noPrefixRoute
        | mcAutoJoin
}
