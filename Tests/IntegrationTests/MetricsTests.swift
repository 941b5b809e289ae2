import Foundation
import Testing

/// `vswitchd --metrics`: Prometheus text format at /metrics, agreeing with `stats --json`.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct MetricsTests {
    @Test func metricsParseAndAgreeWithStats() throws {
        try withHarness("mx") { h in
            try requireRoot()
            var port = 0
            for _ in 0..<5 {
                port = Int.random(in: 20_000...60_000)
                do { try h.startDaemon(extraArguments: ["--metrics", "127.0.0.1:\(port)"]); break } catch { h.stopDaemon() }
            }
            #expect(h.daemonIsRunning)
            try h.ctlOK(["add-br", "br0"])
            let n1 = try h.namespace("h1"), n2 = try h.namespace("h2")
            let t1 = h.prefix + "t1", t2 = h.prefix + "t2"
            try h.ctlOK(["add-port", "br0", t1, "--netns", n1, "--addr", "198.18.0.1/24"])
            try h.ctlOK(["add-port", "br0", t2, "--netns", n2, "--addr", "198.18.0.2/24"])
            #expect(try h.exec(n1, ["ping", "-c", "3", "-i", "0.2", "198.18.0.2"]).status == 0)
            usleep(200_000)

            let r = try run("curl", ["-sf", "http://127.0.0.1:\(port)/metrics"])
            #expect(r.status == 0, "\(r)")
            let stats = try h.stats("br0")
            var samples: [String: Double] = [:]
            let sample = try Regex(#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.]+(e[+-]?[0-9]+)?)$"#)
            let comment = try Regex(#"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$"#)
            for line in r.stdout.split(separator: "\n") {
                if line.hasPrefix("#") { #expect(line.wholeMatch(of: comment) != nil, "comment: \(line)"); continue }
                guard let m = line.wholeMatch(of: sample) else { Issue.record("not Prometheus text: \(line)"); continue }
                let parts = line.split(separator: " ")
                samples[String(parts[0])] = Double(parts[1])
                _ = m
            }
            for t in [t1, t2] {
                for key in ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_drops", "tx_drops", "rx_errors", "tx_errors"] {
                    let metric = "vswitch_port_\(key)_total{bridge=\"br0\",port=\"\(t)\"}"
                    #expect(samples[metric] == Double(stats[t]?[key] as? Int ?? -1), "\(metric) agrees with stats --json")
                }
                #expect(samples["vswitch_port_drops_total{bridge=\"br0\",port=\"\(t)\",reason=\"runt\"}"] == 0)
            }
            #expect(samples["vswitch_fdb_entries{bridge=\"br0\"}"] == 2)
            #expect(samples["vswitch_fdb_learned_total{bridge=\"br0\"}"] == 2)
            #expect(try run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/nope"]).stdout == "404")
        }
    }
}
