import Crypto

/// A 32-byte secret of the secure mode, as a key file holds it: a site's private key before it
/// becomes a `SecurePrivateKey`, or the pre-shared key; with an 8-bit id derived from it that
/// names it in logs.
///
/// Its text form is the base64 of the 32 bytes, 44 characters, as `vswitchctl genkey` prints it
/// and a key file holds it. The key id is the first byte of SHA-256("vswitch secure key id v1" ‖
/// key): both ends compute it from the key itself, so a key file holds nothing but the key, and the
/// id reveals nothing useful about the key. `description` shows only the id, never the key.
public struct SecureKey: Equatable, Sendable {
    /// Bytes in a key: 32 (256 bits).
    public static let byteCount = 32

    private let bytes: [UInt8]

    /// The key id carried in every datagram sealed with this key.
    public let id: UInt8

    /// A key from exactly 32 bytes, or nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = Array(bytes)
        var hash = SHA256()
        Array("vswitch secure key id v1".utf8).withUnsafeBytes { hash.update(bufferPointer: $0) }
        self.bytes.withUnsafeBytes { hash.update(bufferPointer: $0) }
        id = hash.finalize().withUnsafeBytes { $0[0] }
    }

    /// A key from its base64 text (surrounding spaces, tabs and newlines allowed), or nil if the
    /// text is not base64 or does not decode to exactly 32 bytes.
    public init?(base64 text: some StringProtocol) {
        guard let decoded = Base64.decode(trimmed(Array(text.utf8)[...])) else { return nil }
        self.init(bytes: decoded)
    }

    /// A new random key from the crypto library's generator (BoringSSL `RAND_bytes`, seeded by
    /// the kernel's `getrandom`).
    public static func generate() -> SecureKey {
        SymmetricKey(size: .bits256).withUnsafeBytes { SecureKey(bytes: $0)! }
    }

    /// The key as base64 text (44 characters), for `genkey` and key files.
    public var base64: String { Base64.encode(bytes) }

    /// Calls `body` with the 32 key bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }

    /// Compares every byte whatever the first difference, so timing says nothing about the keys.
    public static func == (lhs: SecureKey, rhs: SecureKey) -> Bool {
        var difference: UInt8 = 0
        for index in 0..<byteCount { difference |= lhs.bytes[index] ^ rhs.bytes[index] }
        return difference == 0
    }
}

extension SecureKey: CustomStringConvertible {
    /// `key id 0x3a`: the id only, so a key never ends up in a log.
    public var description: String {
        let hex = String(id, radix: 16)
        return "key id 0x" + (hex.count < 2 ? "0" : "") + hex
    }
}

/// `line` without leading and trailing spaces, tabs, carriage returns and newlines.
func trimmed(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
    }
    var line = line
    while let first = line.first, isSpace(first) { line.removeFirst() }
    while let last = line.last, isSpace(last) { line.removeLast() }
    return line
}
