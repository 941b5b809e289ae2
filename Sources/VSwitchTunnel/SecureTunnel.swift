import VSwitchWire
import Crypto
import Glibc

/// The timers and limits of the secure tunnel: WireGuard's values unless a test shortens them.
public struct SecureTimers: Sendable, Equatable {
    static let second: UInt64 = 1_000_000_000
    /// The initiator of a session starts a new handshake when it seals on a session this old (ns).
    public var rekeyAfterTime: UInt64 = 120 * second
    /// No session older than this seals or opens anything (ns).
    public var rejectAfterTime: UInt64 = 180 * second
    /// A new handshake once a session has sealed this many datagrams.
    public var rekeyAfterMessages: UInt64 = 1 << 60
    /// A session seals no more datagrams than this (2^64 - 2^13 - 1).
    public var rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)
    /// An unanswered initiation is replaced by a new one after this (ns).
    public var rekeyTimeout: UInt64 = 5 * second
    /// Attempts stop after this long without frames to send (ns).
    public var rekeyAttemptTime: UInt64 = 90 * second
    /// A keepalive goes out when data arrived and nothing was sent for this long (ns).
    public var keepaliveTimeout: UInt64 = 10 * second
    /// A cookie is used this long; the cookie secret is replaced this often (ns).
    public var cookieLifetime: UInt64 = 120 * second

    public init() {}
    public static let standard = SecureTimers()
}

/// What a secure port is configured with: its static key, one public key per remote (in the
/// order of the remotes), the optional pre-shared key, the data cipher and the timers.
public struct SecureConfiguration: Sendable {
    public var privateKey: SecurePrivateKey
    public var peers: [SecurePublicKey]
    public var presharedKey: SecureKey?
    public var cipher: SecureCipher
    public var timers: SecureTimers

    public init(privateKey: SecurePrivateKey, peers: [SecurePublicKey], presharedKey: SecureKey? = nil,
                cipher: SecureCipher = .default, timers: SecureTimers = .standard) {
        self.privateKey = privateKey
        self.peers = peers
        self.presharedKey = presharedKey
        self.cipher = cipher
        self.timers = timers
    }

    /// At most this many remotes per secure port (four session slots each in a 256-slot table).
    public static let maximumPeers = 64
}

/// One direction pair of keys agreed by a handshake, with its counters and replay window.
final class SecureSession {
    let localIndex: UInt32
    let remoteIndex: UInt32
    let sealer: AEAD
    let opener: AEAD
    /// The counter the next sealed datagram carries (from 1).
    var nextCounter: UInt64 = 1
    var replay = ReplayWindow()
    /// When the handshake completed (ns, the data plane's clock).
    let created: UInt64
    let isInitiator: Bool
    let peerIncarnation: UInt64

    init(localIndex: UInt32, remoteIndex: UInt32, keys: inout SecureHandshake.SessionKeys, cipher: SecureCipher, created: UInt64,
         isInitiator: Bool, peerIncarnation: UInt64) {
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        sealer = keys.send.withUnsafeBytes { AEAD(keyBytes: $0, cipher: cipher) }
        opener = keys.receive.withUnsafeBytes { AEAD(keyBytes: $0, cipher: cipher) }
        keys.wipe()
        self.created = created
        self.isInitiator = isInitiator
        self.peerIncarnation = peerIncarnation
    }
}

/// What `SecureTunnel.open` made of a datagram.
public enum SecureReceiveResult: Equatable, Sendable {
    /// An authentic new frame of `byteCount` bytes from remote `peer`, for network `vni`.
    case frame(byteCount: Int, vni: UInt32, peer: Int)
    /// A handshake message, cookie reply or keepalive, handled (answers are in the outbox).
    case consumed
    /// Nothing delivered, for this reason.
    case dropped(SecureDropReason)
}

/// What `SecureTunnel.seal` did.
public enum SecureSealResult: Equatable, Sendable {
    /// The datagram, this many bytes.
    case sealed(Int)
    /// No usable session with that remote: a handshake is under way; the frame is not sent.
    case noSession
    /// The buffer is too small or the VNI does not fit.
    case failed
}

/// Why a secure datagram was dropped. Each is a counter of the port.
public enum SecureDropReason: String, CaseIterable, Sendable {
    /// Too short for its type, a wrong magic byte (VXLAN? version 1?), a reserved byte set, an
    /// unknown type, or a plaintext of 1-3 bytes.
    case malformed
    /// Made for another data cipher (byte 3): the two ends are configured differently.
    case cipherMismatch
    /// A data datagram naming no live session: sealed before a restart of this side, expired, or noise.
    case unknownSession
    /// Counter 0, already received, or older than the window; or a handshake initiation seen before.
    case replayed
    /// The frame is larger than the buffer given to `open`.
    case frameTooLarge
    /// The tag did not verify: forged or corrupted.
    case authenticationFailed
    /// A handshake message whose mac1 or encryption did not verify, or that answers nothing.
    case handshakeInvalid
    /// A handshake from a static key that no remote of the port names.
    case unknownPeer
    /// A handshake message beyond the rate limits (or answered with a cookie under load).
    case handshakeLimited
}

extension SecureDropReason: CustomStringConvertible {
    public var description: String { rawValue }
}

/// The secure tunnel's protocol engine for one port: handshakes with each remote, sessions,
/// sealing and opening, timers, cookies and rate limits. No I/O: the port gives it datagrams and
/// the time, sends what it puts in its outbox, and reads where each remote now is from the
/// endpoint table it shares with the engine (the engine moves a remote's endpoint once a
/// datagram from a new address authenticates).
///
/// Threading: owned by the data-plane thread of its port, like the port.
///
/// Sessions are found by the receiver index in each data datagram: the low 8 bits are a slot of
/// a 256-entry table (four per remote: current, previous, next and a pending initiation), the
/// high 24 bits random, so a lookup is one load and one compare.
public final class SecureTunnel {
    public private(set) var configuration: SecureConfiguration
    public let incarnation: UInt64
    private var timers: SecureTimers { configuration.timers }
    private let cipherByte: UInt8
    private var ownMAC1Key: [UInt8]
    private var ownCookieKey: [UInt8]
    private var psk: [UInt8]

    struct Peer {
        let publicKey: [UInt8]
        var ss: [UInt8]?
        let mac1Key: [UInt8]
        let cookieKey: [UInt8]
        var current: SecureSession?
        var previous: SecureSession?
        var next: SecureSession?
        var initiation: SecureHandshake.Initiator?
        var initiationSentAt: UInt64 = 0
        /// When the current run of attempts started (0: not trying).
        var attemptsSince: UInt64 = 0
        var greatestTimestamp = [UInt8](repeating: 0, count: 12)
        var cookie: [UInt8]?
        var cookieAt: UInt64 = 0
        var lastSent: UInt64 = 0
        var lastDataReceived: UInt64 = 0
        /// The first data sent since anything was last received from the peer (0: none).
        var unansweredSince: UInt64 = 0
        /// When the latest handshake completed (0: never).
        var handshakeAt: UInt64 = 0
    }
    private var peers: [Peer]
    public var peerCount: Int { peers.count }

    // Session slots.
    private static let slotCount = 256
    private var slotPeer = [Int32](repeating: -1, count: 256)
    private var slotIndex = [UInt32](repeating: 0, count: 256)
    private var slotSession = [SecureSession?](repeating: nil, count: 256)

    // Endpoints, shared with the port.
    private let endpoints: UnsafeMutablePointer<sockaddr_storage>
    private let endpointLengths: UnsafeMutablePointer<UInt32>

    // Outbox: handshake messages, cookie replies and keepalives for the port to send.
    public static let outboxCapacity = 32
    private static let outboxSlot = 160
    private let outboxBytes: UnsafeMutableRawPointer
    private let outboxLengths: UnsafeMutablePointer<Int>
    private let outboxDestinations: UnsafeMutablePointer<sockaddr_storage>
    private let outboxDestinationLengths: UnsafeMutablePointer<UInt32>
    public private(set) var outboxCount = 0

    // Denial of service: load, cookies, per-source token buckets, recent initiations.
    private static let loadThreshold = 64
    private var loadWindowStart: UInt64 = 0
    private var loadCount = 0
    private var previousLoadCount = 0
    private var cookieSecret: [UInt8]
    private var cookieSecretAt: UInt64 = 0
    /// Cookie replies: at most `cookieRate` a second per port (each one is a datagram sent to
    /// whoever the source claims to be).
    static let cookieRate = 500.0
    private var cookieTokens = SecureTunnel.cookieRate
    private var cookieTokensAt: UInt64 = 0
    private static let bucketCount = 1024
    private var bucketTokens = [Double](repeating: 5, count: 1024)
    private var bucketAt = [UInt64](repeating: 0, count: 1024)
    private let bucketSeed = UInt64.random(in: .min ... .max)
    private static let recentCount = 64
    private var recentMAC1 = [UInt8](repeating: 0, count: 64 * 16)
    private var recentNext = 0
    private var lastTimestamp = [UInt8](repeating: 0, count: 12)
    private let wallClock: @Sendable () -> (seconds: Int64, nanoseconds: Int)

    /// An engine for `configuration`, sending to the endpoints in `endpoints` (one per remote, in
    /// the order of `configuration.peers`; the engine updates them on roaming). `wallClock` gives
    /// the handshake timestamps (CLOCK_REALTIME by default).
    public init(configuration: SecureConfiguration, endpoints: UnsafeMutablePointer<sockaddr_storage>,
                endpointLengths: UnsafeMutablePointer<UInt32>, incarnation: UInt64 = .random(in: .min ... .max),
                wallClock: @escaping @Sendable () -> (seconds: Int64, nanoseconds: Int) = SecureTunnel.realtime) {
        self.configuration = configuration
        self.incarnation = incarnation
        self.wallClock = wallClock
        cipherByte = configuration.cipher.rawValue
        let localPublic = configuration.privateKey.publicKey.bytes
        ownMAC1Key = SecureHandshake.mac1Key(for: localPublic)
        ownCookieKey = SecureHandshake.cookieKey(for: localPublic)
        psk = configuration.presharedKey?.withUnsafeBytes { Array($0) } ?? [UInt8](repeating: 0, count: 32)
        let key = configuration.privateKey
        peers = configuration.peers.map { p in
            Peer(publicKey: p.bytes, ss: Noise.dh(key.key, p.bytes), mac1Key: SecureHandshake.mac1Key(for: p.bytes),
                 cookieKey: SecureHandshake.cookieKey(for: p.bytes))
        }
        self.endpoints = endpoints
        self.endpointLengths = endpointLengths
        outboxBytes = .allocate(byteCount: Self.outboxCapacity * Self.outboxSlot, alignment: 16)
        outboxLengths = .allocate(capacity: Self.outboxCapacity)
        outboxDestinations = .allocate(capacity: Self.outboxCapacity)
        outboxDestinationLengths = .allocate(capacity: Self.outboxCapacity)
        cookieSecret = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    deinit {
        outboxBytes.deallocate(); outboxLengths.deallocate(); outboxDestinations.deallocate(); outboxDestinationLengths.deallocate()
        Noise.wipe(&psk)
        Noise.wipe(&cookieSecret)
    }

    public static let realtime: @Sendable () -> (seconds: Int64, nanoseconds: Int) = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int64(ts.tv_sec), Int(ts.tv_nsec))
    }

    /// New keys from the key files (SIGHUP): a changed private or pre-shared key ends every
    /// session and starts new handshakes; the same keys change nothing.
    public func reload(privateKey: SecurePrivateKey, presharedKey: SecureKey?, now: UInt64) {
        let newPSK = presharedKey?.withUnsafeBytes { Array($0) } ?? [UInt8](repeating: 0, count: 32)
        guard privateKey.publicKey != configuration.privateKey.publicKey || newPSK != psk else { return }
        configuration.privateKey = privateKey
        configuration.presharedKey = presharedKey
        Noise.wipe(&psk)
        psk = newPSK
        let localPublic = privateKey.publicKey.bytes
        ownMAC1Key = SecureHandshake.mac1Key(for: localPublic)
        ownCookieKey = SecureHandshake.cookieKey(for: localPublic)
        for p in peers.indices {
            peers[p].ss = Noise.dh(privateKey.key, peers[p].publicKey)
            eraseSessions(of: p)
            peers[p].cookie = nil
        }
        start(now: now)
    }

    /// Ends every session and starts new handshakes: the machine may have been restored from a
    /// snapshot (a VM generation change), so counters this process remembers may already have
    /// been used under these keys. Nothing is sealed under an old session after this.
    public func forgetSessions(now: UInt64) {
        for p in peers.indices { eraseSessions(of: p) }
        start(now: now)
    }

    // MARK: - Outbox

    public func outboxMessage(_ i: Int) -> (bytes: UnsafeRawBufferPointer, destination: UnsafePointer<sockaddr_storage>, length: UInt32) {
        (UnsafeRawBufferPointer(start: outboxBytes + i * Self.outboxSlot, count: outboxLengths[i]),
         UnsafePointer(outboxDestinations + i), outboxDestinationLengths[i])
    }

    public func clearOutbox() { outboxCount = 0 }

    private func post(_ message: [UInt8], to destination: UnsafePointer<sockaddr_storage>, length: UInt32) {
        guard outboxCount < Self.outboxCapacity, message.count <= Self.outboxSlot else { return }
        let i = outboxCount
        message.withUnsafeBytes { (outboxBytes + i * Self.outboxSlot).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        outboxLengths[i] = message.count
        outboxDestinations[i] = destination.pointee
        outboxDestinationLengths[i] = length
        outboxCount += 1
    }

    // MARK: - Slots

    private func reserveSlot(for peer: Int) -> UInt32? {
        guard let slot = slotPeer.firstIndex(of: -1) else { return nil }
        var index: UInt32
        repeat { index = UInt32.random(in: 1 ... 0xFF_FFFF) << 8 | UInt32(slot) } while index == slotIndex[slot]
        slotPeer[slot] = Int32(peer)
        slotIndex[slot] = index
        slotSession[slot] = nil
        return index
    }

    private func releaseSlot(_ index: UInt32) {
        let slot = Int(index & 0xFF)
        guard slotIndex[slot] == index else { return }
        slotPeer[slot] = -1
        slotSession[slot] = nil
    }

    private func release(_ session: SecureSession?) {
        if let session { releaseSlot(session.localIndex) }
    }

    private func eraseSessions(of p: Int) {
        release(peers[p].current); release(peers[p].previous); release(peers[p].next)
        peers[p].current = nil; peers[p].previous = nil; peers[p].next = nil
        if let i = peers[p].initiation { releaseSlot(i.localIndex) }
        peers[p].initiation = nil
    }

    // MARK: - Handshakes

    /// Starts handshakes with every remote (when the port opens, or after new keys), unless one
    /// is already under way.
    public func start(now: UInt64) {
        for p in peers.indices where peers[p].initiation == nil || now &- peers[p].initiationSentAt >= timers.rekeyTimeout {
            peers[p].attemptsSince = now
            initiate(p, now: now)
        }
    }

    private func timestamp() -> [UInt8] {
        let (s, n) = wallClock()
        var t = Noise.tai64n(seconds: s, nanoseconds: n)
        // Strictly increasing within this run, even if the clock steps back.
        if t.lexicographicallyPrecedes(lastTimestamp) || t == lastTimestamp {
            t = lastTimestamp
            var i = 11
            while i >= 0 { t[i] &+= 1; if t[i] != 0 { break }; i -= 1 }
        }
        lastTimestamp = t
        return t
    }

    /// Sends a new initiation to remote `p` (replacing one in flight).
    private func initiate(_ p: Int, now: UInt64) {
        guard let ss = peers[p].ss else { return }
        if let old = peers[p].initiation { releaseSlot(old.localIndex); peers[p].initiation = nil }
        guard let index = reserveSlot(for: p) else { return }
        let cookie = peers[p].cookie.flatMap { now &- peers[p].cookieAt < timers.cookieLifetime ? $0 : nil }
        guard let (message, state) = SecureHandshake.initiation(
            local: configuration.privateKey, peerStatic: peers[p].publicKey, ss: ss, cipher: cipherByte,
            ephemeral: Curve25519.KeyAgreement.PrivateKey(), timestamp: timestamp(), incarnation: incarnation,
            senderIndex: index, cookie: cookie)
        else { releaseSlot(index); return }
        peers[p].initiation = state
        peers[p].initiationSentAt = now
        if peers[p].attemptsSince == 0 { peers[p].attemptsSince = now }
        peers[p].lastSent = now
        post(message, to: endpoints + p, length: endpointLengths[p])
    }

    /// A frame waits for remote `p`: start a handshake unless one went out less than a rekey
    /// timeout ago.
    private func wantSession(_ p: Int, now: UInt64) {
        if peers[p].initiation == nil || now &- peers[p].initiationSentAt >= timers.rekeyTimeout {
            peers[p].attemptsSince = now  // frames to send: keep trying
            initiate(p, now: now)
        }
    }

    private func peerIndex(of publicKey: [UInt8]) -> Int? {
        peers.firstIndex { $0.publicKey == publicKey }
    }

    /// The handshake load: true when more than `loadThreshold` handshake messages arrived in
    /// this second or the one before.
    private func countHandshake(now: UInt64) -> Bool {
        if now &- loadWindowStart >= SecureTimers.second {
            previousLoadCount = now &- loadWindowStart >= 2 * SecureTimers.second ? 0 : loadCount
            loadCount = 0
            loadWindowStart = now
        }
        loadCount += 1
        return loadCount > Self.loadThreshold || previousLoadCount > Self.loadThreshold
    }

    /// The source address (IP and port) of a datagram as cookie input, and its IP for the buckets.
    private func sourceBytes(_ source: UnsafePointer<sockaddr_storage>) -> (cookie: [UInt8], ip: [UInt8]) {
        let raw = UnsafeRawPointer(source)
        let port = UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        let ip: [UInt8]
        if Int32(source.pointee.ss_family) == AF_INET6 {
            ip = Array(UnsafeRawBufferPointer(start: raw + 8, count: 16))
        } else {
            ip = Array(UnsafeRawBufferPointer(start: raw + 4, count: 4))
        }
        return (SecureHandshake.cookieSource(address: ip, port: port), ip)
    }

    /// A token from the bucket of source address `ip` (20 a second, bursts of 5).
    private func takeToken(ip: [UInt8], now: UInt64) -> Bool {
        var hasher = Hasher()
        hasher.combine(bucketSeed)
        hasher.combine(ip)
        let b = Int(UInt(bitPattern: hasher.finalize()) % UInt(Self.bucketCount))
        let elapsed = Double(now &- bucketAt[b]) / 1e9
        bucketTokens[b] = min(5, bucketTokens[b] + elapsed * 20)
        bucketAt[b] = now
        guard bucketTokens[b] >= 1 else { return false }
        bucketTokens[b] -= 1
        return true
    }

    private func takeCookieToken(now: UInt64) -> Bool {
        let elapsed = Double(now &- cookieTokensAt) / 1e9
        cookieTokens = min(Self.cookieRate, cookieTokens + elapsed * Self.cookieRate)
        cookieTokensAt = now
        guard cookieTokens >= 1 else { return false }
        cookieTokens -= 1
        return true
    }

    /// The checks every initiation and response passes before any Curve25519 work: mac1, and
    /// under load mac2 (else a cookie reply), then the source's rate limit. Nil if it may go on.
    private func admit(_ message: UnsafeRawBufferPointer, mac1At: Int, senderIndex: UInt32,
                       source: UnsafePointer<sockaddr_storage>, sourceLength: UInt32, now: UInt64) -> SecureDropReason? {
        guard SecureHandshake.macMatches(message, at: mac1At, key: ownMAC1Key) else { return .handshakeInvalid }
        let underLoad = countHandshake(now: now)
        let (cookieInput, ip) = sourceBytes(source)
        if underLoad {
            if now &- cookieSecretAt >= timers.cookieLifetime {
                Noise.wipe(&cookieSecret)
                cookieSecret = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
                cookieSecretAt = now
            }
            let cookie = SecureHandshake.cookie(secret: cookieSecret, source: cookieInput)
            guard SecureHandshake.macMatches(message, at: mac1At + 16, key: cookie) else {
                if takeCookieToken(now: now) {
                    let nonce = SymmetricKey(size: .bits192).withUnsafeBytes { Array($0) }
                    let reply = SecureHandshake.cookieReply(
                        receiverIndex: senderIndex, cookie: cookie, mac1: Array(message[mac1At..<mac1At + 16]),
                        cookieKey: ownCookieKey, nonce: nonce, cipher: cipherByte)
                    post(reply, to: source, length: sourceLength)
                }
                return .handshakeLimited
            }
        }
        return takeToken(ip: ip, now: now) ? nil : .handshakeLimited
    }

    private func handleInitiation(_ message: UnsafeRawBufferPointer, source: UnsafePointer<sockaddr_storage>, sourceLength: UInt32,
                                  now: UInt64) -> SecureReceiveResult {
        guard message.count == SecureHandshake.initiationLength else { return .dropped(.malformed) }
        let senderIndex = message.loadBigEndian(fromByteOffset: 4, as: UInt32.self)
        // The same initiation again (a replay at line rate): dropped before anything else.
        let mac1 = UnsafeRawBufferPointer(rebasing: message[SecureHandshake.initiationMAC1..<SecureHandshake.initiationMAC1 + 16])
        if recentlySeen(mac1) { return .dropped(.replayed) }
        if let refused = admit(message, mac1At: SecureHandshake.initiationMAC1, senderIndex: senderIndex, source: source,
                               sourceLength: sourceLength, now: now) { return .dropped(refused) }
        recentMAC1.replaceSubrange(recentNext * 16..<recentNext * 16 + 16, with: mac1)
        recentNext = (recentNext + 1) % Self.recentCount

        let consumed: SecureHandshake.ConsumedInitiation
        switch SecureHandshake.consumeInitiation(message, local: configuration.privateKey, cipher: cipherByte, ss: { key in
            peerIndex(of: key).flatMap { peers[$0].ss }
        }) {
        case .failure(.invalid): return .dropped(.handshakeInvalid)
        case .failure(.unknownPeer): return .dropped(.unknownPeer)
        case .success(let c): consumed = c
        }
        guard let p = peerIndex(of: consumed.peerStatic) else { return .dropped(.unknownPeer) }
        // A replayed initiation (older than one already accepted) is never answered.
        guard peers[p].greatestTimestamp.lexicographicallyPrecedes(consumed.timestamp) else { return .dropped(.replayed) }
        guard let index = reserveSlot(for: p) else { return .dropped(.handshakeLimited) }
        let cookie = peers[p].cookie.flatMap { now &- peers[p].cookieAt < timers.cookieLifetime ? $0 : nil }
        guard var (response, keys) = SecureHandshake.response(
            to: consumed, psk: psk, cipher: cipherByte, ephemeral: Curve25519.KeyAgreement.PrivateKey(), incarnation: incarnation,
            senderIndex: index, cookie: cookie)
        else { releaseSlot(index); return .dropped(.handshakeInvalid) }
        peers[p].greatestTimestamp = consumed.timestamp
        let session = SecureSession(localIndex: index, remoteIndex: consumed.senderIndex, keys: &keys, cipher: configuration.cipher,
                                    created: now, isInitiator: false, peerIncarnation: consumed.incarnation)
        slotSession[Int(index & 0xFF)] = session
        // A responder's session waits as `next` until the first data on it confirms it.
        release(peers[p].next)
        peers[p].next = session
        release(peers[p].previous)
        peers[p].previous = nil
        roam(p, to: source, length: sourceLength)
        peers[p].lastSent = now
        post(response, to: source, length: sourceLength)
        Noise.wipe(&response)
        return .consumed
    }

    private func recentlySeen(_ mac1: UnsafeRawBufferPointer) -> Bool {
        recentMAC1.withUnsafeBytes { ring in
            for r in 0..<Self.recentCount where memcmp(ring.baseAddress! + r * 16, mac1.baseAddress!, 16) == 0 { return true }
            return false
        }
    }

    private func handleResponse(_ message: UnsafeRawBufferPointer, source: UnsafePointer<sockaddr_storage>, sourceLength: UInt32,
                                now: UInt64) -> SecureReceiveResult {
        guard message.count == SecureHandshake.responseLength else { return .dropped(.malformed) }
        let senderIndex = message.loadBigEndian(fromByteOffset: 4, as: UInt32.self)
        if let refused = admit(message, mac1At: SecureHandshake.responseMAC1, senderIndex: senderIndex, source: source,
                               sourceLength: sourceLength, now: now) { return .dropped(refused) }
        let receiver = message.loadBigEndian(fromByteOffset: 8, as: UInt32.self)
        let slot = Int(receiver & 0xFF)
        guard slotIndex[slot] == receiver, slotPeer[slot] >= 0 else { return .dropped(.handshakeInvalid) }
        let p = Int(slotPeer[slot])
        guard let state = peers[p].initiation, state.localIndex == receiver,
              var consumed = SecureHandshake.consumeResponse(message, state: state, local: configuration.privateKey, psk: psk)
        else { return .dropped(.handshakeInvalid) }
        peers[p].initiation = nil
        peers[p].attemptsSince = 0
        let session = SecureSession(localIndex: receiver, remoteIndex: consumed.senderIndex, keys: &consumed.keys,
                                    cipher: configuration.cipher, created: now, isInitiator: true, peerIncarnation: consumed.incarnation)
        slotSession[slot] = session
        // An initiator's session is confirmed by the response: it seals from now on.
        if let next = peers[p].next {
            release(peers[p].previous)
            peers[p].previous = next
            peers[p].next = nil
            release(peers[p].current)
        } else {
            release(peers[p].previous)
            peers[p].previous = peers[p].current
        }
        peers[p].current = session
        forgetOtherIncarnations(p)
        peers[p].handshakeAt = now
        roam(p, to: source, length: sourceLength)
        // Confirm the session to the responder at once (a keepalive), whatever else is queued.
        sendKeepalive(p, now: now)
        return .consumed
    }

    private func handleCookieReply(_ message: UnsafeRawBufferPointer, now: UInt64) -> SecureReceiveResult {
        guard message.count == SecureHandshake.cookieReplyLength else { return .dropped(.malformed) }
        let receiver = message.loadBigEndian(fromByteOffset: 4, as: UInt32.self)
        let slot = Int(receiver & 0xFF)
        guard slotIndex[slot] == receiver, slotPeer[slot] >= 0 else { return .dropped(.handshakeInvalid) }
        let p = Int(slotPeer[slot])
        guard let state = peers[p].initiation, state.localIndex == receiver,
              let cookie = SecureHandshake.consumeCookieReply(message, mac1: state.mac1, cookieKey: peers[p].cookieKey)
        else { return .dropped(.handshakeInvalid) }
        peers[p].cookie = cookie
        peers[p].cookieAt = now
        return .consumed
    }

    /// A new session of remote `p` is confirmed: if its peer's incarnation differs from an older
    /// session's, the peer restarted, and every older session is erased (nothing sealed before
    /// a restart opens after it).
    private func forgetOtherIncarnations(_ p: Int) {
        guard let current = peers[p].current else { return }
        if let previous = peers[p].previous, previous.peerIncarnation != current.peerIncarnation {
            release(previous)
            peers[p].previous = nil
        }
        if let next = peers[p].next, next.peerIncarnation != current.peerIncarnation {
            release(next)
            peers[p].next = nil
        }
    }

    /// Remote `p` authenticated from `source`: that is where it is now.
    @inline(__always)
    private func roam(_ p: Int, to source: UnsafePointer<sockaddr_storage>, length: UInt32) {
        let endpoint = endpoints + p
        if endpointLengths[p] != length || memcmp(endpoint, source, Int(length)) != 0 {
            endpoint.pointee = source.pointee
            endpointLengths[p] = length
        }
    }

    private func sendKeepalive(_ p: Int, now: UInt64) {
        guard let s = peers[p].current else { return }
        var datagram = [UInt8](repeating: 0, count: SecureHandshake.dataOverhead - 4)
        let n = datagram.withUnsafeMutableBytes { seal(payload: UnsafeRawBufferPointer(start: nil, count: 0), vni: nil, session: s, into: $0) }
        guard n > 0 else { return }
        peers[p].lastSent = now
        post(datagram, to: endpoints + p, length: endpointLengths[p])
    }

    // MARK: - Data

    /// Seals `frame` for network `vni` to remote `peer` into `datagram` (frame + 36 bytes; the
    /// frame may already sit at offset 20 of it). Starts a handshake when the remote has no
    /// usable session, or when the session should be replaced soon.
    @inline(__always)
    public func seal(frame: UnsafeRawBufferPointer, vni: UInt32, peer p: Int, now: UInt64,
                     into datagram: UnsafeMutableRawBufferPointer) -> SecureSealResult {
        guard let s = peers[p].current, now &- s.created < timers.rejectAfterTime, s.nextCounter < timers.rejectAfterMessages else {
            wantSession(p, now: now)
            return .noSession
        }
        guard vni <= 0xFF_FFFF, datagram.count >= frame.count + SecureHandshake.dataOverhead else { return .failed }
        let n = seal(payload: frame, vni: vni, session: s, into: datagram)
        guard n > 0 else { return .failed }
        if peers[p].unansweredSince == 0 { peers[p].unansweredSince = now }
        peers[p].lastSent = now
        if (s.isInitiator && now &- s.created >= timers.rekeyAfterTime) || s.nextCounter >= timers.rekeyAfterMessages {
            if peers[p].initiation == nil || now &- peers[p].initiationSentAt >= timers.rekeyTimeout { initiate(p, now: now) }
        }
        return .sealed(n)
    }

    /// The datagram for `payload` (a frame, or nothing for a keepalive when `vni` is nil) under
    /// `s`, or 0 if the AEAD refused.
    @inline(__always)
    func seal(payload: UnsafeRawBufferPointer, vni: UInt32?, session s: SecureSession, into datagram: UnsafeMutableRawBufferPointer) -> Int {
        let counter = s.nextCounter
        s.nextCounter &+= 1  // taken even if sealing fails: a nonce is never offered twice
        let d = datagram.baseAddress!
        d.storeBytes(of: UInt32(bigEndian: UInt32(SecureHandshake.magic) << 24 | UInt32(SecureHandshake.MessageType.data.rawValue) << 16
                                | UInt32(cipherByte)), as: UInt32.self)
        d.storeBytes(of: s.remoteIndex.bigEndian, toByteOffset: 4, as: UInt32.self)
        d.storeBytes(of: counter.bigEndian, toByteOffset: 8, as: UInt64.self)
        var plaintext = 0
        if let vni {
            d.storeBytes(of: vni.bigEndian, toByteOffset: 16, as: UInt32.self)
            if payload.count > 0, let source = payload.baseAddress, source != UnsafeRawPointer(d + 20) {
                (d + 20).copyMemory(from: source, byteCount: payload.count)
            }
            plaintext = 4 + payload.count
        }
        let length = 16 + plaintext + 16
        let readable = UnsafeRawBufferPointer(datagram)
        let ok = s.sealer.seal(UnsafeRawBufferPointer(rebasing: readable[16..<16 + plaintext]),
                               nonce: UnsafeRawBufferPointer(rebasing: readable[4..<16]),
                               authenticating: UnsafeRawBufferPointer(rebasing: readable[0..<16]),
                               into: UnsafeMutableRawBufferPointer(rebasing: datagram[4..<length]))
        return ok ? length : 0
    }

    /// Opens (or handles) one datagram from `source`. A frame is written at the start of
    /// `frame` only once it has authenticated; with `frameHasHeadroom` the 4 bytes before it may
    /// be written too (the VNI lands there), so the datagram is decrypted straight into place.
    @inline(__always)
    public func open(datagram: UnsafeRawBufferPointer, from source: UnsafePointer<sockaddr_storage>, sourceLength: UInt32,
                     now: UInt64, into frame: UnsafeMutableRawBufferPointer, frameHasHeadroom: Bool) -> SecureReceiveResult {
        guard datagram.count >= 4, let d = datagram.baseAddress else { return .dropped(.malformed) }
        let head = UInt32(bigEndian: d.loadUnaligned(as: UInt32.self))
        guard head >> 24 == UInt32(SecureHandshake.magic), head >> 8 & 0xFF == 0 else { return .dropped(.malformed) }
        guard UInt8(truncatingIfNeeded: head) == cipherByte else { return .dropped(.cipherMismatch) }
        switch UInt8(truncatingIfNeeded: head >> 16) {
        case SecureHandshake.MessageType.data.rawValue: break
        case SecureHandshake.MessageType.initiation.rawValue:
            return handleInitiation(datagram, source: source, sourceLength: sourceLength, now: now)
        case SecureHandshake.MessageType.response.rawValue:
            return handleResponse(datagram, source: source, sourceLength: sourceLength, now: now)
        case SecureHandshake.MessageType.cookieReply.rawValue:
            return handleCookieReply(datagram, now: now)
        default: return .dropped(.malformed)
        }
        let count = datagram.count
        guard count == 32 || count >= SecureHandshake.dataOverhead else { return .dropped(.malformed) }
        let index = UInt32(bigEndian: d.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let slot = Int(index & 0xFF)
        guard slotIndex[slot] == index, let s = slotSession[slot], now &- s.created < timers.rejectAfterTime else {
            return .dropped(.unknownSession)
        }
        let counter = UInt64(bigEndian: d.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard s.replay.check(counter) else { return .dropped(.replayed) }
        let combined = UnsafeRawBufferPointer(rebasing: datagram[4..<count])
        let aad = UnsafeRawBufferPointer(rebasing: datagram[0..<16])
        var frameLength = 0
        var vni: UInt32 = 0
        if count == 32 {
            var scratch: UInt64 = 0
            guard withUnsafeMutableBytes(of: &scratch, { s.opener.open(combined, authenticating: aad, into: $0.baseAddress!, capacity: 8) }) == 0
            else { return .dropped(.authenticationFailed) }
        } else {
            frameLength = count - SecureHandshake.dataOverhead
            guard frame.count >= frameLength else { return .dropped(.frameTooLarge) }
            if frameHasHeadroom, let start = frame.baseAddress {
                let out = start - 4
                guard s.opener.open(combined, authenticating: aad, into: out, capacity: frame.count + 4) == frameLength + 4 else {
                    return .dropped(.authenticationFailed)
                }
                vni = UInt32(bigEndian: UnsafeRawPointer(out).loadUnaligned(as: UInt32.self)) & 0xFF_FFFF
            } else {
                guard let v = s.opener.open(combined, authenticating: aad, { plain -> UInt32 in
                    if frameLength > 0 { frame.copyMemory(from: UnsafeRawBufferPointer(rebasing: plain[4..<plain.count])) }
                    return UInt32(bigEndian: plain.baseAddress!.loadUnaligned(as: UInt32.self)) & 0xFF_FFFF
                }) else { return .dropped(.authenticationFailed) }
                vni = v
            }
        }
        guard s.replay.accept(counter) else { return .dropped(.replayed) }
        let p = Int(slotPeer[slot])
        received(on: s, peer: p, from: source, length: sourceLength, data: count > 32, now: now)
        return count == 32 ? .consumed : .frame(byteCount: frameLength, vni: vni, peer: p)
    }

    /// Bookkeeping after an authentic data datagram (or keepalive) on `s` from remote `p`.
    @inline(__always)
    private func received(on s: SecureSession, peer p: Int, from source: UnsafePointer<sockaddr_storage>, length: UInt32,
                          data: Bool, now: UInt64) {
        if s !== peers[p].current {
            if s === peers[p].next {
                // The first datagram on a responder's session confirms it.
                release(peers[p].previous)
                peers[p].previous = peers[p].current
                peers[p].current = s
                peers[p].next = nil
                peers[p].handshakeAt = now
                forgetOtherIncarnations(p)
                // A fresh session: an initiation of ours still unanswered is not needed.
                if let i = peers[p].initiation { releaseSlot(i.localIndex); peers[p].initiation = nil }
                peers[p].attemptsSince = 0
            }
        }
        peers[p].unansweredSince = 0
        if data { peers[p].lastDataReceived = now }
        roam(p, to: source, length: length)
        // A responder's session nearing its end: the initiator has not rekeyed, so do it here.
        if let c = peers[p].current, c === s, !c.isInitiator,
           now &- c.created >= timers.rejectAfterTime &- timers.keepaliveTimeout &- timers.rekeyTimeout,
           peers[p].initiation == nil || now &- peers[p].initiationSentAt >= timers.rekeyTimeout {
            initiate(p, now: now)
        }
    }

    // MARK: - Timers

    /// Runs the timers: expiry, retries, keepalives, dead-peer detection. Call about every
    /// `serviceInterval`.
    public func service(now: UInt64) {
        for p in peers.indices {
            for session in [peers[p].current, peers[p].previous, peers[p].next] {
                guard let s = session, now &- s.created >= timers.rejectAfterTime else { continue }
                release(s)
                if peers[p].current === s { peers[p].current = nil }
                if peers[p].previous === s { peers[p].previous = nil }
                if peers[p].next === s { peers[p].next = nil }
            }
            if peers[p].initiation != nil, now &- peers[p].initiationSentAt >= timers.rekeyTimeout {
                if peers[p].attemptsSince != 0, now &- peers[p].attemptsSince < timers.rekeyAttemptTime {
                    initiate(p, now: now)
                } else {
                    if let i = peers[p].initiation { releaseSlot(i.localIndex) }
                    peers[p].initiation = nil
                    peers[p].attemptsSince = 0
                }
            }
            if peers[p].current != nil, peers[p].lastDataReceived > peers[p].lastSent,
               now &- peers[p].lastDataReceived >= timers.keepaliveTimeout {
                sendKeepalive(p, now: now)
            }
            if peers[p].unansweredSince != 0, now &- peers[p].unansweredSince >= timers.keepaliveTimeout + timers.rekeyTimeout {
                peers[p].unansweredSince = 0
                if peers[p].initiation == nil { peers[p].attemptsSince = now; initiate(p, now: now) }
            }
            if peers[p].cookie != nil, now &- peers[p].cookieAt >= timers.cookieLifetime { peers[p].cookie = nil }
        }
    }

    /// How often `service` wants to run (ns): a quarter of a second.
    public static let serviceInterval: UInt64 = 250_000_000

    // MARK: - Status

    /// What `show` says of a remote.
    public struct PeerStatus: Sendable, Equatable {
        public var publicKey: SecurePublicKey
        /// Nanoseconds since the latest handshake completed; nil if none has.
        public var sinceHandshake: UInt64?
        /// Whether a session seals now.
        public var established: Bool
    }

    public func status(now: UInt64) -> [PeerStatus] {
        peers.map { p in
            PeerStatus(publicKey: SecurePublicKey(p.publicKey)!, sinceHandshake: p.handshakeAt == 0 ? nil : now &- p.handshakeAt,
                       established: p.current.map { now &- $0.created < timers.rejectAfterTime } ?? false)
        }
    }
}

extension SecureHandshake {
    /// Bytes a data datagram adds to a frame: 16 header, 4 VNI, 16 tag.
    public static let dataOverhead = 36
}

extension SecureTimers {
    /// The standard timers, shortened by test-only environment variables (seconds, decimals
    /// allowed; a count for the messages): `VSWITCH_SECURE_REKEY_AFTER_TIME`,
    /// `VSWITCH_SECURE_REJECT_AFTER_TIME`, `VSWITCH_SECURE_REKEY_AFTER_MESSAGES`,
    /// `VSWITCH_SECURE_REKEY_TIMEOUT`, `VSWITCH_SECURE_KEEPALIVE_TIMEOUT`. They exist so that the
    /// integration tests can show rekeying and expiry in seconds; never set them in production.
    public static func fromEnvironment() -> SecureTimers {
        var t = SecureTimers()
        func seconds(_ name: String) -> UInt64? {
            guard let raw = getenv(name), let v = Double(String(cString: raw)), v > 0, v < 1e9 else { return nil }
            return UInt64(v * 1e9)
        }
        if let v = seconds("VSWITCH_SECURE_REKEY_AFTER_TIME") { t.rekeyAfterTime = v }
        if let v = seconds("VSWITCH_SECURE_REJECT_AFTER_TIME") { t.rejectAfterTime = v }
        if let v = seconds("VSWITCH_SECURE_REKEY_TIMEOUT") { t.rekeyTimeout = v }
        if let v = seconds("VSWITCH_SECURE_KEEPALIVE_TIMEOUT") { t.keepaliveTimeout = v }
        if let raw = getenv("VSWITCH_SECURE_REKEY_AFTER_MESSAGES"), let v = UInt64(String(cString: raw)), v > 0 {
            t.rekeyAfterMessages = v
        }
        return t
    }
}
