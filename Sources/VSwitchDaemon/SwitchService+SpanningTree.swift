import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchWire

/// `set BR stp=on ...`, `set-port ... stp-*` (in `behaviour(from:)`) and `stp show`.
extension SwitchService {
    static let spanningTreeKeys = ["stp", "stp-priority", "stp-hello-time", "stp-forward-delay", "stp-max-age"]

    /// Reads one spanning-tree key of `set`; false if `key` is not one.
    func setSpanningTree(_ key: String, _ value: String, in s: inout BridgeSettings) throws -> Bool {
        func number(_ range: ClosedRange<Int>, _ what: String) throws -> Int {
            guard let v = Int(value), range.contains(v) else { throw fail("invalid \(key) \(value) (\(what))") }
            return v
        }
        switch key {
        case "stp":
            guard let on = ValueSyntax.boolean(value) else { throw fail("invalid stp \(value) (on or off)") }
            s.stp = on
        case "stp-priority":
            let v = try number(0...61_440, "0-61440, in steps of 4096")
            guard v % 4096 == 0 else { throw fail("invalid stp-priority \(value) (0-61440, in steps of 4096)") }
            s.stpPriority = v
        case "stp-hello-time": s.stpHelloTime = try number(1...10, "seconds, 1-10")
        case "stp-forward-delay": s.stpForwardDelay = try number(4...30, "seconds, 4-30")
        case "stp-max-age": s.stpMaxAge = try number(6...40, "seconds, 6-40")
        default: return false
        }
        return true
    }

    static func spanningTreeParameters(_ s: BridgeSettings) -> SpanningTree.Parameters {
        var p = SpanningTree.Parameters()
        if let v = s.stpPriority { p.priority = UInt16(v) }
        if let v = s.stpHelloTime { p.helloTime = UInt16(v) }
        if let v = s.stpForwardDelay { p.forwardDelay = UInt16(v) }
        if let v = s.stpMaxAge { p.maxAge = UInt16(v) }
        return p
    }

    /// 802.1D 17.14: times that break 2 x (forward delay - 1) >= max age >= 2 x (hello + 1) would
    /// let information outlive the topology or die between hellos.
    func checkSpanningTreeTimes(_ s: BridgeSettings) throws {
        let p = Self.spanningTreeParameters(s)
        guard p.timesAreConsistent else {
            throw fail("stp-max-age \(p.maxAge) must be between 2 x (stp-hello-time + 1) = \(2 * (Int(p.helloTime) + 1)) and 2 x (stp-forward-delay - 1) = \(2 * (Int(p.forwardDelay) - 1)); set them together")
        }
    }

    func spanningTreeSummary(_ s: BridgeSettings) -> String {
        guard s.stp == true else { return " stp=off" }
        let p = Self.spanningTreeParameters(s)
        return " stp=on stp-priority=\(p.priority) stp-hello-time=\(p.helloTime) stp-forward-delay=\(p.forwardDelay) stp-max-age=\(p.maxAge)"
    }

    /// Starts, changes or stops the bridge's spanning tree to match its settings.
    func applySpanningTree(_ s: BridgeSettings, to bridge: ManagedBridge) {
        let on = s.stp == true
        let parameters = Self.spanningTreeParameters(s)
        let address = s.stpAddress.flatMap(MACAddress.init)?.rawValue ?? 0
        bridge.dataPlane.perform { dp in
            if on { dp.switching.startSpanningTree(parameters, address: address, now: dp.clock()) } else { dp.switching.stopSpanningTree() }
        }
    }

    /// Logs the ports' spanning-tree state changes since the last call, as the Linux bridge does
    /// ("port 2(veth0) entered forwarding state"), with the role that led there.
    func logSpanningTreeEvents() {
        for name in bridges.keys.sorted() {
            let bridge = bridges[name]!
            guard bridge.settings.stp == true else { continue }
            let events = bridge.dataPlane.perform { dp -> Handover<[(SpanningTreeEvent, String)]> in
                let sw = dp.switching
                return Handover(sw.takeSpanningTreeEvents().map { ($0, sw.port($0.port)?.name ?? "?") })
            }.value
            for (e, port) in events {
                logger.info("bridge \(name): port \(port) is \(e.state.name) (\(e.role.name))")
            }
        }
    }

    /// A locally administered unicast MAC for the bridge identifier.
    static func randomBridgeAddress() -> MACAddress {
        var raw = UInt64.random(in: 0...0xFFFF_FFFF_FFFF)
        raw = (raw & ~0x0100_0000_0000) | 0x0200_0000_0000
        return MACAddress(rawValue: raw)
    }

    func stpShow(_ p: BridgeParams) throws -> STPShowResult {
        let bridge = try lookup(p.bridge)
        let snapshot = bridge.dataPlane.perform { dp -> Handover<(SpanningTree.Status, [PortNumber: String])?> in
            guard let status = dp.switching.spanningTreeStatus else { return Handover(nil) }
            var names: [PortNumber: String] = [:]
            for n in dp.switching.attachedPorts { names[n] = dp.switching.port(n)?.name ?? "?" }
            return Handover((status, names))
        }.value
        guard let (s, names) = snapshot else { return STPShowResult(bridge: p.bridge, enabled: false) }
        func bridgeID(_ id: UInt64) -> String {
            String(format: "%04x.", Int(id >> 48)) + MACAddress(rawValue: id & 0xFFFF_FFFF_FFFF).description
        }
        func portID(_ id: UInt16) -> String { "\(Int(id >> 12) * 16).\(id & 0x0FFF)" }
        var r = STPShowResult(bridge: p.bridge, enabled: true)
        r.bridgeId = bridgeID(s.bridgeID)
        r.rootId = bridgeID(s.rootID)
        r.rootPathCost = s.rootPathCost
        r.rootPort = s.rootPort.flatMap { names[$0] }
        r.isRoot = s.rootPort == nil
        r.helloTime = Int(s.rootTimes.helloTime)
        r.forwardDelay = Int(s.rootTimes.forwardDelay)
        r.maxAge = Int(s.rootTimes.maxAge)
        r.topologyChanges = s.topologyChanges
        r.sinceTopologyChange = s.sinceTopologyChange
        r.ports = s.ports.map { q in
            STPPortInfo(port: names[q.number] ?? "?", id: portID(q.portID), role: q.enabled ? q.role.name : "disabled", state: q.state.name,
                        cost: q.parameters.pathCost, edge: q.edge, protocol: q.rstp ? "rstp" : "stp",
                        designatedBridge: q.designatedBridge == .max ? "-" : bridgeID(q.designatedBridge),
                        designatedPort: q.designatedPort == .max ? "-" : portID(q.designatedPort),
                        bpdusReceived: q.bpdusReceived, bpdusSent: q.bpdusSent, bpdusInvalid: q.bpdusInvalid)
        }.sorted { $0.port < $1.port }
        return r
    }
}
