import Foundation
import Testing
import VSwitchSystem

/// The spanning tree (SPEC sections 4-5): a triangle of three vswitchd, one side a udp tunnel,
/// and a loop through a Linux kernel bridge that speaks only 802.1D.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct STPTests {
    /// A veth between namespaces `a` and `b`, named `ea` in `a` and `eb` in `b`, both up.
    static func wire(_ h: Harness, _ a: String, _ ea: String, _ b: String, _ eb: String) throws {
        try h.exec(a, ["ip", "link", "add", ea, "type", "veth", "peer", "name", eb, "netns", b]).check()
        try h.exec(a, ["ip", "link", "set", ea, "up"]).check()
        try h.exec(b, ["ip", "link", "set", eb, "up"]).check()
    }

    static func stp(_ h: Harness, _ socket: String) throws -> [String: Any] {
        try h.ctlJSON(["--socket", socket, "stp", "show", "br0"])
    }

    static func portStates(_ h: Harness, _ socket: String) throws -> [String: (role: String, state: String, proto: String)] {
        var out: [String: (String, String, String)] = [:]
        for p in try stp(h, socket)["ports"] as? [[String: Any]] ?? [] {
            out[p["port"] as! String] = (p["role"] as! String, p["state"] as! String, p["protocol"] as! String)
        }
        return out
    }

    /// Waits until `done` holds (polling every 200 ms), up to `seconds`.
    static func wait(_ seconds: Double, _ done: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try done() { return true }
            usleep(200_000)
        }
        return try done()
    }

    /// Sends `count` broadcast frames of EtherType 0x88B5 from `ns`'s `dev`.
    static func broadcast(_ h: Harness, from ns: String, dev: String, count: Int) throws {
        let script = """
            import socket
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind(("\(dev)", 0))
            for i in range(\(count)): s.send(b"\\xff" * 6 + s.getsockname()[4] + b"\\x88\\xb5" + b"stp-storm-check" + bytes([i]) * 31)
            """
        try h.exec(ns, ["python3", "-c", script]).check()
    }

    /// Starts counting frames of EtherType 0x88B5 arriving at `ns`'s `dev` for `seconds`;
    /// the count is the process's output.
    static func countBroadcasts(_ h: Harness, in ns: String, dev: String, seconds: Double, log: String) throws -> ChildProcess {
        let script = """
            import socket, time
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
            s.bind(("\(dev)", 0))
            s.settimeout(0.2)
            n, end = 0, time.time() + \(seconds)
            while time.time() < end:
                try:
                    s.recv(2048); n += 1
                except socket.timeout:
                    pass
            print(n, flush=True)
            """
        return try h.spawn(ns, ["python3", "-c", script], log: log)
    }

    static func count(_ h: Harness, _ p: ChildProcess, log: String) -> Int {
        p.waitUntilExit()
        return Int(h.log(log.replacingOccurrences(of: ".log", with: "")).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// User plus system CPU time of process `pid`, in clock ticks (1/100 s).
    static func cpuTicks(_ pid: Int32) -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // Fields after the command: state is [0], utime [11], stime [12].
        return fields.count > 12 ? (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) : 0
    }

    /// A ping of `count` packets 100 ms apart; returns the sequence numbers answered.
    static func answered(_ output: String) -> [Int] {
        output.split(separator: "\n").compactMap { line -> Int? in
            guard let r = line.range(of: "icmp_seq=") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
    }

    @Test func aTriangleWithATunnelSideNeitherStormsNorLosesAHost() throws {
        try withHarness("sp") { h in
            try requireRoot()
            let sA = try h.namespace("sa"), sB = try h.namespace("sb"), sC = try h.namespace("sc")
            let a = try h.startDaemon(in: sA, name: "a"), b = try h.startDaemon(in: sB, name: "b"), c = try h.startDaemon(in: sC, name: "c")
            // A is the root (priority 4096); B (8192) is designated on the B-C link, so C's port
            // there is the one that blocks.
            for (sock, priority) in [(a, 4096), (b, 8192), (c, 32768)] {
                try h.ctlOK(["--socket", sock, "add-br", "br0"])
                try h.ctlOK(["--socket", sock, "set", "br0", "stp=on", "stp-priority=\(priority)"])
            }
            // A-B and B-C: veths bound as pcap ports. A-C: a VXLAN tunnel over an underlay veth.
            try Self.wire(h, sA, "ab", sB, "ba")
            try Self.wire(h, sB, "bc", sC, "cb")
            try TunnelTests.underlay(h, sA, sC)
            for (sock, dev) in [(a, "ab"), (b, "ba"), (b, "bc"), (c, "cb")] {
                try h.ctlOK(["--socket", sock, "add-port", "br0", dev, "--type", "pcap"])
            }
            for (sock, local, remote) in [(a, "198.18.200.1", "198.18.200.2"), (c, "198.18.200.2", "198.18.200.1")] {
                try h.ctlOK(["--socket", sock, "add-port", "br0", "tun", "--type", "udp", "--local", local + ":4789", "--remote", remote + ":4789"])
            }
            let hA = try TunnelTests.host(h, "ha", bridge: "br0", ip: "198.18.10.1", socket: a)
            let hB = try TunnelTests.host(h, "hb", bridge: "br0", ip: "198.18.10.2", socket: b)
            let hC = try TunnelTests.host(h, "hc", bridge: "br0", ip: "198.18.10.3", socket: c)

            // Converged: every host port forwards (an edge port after 3 s), C's port to B discards.
            let converged = try Self.wait(15) {
                let sa = try Self.portStates(h, a), sb = try Self.portStates(h, b), sc = try Self.portStates(h, c)
                return sa[hA.port]?.state == "forwarding" && sb[hB.port]?.state == "forwarding" && sc[hC.port]?.state == "forwarding"
                    && sc["cb"]?.state == "discarding" && sc["cb"]?.role == "alternate"
            }
            let sa = try Self.stp(h, a), sc = try Self.stp(h, c)
            #expect(converged, "a: \(sa)\nc: \(sc)")
            #expect(sa["is_root"] as? Bool == true && (sa["bridge_id"] as? String)?.hasPrefix("1000.") == true)
            #expect(sc["root_id"] as? String != nil && sc["root_id"] as? String == sa["bridge_id"] as? String)
            #expect(sc["root_port"] as? String == "tun", "C reaches the root through the tunnel")
            let inter = [(a, "ab"), (a, "tun"), (b, "ba"), (b, "bc"), (c, "cb"), (c, "tun")]
            let blocked = try inter.filter { try Self.portStates(h, $0.0)[$0.1]?.state != "forwarding" }
            #expect(blocked.count == 1, "exactly one port of the loop blocks: \(blocked.map(\.1))")

            // Every host reaches every other.
            for (from, to) in [(hA.ns, "198.18.10.2"), (hA.ns, "198.18.10.3"), (hB.ns, "198.18.10.3"), (hC.ns, "198.18.10.1")] {
                #expect(try TunnelTests.ping(h, from, to), "\(from) -> \(to)")
            }

            // A broadcast does not multiply: 20 frames from A arrive exactly 20 times at B and at
            // C over 5 s (a loop would bring them back without end).
            let cB = try Self.countBroadcasts(h, in: hB.ns, dev: hB.port, seconds: 5, log: "countb.log")
            let cC = try Self.countBroadcasts(h, in: hC.ns, dev: hC.port, seconds: 5, log: "countc.log")
            usleep(500_000)
            try Self.broadcast(h, from: hA.ns, dev: hA.port, count: 20)
            #expect(Self.count(h, cB, log: "countb.log") == 20)
            #expect(Self.count(h, cC, log: "countc.log") == 20)

            // Cut the A-B link (B's root port, on the path from hA to hB): pinging every 100 ms,
            // the longest run of lost replies stays under 3 s.
            let pinger = try h.spawn(hA.ns, ["ping", "-c", "100", "-i", "0.1", "-W", "1", "198.18.10.2"], log: "ping.log")
            usleep(2_000_000)
            try h.exec(sA, ["ip", "link", "set", "ab", "down"]).check()
            pinger.waitUntilExit()
            let seqs = Self.answered(h.log("ping"))
            var longest = 0, previous = 0
            for s in seqs.sorted() { longest = max(longest, s - previous - 1); previous = s }
            longest = max(longest, 100 - previous)
            print("stp triangle: \(seqs.count) of 100 replies, longest gap \(longest) pings")
            #expect(seqs.count > 50, "replies: \(seqs.count)")
            #expect(longest < 30, "longest gap \(longest) pings (\(Double(longest) / 10) s)")
            #expect(try Self.portStates(h, c)["cb"]?.state == "forwarding", "C's port to B took over")
            // And the daemon says so in its log (state changes are logged every 2 s). The role logged
            // is the one at the moment the port started forwarding: designated once B reaches the
            // root through C, root if C briefly did through B.
            #expect(Self.wait(5) { h.log("c").contains("bridge br0: port cb is forwarding (") }, "\(h.log("c").suffix(2000))")
            // A's port lost its interface (ENETDOWN on its packet socket): the daemon must not spin.
            if let pid = h.daemons["a"]?.processIdentifier {
                let cpu0 = Self.cpuTicks(pid)
                usleep(1_000_000)
                let used = Self.cpuTicks(pid) - cpu0
                #expect(used < 50, "vswitchd a used \(used) ticks of CPU in 1 s after its port went down")
            }
            #expect(try TunnelTests.ping(h, hB.ns, "198.18.10.1"))
            #expect(try TunnelTests.ping(h, hC.ns, "198.18.10.2"))
            if longest >= 30 || seqs.count <= 50 {
                Issue.record("a: \(h.log("a").suffix(3000))\nb: \(h.log("b").suffix(3000))\nc: \(h.log("c").suffix(3000))")
            }
        }
    }

    /// Two links between vswitchd and a Linux kernel bridge running its 802.1D STP (which ignores
    /// RST BPDUs): vswitchd falls back to 802.1D on both ports, and with the kernel bridge as the
    /// root, vswitchd blocks one of them.
    @Test func aLoopThroughALegacyKernelBridgeIsBrokenWith8021D() throws {
        try withHarness("sk") { h in
            try requireRoot()
            let sv = try h.namespace("sv"), sk = try h.namespace("sk"), hk = try h.namespace("hk")
            let v = try h.startDaemon(in: sv, name: "v")
            // The kernel bridge: STP on, root (priority 4096), short timers (centiseconds).
            try h.exec(sk, ["ip", "link", "add", "br0", "type", "bridge", "stp_state", "1", "priority", "4096",
                            "forward_delay", "400", "hello_time", "100", "max_age", "600"]).check()
            try h.exec(sk, ["ip", "link", "set", "br0", "up"]).check()
            try h.ctlOK(["--socket", v, "add-br", "br0"])
            try h.ctlOK(["--socket", v, "set", "br0", "stp=on", "stp-hello-time=1", "stp-forward-delay=4", "stp-max-age=6"])
            try Self.wire(h, sv, "l1", sk, "k1")
            try Self.wire(h, sv, "l2", sk, "k2")
            try Self.wire(h, sk, "kh", hk, "eth0")
            for dev in ["k1", "k2", "kh"] { try h.exec(sk, ["ip", "link", "set", dev, "master", "br0"]).check() }
            try h.exec(hk, ["ip", "addr", "add", "198.18.10.2/24", "dev", "eth0"]).check()
            for dev in ["l1", "l2"] { try h.ctlOK(["--socket", v, "add-port", "br0", dev, "--type", "pcap"]) }
            let hv = try TunnelTests.host(h, "hv", bridge: "br0", ip: "198.18.10.1", mtu: 1500, socket: v)

            // 802.1D needs forward delay twice on the kernel's side (8 s here) and max age first.
            let converged = try Self.wait(25) {
                let s = try Self.portStates(h, v)
                let roles = [s["l1"]?.role, s["l2"]?.role].compactMap { $0 }.sorted()
                guard roles == ["alternate", "root"], s["l1"]?.proto == "stp", s["l2"]?.proto == "stp",
                      s[hv.port]?.state == "forwarding" else { return false }
                return try TunnelTests.ping(h, hv.ns, "198.18.10.2", count: 1)
            }
            let show = try Self.stp(h, v)
            #expect(converged, "\(show)")
            #expect((show["root_id"] as? String)?.hasPrefix("1000.") == true, "the kernel bridge is the root: \(show)")
            let s = try Self.portStates(h, v)
            #expect([s["l1"]?.state, s["l2"]?.state].compactMap { $0 }.sorted() == ["discarding", "forwarding"])
            #expect(try TunnelTests.ping(h, hk, "198.18.10.1"))

            // No storm: 20 broadcast frames from the host behind vswitchd arrive 20 times.
            let counter = try Self.countBroadcasts(h, in: hk, dev: "eth0", seconds: 4, log: "countk.log")
            usleep(500_000)
            try Self.broadcast(h, from: hv.ns, dev: hv.port, count: 20)
            #expect(Self.count(h, counter, log: "countk.log") == 20)
        }
    }

    /// Settings are validated (nothing changes on a refusal), kept across a restart with the same
    /// bridge identifier, and `stp show` tells when the tree is off.
    @Test func settingsAreCheckedAndKeptAcrossARestart() throws {
        try withHarness("ss") { h in
            try requireRoot()
            try h.startDaemon()
            try h.ctlOK(["add-br", "br0"])
            #expect(try h.ctlOK(["stp", "show", "br0"]).contains("stp: off"))
            for (args, message) in [(["stp=maybe"], "invalid stp maybe"), (["stp-priority=100"], "steps of 4096"),
                                    (["stp-forward-delay=4"], "stp-max-age 20 must be between"),
                                    (["stp-hello-time=0"], "invalid stp-hello-time"), (["stp-colour=red"], "unknown setting stp-colour")] {
                let r = try h.ctl(["set", "br0"] + args)
                #expect(r.status == 1 && r.stderr.contains(message), "\(args): \(r.stderr)")
            }
            #expect(try h.ctlJSON(["stp", "show", "br0"])["enabled"] as? Bool == false, "refused settings change nothing")
            try h.ctlOK(["set", "br0", "stp=on", "stp-priority=4096", "stp-forward-delay=4", "stp-max-age=6", "stp-hello-time=1"])
            let port = h.prefix + "p"
            try h.ctlOK(["add-port", "br0", port])
            let r = try h.ctl(["set-port", "br0", port, "stp-port-priority=17"])
            #expect(r.status == 1 && r.stderr.contains("steps of 16"), "\(r.stderr)")
            try h.ctlOK(["set-port", "br0", port, "stp-cost=100", "stp-edge=on"])
            let before = try h.ctlJSON(["stp", "show", "br0"])
            let text = try h.ctlOK(["stp", "show", "br0"])
            #expect(text.contains("This bridge is the root") && text.contains(port), "\(text)")
            let p = (before["ports"] as? [[String: Any]])?.first
            #expect(p?["cost"] as? Int == 100 && p?["edge"] as? Bool == true && p?["state"] as? String == "forwarding", "\(before)")

            #expect(h.stopDaemon() == 0)
            try h.startDaemon()
            let after = try h.ctlJSON(["stp", "show", "br0"])
            #expect(after["enabled"] as? Bool == true)
            #expect(after["bridge_id"] as? String == before["bridge_id"] as? String, "the bridge identifier survives a restart")
            #expect(after["forward_delay"] as? Int == 4)
            #expect((after["ports"] as? [[String: Any]])?.first?["cost"] as? Int == 100)
            let metrics = try h.ctlOK(["show"])
            #expect(metrics.contains("stp: on"))
            try h.ctlOK(["set", "br0", "stp=off"])
            #expect(try h.ctlJSON(["stp", "show", "br0"])["enabled"] as? Bool == false)
        }
    }

    /// Hostile BPDUs: random frames to the bridge group address, truncated, with random LLC,
    /// versions, types and fields, from a host. The daemon stays up, counts them, keeps its tree
    /// and keeps forwarding.
    @Test func randomBPDUsFromAHostAreCountedAndChangeNothing() throws {
        try withHarness("sf") { h in
            let hosts = try h.switchWithHosts(2)
            // Short timers: a valid mutated configuration BPDU may switch the port to 802.1D,
            // where a designated port forwards only after listening and learning (2 x forward
            // delay: 30 s with the default 15, 8 s here).
            try h.ctlOK(["set", "br0", "stp=on", "stp-forward-delay=4", "stp-max-age=6", "stp-hello-time=1"])
            #expect(Self.wait(6) { (try? Self.portStates(h, h.socketPath))?[hosts[0].port]?.state == "forwarding" })
            let script = """
                import os, random, socket
                random.seed(6)
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                s.bind(("\(hosts[0].port)", 0))
                me = s.getsockname()[4]
                # An RST BPDU (802.3 length 39, LLC 42 42 03) from a bridge worse than any real one.
                worst = bytes.fromhex("f000ffffffffffff")
                good = (bytes.fromhex("0180c2000000") + me + bytes.fromhex("0027424203") + bytes.fromhex("000002023c")
                        + worst + bytes(4) + worst + bytes.fromhex("8001" "0000" "1400" "0200" "0f00" "00"))
                for i in range(3000):
                    f = bytearray(good + bytes(60 - len(good)) if len(good) < 60 else good)
                    for _ in range(random.randrange(6)):
                        f[random.randrange(14, len(f))] = random.randrange(256)
                    if random.randrange(4) == 0:
                        f = f[:random.randrange(14, len(f))]
                    s.send(bytes(f) + os.urandom(random.randrange(4)))
                """
            try h.exec(hosts[0].ns, ["python3", "-c", script]).check()
            // A mutated BPDU may be valid and better than this bridge (the tree then follows it,
            // as it should without a BPDU guard): forwarding comes back within the timers.
            #expect(Self.wait(20) { (try? TunnelTests.ping(h, hosts[0].ns, hosts[1].ip, count: 1)) == true })
            let show = try Self.stp(h, h.socketPath)
            let port = (show["ports"] as? [[String: Any]])?.first { $0["port"] as? String == hosts[0].port }
            let received = (port?["bpdus_received"] as? Int ?? 0) + (port?["bpdus_invalid"] as? Int ?? 0)
            print("random BPDUs: \(String(describing: port))")
            #expect(received > 1000, "\(String(describing: port))")
            #expect(h.daemonIsRunning)
        }
    }
}
