import Foundation
import Synchronization
import Testing
import VSwitchCore
import VSwitchNetlink
import VSwitchPorts
import VSwitchSystem
import VSwitchWire

/// TUN ports on real devices, in fresh namespaces (root only; CI runs as root). Everything a test
/// makes lives in namespaces named `vstTUN<hex>`, deleted on every path.
@Suite(.serialized) struct TUNPortTests {
    @Test func refusesBadNamesAndAddressesWithoutPrivileges() {
        #expect(throws: PortError.self) { try TUNPort(name: "a-name-far-too-long") }
        #expect(throws: PortError.self) { try TUNPort(name: "tun/0") }
        let error = #expect(throws: PortError.self) { try TUNPort(name: "vsttun0", peers: ["198.18.5.2/33"]) }
        #expect(error?.description.contains("invalid peer address \"198.18.5.2/33\"") == true)
        #expect(throws: PortError.self) { try TUNPort(name: "vsttun0", mac: .broadcast) }
    }

    @Test(.enabled(if: getuid() == 0)) func opensInItsNamespaceAndDisappearsOnClose() throws {
        let id = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        let namespace = "vstTUN\(id)"
        let name = "vsttun\(id)"
        try NetworkNamespace.create(namespace)
        defer { try? NetworkNamespace.delete(namespace) }

        let port = try TUNPort(name: name, namespace: namespace, peers: ["2001:2:0:5::2/64"])
        #expect(port.created)
        #expect(port.mac.isLocallyAdministered && port.mac.isUnicast)
        try port.configure(mtu: 1400, address: "198.18.5.2/24")
        #expect(port.shim.peers.map(\.description) == ["2001:2:0:5::2/64", "198.18.5.2/24"], "the address is answered for too")

        let nl = try NetlinkSocket(namespace: namespace)
        let link = try #require(try nl.link(named: name))
        #expect(link.kind == "tun")
        #expect(link.mtu == 1400)
        #expect(link.isUp)
        #expect(try nl.addresses(of: name).map(\.cidr).contains("198.18.5.2/24"))
        #expect(try NetlinkSocket().link(named: name) == nil, "created in the namespace, not beside it")

        port.close()
        #expect(port.readinessDescriptor == -1)
        #expect(try nl.link(named: name) == nil, "a TUN vswitch created goes away with its fd")
    }

    /// The semantics that matter: a namespace whose only way to the switch is the TUN pings, and
    /// is pinged by, a host on a TAP port, over IPv4 and IPv6; and TCP with offloads (superframes
    /// whose virtio-net header is re-based at the port) flows both ways.
    @Test(.enabled(if: getuid() == 0)) func tunHostAndTAPHostTalkThroughTheSwitch() throws {
        let id = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        let tunSide = "vstTUN\(id)t", tapSide = "vstTUN\(id)p"
        try NetworkNamespace.create(tunSide)
        defer { try? NetworkNamespace.delete(tunSide) }
        try NetworkNamespace.create(tapSide)
        defer { try? NetworkNamespace.delete(tapSide) }

        let tun = try TUNPort(name: "vsttun\(id)", namespace: tunSide, peers: ["2001:2:0:5::2/64"])
        defer { tun.close() }
        try tun.configure(mtu: nil, address: "198.18.5.2/24")
        try NetlinkSocket(namespace: tunSide).addAddress("2001:2:0:5::2/64", to: tun.name, skipDAD: true)
        let tap = try TAPPort(name: "vsttap\(id)", namespace: tapSide)
        defer { tap.close() }
        try tap.configure(mac: nil, mtu: nil, address: "198.18.5.1/24")
        try NetlinkSocket(namespace: tapSide).addAddress("2001:2:0:5::1/64", to: tap.name, skipDAD: true)

        let loop = try SwitchLoop(tun: tun, tap: tap)
        let thread = try PThread(name: "tun-test") { loop.run() }
        var joined = false
        defer { if !joined { loop.stop(); thread.join() } }

        // IPv4: the TAP host asks first, and the port answers its ARP request. IPv6: the TUN host
        // speaks first, so the port solicits, holds the echo request and releases it on the answer.
        #expect(try run(in: tapSide, ["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.5.2"]) == 0, "TAP host pings TUN host, IPv4")
        #expect(try run(in: tunSide, ["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.5.1"]) == 0, "TUN host pings TAP host, IPv4")
        #expect(try run(in: tunSide, ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:2:0:5::1"]) == 0, "IPv6, TUN to TAP")
        #expect(try run(in: tapSide, ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:2:0:5::2"]) == 0, "IPv6, TAP to TUN")

        let hasIperf = access("/usr/bin/iperf3", X_OK) == 0
        if hasIperf {
            for reverse in [false, true] {
                let server = try spawn(in: tapSide, ["iperf3", "-s", "-1", "-B", "198.18.5.1"])
                usleep(300_000)
                let status = try run(in: tunSide, ["iperf3", "-c", "198.18.5.1", "-t", "1"] + (reverse ? ["-R"] : []))
                server.waitUntilExit()
                #expect(status == 0, "TCP \(reverse ? "TAP to TUN" : "TUN to TAP")")
            }
        }
        loop.stop()
        thread.join()
        joined = true
        let counters = loop.tunCounters
        let statistics = tun.shim.statistics
        #expect(counters.drops(.unresolved) == 0 && counters.txErrors == 0 && counters.rxErrors == 0)
        #expect(statistics.arpRepliesSent >= 1, "\(statistics)")
        #expect(statistics.solicitationsSent >= 1 && statistics.packetsReleased >= 1, "\(statistics)")
        if hasIperf {
            // TSO superframes crossed whole, both ways: far more bytes per frame than an MTU's worth.
            #expect(counters.rxBytes / max(1, counters.rxPackets) > 4000, "from the TUN: \(counters)")
            #expect(counters.txBytes / max(1, counters.txPackets) > 4000, "into the TUN: \(counters)")
        }
    }

    // MARK: - Helpers

    /// `ip netns exec NAMESPACE command...`; its exit status (output discarded).
    private func run(in namespace: String, _ command: [String]) throws -> Int32 {
        let process = try spawn(in: namespace, command)
        process.waitUntilExit()
        return process.terminationStatus
    }

    private func spawn(in namespace: String, _ command: [String]) throws -> ChildProcess {
        try ChildProcess(path: access("/usr/sbin/ip", X_OK) == 0 ? "/usr/sbin/ip" : "/sbin/ip",
                         arguments: ["netns", "exec", namespace] + command, standardOutput: .null, standardError: .null)
    }
}

/// A learning switch over one TUN and one TAP port, driven the way the data plane drives it
/// (epoll on the ports' readiness fds, timed-port service), on its own thread.
private final class SwitchLoop: @unchecked Sendable {
    let switching = LearningSwitch()
    let epoll: Epoll
    let tun: TUNPort
    let tunNumber: PortNumber
    private let stopped = Atomic<Bool>(false)

    init(tun: TUNPort, tap: TAPPort) throws {
        self.tun = tun
        epoll = try Epoll(capacity: 4)
        tunNumber = switching.attach(tun)!
        let tapNumber = switching.attach(tap)!
        try epoll.add(tun.readinessDescriptor, token: UInt64(tunNumber))
        try epoll.add(tap.readinessDescriptor, token: UInt64(tapNumber))
    }

    func run() {
        let batch = PacketBatch(capacity: 64)
        while !stopped.load(ordering: .acquiring) {
            let ready = epoll.wait(timeoutMilliseconds: 20)
            let now = SystemCalls.monotonicNanoseconds()
            for index in 0..<ready {
                let port = Int(epoll.token(at: index))
                var rounds = 0
                while switching.poll(port, batch: batch, now: now) == batch.capacity && rounds < 8 { rounds += 1 }
            }
            if let due = tun.nextDeadline, due <= now {
                switching.withCounters(tunNumber) { tun.service(now: now, counters: $0) }
            }
        }
    }

    func stop() { stopped.store(true, ordering: .releasing) }

    /// Read after the thread has been joined.
    var tunCounters: PortCounters { switching.counters(tunNumber) ?? PortCounters() }
}
