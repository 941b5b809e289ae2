// The lab topology model: what a lab file describes once it is parsed and validated.
// Everything here is plain data; `LabTopology.load(path:)` and `parse(yaml:file:)` make it
// (LabTopology+Parse.swift), LabNames.swift derives every name, the builder (LabBuilder*.swift) acts on it.

/// A validated lab: switches in a vswitchd, nodes as network namespaces, links between them.
public struct LabTopology: Sendable, Equatable {
    /// The lab name: [a-z0-9-], 1-8 characters, starting with a letter. Prefixes every namespace and
    /// every derived interface name (see `LabNames`).
    public var name: String
    /// Which vswitchd holds the lab's switches.
    public var daemon: LabDaemon
    /// The switches, sorted by name.
    public var switches: [LabSwitch]
    /// The nodes, in file order.
    public var nodes: [LabNode]
    /// The file the lab was read from, as given to `load(path:)` or `parse(yaml:file:)`.
    public var file: String

    public init(name: String, daemon: LabDaemon = .own, switches: [LabSwitch], nodes: [LabNode], file: String) {
        self.name = name; self.daemon = daemon; self.switches = switches; self.nodes = nodes; self.file = file
    }

    /// The node named `name`.
    public func node(named name: String) -> LabNode? { nodes.first { $0.name == name } }

    /// The switch named `name`.
    public func switchNamed(_ name: String) -> LabSwitch? { switches.first { $0.name == name } }

    /// Every interface inside node `name`: the node's own link ends (in link order), then the peer ends
    /// of veth links declared by other nodes toward it (in file order).
    public func interfaces(of name: String) -> [String] {
        guard let node = node(named: name) else { return [] }
        var result = node.links.map(\.interface)
        for other in nodes where other.name != name {
            for link in other.links {
                if case .veth(let peer, _, let peerInterface) = link.kind, peer == name {
                    result.append(peerInterface)
                }
            }
        }
        return result
    }
}

/// Which vswitchd a lab uses.
public enum LabDaemon: Sendable, Equatable {
    /// The lab starts (and stops) its own vswitchd. The default.
    case own
    /// The lab uses a running vswitchd at `socket` (nil: VSWITCH_SOCKET or the default path).
    case shared(socket: String?)
}

/// A switch of the lab (`switches:`). Settings left out keep the daemon's defaults.
public struct LabSwitch: Sendable, Equatable {
    /// [a-z0-9-], 1-15 characters.
    public var name: String
    /// `ageing-time`: seconds, 1-1000000.
    public var ageingTime: Int?
    /// `max-macs`: 1-16777216.
    public var maxMacs: Int?
    /// `flood-unknown`: on/off (also true/false, yes/no).
    public var floodUnknown: Bool?

    public init(name: String, ageingTime: Int? = nil, maxMacs: Int? = nil, floodUnknown: Bool? = nil) {
        self.name = name; self.ageingTime = ageingTime; self.maxMacs = maxMacs; self.floodUnknown = floodUnknown
    }
}

/// A node of the lab: one network namespace.
public struct LabNode: Sendable, Equatable {
    /// [a-z0-9-], 1-8 characters, starting with a letter.
    public var name: String
    /// The network namespace: `LabNames.namespace(lab:node:)`, "<lab>-<node>".
    public var namespace: String
    /// The links this node declares, in file order. A veth link appears only on the node that declares
    /// it; its other end (in the peer node) is described by `LabLink.Kind.veth` (see
    /// `LabTopology.interfaces(of:)`).
    public var links: [LabLink]
    /// Routes, in file order.
    public var routes: [LabRoute]

    public init(name: String, namespace: String, links: [LabLink], routes: [LabRoute]) {
        self.name = name; self.namespace = namespace; self.links = links; self.routes = routes
    }
}

/// One interface of a node and what it connects to.
public struct LabLink: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A TAP port of switch `switch`, moved into the node. The port (in vswitchd) and the
        /// interface (in the node) have the same name: `LabLink.interface`.
        case switchPort(switch: String)
        /// A veth pair: this node's end is `LabLink.interface`; the other end, `peerInterface`, is in node
        /// `peerNode` with addresses `peerAddresses`.
        case veth(peerNode: String, peerAddresses: [String], peerInterface: String)
    }

    public var kind: Kind
    /// The interface name inside the node: `name:` or `LabNames.linkInterface(lab:node:index:)`.
    /// Unique across the whole lab, and also the vswitchd port name of a switch link.
    public var interface: String
    /// CIDRs ("198.18.0.1/24", "2001:2::1/64") as written in the file, in order.
    public var addresses: [String]
    /// 68-65521; for a veth pair, both ends.
    public var mtu: Int?
    /// A unicast MAC, lowercase "02:00:00:00:00:01"; this node's end only.
    public var mac: String?
    /// Delay, jitter, loss, rate on this interface's egress (this node's end only); nil: none.
    public var impairment: LabImpairment?
    /// `vlan:` 1-4094: a switch link is an access port of that VLAN; nil: no VLAN.
    public var vlan: Int?
    /// The line of the link in the file (for messages).
    public var line: Int

    public init(kind: Kind, interface: String, addresses: [String], mtu: Int? = nil, mac: String? = nil,
                impairment: LabImpairment? = nil, vlan: Int? = nil, line: Int) {
        self.kind = kind; self.interface = interface; self.addresses = addresses; self.mtu = mtu; self.mac = mac
        self.impairment = impairment; self.vlan = vlan; self.line = line
    }
}

/// netem/tbf-style impairments of one interface's egress. At least one field is set.
public struct LabImpairment: Sendable, Equatable {
    /// `delay:` (20ms, 500us, 1s).
    public var delayMicroseconds: UInt32?
    /// `jitter:`; only with a delay.
    public var jitterMicroseconds: UInt32?
    /// `loss:` 0-100 (10%, 0.5).
    public var lossPercent: Double?
    /// `rate:` in bytes per second (100mbit = 12500000; 1mbps = 1000000).
    public var rateBytesPerSecond: UInt64?

    public init(delayMicroseconds: UInt32? = nil, jitterMicroseconds: UInt32? = nil, lossPercent: Double? = nil,
                rateBytesPerSecond: UInt64? = nil) {
        self.delayMicroseconds = delayMicroseconds; self.jitterMicroseconds = jitterMicroseconds
        self.lossPercent = lossPercent; self.rateBytesPerSecond = rateBytesPerSecond
    }
}

/// A route in a node.
public struct LabRoute: Sendable, Equatable {
    /// "default" or a CIDR with no host bits set ("198.19.0.0/24", "2001:2:0:1::/64").
    public var destination: String
    /// `via:` a gateway address (no prefix length), of the destination's family.
    public var gateway: String?
    /// `dev:` an interface of the node (see `LabTopology.interfaces(of:)`).
    public var device: String?

    public init(destination: String, gateway: String? = nil, device: String? = nil) {
        self.destination = destination; self.gateway = gateway; self.device = device
    }
}
