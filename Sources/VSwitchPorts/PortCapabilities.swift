import VSwitchCore
import VSwitchTunnel

// What some port kinds can do beyond moving frames, as small protocols, so that the daemon asks a
// port for a capability (`port as? any TunnelPort`) and never for its kind (`as? UDPTunnelPort`).
// A new port kind that has one of these conforms to it and the daemon uses it with no change.
//
// Threading: like the port itself, every member is used on the data-plane thread that owns the
// port once it is attached (the daemon reaches them through `DataPlane.perform`); before attach
// and after detach the control plane may use them directly.

/// A port that keeps its own table of where MACs are (a multipoint tunnel's MAC -> remote cache)
/// and forgets an entry as the switch's MAC table would: after the switch's `ageing-time`.
public protocol AgeingPort: DevicePort {
    /// Seconds a remembered MAC stays without traffic: the switch's `ageing-time`.
    var ageingSeconds: UInt32 { get set }
}

/// A port that carries frames through a tunnel to remote sites: what `show` says of it.
public protocol TunnelPort: DevicePort {
    /// The tunnel and each remote: where, the largest inner frame, and what is known of it.
    func tunnelStatus() -> TunnelStatus
    /// Whether the tunnel is a shared segment (several remotes) rather than a point-to-point link:
    /// the spanning tree runs no proposal/agreement handshake on it.
    var isMultipoint: Bool { get }
}

/// A port with sessions under keys (the secure tunnel): they end when the keys change or the
/// machine may have been cloned.
public protocol SecureSessionPort: DevicePort {
    /// Whether this port has sessions at all (a tunnel in the secure mode; not one in VXLAN mode).
    var hasSecureSessions: Bool { get }
    /// Ends every session and starts new handshakes.
    func forgetSessions()
    /// New keys from the key files: a changed private or pre-shared key ends every session.
    func reloadKeys(privateKey: SecurePrivateKey, presharedKey: SecureKey?)
}

/// A port that drops frames too big for its path (`tx-too-big`) and can say which size fits, so
/// the daemon can tell the operator what MTU to set.
public protocol FrameSizeLimitedPort: DevicePort {
    /// The largest inner Ethernet frame (header included) the port carries on every path.
    var largestFrame: Int { get }
}

/// A tunnel as `show` describes it: the port's own words, mapped to the control protocol by the
/// daemon.
public struct TunnelStatus: Sendable, Equatable {
    public struct Remote: Sendable, Equatable {
        public var address: String
        public var maxInnerFrame: Int
        /// Per-remote traffic; nil where the port does not count it (the kernel's VXLAN device).
        public var traffic: UDPTunnelPort.RemoteCounters?
        /// Secure remotes only: key, endpoint and handshake.
        public var peer: UDPTunnelPort.PeerStatus?
        public init(address: String, maxInnerFrame: Int, traffic: UDPTunnelPort.RemoteCounters? = nil, peer: UDPTunnelPort.PeerStatus? = nil) {
            self.address = address; self.maxInnerFrame = maxInnerFrame; self.traffic = traffic; self.peer = peer
        }
    }
    public var local: String
    public var vni: Int
    /// `vxlan` or `secure`.
    public var encapsulation: String
    /// The secure mode's cipher.
    public var cipher: String?
    /// `kernel` for the kernel's VXLAN device; nil for vswitchd's own datapath.
    public var datapath: String?
    public var remotes: [Remote]
    public init(local: String, vni: Int, encapsulation: String, cipher: String? = nil, datapath: String? = nil, remotes: [Remote]) {
        self.local = local; self.vni = vni; self.encapsulation = encapsulation; self.cipher = cipher; self.datapath = datapath
        self.remotes = remotes
    }
}

extension UDPTunnelPort: AgeingPort, TunnelPort, SecureSessionPort, FrameSizeLimitedPort {
    public func tunnelStatus() -> TunnelStatus {
        let traffic = trafficByRemote, peers = peerStatus()
        return TunnelStatus(local: local.description, vni: Int(vni), encapsulation: encapsulation.name, cipher: encapsulation.cipher?.name,
                            remotes: remotes.indices.map { i in
                                // peerStatus is empty for VXLAN.
                                TunnelStatus.Remote(address: remotes[i].description, maxInnerFrame: maxInnerFrame[i],
                                       traffic: i < traffic.count ? traffic[i] : nil, peer: i < peers.count ? peers[i] : nil)
                            })
    }
    public var isMultipoint: Bool { remotes.count > 1 }
    public var hasSecureSessions: Bool { encapsulation.cipher != nil }
    public var largestFrame: Int { maxInnerFrame.min() ?? 0 }
}

extension KernelVXLANPort: TunnelPort {
    public func tunnelStatus() -> TunnelStatus {
        TunnelStatus(local: local.description, vni: Int(vni), encapsulation: "vxlan", datapath: "kernel",
                     remotes: remotes.map { TunnelStatus.Remote(address: $0.description, maxInnerFrame: maxInnerFrame) })
    }
    public var isMultipoint: Bool { remotes.count > 1 }
}
