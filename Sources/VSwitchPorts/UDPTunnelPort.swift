#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import VSwitchCore
import VSwitchNetlink
import VSwitchSystem
import VSwitchTunnel
import VSwitchWire

/// A UDP tunnel to other switches: VXLAN (RFC 7348) or the authenticated-encrypted secure mode
/// (SPEC section 7), point to point or multipoint.
///
/// Receive: one socket bound to `--local`, with UDP_GRO, drained with recvmmsg into a slab; each
/// datagram (a message may hold several of one flow, coalesced by the kernel) is checked and its
/// inner frame copied (VXLAN) or opened (secure) into a pool buffer. Datagrams from an address
/// that is not a remote, for another VNI, malformed, unauthentic or replayed are dropped and
/// counted by reason; nothing is ever answered.
///
/// Multipoint: the inner source MAC of every datagram is remembered with the remote it came from
/// (a fixed direct-mapped cache, so a flood of random MACs costs no memory); known unicast then
/// goes to that remote only, and broadcast, multicast and unknown unicast to every remote
/// (head-end replication).
///
/// Transmit: sendmmsg, batched, from one of a few sockets bound to kernel-chosen ephemeral ports,
/// picked by a hash of the inner flow, so peers see per-flow source ports as from the kernel's
/// VXLAN. In VXLAN mode the header is one shared iovec and frames go out of their buffers
/// untouched (the same buffer may still be on its way to other ports). TSO superframes from TAP
/// ports are segmented and checksummed in software first (GSOSegmenter), with segments no
/// larger than the tunnel carries, so TCP never needs IP fragmentation. A frame larger than the
/// largest inner frame a remote's path carries is dropped and counted (`tx-too-big`); vswitchd
/// logs it, rate-limited, with the MTU to set.
///
/// The jobs, one file each: this one sets the port up (sockets, remotes, path MTUs, buffers);
/// `+Receive` reads and decapsulates, `+Transmit` encapsulates, segments and sends,
/// `+RemoteCache` remembers which remote each MAC sits behind, `+Secure` drives the secure mode's
/// engine (handshake socket, outbox, timers, status).
public final class UDPTunnelPort: DevicePort, LearningPort, BufferingPort, TimedPort {
    public enum Encapsulation: Sendable {
        case vxlan
        case secure(SecureConfiguration)
        public var overhead: Int {
            switch self {
            case .vxlan: VXLANHeader.headerLength
            case .secure: SecureHandshake.dataOverhead
            }
        }
        public var name: String {
            switch self {
            case .vxlan: "vxlan"
            case .secure: "secure"
            }
        }
        /// The secure mode's cipher.
        public var cipher: SecureCipher? {
            if case .secure(let configuration) = self { configuration.cipher } else { nil }
        }
    }

    /// Per-remote traffic, for `show` and `stats`.
    public struct RemoteCounters: Sendable, Equatable {
        public var rxPackets: UInt64 = 0, rxBytes: UInt64 = 0, txPackets: UInt64 = 0, txBytes: UInt64 = 0
    }

    public let name: String
    public let namespace: String?
    public let created = false
    public let local: UDPEndpoint
    public let remotes: [UDPEndpoint]
    public let vni: UInt32
    public let encapsulation: Encapsulation
    /// The largest inner Ethernet frame (header included) each remote's path carries.
    public let maxInnerFrame: [Int]
    /// The smallest and largest of them (what fits every remote, what fits any).
    let smallestMaxFrame: Int
    let largestMaxFrame: Int
    public var readinessDescriptor: Int32 { handshakePoll?.fd ?? rxFD }
    /// Messages read from the socket and not yet handed over: the data plane polls again.
    public var hasBufferedInput: Bool { pendingMessage < pendingCount }

    var rxFD: Int32 = -1
    /// Secure mode: a second socket on the same address and port that the kernel gives every
    /// datagram but data (handshakes, cookie replies; a reuseport BPF program steers them), so a
    /// handshake flood fills its own small queue and is dropped there, apart from the data; and
    /// an epoll of both sockets, the port's readiness descriptor. -1/nil where the kernel cannot
    /// steer (then every datagram comes to `rxFD`).
    var hsFD: Int32 = -1
    var handshakePoll: Epoll?
    /// Handshake messages the port examines: at most `handshakeRate` a second (bursts of
    /// `handshakeBurst`); past that the socket is left unread, and the kernel drops what it
    /// cannot queue, until the next timer tick.
    static let handshakeRate = 2048.0
    static let handshakeBurst = 256.0
    var handshakeTokens = UDPTunnelPort.handshakeBurst
    var handshakeTokensAt: UInt64 = 0
    var handshakesPaused = false
    /// When the handshake socket was last read (ns).
    var lastHandshakeRead: UInt64 = 0
    static let hsMessages = 8
    let hsStarts: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let hsCapacities: UnsafeMutablePointer<UInt32>
    let hsLengths: UnsafeMutablePointer<UInt32>
    let hsSources: UnsafeMutablePointer<sockaddr_storage>
    let hsSegments: UnsafeMutablePointer<UInt16>
    let hsSlab: UnsafeMutableRawPointer
    var txFDs: [Int32] = []
    /// The secure mode's protocol engine (handshakes, sessions); nil for VXLAN.
    let channel: SecureTunnel?
    var lastService: UInt64 = 0
    /// The data plane's clock when the current `transmit` began (ns).
    var sendClock: UInt64 = 0
    let remoteCount: Int
    let remoteAddresses: UnsafeMutablePointer<sockaddr_storage>
    let remoteLengths: UnsafeMutablePointer<UInt32>
    let remoteMaxFrame: UnsafeMutablePointer<Int>
    let remoteCounters: UnsafeMutablePointer<RemoteCounters>
    let vxlanHeader: UnsafeMutableRawPointer

    // MAC -> remote cache (direct mapped).
    static let cacheSlots = 4096
    let cacheMACs: UnsafeMutablePointer<UInt64>
    let cacheRemotes: UnsafeMutablePointer<Int32>
    let cacheSeen: UnsafeMutablePointer<UInt32>
    /// Seconds a remembered MAC stays valid without traffic: the switch's `ageing-time`.
    public var ageingSeconds: UInt32 = 300

    // Receive: messages (one datagram, or several coalesced by UDP_GRO) land in a slab and are
    // checked, decapsulated (or opened) into pool buffers; a message the batch cannot take whole
    // waits in the slab for the next call.
    static let rxMessages = 16
    let rxStarts: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let rxCapacities: UnsafeMutablePointer<UInt32>
    let rxLengths: UnsafeMutablePointer<UInt32>
    let rxSources: UnsafeMutablePointer<sockaddr_storage>
    let rxSegments: UnsafeMutablePointer<UInt16>
    let rxSlab: UnsafeMutableRawPointer
    static let datagramRoom = 65_536
    var pendingMessage = 0, pendingCount = 0, pendingOffset = 0

    // Transmit queues, one per socket, and an arena for segments and sealed datagrams.
    static let txSockets = 4
    static let txQueueCapacity = 256
    let txStarts: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let txLengths: UnsafeMutablePointer<UInt32>
    let txDestinations: UnsafeMutablePointer<UnsafePointer<sockaddr_storage>?>
    let txDestinationLengths: UnsafeMutablePointer<UInt32>
    let txRemote: UnsafeMutablePointer<Int32>
    var txCounts: [Int]
    let arenaSlotSize: Int
    let arenaSlots = 256
    let arena: UnsafeMutableRawPointer
    var arenaUsed = 0
    /// One segment, for secure mode (sealed from here into the arena).
    let segmentScratch: UnsafeMutableRawPointer
    /// Secure: datagrams laid end to end for one UDP GSO send. VXLAN: a slot of `gsoSlot` bytes
    /// per datagram of a send, for its headers. And whether the kernel takes UDP_SEGMENT.
    let gsoBuffer: UnsafeMutableRawPointer
    /// Internal, so that tests can take the path of a kernel without it.
    var udpGSO = true
    static let gsoMaxSegments = 64
    static let gsoSlot = 256
    /// The pieces of one UDP GSO send, up to two per datagram (VXLAN: headers, then the payload
    /// where it lies in the frame; secure: the datagram).
    let gsoPieces: UnsafeMutablePointer<iovec>
    /// Room for every datagram of one 64 KiB superframe cut into the smallest segments we make.
    static let gsoCapacity = 256 * 1024

    public init(name: String, namespace: String? = nil, local: String?, remotes: [String], vni: UInt32, encapsulation: Encapsulation) throws {
        guard !remotes.isEmpty else { throw PortError("a udp port needs at least one --remote ADDR:PORT") }
        guard vni <= VXLANHeader.maximumVNI else { throw PortError("invalid vni \(vni) (0-16777215)") }
        let localEndpoint = try UDPEndpoint(local ?? "0.0.0.0:4789", namespace: namespace)
        let family = Int32(localEndpoint.address.ss_family)
        let resolved = try remotes.map { try UDPEndpoint($0, family: family, namespace: namespace) }
        self.name = name
        self.namespace = namespace
        self.local = localEndpoint
        self.remotes = resolved
        self.vni = vni
        self.encapsulation = encapsulation
        remoteCount = resolved.count
        // The largest inner frame: path MTU minus outer IP and UDP headers and the encapsulation.
        let outer = (family == AF_INET6 ? 40 : 20) + 8 + encapsulation.overhead
        maxInnerFrame = try resolved.map { remote in
            var address = remote.address
            let mtu = try NetworkNamespace.run(in: namespace) { vswitch_path_mtu(&address, UInt32(remote.length)) }
            guard mtu > 0 else { throw PortError("no route to remote \(remote.text): \(SystemError("connect", errno: -mtu).reason)") }
            return Int(mtu) - outer
        }
        smallestMaxFrame = maxInnerFrame.min() ?? 0
        largestMaxFrame = maxInnerFrame.max() ?? 0
        remoteAddresses = .allocate(capacity: resolved.count)
        remoteLengths = .allocate(capacity: resolved.count)
        remoteMaxFrame = .allocate(capacity: resolved.count)
        remoteCounters = .allocate(capacity: resolved.count)
        for (i, r) in resolved.enumerated() {
            remoteAddresses[i] = r.address
            remoteLengths[i] = UInt32(r.length)
            remoteMaxFrame[i] = maxInnerFrame[i]
            remoteCounters[i] = RemoteCounters()
        }
        if case .secure(let configuration) = encapsulation {
            guard configuration.peers.count == resolved.count else {
                throw PortError("--encap secure needs one --peer-key per --remote (\(resolved.count) remotes, \(configuration.peers.count) keys)")
            }
            channel = SecureTunnel(configuration: configuration, endpoints: remoteAddresses, endpointLengths: remoteLengths)
        } else {
            channel = nil
        }
        vxlanHeader = .allocate(byteCount: 8, alignment: 8)
        _ = VXLANRepr(vni: vni).emit(into: UnsafeMutableRawBufferPointer(start: vxlanHeader, count: 8))
        cacheMACs = .allocate(capacity: Self.cacheSlots); cacheMACs.initialize(repeating: 0, count: Self.cacheSlots)
        cacheRemotes = .allocate(capacity: Self.cacheSlots); cacheRemotes.initialize(repeating: -1, count: Self.cacheSlots)
        cacheSeen = .allocate(capacity: Self.cacheSlots); cacheSeen.initialize(repeating: 0, count: Self.cacheSlots)
        rxStarts = .allocate(capacity: Self.rxMessages)
        rxCapacities = .allocate(capacity: Self.rxMessages)
        rxLengths = .allocate(capacity: Self.rxMessages)
        rxSources = .allocate(capacity: Self.rxMessages)
        rxSegments = .allocate(capacity: Self.rxMessages)
        rxSlab = .allocate(byteCount: Self.rxMessages * Self.datagramRoom, alignment: 64)
        hsStarts = .allocate(capacity: Self.hsMessages)
        hsCapacities = .allocate(capacity: Self.hsMessages)
        hsLengths = .allocate(capacity: Self.hsMessages)
        hsSources = .allocate(capacity: Self.hsMessages)
        hsSegments = .allocate(capacity: Self.hsMessages)
        hsSlab = .allocate(byteCount: Self.hsMessages * 256 + 2048, alignment: 64)
        for i in 0..<Self.hsMessages {
            hsStarts[i] = hsSlab + i * 256
            hsCapacities[i] = 256
        }
        for i in 0..<Self.rxMessages {
            rxStarts[i] = rxSlab + i * Self.datagramRoom
            rxCapacities[i] = UInt32(Self.datagramRoom)
        }
        let q = Self.txSockets * Self.txQueueCapacity
        txStarts = .allocate(capacity: q)
        txLengths = .allocate(capacity: q)
        txDestinations = .allocate(capacity: q)
        txDestinationLengths = .allocate(capacity: q)
        txRemote = .allocate(capacity: q)
        txCounts = Array(repeating: 0, count: Self.txSockets)
        arenaSlotSize = ((maxInnerFrame.max() ?? 1500) + SecureHandshake.dataOverhead + 64 + 63) & ~63
        arena = .allocate(byteCount: arenaSlotSize * arenaSlots, alignment: 64)
        segmentScratch = .allocate(byteCount: arenaSlotSize, alignment: 64)
        gsoBuffer = .allocate(byteCount: Self.gsoCapacity, alignment: 64)
        gsoPieces = .allocate(capacity: 2 * Self.gsoMaxSegments)
        do {
            try NetworkNamespace.run(in: namespace) { try openSockets(family: family) }
        } catch {
            close()
            throw error
        }
        // Handshakes with every remote at once: after a restart of either side, frames flow
        // again as soon as one round trip completes.
        if let channel {
            let now = SystemCalls.monotonicNanoseconds()
            channel.start(now: now)
            lastService = now
            sendOutbox()
        }
    }

    func openSockets(family: Int32) throws {
        func socketFD() throws -> Int32 {
            let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw PortError("cannot open a UDP socket: \(SystemError("socket", errno: errno).reason)") }
            var size: Int32 = 8 << 20
            if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, 4) != 0 { _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
            if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, 4) != 0 { _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4) }
            return fd
        }
        func bind(_ fd: Int32, _ endpoint: UDPEndpoint, port: UInt16?) -> Int32 {
            var address = endpoint.address
            if let port {
                withUnsafeMutableBytes(of: &address) { $0.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self) }
            }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, endpoint.length) }
            }
        }
        func inUse(_ e: Int32) -> PortError {
            PortError("cannot bind \(local.text): \(SystemError("bind", errno: e).reason)\(e == EADDRINUSE ? " (another tunnel or the kernel's vxlan uses it)" : "")")
        }
        // Secure ports share their address with a handshake socket (SO_REUSEPORT). A probe
        // without it first, so that the address still cannot be shared with anything else: a
        // second port on it is refused as before.
        let steer = channel != nil && local.port != 0
        if steer {
            let probe = try socketFD()
            let bound = bind(probe, local, port: nil), e = errno
            SystemCalls.close(probe)
            guard bound == 0 else { throw inUse(e) }
        }
        rxFD = try socketFD()
        _ = vswitch_enable_udp_gro(rxFD)  // optional: without it every message is one datagram
        if steer { _ = vswitch_enable_reuseport(rxFD) }
        guard bind(rxFD, local, port: nil) == 0 else { throw inUse(errno) }
        if steer { openHandshakeSocket(bind: { bind($0, local, port: nil) }) }
        // Secure ports send from the socket they receive on: the address peers see (and follow,
        // through NATs) is the one that reaches this port.
        if channel != nil {
            let fd = dup(rxFD)
            guard fd >= 0 else { throw PortError("cannot open a UDP socket: \(SystemError("dup", errno: errno).reason)") }
            txFDs.append(fd)
            return
        }
        for _ in 0..<Self.txSockets {
            let fd = try socketFD()
            txFDs.append(fd)
            guard bind(fd, local, port: 0) == 0 else { throw PortError("cannot bind a sending socket: \(SystemError("bind", errno: errno).reason)") }
        }
    }

    deinit {
        close()
        remoteAddresses.deallocate(); remoteLengths.deallocate(); remoteMaxFrame.deallocate(); remoteCounters.deallocate()
        vxlanHeader.deallocate()
        cacheMACs.deallocate(); cacheRemotes.deallocate(); cacheSeen.deallocate()
        rxStarts.deallocate(); rxCapacities.deallocate(); rxLengths.deallocate(); rxSources.deallocate()
        rxSegments.deallocate(); rxSlab.deallocate()
        hsStarts.deallocate(); hsCapacities.deallocate(); hsLengths.deallocate(); hsSources.deallocate(); hsSegments.deallocate()
        hsSlab.deallocate()
        txStarts.deallocate(); txLengths.deallocate(); txDestinations.deallocate(); txDestinationLengths.deallocate(); txRemote.deallocate()
        arena.deallocate(); segmentScratch.deallocate(); gsoBuffer.deallocate(); gsoPieces.deallocate()
    }

    /// The handshake socket and the epoll of both (secure mode); on any failure, none (every
    /// datagram then comes to the data socket, as before).
    func openHandshakeSocket(bind: (Int32) -> Int32) {
        let fd = socket(Int32(local.address.ss_family), Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        var size: Int32 = 256 << 10
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
        guard vswitch_enable_reuseport(fd) == 0, bind(fd) == 0, vswitch_steer_secure_handshakes(rxFD) == 0,
              let poll = try? Epoll(capacity: 2)
        else { SystemCalls.close(fd); return }
        do {
            try poll.add(rxFD, token: 0)
            try poll.add(fd, token: 1)
        } catch { SystemCalls.close(fd); return }
        hsFD = fd
        handshakePoll = poll
    }

    public func close() {
        if rxFD >= 0 { SystemCalls.close(rxFD); rxFD = -1 }
        if hsFD >= 0 { SystemCalls.close(hsFD); hsFD = -1 }
        handshakePoll = nil
        for fd in txFDs { SystemCalls.close(fd) }
        txFDs.removeAll()
    }

    /// Traffic per remote (on the data-plane thread).
    public var trafficByRemote: [RemoteCounters] { (0..<remoteCount).map { remoteCounters[$0] } }

}
