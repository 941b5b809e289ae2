import Foundation
import Testing

/// Ports and switches come and go: the TAPs vswitchd creates go with them; state survives restarts.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct LifecycleTests {
    @Test func deletePortAndBridgeRemoveCreatedTAPs() throws {
        try withHarness("lc") { h in
            try requireRoot()
            try h.startDaemon()
            let ns = try h.namespace("a")
            try h.ctlOK(["add-br", "br0"])
            let t1 = h.prefix + "t1", t2 = h.prefix + "t2", t3 = h.rootLink("t3")
            try h.ctlOK(["add-port", "br0", t1, "--netns", ns, "--mtu", "9000", "--mac", "02:00:5e:10:00:01"])
            try h.ctlOK(["add-port", "br0", t2, "--netns", ns])
            try h.ctlOK(["add-port", "br0", t3])  // in the root namespace
            let l1 = try h.link(t1, in: ns)
            #expect(l1?["mtu"] as? Int == 9000)
            #expect(l1?["address"] as? String == "02:00:5e:10:00:01")
            #expect((l1?["flags"] as? [String])?.contains("UP") == true)
            #expect(try h.link(t3, in: nil) != nil)
            #expect(try h.ctlOK(["list-ports", "br0"]) == "\(t1)\n\(t2)\n\(t3)\n")

            try h.ctlOK(["del-port", "br0", t1])
            #expect(try h.link(t1, in: ns) == nil, "del-port removed the TAP it created")
            #expect(try h.ctlOK(["list-ports", "br0"]) == "\(t2)\n\(t3)\n")

            try h.ctlOK(["del-br", "br0"])
            #expect(try h.link(t2, in: ns) == nil && h.link(t3, in: nil) == nil, "del-br removed its ports' TAPs")
            #expect(try h.ctlOK(["list-br"]) == "")
        }
    }

    @Test func persistentTAPIsAttachedAndKept() throws {
        try withHarness("ps") { h in
            try requireRoot()
            try h.startDaemon()
            let ns = try h.namespace("a")
            let tap = h.prefix + "p"
            #expect(try h.exec(ns, ["ip", "tuntap", "add", "dev", tap, "mode", "tap"]).status == 0)
            try h.ctlOK(["add-br", "br0"])
            try h.ctlOK(["add-port", "br0", tap, "--netns", ns])
            let show = try h.ctlJSON(["show"])
            let port = ((show["bridges"] as? [[String: Any]])?.first?["ports"] as? [[String: Any]])?.first
            #expect(port?["created"] as? Bool == false)
            try h.ctlOK(["del-port", "br0", tap])
            #expect(try h.link(tap, in: ns) != nil, "a persistent TAP that existed before stays")

            // A persistent TAP in the root namespace is moved into --netns, and configured there.
            let rootTap = h.rootLink("r")
            #expect(try run("ip", ["tuntap", "add", "dev", rootTap, "mode", "tap"]).status == 0)
            try h.ctlOK(["add-port", "br0", rootTap, "--netns", ns, "--addr", "198.18.0.9/24"])
            #expect(try h.link(rootTap, in: nil) == nil, "moved out of the root namespace")
            #expect(try h.link(rootTap, in: ns) != nil, "into the port's namespace")
            let addrs = try h.exec(ns, ["ip", "-j", "addr", "show", "dev", rootTap]).stdout
            #expect(addrs.contains("198.18.0.9"))
            try h.ctlOK(["del-port", "br0", rootTap])
            #expect(try h.link(rootTap, in: ns) != nil, "kept on del-port (persistent)")
        }
    }

    @Test func sigtermRemovesTAPsAndRestartRestores() throws {
        try withHarness("rs") { h in
            try requireRoot()
            try h.startDaemon()
            let n1 = try h.namespace("h1"), n2 = try h.namespace("h2")
            let t1 = h.prefix + "t1", t2 = h.prefix + "t2"
            try h.ctlOK(["add-br", "br0"])
            try h.ctlOK(["set", "br0", "ageing-time=42", "flood-unknown=off"])
            try h.ctlOK(["add-port", "br0", t1, "--netns", n1, "--addr", "198.18.0.1/24"])
            try h.ctlOK(["add-port", "br0", t2, "--netns", n2, "--addr", "198.18.0.2/24"])
            try h.ctlOK(["fdb", "add", "br0", "02:00:5e:00:00:99", t2])
            #expect(try h.exec(n1, ["ping", "-c", "1", "-W", "2", "198.18.0.2"]).status == 0)

            #expect(h.stopDaemon() == 0, "SIGTERM: clean exit")
            #expect(try h.link(t1, in: n1) == nil && h.link(t2, in: n2) == nil, "SIGTERM removed the TAPs it created")
            #expect(!FileManager.default.fileExists(atPath: h.socketPath), "socket removed")
            #expect(FileManager.default.fileExists(atPath: h.stateDirectory + "/state.json"), "state kept")

            try h.startDaemon()
            #expect(try h.ctlOK(["list-br"]) == "br0\n")
            #expect(try h.ctlOK(["list-ports", "br0"]) == "\(t1)\n\(t2)\n")
            let settings = ((try h.ctlJSON(["show"])["bridges"] as? [[String: Any]])?.first?["settings"] as? [String: Any])
            #expect(settings?["ageing_time"] as? Int == 42 && settings?["flood_unknown"] as? Bool == false)
            let fdb = try h.ctlJSON(["fdb", "show", "br0"])["entries"] as? [[String: Any]] ?? []
            #expect(fdb.contains { $0["mac"] as? String == "02:00:5e:00:00:99" && $0["static"] as? Bool == true && $0["port"] as? String == t2 })
            #expect(try h.link(t1, in: n1) != nil, "restored TAP exists again")
            #expect(try h.exec(n1, ["ping", "-c", "1", "-W", "2", "198.18.0.2"]).status == 0, "and traffic flows again")
        }
    }

    @Test func internalPortGivesTheSwitchAnAddress() throws {
        try withHarness("in") { h in
            try requireRoot()
            try h.startDaemon()
            let host = try h.namespace("host"), n1 = try h.namespace("h1")
            try h.ctlOK(["add-br", "br0"])
            let br = h.prefix + "br"
            try h.ctlOK(["add-port", "br0", br, "--type", "internal", "--netns", host, "--addr", "198.18.0.254/24"])
            try h.ctlOK(["add-port", "br0", h.prefix + "t1", "--netns", n1, "--addr", "198.18.0.1/24"])
            #expect(try h.exec(n1, ["ping", "-c", "2", "-i", "0.2", "-W", "2", "198.18.0.254"]).status == 0, "a host reaches the switch's own address")
            let show = try h.ctlOK(["show"])
            #expect(show.contains("Port \(br)\n        type: internal"), "\(show)")
            try h.ctlOK(["del-port", "br0", br])
            #expect(try h.link(br, in: host) == nil)
        }
    }

    @Test func failedAddPortChangesNothing() throws {
        try withHarness("fa") { h in
            try requireRoot()
            try h.startDaemon()
            try h.ctlOK(["add-br", "br0"])
            let t = h.prefix + "t"
            // The namespace does not exist: refused, and no TAP, port or state is left.
            let r = try h.ctl(["add-port", "br0", t, "--netns", h.prefix + "nope"])
            #expect(r.status == 1 && r.stderr.hasPrefix("vswitchctl: ") && r.stderr.contains("nope"), "\(r)")
            #expect(try h.ctlOK(["list-ports", "br0"]) == "")
            #expect(try h.link(t, in: nil) == nil)
            // An address the kernel refuses (IPv6 is off in the namespace): the TAP made before the
            // failure is removed again. 2001:2::/48 is RFC 5180's benchmarking range.
            let ns = try h.namespace("a")
            let r2 = try h.ctl(["add-port", "br0", t, "--netns", ns, "--addr", "2001:2::1/64"])
            #expect(r2.status == 1, "\(r2)")
            #expect(try h.link(t, in: ns) == nil)
            let r3 = try h.ctl(["add-port", "br0", t, "--netns", ns, "--mtu", "65521", "--addr", "198.18.0.1/24"])
            #expect(r3.status == 0, "\(r3)")
            let state = try String(contentsOfFile: h.stateDirectory + "/state.json", encoding: .utf8)
            #expect(state.contains(t))
        }
    }
}
