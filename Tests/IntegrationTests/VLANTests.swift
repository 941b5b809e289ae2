import Foundation
import Testing

/// 802.1Q VLANs through vswitchd: access ports keep VLANs apart; a trunk between two switches, over a
/// veth bound as pcap ports or over a udp tunnel, carries both VLANs apart.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct VLANSwitchTests {
    @Test func accessPortsOfOneVLANReachEachOtherOnly() throws {
        try withHarness("va") { h in
            let hs = try h.switchWithHosts(4, addressed: false)
            for (i, host) in hs.enumerated() {
                try h.exec(host.ns, ["ip", "addr", "add", "198.18.10.\(i + 1)/24", "dev", host.port]).check()
                try h.ctlOK(["set-port", "br0", host.port, "vlan-mode=access", "tag=\(i < 2 ? 10 : 20)"])
            }
            #expect(try h.exec(hs[0].ns, ["ping", "-c", "2", "-i", "0.2", "-W", "1", "198.18.10.2"]).status == 0, "VLAN 10")
            #expect(try h.exec(hs[2].ns, ["ping", "-c", "2", "-i", "0.2", "-W", "1", "198.18.10.4"]).status == 0, "VLAN 20")
            #expect(try h.exec(hs[0].ns, ["ping", "-c", "2", "-i", "0.2", "-W", "1", "198.18.10.3"]).status != 0, "VLAN 10 cannot reach VLAN 20")
            let fdb = try h.ctlJSON(["fdb", "show", "br0"])
            let vlans = Set((fdb["entries"] as? [[String: Any]] ?? []).compactMap { $0["vlan"] as? Int })
            #expect(vlans == [10, 20], "learning is per VLAN: \(vlans)")
            let show = try h.ctlOK(["show"])
            #expect(show.contains("vlan-mode: access") && show.contains("tag: 10"), "\(show)")
            let bad = try h.ctl(["set-port", "br0", hs[0].port, "vlan-mode=access", "tag=5000"])
            #expect(bad.status == 1 && bad.stderr.contains("invalid tag"))
            // vlan-mode=none takes the port out of VLANs again: with every port back, VLAN-unaware.
            for host in hs { try h.ctlOK(["set-port", "br0", host.port, "vlan-mode=none"]) }
            #expect(try h.exec(hs[0].ns, ["ping", "-c", "2", "-i", "0.2", "-W", "1", "198.18.10.3"]).status == 0, "one segment again")
            #expect(try !h.ctlOK(["show"]).contains("tag: 10"))
        }
    }

    @Test(arguments: ["veth", "tunnel"])
    func aTrunkBetweenTwoSwitchesCarriesBothVLANsApart(link: String) throws {
        try withHarness(link == "veth" ? "vt" : "vu") { h in
            try h.startDaemon()
            let sa = try h.namespace("sa"), sb = try h.namespace("sb")
            try h.ctlOK(["add-br", "brA"])
            try h.ctlOK(["add-br", "brB"])
            let ta = h.prefix + "ta", tb = h.prefix + "tb"
            if link == "veth" {
                try h.exec(sa, ["ip", "link", "add", ta, "type", "veth", "peer", "name", tb, "netns", sb]).check()
                try h.exec(sa, ["ip", "link", "set", ta, "up"]).check()
                try h.exec(sb, ["ip", "link", "set", tb, "up"]).check()
                try h.ctlOK(["add-port", "brA", ta, "--type", "pcap", "--netns", sa])
                try h.ctlOK(["add-port", "brB", tb, "--type", "pcap", "--netns", sb])
            } else {
                try TunnelTests.underlay(h, sa, sb)
                try h.ctlOK(["add-port", "brA", ta, "--type", "udp", "--netns", sa, "--local", "198.18.200.1:4789", "--remote", "198.18.200.2:4789"])
                try h.ctlOK(["add-port", "brB", tb, "--type", "udp", "--netns", sb, "--local", "198.18.200.2:4789", "--remote", "198.18.200.1:4789"])
            }
            try h.ctlOK(["set-port", "brA", ta, "vlan-mode=trunk", "trunks=10,20"])
            try h.ctlOK(["set-port", "brB", tb, "vlan-mode=trunk", "trunks=10,20"])
            // The same addresses in both VLANs: only the VLAN decides who answers.
            var hosts: [String: (ns: String, port: String)] = [:]
            for (bridge, side, ip) in [("brA", "a", "198.18.10.1"), ("brB", "b", "198.18.10.2")] {
                for vlan in [10, 20] {
                    let host = try TunnelTests.host(h, "\(side)\(vlan)", bridge: bridge, ip: ip)
                    try h.ctlOK(["set-port", bridge, host.port, "tag=\(vlan)"])
                    hosts["\(side)\(vlan)"] = host
                }
            }
            for vlan in [10, 20] {
                let from = hosts["a\(vlan)"]!, to = hosts["b\(vlan)"]!
                #expect(try TunnelTests.ping(h, from.ns, "198.18.10.2"), "VLAN \(vlan) across the \(link)")
                let neigh = try h.exec(from.ns, ["ip", "-j", "neigh", "show", "198.18.10.2"]).check().stdout
                let mac = (try JSONSerialization.jsonObject(with: Data(neigh.utf8)) as? [[String: Any]])?.first?["lladdr"] as? String
                #expect(mac == (try h.macOf(to.port, in: to.ns)), "VLAN \(vlan) resolved its own VLAN's host")
            }
            let fdb = try h.ctlJSON(["fdb", "show", "brA"])
            let remote = (fdb["entries"] as? [[String: Any]] ?? []).filter { $0["port"] as? String == ta }.compactMap { $0["vlan"] as? Int }
            #expect(Set(remote) == [10, 20], "both VLANs learned behind the trunk: \(remote)")
        }
    }
}
