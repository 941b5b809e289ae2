import Foundation
import Testing

/// UDP tunnel ports (SPEC section 7): interop with the kernel's VXLAN, a LAN over a tunnel between
/// two vswitchd, multipoint, the secure mode's configuration checks and defences against forged
/// datagrams, and hostile datagrams. The secure mode's acceptance (both ciphers, multipoint,
/// restarts, replays, unknown sites, floods, rekeying, roaming, key files) is SecureTunnelTests.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct TunnelTests {
    /// Two namespaces joined by an underlay veth `u0` (198.18.200.1/24 and .2/24).
    static func underlay(_ h: Harness, _ a: String, _ b: String) throws {
        try h.exec(a, ["ip", "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", b]).check()
        try h.exec(a, ["ip", "addr", "add", "198.18.200.1/24", "dev", "u0"]).check()
        try h.exec(b, ["ip", "addr", "add", "198.18.200.2/24", "dev", "u0"]).check()
        try h.exec(a, ["ip", "link", "set", "u0", "up"]).check()
        try h.exec(b, ["ip", "link", "set", "u0", "up"]).check()
    }

    /// A host namespace on a TAP port of `bridge` (through the daemon at `socket`), MTU `mtu`, and
    /// MAC `mac` if given (a restarted daemon makes the TAP again with it: hosts need not ask again).
    static func host(_ h: Harness, _ suffix: String, bridge: String, ip: String, mtu: Int = 1450, socket: String? = nil,
                     mac: String? = nil) throws -> (ns: String, port: String) {
        let ns = try h.namespace(suffix)
        let port = h.prefix + suffix
        try h.ctlOK((socket.map { ["--socket", $0] } ?? []) + ["add-port", bridge, port, "--netns", ns, "--addr", ip + "/24", "--mtu", String(mtu)]
                    + (mac.map { ["--mac", $0] } ?? []))
        return (ns, port)
    }

    static func iperf(_ h: Harness, from client: String, to server: String, ip: String, seconds: Int = 2) throws -> Double {
        let srv = try h.spawn(server, ["iperf3", "-s", "-1"], log: "iperf3-\(server)-\(Int.random(in: 0..<1_000_000)).log")
        #expect(srv.isRunning)
        usleep(300_000)
        let r = try h.exec(client, ["iperf3", "-c", ip, "-t", String(seconds), "-J"])
        #expect(r.status == 0, "iperf3 \(client) -> \(ip): \(r.stderr)")
        let report = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let end = report?["end"] as? [String: Any]
        return (end?["sum_received"] as? [String: Any])?["bits_per_second"] as? Double ?? 0
    }

    static func ping(_ h: Harness, _ from: String, _ to: String, count: Int = 3) throws -> Bool {
        try h.exec(from, ["ping", "-c", String(count), "-i", "0.2", "-W", "2", to]).status == 0
    }

    /// Rewrites the state file at `path` without field `field` in any port: a state file as an
    /// older vswitchd wrote it.
    static func removePortField(_ field: String, inStateFile path: String) throws {
        guard var state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] else {
            throw HarnessError("\(path) is not a JSON object")
        }
        state["bridges"] = (state["bridges"] as? [[String: Any]] ?? []).map { bridge in
            var bridge = bridge
            bridge["ports"] = (bridge["ports"] as? [[String: Any]] ?? []).map { port in
                var port = port
                port.removeValue(forKey: field)
                return port
            }
            return bridge
        }
        try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: path))
    }

    static func drops(_ h: Harness, _ bridge: String, _ port: String, socket: String? = nil) throws -> [String: Int] {
        let obj = try h.ctlJSON((socket.map { ["--socket", $0] } ?? []) + ["stats", bridge, port])
        let p = (obj["ports"] as? [[String: Any]])?.first
        return (p?["drops"] as? [String: Any] ?? [:]).compactMapValues { $0 as? Int }
    }

    /// vswitchd's own VXLAN, and the kernel's VXLAN device driven by vswitchd (`--datapath kernel`).
    @Test(arguments: ["userspace", "kernel"])
    func interopWithTheKernelVXLAN(datapath: String) throws {
        try withHarness(datapath == "kernel" ? "kk" : "kx") { h in
            let vs = try h.namespace("vs"), kv = try h.namespace("kv")
            try Self.underlay(h, vs, kv)
            // The kernel side: vxlan VNI 42 on port 4789, bridged to a host's veth.
            let hk = try h.namespace("hk")
            try h.exec(kv, ["ip", "link", "add", "vx0", "type", "vxlan", "id", "42", "local", "198.18.200.2", "remote", "198.18.200.1",
                            "dstport", "4789", "dev", "u0"]).check()
            try h.exec(kv, ["ip", "link", "add", "br0", "type", "bridge"]).check()
            try h.exec(kv, ["ip", "link", "add", "k0", "type", "veth", "peer", "name", "eth0", "netns", hk]).check()
            for dev in ["vx0", "k0"] { try h.exec(kv, ["ip", "link", "set", dev, "master", "br0", "up"]).check() }
            try h.exec(kv, ["ip", "link", "set", "br0", "up"]).check()
            try h.exec(hk, ["ip", "link", "set", "eth0", "mtu", "1450"]).check()
            try h.exec(hk, ["ip", "addr", "add", "198.18.10.2/24", "dev", "eth0"]).check()
            try h.exec(hk, ["ip", "link", "set", "eth0", "up"]).check()
            // vswitch: a udp port in the underlay namespace, a host on a TAP port.
            try h.startDaemon()
            try h.ctlOK(["add-br", "br0"])
            let tunnel = h.prefix + "vx"
            try h.ctlOK(["add-port", "br0", tunnel, "--type", "udp", "--netns", vs, "--local", "198.18.200.1:4789",
                         "--remote", "198.18.200.2:4789", "--vni", "42", "--datapath", datapath])
            let h1 = try Self.host(h, "h1", bridge: "br0", ip: "198.18.10.1")

            #expect(try Self.ping(h, h1.ns, "198.18.10.2"), "vswitch host -> kernel host")
            #expect(try Self.ping(h, hk, "198.18.10.1"), "kernel host -> vswitch host")
            // ARP (a broadcast) crossed both ways: each side resolved the other.
            #expect(try h.exec(h1.ns, ["ip", "neigh", "show", "198.18.10.2"]).stdout.contains("lladdr"))
            #expect(try h.exec(hk, ["ip", "neigh", "show", "198.18.10.1"]).stdout.contains("lladdr"))
            let bits = try Self.iperf(h, from: h1.ns, to: hk, ip: "198.18.10.2")
            #expect(bits > 30e6, "TCP through the tunnel to the kernel's VXLAN: \(Int(bits / 1e6)) Mbit/s")
            let bitsBack = try Self.iperf(h, from: hk, to: h1.ns, ip: "198.18.10.1")
            #expect(bitsBack > 30e6, "TCP from the kernel's VXLAN: \(Int(bitsBack / 1e6)) Mbit/s")
            let show = try h.ctlOK(["show"])
            #expect(show.contains("remote 198.18.200.2:4789: max inner frame 1464"), "\(show)")

            // A frame too big for the tunnel (a host with MTU 1500 pinging with DF) is dropped,
            // counted and logged with the MTU to set; it is never fragmented.
            let h2 = try Self.host(h, "h2", bridge: "br0", ip: "198.18.10.3", mtu: 1500)
            #expect(try Self.ping(h, h2.ns, "198.18.10.2"), "small frames cross")
            #expect(try !h.exec(h2.ns, ["ping", "-c", "2", "-W", "1", "-M", "do", "-s", "1472", "198.18.10.2"]).stdout.contains(" 0% packet loss"))
            #expect((try Self.drops(h, "br0", tunnel)["tx-too-big"] ?? 0) >= 1)
            if datapath == "userspace" {
                var logged = false
                for _ in 0..<40 where !logged { usleep(100_000); logged = h.log_.contains("set the MTU of the hosts on this segment to 1450") }
                #expect(logged, "the log names the MTU to set")
            } else {
                // The kernel's device, as `ip` shows it; gone with the port.
                let link = try h.exec(vs, ["ip", "-d", "link", "show", tunnel]).stdout
                #expect(link.contains("vxlan id 42") && link.contains("dstport 4789") && link.contains("mtu 1450")
                        && link.contains("addrgenmode none"), "\(link)")
                #expect(try h.exec(vs, ["bridge", "fdb", "show", "dev", tunnel]).stdout.contains("00:00:00:00:00:00 dst 198.18.200.2"))
                #expect(show.contains("datapath: kernel"), "\(show)")
                try h.ctlOK(["del-port", "br0", tunnel])
                #expect(try h.exec(vs, ["ip", "link", "show", tunnel]).status != 0, "del-port deleted the device")
            }
        }
    }

    /// Two vswitchd, each in its own namespace, joined by a tunnel over an underlay veth.
    /// Secure: `keys` are the two sites' key pairs; each end names its own private key file and
    /// the other's public key, unless `peerKeys` says what each end names as the other's key.
    /// `ciphers`: each end's `--cipher` (secure only; nil: the default).
    func lanOverTunnel(_ h: Harness, secure: Bool, keys: (SiteKey, SiteKey)? = nil, peerKeys: (String, String)? = nil,
                       ciphers: (String?, String?) = (nil, nil), datapath: String? = nil) throws
        -> (a: String, b: String, hA: (ns: String, port: String), hB: (ns: String, port: String), tunnel: String) {
        let sa = try h.namespace("sa"), sb = try h.namespace("sb")
        try Self.underlay(h, sa, sb)
        let a = try h.startDaemon(in: sa, name: "a"), b = try h.startDaemon(in: sb, name: "b")
        let tunnel = h.prefix + "t"
        let named = peerKeys ?? (keys.map { ($0.1.publicKey, $0.0.publicKey) } ?? ("", ""))
        for (sock, local, remote, key, peerKey, cipher) in [(a, "198.18.200.1", "198.18.200.2", keys?.0, named.0, ciphers.0),
                                                            (b, "198.18.200.2", "198.18.200.1", keys?.1, named.1, ciphers.1)] {
            try h.ctlOK(["--socket", sock, "add-br", "br0"])
            try h.ctlOK(["--socket", sock, "add-port", "br0", tunnel, "--type", "udp", "--local", local + ":4789", "--remote", remote + ":4789"]
                        + (secure ? ["--encap", "secure", "--key-file", key!.file, "--peer-key", peerKey] : [])
                        + (cipher.map { ["--cipher", $0] } ?? []) + (datapath.map { ["--datapath", $0] } ?? []))
        }
        let hA = try Self.host(h, "ha", bridge: "br0", ip: "198.18.10.1", socket: a)
        let hB = try Self.host(h, "hb", bridge: "br0", ip: "198.18.10.2", socket: b)
        return (a, b, hA, hB, tunnel)
    }

    /// A broadcast frame of EtherType 0x88B5 (local experimental: not IP, not ARP) sent five
    /// times from host `from` reaches host `to` (tcpdump there catches one).
    static func nonIPFrameCrosses(_ h: Harness, from: (ns: String, port: String), to: (ns: String, port: String)) throws -> Bool {
        let log = "tcpdump-88b5-\(Int.random(in: 0..<1_000_000))"
        let capture = try h.spawn(to.ns, ["tcpdump", "-i", to.port, "-c", "1", "-n", "ether", "proto", "0x88b5"], log: log + ".log")
        for _ in 0..<50 where !h.log(log).contains("listening on") { usleep(100_000) }
        let send = """
            import socket
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind(("\(from.port)", 0))
            for i in range(5): s.send(b"\\xff" * 6 + s.getsockname()[4] + b"\\x88\\xb5" + b"vswitch" + bytes(39))
            """
        #expect(try h.exec(from.ns, ["python3", "-c", send]).status == 0)
        for _ in 0..<50 where capture.isRunning { usleep(100_000) }
        let crossed = !capture.isRunning && capture.terminationStatus == 0
        if !crossed { Issue.record("the non-IP frame did not reach the far host: \(h.log(log))") }
        return crossed
    }

    /// Plain VXLAN: vswitchd's own, and the kernel's with `--datapath kernel`. (The secure mode's
    /// LAN, with each cipher, is SecureTunnelTests.lanOverASecureTunnel.)
    @Test(arguments: ["vxlan", "vxlan-kernel"])
    func lanOverATunnel(mode: String) throws {
        try withHarness(["vxlan": "lp", "vxlan-kernel": "lk"][mode]!) { h in
            let t = try lanOverTunnel(h, secure: false, datapath: mode == "vxlan-kernel" ? "kernel" : nil)
            let show = try h.ctlOK(["--socket", t.a, "show"])
            #expect(show.contains("encap: vxlan"), "\(show)")
            #expect(try Self.ping(h, t.hA.ns, "198.18.10.2"))
            #expect(try Self.ping(h, t.hB.ns, "198.18.10.1"))
            let bits = try Self.iperf(h, from: t.hA.ns, to: t.hB.ns, ip: "198.18.10.2")
            #expect(bits > 30e6, "TCP over the \(mode) tunnel: \(Int(bits / 1e6)) Mbit/s")
            // A non-IP frame crosses.
            #expect(try Self.nonIPFrameCrosses(h, from: t.hA, to: t.hB))
            if mode == "vxlan-kernel" { try kernelDatapathLifecycle(h, t) }
        }
    }

    /// A `--datapath kernel` port's device goes with its daemon and comes back with it (and the
    /// traffic with it); refused combinations make no device.
    func kernelDatapathLifecycle(_ h: Harness, _ t: (a: String, b: String, hA: (ns: String, port: String), hB: (ns: String, port: String), tunnel: String)) throws {
        let sb = h.prefix + "sb"
        #expect(try h.ctlOK(["--socket", t.b, "show"]).contains("datapath: kernel"))
        kill(h.daemons["b"]!.processIdentifier, SIGTERM)
        h.daemons["b"]!.waitUntilExit()
        #expect(try h.exec(sb, ["ip", "link", "show", t.tunnel]).status != 0, "the device went with the daemon")
        let b = try h.startDaemon(in: sb, name: "b")
        #expect(try h.exec(sb, ["ip", "-d", "link", "show", t.tunnel]).stdout.contains("vxlan id 1"), "and came back with it")
        // B's host TAP came back too, with a new MAC (none was given): A's host must ask again.
        try h.exec(t.hA.ns, ["ip", "neigh", "flush", "dev", t.hA.port]).check()
        // The new device has learned nothing yet, nor has the new vswitchd: allow them a moment.
        var flows = false
        for _ in 0..<20 where !flows { flows = try Self.ping(h, t.hA.ns, "198.18.10.2", count: 1) }
        let diag = (try? [h.ctlOK(["--socket", b, "stats", "br0"]), h.ctlOK(["--socket", t.a, "stats", "br0"]),
                          h.exec(sb, ["bridge", "fdb", "show", "dev", t.tunnel]).stdout, h.exec(sb, ["ip", "-d", "link"]).stdout,
                          h.exec(t.hB.ns, ["ip", "-d", "addr"]).stdout, h.log("b")].joined(separator: "\n")) ?? ""
        #expect(flows, "traffic flows again: \(diag)")
        let x = h.prefix + "x"
        for (args, message) in [(["--datapath", "kernel", "--encap", "secure", "--key-file", "/nonexistent"], "--datapath kernel takes --encap vxlan only"),
                                (["--datapath", "kernel", "--local", "198.18.200.2:4790"], "must use the local port 4790"),
                                (["--datapath", "fast", "--local", "198.18.200.2:4790"], "invalid datapath fast")] {
            let r = try h.ctl(["--socket", b, "add-port", "br0", x, "--type", "udp", "--remote", "198.18.200.1:4789"] + args)
            #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(try h.exec(sb, ["ip", "link", "show", x]).status != 0, "no device left: \(args)")
        }
        let r = try h.ctl(["--socket", b, "add-port", "br0", x, "--datapath", "kernel"])
        #expect(r.status != 0 && r.stderr.contains("--datapath apply to udp ports only"), "\(r.stderr)")
    }

    /// Ends with matching keys but different ciphers deliver nothing and say why
    /// (`cipher-mismatch`, not `auth-failed` or `handshake-invalid`); the cipher is kept across a
    /// restart, the default one too (it is saved by name); a port saved before that (no cipher
    /// in the state file, but peer keys: version 2) comes back with ChaCha20-Poly1305, the
    /// default of its time; `--cipher` is refused where it does not apply or names no cipher,
    /// and then no port is made.
    @Test func endsWithDifferentCiphersDeliverNothing() throws {
        try withHarness("lc") { h in
            let keyA = try h.siteKey("a"), keyB = try h.siteKey("b")
            let t = try lanOverTunnel(h, secure: true, keys: (keyA, keyB), ciphers: (nil, "chacha20-poly1305"))
            #expect(try h.ctlOK(["--socket", t.a, "show"]).contains("encap: secure (aes-256-gcm)"), "the default")
            let stateA = try String(contentsOfFile: h.directory + "/a-state/state.json", encoding: .utf8)
            #expect(stateA.contains("\"aes-256-gcm\""), "the default cipher is saved by name: \(stateA)")
            #expect(try !Self.ping(h, t.hA.ns, "198.18.10.2", count: 2))
            #expect(try !Self.ping(h, t.hB.ns, "198.18.10.1", count: 2))
            // What crosses is handshakes (each end initiates when its port opens, and again, at
            // most every rekey timeout, when it has frames): B's reached A at least (A's port was
            // up when B's opened).
            let dA = try Self.drops(h, "br0", t.tunnel, socket: t.a), dB = try Self.drops(h, "br0", t.tunnel, socket: t.b)
            #expect((dA["cipher-mismatch"] ?? 0) > 0, "A: \(dA)")
            for d in [dA, dB] {
                #expect((d["auth-failed"] ?? 0) == 0 && (d["handshake-invalid"] ?? 0) == 0 && (d["unknown-peer"] ?? 0) == 0, "\(d)")
            }
            for (args, message) in [(["--cipher", "aes-256-gcm"], "--cipher applies to --encap secure only"),
                                    (["--encap", "secure", "--key-file", keyA.file, "--peer-key", keyB.publicKey, "--cipher", "des"],
                                     "invalid cipher des")] {
                let r = try h.ctl(["--socket", t.a, "add-port", "br0", h.prefix + "x", "--type", "udp", "--local", "198.18.200.1:4790",
                                   "--remote", "198.18.200.2:4790"] + args)
                #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.stderr)")
            }
            #expect(try !h.ctlOK(["--socket", t.a, "show"]).contains(h.prefix + "x"), "a refused port is not made")
            // B restarts and comes back with the cipher it was given: still a mismatch.
            let pid = h.daemons["b"]!.processIdentifier
            kill(pid, SIGTERM)
            h.daemons["b"]!.waitUntilExit()
            let b = try h.startDaemon(in: h.prefix + "sb", name: "b")
            #expect(try h.ctlOK(["--socket", b, "show"]).contains("encap: secure (chacha20-poly1305)"))
            // A restores from a state file of before the cipher was saved: ChaCha20-Poly1305,
            // which B speaks, so traffic flows.
            kill(h.daemons["a"]!.processIdentifier, SIGTERM)
            h.daemons["a"]!.waitUntilExit()
            let path = h.directory + "/a-state/state.json"
            try Self.removePortField("cipher", inStateFile: path)
            let edited = try String(contentsOfFile: path, encoding: .utf8)
            #expect(!edited.contains("cipher") && edited.contains("peer_keys"), "\(edited)")
            let a = try h.startDaemon(in: h.prefix + "sa", name: "a")
            #expect(try h.ctlOK(["--socket", a, "show"]).contains("encap: secure (chacha20-poly1305)"), "the default of its time")
            #expect(try String(contentsOfFile: path, encoding: .utf8).contains("\"chacha20-poly1305\""), "and saved by name at once")
            #expect(try Self.ping(h, t.hA.ns, "198.18.10.2", count: 3), "the two ends agree again")
        }
    }

    /// A names a wrong public key for B (that of a third key pair), B names A's right one: A's
    /// initiations fail B's mac1 (`handshake-invalid`), B's come from a static key A's port does
    /// not name (`unknown-peer`); no session, nothing crosses.
    @Test func endsWithDifferentKeysDeliverNothing() throws {
        try withHarness("lx") { h in
            let keyA = try h.siteKey("a"), keyB = try h.siteKey("b"), other = try h.siteKey("x")
            let t = try lanOverTunnel(h, secure: true, keys: (keyA, keyB), peerKeys: (other.publicKey, keyA.publicKey))
            #expect(try !Self.ping(h, t.hA.ns, "198.18.10.2", count: 2))
            #expect(try !Self.ping(h, t.hB.ns, "198.18.10.1", count: 2))
            // A's first initiation went out before B's port was open; it sends a new one every
            // rekey timeout (5 s) while unanswered.
            var d = try Self.drops(h, "br0", t.tunnel, socket: t.b)
            for _ in 0..<40 where (d["handshake-invalid"] ?? 0) == 0 {
                usleep(200_000)
                d = try Self.drops(h, "br0", t.tunnel, socket: t.b)
            }
            #expect((d["handshake-invalid"] ?? 0) > 0, "B: \(d)")
            let dA = try Self.drops(h, "br0", t.tunnel, socket: t.a)
            #expect((dA["unknown-peer"] ?? 0) > 0, "A: \(dA)")
            #expect((dA["no-session"] ?? 0) > 0, "A had frames for B and no session: \(dA)")
            let show = try h.ctlJSON(["--socket", t.b, "stats", "br0", t.hB.port])
            let received = ((show["ports"] as? [[String: Any]])?.first?["tx_packets"] as? Int) ?? -1
            #expect(received == 0, "nothing from A reached B's host")
        }
    }

    /// Changed, replayed and truncated copies of a data datagram A sent B, sent from A's address
    /// while the flow goes on: each dropped and counted by the check it fails (the order of
    /// Docs/secure-wire-format.md, "Opening data"), never delivered.
    @Test func forgedReplayedAndTruncatedDatagramsAreRejected() throws {
        try withHarness("sf") { h in
            let t = try lanOverTunnel(h, secure: true, keys: (try h.siteKey("a"), try h.siteKey("b")))
            #expect(try Self.ping(h, t.hA.ns, "198.18.10.2"))
            // In A's underlay namespace: catch a data datagram (type 4) carrying a frame that A
            // sends to B, then send B changed, replayed and truncated copies from A's address.
            let sa = h.prefix + "sa"
            let attack = """
                import socket, struct
                import time
                sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL: outgoing too
                sniff.bind(("u0", 0))
                got = None
                sniff.settimeout(5)
                deadline = time.time() + 10
                while got is None and time.time() < deadline:
                    pkt = sniff.recv(65535)
                    if len(pkt) < 42 or pkt[12:14] != b"\\x08\\x00": continue
                    ihl = (pkt[14] & 15) * 4
                    udp = pkt[14 + ihl:]
                    d = udp[8:]
                    if pkt[23] == 17 and struct.unpack("!H", udp[2:4])[0] == 4789 and pkt[30:34] == bytes([198, 18, 200, 2]) \\
                            and len(d) > 32 and d[0] == 0xa2 and d[1] == 4:
                        got = d
                assert got is not None, "no data datagram from A to B seen"
                out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                out.bind(("198.18.200.1", 0))
                dst = ("198.18.200.2", 4789)
                n = len(got)
                counter = struct.unpack("!Q", got[8:16])[0]
                # The header: magic, type, reserved (malformed), cipher (cipher-mismatch), receiver index (unknown-session).
                for i in [0, 1, 2, 3, 5]:
                    b = bytearray(got); b[i] ^= 0x40; out.sendto(bytes(b), dst)
                # A counter never seen (far ahead), alone or with a changed frame or tag: the AEAD fails (auth-failed).
                for k, i in enumerate([None, 16, 20, n // 2, n - 17, n - 1]):
                    b = bytearray(got[:8] + struct.pack("!Q", counter + 1000000 + k) + got[16:])
                    if i is not None: b[i] ^= 0x40
                    out.sendto(bytes(b), dst)
                for _ in range(3): out.sendto(got, dst)  # replayed
                for l in [0, 1, 10, 31]: out.sendto(got[:l], dst)  # shorter than a header and a tag (malformed)
                print("sent", n)
                """
            let pinger = try h.spawn(t.hA.ns, ["ping", "-i", "0.2", "198.18.10.2"], log: "ping.log")
            let r = try h.exec(sa, ["python3", "-c", attack])
            #expect(r.status == 0, "\(r)")
            usleep(500_000)
            kill(pinger.processIdentifier, SIGINT)
            pinger.waitUntilExit()
            let d = try Self.drops(h, "br0", t.tunnel, socket: t.b)
            // 5 changed headers, 6 forged counters, 3 replayed, 4 truncated: every one counted.
            let rejected = ["auth-failed", "unknown-session", "tunnel-malformed", "replayed", "cipher-mismatch"].reduce(0) { $0 + (d[$1] ?? 0) }
            #expect(rejected >= 18, "all 18 counted: \(d)")
            #expect((d["tunnel-malformed"] ?? 0) >= 7, "changed magic, type, reserved; truncated: \(d)")
            #expect((d["cipher-mismatch"] ?? 0) >= 1, "changed cipher: \(d)")
            #expect((d["unknown-session"] ?? 0) >= 1, "changed receiver index: \(d)")
            #expect((d["auth-failed"] ?? 0) >= 6, "forged counters: \(d)")
            #expect((d["replayed"] ?? 0) >= 3, "replayed: \(d)")
            #expect(try Self.ping(h, t.hA.ns, "198.18.10.2"), "the legitimate flow goes on")
        }
    }

    /// vswitchd's own per-remote counters show it; with `--datapath kernel`, the kernel's
    /// forwarding table does (it keeps no counters per remote).
    @Test(arguments: ["userspace", "kernel"])
    func multipointLearnsWhichRemoteEachMACIsBehind(datapath: String) throws {
        try withHarness(datapath == "kernel" ? "mk" : "mp") { h in
            // Underlay: three sites on a kernel bridge in namespace ul.
            let ul = try h.namespace("ul")
            try h.exec(ul, ["ip", "link", "add", "br0", "type", "bridge"]).check()
            try h.exec(ul, ["ip", "link", "set", "br0", "up"]).check()
            var sites: [String] = []
            for (i, s) in ["a", "b", "c"].enumerated() {
                let ns = try h.namespace("s" + s)
                try h.exec(ul, ["ip", "link", "add", "p" + s, "type", "veth", "peer", "name", "u0", "netns", ns]).check()
                try h.exec(ul, ["ip", "link", "set", "p" + s, "master", "br0", "up"]).check()
                try h.exec(ns, ["ip", "addr", "add", "198.18.201.\(i + 1)/24", "dev", "u0"]).check()
                try h.exec(ns, ["ip", "link", "set", "u0", "up"]).check()
                sites.append(ns)
            }
            try h.startDaemon()
            var hosts: [(ns: String, port: String)] = []
            for i in 0..<3 {
                let bridge = "br\(i)", tunnel = h.prefix + "t\(i)"
                try h.ctlOK(["add-br", bridge])
                let remotes = (0..<3).filter { $0 != i }.flatMap { ["--remote", "198.18.201.\($0 + 1):4789"] }
                try h.ctlOK(["add-port", bridge, tunnel, "--type", "udp", "--netns", sites[i], "--local", "198.18.201.\(i + 1):4789",
                             "--datapath", datapath] + remotes)
                hosts.append(try Self.host(h, "h\(i)", bridge: bridge, ip: "198.18.10.\(i + 1)"))
            }
            if datapath == "kernel" {
                // Broadcast reaches both others (A resolves B and C), and A's kernel learns
                // which remote each host sits behind: unicast then goes to that one alone.
                #expect(try Self.ping(h, hosts[0].ns, "198.18.10.2", count: 2))
                #expect(try Self.ping(h, hosts[0].ns, "198.18.10.3", count: 2))
                let fdb = try h.exec(sites[0], ["bridge", "fdb", "show", "dev", h.prefix + "t0"]).stdout
                func mac(_ host: (ns: String, port: String)) throws -> String {
                    let link = try h.exec(host.ns, ["ip", "link", "show", host.port]).stdout
                    return String(link.split(separator: " ").drop { $0 != "link/ether" }.dropFirst().first ?? "")
                }
                #expect(fdb.contains("\(try mac(hosts[1])) dst 198.18.201.2"), "\(fdb)")
                #expect(fdb.contains("\(try mac(hosts[2])) dst 198.18.201.3"), "\(fdb)")
                #expect(fdb.contains("00:00:00:00:00:00 dst 198.18.201.2") && fdb.contains("00:00:00:00:00:00 dst 198.18.201.3"))
                #expect(try Self.ping(h, hosts[2].ns, "198.18.10.2", count: 2), "C reaches B too")
                return
            }
            func remoteTX(_ site: Int) throws -> [String: Int] {
                let show = try h.ctlJSON(["show"])
                let bridge = (show["bridges"] as? [[String: Any]])?.first { $0["name"] as? String == "br\(site)" }
                let port = (bridge?["ports"] as? [[String: Any]])?.first { $0["type"] as? String == "udp" }
                let remotes = (port?["tunnel"] as? [String: Any])?["remotes"] as? [[String: Any]] ?? []
                return Dictionary(uniqueKeysWithValues: remotes.map { ($0["address"] as! String, $0["tx_packets"] as! Int) })
            }
            // A's ARP broadcast reaches B and C.
            #expect(try Self.ping(h, hosts[0].ns, "198.18.10.2", count: 1))
            let before = try remoteTX(0)
            #expect(before["198.18.201.3:4789"] ?? 0 >= 1, "the broadcast was replicated to C: \(before)")
            // Learned: unicast for B goes to B only.
            #expect(try Self.ping(h, hosts[0].ns, "198.18.10.2", count: 10))
            let after = try remoteTX(0)
            #expect((after["198.18.201.2:4789"] ?? 0) - (before["198.18.201.2:4789"] ?? 0) >= 10, "\(before) -> \(after)")
            #expect(after["198.18.201.3:4789"] == before["198.18.201.3:4789"], "nothing more for C: \(before) -> \(after)")
            #expect(try Self.ping(h, hosts[2].ns, "198.18.10.2", count: 2), "C reaches B too")
        }
    }

    @Test func randomDatagramsOfEveryLengthNeverCrashTheDaemon() throws {
        try withHarness("fz") { h in
            let vs = try h.namespace("vs"), far = try h.namespace("fr")
            try Self.underlay(h, vs, far)
            try h.startDaemon()
            try h.ctlOK(["add-br", "br0"])
            let tunnel = h.prefix + "vx"
            try h.ctlOK(["add-port", "br0", tunnel, "--type", "udp", "--netns", vs, "--local", "198.18.200.1:4789", "--remote", "198.18.200.2:4789"])
            let h1 = try Self.host(h, "h1", bridge: "br0", ip: "198.18.10.1")
            // Every length from 0 to 65,507: random bytes, and on even lengths a valid VXLAN
            // header for VNI 1 in front of random inner bytes (so frames reach the switch).
            let fuzz = """
                import os, socket
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
                s.bind(("198.18.200.2", 0))
                pool = bytearray(os.urandom(65507 + 4096))
                vx = bytes([8, 0, 0, 0, 0, 0, 1, 0])
                for n in range(0, 65508):
                    o = (n * 7919) % 4096
                    d = pool[o:o + n]
                    if n % 2 == 0 and n >= 8: d = vx + d[8:]
                    s.sendto(d, ("198.18.200.1", 4789))
                print("sent", n + 1)
                """
            let r = try h.exec(far, ["python3", "-c", fuzz])
            #expect(r.status == 0 && r.stdout.contains("sent 65508"), "\(r)")
            usleep(500_000)
            #expect(h.daemonIsRunning, "vswitchd survived")
            let d = try Self.drops(h, "br0", tunnel)
            #expect((d["tunnel-malformed"] ?? 0) > 0, "\(d)")
            // Still a working tunnel port and switch.
            #expect(try h.ctl(["show"]).status == 0)
            #expect(try h.exec(h1.ns, ["ip", "link", "show"]).status == 0)
        }
    }
}
