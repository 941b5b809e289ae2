import Crypto
import Foundation
import Testing
@testable import VSwitchTunnel

/// The handshake, cookies and data datagrams, byte for byte against the vectors that an
/// independent implementation made (Tools/secure-vectors.py: Python's `cryptography`, with the
/// Noise part cross-checked by the `noiseprotocol` package).
struct SecureHandshakeTests {
    struct Vectors: Decodable {
        struct Case: Decodable {
            struct Data: Decodable { let counter: UInt64; let vni: UInt32; let frame: String; let datagram: String }
            struct Keepalive: Decodable { let counter: UInt64; let datagram: String }
            struct Cookie: Decodable {
                let secret: String; let source_ip: String; let source_port: UInt16; let cookie: String; let nonce: String
                let reply: String; let initiation_with_mac2: String
            }
            let name: String
            let cipher: UInt8
            let initiator_static_private: String, initiator_static_public: String
            let responder_static_private: String, responder_static_public: String
            let initiator_ephemeral_private: String, responder_ephemeral_private: String
            let psk: String, timestamp: String, initiator_incarnation: String, responder_incarnation: String
            let initiator_index: UInt32, responder_index: UInt32
            let initiation: String, response: String
            let initiator_send_key: String, initiator_receive_key: String
            let data: Data
            let keepalive: Keepalive
            let cookie: Cookie
        }
        let cases: [Case]
    }

    static let vectors: Vectors = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/secure-v2-vectors.json")
        return try! JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
    }()

    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    static func be64(_ b: [UInt8]) -> UInt64 { b.reduce(0) { $0 << 8 | UInt64($1) } }

    static func key(_ s: String) -> SecurePrivateKey { SecurePrivateKey(bytes: hex(s))! }
    static func ephemeral(_ s: String) -> Curve25519.KeyAgreement.PrivateKey { try! .init(rawRepresentation: hex(s)) }

    @Test func thereAreVectors() { #expect(Self.vectors.cases.count >= 3) }

    @Test(arguments: 0..<3)
    func handshakeMatchesTheVectors(index: Int) throws {
        let v = Self.vectors.cases[index]
        let initiator = Self.key(v.initiator_static_private), responder = Self.key(v.responder_static_private)
        #expect(initiator.publicKey.bytes == Self.hex(v.initiator_static_public))
        #expect(responder.publicKey.bytes == Self.hex(v.responder_static_public))
        let ss = try #require(Noise.dh(initiator.key, responder.publicKey.bytes))
        let psk = Self.hex(v.psk)

        // The initiation, built.
        let (initiation, state) = try #require(SecureHandshake.initiation(
            local: initiator, peerStatic: responder.publicKey.bytes, ss: ss, cipher: v.cipher,
            ephemeral: Self.ephemeral(v.initiator_ephemeral_private), timestamp: Self.hex(v.timestamp),
            incarnation: Self.be64(Self.hex(v.initiator_incarnation)), senderIndex: v.initiator_index, cookie: nil))
        #expect(initiation == Self.hex(v.initiation), "\(v.name): initiation")

        // The initiation, opened by the responder.
        let opened = Self.hex(v.initiation).withUnsafeBytes { bytes in
            SecureHandshake.consumeInitiation(bytes, local: responder, cipher: v.cipher) { key in
                key == initiator.publicKey.bytes ? Noise.dh(responder.key, key) : nil
            }
        }
        let consumed = try opened.get()
        #expect(consumed.peerStatic == initiator.publicKey.bytes)
        #expect(consumed.timestamp == Self.hex(v.timestamp))
        #expect(consumed.senderIndex == v.initiator_index)
        #expect(consumed.incarnation == Self.be64(Self.hex(v.initiator_incarnation)))

        // The response, built; and the responder's keys.
        let (response, responderKeys) = try #require(SecureHandshake.response(
            to: consumed, psk: psk, cipher: v.cipher, ephemeral: Self.ephemeral(v.responder_ephemeral_private),
            incarnation: Self.be64(Self.hex(v.responder_incarnation)), senderIndex: v.responder_index, cookie: nil))
        #expect(response == Self.hex(v.response), "\(v.name): response")
        #expect(responderKeys.receive == Self.hex(v.initiator_send_key))
        #expect(responderKeys.send == Self.hex(v.initiator_receive_key))

        // The response, opened by the initiator: the same keys, mirrored.
        let answer = try #require(Self.hex(v.response).withUnsafeBytes {
            SecureHandshake.consumeResponse($0, state: state, local: initiator, psk: psk)
        })
        #expect(answer.senderIndex == v.responder_index)
        #expect(answer.incarnation == Self.be64(Self.hex(v.responder_incarnation)))
        #expect(answer.keys.send == Self.hex(v.initiator_send_key))
        #expect(answer.keys.receive == Self.hex(v.initiator_receive_key))

        // Any other pre-shared key fails.
        var otherPSK = psk
        otherPSK[0] ^= 1
        #expect(Self.hex(v.response).withUnsafeBytes { SecureHandshake.consumeResponse($0, state: state, local: initiator, psk: otherPSK) } == nil)
        // A changed byte anywhere in the initiation's sealed fields fails to open.
        for position in [8, 40, 87, 88, 123] {
            var bad = Self.hex(v.initiation)
            bad[position] ^= 0x20
            let r = bad.withUnsafeBytes { SecureHandshake.consumeInitiation($0, local: responder, cipher: v.cipher) { _ in ss } }
            #expect(throws: (any Error).self) { try r.get() }
        }
        // The other cipher's prologue: the handshake fails.
        let wrongCipher = Self.hex(v.initiation).withUnsafeBytes { SecureHandshake.consumeInitiation($0, local: responder, cipher: 1 - v.cipher) { _ in ss } }
        #expect(throws: (any Error).self) { try wrongCipher.get() }
    }

    @Test(arguments: 0..<3)
    func macsAndCookiesMatchTheVectors(index: Int) throws {
        let v = Self.vectors.cases[index]
        let responder = Self.key(v.responder_static_private)
        let initiation = Self.hex(v.initiation)
        initiation.withUnsafeBytes { bytes in
            #expect(SecureHandshake.macMatches(bytes, at: SecureHandshake.initiationMAC1, key: SecureHandshake.mac1Key(for: responder.publicKey.bytes)))
            #expect(!SecureHandshake.macMatches(bytes, at: SecureHandshake.initiationMAC1, key: SecureHandshake.mac1Key(for: Self.hex(v.initiator_static_public))))
        }
        Self.hex(v.response).withUnsafeBytes { bytes in
            #expect(SecureHandshake.macMatches(bytes, at: SecureHandshake.responseMAC1, key: SecureHandshake.mac1Key(for: Self.hex(v.initiator_static_public))))
        }
        // The cookie for the source address, the reply carrying it, and mac2 with it.
        let address: [UInt8]
        if v.cookie.source_ip.contains(":") {
            var a = in6_addr()
            inet_pton(AF_INET6, v.cookie.source_ip, &a)
            address = withUnsafeBytes(of: a) { Array($0) }
        } else {
            var a = in_addr()
            inet_pton(AF_INET, v.cookie.source_ip, &a)
            address = withUnsafeBytes(of: a) { Array($0) }
        }
        let cookie = SecureHandshake.cookie(secret: Self.hex(v.cookie.secret),
                                            source: SecureHandshake.cookieSource(address: address, port: v.cookie.source_port))
        #expect(cookie == Self.hex(v.cookie.cookie))
        let mac1 = Array(initiation[124..<140])
        let reply = SecureHandshake.cookieReply(receiverIndex: v.initiator_index, cookie: cookie, mac1: mac1,
                                                cookieKey: SecureHandshake.cookieKey(for: responder.publicKey.bytes),
                                                nonce: Self.hex(v.cookie.nonce), cipher: v.cipher)
        #expect(reply == Self.hex(v.cookie.reply))
        let received = Self.hex(v.cookie.reply).withUnsafeBytes {
            SecureHandshake.consumeCookieReply($0, mac1: mac1, cookieKey: SecureHandshake.cookieKey(for: responder.publicKey.bytes))
        }
        #expect(received == cookie)
        var withMAC2 = initiation
        SecureHandshake.addMACs(&withMAC2, mac1At: 124, mac1Key: SecureHandshake.mac1Key(for: responder.publicKey.bytes), cookie: cookie)
        #expect(withMAC2 == Self.hex(v.cookie.initiation_with_mac2))
        withMAC2.withUnsafeBytes { #expect(SecureHandshake.macMatches($0, at: 140, key: cookie)) }
    }

    /// A data datagram and a keepalive sealed by a session made from the vectors' keys are the
    /// vectors' bytes, and open back.
    @Test(arguments: 0..<3)
    func dataMatchesTheVectors(index: Int) throws {
        let v = Self.vectors.cases[index]
        let cipher = try #require(SecureCipher(rawValue: v.cipher))
        var keys = SecureHandshake.SessionKeys(send: Self.hex(v.initiator_send_key), receive: Self.hex(v.initiator_receive_key))
        let initiatorSession = SecureSession(localIndex: v.initiator_index, remoteIndex: v.responder_index, keys: &keys,
                                             cipher: cipher, created: 0, isInitiator: true, peerIncarnation: 0)
        initiatorSession.nextCounter = v.data.counter
        let frame = Self.hex(v.data.frame)
        var datagram = [UInt8](repeating: 0, count: frame.count + 36)
        let tunnel = SecureTunnelTests.Pair(cipher: cipher).a
        let n = datagram.withUnsafeMutableBytes { out in
            frame.withUnsafeBytes { tunnel.seal(payload: $0, vni: v.data.vni, session: initiatorSession, into: out) }
        }
        #expect(n == frame.count + 36)
        #expect(datagram == Self.hex(v.data.datagram), "\(v.name): data")
        #expect(keys.send.allSatisfy { $0 == 0 }, "session keys are wiped once expanded")

        var responderKeys = SecureHandshake.SessionKeys(send: Self.hex(v.initiator_receive_key), receive: Self.hex(v.initiator_send_key))
        let responderSession = SecureSession(localIndex: v.responder_index, remoteIndex: v.initiator_index, keys: &responderKeys,
                                             cipher: cipher, created: 0, isInitiator: false, peerIncarnation: 0)
        responderSession.nextCounter = v.keepalive.counter
        var keepalive = [UInt8](repeating: 0, count: 32)
        _ = keepalive.withUnsafeMutableBytes { tunnel.seal(payload: UnsafeRawBufferPointer(start: nil, count: 0), vni: nil,
                                                                  session: responderSession, into: $0) }
        #expect(keepalive == Self.hex(v.keepalive.datagram), "\(v.name): keepalive")
    }
}
