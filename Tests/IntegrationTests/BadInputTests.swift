import Foundation
import Testing
import VSwitchNetlink
import VSwitchSystem
#if canImport(Glibc)
import Glibc
#endif

/// A raw AF_PACKET socket bound to `device` inside `ns`: frames sent on it are what the kernel
/// transmits into the TAP, i.e. what vswitchd reads.
final class FrameInjector {
    let fd: Int32
    let ifindex: Int32

    init(device: String, namespace ns: String) throws {
        let (fd, index): (Int32, Int32) = try NetworkNamespace.run(in: ns) {
            (socket(AF_PACKET, Int32(SOCK_RAW.rawValue), 0), Int32(if_nametoindex(device)))
        }
        guard fd >= 0, index > 0 else { throw HarnessError("cannot open a packet socket on \(device) in \(ns)") }
        self.fd = fd
        self.ifindex = index
    }

    deinit { close(fd) }

    /// Sends one frame; returns errno on failure, 0 on success.
    @discardableResult
    func send(_ frame: [UInt8]) -> Int32 {
        var addr = sockaddr_ll()
        addr.sll_family = UInt16(AF_PACKET)
        addr.sll_ifindex = ifindex
        addr.sll_halen = 6
        let n = frame.withUnsafeBytes { raw in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_ll>.size))
                }
            }
        }
        return n == frame.count ? 0 : errno
    }
}

struct Xorshift {
    var s: UInt64
    mutating func next() -> UInt64 { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s }
}

@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct HostileFrameTests {
    @Test func hostileFramesAreDroppedAndCounted() throws {
        try withHarness("bf") { h in
            try requireRoot()
            try h.startDaemon()
            try h.ctlOK(["add-br", "br0"])
            let n1 = try h.namespace("h1"), n2 = try h.namespace("h2")
            let t1 = h.prefix + "t1", t2 = h.prefix + "t2"
            try h.ctlOK(["add-port", "br0", t1, "--netns", n1, "--mtu", "65521"])
            try h.ctlOK(["add-port", "br0", t2, "--netns", n2, "--addr", "198.18.0.2/24"])
            let inject = try FrameInjector(device: t1, namespace: n1)
            let src: [UInt8] = [0x02, 0, 0x5e, 0, 0, 1], dst: [UInt8] = [0x02, 0, 0x5e, 0, 0, 2]

            // Runts: the kernel itself refuses to transmit an Ethernet frame under 14 bytes, so no
            // runt can reach a TAP reader (the switch core's runt path is covered by unit tests).
            for n in 0..<14 { #expect(inject.send([UInt8](repeating: 2, count: n)) != 0, "kernel refuses a \(n)-byte frame") }

            // Truncated 802.1Q / 802.1ad tags: 14..17 bytes.
            var expectMalformed = 0
            var truncatedSent = 0
            for n in 14..<18 {
                for tpid: [UInt8] in [[0x81, 0x00], [0x88, 0xa8]] {
                    #expect(inject.send(Array((dst + src + tpid + [0x00, 0x05, 0x08, 0x00]).prefix(n))) == 0)
                    expectMalformed += 1
                    truncatedSent += 1
                }
            }
            // Multicast, broadcast and zero sources.
            let badSources: [[UInt8]] = [[1, 0, 0x5e, 0, 0, 1], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0, 0, 0, 0, 0, 0]]
            for s in badSources { #expect(inject.send(dst + s + [0x88, 0xb5] + [UInt8](repeating: 0, count: 46)) == 0) }
            var expectInvalidSource = badSources.count

            // Random bytes, 14..1514 long; classify them as the switch must.
            var rng = Xorshift(s: 0x5eed)
            var sent = 0, expectedForwarded = 0
            for _ in 0..<2000 {
                let n = 14 + Int(rng.next() % 1501)
                var f = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if rng.next() % 4 == 0 { f[12] = 0x81; f[13] = 0x00 }  // some VLAN-looking ones
                guard inject.send(f) == 0 else { continue }
                sent += 1
                // Pace the burst: the TAP's queue holds 500 frames and drops the rest in the kernel.
                if sent % 50 == 0 { usleep(2_000) }
                let type = UInt16(f[12]) << 8 | UInt16(f[13])
                if (type == 0x8100 || type == 0x88a8) && n < 18 { expectMalformed += 1 }
                else if f[6] & 1 == 1 || f[6..<12].allSatisfy({ $0 == 0 }) { expectInvalidSource += 1 }
                else { expectedForwarded += 1 }
            }
            // Maximum-size frames: 65,535 bytes (the TAP's MTU 65,521 plus the header).
            var big = dst + src + [0x88, 0xb5]
            big += [UInt8](repeating: 0xab, count: 65_535 - big.count)
            var sentBig = 0
            for _ in 0..<5 where inject.send(big) == 0 { sentBig += 1 }
            #expect(sentBig == 5, "maximum-size frames sent")

            usleep(300_000)
            #expect(h.daemonIsRunning, "vswitchd is still up")
            let s = try h.stats("br0")[t1]!
            let drops = s["drops"] as? [String: Int] ?? [:]
            #expect(drops["malformed"] == expectMalformed)
            #expect(drops["invalid-source"] == expectInvalidSource)
            #expect(drops["runt"] == 0)
            let total = truncatedSent + badSources.count + sent + sentBig
            let kernel = try h.kernelCounters(t1, in: n1)
            #expect(kernel.txPackets == total, "the kernel queued every frame into the TAP")
            #expect(s["rx_packets"] as? Int == total, "every frame was read and accounted for")
            // Everything valid went to the other port (or was refused there, and counted).
            let out = try h.stats("br0")[t2]!
            let outTotal = (out["tx_packets"] as? Int ?? 0) + (out["tx_errors"] as? Int ?? 0) + (out["tx_drops"] as? Int ?? 0)
            #expect(outTotal == expectedForwarded + sentBig, "forwarded or counted at egress")
            // And the switch still switches.
            try h.ctlOK(["add-port", "br0", h.prefix + "t3", "--netns", n1, "--addr", "198.18.0.1/24"])
            #expect(try h.exec(n1, ["ping", "-c", "1", "-W", "2", "198.18.0.2"]).status == 0)
        }
    }

    static func residentKiB(_ h: Harness) throws -> Int {
        guard let pid = h.daemonPID,
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
            throw HarnessError("no VmRSS for vswitchd")
        }
        return kib
    }

    /// A random-source-MAC flood from one port: the port's and the switch's limits hold, memory
    /// stays bounded, known hosts keep working.
    @Test func macFloodIsBoundedByLimits() throws {
        try withHarness("mf") { h in
            try requireRoot()
            try h.startDaemon()
            try h.ctlOK(["add-br", "br0"])
            try h.ctlOK(["set", "br0", "max-macs=50"])
            let n1 = try h.namespace("h1"), n2 = try h.namespace("h2")
            let t1 = h.prefix + "t1", t2 = h.prefix + "t2", t3 = h.prefix + "t3"
            try h.ctlOK(["add-port", "br0", t1, "--netns", n1])
            try h.ctlOK(["add-port", "br0", t2, "--netns", n2, "--addr", "198.18.0.2/24"])
            try h.ctlOK(["add-port", "br0", t3, "--netns", n1, "--addr", "198.18.0.1/24"])
            try h.ctlOK(["set-port", "br0", t1, "max-macs=10"])
            #expect(try h.exec(n1, ["ping", "-c", "1", "-W", "2", "198.18.0.2"]).status == 0)
            let inject = try FrameInjector(device: t1, namespace: n1)
            let rssBefore = try Self.residentKiB(h)
            var rng = Xorshift(s: 0xf100d)
            // 100,000 random unicast sources, to a unicast destination nobody has (so the kernel
            // of h2's namespace is not asked to handle 100,000 broadcasts).
            var frame: [UInt8] = [0x02, 0, 0x5e, 0xde, 0xad, 0x01] + [UInt8](repeating: 0, count: 6) + [0x88, 0xb5] + [UInt8](repeating: 0, count: 46)
            var sent = 0
            for i in 0..<100_000 {
                let r = rng.next()
                for b in 0..<6 { frame[6 + b] = UInt8(truncatingIfNeeded: r >> (8 * UInt64(b))) }
                frame[6] = (frame[6] & 0xfe) | 0x02  // unicast, locally administered
                if inject.send(frame) == 0 { sent += 1 }
                if i % 200 == 199 { usleep(1_000) }
            }
            usleep(500_000)
            let fdb = try h.ctlJSON(["fdb", "show", "br0"])
            let entries = fdb["entries"] as? [[String: Any]] ?? []
            #expect(entries.filter { $0["port"] as? String == t1 }.count == 10, "the port's limit")
            #expect(entries.count <= 50, "the switch's limit")
            let received = try h.stats("br0")[t1]?["rx_packets"] as? Int ?? 0
            #expect((fdb["learn_refused"] as? Int ?? 0) >= received - 10, "every other source was refused: \(received) received")
            #expect(received > 90_000, "the flood reached the switch: \(received) of \(sent)")
            let rssAfter = try Self.residentKiB(h)
            #expect(rssAfter - rssBefore < 16 * 1024, "memory stays bounded: \(rssBefore) KiB -> \(rssAfter) KiB")
            #expect(try h.exec(n1, ["ping", "-c", "1", "-W", "2", "198.18.0.2"]).status == 0, "known hosts keep working")
            #expect(h.daemonIsRunning)
        }
    }

    @Test func broadcastLimitHoldsItsRate() throws {
        try withHarness("bl") { h in
            let hs = try h.switchWithHosts(2, addressed: false)
            let (n1, t1, t2) = (hs[0].ns, hs[0].port, hs[1].port)
            try h.ctlOK(["set-port", "br0", t1, "broadcast-limit=100"])
            let inject = try FrameInjector(device: t1, namespace: n1)
            let frame: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0x5e, 0, 0, 1, 0x88, 0xb5] + [UInt8](repeating: 0, count: 46)
            let start = Date()
            var sent = 0
            while Date().timeIntervalSince(start) < 2.0 {  // ~1,000 frames a second for 2 s
                for _ in 0..<10 where inject.send(frame) == 0 { sent += 1 }
                usleep(10_000)
            }
            let elapsed = Date().timeIntervalSince(start)
            usleep(200_000)
            let s = try h.stats("br0")
            let passed = s[t2]?["tx_packets"] as? Int ?? -1
            let limited = (s[t1]?["drops"] as? [String: Int])?["broadcast-limit"] ?? -1
            // A burst of 100, then 100 a second.
            #expect(passed >= 100 && Double(passed) <= 100 + 100 * elapsed + 5, "\(passed) of \(sent) in \(elapsed) s")
            #expect(passed + limited == sent, "everything else was counted")
        }
    }

    @Test func aMACMovingBetweenPortsIsFlaggedAndLogged() throws {
        try withHarness("mv") { h in
            let hs = try h.switchWithHosts(2, addressed: false)
            let (n1, t1, n2, t2) = (hs[0].ns, hs[0].port, hs[1].ns, hs[1].port)
            let a = try FrameInjector(device: t1, namespace: n1), b = try FrameInjector(device: t2, namespace: n2)
            let frame: [UInt8] = [0x02, 0, 0x5e, 0, 0, 0x99, 0x02, 0, 0x5e, 0, 0, 0x42, 0x88, 0xb5] + [UInt8](repeating: 0, count: 46)
            for i in 0..<8 {
                _ = (i % 2 == 0 ? a : b).send(frame)
                usleep(20_000)
            }
            usleep(200_000)
            let fdb = try h.ctlJSON(["fdb", "show", "br0"])
            let entry = (fdb["entries"] as? [[String: Any]] ?? []).first { $0["mac"] as? String == "02:00:5e:00:00:42" }
            #expect(entry?["moving"] as? Bool == true, "\(fdb)")
            #expect((fdb["flapping"] as? Int ?? 0) == 1 && (fdb["moved"] as? Int ?? 0) >= 7)
            #expect(try h.ctlOK(["fdb", "show", "br0"]).contains("learned,moving"))
            var logged = false
            for _ in 0..<30 where !logged {
                logged = h.log_.contains("MAC 02:00:5e:00:00:42 vlan 0 is moving between ports")
                if !logged { usleep(200_000) }
            }
            #expect(logged, "logged once: \(h.log_)")
        }
    }
}
