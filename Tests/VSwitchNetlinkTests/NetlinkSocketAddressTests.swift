import Glibc
import Testing
@testable import VSwitchNetlink

@Suite("NetlinkSocket addresses", .enabled(if: RootRequirement.shouldRun, "needs root; set CI to fail instead"))
struct NetlinkSocketAddressTests {
    @Test func addListDeleteIPv4AndIPv6() throws {
        try withVeth(namespaces: 2) { v in
            let (ns, a, left) = (v.ns, v.a, v.socket)
            let index = try #require(try left.link(named: a)).ifindex

            try left.addAddress("198.18.0.1/24", to: a)
            try left.addAddress("2001:2::1/64", to: a, skipDAD: true)

            let witness = try IP.addresses(ns[0], a)
            #expect(witness.contains { $0 == ("inet", "198.18.0.1/24") })
            #expect(witness.contains { $0 == ("inet6", "2001:2::1/64") })

            let ours = try left.addresses(of: a)
            let permanent = AddressFlags.permanent, noDAD = AddressFlags.noDAD
            #expect(ours == [
                AddressInfo(family: .ipv4, address: "198.18.0.1", prefixLength: 24, ifindex: index,
                            flags: permanent, label: a),
                AddressInfo(family: .ipv6, address: "2001:2::1", prefixLength: 64, ifindex: index,
                            flags: permanent | noDAD),
            ])
            #expect(ours.map(\.cidr) == ["198.18.0.1/24", "2001:2::1/64"])
            // Without a link: every address of the namespace (lo has none while it is down).
            #expect(try left.addresses() == ours)

            try left.deleteAddress("198.18.0.1/24", from: a)
            try left.deleteAddress("2001:2::1/64", from: a)
            #expect(try IP.addresses(ns[0], a).isEmpty)
            #expect(try left.addresses(of: a).isEmpty)
        }
    }

    @Test func trafficShowsInCounters() throws {
        try withVeth(namespaces: 2) { v in
            let (ns, a, b, left) = (v.ns, v.a, v.b, v.socket)
            let right = try NetlinkSocket(namespace: ns[1])
            try left.addAddress("198.18.0.1/24", to: a)
            try right.addAddress("198.18.0.2/24", to: b)
            try left.setUp(a, true)
            try right.setUp(b, true)

            let before = try #require(try left.link(named: a))
            let ping = try IP.run(["netns", "exec", ns[0], "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.2"])
            #expect(ping.status == 0)
            let after = try #require(try left.link(named: a))
            #expect(after.txPackets >= before.txPackets + 3)
            #expect(after.rxPackets >= before.rxPackets + 3)
            #expect(after.txBytes >= before.txBytes + 3 * 98)
            let peer = try #require(try right.link(named: b))
            #expect(peer.rxPackets >= 3)
        }
    }

    @Test func errors() throws {
        try withVeth(namespaces: 1) { v in
            let (names, ns, a, socket) = (v.names, v.ns, v.a, v.socket)
            let missing = names.link("z")
            try socket.addAddress("198.18.0.1/24", to: a)

            expectError("cannot add address 198.18.0.1/24 to \(a) in namespace \(ns[0]): File exists") {
                try socket.addAddress("198.18.0.1/24", to: a)
            }
            expectError("cannot add address 198.18.0.9/24 to \(missing) in namespace \(ns[0]): No such device") {
                try socket.addAddress("198.18.0.9/24", to: missing)
            }
            expectError("cannot delete address 198.18.0.7/24 from \(a) in namespace \(ns[0]): Cannot assign requested address") {
                try socket.deleteAddress("198.18.0.7/24", from: a)
            }
            expectError("cannot add address 198.18.0.300/24 to \(a) in namespace \(ns[0]): \"198.18.0.300/24\" is not an IPv4 or IPv6 address") {
                try socket.addAddress("198.18.0.300/24", to: a)
            }
            expectError("cannot list addresses of \(missing) in namespace \(ns[0]): No such device") {
                _ = try socket.addresses(of: missing)
            }
        }
    }
}
