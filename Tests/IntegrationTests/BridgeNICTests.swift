import Foundation
import Testing

/// `bridge-nic` / `unbridge-nic` (SPEC section 6) on a namespace whose NIC is a veth to a LAN.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct BridgeNICTests {
    struct Site {
        let site: String, lan: String, nic: String
    }

    /// Namespace `site` with NIC `eth0` (198.18.1.2/24, 2001:2:0:1::2/64, default routes via the
    /// LAN), a veth to namespace `lan` (198.18.1.1, 2001:2:0:1::1).
    static func makeSite(_ h: Harness) throws -> Site {
        let site = try h.namespace("st", ipv6: true)
        let lan = try h.namespace("ln", ipv6: true)
        try h.exec(site, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "up0", "netns", lan]).check()
        for (ns, dev, v4, v6) in [(site, "eth0", "198.18.1.2/24", "2001:2:0:1::2/64"), (lan, "up0", "198.18.1.1/24", "2001:2:0:1::1/64")] {
            try h.exec(ns, ["ip", "addr", "add", v4, "dev", dev]).check()
            try h.exec(ns, ["ip", "addr", "add", v6, "dev", dev, "nodad"]).check()
            try h.exec(ns, ["ip", "link", "set", dev, "up"]).check()
        }
        try h.exec(site, ["ip", "route", "add", "default", "via", "198.18.1.1"]).check()
        try h.exec(site, ["ip", "-6", "route", "add", "default", "via", "2001:2:0:1::1"]).check()
        try h.exec(site, ["ip", "route", "add", "198.18.99.0/24", "via", "198.18.1.1", "metric", "50"]).check()
        return Site(site: site, lan: lan, nic: "eth0")
    }

    /// `ip -j addr show dev NIC`, `ip -j route` and `ip -6 -j route` in the site, without what
    /// changes by itself (address lifetimes, DAD in progress).
    static func snapshot(_ h: Harness, _ s: Site) throws -> String {
        // Wait for IPv6 DAD on re-added addresses to finish.
        for _ in 0..<40 {
            if try !h.exec(s.site, ["ip", "-6", "addr", "show", "tentative"]).stdout.contains("inet6") { break }
            usleep(100_000)
        }
        func normalised(_ json: String) throws -> Any {
            func clean(_ v: Any) -> Any {
                if let d = v as? [String: Any] {
                    return d.filter { !["valid_life_time", "preferred_life_time", "tentative", "stats64", "operstate"].contains($0.key) }.mapValues(clean)
                }
                if let a = v as? [Any] { return a.map(clean) }
                return v
            }
            return clean(try JSONSerialization.jsonObject(with: Data(json.utf8)))
        }
        var parts: [String] = []
        for cmd in [["ip", "-j", "addr", "show", "dev", s.nic], ["ip", "-j", "route"], ["ip", "-6", "-j", "route"]] {
            let r = try h.exec(s.site, cmd).check()
            let data = try JSONSerialization.data(withJSONObject: try normalised(r.stdout), options: [.sortedKeys])
            parts.append(String(decoding: data, as: UTF8.self))
        }
        return parts.joined(separator: "\n")
    }

    @Test func bridgeReachUnbridgeRestoresExactly() throws {
        try withHarness("bn") { h in
            let s = try Self.makeSite(h)
            try h.startDaemon()
            try h.ctlOK(["add-br", "br0"])
            let h1 = try h.namespace("h1", ipv6: true)
            let tap = h.prefix + "t1"
            try h.ctlOK(["add-port", "br0", tap, "--netns", h1, "--addr", "198.18.1.3/24"])
            try h.exec(h1, ["ip", "addr", "add", "2001:2:0:1::3/64", "dev", tap, "nodad"]).check()
            let before = try Self.snapshot(h, s)

            try h.ctlOK(["bridge-nic", "br0", s.nic, "--netns", s.site])
            // The addresses and routes are on br0 now, the NIC has none.
            let brAddrs = try h.exec(s.site, ["ip", "-br", "addr", "show", "dev", "br0"]).stdout
            #expect(brAddrs.contains("198.18.1.2/24") && brAddrs.contains("2001:2:0:1::2/64"), "\(brAddrs)")
            #expect(try h.exec(s.site, ["ip", "route", "show", "default"]).stdout.contains("dev br0"))
            #expect(try h.exec(s.site, ["ip", "-6", "route", "show", "default"]).stdout.contains("dev br0"))
            #expect(try !h.exec(s.site, ["ip", "-br", "addr", "show", "dev", s.nic]).stdout.contains("198.18.1.2"))

            // The site is reachable at the same addresses, from the LAN and from another port.
            for (from, to) in [(s.lan, "198.18.1.2"), (s.lan, "2001:2:0:1::2"), (h1, "198.18.1.2"), (h1, "2001:2:0:1::2"),
                               (s.site, "198.18.1.1"), (s.site, "2001:2:0:1::1"), (s.site, "198.18.1.3")] {
                let r = try h.exec(from, ["ping", "-c", "2", "-i", "0.2", "-W", "2", to])
                #expect(r.status == 0, "\(from) -> \(to): \(r)")
                #expect(!r.stdout.contains("DUP!"), "no duplicate replies \(from) -> \(to)")
            }
            let refused = try h.ctl(["bridge-nic", "br0", s.nic, "--netns", s.site])
            #expect(refused.status == 1 && refused.stderr.contains("already bridged"), "\(refused)")
            let own = try h.ctl(["bridge-nic", "br0", "br0", "--netns", s.site])
            #expect(own.status == 1 && own.stderr.contains("belongs to the switch"), "\(own)")
            let port = try h.ctl(["bridge-nic", "br0", tap, "--netns", h1])
            #expect(port.status == 1 && port.stderr.contains("already port"), "\(port)")
            let del = try h.ctl(["del-port", "br0", s.nic])
            #expect(del.status == 1 && del.stderr.contains("unbridge-nic"), "\(del)")

            try h.ctlOK(["unbridge-nic", "br0", s.nic, "--netns", s.site])
            #expect(try Self.snapshot(h, s) == before, "addresses and routes restored exactly")
            #expect(try h.link("br0", in: s.site) == nil, "the internal port bridge-nic made is gone")
            #expect(try h.exec(s.site, ["ping", "-c", "1", "-W", "2", "198.18.1.1"]).status == 0)

            // Bridged again and the daemon stopped: shutdown restores too.
            try h.ctlOK(["bridge-nic", "br0", s.nic, "--netns", s.site])
            #expect(h.stopDaemon() == 0)
            #expect(try Self.snapshot(h, s) == before, "shutdown restores")
        }
    }

    @Test func aFailureMidwayLeavesTheStartingState() throws {
        try withHarness("bf") { h in
            let s = try Self.makeSite(h)
            let before = try Self.snapshot(h, s)
            for k in [1, 2, 3, 5, 7, 9] {
                try h.startDaemon(environment: ["VSWITCH_BRIDGE_NIC_FAIL_AFTER": String(k)])
                try h.ctlOK(["add-br", "br0", "--may-exist"])
                let r = try h.ctl(["bridge-nic", "br0", s.nic, "--netns", s.site])
                #expect(r.status == 1 && r.stderr.contains("injected failure"), "step \(k): \(r)")
                #expect(try Self.snapshot(h, s) == before, "state after a failure at step \(k)")
                #expect(try h.ctlOK(["list-ports", "br0"]).isEmpty, "no port left after a failure at step \(k)")
                #expect(try h.link("br0", in: s.site) == nil)
                h.stopDaemon()
            }
        }
    }
}
