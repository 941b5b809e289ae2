import Foundation
import VSwitchControl
import VSwitchNetlink

/// What `lab status` reports: each node's interfaces and addresses, and whether each pair of
/// nodes that share a switch (or a veth) can reach each other (one ping, one second).
public struct LabStatus: Codable, Sendable {
    public struct Interface: Codable, Sendable {
        public var node: String
        public var namespace: String
        public var interface: String
        public var link: String
        public var addresses: [String]
        public var state: String
    }
    public struct Reachability: Codable, Sendable {
        public var from: String
        public var to: String
        public var address: String
        public var via: String
        public var reachable: Bool
    }
    public var lab: String
    public var daemon: String
    public var interfaces: [Interface]
    public var reachability: [Reachability]

    public var allReachable: Bool { reachability.allSatisfy(\.reachable) }

    public func render() -> String {
        var out = "lab \(lab): vswitchd \(daemon)\n\n"
        out += Render.table(["node", "namespace", "interface", "link", "addresses", "state"], interfaces.map {
            [$0.node, $0.namespace, $0.interface, $0.link, $0.addresses.isEmpty ? "-" : $0.addresses.joined(separator: ","), $0.state]
        })
        out += "\n"
        out += Render.table(["from", "to", "address", "via", "reachable"], reachability.map {
            [$0.from, $0.to, $0.address, $0.via, $0.reachable ? "yes" : "NO"]
        })
        return out
    }
}

extension LabBuilder {
    public func status() throws -> LabStatus {
        let daemonState: String
        switch topology.daemon {
        case .own:
            daemonState = ownDaemonPID().map { "running (pid \($0), socket \(ownSocket))" } ?? "not running"
        case .shared:
            daemonState = (try? client.call(.listBridges, EmptyParams(), as: BridgeList.self)) != nil
                ? "shared (socket \(socketPath))" : "shared, not reachable at \(socketPath)"
        }
        var interfaces: [LabStatus.Interface] = []
        var endpoints: [String: [(node: LabNode, address: String)]] = [:]  // segment -> nodes on it
        for node in topology.nodes {
            let present = NetworkNamespace.exists(node.namespace)
            let nl = present ? try? NetlinkSocket(namespace: node.namespace) : nil
            func info(_ name: String) -> (state: String, addresses: [String]) {
                guard let nl else { return ("no namespace", []) }
                guard let l = try? nl.link(named: name) else { return ("missing", []) }
                let addrs = (try? nl.addresses(of: name))?.map(\.cidr).filter { !$0.hasPrefix("fe80:") } ?? []
                return (l.isUp ? (l.isRunning ? "up" : "no-carrier") : "down", addrs)
            }
            for link in node.links {
                let (state, addrs) = info(link.interface)
                switch link.kind {
                case .switchPort(let sw):
                    interfaces.append(.init(node: node.name, namespace: node.namespace, interface: link.interface, link: "switch \(sw)", addresses: addrs, state: state))
                    if let a = link.addresses.first(where: { !$0.contains(":") }) { endpoints["switch \(sw)", default: []].append((node, a)) }
                case .veth(let peerName, let peerAddresses, _):
                    interfaces.append(.init(node: node.name, namespace: node.namespace, interface: link.interface, link: "veth \(peerName)", addresses: addrs, state: state))
                    let segment = "veth \(node.name)-\(peerName)"
                    if let a = link.addresses.first(where: { !$0.contains(":") }) { endpoints[segment, default: []].append((node, a)) }
                    if let peer = topology.nodes.first(where: { $0.name == peerName }), let a = peerAddresses.first(where: { !$0.contains(":") }) {
                        endpoints[segment, default: []].append((peer, a))
                    }
                }
            }
            for link in topology.nodes.flatMap({ n in n.links.compactMap { l -> (LabNode, LabLink)? in
                if case .veth(let p, _, _) = l.kind, p == node.name { return (n, l) } else { return nil } } }) {
                guard case .veth(_, let peerAddresses, let peerInterface) = link.1.kind else { continue }
                let (state, addrs) = info(peerInterface)
                _ = peerAddresses
                interfaces.append(.init(node: node.name, namespace: node.namespace, interface: peerInterface, link: "veth \(link.0.name)", addresses: addrs, state: state))
            }
        }
        var reach: [LabStatus.Reachability] = []
        for segment in endpoints.keys.sorted() {
            let members = endpoints[segment]!
            for a in members {
                for b in members where b.node.name != a.node.name {
                    let address = String(b.address.split(separator: "/")[0])
                    let ok = NetworkNamespace.exists(a.node.namespace)
                        && (try? LabProcess.run(["ping", "-n", "-q", "-c", "1", "-W", "1", address], inNamespace: a.node.namespace, quiet: true)) == 0
                    reach.append(.init(from: a.node.name, to: b.node.name, address: address, via: segment, reachable: ok))
                }
            }
        }
        return LabStatus(lab: topology.name, daemon: daemonState, interfaces: interfaces, reachability: reach)
    }

    /// Runs `command` inside `node`'s namespace with this terminal; returns its exit status.
    public func exec(node name: String, _ command: [String]) throws -> Int32 {
        guard let node = topology.nodes.first(where: { $0.name == name }) else {
            throw LabError("no node \(name) in lab \(topology.name) (nodes: \(topology.nodes.map(\.name).joined(separator: ", ")))")
        }
        guard NetworkNamespace.exists(node.namespace) else { throw LabError("lab \(topology.name) is not up: no namespace \(node.namespace)") }
        guard !command.isEmpty else { throw LabError("no command to run") }
        return try LabProcess.run(command, inNamespace: node.namespace)
    }
}
