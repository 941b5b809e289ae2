import CNetlink
import Glibc

extension NetlinkSocket {
    /// Adds a main-table route like `ip route add`: `destination` is "default" or a CIDR
    /// ("198.18.1.0/24", "2001:2:0:1::/64"), with a gateway, a device, or both. "default" is IPv4
    /// unless the gateway is IPv6 (write "::/0" for an IPv6 default without gateway). A duplicate fails
    /// with "File exists"; an unreachable gateway with "Network is unreachable".
    public func addRoute(destination: String, gateway: String? = nil, device: String? = nil,
                         metric: UInt32? = nil) throws {
        try withSocket("add route", Self.routeObject(destination, gateway, device)) { socket, call in
            let route = try Self.routeTemplate(destination, gateway, device, socket: socket, call: call)
            defer { rtnl_route_put(route) }
            rtnl_route_set_protocol(route, UInt8(rtprotStatic))
            if let metric { rtnl_route_set_priority(route, metric) }
            try call.check(rtnl_route_add(socket, route, NLM_F_CREATE | NLM_F_EXCL))
        }
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

    /// The IPv4 and IPv6 routes of the main table, IPv4 first, in kernel order.
    public func routes() throws -> [RouteInfo] {
        try withSocket("list routes", "") { socket, call in
            var linkCache: OpaquePointer?
            try call.check(rtnl_link_alloc_cache(socket, AF_UNSPEC, &linkCache))
            defer { nl_cache_free(linkCache) }
            var routeCache: OpaquePointer?
            try call.check(rtnl_route_alloc_cache(socket, AF_UNSPEC, 0, &routeCache))
            defer { nl_cache_free(routeCache) }

            var result: [RouteInfo] = []
            var object = nl_cache_get_first(routeCache)
            while let route = object {
                object = nl_cache_get_next(route)
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
                                     scope: UInt8(truncatingIfNeeded: rtnl_route_get_scope(route)))
                if rtnl_route_get_nnexthops(route) > 0, let nexthop = rtnl_route_nexthop_n(route, 0) {
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
                                      requireNexthop: Bool = true) throws -> OpaquePointer {
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
            rtnl_route_add_nexthop(route, nexthop)  // the route owns it now
        }
        return route
    }
}

private let rtTableMain: UInt32 = 254  // RT_TABLE_MAIN
private let rtprotStatic: Int32 = 4    // RTPROT_STATIC
