// The lab builder: turns a LabTopology into namespaces, switches, ports, veths, addresses, routes
// and impairments, and takes them away again.
//
// `up` is a sequence of steps, each of which first looks at what exists (so a second `up` changes
// nothing) and records what it made; if any step fails, the record is undone in reverse order, so
// a failed `up` leaves the machine as it found it. `down` removes what the topology names and
// nothing else: the lab's switches, its own vswitchd (if it runs one) and the namespaces of its
// nodes (which takes their veths and TAPs with them).
//
// Everything goes through the netlink module and the control socket: no `ip`, no `vswitchctl`.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VSwitchControl
import VSwitchNetlink

public final class LabBuilder {
    public let topology: LabTopology
    /// Where the lab's own vswitchd keeps its socket, state, log and pid.
    public let runDirectory: String
    /// The vswitchd executable for a lab with its own daemon.
    public let vswitchdPath: String
    private let say: (String) -> Void
    /// Test hook: fail after this many changes (VSWITCH_LAB_FAIL_AFTER), to prove rollback.
    public var failAfter: Int? = ProcessInfo.processInfo.environment["VSWITCH_LAB_FAIL_AFTER"].flatMap(Int.init)

    private var undo: [(String, () throws -> Void)] = []
    private var changes = 0

    public init(topology: LabTopology, vswitchdPath: String, runDirectory: String = "/run/vswitch", say: @escaping (String) -> Void) {
        self.topology = topology
        self.vswitchdPath = vswitchdPath
        self.runDirectory = runDirectory
        self.say = say
    }

    var labPrefix: String { "lab \(topology.name)" }
    public var ownSocket: String { "\(runDirectory)/lab-\(topology.name).sock" }
    var ownStateDirectory: String { "\(runDirectory)/lab-\(topology.name).state" }
    var ownPidFile: String { "\(runDirectory)/lab-\(topology.name).pid" }
    var ownLog: String { "\(runDirectory)/lab-\(topology.name).log" }

    /// The control socket of the daemon the lab's switches live in.
    public var socketPath: String {
        switch topology.daemon {
        case .own: return ownSocket
        case .shared(let socket): return ControlSocket.path(flag: socket)
        }
    }

    var client: ControlClient { ControlClient(path: socketPath, timeout: 30) }

    // MARK: - up

    public func up() throws {
        let started = Date()
        undo.removeAll()
        changes = 0
        do {
            try ensureDaemon()
            for node in topology.nodes { try ensureNamespace(node) }
            for sw in topology.switches { try ensureSwitch(sw) }
            for node in topology.nodes {
                for link in node.links { try ensureLink(link, of: node) }
            }
            for node in topology.nodes {
                for route in node.routes { try ensureRoute(route, of: node) }
            }
        } catch {
            say("\(labPrefix): failed: \(error)")
            rollback()
            throw error
        }
        let links = topology.nodes.reduce(0) { $0 + $1.links.count }
        let seconds = Date().timeIntervalSince(started)
        say("\(labPrefix): up: \(topology.nodes.count) node(s), \(topology.switches.count) switch(es), \(links) link(s); \(changes) change(s) in \(String(format: "%.1f", seconds)) s")
    }

    /// Records a change and its undo; honours the failure-injection hook.
    private func made(_ what: String, undo action: @escaping () throws -> Void) throws {
        undo.append((what, action))
        changes += 1
        say("\(labPrefix): \(what)")
        if let n = failAfter, changes >= n { throw LabError("injected failure after \(n) change(s) (VSWITCH_LAB_FAIL_AFTER)") }
    }

    private func present(_ what: String) { say("\(labPrefix): \(what): already present") }

    private func rollback() {
        for (what, action) in undo.reversed() {
            do { try action() } catch { say("\(labPrefix): could not undo \(what): \(error)") }
        }
        if !undo.isEmpty { say("\(labPrefix): rolled back \(undo.count) change(s)") }
        undo.removeAll()
    }

    // MARK: - Steps

    private func ensureDaemon() throws {
        guard case .own = topology.daemon else {
            do { _ = try client.call(.listBridges, EmptyParams(), as: BridgeList.self) } catch {
                throw LabError("the lab uses a running vswitchd, but: \(error)")
            }
            return
        }
        if (try? client.call(.listBridges, EmptyParams(), as: BridgeList.self)) != nil {
            present("vswitchd at \(ownSocket)")
            return
        }
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        let pid = try LabProcess.spawn([vswitchdPath, "--socket", ownSocket, "--state-dir", ownStateDirectory],
                                       inNamespace: nil, newSession: true, output: ownLog)
        try "\(pid)\n".write(toFile: ownPidFile, atomically: true, encoding: .utf8)
        let deadline = Date().addingTimeInterval(15)
        var ready = false
        while Date() < deadline {
            if (try? client.call(.listBridges, EmptyParams(), as: BridgeList.self)) != nil { ready = true; break }
            if kill(pid, 0) != 0 { break }
            usleep(50_000)
        }
        guard ready else {
            stopDaemon(pid: pid)
            let log = (try? String(contentsOfFile: ownLog, encoding: .utf8)) ?? ""
            throw LabError("vswitchd did not start (log \(ownLog)): \(log.split(separator: "\n").last ?? "")")
        }
        try made("started vswitchd (pid \(pid), socket \(ownSocket))") { [self] in stopOwnDaemon() }
    }

    private func ensureNamespace(_ node: LabNode) throws {
        if NetworkNamespace.exists(node.namespace) {
            present("node \(node.name): namespace \(node.namespace)")
            return
        }
        try NetworkNamespace.create(node.namespace)
        try made("node \(node.name): created namespace \(node.namespace)") { try NetworkNamespace.delete(node.namespace) }
        try NetlinkSocket(namespace: node.namespace).setUp("lo", true)
    }

    private func ensureSwitch(_ sw: LabSwitch) throws {
        let existing = try client.call(.listBridges, EmptyParams(), as: BridgeList.self).bridges
        if existing.contains(sw.name) {
            present("switch \(sw.name)")
        } else {
            _ = try client.call(.addBridge, BridgeParams(bridge: sw.name), as: OK.self)
            try made("switch \(sw.name): created") { [self] in
                _ = try client.call(.deleteBridge, BridgeParams(bridge: sw.name, ifExists: true), as: OK.self)
            }
        }
        var settings: [String: String] = [:]
        if let v = sw.ageingTime { settings["ageing-time"] = String(v) }
        if let v = sw.maxMacs { settings["max-macs"] = String(v) }
        if let v = sw.floodUnknown { settings["flood-unknown"] = v ? "on" : "off" }
        if !settings.isEmpty { _ = try client.call(.set, SetParams(bridge: sw.name, settings: settings), as: OK.self) }
    }

    private func ensureLink(_ link: LabLink, of node: LabNode) throws {
        let nl = try NetlinkSocket(namespace: node.namespace)
        switch link.kind {
        case .switchPort(let sw):
            let ports = try client.call(.listPorts, BridgeParams(bridge: sw), as: PortList.self).ports
            if ports.contains(link.interface), try nl.link(named: link.interface) != nil {
                present("node \(node.name): \(link.interface) on switch \(sw)")
            } else {
                let spec = PortSpec(name: link.interface, type: "tap", netns: node.namespace, mtu: link.mtu, mac: link.mac)
                _ = try client.call(.addPort, AddPortParams(bridge: sw, port: spec, mayExist: true), as: OK.self)
                try made("node \(node.name): \(link.interface) attached to switch \(sw)") { [self] in
                    _ = try client.call(.deletePort, PortParams(bridge: sw, port: link.interface, ifExists: true), as: OK.self)
                }
            }
            try ensureAddresses(link.addresses, on: link.interface, in: node, nl)
        case .veth(let peerName, let peerAddresses, let peerInterface):
            guard let peer = topology.nodes.first(where: { $0.name == peerName }) else { throw LabError("no node \(peerName)") }
            let peerNL = try NetlinkSocket(namespace: peer.namespace)
            if try nl.link(named: link.interface) != nil {
                present("node \(node.name): veth \(link.interface) to \(peer.name)")
            } else {
                try nl.createVeth(name: link.interface, peer: peerInterface, peerNamespace: peer.namespace)
                try made("node \(node.name): veth \(link.interface) <-> \(peer.name):\(peerInterface)") {
                    try? nl.delete(link: link.interface)
                }
                if let mtu = link.mtu {
                    try nl.setMTU(link.interface, mtu)
                    try peerNL.setMTU(peerInterface, mtu)
                }
                if let mac = link.mac, let bytes = LinkInfo.parse(mac: mac) { try nl.setMAC(link.interface, bytes) }
            }
            try nl.setUp(link.interface, true)
            try peerNL.setUp(peerInterface, true)
            try ensureAddresses(link.addresses, on: link.interface, in: node, nl)
            try ensureAddresses(peerAddresses, on: peerInterface, in: peer, peerNL)
        }
        if case .switchPort(let sw) = link.kind, let vlan = link.vlan {
            _ = try client.call(.setPort, SetPortParams(bridge: sw, port: link.interface, settings: { var s = PortSettings(); s.tag = UInt16(vlan); return s }()), as: OK.self)
        }
        guard let imp = link.impairment else { return }
        switch link.kind {
        case .switchPort(let sw):
            // vswitchd impairs what the switch sends into the node: works on any kernel.
            var settings = PortSettings()
            settings.delayMicroseconds = imp.delayMicroseconds
            settings.jitterMicroseconds = imp.jitterMicroseconds
            settings.lossPPM = imp.lossPercent.map { UInt32(($0 * 10_000).rounded()) }
            settings.rateBytesPerSecond = imp.rateBytesPerSecond
            _ = try client.call(.setPort, SetPortParams(bridge: sw, port: link.interface, settings: settings), as: OK.self)
        case .veth:
            // A veth has no switch in between: the kernel's qdiscs (netem, tbf) on the node's end.
            try nl.setImpairment(QdiscImpairment(delayMicroseconds: imp.delayMicroseconds, jitterMicroseconds: imp.jitterMicroseconds,
                                            lossPercent: imp.lossPercent, rateBytesPerSecond: imp.rateBytesPerSecond), on: link.interface)
        }
    }

    private func ensureAddresses(_ addresses: [String], on interface: String, in node: LabNode, _ nl: NetlinkSocket) throws {
        guard !addresses.isEmpty else { return }
        let existing = Set(try nl.addresses(of: interface).map { CIDR.normalized($0.cidr) })
        for a in addresses {
            if existing.contains(CIDR.normalized(a)) { present("node \(node.name): \(a) on \(interface)"); continue }
            try nl.addAddress(a, to: interface, skipDAD: true)
            try made("node \(node.name): \(a) on \(interface)") { try? nl.deleteAddress(a, from: interface) }
        }
    }

    private func ensureRoute(_ route: LabRoute, of node: LabNode) throws {
        let nl = try NetlinkSocket(namespace: node.namespace)
        let destination = route.destination
        let wanted = CIDR.normalized(destination == "default" ? (route.gateway?.contains(":") == true ? "::/0" : "0.0.0.0/0") : destination)
        let exists = try nl.routes().contains { r in
            CIDR.normalized(r.destination == "default" ? (r.family == .ipv6 ? "::/0" : "0.0.0.0/0") : r.destination) == wanted
        }
        let what = "node \(node.name): route \(destination)\(route.gateway.map { " via \($0)" } ?? "")\(route.device.map { " dev \($0)" } ?? "")"
        if exists { present(what); return }
        try nl.addRoute(destination: destination, gateway: route.gateway, device: route.device)
        try made(what) { try? nl.deleteRoute(destination: destination, gateway: route.gateway, device: route.device) }
    }

    // MARK: - down

    /// Removes the lab's switches, its own vswitchd and its nodes' namespaces; nothing else.
    public func down() throws {
        var removed = 0
        switch topology.daemon {
        case .own:
            if let pid = ownDaemonPID() {
                stopOwnDaemon()
                say("\(labPrefix): stopped vswitchd (pid \(pid))")
                removed += 1
            }
        case .shared:
            if let bridges = try? client.call(.listBridges, EmptyParams(), as: BridgeList.self).bridges {
                for sw in topology.switches where bridges.contains(sw.name) {
                    _ = try client.call(.deleteBridge, BridgeParams(bridge: sw.name, ifExists: true), as: OK.self)
                    say("\(labPrefix): switch \(sw.name): deleted")
                    removed += 1
                }
            }
        }
        for node in topology.nodes where NetworkNamespace.exists(node.namespace) {
            try NetworkNamespace.delete(node.namespace)
            say("\(labPrefix): node \(node.name): deleted namespace \(node.namespace)")
            removed += 1
        }
        say("\(labPrefix): down (\(removed) removed)")
    }

    func ownDaemonPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: ownPidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0 else { return nil }
        // Only a vswitchd: never signal a recycled pid that now belongs to something else.
        let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return comm == "vswitchd" ? pid : nil
    }

    private func stopOwnDaemon() {
        if let pid = ownDaemonPID() { stopDaemon(pid: pid) }
        for path in [ownPidFile, ownSocket, ownLog] { unlink(path) }
        try? FileManager.default.removeItem(atPath: ownStateDirectory)
    }

    private func stopDaemon(pid: pid_t) {
        kill(pid, SIGTERM)
        for _ in 0..<200 {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid || kill(pid, 0) != 0 { return }
            usleep(25_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}

/// Canonical text of an address with prefix, so "2001:2:0::1/64" and "2001:2::1/64" compare equal.
enum CIDR {
    static func normalized(_ cidr: String) -> String {
        let parts = cidr.split(separator: "/", maxSplits: 1).map(String.init)
        guard let address = parts.first else { return cidr }
        let prefix = parts.count > 1 ? parts[1] : (address.contains(":") ? "128" : "32")
        let family = address.contains(":") ? AF_INET6 : AF_INET
        var buffer = [UInt8](repeating: 0, count: 16)
        guard inet_pton(family, address, &buffer) == 1 else { return cidr }
        var text = [CChar](repeating: 0, count: 64)
        guard inet_ntop(family, buffer, &text, socklen_t(text.count)) != nil else { return cidr }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } + "/" + prefix
    }
}
