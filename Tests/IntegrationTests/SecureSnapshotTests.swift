import Foundation
import Testing

/// A VM restored from a snapshot: the kernel's vmgenid driver sends a uevent with
/// `NEW_VMGENID=1`; vswitchd then ends every secure session and handshakes anew, so a restored
/// copy of its memory never seals again with a session (and counters) it held before.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"), .serialized)
struct SecureSnapshotTests {
    /// The uevent the vmgenid driver sends, sent here into the daemon's namespace as the kernel
    /// would (only CAP_NET_ADMIN may send on the uevent group).
    static let uevent = """
        import socket
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)
        s.bind((0, 0))
        s.sendto(b"change@/devices/LNXSYSTM:00/LNXSYBUS:00/VMGENCTR:00\\0ACTION=change\\0DEVPATH=/devices/LNXSYSTM:00/LNXSYBUS:00/VMGENCTR:00\\0SUBSYSTEM=acpi\\0NEW_VMGENID=1\\0", (0, 1))
        """

    @Test func aNewVMGenerationEndsTheSessions() throws {
        try withHarness("svg") { h in
            let (lab, capture) = try SecureLab.capturedPair(h)
            let a = lab["a"], b = lab["b"]
            let stream = try SecureLab.pingStream(h, from: a.host.ns, to: b.hostAddress)
            usleep(700_000)
            let before = Date().timeIntervalSince1970
            let sent = try h.exec(a.ns, ["python3", "-c", Self.uevent])
            #expect(sent.status == 0, "\(sent)")
            let after = Date().timeIntervalSince1970
            var logged = false
            for _ in 0..<50 where !logged { usleep(20_000); logged = h.log("a").contains("new VM generation") }
            #expect(logged, "A logs the new VM generation")
            usleep(1_000_000)
            kill(stream.processIdentifier, SIGINT)
            stream.waitUntilExit()
            #expect(try lab.waitForPing("a", "b"), "the tunnel works on the new sessions")
            #expect(!h.log("b").contains("new VM generation"), "only A saw the event (its namespace)")

            let datagrams = try capture.stop()
            func isData(_ d: Pcap.Datagram) -> Bool { d.payload.count >= 32 && d.payload[0] == 0xa2 && d.payload[1] == 4 }
            func index(_ d: Pcap.Datagram) -> [UInt8] { Array(d.payload[4..<8]) }
            let fromA = datagrams.filter { $0.source == a.underlayAddress }
            // The sessions A sealed with before the event, by the receiver index in its data.
            let old = Set(fromA.filter { isData($0) && $0.time < before }.map(index))
            // After it (a margin for the event to reach the data plane): none of them again.
            let later = fromA.filter { isData($0) && $0.time > after + 0.05 }
            let reused = later.filter { old.contains(index($0)) }
            let initiations = fromA.filter { $0.payload.count == 156 && $0.payload[1] == 1 && $0.time >= before }
            print("SecureSnapshotTests: \(old.count) session(s) before, \(later.count) data datagrams after, \(reused.count) on an old session, \(initiations.count) new initiation(s)")
            #expect(!old.isEmpty && later.count > 50, "data crossed before and after: \(old.count) sessions before, \(later.count) datagrams after")
            #expect(reused.isEmpty, "no datagram sealed after the event on a session from before it: \(reused.count)")
            #expect(!initiations.isEmpty, "A handshook anew")
            // The whole capture: still no (key, counter) sealed twice.
            let wire = SecureWire.analyse(datagrams)
            #expect(wire.repeatedNonces.isEmpty && wire.unmapped == 0, "\(wire)")
        }
    }
}
