// VSwitchControl: the control protocol between vswitchctl and vswitchd, and its rendering.
//
// The wire is newline-delimited JSON-RPC 2.0 over a Unix stream socket (Docs/control-protocol.md):
// one request object per line, one response object per line, in order. Method names are the
// vswitchctl command names ("add-br", "fdb-show", ...); params and results are the Codable types
// below, with snake_case keys, which are also what `vswitchctl --json` prints.
//
// This module knows no daemon internals (no NIO, no ports): vswitchctl links only this.
import Foundation

public enum ControlMethod: String, CaseIterable, Sendable {
    case addBridge = "add-br"
    case deleteBridge = "del-br"
    case listBridges = "list-br"
    case addPort = "add-port"
    case deletePort = "del-port"
    case listPorts = "list-ports"
    case show = "show"
    case fdbShow = "fdb-show"
    case fdbFlush = "fdb-flush"
    case fdbAdd = "fdb-add"
    case fdbDelete = "fdb-del"
    case stats = "stats"
    case set = "set"
    case setPort = "set-port"
    case captureStart = "capture-start"
    case captureRead = "capture-read"
    case captureStop = "capture-stop"
    case bridgeNIC = "bridge-nic"
    case unbridgeNIC = "unbridge-nic"
    case stpShow = "stp-show"
}

/// JSON-RPC error codes: the standard ones, and the application's in the -32000 range.
public enum ControlErrorCode: Int, Sendable {
    case parseError = -32700
    case invalidRequest = -32600
    case methodNotFound = -32601
    case invalidParams = -32602
    case internalError = -32603
    /// The request was well formed but cannot be done (no such switch, port exists, device error).
    case failed = -32000
}

// MARK: - Params

public struct BridgeParams: Codable, Sendable {
    public var bridge: String
    public var mayExist: Bool?
    public var ifExists: Bool?
    public init(bridge: String, mayExist: Bool? = nil, ifExists: Bool? = nil) {
        self.bridge = bridge; self.mayExist = mayExist; self.ifExists = ifExists
    }
}

public struct EmptyParams: Codable, Sendable { public init() {} }

public struct PortSpec: Codable, Sendable, Equatable {
    public var name: String
    public var type: String
    public var netns: String?
    public var addr: String?
    public var mtu: Int?
    public var mac: String?
    /// Port settings (`set-port` KEY=VALUE), kept with the port and applied again on restart.
    public var settings: PortSettings?
    /// `tun`: the addresses behind the TUN device (CIDRs) the port answers ARP/ND for.
    public var peers: [String]?
    /// `udp`: local ADDR:PORT, remotes ADDR:PORT (host names allowed), VNI, `vxlan` or `secure`,
    /// and the datapath (`userspace`, the default, or `kernel`: the kernel's VXLAN device, vxlan
    /// only). For `secure`: the site's private key file, the public key of each remote (base64,
    /// the i-th for the i-th remote), an optional pre-shared key file, and the cipher
    /// (`aes-256-gcm`, the default, or `chacha20-poly1305`). Only paths and public keys are kept
    /// here (and so in the state file): never a secret.
    ///
    /// A `secure` spec without `peerKeys` was saved by a vswitchd before version 2 of the secure
    /// mode (one shared key in `keyFile`); vswitchd refuses to open it (see
    /// Docs/secure-wire-format.md, "Version 1").
    public var local: String?
    public var remotes: [String]?
    public var vni: Int?
    public var encap: String?
    public var keyFile: String?
    public var peerKeys: [String]?
    public var pskFile: String?
    public var cipher: String?
    public var datapath: String?
    public init(name: String, type: String = "tap", netns: String? = nil, addr: String? = nil, mtu: Int? = nil, mac: String? = nil,
                settings: PortSettings? = nil, peers: [String]? = nil, local: String? = nil, remotes: [String]? = nil,
                vni: Int? = nil, encap: String? = nil, keyFile: String? = nil, peerKeys: [String]? = nil, pskFile: String? = nil,
                cipher: String? = nil, datapath: String? = nil) {
        self.name = name; self.type = type; self.netns = netns; self.addr = addr; self.mtu = mtu; self.mac = mac
        self.settings = settings; self.peers = peers; self.local = local; self.remotes = remotes; self.vni = vni
        self.encap = encap; self.keyFile = keyFile; self.peerKeys = peerKeys; self.pskFile = pskFile; self.cipher = cipher
        self.datapath = datapath
    }
}

/// `bridge-nic` / `unbridge-nic`: NIC (in namespace `netns` if given) joins or leaves switch `bridge`.
public struct BridgeNICParams: Codable, Sendable {
    public var bridge: String
    public var nic: String
    public var netns: String?
    public init(bridge: String, nic: String, netns: String? = nil) {
        self.bridge = bridge; self.nic = nic; self.netns = netns
    }
}

/// A UDP tunnel port as `show` reports it.
public struct TunnelInfo: Codable, Sendable, Equatable {
    public var local: String
    public var vni: Int
    public var encap: String
    /// `secure` only: `chacha20-poly1305` or `aes-256-gcm`.
    public var cipher: String?
    /// `kernel` for a port on the kernel's VXLAN device (`--datapath kernel`); nil for vswitchd's own.
    public var datapath: String?
    public var remotes: [RemoteInfo]
    public init(local: String, vni: Int, encap: String, cipher: String? = nil, datapath: String? = nil, remotes: [RemoteInfo]) {
        self.local = local; self.vni = vni; self.encap = encap; self.cipher = cipher; self.datapath = datapath; self.remotes = remotes
    }
}

/// One remote of a tunnel: where it is, the largest inner frame its path carries, its traffic,
/// and in the secure mode its key and handshake.
public struct RemoteInfo: Codable, Sendable, Equatable {
    /// The address as configured (`--remote`, resolved to numbers).
    public var address: String
    /// The largest inner Ethernet frame (14-byte header included) the path carries; hosts on the
    /// segment need an MTU of at most this minus 14.
    public var maxInnerFrame: Int
    /// The frames and bytes from and to this remote; nil where they are not counted (the kernel's
    /// VXLAN device keeps no counters per remote).
    public var rxPackets: UInt64?
    public var rxBytes: UInt64?
    public var txPackets: UInt64?
    public var txBytes: UInt64?
    /// `secure` only: the remote's static public key (base64, its `--peer-key`).
    public var publicKey: String?
    /// `secure` only: where datagrams to the remote go now. The configured address until a
    /// datagram from elsewhere authenticates as the remote (it roamed, or a NAT moved it).
    public var endpoint: String?
    /// `secure` only: seconds since the latest handshake with the remote completed; nil if none has.
    public var latestHandshake: Double?
    /// `secure` only: whether a session seals frames to the remote now.
    public var established: Bool?
    public init(address: String, maxInnerFrame: Int, rxPackets: UInt64? = nil, rxBytes: UInt64? = nil, txPackets: UInt64? = nil,
                txBytes: UInt64? = nil, publicKey: String? = nil, endpoint: String? = nil, latestHandshake: Double? = nil,
                established: Bool? = nil) {
        self.address = address; self.maxInnerFrame = maxInnerFrame
        self.rxPackets = rxPackets; self.rxBytes = rxBytes; self.txPackets = txPackets; self.txBytes = txBytes
        self.publicKey = publicKey; self.endpoint = endpoint; self.latestHandshake = latestHandshake; self.established = established
    }
}

public struct AddPortParams: Codable, Sendable {
    public var bridge: String
    public var port: PortSpec
    public var mayExist: Bool?
    public init(bridge: String, port: PortSpec, mayExist: Bool? = nil) {
        self.bridge = bridge; self.port = port; self.mayExist = mayExist
    }
}

public struct PortParams: Codable, Sendable {
    public var bridge: String
    public var port: String?
    public var ifExists: Bool?
    public init(bridge: String, port: String?, ifExists: Bool? = nil) {
        self.bridge = bridge; self.port = port; self.ifExists = ifExists
    }
}

public struct FDBEntryParams: Codable, Sendable {
    public var bridge: String
    public var mac: String
    public var port: String?
    public var vlan: Int?
    public init(bridge: String, mac: String, port: String? = nil, vlan: Int? = nil) {
        self.bridge = bridge; self.mac = mac; self.port = port; self.vlan = vlan
    }
}

public struct SetPortParams: Codable, Sendable {
    public var bridge: String
    public var port: String
    /// The change: the keys given, checked one by one (vswitchctl parses them before sending);
    /// the daemon merges it into the port's settings and checks the result.
    public var settings: PortSettings
    public init(bridge: String, port: String, settings: PortSettings) { self.bridge = bridge; self.port = port; self.settings = settings }
}

public struct SetParams: Codable, Sendable {
    public var bridge: String
    /// KEY=VALUE pairs as the user typed them; the daemon validates keys and values.
    public var settings: [String: String]
    public init(bridge: String, settings: [String: String]) { self.bridge = bridge; self.settings = settings }
}

// MARK: - Results

public struct OK: Codable, Sendable, Equatable { public var ok = true; public init() {} }

public struct BridgeList: Codable, Sendable { public var bridges: [String]; public init(bridges: [String]) { self.bridges = bridges } }
public struct PortList: Codable, Sendable { public var ports: [String]; public init(ports: [String]) { self.ports = ports } }

public struct BridgeSettings: Codable, Sendable, Equatable {
    public var ageingTime: Int
    public var maxMacs: Int
    public var floodUnknown: Bool
    /// `stp=on`: the spanning tree (RSTP, with 802.1D toward legacy bridges) runs on every port.
    public var stp: Bool?
    /// Bridge priority (0-61440, steps of 4096), hello time, forward delay and max age (seconds).
    public var stpPriority: Int?
    public var stpHelloTime: Int?
    public var stpForwardDelay: Int?
    public var stpMaxAge: Int?
    /// The bridge address of the spanning tree (a locally administered MAC chosen when the switch
    /// is made, kept across restarts).
    public var stpAddress: String?
    public init(ageingTime: Int = 300, maxMacs: Int = 65_536, floodUnknown: Bool = true) {
        self.ageingTime = ageingTime; self.maxMacs = maxMacs; self.floodUnknown = floodUnknown
    }
}

// MARK: - Spanning tree

/// `stp-show`: the bridge's spanning-tree view, and each port's role and state.
public struct STPShowResult: Codable, Sendable, Equatable {
    public var bridge: String
    public var enabled: Bool
    /// Bridge identifiers as priority.address, e.g. "8000.02:5e:10:00:00:01".
    public var bridgeId: String?
    public var rootId: String?
    public var rootPathCost: UInt32?
    /// The root port's name; nil when this bridge is the root.
    public var rootPort: String?
    public var isRoot: Bool?
    public var helloTime: Int?
    public var forwardDelay: Int?
    public var maxAge: Int?
    public var topologyChanges: UInt64?
    /// Seconds since the last topology change.
    public var sinceTopologyChange: UInt64?
    public var ports: [STPPortInfo]
    public init(bridge: String, enabled: Bool, ports: [STPPortInfo] = []) { self.bridge = bridge; self.enabled = enabled; self.ports = ports }
}

public struct STPPortInfo: Codable, Sendable, Equatable {
    public var port: String
    /// Port identifier as priority.number, e.g. "128.3".
    public var id: String
    /// disabled, root, designated, alternate or backup.
    public var role: String
    /// discarding, learning or forwarding.
    public var state: String
    public var cost: UInt32
    public var edge: Bool
    /// "rstp", or "stp" toward a legacy 802.1D bridge.
    public var `protocol`: String
    public var designatedBridge: String
    public var designatedPort: String
    public var bpdusReceived: UInt64
    public var bpdusSent: UInt64
    public var bpdusInvalid: UInt64
    public init(port: String, id: String, role: String, state: String, cost: UInt32, edge: Bool, protocol: String,
                designatedBridge: String, designatedPort: String, bpdusReceived: UInt64, bpdusSent: UInt64, bpdusInvalid: UInt64) {
        self.port = port; self.id = id; self.role = role; self.state = state; self.cost = cost; self.edge = edge
        self.protocol = `protocol`; self.designatedBridge = designatedBridge; self.designatedPort = designatedPort
        self.bpdusReceived = bpdusReceived; self.bpdusSent = bpdusSent; self.bpdusInvalid = bpdusInvalid
    }
}

public struct PortInfo: Codable, Sendable, Equatable {
    public var name: String
    public var type: String
    public var netns: String?
    public var addr: String?
    public var mtu: Int?
    public var mac: String?
    /// Whether vswitchd created the device (and removes it on del-port).
    public var created: Bool
    /// "up", or the reason the port is not working (e.g. a namespace that vanished).
    public var status: String
    /// Port settings from `set-port`, as KEY=VALUE (`PortSettings.dictionary`).
    public var settings: [String: String]?
    /// `tun`: the addresses answered for.
    public var peers: [String]?
    /// `udp`: the tunnel and its remotes.
    public var tunnel: TunnelInfo?
    public init(name: String, type: String, netns: String?, addr: String?, mtu: Int?, mac: String?, created: Bool, status: String,
                settings: [String: String]? = nil, peers: [String]? = nil, tunnel: TunnelInfo? = nil) {
        self.name = name; self.type = type; self.netns = netns; self.addr = addr; self.mtu = mtu; self.mac = mac
        self.created = created; self.status = status; self.settings = settings; self.peers = peers; self.tunnel = tunnel
    }
}

public struct BridgeInfo: Codable, Sendable, Equatable {
    public var name: String
    public var settings: BridgeSettings
    public var ports: [PortInfo]
    public var fdbSize: Int
    public init(name: String, settings: BridgeSettings, ports: [PortInfo], fdbSize: Int) {
        self.name = name; self.settings = settings; self.ports = ports; self.fdbSize = fdbSize
    }
}

public struct ShowResult: Codable, Sendable { public var bridges: [BridgeInfo]; public init(bridges: [BridgeInfo]) { self.bridges = bridges } }

public struct FDBEntry: Codable, Sendable, Equatable {
    public var port: String
    public var vlan: Int
    public var mac: String
    /// Seconds since the entry was last refreshed (0 for static entries).
    public var age: Int
    public var `static`: Bool
    /// Flagged as moving back and forth between ports (MAC-move detection).
    public var moving: Bool
    public init(port: String, vlan: Int, mac: String, age: Int, static isStatic: Bool, moving: Bool = false) {
        self.port = port; self.vlan = vlan; self.mac = mac; self.age = age; self.static = isStatic; self.moving = moving
    }
}

public struct FDBShowResult: Codable, Sendable {
    public var bridge: String
    public var entries: [FDBEntry]
    public var learned: UInt64
    public var moved: UInt64
    public var aged: UInt64
    public var learnRefused: UInt64
    /// MACs flagged as moving back and forth, cumulative.
    public var flapping: UInt64
    public init(bridge: String, entries: [FDBEntry], learned: UInt64, moved: UInt64, aged: UInt64, learnRefused: UInt64,
                flapping: UInt64 = 0) {
        self.bridge = bridge; self.entries = entries; self.learned = learned; self.moved = moved; self.aged = aged
        self.learnRefused = learnRefused; self.flapping = flapping
    }
}

public struct PortStats: Codable, Sendable, Equatable {
    public var port: String
    public var rxPackets: UInt64
    public var rxBytes: UInt64
    public var rxDrops: UInt64
    public var rxErrors: UInt64
    public var txPackets: UInt64
    public var txBytes: UInt64
    public var txDrops: UInt64
    public var txErrors: UInt64
    /// Drops by reason (runt, malformed, invalid-source, ...), zeros included.
    public var drops: [String: UInt64]
    public init(port: String, rxPackets: UInt64, rxBytes: UInt64, rxDrops: UInt64, rxErrors: UInt64,
                txPackets: UInt64, txBytes: UInt64, txDrops: UInt64, txErrors: UInt64, drops: [String: UInt64]) {
        self.port = port; self.rxPackets = rxPackets; self.rxBytes = rxBytes; self.rxDrops = rxDrops; self.rxErrors = rxErrors
        self.txPackets = txPackets; self.txBytes = txBytes; self.txDrops = txDrops; self.txErrors = txErrors; self.drops = drops
    }
}

public struct StatsResult: Codable, Sendable {
    public var bridge: String
    public var ports: [PortStats]
    public init(bridge: String, ports: [PortStats]) { self.bridge = bridge; self.ports = ports }
}

// MARK: - Capture

/// `capture-start`: params `PortParams` (bridge and port); result the capture's id.
public struct CaptureStarted: Codable, Sendable { public var id: Int; public init(id: Int) { self.id = id } }

public struct CaptureParams: Codable, Sendable {
    public var id: Int
    /// Most frames to return (capture-read).
    public var max: Int?
    public init(id: Int, max: Int? = nil) { self.id = id; self.max = max }
}

public struct CapturedFrame: Codable, Sendable, Equatable {
    /// Wall-clock time, nanoseconds since 1970.
    public var time: UInt64
    /// The frame's length on the wire (`data` may be cut to the snap length).
    public var length: Int
    /// The frame's bytes, base64.
    public var data: String
    public init(time: UInt64, length: Int, data: String) { self.time = time; self.length = length; self.data = data }
}

public struct CaptureFrames: Codable, Sendable {
    public var frames: [CapturedFrame]
    /// Copies the capture could not keep (its ring was full) since the start.
    public var dropped: UInt64
    public init(frames: [CapturedFrame], dropped: UInt64) { self.frames = frames; self.dropped = dropped }
}
