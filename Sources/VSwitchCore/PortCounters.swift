/// Why a frame was dropped. Every drop has one reason, and every reason has a counter.
public enum DropReason: Int, CaseIterable, Sendable {
    /// Shorter than an Ethernet header (14 bytes).
    case runt
    /// A header that claims more than the frame holds (a truncated 802.1Q tag).
    case malformed
    /// Longer than the switch accepts.
    case oversize
    /// A multicast, broadcast or all-zero source MAC: invalid as a source (IEEE 802.3), and never learned.
    case invalidSource
    /// Known unicast whose destination is on the ingress port: never sent back out of it.
    case filtered
    /// Unknown unicast while `flood-unknown=off`.
    case unknownUnicast
    /// Sent to an IEEE 802.1D reserved link-local group (01:80:c2:00:00:00-0f: STP, LACP, LLDP,
    /// pause): meant for the switch itself, never forwarded (as the Linux bridge does by default).
    case linkLocal
    /// Known unicast from an isolated port to another isolated port.
    case isolated
    /// A frame to be flooded beyond the port's `broadcast-limit` (frames per second).
    case floodLimit
    /// Lost on purpose: the port's impairment (`set-port ... loss=`) drew it.
    case impairmentLoss
    /// The egress device had no room (EAGAIN on write).
    case transmitQueueFull
    /// The frame does not fit the egress port.
    case transmitTooBig
    /// A packet from an L3 port (TUN) whose next hop did not answer ARP or neighbour solicitation
    /// within a second, or that found the port's small hold queue full while it asked.
    case unresolved
    /// A frame the egress port cannot carry: a TUN port takes only well-formed IPv4 and IPv6 (it
    /// answers ARP and neighbour discovery for its peer itself).
    case transmitUnsupported
    /// A tunnel datagram too short for its header, with a header the port does not speak (a VXLAN
    /// header without the I flag, a secure header of another version or type), or carrying a frame
    /// too large to hold.
    case tunnelMalformed
    /// A tunnel datagram for another VXLAN network identifier.
    case unknownVNI
    /// A tunnel datagram from an address that is not one of the port's remotes (or the port's own
    /// secure traffic reflected back).
    case unknownRemote
    /// A secure datagram that failed authentication (modified, or sealed with another key).
    case authenticationFailed
    /// A secure datagram whose counter was seen before or is older than the replay window.
    case replayed
    /// A secure data datagram naming no live session: sealed before a restart of this side, on
    /// an expired session, or noise.
    case unknownSession
    /// A frame of a VLAN its ingress port does not carry (a tagged frame on an access port of
    /// another VLAN, a VLAN not in a trunk's list, an untagged frame on a trunk without a native
    /// VLAN), or bound for a port that does not carry its VLAN.
    case vlanFiltered
    /// Received on a port the spanning tree keeps discarding or learning (a blocked alternate or
    /// backup port, or one still waiting to forward); BPDUs are not counted here.
    case stpDiscarding
    /// Known unicast bound for a port the spanning tree keeps from forwarding.
    case stpBlocked
    /// A secure datagram sealed with another cipher than the port's (`--cipher`): the two ends
    /// are configured differently.
    case cipherMismatch
    /// A secure handshake message whose mac1 or encryption did not verify, or that answers
    /// no handshake of this port.
    case handshakeInvalid
    /// A secure handshake from a site whose static key no remote of the port names.
    case unknownPeer
    /// A secure handshake message beyond the rate limits, or answered with a cookie under load.
    case handshakeLimited
    /// A frame for a secure remote without a session yet: a handshake is under way.
    case noSession

    public var name: String {
        switch self {
        case .runt: "runt"
        case .malformed: "malformed"
        case .oversize: "oversize"
        case .invalidSource: "invalid-source"
        case .filtered: "filtered"
        case .unknownUnicast: "unknown-unicast"
        case .linkLocal: "link-local"
        case .impairmentLoss: "impairment-loss"
        case .isolated: "isolated"
        case .floodLimit: "broadcast-limit"
        case .transmitQueueFull: "tx-queue-full"
        case .transmitTooBig: "tx-too-big"
        case .unresolved: "unresolved"
        case .transmitUnsupported: "tx-unsupported"
        case .tunnelMalformed: "tunnel-malformed"
        case .unknownVNI: "unknown-vni"
        case .unknownRemote: "unknown-remote"
        case .authenticationFailed: "auth-failed"
        case .replayed: "replayed"
        case .unknownSession: "unknown-session"
        case .vlanFiltered: "vlan-filtered"
        case .stpDiscarding: "stp-discarding"
        case .stpBlocked: "stp-blocked"
        case .cipherMismatch: "cipher-mismatch"
        case .handshakeInvalid: "handshake-invalid"
        case .unknownPeer: "unknown-peer"
        case .handshakeLimited: "handshake-limited"
        case .noSession: "no-session"
        }
    }

    /// Whether the drop happened on receive (counted in `rxDrops`) or on transmit (`txDrops`).
    public var isTransmit: Bool {
        self == .transmitQueueFull || self == .transmitTooBig || self == .impairmentLoss || self == .transmitUnsupported
            || self == .stpBlocked || self == .noSession
    }
}

/// Per-port counters, written only by the port's data-plane thread and read by snapshot.
public struct PortCounters: Sendable, Equatable {
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    /// Reads the device failed (other than running dry).
    public var rxErrors: UInt64 = 0
    /// Writes the device refused (EINVAL, EIO, ...).
    public var txErrors: UInt64 = 0
    /// Drops by `DropReason.rawValue` (room for 32 reasons; a test checks they fit).
    public var drops: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                       UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                       UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    public static let dropSlots = 32

    public init() {}

    @inlinable
    public mutating func drop(_ reason: DropReason, count: UInt64 = 1) {
        withUnsafeMutableBytes(of: &drops) { slots in
            let offset = reason.rawValue &* 8
            slots.storeBytes(of: slots.load(fromByteOffset: offset, as: UInt64.self) &+ count, toByteOffset: offset, as: UInt64.self)
        }
    }

    public func drops(_ reason: DropReason) -> UInt64 {
        withUnsafeBytes(of: drops) { $0.load(fromByteOffset: reason.rawValue * 8, as: UInt64.self) }
    }

    public var rxDrops: UInt64 { DropReason.allCases.filter { !$0.isTransmit }.reduce(0) { $0 &+ drops($1) } }
    public var txDrops: UInt64 { DropReason.allCases.filter { $0.isTransmit }.reduce(0) { $0 &+ drops($1) } }

    public static func == (a: PortCounters, b: PortCounters) -> Bool {
        a.rxPackets == b.rxPackets && a.rxBytes == b.rxBytes && a.txPackets == b.txPackets && a.txBytes == b.txBytes
            && a.rxErrors == b.rxErrors && a.txErrors == b.txErrors
            && DropReason.allCases.allSatisfy { a.drops($0) == b.drops($0) }
    }
}
