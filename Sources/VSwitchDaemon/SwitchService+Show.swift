import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchWire

/// Reads: `show` and `stats`.
extension SwitchService {
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
}
