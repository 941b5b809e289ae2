// VSwitchDaemon: vswitchd's services: the switch registry behind the control socket, the state
// store, and the control server.
//
// Threading rule: `SwitchService` is confined to one serial dispatch queue (the control queue).
// Requests from every connection run there one at a time, so a request sees the registry as the
// previous one left it, and may block (netlink, TAP creation, fsync, a data-plane round trip)
// without another request interleaving. The data planes are reached only through
// `DataPlane.perform`, which runs a closure on the data-plane thread between batches.
//
// Every change follows one shape: validate, do it (undoing the steps done so far if a later one
// fails), persist, reply. A change that cannot be persisted is undone and reported.
import Foundation
import Logging
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchPorts
import VSwitchWire

public final class SwitchService: @unchecked Sendable {
    final class ManagedPort {
        var spec: PortSpec
        var device: (any DevicePort)?
        var number: PortNumber?
        var status: String
        var created: Bool
        init(spec: PortSpec, device: (any DevicePort)?, number: PortNumber?, status: String, created: Bool) {
            self.spec = spec; self.device = device; self.number = number; self.status = status; self.created = created
        }
    }

    final class ManagedBridge {
        let name: String
        var settings: BridgeSettings
        let dataPlane: DataPlane
        var ports: [ManagedPort] = []
        var staticFdb: [DaemonState.StaticEntry] = []
        init(name: String, settings: BridgeSettings, dataPlane: DataPlane) {
            self.name = name; self.settings = settings; self.dataPlane = dataPlane
        }
    }

    let store: StateStore
    let logger: Logger
    var bridges: [String: ManagedBridge] = [:]
    var captures: [Int: Capture] = [:]
    /// NICs joined with `bridge-nic` (SwitchService+BridgeNIC).
    var bridgedNICs: [BridgedNIC] = []
    /// Tunnel ports' oversize drops last logged, and when (rate limit).
    var oversizeLog: [String: (UInt64, Date)] = [:]
    var nextCaptureID = 0
    /// The control queue this service is confined to (for timers); set by the daemon.
    public var queue: DispatchQueue?

    /// Opens ports: the only code that knows their kinds.
    let factory: any PortFactory

    public init(store: StateStore, logger: Logger, factory: any PortFactory = SystemPortFactory()) {
        self.store = store
        self.logger = logger
        self.factory = factory
    }

    // MARK: - Life cycle

    /// Rebuilds the switches and ports of the saved state. A port that cannot be opened again
    /// (its namespace is gone, say) stays configured, marked with the reason, and is logged.
    public func restore() {
        let state = store.load(logger: logger)
        // A state file from before the spanning tree has no bridge addresses: the ones chosen now
        // are saved at once, so the bridge identifiers stay the same from this start on.
        let addressesChosen = state.bridges.contains { $0.settings.stpAddress == nil }
        var specsUpgraded = false
        defer { if addressesChosen || specsUpgraded { try? commit(undo: nil) } }
        for b in state.bridges {
            do {
                let bridge = try makeBridge(b.name, settings: b.settings)
                for saved in b.ports {
                    // A spec saved by an older vswitchd: opened as this one reads it, or kept
                    // configured, refused, with the reason (the factory knows which).
                    let spec: PortSpec
                    do { spec = try factory.upgrade(saved) } catch {
                        logger.error("cannot restore port \(saved.name) on \(b.name): \(error)")
                        bridge.ports.append(ManagedPort(spec: saved, device: nil, number: nil, status: "error: \(error)", created: false))
                        continue
                    }
                    if spec != saved { specsUpgraded = true }
                    do {
                        bridge.ports.append(try openPort(spec, on: bridge))
                    } catch {
                        logger.error("cannot restore port \(spec.name) on \(b.name): \(error)")
                        bridge.ports.append(ManagedPort(spec: spec, device: nil, number: nil, status: "error: \(error)", created: false))
                    }
                }
                for e in b.staticFdb {
                    if (try? addStatic(e, on: bridge)) != nil { bridge.staticFdb.append(e) }
                }
                logger.info("restored bridge \(b.name) with \(bridge.ports.count) port(s)")
            } catch {
                logger.error("cannot restore bridge \(b.name): \(error)")
            }
        }
        // NICs bridged when the daemon last stopped: put each back as it was (after a crash its
        // addresses went with the internal port), then bridge it again.
        for saved in state.bridgedNICs ?? [] {
            restoreNIC(saved, on: bridges[saved.bridge])
            do {
                _ = try bridgeNIC(BridgeNICParams(bridge: saved.bridge, nic: saved.nic, netns: saved.netns))
            } catch {
                logger.error("cannot bridge \(saved.nic) to \(saved.bridge) again: \(error)")
            }
        }
    }

    /// Stops every data plane and closes every port (removing the TAPs vswitchd created).
    public func shutdown() {
        // Bridged NICs get their addresses and routes back; the state keeps them, so the next
        // start bridges them again.
        for saved in bridgedNICs.reversed() { restoreNIC(saved, on: bridges[saved.bridge]) }
        for name in bridges.keys.sorted() { tearDown(bridges[name]!) }
        bridges.removeAll()
    }

    // MARK: - Requests

    func addBridge(_ p: BridgeParams) throws -> OK {
        try validateName(p.bridge, what: "bridge")
        if bridges[p.bridge] != nil {
            if p.mayExist == true { return OK() }
            throw fail("bridge \(p.bridge) already exists")
        }
        let bridge = try makeBridge(p.bridge, settings: BridgeSettings())
        try commit { self.tearDown(bridge); self.bridges[p.bridge] = nil }
        logger.info("added bridge \(p.bridge)")
        return OK()
    }

    func deleteBridge(_ p: BridgeParams) throws -> OK {
        guard let bridge = bridges[p.bridge] else {
            if p.ifExists == true { return OK() }
            throw noBridge(p.bridge)
        }
        for saved in bridgedNICs.reversed() where saved.bridge == p.bridge { restoreNIC(saved, on: bridge) }
        bridgedNICs.removeAll { $0.bridge == p.bridge }
        tearDown(bridge)
        bridges[p.bridge] = nil
        try commit(undo: nil)
        logger.info("deleted bridge \(p.bridge)")
        return OK()
    }

    func listBridges() -> BridgeList { BridgeList(bridges: bridges.keys.sorted()) }

    func addPort(_ p: AddPortParams) throws -> OK {
        let bridge = try lookup(p.bridge)
        try validateName(p.port.name, what: "port", maxLength: 15)
        if bridge.ports.contains(where: { $0.spec.name == p.port.name }) {
            if p.mayExist == true { return OK() }
            throw fail("port \(p.port.name) already exists on bridge \(p.bridge)")
        }
        if let other = bridges.values.first(where: { b in b.ports.contains { $0.spec.name == p.port.name } }) {
            throw fail("port \(p.port.name) already exists on bridge \(other.name)")
        }
        let spec = try factory.validate(p.port)
        let port = try openPort(spec, on: bridge)
        bridge.ports.append(port)
        try commit {
            bridge.ports.removeAll { $0 === port }
            self.closePort(port, on: bridge)
        }
        logger.info("added port \(spec.name) (\(spec.type)\(spec.netns.map { ", netns \($0)" } ?? "")) to \(p.bridge)")
        return OK()
    }

    func deletePort(_ p: PortParams) throws -> OK {
        let bridge = try lookup(p.bridge)
        guard let name = p.port else { throw invalidParams("missing port") }
        guard let port = bridge.ports.first(where: { $0.spec.name == name }) else {
            if p.ifExists == true { return OK() }
            throw fail("no port \(name) on bridge \(p.bridge)")
        }
        if isBridgedNICPort(port.spec, of: p.bridge) {
            throw fail("port \(name) was made by bridge-nic: use unbridge-nic")
        }
        closePort(port, on: bridge)
        bridge.ports.removeAll { $0 === port }
        bridge.staticFdb.removeAll { $0.port == name }
        try commit(undo: nil)
        logger.info("deleted port \(name) from \(p.bridge)")
        return OK()
    }

    func listPorts(_ p: BridgeParams) throws -> PortList {
        PortList(ports: try lookup(p.bridge).ports.map(\.spec.name))
    }

    func show() -> ShowResult {
        ShowResult(bridges: bridges.keys.sorted().map { name in
            let b = bridges[name]!
            let fdbSize = b.dataPlane.perform { $0.switching.table.count }
            return BridgeInfo(name: name, settings: b.settings, ports: b.ports.map { p in
                PortInfo(name: p.spec.name, type: p.spec.type, netns: p.spec.netns, addr: p.spec.addr, mtu: p.spec.mtu,
                         mac: p.spec.mac, created: p.created, status: p.status, settings: p.spec.settings?.dictionary, peers: p.spec.peers,
                         tunnel: tunnelInfo(p, on: b))
            }, fdbSize: fdbSize)
        })
    }

    func fdbShow(_ p: BridgeParams) throws -> FDBShowResult {
        let bridge = try lookup(p.bridge)
        let snapshot = bridge.dataPlane.perform { dp -> Handover<([(MACTable.Entry, String, Bool)], UInt32, [UInt64])> in
            let sw = dp.switching
            let now = LearningSwitch.seconds(dp.clock())
            let t = sw.table
            let rows = t.entries.map { e in (e, sw.port(e.portNumber)?.name ?? "?", t.isFlapping(MACTable.key(mac: e.mac, vlan: e.vlan), now: now)) }
            return Handover((rows, now, [t.learned, t.moved, t.aged, t.learnRefused, t.flapping]))
        }.value
        let (rows, now, stats) = snapshot
        let entries = rows.map { e, port, moving in
            FDBEntry(port: port, vlan: Int(e.vlan), mac: MACAddress(rawValue: e.mac).description,
                     age: e.isStaticEntry ? 0 : Int(now &- e.lastSeenSeconds), static: e.isStaticEntry, moving: moving)
        }.sorted { ($0.port, $0.vlan, $0.mac) < ($1.port, $1.vlan, $1.mac) }
        return FDBShowResult(bridge: p.bridge, entries: entries, learned: stats[0], moved: stats[1], aged: stats[2], learnRefused: stats[3],
                             flapping: stats[4])
    }

    func fdbFlush(_ p: PortParams) throws -> OK {
        let bridge = try lookup(p.bridge)
        var number: PortNumber? = nil
        if let name = p.port {
            guard let port = bridge.ports.first(where: { $0.spec.name == name }) else { throw fail("no port \(name) on bridge \(p.bridge)") }
            guard let n = port.number else { return OK() }
            number = n
        }
        let target = number
        _ = bridge.dataPlane.perform { $0.switching.table.flush(port: target) }
        return OK()
    }

    func fdbAdd(_ p: FDBEntryParams) throws -> OK {
        let bridge = try lookup(p.bridge)
        guard let portName = p.port else { throw invalidParams("missing port") }
        let entry = DaemonState.StaticEntry(mac: try parseMAC(p.mac).description, vlan: try parseVLAN(p.vlan), port: portName)
        try addStatic(entry, on: bridge)
        let previous = bridge.staticFdb
        bridge.staticFdb.removeAll { $0.mac == entry.mac && $0.vlan == entry.vlan }
        bridge.staticFdb.append(entry)
        try commit {
            bridge.staticFdb = previous
            _ = try? self.removeStatic(mac: entry.mac, vlan: entry.vlan, on: bridge)
        }
        return OK()
    }

    func fdbDelete(_ p: FDBEntryParams) throws -> OK {
        let bridge = try lookup(p.bridge)
        let mac = try parseMAC(p.mac).description
        let vlan = try parseVLAN(p.vlan)
        guard try removeStatic(mac: mac, vlan: vlan, on: bridge) else {
            throw fail("no entry for \(mac)\(vlan == 0 ? "" : " vlan \(vlan)") on bridge \(p.bridge)")
        }
        bridge.staticFdb.removeAll { $0.mac == mac && $0.vlan == vlan }
        try commit(undo: nil)
        return OK()
    }

    func stats(_ p: PortParams) throws -> StatsResult {
        let bridge = try lookup(p.bridge)
        var ports = bridge.ports
        if let name = p.port {
            ports = ports.filter { $0.spec.name == name }
            if ports.isEmpty { throw fail("no port \(name) on bridge \(p.bridge)") }
        }
        let numbers = ports.map(\.number)
        let counters = bridge.dataPlane.perform { dp in
            Handover(numbers.map { n in n.flatMap { dp.switching.counters($0) } ?? PortCounters() })
        }.value
        return StatsResult(bridge: p.bridge, ports: zip(ports, counters).map { port, c in
            PortStats(port: port.spec.name, rxPackets: c.rxPackets, rxBytes: c.rxBytes, rxDrops: c.rxDrops, rxErrors: c.rxErrors,
                      txPackets: c.txPackets, txBytes: c.txBytes, txDrops: c.txDrops, txErrors: c.txErrors,
                      drops: Dictionary(uniqueKeysWithValues: DropReason.allCases.map { ($0.name, c.drops($0)) }))
        })
    }

    func set(_ p: SetParams) throws -> OK {
        let bridge = try lookup(p.bridge)
        var s = bridge.settings
        for (key, value) in p.settings.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "ageing-time", "aging-time":
                guard let v = Int(value), (1...1_000_000).contains(v) else { throw fail("invalid ageing-time \(value) (seconds, 1-1000000)") }
                s.ageingTime = v
            case "max-macs":
                guard let v = Int(value), (1...16_777_216).contains(v) else { throw fail("invalid max-macs \(value) (1-16777216)") }
                s.maxMacs = v
            case "flood-unknown":
                guard let v = parseSwitch(value) else { throw fail("invalid flood-unknown \(value) (on or off)") }
                s.floodUnknown = v
            default:
                if try setSpanningTree(key, value, in: &s) { continue }
                throw fail("unknown setting \(key) (known: ageing-time, max-macs, flood-unknown, \(Self.spanningTreeKeys.joined(separator: ", ")))")
            }
        }
        try checkSpanningTreeTimes(s)
        let previous = bridge.settings
        apply(s, to: bridge)
        try commit { self.apply(previous, to: bridge) }
        logger.info("bridge \(p.bridge): ageing-time=\(s.ageingTime) max-macs=\(s.maxMacs) flood-unknown=\(s.floodUnknown ? "on" : "off")\(spanningTreeSummary(s))")
        return OK()
    }

    func setPort(_ p: SetPortParams) throws -> OK {
        let bridge = try lookup(p.bridge)
        guard let port = bridge.ports.first(where: { $0.spec.name == p.port }) else { throw fail("no port \(p.port) on bridge \(p.bridge)") }
        let previous = port.spec.settings
        let merged = (previous ?? PortSettings()).merging(p.settings)
        let behaviour = try Self.behaviour(from: merged)
        port.spec.settings = merged.isEmpty ? nil : merged
        do { try applySettings(of: port, on: bridge, behaviour) } catch {
            port.spec.settings = previous
            _ = try? applySettings(of: port, on: bridge, Self.behaviour(from: previous ?? PortSettings()))
            throw error
        }
        try commit {
            port.spec.settings = previous
            _ = try? self.applySettings(of: port, on: bridge, Self.behaviour(from: previous ?? PortSettings()))
        }
        logger.info("port \(p.port) on \(p.bridge): \(merged)")
        return OK()
    }

    /// What a port's settings mean to the core: its impairment, switch options, limits, 802.1Q
    /// and spanning-tree parameters.
    struct PortBehaviour: Equatable {
        var impairment = Impairment()
        var options: LearningSwitch.PortOptions = []
        /// Most MACs learned on the port; 0 for no limit beyond the switch's.
        var maxMACs = 0
        /// Flooded frames per second accepted from the port; 0 for no limit.
        var broadcastLimit: UInt64 = 0
        /// 802.1Q: the mode, the access or native VLAN, a trunk's VLANs.
        var vlanMode: VLANMode = .none
        var vlanTag: UInt16 = 0
        var trunks: [UInt16] = []
        /// Spanning-tree port parameters (used while `stp=on`).
        var stp = SpanningTree.PortParameters()
    }

    /// The one mapping from a port's settings (checked here: the rules between keys) to core values.
    static func behaviour(from s: PortSettings) throws -> PortBehaviour {
        do { try s.validate() } catch { throw JSONRPC.ErrorObject(code: .failed, message: error.description) }
        var b = PortBehaviour()
        b.impairment.delayNanoseconds = UInt64(s.delayMicroseconds ?? 0) * 1000
        b.impairment.jitterNanoseconds = UInt64(s.jitterMicroseconds ?? 0) * 1000
        b.impairment.lossPPM = s.lossPPM ?? 0
        b.impairment.rateBytesPerSecond = s.rateBytesPerSecond ?? 0
        if s.learning == false { b.options.insert(.noLearning) }
        if s.isolated == true { b.options.insert(.isolated) }
        b.maxMACs = s.maxMACs ?? 0
        b.broadcastLimit = s.broadcastLimit ?? 0
        switch s.effectiveVLANMode {
        case .access: b.vlanMode = .access
        case .trunk: b.vlanMode = .trunk
        case .none: b.vlanMode = .none
        }
        b.vlanTag = s.tag ?? 0
        b.trunks = s.trunks ?? []
        if let cost = s.stpCost { b.stp.pathCost = cost }
        if let priority = s.stpPortPriority { b.stp.priority = priority }
        switch s.stpEdge {
        case .auto: b.stp.adminEdge = false; b.stp.autoEdge = true
        case .on: b.stp.adminEdge = true; b.stp.autoEdge = true
        case .off: b.stp.adminEdge = false; b.stp.autoEdge = false
        case nil: break
        }
        return b
    }

    func applySettings(of port: ManagedPort, on bridge: ManagedBridge, _ behaviour: PortBehaviour) throws {
        guard let n = port.number else { return }
        let impairment = behaviour.impairment, options = behaviour.options, maxMACs = behaviour.maxMACs
        let broadcastLimit = behaviour.broadcastLimit
        let vlan = (behaviour.vlanMode, behaviour.vlanTag, behaviour.trunks)
        var stp = behaviour.stp
        // A multipoint tunnel is a shared segment: no proposal/agreement handshake on it.
        if (port.device as? any TunnelPort)?.isMultipoint == true { stp.pointToPoint = false }
        let stpParameters = stp
        let applied = bridge.dataPlane.perform { dp -> Bool in
            dp.switching.setSpanningTreeParameters(stpParameters, for: n)
            dp.switching.setVLAN(vlan.0, tag: vlan.1, members: vlan.2, for: n)
            dp.switching.setOptions(options, for: n)
            dp.switching.setFloodLimit(broadcastLimit, for: n)
            dp.switching.table.setLimit(maxMACs, for: n)
            guard let p = dp.switching.port(n) as? any ImpairablePort else { return false }
            p.impairment = impairment
            dp.retime(n)
            return true
        }
        if !applied && !impairment.isNone { throw fail("port \(port.spec.name) cannot be impaired") }
    }

    /// Logs MACs flagged as moving back and forth, once each (every 2 s, on the control queue).
    public func startMoveLogging() {
        queue?.asyncAfter(deadline: .now() + 2) { [weak self] in
            guard let self else { return }
            for name in self.bridges.keys.sorted() {
                let events = self.bridges[name]!.dataPlane.perform { dp -> Handover<[(MoveEvent, String, String)]> in
                    let sw = dp.switching
                    return Handover(sw.table.takeMoveEvents().map { ($0, sw.port($0.from)?.name ?? "?", sw.port($0.to)?.name ?? "?") })
                }.value
                for (e, from, to) in events {
                    self.logger.warning("bridge \(name): MAC \(MACAddress(rawValue: e.mac)) vlan \(e.vlan) is moving between ports \(from) and \(to) (\(e.moves) moves within \(MoveTracker.window) s): a loop, or two hosts with one MAC?")
                }
            }
            self.logOversizeTunnelFrames()
            self.logSpanningTreeEvents()
            self.startMoveLogging()
        }
    }

    // MARK: - Helpers

    private func makeBridge(_ name: String, settings given: BridgeSettings) throws -> ManagedBridge {
        var settings = given
        if settings.stpAddress.flatMap(MACAddress.init) == nil { settings.stpAddress = Self.randomBridgeAddress().description }
        let dp: DataPlane
        do { dp = try DataPlane(name: name, settings: Self.coreSettings(settings)) } catch { throw fail("cannot create bridge \(name): \(error)") }
        do { try dp.start() } catch { throw fail("cannot start bridge \(name): \(error)") }
        let bridge = ManagedBridge(name: name, settings: settings, dataPlane: dp)
        bridges[name] = bridge
        applySpanningTree(settings, to: bridge)
        return bridge
    }

    func openPort(_ spec: PortSpec, on bridge: ManagedBridge) throws -> ManagedPort {
        let tap = try factory.open(spec)
        // Not yet attached: the control plane may still configure it directly.
        if let ageing = tap as? any AgeingPort { ageing.ageingSeconds = UInt32(bridge.settings.ageingTime) }
        let handover = Handover<any VSwitchCore.Port>(tap)
        let number: PortNumber?
        do { number = try bridge.dataPlane.perform { dp in Result { try dp.attach(handover.value) } }.get() } catch {
            tap.close()
            throw fail("cannot attach \(spec.name): \(error)")
        }
        guard let number else {
            tap.close()
            throw fail("bridge \(bridge.name) is full (\(LearningSwitch.maxPorts) ports)")
        }
        let port = ManagedPort(spec: spec, device: tap, number: number, status: "up", created: tap.created)
        do { try applySettings(of: port, on: bridge, Self.behaviour(from: spec.settings ?? PortSettings())) } catch {
            closePort(port, on: bridge)
            throw error
        }
        return port
    }

    func closePort(_ port: ManagedPort, on bridge: ManagedBridge) {
        if let n = port.number { bridge.dataPlane.perform { _ = $0.detach(n) } }
        port.number = nil
        port.device?.close()
        port.device = nil
    }

    private func tearDown(_ bridge: ManagedBridge) {
        bridge.dataPlane.stop()
        for p in bridge.ports { closePort(p, on: bridge) }
    }

    private func apply(_ s: BridgeSettings, to bridge: ManagedBridge) {
        bridge.settings = s
        let core = Self.coreSettings(s)
        let ageing = UInt32(s.ageingTime)
        let tunnels = Handover(bridge.ports.compactMap { $0.device as? any AgeingPort })
        bridge.dataPlane.perform { dp in
            dp.switching.apply(core)
            // A tunnel forgets which remote a MAC is behind as the switch forgets the MAC.
            for t in tunnels.value { t.ageingSeconds = ageing }
        }
        applySpanningTree(s, to: bridge)
    }

    static func coreSettings(_ s: BridgeSettings) -> LearningSwitch.Settings {
        var c = LearningSwitch.Settings()
        c.ageingTime = UInt32(s.ageingTime)
        c.maxMACs = s.maxMacs
        c.floodUnknown = s.floodUnknown
        return c
    }

    private func addStatic(_ e: DaemonState.StaticEntry, on bridge: ManagedBridge) throws {
        guard let port = bridge.ports.first(where: { $0.spec.name == e.port }) else { throw fail("no port \(e.port) on bridge \(bridge.name)") }
        guard let n = port.number else { throw fail("port \(e.port) is not attached (\(port.status))") }
        let key = MACTable.key(mac: MACAddress(e.mac)!.rawValue, vlan: UInt16(e.vlan))
        guard bridge.dataPlane.perform({ $0.switching.table.addStatic(key, port: n) }) else {
            throw fail("the MAC table of \(bridge.name) is full (max-macs \(bridge.settings.maxMacs))")
        }
    }

    private func removeStatic(mac: String, vlan: Int, on bridge: ManagedBridge) throws -> Bool {
        let key = MACTable.key(mac: MACAddress(mac)!.rawValue, vlan: UInt16(vlan))
        return bridge.dataPlane.perform { $0.switching.table.remove(key) }
    }

    /// Persists the registry; if that fails, runs `undo` and reports the failure.
    func commit(undo: (() -> Void)?) throws {
        do { try store.save(snapshot()) } catch {
            undo?()
            logger.error("cannot save state: \(error)")
            throw fail("cannot save state: \(error)")
        }
    }

    func snapshot() -> DaemonState {
        var s = DaemonState()
        s.bridges = bridges.keys.sorted().map { name in
            let b = bridges[name]!
            return .init(name: name, settings: b.settings, ports: b.ports.filter { !self.isBridgedNICPort($0.spec, of: name) }.map(\.spec),
                         staticFdb: b.staticFdb)
        }
        s.bridgedNICs = bridgedNICs.isEmpty ? nil : bridgedNICs
        return s
    }

    /// Ports that `bridge-nic` made are not saved as ports: the bridged-NIC record re-creates them.
    private func isBridgedNICPort(_ spec: PortSpec, of bridge: String) -> Bool {
        bridgedNICs.contains { $0.bridge == bridge && $0.netns == spec.netns && ($0.nic == spec.name || ($0.createdInternalPort && $0.internalPort == spec.name)) }
    }

    func lookupBridge(_ name: String) throws -> ManagedBridge { try lookup(name) }

    func lookup(_ name: String) throws -> ManagedBridge {
        guard let b = bridges[name] else { throw noBridge(name) }
        return b
    }

    private func validateName(_ name: String, what: String, maxLength: Int = 64) throws {
        let ok = !name.isEmpty && name.utf8.count <= maxLength && name != "." && name != ".."
            && name.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 32 && $0 != "/" && $0 != ":" }
        guard ok else { throw fail("invalid \(what) name \"\(name)\" (1-\(maxLength) printable characters, no '/', ':' or spaces)") }
    }

    private func parseMAC(_ s: String) throws -> MACAddress {
        guard let m = MACAddress(s), !m.isMulticast, !m.isZero else { throw fail("invalid MAC \(s) (a unicast MAC like 02:00:00:00:00:01)") }
        return m
    }

    private func parseVLAN(_ v: Int?) throws -> Int {
        let vlan = v ?? 0
        guard (0...4094).contains(vlan) else { throw fail("invalid vlan \(vlan) (0-4094)") }
        return vlan
    }

    private func parseSwitch(_ s: String) -> Bool? {
        switch s.lowercased() { case "on", "true", "yes", "1": true; case "off", "false", "no", "0": false; default: nil }
    }

    func fail(_ message: String) -> JSONRPC.ErrorObject { .init(code: .failed, message: message) }
    func invalidParams(_ message: String) -> JSONRPC.ErrorObject { .init(code: .invalidParams, message: message) }
    func noBridge(_ name: String) -> JSONRPC.ErrorObject { fail("no bridge named \(name)") }
}
