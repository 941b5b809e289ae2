import Foundation
import Testing
import VSwitchSystem
#if canImport(Glibc)
import Glibc
#endif

/// OpenVPN interop (SPEC sections 4 and 6): the real OpenVPN 2.6 of Debian in TAP mode, peer to
/// peer, on each side bridged by vswitch through a pcap port to a LAN host, as in OpenVPN's
/// ethernet-bridging recipe with vswitch in place of brctl.
///
/// ```
///  hA --tap-- [brA] --pcap-- tapA (openvpn, sa) ==UDP 198.18.200.1 <-> .2== (sb, openvpn) tapB --pcap-- [brB] --tap-- hB
///  198.18.10.1/24                                  underlay veth, MTU 1600                                198.18.10.2/24
/// ```
///
/// OpenVPN runs as 2.6 recommends for a point-to-point link: TLS with self-signed certificates
/// pinned by `--peer-fingerprint` (static keys, `--secret`, are deprecated in 2.6 and gone in
/// 2.7), data channel AES-256-GCM, no DCO (it has no TAP mode). `--tun-mtu 1500 --mssfix 0` with
/// an underlay MTU of 1600: full-size frames cross without clamping or fragmentation. OpenVPN holds
/// its tap's only fd (a single-queue TAP refuses a second attach), so vswitch binds the tap as a
/// pcap port: it receives what OpenVPN writes into the tap and injects what OpenVPN should send.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct OpenVPNInteropTests {
    /// One end of the VPN: its namespace, the OpenVPN tap in it, and OpenVPN's files.
    struct Site {
        let ns: String
        let tap: String
        let local: String
        let remote: String
        let log: String
        let pidFile: String
    }

    static let dataCipher = "AES-256-GCM"

    /// A self-signed P-256 certificate and key in `directory`; returns its SHA-256 fingerprint
    /// (`AB:CD:...`, as `--peer-fingerprint` takes it).
    static func certificate(_ name: String, in directory: String) throws -> (cert: String, key: String, fingerprint: String) {
        let cert = directory + "/\(name).crt", key = directory + "/\(name).key"
        try run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                            "-subj", "/CN=vswitch-test-\(name)", "-keyout", key, "-out", cert]).check("openssl req \(name)")
        let fp = try run("openssl", ["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"]).check("openssl x509 \(name)").stdout
        guard let value = fp.split(separator: "=").last?.trimmingCharacters(in: .whitespacesAndNewlines), value.count == 95 else {
            throw HarnessError("cannot read the fingerprint of \(cert): \(fp)")
        }
        return (cert, key, value)
    }

    /// Reads a file the test's processes write (empty if absent).
    static func contents(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// Waits until both OpenVPN ends log "Initialization Sequence Completed" (the TLS handshake is
    /// done and the data channel keyed); throws with both logs if one exits or `timeout` passes.
    static func waitForTunnel(_ sites: [Site], processes: [ChildProcess], timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if sites.allSatisfy({ contents($0.log).contains("Initialization Sequence Completed") }) { return }
            if processes.contains(where: { !$0.isRunning }) { break }
            usleep(100_000)
        }
        let logs = sites.map { "--- \($0.log) ---\n\(contents($0.log))" }.joined(separator: "\n")
        let exited = processes.filter { !$0.isRunning }.map { "exited with \($0.terminationStatus)" }
        throw HarnessError("OpenVPN did not complete its initialization within \(Int(timeout)) s \(exited)\n\(logs)")
    }

    /// Ends OpenVPN processes this test started, by pid: SIGTERM, then SIGKILL after 5 s (so a
    /// stuck one cannot hang the run); true when each stopped on SIGTERM.
    static func end(_ processes: [ChildProcess]) -> Bool {
        var clean = true
        for p in processes where p.isRunning {
            kill(p.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while p.isRunning && Date() < deadline { usleep(20_000) }
            if p.isRunning {
                clean = false
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        return clean
    }

    @Test func lansPingAndRunTCPAcrossAnOpenVPNTapBridgedThroughPcapPorts() throws {
        try withHarness("ov") { h in
            try requireRoot()
            let version = try run("openvpn", ["--version"])
            guard version.stdout.hasPrefix("OpenVPN 2.") else {
                throw HarnessError("openvpn 2.x is needed (Tools/setup installs it): \(version)")
            }

            // The underlay: sa and sb joined by a veth, MTU 1600.
            let sa = try h.namespace("sa"), sb = try h.namespace("sb")
            let ua = h.prefix + "ua", ub = h.prefix + "ub"
            try h.exec(sa, ["ip", "link", "add", ua, "mtu", "1600", "type", "veth", "peer", "name", ub, "netns", sb, "mtu", "1600"]).check()
            for (ns, dev, addr) in [(sa, ua, "198.18.200.1/30"), (sb, ub, "198.18.200.2/30")] {
                try h.exec(ns, ["ip", "addr", "add", addr, "dev", dev]).check()
                try h.exec(ns, ["ip", "link", "set", dev, "up"]).check()
            }

            // OpenVPN on both ends, in the foreground, ended by pid: at the end by the test (which
            // checks that they stop cleanly), on a failure by the `defer` below.
            let a = Site(ns: sa, tap: h.prefix + "ta", local: "198.18.200.1", remote: "198.18.200.2",
                         log: h.directory + "/openvpn-a.log", pidFile: h.directory + "/openvpn-a.pid")
            let b = Site(ns: sb, tap: h.prefix + "tb", local: "198.18.200.2", remote: "198.18.200.1",
                         log: h.directory + "/openvpn-b.log", pidFile: h.directory + "/openvpn-b.pid")
            let certA = try Self.certificate("a", in: h.directory), certB = try Self.certificate("b", in: h.directory)
            func openvpn(_ s: Site, own: (cert: String, key: String, fingerprint: String), peerFingerprint: String, role: [String]) -> [String] {
                ["openvpn", "--dev", s.tap, "--dev-type", "tap", "--proto", "udp", "--port", "1194",
                 "--local", s.local, "--remote", s.remote, "--tun-mtu", "1500", "--mssfix", "0", "--disable-dco",
                 "--ping", "10", "--verb", "3", "--writepid", s.pidFile, "--log", s.log,
                 "--cert", own.cert, "--key", own.key, "--peer-fingerprint", peerFingerprint,
                 "--data-ciphers", Self.dataCipher] + role
            }
            let pa = try h.spawn(sa, openvpn(a, own: certA, peerFingerprint: certB.fingerprint,
                                                              role: ["--tls-server", "--dh", "none"]), log: "openvpn-a.out")
            let pb = try h.spawn(sb, openvpn(b, own: certB, peerFingerprint: certA.fingerprint,
                                                              role: ["--tls-client"]), log: "openvpn-b.out")

            var ended = false
            defer { if !ended { _ = Self.end([pa, pb]) } }

            // While they shake hands: the daemon, two switches and a LAN host on each.
            try h.startDaemon()
            let ha = try h.namespace("ha"), hb = try h.namespace("hb")
            let lanA = h.prefix + "la", lanB = h.prefix + "lb"
            try h.ctlOK(["add-br", "brA"])
            try h.ctlOK(["add-br", "brB"])
            try h.ctlOK(["add-port", "brA", lanA, "--netns", ha, "--addr", "198.18.10.1/24"])
            try h.ctlOK(["add-port", "brB", lanB, "--netns", hb, "--addr", "198.18.10.2/24"])

            try Self.waitForTunnel([a, b], processes: [pa, pb], timeout: 20)
            // `ip netns exec` execs OpenVPN itself, so the pid the harness ends is OpenVPN's, and
            // OpenVPN can hear its SIGTERM.
            for (site, p) in [(a, pa), (b, pb)] {
                let pid = Int32(Self.contents(site.pidFile).trimmingCharacters(in: .whitespacesAndNewlines))
                #expect(pid == p.processIdentifier, "OpenVPN's pid file names the process the harness ends")
                let line = Self.contents("/proc/\(p.processIdentifier)/status").split(separator: "\n").first { $0.hasPrefix("SigBlk:") }
                let blocked = line.flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) }
                #expect(blocked.map { $0 & (1 << (UInt64(SIGTERM) - 1)) == 0 } ?? true, "SIGTERM is blocked in OpenVPN: \(line ?? "")")
            }
            for site in [a, b] {
                let log = Self.contents(site.log)
                #expect(log.contains("Data Channel: cipher '\(Self.dataCipher)'") || log.contains("Cipher '\(Self.dataCipher)' initialized"),
                        "the data channel is encrypted with \(Self.dataCipher):\n\(log)")
            }

            // The taps as OpenVPN left them (down, no address) go up and become pcap ports.
            for (s, br) in [(a, "brA"), (b, "brB")] {
                try h.exec(s.ns, ["ip", "link", "set", s.tap, "up"]).check()
                try h.ctlOK(["add-port", br, s.tap, "--type", "pcap", "--netns", s.ns])
            }
            let show = try h.ctlOK(["show"])
            #expect(show.contains("Port \(a.tap)") && show.contains("type: pcap"), "\(show)")

            // The two LANs reach each other across the VPN.
            for (from, to) in [(ha, "198.18.10.2"), (hb, "198.18.10.1")] {
                let r = try h.exec(from, ["ping", "-c", "3", "-i", "0.2", "-W", "3", to])
                #expect(r.status == 0, "\(from) -> \(to) across OpenVPN: \(r)\n\(Self.contents(a.log))\n\(Self.contents(b.log))")
            }

            // TCP across: hA's TSO superframes leave brA through the pcap port's packet socket,
            // which the kernel segments for OpenVPN's tap.
            let server = try h.spawn(hb, ["iperf3", "-s", "-1", "-B", "198.18.10.2"], log: "iperf3-server.log")
            for _ in 0..<50 {
                if try h.exec(hb, ["ss", "-Htln", "sport", "=", ":5201"]).stdout.contains("5201") { break }
                usleep(100_000)
            }
            #expect(server.isRunning, "iperf3 server: \(Self.contents(h.directory + "/iperf3-server.log"))")
            let client = try h.exec(ha, ["iperf3", "-c", "198.18.10.2", "-t", "2", "--connect-timeout", "5000", "-J"])
            #expect(client.status == 0, "iperf3 hA -> hB: \(client.stderr)\n\(client.stdout.prefix(2000))")
            let report = try? JSONSerialization.jsonObject(with: Data(client.stdout.utf8)) as? [String: Any]
            let received = (report?["end"] as? [String: Any])?["sum_received"] as? [String: Any]
            let bits = received?["bits_per_second"] as? Double ?? 0
            #expect(bits > 50e6, "TCP across OpenVPN and two pcap ports: \(Int(bits / 1e6)) Mbit/s")

            // The pcap ports moved the traffic both ways, and the kernel refused nothing.
            for (s, br, lan) in [(a, "brA", lanA), (b, "brB", lanB)] {
                let stats = try h.stats(br)
                let pcap = try #require(stats[s.tap], "stats of \(s.tap): \(stats)")
                #expect(pcap["rx_packets"] as? Int ?? 0 > 1000 && pcap["tx_packets"] as? Int ?? 0 > 1000, "\(br) \(s.tap): \(pcap)")
                #expect(pcap["tx_errors"] as? Int == 0 && pcap["rx_errors"] as? Int == 0, "\(br) \(s.tap): \(pcap)")
                #expect(stats[lan]?["tx_errors"] as? Int == 0, "\(br) \(lan): \(stats[lan] ?? [:])")
                if br == "brA" {
                    // The iperf3 sender's TSO superframes went into the packet socket whole.
                    let average = (pcap["tx_bytes"] as? Int ?? 0) / max(pcap["tx_packets"] as? Int ?? 0, 1)
                    #expect(average > 1514, "\(br) \(s.tap): \(average) bytes per frame sent: \(pcap)")
                }

                // Each LAN host on its own port, the far one behind the VPN, and nothing moved:
                // frames the pcap port injects are never captured and learned again.
                let fdb = try h.ctlJSON(["fdb", "show", br])
                let entries = (fdb["entries"] as? [[String: Any]] ?? []).map { ($0["mac"] as! String, $0["port"] as! String) }
                let near = br == "brA" ? (lanA, ha) : (lanB, hb), far = br == "brA" ? (lanB, hb) : (lanA, ha)
                let nearMAC = try h.macOf(near.0, in: near.1), farMAC = try h.macOf(far.0, in: far.1)
                #expect(entries.contains { $0 == (nearMAC, near.0) }, "\(br): \(entries)")
                #expect(entries.contains { $0 == (farMAC, s.tap) }, "\(br): \(entries)")
                #expect(fdb["moved"] as? Int == 0, "\(br): \(fdb)")
            }
            #expect(pa.isRunning && pb.isRunning && h.daemonIsRunning)

            // OpenVPN stops cleanly on SIGTERM, as the harness would stop it.
            ended = true
            #expect(Self.end([pa, pb]), "OpenVPN did not stop within 5 s of SIGTERM")
            for site in [a, b] {
                let log = Self.contents(site.log)
                #expect(log.contains("SIGTERM[hard,] received, process exiting"), "\(site.log):\n\(log.suffix(1500))")
            }
        }
    }
}
