import Crypto

/// A site's static private key (X25519), as `vswitchctl genkey` makes it and `--key-file` holds it.
///
/// Its text form is the base64 of the 32 bytes. `description` shows the public key only, so a
/// private key never ends up in a log.
public struct SecurePrivateKey: @unchecked Sendable {
    let key: Curve25519.KeyAgreement.PrivateKey

    /// The key from its 32 bytes (any 32 bytes are a valid X25519 private key).
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32, let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Array(bytes)) else { return nil }
        self.key = key
    }

    /// The key from a `SecureKey`'s bytes (a key file line).
    public init(_ secret: SecureKey) {
        self = secret.withUnsafeBytes { SecurePrivateKey(bytes: $0)! }
    }

    /// A new random private key (BoringSSL's generator, seeded by `getrandom`).
    public static func generate() -> SecurePrivateKey {
        SecurePrivateKey(SecureKey.generate())
    }

    /// The matching public key.
    public var publicKey: SecurePublicKey { SecurePublicKey(key.publicKey.rawRepresentation)! }

    /// The key as base64 text (44 characters).
    public var base64: String { Base64.encode(Array(key.rawRepresentation)) }
}

extension SecurePrivateKey: CustomStringConvertible {
    public var description: String { "private key of \(publicKey)" }
}

/// A site's static public key (X25519): what `vswitchctl pubkey` prints and `--peer-key` names.
public struct SecurePublicKey: Hashable, Sendable {
    public let bytes: [UInt8]

    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        self.bytes = Array(bytes)
    }

    /// A key from its base64 text (surrounding whitespace allowed), or nil.
    public init?(base64 text: some StringProtocol) {
        guard let decoded = Base64.decode(trimmed(Array(text.utf8)[...])) else { return nil }
        self.init(decoded)
    }

    /// The key as base64 text (44 characters).
    public var base64: String { Base64.encode(bytes) }
}

extension SecurePublicKey: CustomStringConvertible {
    /// The base64 text: public keys are not secret (WireGuard shows them the same way).
    public var description: String { base64 }
}
