import CNetlink
import Glibc

extension NetlinkSocket {
    /// Adds a main-table route like `ip route add`: `destination` is "default" or a CIDR
    /// ("198.18.1.0/24", "2001:2:0:1::/64"), with a gateway, a device, or both. "default" is IPv4
    /// unless the gateway is IPv6 (write "::/0" for an IPv6 default without gateway). A duplicate fails
    /// with "File exists"; an unreachable gateway with "Network is unreachable".
    ///
    /// What `ip route add` has besides, for re-creating a listed route as it was:
    /// - `protocol`: RTPROT_* (`RouteInfo.RouteProtocol`); nil: static (4). `ip route add` says boot (3).
    /// - `scope`: RT_SCOPE_*; nil: link for a unicast IPv4 route without gateway, universe otherwise (as `ip`).
    /// - `preferredSource`: `src ADDRESS`, which must be an address of this host.
    /// - `type`: RTN_* (`RouteInfo.RouteType`); nil: unicast. Blackhole, unreachable and prohibit routes
    ///   need neither gateway nor device.
    /// - `onLink`: RTNH_F_ONLINK, the gateway is on the link even if no subnet of the device holds it.
    public func addRoute(destination: String, gateway: String? = nil, device: String? = nil,
                         metric: UInt32? = nil, protocol protocolID: UInt8? = nil, scope: UInt8? = nil,
                         preferredSource: String? = nil, type: UInt8? = nil, onLink: Bool = false) throws {
        try withSocket("add route", Self.routeObject(destination, gateway, device)) { socket, call in
            let unicast = (type ?? RouteInfo.RouteType.unicast) == RouteInfo.RouteType.unicast
            let route = try Self.routeTemplate(destination, gateway, device, socket: socket, call: call,
                                               requireNexthop: unicast, nexthopFlags: onLink ? rtnhFOnLink : 0)
            defer { rtnl_route_put(route) }
            rtnl_route_set_protocol(route, protocolID ?? UInt8(rtprotStatic))
            if let metric { rtnl_route_set_priority(route, metric) }
            if let scope {
                rtnl_route_set_scope(route, scope)
            } else if !unicast {
                rtnl_route_set_scope(route, UInt8(rtScopeUniverse))  // as `ip route add blackhole ...`
            }
            if let type { try call.check(rtnl_route_set_type(route, type)) }
            if let preferredSource {
                let source = try IPAddressText.parse(preferredSource, call: call)
                defer { nl_addr_put(source) }
                guard nl_addr_get_family(source) == Int32(rtnl_route_get_family(route)) else {
                    throw call.failure(EINVAL, "source and destination are not of the same address family")
                }
                try call.check(rtnl_route_set_pref_src(route, source))  // takes its own reference
            }
            try call.check(rtnl_route_add(socket, route, NLM_F_CREATE | NLM_F_EXCL))
        }
    }

    /// Re-creates a route listed by `routes()` through `device` (the device it was listed on, or another
    /// one): same destination, gateway, metric, protocol, scope, preferred source, type and onlink flag.
    /// A route the kernel made for an address (`info.isKernelRoute`) comes back with the address instead;
    /// adding it here fails with "File exists" once the address is there.
    public func addRoute(_ info: RouteInfo, device: String) throws {
        let unicast = info.type == RouteInfo.RouteType.unicast
        var destination = info.destination
        if destination == "default" { destination = info.family == .ipv6 ? "::/0" : "0.0.0.0/0" }
        try addRoute(destination: destination, gateway: info.gateway,
                     device: unicast || info.device != nil ? device : nil, metric: info.metric,
                     protocol: info.protocolID, scope: info.scope, preferredSource: info.preferredSource,
                     type: info.type, onLink: info.onLink)
    }

    /// Deletes a main-table route; give what identifies it (destination, and gateway or device when
    /// several routes share the destination).
    public func deleteRoute(destination: String, gateway: String? = nil, device: String? = nil) throws {
        try withSocket("delete route", Self.routeObject(destination, gateway, device)) { socket, call in
            let route = try Self.routeTemplate(destination, gateway, device, socket: socket, call: call,
                                               requireNexthop: false)
            defer { rtnl_route_put(route) }
            var message: OpaquePointer?
            try call.check(rtnl_route_build_del_request(route, 0, &message))
            guard let message else { throw call.failure(ENOMEM) }
            guard let rtmsg = nlmsg_data(nlmsg_hdr(message)) else {
                nlmsg_free(message)
                throw call.failure(ENOMEM)
            }
            // Match like `ip route del`: any protocol, any scope, any type. libnl would send RTPROT_STATIC
            // and a guessed scope, and the kernel compares both (a gateway route deleted by destination
            // alone would be "No such process").
            rtmsg.storeBytes(of: 0, toByteOffset: 5, as: UInt8.self)    // rtm_protocol: RTPROT_UNSPEC
            rtmsg.storeBytes(of: 255, toByteOffset: 6, as: UInt8.self)  // rtm_scope: RT_SCOPE_NOWHERE
            rtmsg.storeBytes(of: 0, toByteOffset: 7, as: UInt8.self)    // rtm_type: RTN_UNSPEC
            try call.check(nl_send_sync(socket, message))  // frees the message
        }
    }

    /// The IPv4 and IPv6 routes of the main table, IPv4 first, in kernel order: one entry for each route
    /// `ip route show` lists. A multipath route is told by its first nexthop.
    public func routes() throws -> [RouteInfo] {
        try withSocket("list routes", "") { socket, call in
            var linkCache: OpaquePointer?
            try call.check(rtnl_link_alloc_cache(socket, AF_UNSPEC, &linkCache))
            defer { nl_cache_free(linkCache) }
            // Not a libnl route cache: its identity of a route is (family, tos, table, destination, metric),
            // without the device, so it merges fe80::/64 of two links into one multipath route (IPv6) or
            // keeps only one of them (IPv4). Each route of the dump is parsed on its own instead.
            let dumped = RouteDump()
            defer { dumped.release() }
            try call.check(nl_rtgen_request(socket, Int32(RTM_GETROUTE), AF_UNSPEC, NLM_F_DUMP))
            guard let base = nl_socket_get_cb(socket) else { throw call.failure(ENOMEM) }
            let callbacks = nl_cb_clone(base)  // keeps the error callback that records the kernel's errno
            nl_cb_put(base)
            guard let callbacks else { throw call.failure(ENOMEM) }
            defer { nl_cb_put(callbacks) }
            nl_cb_set(callbacks, NL_CB_VALID, NL_CB_CUSTOM, collectRoute, Unmanaged.passUnretained(dumped).toOpaque())
            try call.check(nl_recvmsgs(socket, callbacks))
            if dumped.failure < 0 { try call.check(dumped.failure) }

            var result: [RouteInfo] = []
            for route in dumped.routes {
                guard rtnl_route_get_table(route) == rtTableMain,
                      let family = IPAddressText.family(Int32(rtnl_route_get_family(route))) else { continue }
                var destination = "default"
                if let dst = rtnl_route_get_dst(route), nl_addr_get_prefixlen(dst) > 0,
                   let text = IPAddressText.string(dst) {
                    destination = "\(text)/\(nl_addr_get_prefixlen(dst))"
                }
                var info = RouteInfo(family: family, destination: destination, gateway: nil, ifindex: nil,
                                     device: nil, metric: rtnl_route_get_priority(route),
                                     protocolID: rtnl_route_get_protocol(route),
                                     scope: UInt8(truncatingIfNeeded: rtnl_route_get_scope(route)),
                                     preferredSource: rtnl_route_get_pref_src(route).flatMap(IPAddressText.string),
                                     type: rtnl_route_get_type(route))
                if rtnl_route_get_nnexthops(route) > 0, let nexthop = rtnl_route_nexthop_n(route, 0) {
                    info.onLink = rtnl_route_nh_get_flags(nexthop) & rtnhFOnLink != 0
                    if let gateway = rtnl_route_nh_get_gateway(nexthop) {
                        info.gateway = IPAddressText.string(gateway)
                    }
                    let ifindex = rtnl_route_nh_get_ifindex(nexthop)
                    if ifindex > 0 {
                        info.ifindex = ifindex
                        var name = [CChar](repeating: 0, count: 32)
                        if rtnl_link_i2name(linkCache, ifindex, &name, name.count) != nil {
                            info.device = String(nulTerminated: name)
                        }
                    }
                }
                result.append(info)
            }
            return result.enumerated().sorted { a, b in
                (a.element.family == .ipv4 ? 0 : 1, a.offset) < (b.element.family == .ipv4 ? 0 : 1, b.offset)
            }.map(\.element)
        }
    }

    // MARK: - Internals

    private static func routeObject(_ destination: String, _ gateway: String?, _ device: String?) -> String {
        destination + (gateway.map { " via \($0)" } ?? "") + (device.map { " dev \($0)" } ?? "")
    }

    /// An rtnl_route in the main table for the arguments (referenced: put it).
    private static func routeTemplate(_ destination: String, _ gateway: String?, _ device: String?,
                                      socket: OpaquePointer, call: Call,
                                      requireNexthop: Bool = true, nexthopFlags: UInt32 = 0) throws -> OpaquePointer {
        var gatewayAddress: OpaquePointer?
        if let gateway { gatewayAddress = try IPAddressText.parse(gateway, call: call) }
        defer { if let gatewayAddress { nl_addr_put(gatewayAddress) } }
        if requireNexthop && gateway == nil && device == nil {
            throw call.failure(EINVAL, "a route needs a gateway or a device")
        }

        var destinationText = destination
        if destination == "default" {
            let v6 = gatewayAddress.map { nl_addr_get_family($0) == AF_INET6 } ?? false
            destinationText = v6 ? "::/0" : "0.0.0.0/0"
        }
        let dst = try IPAddressText.parse(destinationText, call: call)
        defer { nl_addr_put(dst) }
        let family = nl_addr_get_family(dst)
        if let gatewayAddress, nl_addr_get_family(gatewayAddress) != family {
            throw call.failure(EINVAL, "gateway and destination are not of the same address family")
        }
        var ifindex: Int32 = 0
        if let device { ifindex = try NetlinkSocket.ifindex(of: device, socket: socket, call: call) }

        guard let route = rtnl_route_alloc() else { throw call.failure(ENOMEM) }
        rtnl_route_set_family(route, UInt8(family))
        rtnl_route_set_table(route, rtTableMain)
        let rc = rtnl_route_set_dst(route, dst)  // takes its own reference
        if rc < 0 { rtnl_route_put(route); try call.check(rc) }
        if gatewayAddress != nil || ifindex > 0 {
            guard let nexthop = rtnl_route_nh_alloc() else { rtnl_route_put(route); throw call.failure(ENOMEM) }
            if let gatewayAddress { rtnl_route_nh_set_gateway(nexthop, gatewayAddress) }
            if ifindex > 0 { rtnl_route_nh_set_ifindex(nexthop, ifindex) }
            if nexthopFlags != 0 { rtnl_route_nh_set_flags(nexthop, nexthopFlags) }
            rtnl_route_add_nexthop(route, nexthop)  // the route owns it now
        }
        return route
    }
}

/// The routes of one dump, parsed by `collectRoute` (each referenced until `release`).
private final class RouteDump {
    var routes: [OpaquePointer] = []
    var failure: Int32 = 0
    func release() {
        for route in routes { rtnl_route_put(route) }
        routes.removeAll()
    }
}

/// NL_CB_VALID for a route dump: parse each RTM_NEWROUTE into its own rtnl_route.
private func collectRoute(_ message: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) -> Int32 {
    guard let message, let argument, let header = nlmsg_hdr(message) else { return Int32(NL_SKIP.rawValue) }
    let dump = Unmanaged<RouteDump>.fromOpaque(argument).takeUnretainedValue()
    guard header.pointee.nlmsg_type == UInt16(RTM_NEWROUTE) else { return Int32(NL_SKIP.rawValue) }
    var route: OpaquePointer?
    let rc = rtnl_route_parse(header, &route)
    if rc < 0 {
        dump.failure = rc
        return Int32(NL_SKIP.rawValue)  // read on to the end of the dump, or the next request would get its rest
    }
    if let route { dump.routes.append(route) }
    return Int32(NL_OK.rawValue)
}

private let rtTableMain: UInt32 = 254  // RT_TABLE_MAIN
private let rtprotStatic: Int32 = 4    // RTPROT_STATIC
private let rtnhFOnLink: UInt32 = 4    // RTNH_F_ONLINK
private let rtScopeUniverse: Int32 = 0 // RT_SCOPE_UNIVERSE
