/// Why a frame was dropped. Every drop has one reason, and every reason has a counter.
///
/// The switch's own reasons come first; the reasons of particular port kinds (TUN's neighbour
/// shim, the tunnels) follow from `firstPortKindReason` on. Counters are sized from `allCases`
/// (`PortCounters.wordCount`), so a new reason is a new case, its name and its direction: nothing
/// else to resize.
public enum DropReason: Int, CaseIterable, Sendable {
    // The switch and every device: framing, forwarding decisions, transmit queues.
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
    /// A frame of a VLAN its ingress port does not carry (a tagged frame on an access port of
    /// another VLAN, a VLAN not in a trunk's list, an untagged frame on a trunk without a native
    /// VLAN), or bound for a port that does not carry its VLAN.
    case vlanFiltered
    /// Received on a port the spanning tree keeps discarding or learning (a blocked alternate or
    /// backup port, or one still waiting to forward); BPDUs are not counted here.
    case stpDiscarding
    /// Known unicast bound for a port the spanning tree keeps from forwarding.
    case stpBlocked

    // Port kinds: the TUN port's neighbour shim, the UDP tunnels and their secure mode.
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

    /// The first reason that belongs to a particular port kind (the per-port extension block of
    /// `PortCounters`'s row).
    public static let firstPortKindReason = DropReason.unresolved

    /// Whether only some port kinds count this reason.
    public var isPortKindReason: Bool { rawValue >= Self.firstPortKindReason.rawValue }

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

/// One port's counters: a view over a row of 64-bit words.
///
/// The row is `[rxPackets, rxBytes, txPackets, txBytes, rxErrors, txErrors]` followed by one word
/// per `DropReason` (by raw value: the switch's reasons, then the port kinds' extension block), so
/// it is sized from `DropReason.allCases` and a new reason needs no change here. A switch keeps its
/// ports' rows in its `PortTable` and hands ports views of them; `PortCounters()` makes a view over
/// a row of its own (tests, scratch), and `snapshot()` copies a live row into one (what the control
/// plane reads, so it never shares memory the data plane writes).
///
/// Written only by the port's data-plane thread. A view is a pointer: copying one does not copy
/// the counts (use `snapshot()` for that); `==` compares the counts.
public struct PortCounters: @unchecked Sendable, Equatable {
    @usableFromInline let words: UnsafeMutablePointer<UInt64>
    /// Owns `words` for a view made by `init()` or `snapshot()`; nil for a row of a `PortTable`.
    @usableFromInline let storage: Storage?

    /// Words before the drop counters.
    @inlinable static var fixedWords: Int { 6 }
    /// Words per row: the fixed counters and one per drop reason.
    public static let wordCount = 6 + DropReason.allCases.count

    @usableFromInline final class Storage {
        @usableFromInline let words: UnsafeMutablePointer<UInt64>
        init() {
            words = .allocate(capacity: PortCounters.wordCount)
            words.initialize(repeating: 0, count: PortCounters.wordCount)
        }
        deinit { words.deallocate() }
    }

    /// Counters of their own, all zero.
    public init() {
        let s = Storage()
        storage = s
        words = s.words
    }

    /// A view over a row of `wordCount` words owned by someone else (a `PortTable`).
    @inlinable
    init(row: UnsafeMutablePointer<UInt64>) {
        words = row
        storage = nil
    }

    /// A copy of the counts, in a row of its own.
    public func snapshot() -> PortCounters {
        let copy = PortCounters()
        copy.words.update(from: words, count: Self.wordCount)
        return copy
    }

    /// Sets every count to zero.
    public func reset() { words.update(repeating: 0, count: Self.wordCount) }

    public var rxPackets: UInt64 {
        @inlinable get { words[0] }
        @inlinable nonmutating set { words[0] = newValue }
    }
    public var rxBytes: UInt64 {
        @inlinable get { words[1] }
        @inlinable nonmutating set { words[1] = newValue }
    }
    public var txPackets: UInt64 {
        @inlinable get { words[2] }
        @inlinable nonmutating set { words[2] = newValue }
    }
    public var txBytes: UInt64 {
        @inlinable get { words[3] }
        @inlinable nonmutating set { words[3] = newValue }
    }
    /// Reads the device failed (other than running dry).
    public var rxErrors: UInt64 {
        @inlinable get { words[4] }
        @inlinable nonmutating set { words[4] = newValue }
    }
    /// Writes the device refused (EINVAL, EIO, ...).
    public var txErrors: UInt64 {
        @inlinable get { words[5] }
        @inlinable nonmutating set { words[5] = newValue }
    }

    @inlinable
    public func drop(_ reason: DropReason, count: UInt64 = 1) {
        let w = words + (Self.fixedWords &+ reason.rawValue)
        w.pointee = w.pointee &+ count
    }

    public func drops(_ reason: DropReason) -> UInt64 { words[Self.fixedWords + reason.rawValue] }

    public var rxDrops: UInt64 { DropReason.allCases.filter { !$0.isTransmit }.reduce(0) { $0 &+ drops($1) } }
    public var txDrops: UInt64 { DropReason.allCases.filter { $0.isTransmit }.reduce(0) { $0 &+ drops($1) } }

    public static func == (a: PortCounters, b: PortCounters) -> Bool {
        a.words == b.words || (0..<wordCount).allSatisfy { a.words[$0] == b.words[$0] }
    }
}
