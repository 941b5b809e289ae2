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
    private let smallestMaxFrame: Int
    private let largestMaxFrame: Int
    public var readinessDescriptor: Int32 { handshakePoll?.fd ?? rxFD }
    /// Messages read from the socket and not yet handed over: the data plane polls again.
    public var hasBufferedInput: Bool { pendingMessage < pendingCount }

    private var rxFD: Int32 = -1
    /// Secure mode: a second socket on the same address and port that the kernel gives every
    /// datagram but data (handshakes, cookie replies; a reuseport BPF program steers them), so a
    /// handshake flood fills its own small queue and is dropped there, apart from the data; and
    /// an epoll of both sockets, the port's readiness descriptor. -1/nil where the kernel cannot
    /// steer (then every datagram comes to `rxFD`).
    private var hsFD: Int32 = -1
    private var handshakePoll: Epoll?
    /// Handshake messages the port examines: at most `handshakeRate` a second (bursts of
    /// `handshakeBurst`); past that the socket is left unread, and the kernel drops what it
    /// cannot queue, until the next timer tick.
    static let handshakeRate = 4096.0
    static let handshakeBurst = 512.0
    private var handshakeTokens = UDPTunnelPort.handshakeBurst
    private var handshakeTokensAt: UInt64 = 0
    private var handshakesPaused = false
    private static let hsMessages = 8
    private let hsStarts: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let hsCapacities: UnsafeMutablePointer<UInt32>
    private let hsLengths: UnsafeMutablePointer<UInt32>
    private let hsSources: UnsafeMutablePointer<sockaddr_storage>
    private let hsSegments: UnsafeMutablePointer<UInt16>
    private let hsSlab: UnsafeMutableRawPointer
    private var txFDs: [Int32] = []
    /// The secure mode's protocol engine (handshakes, sessions); nil for VXLAN.
    private let channel: SecureTunnel?
    private var lastService: UInt64 = 0
    /// The data plane's clock when the current `transmit` began (ns).
    private var sendClock: UInt64 = 0
    private let remoteCount: Int
    private let remoteAddresses: UnsafeMutablePointer<sockaddr_storage>
    private let remoteLengths: UnsafeMutablePointer<UInt32>
    private let remoteMaxFrame: UnsafeMutablePointer<Int>
    private let remoteCounters: UnsafeMutablePointer<RemoteCounters>
    private let vxlanHeader: UnsafeMutableRawPointer

    // MAC -> remote cache (direct mapped).
    private static let cacheSlots = 4096
    private let cacheMACs: UnsafeMutablePointer<UInt64>
    private let cacheRemotes: UnsafeMutablePointer<Int32>
    private let cacheSeen: UnsafeMutablePointer<UInt32>
    /// Seconds a remembered MAC stays valid without traffic: the switch's `ageing-time`.
    public var ageingSeconds: UInt32 = 300

    // Receive: messages (one datagram, or several coalesced by UDP_GRO) land in a slab and are
    // checked, decapsulated (or opened) into pool buffers; a message the batch cannot take whole
    // waits in the slab for the next call.
    private static let rxMessages = 16
    private let rxStarts: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let rxCapacities: UnsafeMutablePointer<UInt32>
    private let rxLengths: UnsafeMutablePointer<UInt32>
    private let rxSources: UnsafeMutablePointer<sockaddr_storage>
    private let rxSegments: UnsafeMutablePointer<UInt16>
    private let rxSlab: UnsafeMutableRawPointer
    private static let datagramRoom = 65_536
    private var pendingMessage = 0, pendingCount = 0, pendingOffset = 0

    // Transmit queues, one per socket, and an arena for segments and sealed datagrams.
    private static let txSockets = 4
    private static let txQueueCapacity = 256
    private let txStarts: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let txLengths: UnsafeMutablePointer<UInt32>
    private let txDestinations: UnsafeMutablePointer<UnsafePointer<sockaddr_storage>?>
    private let txDestinationLengths: UnsafeMutablePointer<UInt32>
    private let txRemote: UnsafeMutablePointer<Int32>
    private var txCounts: [Int]
    private let arenaSlotSize: Int
    private let arenaSlots = 256
    private let arena: UnsafeMutableRawPointer
    private var arenaUsed = 0
    /// One segment, for secure mode (sealed from here into the arena).
    private let segmentScratch: UnsafeMutableRawPointer
    /// Secure: datagrams laid end to end for one UDP GSO send. VXLAN: a slot of `gsoSlot` bytes
    /// per datagram of a send, for its headers. And whether the kernel takes UDP_SEGMENT.
    private let gsoBuffer: UnsafeMutableRawPointer
    /// Internal, so that tests can take the path of a kernel without it.
    var udpGSO = true
    private static let gsoMaxSegments = 64
    private static let gsoSlot = 256
    /// The pieces of one UDP GSO send, up to two per datagram (VXLAN: headers, then the payload
    /// where it lies in the frame; secure: the datagram).
    private let gsoPieces: UnsafeMutablePointer<iovec>
    /// Room for every datagram of one 64 KiB superframe cut into the smallest segments we make.
    private static let gsoCapacity = 256 * 1024

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

    private func openSockets(family: Int32) throws {
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
    private func openHandshakeSocket(bind: (Int32) -> Int32) {
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

    /// A secure remote as `show` describes it.
    public struct PeerStatus: Sendable, Equatable {
        public var publicKey: String
        /// Where datagrams to it go now (the configured address until it roams).
        public var endpoint: String
        /// Seconds since the latest handshake completed; nil if none has.
        public var sinceHandshakeSeconds: Double?
        /// Whether a session seals frames to it now.
        public var established: Bool
    }

    /// The secure remotes, in the order of `remotes` (on the data-plane thread); empty for VXLAN.
    public func peerStatus() -> [PeerStatus] {
        guard let channel else { return [] }
        return channel.status(now: SystemCalls.monotonicNanoseconds()).enumerated().map { i, s in
            PeerStatus(publicKey: s.publicKey.base64, endpoint: UDPEndpoint.text(of: remoteAddresses + i),
                       sinceHandshakeSeconds: s.sinceHandshake.map { Double($0) / 1e9 }, established: s.established)
        }
    }

    /// New keys from the key files (SIGHUP, on the data-plane thread): a changed private or
    /// pre-shared key ends every session and starts new handshakes.
    public func reloadKeys(privateKey: SecurePrivateKey, presharedKey: SecureKey?) {
        guard let channel else { return }
        channel.reload(privateKey: privateKey, presharedKey: presharedKey, now: SystemCalls.monotonicNanoseconds())
        sendOutbox()
    }

    /// Ends every secure session and starts new handshakes (on the data-plane thread): after a
    /// VM generation change (a restored snapshot), no session this process held may seal again.
    public func forgetSessions() {
        guard let channel else { return }
        channel.forgetSessions(now: SystemCalls.monotonicNanoseconds())
        sendOutbox()
    }

    // MARK: - Timers (secure mode)

    public var isTimed: Bool { channel != nil }
    public var nextDeadline: UInt64? { channel == nil ? nil : lastService &+ SecureTunnel.serviceInterval }

    public func service(now: UInt64, counters: inout PortCounters) {
        guard let channel else { return }
        lastService = now
        channel.service(now: now)
        sendOutbox()
        // A paused handshake socket is read again once the budget has refilled a little.
        if handshakesPaused, let poll = handshakePoll, hsFD >= 0 {
            refillHandshakeTokens(now: now)
            if handshakeTokens >= 1, (try? poll.add(hsFD, token: 1)) != nil { handshakesPaused = false }
        }
    }

    private func refillHandshakeTokens(now: UInt64) {
        let elapsed = Double(now &- handshakeTokensAt) / 1e9
        handshakeTokens = min(Self.handshakeBurst, handshakeTokens + elapsed * Self.handshakeRate)
        handshakeTokensAt = now
    }

    /// Reads and handles what the handshake socket holds, within the budget; past it, stops
    /// watching the socket until the next timer tick (the kernel drops what does not fit its
    /// small queue, at no cost to the data).
    private func receiveHandshakes(clock: UInt64, counters: inout PortCounters) {
        guard let channel, hsFD >= 0, !handshakesPaused else { return }
        refillHandshakeTokens(now: clock)
        let frame = UnsafeMutableRawBufferPointer(start: hsSlab + Self.hsMessages * 256, count: 2048)
        while handshakeTokens >= 1 {
            let n = Int(vswitch_recv_batch(hsFD, hsStarts, hsCapacities, hsLengths, hsSources, hsSegments,
                                           UInt32(min(Self.hsMessages, Int(handshakeTokens)))))
            if n <= 0 { return }
            for i in 0..<n {
                handshakeTokens -= 1
                guard hsLengths[i] != UInt32.max else { counters.drop(.tunnelMalformed); continue }
                let source = UnsafePointer(hsSources + i)
                let sourceLength = UInt32(Int32(source.pointee.ss_family) == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
                switch channel.open(datagram: UnsafeRawBufferPointer(start: hsStarts[i], count: Int(hsLengths[i])), from: source,
                                    sourceLength: sourceLength, now: clock, into: frame, frameHasHeadroom: false) {
                case .dropped(let reason): counters.drop(Self.dropReason(reason))
                case .frame: counters.drop(.tunnelMalformed)  // data never comes this way
                case .consumed: break
                }
            }
        }
        if let poll = handshakePoll {
            poll.remove(hsFD)
            handshakesPaused = true
        }
    }

    /// Sends the handshake messages, cookie replies and keepalives the engine queued.
    private func sendOutbox() {
        guard let channel, channel.outboxCount > 0, let fd = txFDs.first else { channel?.clearOutbox(); return }
        for i in 0..<channel.outboxCount {
            let m = channel.outboxMessage(i)
            _ = m.destination.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, m.bytes.baseAddress, m.bytes.count, Int32(MSG_DONTWAIT), $0, m.length)
            }
        }
        channel.clearOutbox()
    }

    // MARK: - Receive

    public func receive(into batch: PacketBatch, counters: inout PortCounters) {
        guard rxFD >= 0 else { return }
        let start = batch.count
        // Consecutive segments of a TCP stream become one superframe (userspace GRO): one write
        // into a TAP instead of one per 1,400 bytes.
        // A secure datagram is authenticated whole, inner checksums included: no need to check
        // them again. VXLAN's outer UDP checksum may be zero (the kernel's default over IPv4), so
        // there every merged segment's TCP checksum is verified.
        let verify = channel == nil
        let clock = SystemCalls.monotonicNanoseconds()
        let now = UInt32(truncatingIfNeeded: clock / 1_000_000_000)
        // Handshake answers and keepalives the engine queued go out before this returns.
        defer { if let channel, channel.outboxCount > 0 { sendOutbox() } }
        if hsFD >= 0 { receiveHandshakes(clock: clock, counters: &counters) }
        while !batch.isFull {
            if pendingMessage >= pendingCount {
                let n = Int(vswitch_recv_batch(rxFD, rxStarts, rxCapacities, rxLengths, rxSources, rxSegments, UInt32(Self.rxMessages)))
                if n < 0 { counters.rxErrors &+= 1; return }
                if n == 0 { return }
                pendingMessage = 0
                pendingCount = n
                pendingOffset = 0
            }
            // A message is one datagram, or several of one flow that UDP_GRO coalesced (each
            // `rxSegments[i]` bytes, the last maybe shorter): usually one TSO superframe of the
            // sender, cut to fit a UDP GSO send. Its frames are merged again as soon as they are
            // in the batch (with the run before, if they continue it), so a batch holds many
            // messages; one that would not fit whole waits for the next call, unless the batch
            // holds nothing yet. Cutting a message in two would cost a second write into the
            // TAP, and a second ACK from its TCP, for the same data.
            while pendingMessage < pendingCount && !batch.isFull {
                let i = pendingMessage
                let length = rxLengths[i]
                // Secure datagrams come from wherever a remote is now (it roams): the session
                // they authenticate on says which remote sent them.
                guard length != UInt32.max, let remote = channel != nil ? -1 : remoteIndex(rxSources + i) else {
                    counters.drop(length == UInt32.max ? .tunnelMalformed : .unknownRemote)
                    pendingMessage += 1
                    continue
                }
                let total = Int(length)
                let segment = rxSegments[i] > 0 ? Int(rxSegments[i]) : max(total, 1)
                if pendingOffset == 0 && batch.count > start
                    && (total + segment - 1) / segment > batch.capacity - batch.count { return }
                let first = batch.count
                repeat {
                    let size = min(segment, total - pendingOffset)
                    accept(UnsafeRawPointer(rxStarts[i]! + pendingOffset), length: size, from: remote, source: rxSources + i,
                           into: batch, now: now, clock: clock, counters: &counters)
                    pendingOffset += max(size, 1)
                } while pendingOffset < total && !batch.isFull
                if pendingOffset >= total {
                    pendingMessage += 1
                    pendingOffset = 0
                }
                if batch.count - first > 1 || (first > start && batch.count > first) {
                    TCPCoalescer.coalesce(batch, from: max(start, first - 1), verifyChecksums: verify)
                }
            }
        }
    }

    /// Checks one datagram from `remote` and commits its frame to the batch.
    @inline(__always)
    private func accept(_ datagram: UnsafeRawPointer, length: Int, from sourceRemote: Int, source: UnsafePointer<sockaddr_storage>,
                        into batch: PacketBatch, now: UInt32, clock: UInt64, counters: inout PortCounters) {
        let target = batch.next
        let room = target.pointee.capacity - target.pointee.offset
        var frameLength: Int
        var remote = sourceRemote
        if let channel {
            let sourceLength = UInt32(Int32(source.pointee.ss_family) == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
            switch channel.open(datagram: UnsafeRawBufferPointer(start: datagram, count: length), from: source, sourceLength: sourceLength,
                                now: clock, into: UnsafeMutableRawBufferPointer(start: target.pointee.frame, count: room),
                                frameHasHeadroom: target.pointee.offset >= 4) {
            case .frame(let byteCount, let frameVNI, let peer):
                guard frameVNI == vni else { counters.drop(.unknownVNI); return }
                frameLength = byteCount
                remote = peer
            case .consumed:
                return
            case .dropped(let reason):
                counters.drop(Self.dropReason(reason))
                return
            }
        } else {
            guard length >= VXLANHeader.headerLength, length - VXLANHeader.headerLength <= room else { counters.drop(.tunnelMalformed); return }
            guard datagram.load(as: UInt8.self) & VXLANHeader.vniValidFlag != 0 else { counters.drop(.tunnelMalformed); return }
            let frameVNI = UInt32(bigEndian: datagram.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) >> 8
            guard frameVNI == vni else { counters.drop(.unknownVNI); return }
            frameLength = length - VXLANHeader.headerLength
            target.pointee.frame.copyMemory(from: datagram + VXLANHeader.headerLength, byteCount: frameLength)
        }
        target.pointee.length = frameLength
        // A peer on this host (the kernel's VXLAN over a veth) may leave the inner TCP/UDP
        // checksum partial, as it would for hardware to finish: describe it, as the pcap port does.
        if let offload = VirtioNetHeader.infer(frame: target.pointee.frame, length: frameLength, mtu: 65_535) {
            offload.store(to: target.pointee.frame - VirtioNetHeader.headerLength)
            target.pointee.offloadLength = VirtioNetHeader.headerLength
        }
        remoteCounters[remote].rxPackets &+= 1
        remoteCounters[remote].rxBytes &+= UInt64(frameLength)
        if frameLength >= 12 {
            let src = UInt64(bigEndian: UnsafeRawPointer(target.pointee.frame).loadUnaligned(fromByteOffset: 6, as: UInt64.self)) &>> 16
            if src & 0x0100_0000_0000 == 0 { remember(src, at: remote, now: now) }
        }
        batch.commit()
    }

    @inline(__always)
    private func remoteIndex(_ source: UnsafePointer<sockaddr_storage>) -> Int? {
        for r in 0..<remoteCount where remotes[r].sameHost(as: source) { return r }
        return nil
    }

    static func dropReason(_ r: SecureDropReason) -> DropReason {
        switch r {
        case .malformed, .frameTooLarge: .tunnelMalformed
        case .unknownSession: .unknownSession
        case .cipherMismatch: .cipherMismatch
        case .replayed: .replayed
        case .authenticationFailed: .authenticationFailed
        case .handshakeInvalid: .handshakeInvalid
        case .unknownPeer: .unknownPeer
        case .handshakeLimited: .handshakeLimited
        }
    }

    // MARK: - MAC -> remote

    @inline(__always)
    private static func slot(_ mac: UInt64) -> Int {
        Int(truncatingIfNeeded: (mac &* 0x9E37_79B9_7F4A_7C15) >> 52)  // top 12 bits: 4096 slots
    }

    @inline(__always)
    private func remember(_ mac: UInt64, at remote: Int, now: UInt32) {
        let s = Self.slot(mac)
        cacheMACs[s] = mac
        cacheRemotes[s] = Int32(remote)
        cacheSeen[s] = now
    }

    /// A topology change: which remote each MAC sits behind is learned again.
    public func forgetLearned() {
        for s in 0..<Self.cacheSlots { cacheRemotes[s] = -1 }
    }

    /// The remote `mac` was last seen behind, if known and fresh.
    @inline(__always)
    private func remote(of mac: UInt64, now: UInt32) -> Int? {
        let s = Self.slot(mac)
        guard cacheMACs[s] == mac, cacheRemotes[s] >= 0, now &- cacheSeen[s] <= ageingSeconds else { return nil }
        return Int(cacheRemotes[s])
    }

    // MARK: - Transmit

    public func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: inout PortCounters) {
        guard !txFDs.isEmpty else { return }
        sendClock = SystemCalls.monotonicNanoseconds()
        let now = UInt32(truncatingIfNeeded: sendClock / 1_000_000_000)
        // Handshakes the engine started for remotes without a session go out with the batch.
        defer { if let channel, channel.outboxCount > 0 { sendOutbox() } }
        let secure = channel != nil
        for i in 0..<count {
            let b = batch.buffers + Int(indices[i])
            let frame = UnsafeRawPointer(b.pointee.frame)
            let length = b.pointee.length
            guard length >= 14 else { counters.drop(.transmitUnsupported); continue }
            let dst = UInt64(bigEndian: frame.loadUnaligned(as: UInt64.self)) &>> 16
            let only = dst & 0x0100_0000_0000 == 0 ? remote(of: dst, now: now) : nil
            let socket = secure ? 0 : Int(VXLANSourcePort.forFrame(UnsafeRawBufferPointer(start: frame, count: length))) % Self.txSockets
            var header: VirtioNetHeader? = nil
            if b.pointee.offloadLength == VirtioNetHeader.headerLength {
                let h = VirtioNetHeader(loadingFrom: frame - VirtioNetHeader.headerLength)
                if !h.isPlain { header = h }
            }
            if let h = header {
                sendSegmented(frame, length: length, header: h, only: only, socket: socket, counters: &counters)
            } else {
                send(frame, length: length, inPlace: true, only: only, socket: socket, counters: &counters)
            }
        }
        flush(counters: &counters)
    }

    /// Segments (and checksums) a frame with offload metadata, then sends each segment.
    private func sendSegmented(_ frame: UnsafeRawPointer, length: Int, header: VirtioNetHeader, only: Int?, socket: Int,
                               counters: inout PortCounters) {
        var h = header
        // TCP segments may be made smaller than the sender's MSS: the receiver takes any size,
        // and each then fits the tunnel without IP fragmentation. A single TCP segment too big
        // for the tunnel becomes a superframe of one, cut the same way.
        let limit = only.map { remoteMaxFrame[$0] } ?? smallestMaxFrame
        var gso = h.gsoType.withoutECN
        if gso == .none, length > limit, h.flags.contains(.needsChecksum), h.checksumOffset == VirtioNetHeader.tcpChecksumOffset,
           let version = Self.ipVersion(frame, length: length) {
            gso = version == 4 ? .tcpv4 : .tcpv6
            h.gsoType = gso
            h.gsoSize = UInt16(clamping: length)
        }
        if gso == .tcpv4 || gso == .tcpv6 {
            let start = Int(h.checksumStart)
            if start + 13 <= length {
                let headers = start + Int(frame.load(fromByteOffset: start + 12, as: UInt8.self) >> 4) * 4
                let fits = limit - headers
                if fits > 0 && Int(h.gsoSize) > fits { h.gsoSize = UInt16(fits) }
            }
        }
        if udpGSO && (gso == .tcpv4 || gso == .tcpv6) {
            return sendGSO(frame, length: length, header: h, only: only, socket: socket, counters: &counters)
        }
        let result = GSOSegmenter.forEachSegment(
            of: UnsafeRawBufferPointer(start: frame, count: length), header: h,
            scratch: UnsafeMutableRawBufferPointer(start: segmentScratch, count: arenaSlotSize - SecureHandshake.dataOverhead)
        ) { segment in
            send(segment.baseAddress!, length: segment.count, inPlace: false, only: only, socket: socket, counters: &counters)
            return true
        }
        if case .failure(let f) = result { counters.drop(f == .scratchTooSmall ? .transmitTooBig : .transmitUnsupported) }
    }

    /// A TCP superframe's segments as UDP GSO sends: the datagrams, all of one size but the last,
    /// go to the kernel in runs that fit one sendmsg with UDP_SEGMENT (65,507 bytes, 64
    /// datagrams), which cuts them (in software late, or in the NIC). Falls back to one datagram
    /// per send if the kernel refuses UDP_SEGMENT.
    private func sendGSO(_ frame: UnsafeRawPointer, length: Int, header: VirtioNetHeader, only: Int?, socket: Int,
                         counters: inout PortCounters) {
        flush(counters: &counters)  // what is queued goes first: order is kept
        if channel == nil {
            sendGathering(frame, length: length, header: header, only: only, socket: socket, counters: &counters)
        } else {
            sendSealed(frame, length: length, header: header, only: only, socket: socket, counters: &counters)
        }
    }

    /// VXLAN: only each segment's headers are built (behind its VXLAN header, in a slot of
    /// `gsoBuffer`); its payload is gathered by the send from where it lies in the frame, so no
    /// payload byte is copied in userspace, only summed for the checksum.
    private func sendGathering(_ frame: UnsafeRawPointer, length: Int, header: VirtioNetHeader, only: Int?, socket: Int,
                               counters: inout PortCounters) {
        let limit = local.isIPv6 ? 65_527 : 65_507
        let h = VXLANHeader.headerLength
        var run = 0, runBytes = 0, size = 0, perRun = 1
        var slotTooSmall = false
        let result = GSOSegmenter.forEachSegmentGathering(
            of: UnsafeRawBufferPointer(start: frame, count: length), header: header,
            headers: { headersLength, segmentLength in
                guard h + headersLength <= Self.gsoSlot else { slotTooSmall = true; return nil }
                if size == 0 {
                    size = h + segmentLength
                    perRun = max(1, min(Self.gsoMaxSegments, limit / size))
                }
                let slot = gsoBuffer + run * Self.gsoSlot
                slot.copyMemory(from: vxlanHeader, byteCount: h)
                return slot + h
            }
        ) { headers, payload in
            gsoPieces[2 * run] = iovec(iov_base: gsoBuffer + run * Self.gsoSlot, iov_len: h + headers.count)
            gsoPieces[2 * run + 1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: payload.baseAddress), iov_len: payload.count)
            run += 1
            runBytes += h + headers.count + payload.count
            if run == perRun {
                transmitRun(datagrams: run, piecesEach: 2, bytes: runBytes, size: size, only: only, socket: socket, counters: &counters)
                run = 0
                runBytes = 0
            }
            return true
        }
        if case .failure = result { counters.drop(.transmitUnsupported); return }
        if slotTooSmall { counters.drop(.transmitTooBig) }
        if run > 0 {
            transmitRun(datagrams: run, piecesEach: 2, bytes: runBytes, size: size, only: only, socket: socket, counters: &counters)
        }
    }

    /// Secure: each segment is built straight into `gsoBuffer` where its datagram carries it
    /// (behind the 16-byte header and the VNI, with room for the tag after it) and sealed in
    /// place, so each payload byte is copied once, summed on the way and encrypted where it lies.
    private func sendSealed(_ frame: UnsafeRawPointer, length: Int, header: VirtioNetHeader, only: Int?, socket: Int,
                            counters: inout PortCounters) {
        // Each remote has its own session: a superframe for several is sealed once for each.
        for k in 0..<(only == nil ? remoteCount : 1) {
            sendSealed(frame, length: length, header: header, to: only ?? k, socket: socket, counters: &counters)
        }
    }

    private func sendSealed(_ frame: UnsafeRawPointer, length: Int, header: VirtioNetHeader, to remote: Int, socket: Int,
                            counters: inout PortCounters) {
        guard let channel else { return }
        let limit = local.isIPv6 ? 65_527 : 65_507
        let h = 20
        let t = 16
        var used = 0, count = 0, size = 0
        var sealFailed = false, noSession = false
        let clock = sendClock
        let result = GSOSegmenter.forEachSegment(
            of: UnsafeRawBufferPointer(start: frame, count: length), header: header,
            scratch: UnsafeMutableRawBufferPointer(start: segmentScratch, count: arenaSlotSize - SecureHandshake.dataOverhead),
            placement: { segment in
                guard used + h + segment + t <= Self.gsoCapacity else { return nil }
                return gsoBuffer + used + h
            },
            usesPlacement: true
        ) { segment in
            let datagram = h + segment.count + t
            // The segment already sits at offset 20 of its datagram: sealed in place.
            switch channel.seal(frame: segment, vni: vni, peer: remote, now: clock,
                                into: UnsafeMutableRawBufferPointer(start: gsoBuffer + used, count: datagram)) {
            case .sealed(let n) where n == datagram: break
            case .noSession: noSession = true; return false
            default: sealFailed = true; return false
            }
            if count == 0 { size = datagram }
            used += datagram
            count += 1
            return true
        }
        if noSession { counters.drop(.noSession); return }
        if sealFailed { counters.txErrors &+= 1 }
        if case .failure(let f) = result { counters.drop(f == .scratchTooSmall ? .transmitTooBig : .transmitUnsupported); return }
        guard count > 0 else { return }
        // Runs of equal datagrams (the last may be shorter), each one send.
        let perRun = max(1, min(Self.gsoMaxSegments, limit / size))
        var offset = 0, sent = 0
        while sent < count {
            let n = min(perRun, count - sent)
            let bytes = min(n * size, used - offset)
            for j in 0..<n {
                gsoPieces[j] = iovec(iov_base: gsoBuffer + offset + j * size, iov_len: min(size, bytes - j * size))
            }
            transmitRun(datagrams: n, piecesEach: 1, bytes: bytes, size: size, only: remote, socket: socket, counters: &counters)
            offset += bytes
            sent += n
        }
    }

    /// Sends the `datagrams` datagrams whose pieces are in `gsoPieces` (`piecesEach` each, `bytes`
    /// in all, each `size` bytes but the last) to the destination(s): one UDP GSO send, or one
    /// send per datagram once the kernel has refused UDP_SEGMENT.
    private func transmitRun(datagrams count: Int, piecesEach: Int, bytes: Int, size: Int, only: Int?, socket: Int,
                             counters: inout PortCounters) {
        let overhead = encapsulation.overhead
        let fanOut = only == nil ? remoteCount : 1
        for k in 0..<fanOut {
            let r = only ?? k
            if udpGSO {
                let n = vswitch_send_gso(txFDs[socket], gsoPieces, UInt32(count * piecesEach), UInt16(size),
                                         remoteAddresses + r, remoteLengths[r])
                if n >= 0 {
                    let inner = UInt64(bytes - count * overhead)
                    remoteCounters[r].txPackets &+= UInt64(count)
                    remoteCounters[r].txBytes &+= inner
                    counters.txPackets &+= UInt64(count)
                    counters.txBytes &+= inner
                    continue
                }
                if -n == EAGAIN || -n == ENOBUFS { counters.drop(.transmitQueueFull, count: UInt64(count)); continue }
                guard -n == EINVAL || -n == ENOPROTOOPT || -n == EIO || -n == EOPNOTSUPP else { counters.txErrors &+= 1; continue }
                // No UDP GSO here: send these one by one, and every later superframe too.
                udpGSO = false
            }
            for d in 0..<count {
                let n = vswitch_send_gso(txFDs[socket], gsoPieces + d * piecesEach, UInt32(piecesEach), 0, remoteAddresses + r, remoteLengths[r])
                if n >= 0 {
                    let inner = UInt64(max(0, Int(n) - overhead))
                    remoteCounters[r].txPackets &+= 1
                    remoteCounters[r].txBytes &+= inner
                    counters.txPackets &+= 1
                    counters.txBytes &+= inner
                } else if -n == EAGAIN || -n == ENOBUFS {
                    counters.drop(.transmitQueueFull)
                } else {
                    counters.txErrors &+= 1
                }
            }
        }
    }

    /// 4 or 6 for an IPv4/IPv6 frame (after up to two VLAN tags), nil otherwise.
    private static func ipVersion(_ frame: UnsafeRawPointer, length: Int) -> Int? {
        var offset = 12
        while offset + 2 <= length {
            switch UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) {
            case 0x0800: return 4
            case 0x86DD: return 6
            case 0x8100 where offset < 20, 0x88A8 where offset < 20: offset += 4
            default: return nil
            }
        }
        return nil
    }


    /// Queues one inner frame for its remote(s). `inPlace`: the frame stays in its buffer until
    /// the flush (VXLAN); otherwise it is copied (or sealed) into the arena first.
    @inline(__always)
    private func send(_ frame: UnsafeRawPointer, length: Int, inPlace: Bool, only: Int?, socket: Int, counters: inout PortCounters) {
        let fanOut = only == nil ? remoteCount : 1
        if txCounts[socket] + fanOut > Self.txQueueCapacity || (arenaUsed == arenaSlots && (!inPlace || channel != nil)) {
            flush(counters: &counters)
        }
        var bytes = UnsafeRawPointer(frame)
        if let channel {
            // Too big for every destination: drop before spending a counter and a seal on it.
            let largest = only.map { remoteMaxFrame[$0] } ?? largestMaxFrame
            guard length <= largest, length + SecureHandshake.dataOverhead <= arenaSlotSize else { counters.drop(.transmitTooBig); return }
            // Each remote has its own session: the frame is sealed once for each.
            var tooBig = false
            for k in 0..<fanOut {
                let r = only ?? k
                if length > remoteMaxFrame[r] { tooBig = true; continue }
                if arenaUsed == arenaSlots || txCounts[socket] == Self.txQueueCapacity { flush(counters: &counters) }
                let slot = arena + arenaUsed * arenaSlotSize
                switch channel.seal(frame: UnsafeRawBufferPointer(start: frame, count: length), vni: vni, peer: r, now: sendClock,
                                    into: UnsafeMutableRawBufferPointer(start: slot, count: arenaSlotSize)) {
                case .sealed(let wire):
                    arenaUsed += 1
                    let q = socket * Self.txQueueCapacity + txCounts[socket]
                    txStarts[q] = slot
                    txLengths[q] = UInt32(wire)
                    txDestinations[q] = UnsafePointer(remoteAddresses + r)
                    txDestinationLengths[q] = remoteLengths[r]
                    txRemote[q] = Int32(r)
                    txCounts[socket] += 1
                case .noSession: counters.drop(.noSession)
                case .failed: counters.txErrors &+= 1
                }
            }
            if tooBig { counters.drop(.transmitTooBig) }
            return
        } else if !inPlace {
            guard length <= arenaSlotSize else { counters.drop(.transmitTooBig); return }
            let slot = arena + arenaUsed * arenaSlotSize
            slot.copyMemory(from: frame, byteCount: length)
            arenaUsed += 1
            bytes = UnsafeRawPointer(slot)
        }
        let base = socket * Self.txQueueCapacity
        var tooBig = false
        for k in 0..<fanOut {
            let r = only ?? k
            if length > remoteMaxFrame[r] { tooBig = true; continue }
            let q = base + txCounts[socket]
            txStarts[q] = UnsafeMutableRawPointer(mutating: bytes)
            txLengths[q] = UInt32(length)
            txDestinations[q] = UnsafePointer(remoteAddresses + r)
            txDestinationLengths[q] = remoteLengths[r]
            txRemote[q] = Int32(r)
            txCounts[socket] += 1
        }
        if tooBig { counters.drop(.transmitTooBig) }
    }

    /// Sends every queued datagram and frees the arena.
    private func flush(counters: inout PortCounters) {
        let header = channel == nil ? UnsafeRawPointer(vxlanHeader) : nil
        let headerLength = UInt32(channel == nil ? VXLANHeader.headerLength : 0)
        for s in 0..<txFDs.count where txCounts[s] > 0 {
            let base = s * Self.txQueueCapacity
            let n = txCounts[s]
            var done = 0
            while done < n {
                let r = Int(vswitch_send_batch_to(txFDs[s], header, headerLength, txStarts + base + done, txLengths + base + done,
                                                  txDestinations + base + done, txDestinationLengths + base + done, UInt32(n - done)))
                if r > 0 {
                    for q in (base + done)..<(base + done + r) {
                        let remote = Int(txRemote[q])
                        let inner = UInt64(txLengths[q]) &- UInt64(channel == nil ? 0 : SecureHandshake.dataOverhead)
                        remoteCounters[remote].txPackets &+= 1
                        remoteCounters[remote].txBytes &+= inner
                        counters.txPackets &+= 1
                        counters.txBytes &+= inner
                    }
                    done += r
                } else if -r == EAGAIN || -r == ENOBUFS {
                    counters.drop(.transmitQueueFull, count: UInt64(n - done))
                    done = n
                } else {
                    if -r == EMSGSIZE { counters.drop(.transmitTooBig) } else { counters.txErrors &+= 1 }
                    done += 1
                }
            }
            txCounts[s] = 0
        }
        arenaUsed = 0
    }
}
