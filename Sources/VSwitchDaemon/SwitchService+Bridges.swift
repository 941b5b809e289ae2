import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchWire

/// Switches: `add-br`, `del-br`, `list-br`, and making and stopping a switch's data plane.
extension SwitchService {
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

    func makeBridge(_ name: String, settings given: BridgeSettings) throws -> ManagedBridge {
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

    func tearDown(_ bridge: ManagedBridge) {
        bridge.dataPlane.stop()
        for p in bridge.ports { closePort(p, on: bridge) }
    }
}
