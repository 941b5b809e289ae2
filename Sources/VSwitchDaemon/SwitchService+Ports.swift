import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchWire
import VSwitchPorts

/// Ports: `add-port`, `del-port`, `list-ports`, and opening a port (through the factory) and
/// attaching it, configured, to its switch's data plane.
extension SwitchService {
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
}
