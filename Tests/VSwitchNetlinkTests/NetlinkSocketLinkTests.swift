import Glibc
import Testing
@testable import VSwitchNetlink

@Suite("NetlinkSocket links", .enabled(if: RootRequirement.shouldRun, "needs root; set CI to fail instead"))
struct NetlinkSocketLinkTests {
    @Test func vethWithPeerInAnotherNamespace() throws {
        try withVeth(namespaces: 2) { v in
            let (ns, a, b, left) = (v.ns, v.a, v.b, v.socket)
            let right = try NetlinkSocket(namespace: ns[1])

            let witnessA = try #require(try IP.link(ns[0], a))
            let witnessB = try #require(try IP.link(ns[1], b))
            #expect((witnessA["linkinfo"] as? [String: Any])?["info_kind"] as? String == "veth")
            #expect(try IP.link(ns[0], b) == nil)  // the peer was created over there, not here

            let infoA = try #require(try left.link(named: a))
            #expect(infoA.name == a)
            #expect(infoA.kind == "veth")
            #expect(infoA.ifindex == Int32(witnessA["ifindex"] as? Int ?? -1))
            #expect(infoA.macString == witnessA["address"] as? String)
            #expect(infoA.mac.count == 6)
            #expect(infoA.mtu == witnessA["mtu"] as? Int)
            #expect(!infoA.isUp)
            let infoB = try #require(try right.link(named: b))
            #expect(infoB.ifindex == Int32(witnessB["ifindex"] as? Int ?? -1))
            #expect(try right.link(named: a) == nil)

            // links() agrees with `ip link show` on names and indexes.
            let ours = try left.links().map { "\($0.ifindex) \($0.name)" }
            let theirs = try IP.links(ns[0]).map { "\($0["ifindex"] as? Int ?? -1) \($0["ifname"] as? String ?? "")" }
            #expect(ours == theirs)
            #expect(try left.links().first { $0.name == "lo" }?.kind == nil)
        }
    }

    @Test func upDownMTUMACRename() throws {
        try RootRequirement.check()
        let names = TestNames()
        try withNamespaces(names, count: 2) { ns in
            let a = names.link("a"), b = names.link("b"), renamed = names.link("r")
            let left = try NetlinkSocket(namespace: ns[0])
            let right = try NetlinkSocket(namespace: ns[1])
            try left.createVeth(name: a, peer: b, peerNamespace: ns[1])

            try left.setUp(a, true)
            try right.setUp(b, true)
            let flags = try #require(try IP.link(ns[0], a))["flags"] as? [String] ?? []
            #expect(flags.contains("UP"))
            #expect(try left.link(named: a)?.isUp == true)
            // Carrier follows the peer; allow the kernel a moment.
            var running = false
            for _ in 0..<50 where !running {
                running = try left.link(named: a)?.isRunning == true
                if !running { usleep(20_000) }
            }
            #expect(running)

            try left.setUp(a, false)
            #expect(!(try #require(try IP.link(ns[0], a))["flags"] as? [String] ?? []).contains("UP"))
            #expect(try left.link(named: a)?.isUp == false)

            try left.setMTU(a, 1400)
            #expect(try IP.link(ns[0], a)?["mtu"] as? Int == 1400)
            #expect(try left.link(named: a)?.mtu == 1400)

            let mac: [UInt8] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]
            try left.setMAC(a, mac)
            #expect(try IP.link(ns[0], a)?["address"] as? String == "02:00:5e:10:20:30")
            #expect(try left.link(named: a)?.mac == mac)
            #expect(LinkInfo.parse(mac: "02:00:5E:10:20:30") == mac)

            let index = try #require(try left.link(named: a)).ifindex
            try left.rename(a, to: renamed)
            #expect(try IP.link(ns[0], a) == nil)
            #expect(try IP.link(ns[0], renamed)?["ifindex"] as? Int == Int(index))
            #expect(try left.link(named: renamed)?.ifindex == index)
        }
    }

    @Test func moveAndDelete() throws {
        try RootRequirement.check()
        let names = TestNames()
        try withNamespaces(names, count: 2) { ns in
            let c = names.link("c"), d = names.link("d")
            let left = try NetlinkSocket(namespace: ns[0])
            let right = try NetlinkSocket(namespace: ns[1])
            try left.createVeth(name: c, peer: d)
            #expect(try IP.link(ns[0], d) != nil)

            try left.move(link: d, toNamespace: ns[1], up: true)
            #expect(try IP.link(ns[0], d) == nil)
            let moved = try #require(try IP.link(ns[1], d))
            #expect((moved["flags"] as? [String] ?? []).contains("UP"))
            #expect(try right.link(named: d)?.isUp == true)

            // By fd: back into the first namespace, through an fd of its /run/netns file.
            let fd = open(NetworkNamespace.path(of: ns[0]), O_RDONLY | O_CLOEXEC)
            #expect(fd >= 0)
            defer { close(fd) }
            try right.move(link: d, toNamespaceFD: fd)
            #expect(try IP.link(ns[1], d) == nil)
            #expect(try IP.link(ns[0], d) != nil)
            try left.move(link: d, toNamespace: ns[1])

            try left.delete(link: c)
            #expect(try IP.link(ns[0], c) == nil)
            #expect(try IP.link(ns[1], d) == nil)  // deleting one end deletes the pair
            #expect(try left.link(named: c) == nil)
        }
    }

    @Test func errors() throws {
        try withVeth(namespaces: 1) { v in
            let (names, ns, a, b, socket) = (v.names, v.ns, v.a, v.b, v.socket)
            let missing = names.link("z")

            let prefix = "in namespace \(ns[0]):"
            expectError("cannot set up \(missing) \(prefix) No such device") { try socket.setUp(missing, true) }
            expectError("cannot delete link \(missing) \(prefix) No such device") { try socket.delete(link: missing) }
            let x = names.link("x")
            expectError("cannot create veth \(a) (peer \(x)) \(prefix) File exists") {
                try socket.createVeth(name: a, peer: x)
            }
            expectError("cannot rename \(a) to \(b) \(prefix) File exists") { try socket.rename(a, to: b) }
            expectError("cannot set mtu 50 on \(a) \(prefix) Invalid argument") { try socket.setMTU(a, 50) }
            expectError("cannot set mac 01:02:03 on \(a) \(prefix) a MAC address has 6 bytes") {
                try socket.setMAC(a, [1, 2, 3])
            }
            let long = "vst0123456789abc"
            expectError("cannot create veth \(long) (peer \(x)) \(prefix) invalid interface name \"\(long)\""
                        + " (1 to 15 bytes, no '/' or space)") { try socket.createVeth(name: long, peer: x) }

            let nowhere = names.namespace(9)
            expectError("cannot enter namespace \(nowhere): No such namespace") {
                _ = try NetlinkSocket(namespace: nowhere)
            }
            let e = names.link("e"), f = names.link("f")
            expectError("cannot create veth \(e) (peer \(f) in namespace \(nowhere)) \(prefix) No such namespace") {
                try socket.createVeth(name: e, peer: f, peerNamespace: nowhere)
            }
            expectError("cannot move \(a) to namespace \(nowhere) \(prefix) No such namespace") {
                try socket.move(link: a, toNamespace: nowhere)
            }
            let leftover = try IP.link(ns[0], e)
            #expect(leftover == nil)
        }
    }
}
