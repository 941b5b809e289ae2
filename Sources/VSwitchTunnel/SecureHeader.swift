// The secure encapsulation (`add-port ... --type udp --encap secure --key-file FILE`).
//
// One UDP datagram carries one inner Ethernet frame, encrypted and authenticated:
//
//     0        1        2        3        4                 8                                  16
//     +--------+--------+--------+--------+-----------------+----------------------------------+
//     |  0xA1  |  type  | key id | cipher |    sender id    |             counter              |
//     +--------+--------+--------+--------+-----------------+----------------------------------+
//     16              20                                            20 + n             36 + n
//     +----------------+---------------------------------------------+--------------------+
//     |   VNI (u32)    |        inner Ethernet frame (n bytes)       |    AEAD tag (16)   |
//     +----------------+---------------------------------------------+--------------------+
//     \___________________ ciphertext (4 + n bytes) _________________/
//
// All integers are big-endian.
//
//   * byte 0, magic and version: 0xA1, that is 0xA0 (this format) | 1 (version). Anything else is
//     dropped as `badVersion`. It can never be VXLAN's flags byte (0x08), so a `vxlan` peer sending
//     to a `secure` port (or the reverse) is told apart from an attack.
//   * byte 1, type: 1 = an encapsulated frame, the only type of version 1. Others are reserved (for
//     keepalives or a handshake later) and dropped as `unknownType`.
//   * byte 2, key id: the id of the key that sealed the datagram, the first byte of
//     SHA-256("vswitch secure key id v1" ‖ key). It selects the key to open with (the current or the
//     previous one of a `SecureKeyRing`); no key with that id: `unknownKey`.
//   * byte 3, cipher: the AEAD that sealed the datagram, 0 = ChaCha20-Poly1305 (RFC 8439), 1 =
//     AES-256-GCM (`SecureCipher`, `--cipher`). Both ends of a tunnel are configured with the same
//     one; a datagram naming another is dropped as `cipherMismatch`, so a configuration mistake is
//     told apart from an attack. (Until this field existed the byte was sent as 0 and ignored:
//     those senders spoke ChaCha20-Poly1305, so they still interoperate.)
//   * bytes 4..<8, sender id: a random 32-bit number each sealer (`SecureChannel`, one per port)
//     draws when it is created, so that several senders sharing a key use distinct nonces even
//     though every one of them counts from 1. A datagram carrying the receiver's own sender id is
//     its own traffic reflected back at it and is dropped as `reflected`.
//   * bytes 8..<16, counter: 1, 2, 3, ... per sender, one per datagram. Never 0, never wraps: a
//     sealer refuses to seal once it reaches 2^64 - 1 (at 10 million datagrams a second that takes
//     58,000 years).
//   * then the AEAD output, of the cipher byte 3 names, with
//       key        the 32-byte key,
//       nonce      bytes 4..<16 of the datagram (sender id ‖ counter, 96 bits),
//       AAD        bytes 0..<16 (the whole header),
//       plaintext  the VNI as a u32 (top 8 bits 0, ignored on receipt) ‖ the inner frame,
//     written as ciphertext (4 + n bytes) followed by the 16-byte tag. The nonce bytes sit right
//     before the ciphertext on purpose: bytes 4..<end are exactly swift-crypto's "combined"
//     representation (nonce ‖ ciphertext ‖ tag), so opening needs no reassembly.
//
// Overhead: 36 bytes per frame (16 header, 4 VNI, 16 tag), against VXLAN's 8; with the outer
// IPv4 and UDP headers 64 bytes (84 over IPv6). The smallest datagram is 36 bytes (an empty frame).
//
// Receiving, in order, and the drop reason at each step: length < 36 `truncated`; byte 0
// `badVersion`; type `unknownType`; cipher `cipherMismatch`; key id `unknownKey`; own sender id `reflected`; counter 0, seen,
// or more than 1,984 behind the sender's highest (`ReplayWindow`) `replayed`; frame larger than the
// caller's buffer `frameTooLarge`; AEAD open fails with every key of that id `authenticationFailed`;
// and only then is the counter recorded in the sender's window and the frame delivered.
//
// Why AES-256-GCM is the default (`SecureCipher.default`; ChaCha20-Poly1305 was until 2026-11):
// servers and their virtual machines have AES and carry-less multiply instructions (AES-NI and
// PCLMULQDQ, or the ARMv8 crypto extensions), and with them it is several times faster (VAES does
// 16 blocks an instruction). Without them BoringSSL's AES and GHASH are bitsliced and
// constant-time, safe but slower than ChaCha20-Poly1305, which such CPUs should choose
// (`--cipher chacha20-poly1305`). Both come from BoringSSL through swift-crypto, take 96-bit
// nonces and produce 16-byte tags, so the layout is the same.
//
// What the design does not give, for want of a handshake: forward secrecy (one long-lived key),
// and replay protection across a receiver restart or for a sender evicted from the receiver's
// table of 16 (`ReplayTable`), whose old datagrams would each be accepted once more. Nonces are
// unique as long as no two sealers of one key draw the same sender id: with n sealer starts over
// a key's life, a chance of about n² / 2^33 (one in 8,600 for 1,000 starts), so rotate keys.

/// A checked view of a secure-mode datagram: the 16-byte header, then the sealed VNI and frame.
///
/// Validation checks only the length: at least `minimumLength` (36) bytes, so that every accessor
/// can read and the sealed part holds at least the VNI and the tag. The view borrows `bytes`.
public struct SecureHeader {
    /// The whole datagram.
    public let bytes: UnsafeRawBufferPointer

    /// The cleartext header: 16 bytes.
    public static let headerLength = 16

    /// The VNI at the start of the plaintext: 4 bytes.
    public static let vniLength = 4

    /// The Poly1305 tag at the end: 16 bytes.
    public static let tagLength = 16

    /// Bytes a datagram adds to the frame it carries: 36.
    public static let overhead = headerLength + vniLength + tagLength

    /// The shortest datagram: the overhead, carrying an empty frame.
    public static let minimumLength = overhead

    /// Byte 0: 0xA0 (this format) | 1 (version 1).
    public static let magicAndVersion: UInt8 = 0xa1

    /// Byte offsets of the header fields.
    enum Field {
        static let magicAndVersion = 0
        static let type = 1
        static let keyID = 2
        static let cipher = 3
        static let senderID = 4..<8
        static let counter = 8..<16
        /// The AEAD nonce: sender id and counter.
        static let nonce = 4..<16
        static let sealed = 16
    }

    /// A view of `bytes`, or nil if they are shorter than 36 bytes.
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.minimumLength else { return nil }
        self.bytes = bytes
    }

    /// Byte 0 as received: 0xA1 for this version.
    public var magicAndVersion: UInt8 { bytes[Field.magicAndVersion] }

    public var type: SecureDatagramType { SecureDatagramType(rawValue: bytes[Field.type]) }

    public var keyID: UInt8 { bytes[Field.keyID] }

    /// Byte 3 as received: a `SecureCipher` raw value, if it is one.
    public var cipher: UInt8 { bytes[Field.cipher] }

    public var senderID: UInt32 { bytes.loadBigEndian(fromByteOffset: Field.senderID.lowerBound, as: UInt32.self) }

    public var counter: UInt64 { bytes.loadBigEndian(fromByteOffset: Field.counter.lowerBound, as: UInt64.self) }

    /// The 16 header bytes: the AEAD's associated data.
    public var header: UnsafeRawBufferPointer { bytes.slice(0..<Field.sealed) }

    /// Nonce, ciphertext and tag: swift-crypto's combined form of a sealed box.
    public var combined: UnsafeRawBufferPointer { bytes.slice(Field.nonce.lowerBound..<bytes.count) }

    /// Bytes of the inner frame the datagram carries once opened.
    public var frameLength: Int { bytes.count - Self.overhead }
}

extension SecureHeader: CustomStringConvertible {
    /// `secure type=1 key=0x3a cipher=aes-256-gcm sender=0x1234abcd counter=7 len=98`.
    public var description: String {
        let cipherName = SecureCipher(rawValue: cipher)?.name ?? String(cipher)
        return "secure type=\(type.rawValue) key=0x\(String(keyID, radix: 16)) cipher=\(cipherName) sender=0x\(String(senderID, radix: 16))"
            + " counter=\(counter) len=\(bytes.count)"
    }
}

/// Byte 1 of a secure datagram. A struct over the raw value so unknown types are kept and shown.
public struct SecureDatagramType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// An encapsulated Ethernet frame.
    public static let frame = SecureDatagramType(rawValue: 1)
}

/// The cleartext header fields, to write a header.
public struct SecureHeaderRepr: Hashable, Sendable {
    public var type: SecureDatagramType
    public var keyID: UInt8
    public var cipher: SecureCipher
    public var senderID: UInt32
    public var counter: UInt64

    public init(type: SecureDatagramType = .frame, keyID: UInt8, cipher: SecureCipher = .chacha20Poly1305,
                senderID: UInt32, counter: UInt64) {
        self.type = type
        self.keyID = keyID
        self.cipher = cipher
        self.senderID = senderID
        self.counter = counter
    }

    /// The fields of a validated datagram's header, or nil if byte 3 names no known cipher.
    public static func parse(_ header: SecureHeader) -> SecureHeaderRepr? {
        guard let cipher = SecureCipher(rawValue: header.cipher) else { return nil }
        return SecureHeaderRepr(type: header.type, keyID: header.keyID, cipher: cipher, senderID: header.senderID, counter: header.counter)
    }

    /// Bytes `emit(into:)` writes: 16.
    public var headerLength: Int { SecureHeader.headerLength }

    /// Writes the 16-byte header (version 1) at the start of `buffer` and returns
    /// 16, or returns nil, writing nothing, if `buffer` is shorter.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        typealias Field = SecureHeader.Field
        guard buffer.count >= SecureHeader.headerLength else { return nil }
        buffer[Field.magicAndVersion] = SecureHeader.magicAndVersion
        buffer[Field.type] = type.rawValue
        buffer[Field.keyID] = keyID
        buffer[Field.cipher] = cipher.rawValue
        buffer.storeBigEndian(senderID, toByteOffset: Field.senderID.lowerBound)
        buffer.storeBigEndian(counter, toByteOffset: Field.counter.lowerBound)
        return SecureHeader.headerLength
    }
}
