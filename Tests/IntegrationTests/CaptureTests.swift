import Foundation
import Testing
import VSwitchSystem

/// `vswitchctl capture`: a pcap file tcpdump reads, with the frames that crossed the port.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct CaptureTests {
    @Test func captureTenFramesThatTcpdumpReads() throws {
        try withHarness("cp") { h in
            let hs = try h.switchWithHosts(2)
            let (n1, t1) = (hs[0].ns, hs[0].port)
            #expect(try h.exec(n1, ["ping", "-c", "1", "-W", "2", "198.18.0.2"]).status == 0)  // ARP done
            let file = h.directory + "/x.pcap"
            // Capture in the background while h1 pings: 5 requests in, 5 replies out of t1.
            let capture = try ChildProcess(path: productsDirectory + "/vswitchctl", arguments: ["capture", "br0", t1, "-c", "10", "-w", file],
                                           environment: h.environment)
            usleep(300_000)
            #expect(try h.exec(n1, ["ping", "-c", "5", "-i", "0.2", "198.18.0.2"]).status == 0)
            let deadline = Date().addingTimeInterval(10)
            while capture.isRunning && Date() < deadline { usleep(50_000) }
            if capture.isRunning { kill(capture.processIdentifier, SIGTERM) }
            capture.waitUntilExit()
            #expect(capture.terminationStatus == 0)
            let r = try run("tcpdump", ["-nn", "-r", file])
            #expect(r.status == 0, "\(r)")
            let lines = r.stdout.split(separator: "\n")
            #expect(lines.count == 10, "\(r.stdout)")
            #expect(lines.filter { $0.contains("ICMP echo request") }.count == 5)
            #expect(lines.filter { $0.contains("ICMP echo reply") }.count == 5)
            // Nothing captures now: the ring is gone, and a stale id says so.
            let stale = try h.ctl(["capture", "br0", "nope"])
            #expect(stale.status == 1 && stale.stderr.contains("no port nope"))
        }
    }
}
