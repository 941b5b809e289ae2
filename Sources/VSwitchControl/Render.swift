/// Human-readable output of the read commands: fixed-width tables with a header that is shown
/// even when there are no rows, and the tree of `show`. `--json` bypasses all of this.
public enum Render {
    /// Left-aligned columns separated by two spaces; numeric columns right-aligned.
    public static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return rightAligned.contains(i) ? pad + c : (i == cells.count - 1 ? c : c + pad)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
    }

    /// Like `ovs-vsctl show`: each switch, its settings and ports, indented.
    public static func show(_ result: ShowResult) -> String {
        var out = ""
        for b in result.bridges {
            out += "Bridge \(b.name)\n"
            out += "    ageing_time: \(b.settings.ageingTime)  max_macs: \(b.settings.maxMacs)  flood_unknown: \(b.settings.floodUnknown ? "on" : "off")  fdb_size: \(b.fdbSize)\n"
            if b.settings.stp == true { out += "    stp: on\n" }
            for p in b.ports {
                out += "    Port \(p.name)\n"
                out += "        type: \(p.type)\n"
                if let ns = p.netns { out += "        netns: \(ns)\n" }
                if let a = p.addr { out += "        addr: \(a)\n" }
                if let m = p.mtu { out += "        mtu: \(m)\n" }
                if let m = p.mac { out += "        mac: \(m)\n" }
                if let peers = p.peers { out += "        peers: \(peers.joined(separator: ", "))\n" }
                if let t = p.tunnel {
                    out += "        local: \(t.local)  vni: \(t.vni)  encap: \(t.encap)\(t.cipher.map { " (\($0))" } ?? "")"
                        + "\(t.datapath.map { "  datapath: \($0)" } ?? "")\n"
                    for r in t.remotes {
                        let traffic = r.rxPackets.map { rx in "  rx \(rx)  tx \(r.txPackets ?? 0)" } ?? ""
                        out += "        remote \(r.address): max inner frame \(r.maxInnerFrame) (host MTU <= \(r.maxInnerFrame - 14))\(traffic)\n"
                        out += secureRemote(r)
                    }
                } else if !p.created && p.type != "udp" {
                    out += "        existing device (kept on del-port)\n"
                }
                for (k, v) in (p.settings ?? [:]).sorted(by: { $0.key < $1.key }) { out += "        \(k): \(v)\n" }
                if p.status != "up" { out += "        status: \(p.status)\n" }
            }
        }
        return out
    }

    /// A secure remote's key and handshake, as `wg show` gives them: the public key, the endpoint
    /// if the remote roamed away from its configured address, and how long ago the latest
    /// handshake completed. Nothing for VXLAN remotes (no public key).
    static func secureRemote(_ r: RemoteInfo) -> String {
        guard let key = r.publicKey else { return "" }
        var out = "            public key: \(key)\n"
        if let endpoint = r.endpoint, endpoint != r.address { out += "            endpoint: \(endpoint)\n" }
        if let seconds = r.latestHandshake {
            out += "            latest handshake: \(Int(max(0, seconds))) s ago\n"
        } else {
            out += "            no handshake yet\n"
        }
        return out
    }

    /// Like `ovs-appctl rstp/show` and `brctl showstp`: the bridge, the root, then a port table.
    public static func stp(_ r: STPShowResult) -> String {
        guard r.enabled else { return "---- \(r.bridge) ----\nstp: off (set \(r.bridge) stp=on)\n" }
        var out = "---- \(r.bridge) ----\n"
        out += "Root ID:     \(r.rootId ?? "-")\n"
        if r.isRoot == true {
            out += "             This bridge is the root\n"
        } else {
            out += "             cost \(r.rootPathCost ?? 0), root port \(r.rootPort ?? "-")\n"
        }
        out += "Bridge ID:   \(r.bridgeId ?? "-")\n"
        out += "             hello \(r.helloTime ?? 0) s, max age \(r.maxAge ?? 0) s, forward delay \(r.forwardDelay ?? 0) s\n"
        let since = r.sinceTopologyChange.map { ", last \($0) s ago" } ?? ""
        out += "             topology changes \(r.topologyChanges ?? 0)\(since)\n\n"
        out += table(["Interface", "Role", "State", "Cost", "Pri.Nbr", "Edge", "Proto", "BPDUs rx", "BPDUs tx"], r.ports.map { p in
            [p.port, p.role, p.state, String(p.cost), p.id, p.edge ? "yes" : "no", p.protocol, String(p.bpdusReceived), String(p.bpdusSent)]
        }, rightAligned: [3, 7, 8])
        return out
    }

    /// Columns as `ovs-appctl fdb/show`, plus whether the entry is static.
    public static func fdb(_ result: FDBShowResult) -> String {
        let rows = result.entries.map { e in
            [e.port, String(e.vlan), e.mac, e.static ? "-" : String(e.age), (e.static ? "static" : "learned") + (e.moving ? ",moving" : "")]
        }
        return table(["port", "VLAN", "MAC", "Age", "Type"], rows, rightAligned: [1, 3])
    }

    public static func stats(_ result: StatsResult) -> String {
        let rows = result.ports.map { p in
            [p.port, String(p.rxPackets), String(p.rxBytes), String(p.rxDrops), String(p.rxErrors),
             String(p.txPackets), String(p.txBytes), String(p.txDrops), String(p.txErrors)]
        }
        return table(["port", "rx_packets", "rx_bytes", "rx_drops", "rx_errors", "tx_packets", "tx_bytes", "tx_drops", "tx_errors"],
                     rows, rightAligned: Set(1...8))
    }
}
