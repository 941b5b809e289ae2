import Glibc
import Testing
@testable import VSwitchNetlink

@Suite("NetlinkSocket routes", .enabled(if: RootRequirement.shouldRun, "needs root; set CI to fail instead"))
struct NetlinkSocketRouteTests {
    @Test func addListDelete() throws {
        try withVeth(namespaces: 2) { v in
            let (ns, a, socket) = (v.ns, v.a, v.socket)
            try socket.setUp(a, true)
            try socket.addAddress("198.18.0.1/24", to: a)
            try socket.addAddress("2001:2::1/64", to: a, skipDAD: true)

            try socket.addRoute(destination: "default", gateway: "198.18.0.254")
            try socket.addRoute(destination: "198.18.4.0/24", gateway: "198.18.0.253", device: a)
            try socket.addRoute(destination: "198.18.5.0/24", device: a)
            try socket.addRoute(destination: "2001:2:0:1::/64", gateway: "2001:2::fe")

            let witness = try IP.routes(ns[0])
            #expect(witness.contains { $0 == ("default", "198.18.0.254", a) })
            #expect(witness.contains { $0 == ("198.18.4.0/24", "198.18.0.253", a) })
            #expect(witness.contains { $0 == ("198.18.5.0/24", nil, a) })
            #expect(witness.contains { $0 == ("198.18.0.0/24", nil, a) })  // the kernel's prefix route
            #expect(try IP.routes(ns[0], v6: true).contains { $0 == ("2001:2:0:1::/64", "2001:2::fe", a) })

            let ours = try socket.routes()
            func has(_ destination: String, _ gateway: String?) -> Bool {
                ours.contains { $0.destination == destination && $0.gateway == gateway && $0.device == a }
            }
            #expect(has("default", "198.18.0.254"))
            #expect(has("198.18.4.0/24", "198.18.0.253"))
            #expect(has("198.18.5.0/24", nil))
            #expect(has("198.18.0.0/24", nil))
            #expect(has("2001:2:0:1::/64", "2001:2::fe"))
            #expect(ours.first { $0.destination == "default" }?.family == .ipv4)
            #expect(ours.first { $0.destination == "2001:2:0:1::/64" }?.family == .ipv6)
            // IPv4 routes in ip's order, then IPv6.
            let ipv4 = ours.filter { $0.family == .ipv4 }.map(\.destination)
            #expect(ipv4 == witness.map(\.destination))

            try socket.deleteRoute(destination: "default", gateway: "198.18.0.254")
            try socket.deleteRoute(destination: "198.18.4.0/24")
            try socket.deleteRoute(destination: "198.18.5.0/24", device: a)
            try socket.deleteRoute(destination: "2001:2:0:1::/64", gateway: "2001:2::fe")
            #expect(try IP.routes(ns[0]).map(\.destination) == ["198.18.0.0/24"])
            #expect(try !IP.routes(ns[0], v6: true).contains { $0.destination == "2001:2:0:1::/64" })
            #expect(try socket.routes().filter { $0.family == .ipv4 }.map(\.destination) == ["198.18.0.0/24"])
        }
    }

    @Test func errors() throws {
        try withVeth(namespaces: 1) { v in
            let (names, ns, a, socket) = (v.names, v.ns, v.a, v.socket)
            let missing = names.link("z")
            try socket.setUp(a, true)
            try socket.addAddress("198.18.0.1/24", to: a)
            try socket.addRoute(destination: "default", gateway: "198.18.0.254")

            let prefix = "in namespace \(ns[0]):"
            expectError("cannot add route default via 198.18.0.254 \(prefix) File exists") {
                try socket.addRoute(destination: "default", gateway: "198.18.0.254")
            }
            expectError("cannot add route 198.18.6.0/24 via 198.18.9.9 \(prefix) Network is unreachable") {
                try socket.addRoute(destination: "198.18.6.0/24", gateway: "198.18.9.9")
            }
            expectError("cannot add route 198.18.6.0/24 dev \(missing) \(prefix) No such device") {
                try socket.addRoute(destination: "198.18.6.0/24", device: missing)
            }
            // ESRCH: libnl alone would have said "Object not found".
            expectError("cannot delete route 198.18.7.0/24 \(prefix) No such process") {
                try socket.deleteRoute(destination: "198.18.7.0/24")
            }
            expectError("cannot add route 198.18.6.0/24 \(prefix) a route needs a gateway or a device") {
                try socket.addRoute(destination: "198.18.6.0/24")
            }
            expectError("cannot add route 198.18.6.0/24 via 2001:2::1 \(prefix)"
                        + " gateway and destination are not of the same address family") {
                try socket.addRoute(destination: "198.18.6.0/24", gateway: "2001:2::1")
            }
        }
    }
}
