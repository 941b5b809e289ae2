import Prometheus
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane

extension SwitchService {
    /// The Prometheus text exposition of every switch's counters (SPEC §3): per port rx/tx
    /// packets and bytes, drops by reason and errors; per switch the MAC table's size and its
    /// learned/aged/moved/refused counts. Built from one snapshot per switch, taken on its
    /// data-plane thread, into a fresh registry, so the values are exactly those `stats --json`
    /// and `fdb show --json` report at the same moment.
    public func metricsText() -> String {
        let registry = PrometheusCollectorRegistry()
        func counter(_ name: String, _ help: String, _ labels: [(String, String)], _ value: UInt64) {
            // "vswitch_port_rx_packets_total" = namespace "vswitch", name "port_rx_packets", unit "total".
            let base = String(name.dropFirst("vswitch_".count).dropLast("_total".count))
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "vswitch", metricName: base, unitName: "total", helpText: help),
                                 labels: labels)
                .increment(by: Int64(clamping: value))
        }
        for name in bridges.keys.sorted() {
            let bridge = bridges[name]!
            let numbered = bridge.ports.compactMap { p in p.number.map { ($0, p.spec.name) } }
            let numbers = numbered.map(\.0)
            let snapshot = bridge.dataPlane.perform { dp -> Handover<([PortCounters], [UInt64], SpanningTree.Status?)> in
                let sw = dp.switching
                let t = sw.table
                return Handover((numbers.map { sw.counters($0) ?? PortCounters() },
                                 [UInt64(t.count), t.learned, t.aged, t.moved, t.learnRefused, t.flapping], sw.spanningTreeStatus))
            }.value
            let b = [("bridge", name)]
            registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "vswitch", metricName: "fdb", unitName: "entries",
                                                                helpText: "Entries in the MAC table."), labels: b)
                .set(to: Double(snapshot.1[0]))
            counter("vswitch_fdb_learned_total", "MACs learned.", b, snapshot.1[1])
            counter("vswitch_fdb_aged_total", "MAC entries aged out.", b, snapshot.1[2])
            counter("vswitch_fdb_moved_total", "MACs seen moving to another port.", b, snapshot.1[3])
            counter("vswitch_fdb_learn_refused_total", "New MACs not learned because a limit was reached.", b, snapshot.1[4])
            counter("vswitch_fdb_flapping_total", "MACs flagged as moving back and forth between ports.", b, snapshot.1[5])
            if let stp = snapshot.2 {
                counter("vswitch_stp_topology_changes_total", "Spanning-tree topology changes detected or notified.", b, stp.topologyChanges)
                for (number, port) in numbered {
                    guard let p = stp.ports.first(where: { $0.number == number }) else { continue }
                    for state in [SpanningTree.ForwardingState.discarding, .learning, .forwarding] {
                        registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "vswitch", metricName: "stp_port_state",
                                                                            helpText: "1 for the port's spanning-tree state."),
                                           labels: [("bridge", name), ("port", port), ("state", state.name)])
                            .set(to: p.state == state ? 1 : 0)
                    }
                }
            }
            for ((_, port), c) in zip(numbered, snapshot.0) {
                let l = [("bridge", name), ("port", port)]
                counter("vswitch_port_rx_packets_total", "Frames received from the port.", l, c.rxPackets)
                counter("vswitch_port_rx_bytes_total", "Bytes received from the port.", l, c.rxBytes)
                counter("vswitch_port_tx_packets_total", "Frames sent out of the port.", l, c.txPackets)
                counter("vswitch_port_tx_bytes_total", "Bytes sent out of the port.", l, c.txBytes)
                counter("vswitch_port_rx_drops_total", "Received frames dropped.", l, c.rxDrops)
                counter("vswitch_port_tx_drops_total", "Frames the port could not take.", l, c.txDrops)
                counter("vswitch_port_rx_errors_total", "Failed reads.", l, c.rxErrors)
                counter("vswitch_port_tx_errors_total", "Failed writes.", l, c.txErrors)
                for reason in DropReason.allCases {
                    counter("vswitch_port_drops_total", "Dropped frames by reason.", l + [("reason", reason.name)], c.drops(reason))
                }
            }
        }
        return registry.emitToString()
    }
}
