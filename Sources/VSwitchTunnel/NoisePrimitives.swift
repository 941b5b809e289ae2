import CAEAD
import Crypto
import Glibc

/// The primitives of `Noise_IKpsk2_25519_ChaChaPoly_SHA256`, all from swift-crypto: SHA-256,
/// HMAC-SHA-256, HKDF as Noise defines it, X25519 and ChaCha20-Poly1305 with Noise's nonce.
///
/// These run per handshake (a few a minute per remote), never per frame, so they use
/// swift-crypto's allocating API; the data path uses `AEAD` (no allocation) instead.
enum Noise {
    static let hashLength = 32

    static func hash(_ parts: [UInt8]...) -> [UInt8] {
        var h = SHA256()
        for part in parts { h.update(data: part) }
        return Array(h.finalize())
    }

    static func hmac(_ key: [UInt8], _ parts: [UInt8]...) -> [UInt8] {
        var m = HMAC<SHA256>(key: SymmetricKey(data: key))
        for part in parts { m.update(data: part) }
        return Array(m.finalize())
    }

    /// The first 16 bytes of HMAC-SHA-256 over `message` (mac1, mac2, cookies).
    static func mac(_ key: [UInt8], _ message: UnsafeRawBufferPointer) -> [UInt8] {
        // BoringSSL's one-shot HMAC (the same primitive swift-crypto wraps), without its
        // per-call allocations: cookies are computed for every handshake message under load.
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBufferPointer { o in
            key.withUnsafeBufferPointer { k in
                vswitch_hmac_sha256(k.baseAddress, k.count, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count,
                                    o.baseAddress!)
            }
        }
        out.removeLast(16)
        return out
    }

    /// HKDF with chaining key `ck` and input `input`: `count` (1...3) outputs of 32 bytes.
    static func kdf(_ ck: [UInt8], _ input: [UInt8], count: Int) -> [[UInt8]] {
        var t0 = hmac(ck, input)
        var out: [[UInt8]] = []
        var previous: [UInt8] = []
        for i in 1...count {
            previous = hmac(t0, previous, [UInt8(i)])
            out.append(previous)
        }
        wipe(&t0)
        return out
    }

    /// X25519, or nil for a peer key that gives the all-zero secret (a small-order point).
    static func dh(_ privateKey: Curve25519.KeyAgreement.PrivateKey, _ publicKey: [UInt8]) -> [UInt8]? {
        guard let peer = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: publicKey),
              let secret = try? privateKey.sharedSecretFromKeyAgreement(with: peer)
        else { return nil }
        let bytes = secret.withUnsafeBytes { Array($0) }
        return bytes.allSatisfy({ $0 == 0 }) ? nil : bytes
    }

    /// Noise's ChaChaPoly nonce: 4 zero bytes, then `n` as a little-endian 64-bit integer.
    static func nonce(_ n: UInt64) -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { bytes[4 + i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(i))) }
        return try! ChaChaPoly.Nonce(data: bytes)
    }

    /// ChaCha20-Poly1305 sealing: ciphertext ‖ tag.
    static func seal(_ key: [UInt8], _ n: UInt64, _ plaintext: [UInt8], _ ad: [UInt8]) -> [UInt8] {
        let box = try! ChaChaPoly.seal(plaintext, using: SymmetricKey(data: key), nonce: nonce(n), authenticating: ad)
        return Array(box.ciphertext) + Array(box.tag)
    }

    /// ChaCha20-Poly1305 opening of ciphertext ‖ tag, or nil if it does not authenticate.
    static func open(_ key: [UInt8], _ n: UInt64, _ sealed: some Collection<UInt8>, _ ad: [UInt8]) -> [UInt8]? {
        let bytes = Array(sealed)
        guard bytes.count >= 16,
              let box = try? ChaChaPoly.SealedBox(nonce: nonce(n), ciphertext: bytes.dropLast(16), tag: bytes.suffix(16)),
              let plain = try? ChaChaPoly.open(box, using: SymmetricKey(data: key), authenticating: ad)
        else { return nil }
        return Array(plain)
    }

    /// Zeroes a buffer's bytes in place (Swift gives no stronger guarantee: copies made
    /// earlier, by copy-on-write, are not reached).
    static func wipe(_ b: inout [UInt8]) {
        b.withUnsafeMutableBytes { raw in
            // glibc's explicit_bzero: a store the optimiser may not remove.
            if let base = raw.baseAddress { explicit_bzero(base, raw.count) }
        }
    }

    /// TAI64N of a wall-clock time: 2^62 + 10 + seconds (8 bytes), nanoseconds (4 bytes), big-endian.
    static func tai64n(seconds: Int64, nanoseconds: Int) -> [UInt8] {
        let s = UInt64(bitPattern: seconds) &+ 0x4000_0000_0000_000A
        var out: [UInt8] = []
        for i in (0..<8).reversed() { out.append(UInt8(truncatingIfNeeded: s >> (8 * UInt64(i)))) }
        let n = UInt32(truncatingIfNeeded: nanoseconds)
        for i in (0..<4).reversed() { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt32(i)))) }
        return out
    }
}
