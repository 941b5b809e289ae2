import Foundation
import Testing

/// Two or three namespaces joined through TAP ports of one vswitchd switch.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct TAPSwitchTests {
    static func hosts(_ h: Harness, count: Int) throws -> [(ns: String, port: String, ip: String)] {
        try h.switchWithHosts(count)
    }

    @Test func pingBothWaysFDBAndStats() throws {
        try withHarness("pg") { h in
            let hs = try Self.hosts(h, count: 2)
            let ping1 = try h.exec(hs[0].ns, ["ping", "-c", "3", "-i", "0.2", "-W", "2", hs[1].ip])
            #expect(ping1.status == 0, "h1 -> h2: \(ping1)")
            let ping2 = try h.exec(hs[1].ns, ["ping", "-c", "3", "-i", "0.2", "-W", "2", hs[0].ip])
            #expect(ping2.status == 0, "h2 -> h1: \(ping2)")

            // The MAC table holds exactly the two hosts' MACs, each on its own port.
            let fdb = try h.ctlJSON(["fdb", "show", "br0"])
            let entries = (fdb["entries"] as? [[String: Any]] ?? []).map { ($0["mac"] as! String, $0["port"] as! String) }
            let expected = try hs.map { (try h.macOf($0.port, in: $0.ns), $0.port) }
            #expect(entries.map(\.0).sorted() == expected.map(\.0).sorted())
            for (mac, port) in expected { #expect(entries.contains { $0 == (mac, port) }, "\(mac) on \(port)") }

            // What the kernel sent into each TAP is what vswitchd received there, and vice versa.
            usleep(200_000)
            let stats = try h.stats("br0")
            for host in hs {
                let k = try h.kernelCounters(host.port, in: host.ns)
                let s = stats[host.port]!
                #expect(s["rx_packets"] as? Int == k.txPackets, "\(host.port) rx packets vs kernel tx")
                #expect(s["rx_bytes"] as? Int == k.txBytes, "\(host.port) rx bytes vs kernel tx")
                #expect(s["tx_packets"] as? Int == k.rxPackets, "\(host.port) tx packets vs kernel rx")
                #expect(s["tx_bytes"] as? Int == k.rxBytes, "\(host.port) tx bytes vs kernel rx")
                #expect(s["rx_drops"] as? Int == 0 && s["tx_drops"] as? Int == 0)
                #expect((s["rx_packets"] as? Int ?? 0) >= 6, "at least 3 echo requests/replies each way")
            }
            // Two ports: everything one receives, the other sends.
            #expect(stats[hs[0].port]!["rx_packets"] as? Int == stats[hs[1].port]!["tx_packets"] as? Int)
            #expect(stats[hs[1].port]!["rx_bytes"] as? Int == stats[hs[0].port]!["tx_bytes"] as? Int)

            let show = try h.ctlOK(["show"])
            #expect(show.contains("Bridge br0") && show.contains("Port \(hs[0].port)") && show.contains("netns: \(hs[1].ns)"))
        }
    }

    @Test func iperf3AndTSOSuperframes() throws {
        try withHarness("ip") { h in
            let hs = try Self.hosts(h, count: 2)
            let server = try h.spawn(hs[1].ns, ["iperf3", "-s", "-1"], log: "iperf3-server.log")
            #expect(server.isRunning)
            usleep(300_000)
            let client = try h.exec(hs[0].ns, ["iperf3", "-c", hs[1].ip, "-t", "2", "-J"])
            #expect(client.status == 0, "iperf3 completes: \(client.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(client.stdout.utf8)) as? [String: Any]
            let end = report?["end"] as? [String: Any]
            let received = (end?["sum_received"] as? [String: Any])?["bytes"] as? Int ?? 0
            #expect(received > 10_000_000, "iperf3 moved data: \(received) bytes")

            // The sender's frames crossed whole: on average far above a 1,514-byte frame.
            let s = try h.stats("br0")[hs[0].port]!
            let packets = s["rx_packets"] as? Int ?? 0, bytes = s["rx_bytes"] as? Int ?? 0
            #expect(packets > 0 && bytes / max(packets, 1) > 1514, "average frame \(bytes / max(packets, 1)) bytes")
            let out = try h.stats("br0")[hs[1].port]!
            #expect(out["tx_errors"] as? Int == 0, "superframes accepted by the receiving TAP")
            #expect((out["tx_bytes"] as? Int ?? 0) >= received, "every byte went out of h2's port")
        }
    }

    @Test func floodingLearningAndAgeing() throws {
        try withHarness("fl") { h in
            let hs = try Self.hosts(h, count: 3)
            try h.ctlOK(["set", "br0", "ageing-time=2"])
            func tx(_ i: Int) throws -> Int { try h.stats("br0")[hs[i].port]!["tx_packets"] as? Int ?? -1 }

            // h1 pings h2: the ARP broadcast floods to h3 too; everything after is unicast h1<->h2.
            #expect(try h.exec(hs[0].ns, ["ping", "-c", "3", "-i", "0.2", hs[1].ip]).status == 0)
            #expect(try tx(2) == 1, "h3 saw only the ARP request")

            // Forget the MACs: h1 still knows h2's MAC, so its next ping is unknown unicast: flooded once.
            try h.ctlOK(["fdb", "flush", "br0"])
            #expect((try h.ctlJSON(["fdb", "show", "br0"])["entries"] as? [Any])?.count == 0)
            #expect(try h.exec(hs[0].ns, ["ping", "-c", "3", "-i", "0.2", hs[1].ip]).status == 0)
            #expect(try tx(2) == 2, "one unknown-unicast echo request flooded to h3, then unicast only")
            let stats = try h.stats("br0")
            let rx0 = stats[hs[0].port]!["rx_packets"] as! Int, rx1 = stats[hs[1].port]!["rx_packets"] as! Int
            let tx0 = stats[hs[0].port]!["tx_packets"] as! Int
            #expect(tx0 == rx1, "h1's port got exactly what h2 sent: nothing came back out of its own port")
            #expect(rx0 >= 7)

            // With ageing-time 2 s and the hosts quiet, the entries age out.
            #expect((try h.ctlJSON(["fdb", "show", "br0"])["entries"] as? [Any])?.count == 2)
            var remaining = 2
            for _ in 0..<40 where remaining > 0 {
                usleep(200_000)
                remaining = (try h.ctlJSON(["fdb", "show", "br0"])["entries"] as? [Any])?.count ?? -1
            }
            #expect(remaining == 0, "entries aged out within ~4-5 s")
            #expect((try h.ctlJSON(["fdb", "show", "br0"])["aged"] as? Int ?? 0) >= 2)
        }
    }

    @Test func isolatedPortsAndLearningOff() throws {
        try withHarness("is") { h in
            let hs = try Self.hosts(h, count: 3)
            try h.ctlOK(["set-port", "br0", hs[0].port, "isolated=on"])
            try h.ctlOK(["set-port", "br0", hs[1].port, "isolated=on", "learning=off"])
            #expect(try h.exec(hs[0].ns, ["ping", "-c", "1", "-W", "1", hs[1].ip]).status != 0, "isolated ports do not reach each other")
            #expect(try h.exec(hs[0].ns, ["ping", "-c", "1", "-W", "2", hs[2].ip]).status == 0, "isolated reaches non-isolated")
            #expect(try h.exec(hs[1].ns, ["ping", "-c", "1", "-W", "2", hs[2].ip]).status == 0)
            let fdb = try h.ctlJSON(["fdb", "show", "br0"])["entries"] as? [[String: Any]] ?? []
            #expect(!fdb.contains { $0["port"] as? String == hs[1].port }, "nothing learned on a learning=off port: \(fdb)")
            let bad = try h.ctl(["set-port", "br0", hs[0].port, "isolated=maybe"])
            #expect(bad.status == 1 && bad.stderr.contains("invalid isolated"))
            #expect(try h.ctl(["set-port", "br0", hs[0].port, "vlan-mode=trunk"]).stderr.contains("vlan-mode=trunk needs trunks=LIST"))
            #expect(try h.ctl(["set-port", "br0", hs[0].port, "max-macs=-3"]).stderr.contains("invalid max-macs"))
            try h.ctlOK(["set-port", "br0", hs[0].port, "max-macs=1", "broadcast-limit=100"])
            #expect(try h.ctl(["set-port", "br0", hs[0].port, "broadcast-limit=lots"]).stderr.contains("invalid broadcast-limit"))
            try h.ctlOK(["set-port", "br0", hs[0].port, "isolated=off"])
            try h.ctlOK(["set-port", "br0", hs[1].port, "isolated=off"])
            #expect(try h.exec(hs[0].ns, ["ping", "-c", "1", "-W", "2", hs[1].ip]).status == 0, "and back")
        }
    }
}
