/// IPv4 or IPv6.
public enum AddressFamily: Sendable, Equatable, CustomStringConvertible {
    case ipv4
    case ipv6

    public var description: String { self == .ipv4 ? "inet" : "inet6" }
}

/// One interface address (`ip addr show`).
public struct AddressInfo: Sendable, Equatable, CustomStringConvertible {
    public var family: AddressFamily
    /// The address alone: "198.18.0.1", "2001:2::1".
    public var address: String
    public var prefixLength: Int
    /// The interface it is on.
    public var ifindex: Int32
    /// "198.18.0.1/24".
    public var cidr: String { "\(address)/\(prefixLength)" }

    public var description: String { "\(family) \(cidr) ifindex \(ifindex)" }
}
