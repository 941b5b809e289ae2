import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchWire

/// The MAC table: `fdb show`, `fdb flush`, and static entries (`fdb add`, `fdb del`).
extension SwitchService {
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

    func addStatic(_ e: DaemonState.StaticEntry, on bridge: ManagedBridge) throws {
        guard let port = bridge.ports.first(where: { $0.spec.name == e.port }) else { throw fail("no port \(e.port) on bridge \(bridge.name)") }
        guard let n = port.number else { throw fail("port \(e.port) is not attached (\(port.status))") }
        let key = MACTable.key(mac: MACAddress(e.mac)!.rawValue, vlan: UInt16(e.vlan))
        guard bridge.dataPlane.perform({ $0.switching.table.addStatic(key, port: n) }) else {
            throw fail("the MAC table of \(bridge.name) is full (max-macs \(bridge.settings.maxMacs))")
        }
    }

    func removeStatic(mac: String, vlan: Int, on bridge: ManagedBridge) throws -> Bool {
        let key = MACTable.key(mac: MACAddress(mac)!.rawValue, vlan: UInt16(vlan))
        return bridge.dataPlane.perform { $0.switching.table.remove(key) }
    }

    func parseMAC(_ s: String) throws -> MACAddress {
        guard let m = MACAddress(s), !m.isMulticast, !m.isZero else { throw fail("invalid MAC \(s) (a unicast MAC like 02:00:00:00:00:01)") }
        return m
    }

    func parseVLAN(_ v: Int?) throws -> Int {
        let vlan = v ?? 0
        guard (0...4094).contains(vlan) else { throw fail("invalid vlan \(vlan) (0-4094)") }
        return vlan
    }
}
