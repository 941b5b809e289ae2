/// One route of the main table (`ip route show`, `ip -6 route show`), with what it takes to add it
/// again as it was (`NetlinkSocket.addRoute(_:device:)`). Codable, to be kept with other state.
public struct RouteInfo: Sendable, Equatable, Codable, CustomStringConvertible {
    public var family: AddressFamily
    /// "default" or a CIDR such as "198.18.1.0/24" (host routes keep their "/32" or "/128").
    public var destination: String
    /// The first nexthop's gateway, if it has one.
    public var gateway: String?
    /// The first nexthop's output interface.
    public var ifindex: Int32?
    public var device: String?
    /// The route's metric (RTA_PRIORITY): 0 for most IPv4 routes, 1024 for `ip -6 route add`.
    public var metric: UInt32
    /// RTPROT_* (2 kernel, 3 boot, 4 static, ...): see `RouteInfo.RouteProtocol`.
    public var protocolID: UInt8
    /// RT_SCOPE_* (0 universe, 253 link, 254 host).
    public var scope: UInt8
    /// The source address the route prefers (`ip route ... src 198.18.0.1`, RTA_PREFSRC).
    public var preferredSource: String?
    /// RTN_* (1 unicast, 6 blackhole, 7 unreachable, 8 prohibit): see `RouteInfo.RouteType`.
    public var type: UInt8
    /// The first nexthop has RTNH_F_ONLINK (`ip route ... onlink`): its gateway need not be in a
    /// connected subnet.
    public var onLink: Bool

    public init(family: AddressFamily, destination: String, gateway: String? = nil, ifindex: Int32? = nil,
                device: String? = nil, metric: UInt32 = 0, protocolID: UInt8 = RouteProtocol.boot,
                scope: UInt8 = 0, preferredSource: String? = nil, type: UInt8 = RouteType.unicast,
                onLink: Bool = false) {
        self.family = family
        self.destination = destination
        self.gateway = gateway
        self.ifindex = ifindex
        self.device = device
        self.metric = metric
        self.protocolID = protocolID
        self.scope = scope
        self.preferredSource = preferredSource
        self.type = type
        self.onLink = onLink
    }

    /// A route the kernel made itself for an address (`proto kernel`: the subnet's prefix route, IPv6's
    /// fe80::/64). It comes back when the address is added again: do not add it by hand.
    public var isKernelRoute: Bool { protocolID == RouteProtocol.kernel }

    public var description: String {
        var text = destination
        if let gateway { text += " via \(gateway)" }
        if let device { text += " dev \(device)" }
        if metric != 0 { text += " metric \(metric)" }
        return text
    }

    /// RTPROT_* (linux/rtnetlink.h).
    public enum RouteProtocol {
        public static let kernel: UInt8 = 2
        /// What `ip route add` gives when no `proto` is said.
        public static let boot: UInt8 = 3
        public static let `static`: UInt8 = 4
        public static let ra: UInt8 = 9
        public static let dhcp: UInt8 = 16
    }

    /// RT_SCOPE_*.
    public enum RouteScope {
        public static let universe: UInt8 = 0
        public static let link: UInt8 = 253
        public static let host: UInt8 = 254
    }

    /// RTN_*.
    public enum RouteType {
        public static let unicast: UInt8 = 1
        public static let blackhole: UInt8 = 6
        public static let unreachable: UInt8 = 7
        public static let prohibit: UInt8 = 8
    }
}
