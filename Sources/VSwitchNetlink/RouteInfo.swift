/// One route of the main table (`ip route show`, `ip -6 route show`).
public struct RouteInfo: Sendable, Equatable, CustomStringConvertible {
    public var family: AddressFamily
    /// "default" or a CIDR such as "198.18.1.0/24" (host routes keep their "/32" or "/128").
    public var destination: String
    /// The first nexthop's gateway, if it has one.
    public var gateway: String?
    /// The first nexthop's output interface.
    public var ifindex: Int32?
    public var device: String?
    /// The route's metric (RTA_PRIORITY).
    public var metric: UInt32
    /// RTPROT_* (2 kernel, 3 boot, 4 static, ...).
    public var protocolID: UInt8
    /// RT_SCOPE_* (0 universe, 253 link, 254 host).
    public var scope: UInt8

    public var description: String {
        var text = destination
        if let gateway { text += " via \(gateway)" }
        if let device { text += " dev \(device)" }
        if metric != 0 { text += " metric \(metric)" }
        return text
    }
}
