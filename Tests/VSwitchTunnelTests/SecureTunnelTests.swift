import Glibc
import Testing
@testable import VSwitchTunnel

/// The secure tunnel's engine between sites in memory: handshakes, sessions, restarts, replays,
/// strangers, cookies, rekeying and roaming, on a clock the test moves.
struct SecureTunnelTests {
    static let second: UInt64 = 1_000_000_000

    /// An endpoint table of one address (IPv4 198.18.0.x:4789).
    final class Endpoints {
        let addresses = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 4)
        let lengths = UnsafeMutablePointer<UInt32>.allocate(capacity: 4)
        init(_ hosts: [UInt8], port: UInt16 = 4789) {
            for (i, host) in hosts.enumerated() { Endpoints.set(addresses + i, host: host, port: port); lengths[i] = 16 }
        }
        static func set(_ a: UnsafeMutablePointer<sockaddr_storage>, host: UInt8, port: UInt16) {
            a.pointee = sockaddr_storage()
            a.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                $0.pointee.sin_family = sa_family_t(AF_INET)
                $0.pointee.sin_port = port.bigEndian
                $0.pointee.sin_addr.s_addr = (UInt32(0xC612_0000) | UInt32(host)).bigEndian
            }
        }
        deinit { addresses.deallocate(); lengths.deallocate() }
    }

    /// A site: its key, its address (198.18.0.`host`), its engine towards `peers`.
    final class Site {
        let key: SecurePrivateKey
        let host: UInt8
        var endpoints: Endpoints
        var engine: SecureTunnel
        let address = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
        init(key: SecurePrivateKey = .generate(), host: UInt8, peers: [(SecurePublicKey, UInt8)], cipher: SecureCipher = .default,
             timers: SecureTimers = .standard, clock: @escaping @Sendable () -> (seconds: Int64, nanoseconds: Int) = SecureTunnel.realtime) {
            self.key = key
            self.host = host
            endpoints = Endpoints(peers.map(\.1))
            engine = SecureTunnel(configuration: SecureConfiguration(privateKey: key, peers: peers.map(\.0), cipher: cipher, timers: timers),
                                  endpoints: endpoints.addresses, endpointLengths: endpoints.lengths, wallClock: clock)
            Endpoints.set(address, host: host, port: 4789)
        }
        /// A restart: a new engine (new incarnation, no sessions) with the same keys and peers.
        func restart(peers: [(SecurePublicKey, UInt8)], cipher: SecureCipher = .default, timers: SecureTimers = .standard,
                     clock: @escaping @Sendable () -> (seconds: Int64, nanoseconds: Int) = SecureTunnel.realtime) {
            endpoints = Endpoints(peers.map(\.1))
            engine = SecureTunnel(configuration: SecureConfiguration(privateKey: key, peers: peers.map(\.0), cipher: cipher, timers: timers),
                                  endpoints: endpoints.addresses, endpointLengths: endpoints.lengths, wallClock: clock)
        }
        /// The outbox's messages, and the outbox emptied.
        func takeOutbox() -> [[UInt8]] { takeAddressedOutbox().map(\.0) }

        /// The outbox's messages with the last byte of each destination's IPv4 address.
        func takeAddressedOutbox() -> [([UInt8], UInt8)] {
            defer { engine.clearOutbox() }
            return (0..<engine.outboxCount).map {
                let m = engine.outboxMessage($0)
                let host = UnsafeRawPointer(m.destination).load(fromByteOffset: 7, as: UInt8.self)
                return (Array(m.bytes), host)
            }
        }
        /// Opens `datagram` as if it came from `source` (default: 198.18.0.`from`).
        @discardableResult
        func receive(_ datagram: [UInt8], from host: UInt8, port: UInt16 = 4789, now: UInt64) -> (SecureReceiveResult, [UInt8]) {
            let source = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
            defer { source.deallocate() }
            Endpoints.set(source, host: host, port: port)
            var frame = [UInt8](repeating: 0, count: 2048)
            let r = datagram.withUnsafeBytes { d in
                frame.withUnsafeMutableBytes { f in
                    engine.open(datagram: d, from: source, sourceLength: 16, now: now, into: f, frameHasHeadroom: false)
                }
            }
            if case .frame(let n, _, _) = r { return (r, Array(frame[0..<n])) }
            return (r, [])
        }
        func seal(_ frame: [UInt8], to peer: Int = 0, vni: UInt32 = 7, now: UInt64) -> (SecureSealResult, [UInt8]) {
            var out = [UInt8](repeating: 0, count: frame.count + 64)
            let r = frame.withUnsafeBytes { f in out.withUnsafeMutableBytes { engine.seal(frame: f, vni: vni, peer: peer, now: now, into: $0) } }
            if case .sealed(let n) = r { return (r, Array(out[0..<n])) }
            return (r, [])
        }
        deinit { address.deallocate() }
    }

    /// Two sites that name each other.
    struct Pair {
        let a: SecureTunnel
        init(cipher: SecureCipher) {
            let keyB = SecurePrivateKey.generate()
            let e = Endpoints([2])
            a = SecureTunnel(configuration: SecureConfiguration(privateKey: .generate(), peers: [keyB.publicKey], cipher: cipher),
                             endpoints: e.addresses, endpointLengths: e.lengths)
            _ = Unmanaged.passRetained(e)  // lives as long as the test process
        }
    }

    static func sites(cipher: SecureCipher = .default, timers: SecureTimers = .standard) -> (Site, Site) {
        let ka = SecurePrivateKey.generate(), kb = SecurePrivateKey.generate()
        return (Site(key: ka, host: 1, peers: [(kb.publicKey, 2)], cipher: cipher, timers: timers),
                Site(key: kb, host: 2, peers: [(ka.publicKey, 1)], cipher: cipher, timers: timers))
    }

    /// Passes outbox messages back and forth until both are quiet; returns every result.
    @discardableResult
    static func exchange(_ x: Site, _ y: Site, now: UInt64) -> [SecureReceiveResult] {
        var results: [SecureReceiveResult] = []
        for _ in 0..<8 {
            let fromX = x.takeOutbox(), fromY = y.takeOutbox()
            if fromX.isEmpty && fromY.isEmpty { break }
            for m in fromX { results.append(y.receive(m, from: x.host, now: now).0) }
            for m in fromY { results.append(x.receive(m, from: y.host, now: now).0) }
        }
        return results
    }

    static let frame: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06] + [UInt8](repeating: 0x5a, count: 46)

    @Test(arguments: SecureCipher.allCases)
    func aHandshakeThenFramesBothWays(cipher: SecureCipher) {
        let (a, b) = Self.sites(cipher: cipher)
        #expect(a.seal(Self.frame, now: Self.second).0 == .noSession, "no session yet")
        a.engine.start(now: Self.second)
        let results = Self.exchange(a, b, now: Self.second)
        #expect(results == [.consumed, .consumed, .consumed], "initiation, response, keepalive")
        let (r1, d1) = a.seal(Self.frame, now: 2 * Self.second)
        #expect(r1 == .sealed(Self.frame.count + 36))
        let (o1, f1) = b.receive(d1, from: 1, now: 2 * Self.second)
        #expect(o1 == .frame(byteCount: Self.frame.count, vni: 7, peer: 0))
        #expect(f1 == Self.frame)
        let (_, d2) = b.seal(Self.frame, now: 2 * Self.second)
        #expect(a.receive(d2, from: 2, now: 2 * Self.second).1 == Self.frame)
        #expect(a.engine.status(now: 2 * Self.second).first?.established == true)
        #expect(b.engine.status(now: 2 * Self.second).first?.sinceHandshake == Self.second)
    }

    @Test func replaysAndForgeriesAreDropped() {
        let (a, b) = Self.sites()
        a.engine.start(now: 0)
        Self.exchange(a, b, now: 0)
        let (_, d) = a.seal(Self.frame, now: 1)
        #expect(b.receive(d, from: 1, now: 1).0 == .frame(byteCount: Self.frame.count, vni: 7, peer: 0))
        #expect(b.receive(d, from: 1, now: 2).0 == .dropped(.replayed))
        for position in [0, 1, 2, 3, 5, 9, 17, 30, d.count - 1] {
            var bad = d
            bad[position] ^= 0x10
            let r = b.receive(bad, from: 1, now: 3).0
            #expect(r != .frame(byteCount: Self.frame.count, vni: 7, peer: 0), "byte \(position)")
        }
        var counter2 = a.seal(Self.frame, now: 4).1
        counter2[40] ^= 1
        #expect(b.receive(counter2, from: 1, now: 4).0 == .dropped(.authenticationFailed))
    }

    /// A datagram recorded before the receiver restarted names a session that no longer exists.
    @Test func datagramsFromBeforeAReceiverRestartAreNeverDelivered() {
        let (a, b) = Self.sites()
        a.engine.start(now: 0)
        Self.exchange(a, b, now: 0)
        let recorded = (0..<10).map { _ in a.seal(Self.frame, now: 1).1 }
        for d in recorded.prefix(5) { #expect(b.receive(d, from: 1, now: 1).0 != .dropped(.unknownSession)) }
        b.restart(peers: [(a.key.publicKey, 1)])
        b.engine.start(now: 2 * Self.second)
        Self.exchange(a, b, now: 2 * Self.second)
        for d in recorded { #expect(b.receive(d, from: 1, now: 3 * Self.second).0 == .dropped(.unknownSession)) }
        // Frames flow again on the new session.
        #expect(b.receive(a.seal(Self.frame, now: 3 * Self.second).1, from: 1, now: 3 * Self.second).1 == Self.frame)
    }

    /// A datagram sealed before the sender restarted (withheld by an attacker) is not delivered
    /// once the restarted sender's new session is confirmed: the incarnation changed.
    @Test func datagramsFromBeforeASenderRestartAreNeverDelivered() {
        let (a, b) = Self.sites()
        a.engine.start(now: 0)
        Self.exchange(a, b, now: 0)
        let withheld = a.seal(Self.frame, now: 1).1
        a.restart(peers: [(b.key.publicKey, 2)])
        a.engine.start(now: Self.second)
        Self.exchange(a, b, now: Self.second)
        #expect(b.receive(withheld, from: 1, now: Self.second).0 == .dropped(.unknownSession))
        #expect(b.receive(a.seal(Self.frame, now: Self.second).1, from: 1, now: Self.second).1 == Self.frame)
    }

    /// Nonces never repeat under one key: every handshake makes new keys (new ephemerals), and
    /// each session's counter only grows. Over many restarts of both sides, no two sessions
    /// share keys: the same frame sealed at the same counter differs every time.
    @Test func restartsNeverRepeatAKeyAndNonce() {
        let (a, b) = Self.sites()
        var seen = Set<[UInt8]>()
        for round in 0..<30 {
            if round % 2 == 0 { a.restart(peers: [(b.key.publicKey, 2)]) } else { b.restart(peers: [(a.key.publicKey, 1)]) }
            let now = UInt64(round + 1) * Self.second
            a.engine.start(now: now)
            Self.exchange(a, b, now: now)
            let d = a.seal(Self.frame, now: now).1
            #expect(b.receive(d, from: 1, now: now).1 == Self.frame, "round \(round)")
            // Counter 1 or 2 of a new session: the ciphertext is new each time.
            #expect(seen.insert(Array(d[16...])).inserted, "round \(round)")
        }
    }

    /// Forward secrecy: someone who recorded a handshake and the traffic after it, and later
    /// holds both sites' static private keys, cannot open that traffic. Replaying the recorded
    /// initiation to an engine with the stolen responder key makes a session with new keys (a
    /// new responder ephemeral); the recorded data does not open under it, nor on an engine with
    /// the stolen initiator key, which has no ephemeral to finish the recorded response with.
    @Test func recordedTrafficDoesNotOpenWithTheLongTermKeys() {
        let (a, b) = Self.sites()
        a.engine.start(now: 0)
        let initiation = a.takeOutbox()[0]
        #expect(b.receive(initiation, from: 1, now: 0).0 == .consumed)
        let response = b.takeOutbox()[0]
        #expect(a.receive(response, from: 2, now: 0).0 == .consumed)
        Self.exchange(a, b, now: 0)
        let recorded = a.seal(Self.frame, now: 1).1
        #expect(b.receive(recorded, from: 1, now: 1).1 == Self.frame, "the real session opens it")

        // Later, both static keys are stolen.
        let stolenB = Site(key: b.key, host: 2, peers: [(a.key.publicKey, 1)])
        #expect(stolenB.receive(initiation, from: 1, now: 2).0 == .consumed, "the replayed initiation is answered, with a new ephemeral")
        let (r, _) = stolenB.receive(recorded, from: 1, now: 2)
        #expect(r == .dropped(.unknownSession) || r == .dropped(.authenticationFailed), "\(r)")
        let stolenA = Site(key: a.key, host: 1, peers: [(b.key.publicKey, 2)])
        #expect(stolenA.receive(response, from: 2, now: 2).0 == .dropped(.handshakeInvalid), "no initiation of its own to finish")
        #expect(stolenA.receive(recorded, from: 2, now: 2).0 == .dropped(.unknownSession))
    }

    /// SIGHUP: the same keys change nothing (the session and its counter go on); a new
    /// pre-shared key ends every session and handshakes anew, with new keys.
    @Test func reloadingKeys() {
        let (a, b) = Self.sites()
        a.engine.start(now: 0)
        Self.exchange(a, b, now: 0)
        let first = a.seal(Self.frame, now: 1).1
        a.engine.reload(privateKey: a.key, presharedKey: nil, now: 2)
        #expect(a.takeOutbox().isEmpty, "the same keys: no new handshake")
        let second = a.seal(Self.frame, now: 3).1
        #expect(second[4..<8] == first[4..<8] && second[15] == first[15] + 1, "the same session, the next counter")
        #expect(b.receive(second, from: 1, now: 3).1 == Self.frame)

        let psk = SecureKey.generate()
        a.engine.reload(privateKey: a.key, presharedKey: psk, now: 4)
        b.engine.reload(privateKey: b.key, presharedKey: psk, now: 4)
        #expect(a.seal(Self.frame, now: 4).0 == .noSession, "the old session ended")
        Self.exchange(a, b, now: 4 + 6 * Self.second)
        let third = a.seal(Self.frame, now: 5 + 6 * Self.second).1
        #expect(third[4..<8] != first[4..<8], "a new session")
        #expect(b.receive(third, from: 1, now: 5 + 6 * Self.second).1 == Self.frame)
        #expect(b.receive(first, from: 1, now: 5 + 6 * Self.second).0 == .dropped(.unknownSession))
    }

    /// A site with a valid key pair of its own that no port names gets nothing through, and no
    /// answer.
    @Test func aStrangerGetsNothing() {
        let (a, b) = Self.sites()
        let stranger = Site(host: 9, peers: [(b.key.publicKey, 2)])
        stranger.engine.start(now: 0)
        let initiation = stranger.takeOutbox()
        #expect(initiation.count == 1)
        #expect(b.receive(initiation[0], from: 9, now: 0).0 == .dropped(.unknownPeer))
        #expect(b.takeOutbox().isEmpty, "not answered")
        #expect(stranger.seal(Self.frame, now: 1).0 == .noSession)
        // A stranger posing with A's name but its own key fails too (it cannot make A's static).
        _ = a
    }

    /// A recorded initiation replayed: the same message is dropped before any key agreement, and
    /// an older one (an earlier timestamp) is never answered.
    @Test func replayedInitiationsAreNotAnswered() {
        let (a, b) = Self.sites()
        a.engine.start(now: 0)
        let first = a.takeOutbox()[0]
        #expect(b.receive(first, from: 1, now: 0).0 == .consumed)
        _ = b.takeOutbox()
        #expect(b.receive(first, from: 1, now: Self.second).0 == .dropped(.replayed))
        #expect(b.takeOutbox().isEmpty)
        // An initiation made earlier (older timestamp) but not seen yet.
        let early = Site(key: a.key, host: 1, peers: [(b.key.publicKey, 2)], clock: { (1_000, 0) })
        early.engine.start(now: 0)
        #expect(b.receive(early.takeOutbox()[0], from: 1, now: 2 * Self.second).0 == .dropped(.replayed))
        #expect(b.takeOutbox().isEmpty)
    }

    /// Under load an initiation without mac2 gets a cookie reply; the initiator's next one
    /// carries mac2 and is answered.
    @Test func underLoadCookiesAreRequired() {
        let (a, b) = Self.sites()
        let other = SecurePrivateKey.generate()
        // 70 valid-looking initiations (right mac1) from elsewhere put B under load.
        let noise = Site(key: other, host: 50, peers: [(b.key.publicKey, 2)])
        for i in 0..<70 {
            noise.engine.start(now: UInt64(i) * 6 * Self.second)
            for m in noise.takeOutbox() { b.receive(m, from: UInt8(100 + i % 100), now: Self.second / 2) }
        }
        _ = b.takeOutbox()
        a.engine.start(now: Self.second / 2)
        let initiation = a.takeOutbox()[0]
        #expect(b.receive(initiation, from: 1, now: Self.second / 2).0 == .dropped(.handshakeLimited))
        let replies = b.takeOutbox()
        #expect(replies.count == 1 && replies[0].count == 64 && replies[0][1] == 3, "a cookie reply")
        #expect(a.receive(replies[0], from: 2, now: Self.second / 2).0 == .consumed)
        // The retry (after the rekey timeout) carries mac2 and is answered.
        a.engine.service(now: 6 * Self.second)
        let retry = a.takeOutbox()
        #expect(retry.count == 1)
        #expect(b.receive(retry[0], from: 1, now: Self.second / 2 + 1).0 == .consumed)
        #expect(b.takeOutbox().first?[1] == 2, "a response")
    }

    /// Rekeying after a number of messages: sealing never stops while the new handshake runs,
    /// and frames sealed on the old session still open after the switch.
    @Test func rekeyingAfterMessagesLeavesNoGap() {
        var timers = SecureTimers()
        timers.rekeyAfterMessages = 10
        let (a, b) = Self.sites(timers: timers)
        a.engine.start(now: 0)
        Self.exchange(a, b, now: 0)
        var inFlight: [[UInt8]] = []
        for i in 0..<40 {
            let (r, d) = a.seal(Self.frame, now: UInt64(i))
            #expect(r == .sealed(Self.frame.count + 36), "frame \(i)")
            inFlight.append(d)
            if i % 7 == 6 { Self.exchange(a, b, now: UInt64(i)) }
        }
        for d in inFlight {
            #expect(b.receive(d, from: 1, now: 50).1 == Self.frame || inFlight.firstIndex(of: d)! < 30)
        }
    }

    /// Sessions end after the reject time; a frame then starts a new handshake.
    @Test func sessionsExpire() {
        var timers = SecureTimers()
        timers.rekeyAfterTime = 2 * Self.second
        timers.rejectAfterTime = 3 * Self.second
        let (a, b) = Self.sites(timers: timers)
        a.engine.start(now: 0)
        Self.exchange(a, b, now: 0)
        let old = a.seal(Self.frame, now: Self.second).1
        #expect(a.seal(Self.frame, now: 3 * Self.second).0 == .noSession)
        #expect(a.takeOutbox().count == 1, "a new initiation")
        #expect(b.receive(old, from: 1, now: 3 * Self.second + 1).0 == .dropped(.unknownSession))
    }

    /// A remote that moves is followed once it authenticates; a forgery from elsewhere moves nothing.
    @Test func roamingFollowsAuthenticatedDatagramsOnly() {
        let (a, b) = Self.sites()
        a.engine.start(now: 0)
        Self.exchange(a, b, now: 0)
        var forged = a.seal(Self.frame, now: 1).1
        forged[20] ^= 1
        #expect(b.receive(forged, from: 77, port: 1000, now: 1).0 == .dropped(.authenticationFailed))
        #expect(UDPText.of(b.endpoints.addresses) == "198.18.0.1:4789")
        #expect(b.receive(a.seal(Self.frame, now: 2).1, from: 77, port: 1000, now: 2).1 == Self.frame)
        #expect(UDPText.of(b.endpoints.addresses) == "198.18.0.77:1000")
    }

    /// Random and mutated datagrams never crash the engine nor disturb a session.
    @Test func hostileDatagramsChangeNothing() {
        let (a, b) = Self.sites()
        a.engine.start(now: 0)
        Self.exchange(a, b, now: 0)
        var g = SeededGenerator(seed: 13)
        let templates = [a.seal(Self.frame, now: 1).1, [UInt8](repeating: 0xA2, count: 156), [UInt8](repeating: 0xA2, count: 100)]
        // Delivered once, genuinely: a mutation that happens to change nothing is a replay.
        #expect(b.receive(templates[0], from: 1, now: 1).1 == Self.frame)
        for i in 0..<20_000 {
            var d: [UInt8]
            if i % 2 == 0 {
                d = .random(count: Int.random(in: 0...200, using: &g), using: &g)
                if d.count > 1 { d[0] = 0xA2; d[1] = UInt8.random(in: 0...5, using: &g) }
                if d.count > 3 { d[2] = 0; d[3] = SecureCipher.default.rawValue }
            } else {
                d = templates[i % 3]
                for _ in 0..<Int.random(in: 1...4, using: &g) { d[Int.random(in: 0..<d.count, using: &g)] = UInt8.random(in: 0...255, using: &g) }
            }
            let r = b.receive(d, from: UInt8.random(in: 1...250, using: &g), now: 2)
            if case .frame = r.0 { Issue.record("a hostile datagram was delivered: \(d)") }
        }
        _ = b.takeOutbox()
        #expect(b.receive(a.seal(Self.frame, now: 3).1, from: 1, now: 3).1 == Self.frame, "the session still works")
    }

    /// Three sites: each has a session per remote; frames to one are sealed for that one only.
    @Test func multipointHasASessionPerRemote() {
        let k = (0..<3).map { _ in SecurePrivateKey.generate() }
        let s = (0..<3).map { i in Site(key: k[i], host: UInt8(i + 1), peers: (0..<3).filter { $0 != i }.map { (k[$0].publicKey, UInt8($0 + 1)) }) }
        for site in s { site.engine.start(now: 0) }
        for _ in 0..<6 {
            for x in s {
                for (m, host) in x.takeAddressedOutbox() {
                    #expect(s[Int(host) - 1].receive(m, from: x.host, now: 0).0 == .consumed)
                }
            }
        }
        // Each site reaches each other.
        for i in 0..<3 {
            for (p, j) in (0..<3).filter({ $0 != i }).enumerated() {
                let d = s[i].seal(Self.frame, to: p, now: 1).1
                #expect(s[j].receive(d, from: s[i].host, now: 1).0 == .frame(byteCount: Self.frame.count, vni: 7, peer: i < j ? i : i - 1))
            }
        }
    }
}

/// A socket address as text, for the tests.
enum UDPText {
    static func of(_ a: UnsafePointer<sockaddr_storage>) -> String {
        a.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
            var addr = $0.pointee.sin_addr
            var buf = [CChar](repeating: 0, count: 32)
            inet_ntop(AF_INET, &addr, &buf, 32)
            return String(cString: buf) + ":" + String(UInt16(bigEndian: $0.pointee.sin_port))
        }
    }
}
