import Foundation
import Testing

/// A pcap port on a veth whose peer is a host in another namespace, switched with a TAP host.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct PcapPortTests {
    /// br0 with h1 on a TAP port and h2 behind veth `prefix+p` (in namespace `sw`) bound as a pcap port.
    static func pcapSetup(_ h: Harness) throws -> (tap: (ns: String, port: String, ip: String), h2: String, pcap: String, sw: String) {
        let tapHost = try h.switchWithHosts(1)[0]
        let sw = try h.namespace("sw")
        let h2 = try h.namespace("h2")
        let pcap = h.prefix + "p"
        try h.exec(sw, ["ip", "link", "add", pcap, "type", "veth", "peer", "name", "eth0", "netns", h2]).check()
        try h.exec(sw, ["ip", "link", "set", pcap, "up"]).check()
        try h.exec(h2, ["ip", "addr", "add", "198.18.0.2/24", "dev", "eth0"]).check()
        try h.exec(h2, ["ip", "link", "set", "eth0", "up"]).check()
        try h.ctlOK(["add-port", "br0", pcap, "--type", "pcap", "--netns", sw])
        return (tapHost, h2, pcap, sw)
    }

    @Test func pingIperfAndNoRelearning() throws {
        try withHarness("pc") { h in
            let s = try Self.pcapSetup(h)
            #expect(try h.exec(s.tap.ns, ["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.2"]).status == 0, "TAP host -> veth host")
            #expect(try h.exec(s.h2, ["ping", "-c", "3", "-i", "0.2", "-W", "2", s.tap.ip]).status == 0, "veth host -> TAP host")

            // TCP both ways, at speed: superframes from either side cross whole.
            for (server, client, target) in [(s.h2, s.tap.ns, "198.18.0.2"), (s.tap.ns, s.h2, s.tap.ip)] {
                let srv = try h.spawn(server, ["iperf3", "-s", "-1"], log: "iperf3-\(server).log")
                #expect(srv.isRunning)
                usleep(300_000)
                let r = try h.exec(client, ["iperf3", "-c", target, "-t", "2", "-J"])
                #expect(r.status == 0, "iperf3 \(client) -> \(target): \(r.stderr)")
                let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
                let end = report?["end"] as? [String: Any]
                let bits = (end?["sum_received"] as? [String: Any])?["bits_per_second"] as? Double ?? 0
                #expect(bits > 500e6, "TCP through the pcap port at speed: \(Int(bits / 1e6)) Mbit/s")
            }

            // Injected frames are never captured again: the TAP host's MAC stays on its port and
            // nothing ever moved.
            let fdb = try h.ctlJSON(["fdb", "show", "br0"])
            let entries = (fdb["entries"] as? [[String: Any]] ?? []).map { ($0["mac"] as! String, $0["port"] as! String) }
            let tapMAC = try h.macOf(s.tap.port, in: s.tap.ns), vethMAC = try h.macOf("eth0", in: s.h2)
            #expect(entries.contains { $0 == (tapMAC, s.tap.port) })
            #expect(entries.contains { $0 == (vethMAC, s.pcap) })
            #expect(!entries.contains { $0.0 == tapMAC && $0.1 == s.pcap }, "the TAP host's MAC was learned back on the pcap port")
            #expect(fdb["moved"] as? Int == 0)
            let st = try h.stats("br0")[s.pcap]!
            #expect(st["tx_errors"] as? Int == 0 && st["rx_errors"] as? Int == 0, "\(st)")

            // Detaching leaves the interface as it was: up, and not promiscuous.
            try h.ctlOK(["del-port", "br0", s.pcap])
            let link = try h.link(s.pcap, in: s.sw)
            #expect(link != nil, "the bound interface is never removed")
            #expect((link?["flags"] as? [String])?.contains("PROMISC") == false)
        }
    }

    @Test func refusals() throws {
        try withHarness("pr") { h in
            try h.startDaemon()
            try h.ctlOK(["add-br", "br0"])
            let r = try h.ctl(["add-port", "br0", h.prefix + "none", "--type", "pcap"])
            #expect(r.status == 1 && r.stderr.contains("no interface"), "\(r)")
            let sw = try h.namespace("sw")
            let r2 = try h.ctl(["add-port", "br0", "lo", "--type", "pcap", "--netns", sw])
            #expect(r2.status == 1 && r2.stderr.contains("loopback"), "\(r2)")
            let r3 = try h.ctl(["add-port", "br0", "lo", "--type", "pcap", "--addr", "198.18.0.1/24"])
            #expect(r3.status == 1 && r3.stderr.contains("do not apply"), "\(r3)")
            #expect(try h.ctlOK(["list-ports", "br0"]).isEmpty)
        }
    }
}

extension CommandResult {
    /// Throws unless the command succeeded (set-up steps whose failure makes the test meaningless).
    @discardableResult
    func check(_ what: String = "") throws -> CommandResult {
        guard status == 0 else { throw HarnessError("command failed \(what): \(self)") }
        return self
    }
}
