import Foundation
import Testing

/// A namespace whose only interface toward the switch is a TUN device (L3), and a host on a TAP
/// port: the TUN port's ARP/ND shim joins them (SPEC section 4, `tun`).
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct TUNSwitchTests {
    @Test func pingsBothWaysOverIPv4AndIPv6AndDropsBadInput() throws {
        try withHarness("tn") { h in
            try h.startDaemon()
            try h.ctlOK(["add-br", "br0"])
            let h1 = try h.namespace("h1", ipv6: true)
            let tn = try h.namespace("tn", ipv6: true)
            let tap = h.prefix + "t1", tun = h.prefix + "u"
            try h.ctlOK(["add-port", "br0", tap, "--netns", h1, "--addr", "198.18.0.1/24"])
            try h.exec(h1, ["ip", "addr", "add", "2001:2::1/64", "dev", tap, "nodad"]).check()
            try h.ctlOK(["add-port", "br0", tun, "--type", "tun", "--netns", tn, "--addr", "198.18.0.5/24", "--peer", "2001:2::5/64"])
            try h.exec(tn, ["ip", "addr", "add", "2001:2::5/64", "dev", tun, "nodad"]).check()
            #expect(try h.link(tun, in: tn)?["link_type"] as? String == "none", "an L3 device")

            for (from, to) in [(h1, "198.18.0.5"), (tn, "198.18.0.1"), (h1, "2001:2::5"), (tn, "2001:2::1")] {
                let r = try h.exec(from, ["ping", "-c", "3", "-i", "0.2", "-W", "2", to])
                #expect(r.status == 0, "\(from) -> \(to): \(r)")
            }
            let show = try h.ctlOK(["show"])
            #expect(show.contains("Port \(tun)") && show.contains("type: tun"), "\(show)")

            // Non-IP frames to the TUN port's MAC, and truncated packets written into the TUN.
            let neigh = try h.exec(h1, ["ip", "-j", "neigh", "show", "198.18.0.5"]).check().stdout
            let entry = (try JSONSerialization.jsonObject(with: Data(neigh.utf8)) as? [[String: Any]])?.first
            let tunMAC = try #require(entry?["lladdr"] as? String, "h1 resolved the TUN side: \(neigh)")
            let mac = tunMAC.split(separator: ":").map { "\\x" + $0 }.joined()
            let nonIP = """
                import socket
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                s.bind(("\(tap)", 0))
                src = s.getsockname()[4]
                for i in range(3): s.send(b"\(mac)" + src + b"\\x88\\xb5" + bytes(46))
                """
            #expect(try h.exec(h1, ["python3", "-c", nonIP]).status == 0)
            let truncated = """
                import socket
                s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
                s.bind(("\(tun)", 0x0800))
                for p in [b"\\x45", b"\\x45\\x00\\x00\\x54\\x00", b"\\x60\\x00\\x00\\x00\\x00\\x40\\x3a", b"\\x45\\x00\\x01\\x00" + bytes(20)]:
                    s.sendto(p, ("\(tun)", 0x0800))
                """
            let t = try h.exec(tn, ["python3", "-c", truncated])
            #expect(t.status == 0, "\(t)")
            usleep(300_000)
            #expect(h.daemonIsRunning)
            let stats = try h.ctlJSON(["stats", "br0", tun])
            let port = (stats["ports"] as? [[String: Any]])?.first
            let drops = port?["drops"] as? [String: Any] ?? [:]
            #expect(drops["tx-unsupported"] as? Int ?? 0 >= 3, "non-IP frames to the TUN port's MAC counted: \(drops)")
            #expect((drops["malformed"] as? Int ?? 0) + (drops["runt"] as? Int ?? 0) >= 4, "truncated packets counted: \(drops)")
            #expect(try h.exec(h1, ["ping", "-c", "1", "-W", "2", "198.18.0.5"]).status == 0, "still forwarding")
        }
    }
}
