import VSwitchWire
import CAEAD
import Crypto

/// The handshake of the secure tunnel (version 2): `Noise_IKpsk2_25519_ChaChaPoly_SHA256` with
/// WireGuard's messages, mac1/mac2 and cookies, framed as Docs/secure-wire-format.md describes.
///
/// Pure functions over bytes: the caller (`SecureTunnel`) supplies keys, ephemeral keys,
/// timestamps, indices and randomness, so the unit tests can check every byte against vectors
/// made by an independent implementation (Tools/secure-vectors.py).
public enum SecureHandshake {
    public static let magic: UInt8 = 0xA2
    public static let initiationLength = 156
    public static let responseLength = 100
    public static let cookieReplyLength = 64
    static let initiationMAC1 = 124, initiationMAC2 = 140
    static let responseMAC1 = 68, responseMAC2 = 84

    static let construction = Array("Noise_IKpsk2_25519_ChaChaPoly_SHA256".utf8)
    static let identifier = Array("vswitch secure v2".utf8)
    static let labelMAC1 = Array("mac1----".utf8)
    static let labelCookie = Array("cookie--".utf8)

    /// The message types of byte 1.
    public enum MessageType: UInt8 {
        case initiation = 1, response = 2, cookieReply = 3, data = 4
    }

    /// The chaining key and hash every handshake towards `responderStatic` starts from.
    static func initialState(cipher: UInt8, responderStatic: [UInt8]) -> (ck: [UInt8], h: [UInt8]) {
        let c = Noise.hash(construction)
        let h = Noise.hash(Noise.hash(c, identifier, [cipher]), responderStatic)
        return (c, h)
    }

    /// The key mac1 of messages *to* the holder of `publicKey` is made with.
    public static func mac1Key(for publicKey: [UInt8]) -> [UInt8] { Noise.hash(labelMAC1, publicKey) }

    /// The key cookie replies *from* the holder of `publicKey` are sealed with (before the nonce).
    public static func cookieKey(for publicKey: [UInt8]) -> [UInt8] { Noise.hash(labelCookie, publicKey) }

    static func header(_ type: MessageType, cipher: UInt8) -> [UInt8] { [magic, type.rawValue, 0, cipher] }

    static func bigEndian(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32($0))) } }
    static func bigEndian(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) } }
    static func loadBigEndian64(_ b: some Collection<UInt8>) -> UInt64 { b.reduce(0) { $0 << 8 | UInt64($1) } }

    /// Fills in mac1 and mac2 of a message whose body (all bytes before mac1) is set.
    static func addMACs(_ message: inout [UInt8], mac1At: Int, mac1Key: [UInt8], cookie: [UInt8]?) {
        let mac1 = message.withUnsafeBytes { Noise.mac(mac1Key, UnsafeRawBufferPointer(rebasing: $0[0..<mac1At])) }
        message.replaceSubrange(mac1At..<mac1At + 16, with: mac1)
        if let cookie {
            let mac2 = message.withUnsafeBytes { Noise.mac(cookie, UnsafeRawBufferPointer(rebasing: $0[0..<mac1At + 16])) }
            message.replaceSubrange(mac1At + 16..<mac1At + 32, with: mac2)
        }
    }

    /// Whether `message`'s mac1 (16 bytes at `mac1At`) is right for `key`: constant-time compare.
    static func macMatches(_ message: UnsafeRawBufferPointer, at: Int, key: [UInt8]) -> Bool {
        let expected = Noise.mac(key, UnsafeRawBufferPointer(rebasing: message[0..<at]))
        var difference: UInt8 = 0
        for i in 0..<16 { difference |= expected[i] ^ message[at + i] }
        return difference == 0
    }

    // MARK: - Initiation

    /// What the initiator keeps until the response arrives.
    public struct Initiator {
        let ephemeral: Curve25519.KeyAgreement.PrivateKey
        var hash: [UInt8]
        var chainingKey: [UInt8]
        public let localIndex: UInt32
        /// mac1 of the initiation sent: a cookie reply answering it is authenticated with it.
        public let mac1: [UInt8]
    }

    /// A handshake initiation from `local` to the holder of `peerStatic`, with `ss` =
    /// DH(local, peerStatic) precomputed. `cookie`: the peer's latest cookie, if fresh (mac2).
    static func initiation(local: SecurePrivateKey, peerStatic: [UInt8], ss: [UInt8], cipher: UInt8,
                           ephemeral: Curve25519.KeyAgreement.PrivateKey, timestamp: [UInt8], incarnation: UInt64,
                           senderIndex: UInt32, cookie: [UInt8]?) -> (message: [UInt8], state: Initiator)? {
        var (ck, h) = initialState(cipher: cipher, responderStatic: peerStatic)
        let ePublic = Array(ephemeral.publicKey.rawRepresentation)
        h = Noise.hash(h, ePublic)
        ck = Noise.kdf(ck, ePublic, count: 1)[0]
        guard let es = Noise.dh(ephemeral, peerStatic) else { return nil }
        var out = Noise.kdf(ck, es, count: 2)
        ck = out[0]
        let encryptedStatic = Noise.seal(out[1], 0, Array(local.key.publicKey.rawRepresentation), h)
        h = Noise.hash(h, encryptedStatic)
        out = Noise.kdf(ck, ss, count: 2)
        ck = out[0]
        let payload = Noise.seal(out[1], 0, timestamp + bigEndian(incarnation), h)
        h = Noise.hash(h, payload)
        Noise.wipe(&out[1])
        var message = header(.initiation, cipher: cipher) + bigEndian(senderIndex) + ePublic + encryptedStatic + payload
            + [UInt8](repeating: 0, count: 32)
        addMACs(&message, mac1At: initiationMAC1, mac1Key: mac1Key(for: peerStatic), cookie: cookie)
        return (message, Initiator(ephemeral: ephemeral, hash: h, chainingKey: ck, localIndex: senderIndex,
                                   mac1: Array(message[initiationMAC1..<initiationMAC1 + 16])))
    }

    /// An initiation that authenticated: who sent it and what the responder continues from.
    public struct ConsumedInitiation {
        public let peerStatic: [UInt8]
        public let senderIndex: UInt32
        public let timestamp: [UInt8]
        public let incarnation: UInt64
        let ephemeralPublic: [UInt8]
        var hash: [UInt8]
        var chainingKey: [UInt8]
    }

    public enum InitiationFailure: Error, Equatable { case invalid, unknownPeer }

    /// Opens an initiation (mac1 already checked) sent to `local`. `ss` gives DH(local, peer)
    /// for a known peer's static key and nil for any other (the message is then `.unknownPeer`).
    static func consumeInitiation(_ message: UnsafeRawBufferPointer, local: SecurePrivateKey, cipher: UInt8,
                                  ss: ([UInt8]) -> [UInt8]?) -> Result<ConsumedInitiation, InitiationFailure> {
        guard message.count == initiationLength else { return .failure(.invalid) }
        let localPublic = Array(local.key.publicKey.rawRepresentation)
        var (ck, h) = initialState(cipher: cipher, responderStatic: localPublic)
        let ePublic = Array(message[8..<40])
        h = Noise.hash(h, ePublic)
        ck = Noise.kdf(ck, ePublic, count: 1)[0]
        guard let es = Noise.dh(local.key, ePublic) else { return .failure(.invalid) }
        var out = Noise.kdf(ck, es, count: 2)
        ck = out[0]
        let encryptedStatic = Array(message[40..<88])
        guard let peerStatic = Noise.open(out[1], 0, encryptedStatic, h) else { return .failure(.invalid) }
        h = Noise.hash(h, encryptedStatic)
        guard let staticStatic = ss(peerStatic) else { return .failure(.unknownPeer) }
        out = Noise.kdf(ck, staticStatic, count: 2)
        ck = out[0]
        let encryptedPayload = Array(message[88..<124])
        guard let payload = Noise.open(out[1], 0, encryptedPayload, h), payload.count == 20 else { return .failure(.invalid) }
        h = Noise.hash(h, encryptedPayload)
        Noise.wipe(&out[1])
        return .success(ConsumedInitiation(peerStatic: peerStatic, senderIndex: message.loadBigEndian(fromByteOffset: 4, as: UInt32.self),
                                           timestamp: Array(payload[0..<12]), incarnation: loadBigEndian64(payload[12..<20]),
                                           ephemeralPublic: ePublic, hash: h, chainingKey: ck))
    }

    // MARK: - Response

    /// The session keys a completed handshake gives one side.
    public struct SessionKeys {
        public var send: [UInt8]
        public var receive: [UInt8]
        mutating func wipe() { Noise.wipe(&send); Noise.wipe(&receive) }
    }

    /// The response to `initiation`, and the responder's session keys.
    static func response(to initiation: ConsumedInitiation, psk: [UInt8], cipher: UInt8,
                         ephemeral: Curve25519.KeyAgreement.PrivateKey, incarnation: UInt64, senderIndex: UInt32,
                         cookie: [UInt8]?) -> (message: [UInt8], keys: SessionKeys)? {
        var ck = initiation.chainingKey, h = initiation.hash
        let ePublic = Array(ephemeral.publicKey.rawRepresentation)
        h = Noise.hash(h, ePublic)
        ck = Noise.kdf(ck, ePublic, count: 1)[0]
        guard let ee = Noise.dh(ephemeral, initiation.ephemeralPublic),
              let se = Noise.dh(ephemeral, initiation.peerStatic) else { return nil }
        ck = Noise.kdf(ck, ee, count: 1)[0]
        ck = Noise.kdf(ck, se, count: 1)[0]
        var out = Noise.kdf(ck, psk, count: 3)
        ck = out[0]
        h = Noise.hash(h, out[1])
        let payload = Noise.seal(out[2], 0, bigEndian(incarnation), h)
        Noise.wipe(&out[2])
        var message = header(.response, cipher: cipher) + bigEndian(senderIndex) + bigEndian(initiation.senderIndex) + ePublic
            + payload + [UInt8](repeating: 0, count: 32)
        addMACs(&message, mac1At: responseMAC1, mac1Key: mac1Key(for: initiation.peerStatic), cookie: cookie)
        let split = Noise.kdf(ck, [], count: 2)
        Noise.wipe(&ck)
        return (message, SessionKeys(send: split[1], receive: split[0]))
    }

    /// A response that authenticated: the responder's index and incarnation, the initiator's keys.
    public struct ConsumedResponse {
        public let senderIndex: UInt32
        public let incarnation: UInt64
        public var keys: SessionKeys
    }

    /// Opens a response (mac1 already checked) to the initiation `state` describes.
    static func consumeResponse(_ message: UnsafeRawBufferPointer, state: Initiator, local: SecurePrivateKey,
                                psk: [UInt8]) -> ConsumedResponse? {
        guard message.count == responseLength, message.loadBigEndian(fromByteOffset: 8, as: UInt32.self) == state.localIndex else { return nil }
        var ck = state.chainingKey, h = state.hash
        let ePublic = Array(message[12..<44])
        h = Noise.hash(h, ePublic)
        ck = Noise.kdf(ck, ePublic, count: 1)[0]
        guard let ee = Noise.dh(state.ephemeral, ePublic), let se = Noise.dh(local.key, ePublic) else { return nil }
        ck = Noise.kdf(ck, ee, count: 1)[0]
        ck = Noise.kdf(ck, se, count: 1)[0]
        var out = Noise.kdf(ck, psk, count: 3)
        ck = out[0]
        h = Noise.hash(h, out[1])
        guard let payload = Noise.open(out[2], 0, Array(message[44..<68]), h), payload.count == 8 else { return nil }
        Noise.wipe(&out[2])
        let split = Noise.kdf(ck, [], count: 2)
        Noise.wipe(&ck)
        return ConsumedResponse(senderIndex: message.loadBigEndian(fromByteOffset: 4, as: UInt32.self), incarnation: loadBigEndian64(payload),
                                keys: SessionKeys(send: split[0], receive: split[1]))
    }

    // MARK: - Cookies

    /// The cookie for a source address (IP bytes ‖ UDP port, big-endian) under secret `secret`.
    static func cookie(secret: [UInt8], source: [UInt8]) -> [UInt8] {
        source.withUnsafeBytes { Noise.mac(secret, $0) }
    }

    /// A cookie reply carrying `cookie` to the sender of a message with index `receiverIndex` and
    /// mac1 `mac1`, from the holder of `cookieKey` (= `cookieKey(for: own public key)`).
    static func cookieReply(receiverIndex: UInt32, cookie: [UInt8], mac1: [UInt8], cookieKey: [UInt8], nonce: [UInt8],
                            cipher: UInt8) -> [UInt8] {
        let key = Noise.hmac(cookieKey, nonce)
        let sealed = Noise.seal(key, 0, cookie, mac1)
        return header(.cookieReply, cipher: cipher) + bigEndian(receiverIndex) + nonce + sealed
    }

    /// The cookie in a reply from the holder of `cookieKey`, answering a message whose mac1 was `mac1`.
    static func consumeCookieReply(_ message: UnsafeRawBufferPointer, mac1: [UInt8], cookieKey: [UInt8]) -> [UInt8]? {
        guard message.count == cookieReplyLength else { return nil }
        let key = Noise.hmac(cookieKey, Array(message[8..<32]))
        return Noise.open(key, 0, message[32..<64], mac1)
    }

    /// A source address as cookie input: IPv4 (4 bytes) or IPv6 (16) address, then the port.
    static func cookieSource(address: [UInt8], port: UInt16) -> [UInt8] {
        address + [UInt8(port >> 8), UInt8(port & 0xFF)]
    }
}
