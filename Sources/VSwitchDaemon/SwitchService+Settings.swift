import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchWire
import VSwitchPorts

/// Settings: `set` (the switch's) and `set-port` (a port's), and what they mean to the core:
/// `behaviour(from:)` is the one mapping from `PortSettings` to core values, `applySettings`
/// the one place they reach the data plane.
extension SwitchService {
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

    func apply(_ s: BridgeSettings, to bridge: ManagedBridge) {
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

    func parseSwitch(_ s: String) -> Bool? {
        switch s.lowercased() { case "on", "true", "yes", "1": true; case "off", "false", "no", "0": false; default: nil }
    }
}
