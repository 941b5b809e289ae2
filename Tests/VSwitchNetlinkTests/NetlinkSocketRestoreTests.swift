import Foundation
import Glibc
import Testing
@testable import VSwitchNetlink

/// What `bridge-nic` needs: list a link's addresses and routes (configured with `ip`, as a NIC would be),
/// take them away, and put them back (on the same link, or on another one) so that `ip -j addr` and
/// `ip -j route` show exactly what they showed before, lifetimes and DAD's "tentative" aside.
@Suite("NetlinkSocket restore", .enabled(if: RootRequirement.shouldRun, "needs root; set CI to fail instead"))
struct NetlinkSocketRestoreTests {
    @Test func roundTripOnTheSameLink() throws {
        try withConfiguredLink { c in
            let (ns, a, socket) = (c.namespace, c.link, c.socket)
            let addressesBefore = try Witness.addresses(ns, a)
            let routesBefore = try Witness.routes(ns, device: a)
            let routes6Before = try Witness.routes(ns, v6: true, device: a)

            let addresses = try socket.addresses(of: a)
            let routes = try socket.routes().filter { $0.device == a }
            try Self.checkListing(addresses, routes, link: a)

            // Take everything away: addresses (secondaries, then primaries: reversed), then what routes
            // the kernel left behind.
            for info in addresses.reversed() { try socket.deleteAddress(info.cidr, from: a) }
            #expect(try socket.addresses(of: a).isEmpty)
            // IPv4 loses every route through a link with its last address; IPv6 keeps its gateway routes.
            #expect(try IP.routes(ns).isEmpty)
            let left6 = try IP.routes(ns, v6: true).filter { $0.device == a }
            #expect(left6.count == 1 && left6.first?.destination == "default" && left6.first?.gateway == "2001:2:0:7::1",
                    "\(left6)")
            for route in try socket.routes() where route.device == a && !route.isKernelRoute {
                try socket.deleteRoute(destination: route.destination, gateway: route.gateway, device: a)
            }
            #expect(try IP.routes(ns, v6: true).filter { $0.device == a }.isEmpty)

            // Put it back as listed, routes at once (the IPv6 addresses are still tentative then).
            try socket.addAddresses(addresses, to: a)
            for route in routes where !route.isKernelRoute { try socket.addRoute(route, device: a) }
            try Witness.waitForDAD(ns, a)

            #expect(try Witness.addresses(ns, a) == addressesBefore)
            #expect(try Witness.routes(ns, device: a) == routesBefore)
            #expect(try Witness.routes(ns, v6: true, device: a) == routes6Before)
            #expect(try socket.routes().filter { $0.device == a } == routes)
        }
    }

    /// bridge-nic's move: the global addresses and the non-kernel routes of `a` go to another link `c`
    /// (the link-local address stays with `a`, and `c` has its own).
    @Test func moveToAnotherLink() throws {
        try withConfiguredLink { cfg in
            let (ns, a, c, socket) = (cfg.namespace, cfg.link, cfg.other, cfg.socket)
            let addressesBefore = try Witness.addresses(ns, a)
            let routesBefore = try Witness.routes(ns)
            let routes6Before = try Witness.routes(ns, v6: true)

            let moving = try socket.addresses(of: a).filter { $0.scope != AddressInfo.Scope.link }
            let routes = try socket.routes().filter { $0.device == a && !$0.isKernelRoute }
            #expect(moving.count == 5)
            #expect(routes.count == 5)
            for info in moving.reversed() { try socket.deleteAddress(info.cidr, from: a) }
            for route in try socket.routes() where route.device == a && !route.isKernelRoute {
                try socket.deleteRoute(destination: route.destination, gateway: route.gateway, device: a)
            }
            try socket.addAddresses(moving, to: c)
            for route in routes { try socket.addRoute(route, device: c) }
            try Witness.waitForDAD(ns, c)

            // On c: a's addresses, labels renamed (a:1 -> c:1), beside c's own link-local address.
            func global(_ entries: [String]) -> [String] { entries.filter { !$0.contains("\"scope\":\"link\"") } }
            #expect(global(try Witness.addresses(ns, c)) == global(addressesBefore).map { $0.replacingOccurrences(of: a, with: c) })
            // a keeps its link-local address and fe80::/64 only.
            #expect(try Witness.addresses(ns, a) == addressesBefore.filter { $0.contains("\"scope\":\"link\"") })
            #expect(try IP.routes(ns).allSatisfy { $0.device != a })
            #expect(try IP.routes(ns, v6: true).filter { $0.device == a }.map(\.destination) == ["fe80::/64"])
            // The routes, with c for a (c's own fe80::/64 aside).
            func moved(_ entries: [String], _ device: String) -> [String] {
                entries.filter { $0.contains("\"dev\":\"\(device)\"") && !$0.contains("\"dst\":\"fe80::/64\"") }
            }
            #expect(try moved(Witness.routes(ns), c) == moved(routesBefore, a).map { $0.replacingOccurrences(of: a, with: c) })
            // Both links' fe80::/64 (same destination and metric) are listed, each with its device.
            #expect(try Set(socket.routes().filter { $0.destination == "fe80::/64" }.compactMap(\.device)) == [a, c])
            #expect(try moved(Witness.routes(ns, v6: true), c)
                    == moved(routes6Before, a).map { $0.replacingOccurrences(of: a, with: c) })
        }
    }

    @Test func addressOptions() throws {
        try withVeth(namespaces: 2) { v in
            let (ns, a, socket) = (v.ns, v.a, v.socket)
            try socket.setUp(a, true)
            try socket.addAddress("198.18.7.9/24", to: a, flags: AddressFlags.noPrefixRoute | AddressFlags.permanent
                                  | AddressFlags.secondary | AddressFlags.tentative,
                                  label: "\(a):9", broadcast: "+", validLifetime: 600, preferredLifetime: 300)
            try socket.addAddress("198.18.6.9/24", to: a, scope: AddressInfo.Scope.link, broadcast: "198.18.6.127")
            let listed = try socket.addresses(of: a)
            let first = try #require(listed.first { $0.address == "198.18.7.9" })
            #expect(first.flags == AddressFlags.noPrefixRoute)  // only the settable flag; no lifetime: not permanent
            #expect(!first.isPermanent && !first.isSecondary && !first.isTentative)
            #expect(first.label == "\(a):9")
            #expect(first.broadcast == "198.18.7.255")
            #expect((590...600).contains(first.validLifetime ?? 0))
            #expect((290...300).contains(first.preferredLifetime ?? 0))
            let second = try #require(listed.first { $0.address == "198.18.6.9" })
            #expect(second.scope == AddressInfo.Scope.link)
            #expect(second.broadcast == "198.18.6.127")
            #expect(second.isPermanent && second.validLifetime == nil && second.label == a)
            // noprefixroute: no 198.18.7.0/24 route; the other address has its prefix route.
            #expect(try IP.routes(ns[0]).map(\.destination) == ["198.18.6.0/24"])

            let prefix = "in namespace \(ns[0]):"
            expectError("cannot add address 2001:2::9/64 to \(a) \(prefix) only IPv4 addresses have labels") {
                try socket.addAddress("2001:2::9/64", to: a, label: "\(a):1")
            }
            expectError("cannot add address 2001:2::9/64 to \(a) \(prefix) only IPv4 addresses have a broadcast address") {
                try socket.addAddress("2001:2::9/64", to: a, broadcast: "+")
            }
            expectError("cannot add address 198.18.5.9/24 to \(a) \(prefix) the preferred lifetime is longer than the valid one") {
                try socket.addAddress("198.18.5.9/24", to: a, validLifetime: 10, preferredLifetime: 20)
            }
            expectError("cannot add address 198.18.5.9/24 to \(a) \(prefix) invalid label \"\(a):0123456789\" (1 to 15 bytes)") {
                try socket.addAddress("198.18.5.9/24", to: a, label: "\(a):0123456789")
            }
        }
    }

    @Test func routeOptionsAndErrors() throws {
        try withVeth(namespaces: 2) { v in
            let (ns, a, socket) = (v.ns, v.a, v.socket)
            try socket.setUp(a, true)
            try socket.addAddress("198.18.7.2/24", to: a)
            try socket.addRoute(destination: "198.18.90.0/24", device: a, protocol: RouteInfo.RouteProtocol.boot,
                                preferredSource: "198.18.7.2")
            try socket.addRoute(destination: "198.18.91.0/24", gateway: "198.18.200.1", device: a, onLink: true)
            try socket.addRoute(destination: "198.18.92.0/24", type: RouteInfo.RouteType.blackhole)
            let routes = try socket.routes()
            let sourced = try #require(routes.first { $0.destination == "198.18.90.0/24" })
            #expect(sourced.preferredSource == "198.18.7.2")
            #expect(sourced.protocolID == RouteInfo.RouteProtocol.boot)
            #expect(sourced.scope == RouteInfo.RouteScope.link)
            let onLink = try #require(routes.first { $0.destination == "198.18.91.0/24" })
            #expect(onLink.onLink && onLink.gateway == "198.18.200.1")
            #expect(onLink.protocolID == RouteInfo.RouteProtocol.static)
            let blackhole = try #require(routes.first { $0.destination == "198.18.92.0/24" })
            #expect(blackhole.type == RouteInfo.RouteType.blackhole && blackhole.device == nil)
            let witness = try IP.json(["-n", ns[0], "route", "show"])
            #expect(witness.contains { $0["dst"] as? String == "198.18.92.0/24" && $0["type"] as? String == "blackhole" })
            // Listed and re-created elsewhere in the table: the blackhole needs no device.
            try socket.deleteRoute(destination: "198.18.92.0/24")
            try socket.addRoute(blackhole, device: a)
            #expect(try socket.routes().first { $0.destination == "198.18.92.0/24" } == blackhole)

            let prefix = "in namespace \(ns[0]):"
            expectError("cannot add route 198.18.93.0/24 dev \(a) \(prefix) source and destination are not of the same address family") {
                try socket.addRoute(destination: "198.18.93.0/24", device: a, preferredSource: "2001:2::1")
            }
            // The kernel refuses a source that is not one of the host's addresses.
            #expect(errorMessage { try socket.addRoute(destination: "198.18.93.0/24", device: a,
                                                       preferredSource: "198.18.7.99") }?
                .hasPrefix("cannot add route 198.18.93.0/24 dev \(a) \(prefix) Invalid argument") == true)
            // Without onlink, a gateway outside the link's subnets is refused.
            #expect(errorMessage { try socket.addRoute(destination: "198.18.94.0/24", gateway: "198.18.200.1",
                                                       device: a) } != nil)
        }
    }

    @Test func infosAreCodable() throws {
        let address = AddressInfo(family: .ipv4, address: "198.18.7.2", prefixLength: 24, ifindex: 3, flags: 0x280,
                                  label: "eth0:1", broadcast: "198.18.7.255", validLifetime: 600)
        let route = RouteInfo(family: .ipv6, destination: "default", gateway: "2001:2::1", ifindex: 3, device: "eth0",
                              metric: 1024, protocolID: RouteInfo.RouteProtocol.ra, preferredSource: "2001:2::2",
                              onLink: true)
        #expect(try JSONDecoder().decode(AddressInfo.self, from: JSONEncoder().encode(address)) == address)
        #expect(try JSONDecoder().decode(RouteInfo.self, from: JSONEncoder().encode(route)) == route)
    }

    /// The listing of what `withConfiguredLink` set up.
    static func checkListing(_ addresses: [AddressInfo], _ routes: [RouteInfo], link a: String,
                             sourceLocation: SourceLocation = #_sourceLocation) throws {
        let byAddress = Dictionary(uniqueKeysWithValues: addresses.map { ($0.address, $0) })
        let primary = try #require(byAddress["198.18.7.2"])
        #expect(primary.broadcast == "198.18.7.255" && primary.label == a && primary.isPermanent && !primary.isSecondary)
        let secondary = try #require(byAddress["198.18.7.3"])
        #expect(secondary.isSecondary && secondary.broadcast == nil)
        let labelled = try #require(byAddress["198.18.8.2"])
        #expect(labelled.label == "\(a):1" && labelled.flags & AddressFlags.noPrefixRoute != 0)
        #expect(addresses.map(\.address).prefix(3) == ["198.18.7.2", "198.18.8.2", "198.18.7.3"])
        let v6 = try #require(byAddress["2001:2:0:7::2"])
        #expect(v6.scope == AddressInfo.Scope.global && v6.isPermanent && !v6.isTentative && v6.label == nil)
        #expect((byAddress["2001:2:0:8::2"]?.flags ?? 0) & AddressFlags.noPrefixRoute != 0)
        #expect(addresses.contains { $0.address.hasPrefix("fe80:") && $0.scope == AddressInfo.Scope.link })

        func route(_ destination: String, _ family: AddressFamily = .ipv4) throws -> RouteInfo {
            try #require(routes.first { $0.destination == destination && $0.family == family })
        }
        let v4Default = try route("default")
        #expect(v4Default.gateway == "198.18.7.1" && v4Default.protocolID == RouteInfo.RouteProtocol.boot && v4Default.metric == 0)
        let kernel = try route("198.18.7.0/24")
        #expect(kernel.isKernelRoute && kernel.preferredSource == "198.18.7.2" && kernel.scope == RouteInfo.RouteScope.link)
        let staticRoute = try route("198.18.99.0/24")
        #expect(staticRoute.protocolID == RouteInfo.RouteProtocol.static && staticRoute.metric == 50)
        let sourced = try route("198.18.98.0/24")
        #expect(sourced.preferredSource == "198.18.7.3" && sourced.scope == RouteInfo.RouteScope.link && sourced.gateway == nil)
        #expect(try route("198.18.97.0/24").onLink)
        let v6Default = try route("default", .ipv6)
        #expect(v6Default.gateway == "2001:2:0:7::1" && v6Default.metric == 1024 && v6Default.protocolID == RouteInfo.RouteProtocol.boot)
        #expect(routes.allSatisfy { $0.type == RouteInfo.RouteType.unicast })
    }
}

// MARK: - Helpers

private struct ConfiguredLink {
    let namespace: String
    /// The configured link.
    let link: String
    /// Another link of the same namespace, up, with IPv6 and nothing else.
    let other: String
    let socket: NetlinkSocket
}

/// A veth `a` (peer `b` in a second namespace) configured with `ip` as a NIC could be: an IPv4 primary with
/// a broadcast address and a secondary, a labelled noprefixroute address of another subnet, two global
/// IPv6 addresses (one noprefixroute) beside the link-local one; a default route (proto boot), a static
/// route with a metric, a link route with a source address, an onlink route and an IPv6 default route.
/// A second veth `c` (peer `d` in the second namespace) is there to move things to.
private func withConfiguredLink(_ body: (ConfiguredLink) throws -> Void) throws {
    try withVeth(namespaces: 2) { v in
        let (ns, a, b) = (v.ns, v.a, v.b)
        let c = v.names.link("c"), d = v.names.link("d")
        for namespace in ns { try Witness.enableIPv6(namespace) }
        try v.socket.createVeth(name: c, peer: d, peerNamespace: ns[1])
        let right = try NetlinkSocket(namespace: ns[1])
        for (socket, link) in [(v.socket, a), (right, b), (v.socket, c), (right, d)] { try socket.setUp(link, true) }

        func ip(_ arguments: String) throws {
            let words = arguments.split(separator: " ").map(String.init)
            let result = try IP.run(["-n", ns[0]] + words)
            try #require(result.status == 0, "ip \(arguments) failed")
        }
        try ip("addr add 198.18.7.2/24 brd + dev \(a)")
        try ip("addr add 198.18.7.3/24 dev \(a)")
        try ip("addr add 198.18.8.2/24 dev \(a) noprefixroute label \(a):1")
        try ip("addr add 2001:2:0:7::2/64 dev \(a)")
        try ip("addr add 2001:2:0:8::2/64 dev \(a) noprefixroute")
        try Witness.waitForDAD(ns[0], a)
        try ip("route add default via 198.18.7.1")
        try ip("route add 198.18.99.0/24 via 198.18.7.1 metric 50 proto static")
        try ip("route add 198.18.98.0/24 dev \(a) src 198.18.7.3")
        try ip("route add 198.18.97.0/24 via 198.18.96.1 dev \(a) onlink")
        try ip("-6 route add default via 2001:2:0:7::1")
        try Witness.waitForDAD(ns[0], c)
        try body(ConfiguredLink(namespace: ns[0], link: a, other: c, socket: v.socket))
    }
}

/// `ip -j` output, normalised for comparison: one JSON text per entry, keys sorted, without what changes
/// by itself (lifetimes, DAD's "tentative").
private enum Witness {
    static func addresses(_ namespace: String, _ link: String) throws -> [String] {
        let entries = try IP.json(["-n", namespace, "addr", "show", "dev", link]).first?["addr_info"]
            as? [[String: Any]] ?? []
        return try entries.map { entry in
            var entry = entry
            for key in ["valid_life_time", "preferred_life_time", "tentative"] { entry[key] = nil }
            return try canonical(entry)
        }
    }

    /// `ip -j [-6] route show [dev DEVICE]`: with a device, the routes through it (still with "dev").
    static func routes(_ namespace: String, v6: Bool = false, device: String? = nil) throws -> [String] {
        try IP.json((v6 ? ["-6"] : []) + ["-n", namespace, "route", "show"])
            .filter { device == nil || $0["dev"] as? String == device }.map(canonical)
    }

    static func canonical(_ entry: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Waits up to 3 s until no address of `link` is tentative; fails on a duplicate address.
    static func waitForDAD(_ namespace: String, _ link: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for _ in 0..<30 {
            let entries = try IP.json(["-n", namespace, "addr", "show", "dev", link]).first?["addr_info"]
                as? [[String: Any]] ?? []
            try #require(!entries.contains { $0["dadfailed"] != nil }, "DAD failed on \(link)", sourceLocation: sourceLocation)
            if !entries.contains(where: { $0["tentative"] != nil }) { return }
            usleep(100_000)
        }
        Issue.record("addresses of \(link) still tentative after 3 s", sourceLocation: sourceLocation)
    }

    /// net.ipv6.conf.{all,default}.disable_ipv6=0 inside `namespace` (before its links come up).
    static func enableIPv6(_ namespace: String) throws {
        let result = try IP.run(["netns", "exec", namespace, "sh", "-c",
                                 "echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && "
                                 + "echo 0 > /proc/sys/net/ipv6/conf/default/disable_ipv6"])
        try #require(result.status == 0, "cannot enable IPv6 in \(namespace)")
    }
}
