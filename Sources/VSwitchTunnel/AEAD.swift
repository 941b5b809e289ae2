import CAEAD

/// The AEAD a secure port seals with. Both take a 32-byte key and a 96-bit nonce and make a
/// 16-byte tag, so the datagram layout is the same; byte 3 of the header names the cipher
/// (SecureHeader.swift), and both ends of a tunnel must use the same one.
public enum SecureCipher: UInt8, CaseIterable, Sendable {
    /// ChaCha20-Poly1305 (RFC 8439): the same speed on every CPU; the faster of the two where
    /// the CPU has no AES instructions (a Raspberry Pi 4, say). The default until 2026-11, so a
    /// saved port without a cipher is one of these.
    case chacha20Poly1305 = 0
    /// AES-256-GCM (NIST SP 800-38D): much faster where the CPU has AES and carry-less multiply
    /// instructions (x86-64 with AES-NI and PCLMULQDQ, better still VAES; ARMv8 crypto extensions).
    /// Without them BoringSSL falls back to bitsliced, constant-time code: safe, but slower than
    /// ChaCha20-Poly1305. The default.
    case aes256GCM = 1

    /// What a secure port seals with when `--cipher` is not given: AES-256-GCM, as in OpenVPN.
    /// Servers and the virtual machines on them have AES instructions; here it seals 3.6 times
    /// as fast as ChaCha20-Poly1305 (5.67 against 1.59 GB/s, 1,408-byte datagrams).
    public static let `default` = SecureCipher.aes256GCM

    /// The name on the command line and in `show`: `chacha20-poly1305`, `aes-256-gcm` (OpenVPN's
    /// and OpenSSL's names, lower case).
    public var name: String {
        switch self {
        case .chacha20Poly1305: "chacha20-poly1305"
        case .aes256GCM: "aes-256-gcm"
        }
    }

    /// The cipher called `name` (case-insensitive), or nil.
    public init?(name: String) {
        guard let found = Self.allCases.first(where: { $0.name == name.lowercased() }) else { return nil }
        self = found
    }
}

/// One cipher with one key: BoringSSL's AEAD (the one swift-crypto builds and links) called
/// through a thin C shim (`CAEAD`) on the caller's buffers. The only code in this module that
/// touches the AEAD.
///
/// Why not swift-crypto's `ChaChaPoly` and `AES.GCM` API: it sets up a BoringSSL context on every call and
/// returns `Data`, so a seal plus an open allocated 17-19 times and copied once more each way
/// (measured, `AllocationTests`). Here the context is made once per key, sealing happens in place
/// in the datagram, and opening writes into a scratch buffer made with the key: no allocation per
/// datagram. The primitive is the same, so the wire format is unchanged (tests seal with one and
/// open with the other).
final class AEAD {
    let cipher: SecureCipher
    private let context: OpaquePointer
    /// Where `open` writes plaintexts (the largest a UDP datagram can carry); made on first use
    /// (session keys open straight into packet buffers and never need it).
    private var scratchStorage: UnsafeMutableRawPointer?
    private var scratch: UnsafeMutableRawPointer {
        if let s = scratchStorage { return s }
        let s = UnsafeMutableRawPointer.allocate(byteCount: Self.scratchSize, alignment: 16)
        scratchStorage = s
        return s
    }
    static let scratchSize = 65_536
    static let nonceLength = 12
    static let tagLength = 16

    init(_ key: SecureKey, cipher: SecureCipher) {
        self.cipher = cipher
        context = key.withUnsafeBytes { Self.makeContext($0, cipher: cipher) }
    }

    /// A context for 32 key bytes (a session key).
    init(keyBytes: UnsafeRawBufferPointer, cipher: SecureCipher) {
        self.cipher = cipher
        context = Self.makeContext(keyBytes, cipher: cipher)
    }

    private static func makeContext(_ bytes: UnsafeRawBufferPointer, cipher: SecureCipher) -> OpaquePointer {
        let k = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let made = switch cipher {
        case .chacha20Poly1305: vswitch_aead_chacha20_poly1305_new(k, bytes.count)
        case .aes256GCM: vswitch_aead_aes_256_gcm_new(k, bytes.count)
        }
        // A 32-byte key and a 16-byte tag are always accepted; nil means BoringSSL could not
        // allocate a few hundred bytes. (BoringSSL zeroes the key schedule when it frees it.)
        return made!
    }

    deinit {
        vswitch_aead_free(context)
        scratchStorage?.deallocate()
    }

    /// Seals `plaintext` with `nonce` (12 bytes) and `associatedData`, and writes nonce, ciphertext
    /// and tag (12 + plaintext.count + 16 bytes) to `combined`. The plaintext may already sit at
    /// `combined` + 12 (then it is sealed in place) or anywhere else; the nonce and associated data
    /// are read before anything they share with `combined` is written. False if BoringSSL refused.
    func seal(_ plaintext: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer,
              authenticating associatedData: UnsafeRawBufferPointer, into combined: UnsafeMutableRawBufferPointer) -> Bool {
        guard nonce.count == Self.nonceLength, combined.count == Self.nonceLength + plaintext.count + Self.tagLength,
              let out = combined.baseAddress
        else { return false }
        var nonceCopy: (UInt64, UInt32) = (0, 0)
        withUnsafeMutableBytes(of: &nonceCopy) { $0.copyMemory(from: nonce) }
        let body = out + Self.nonceLength
        if plaintext.count > 0, let source = plaintext.baseAddress, source != UnsafeRawPointer(body) {
            body.copyMemory(from: source, byteCount: plaintext.count)  // memmove: may overlap
        }
        withUnsafeBytes(of: nonceCopy) { out.copyMemory(from: $0.baseAddress!, byteCount: Self.nonceLength) }
        var written = 0
        let ok = withUnsafeBytes(of: nonceCopy) { n in
            vswitch_aead_seal(context, body.assumingMemoryBound(to: UInt8.self), &written, plaintext.count + Self.tagLength,
                              n.baseAddress!.assumingMemoryBound(to: UInt8.self), Self.nonceLength,
                              body.assumingMemoryBound(to: UInt8.self), plaintext.count,
                              associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), associatedData.count)
        }
        return ok == 1 && written == plaintext.count + Self.tagLength
    }

    /// Opens `combined` (nonce, ciphertext, tag) authenticated with `associatedData` and calls
    /// `body` with the plaintext (valid only during the call), or returns nil without calling it
    /// if authentication fails. `combined` is not written.
    func open<Result>(_ combined: UnsafeRawBufferPointer, authenticating associatedData: UnsafeRawBufferPointer,
                      _ body: (UnsafeRawBufferPointer) -> Result) -> Result? {
        guard let written = open(combined, authenticating: associatedData, into: scratch, capacity: Self.scratchSize) else { return nil }
        return body(UnsafeRawBufferPointer(start: scratch, count: written))
    }

    /// Opens `combined` straight into `out` (room for `capacity` bytes, not overlapping
    /// `combined`) and returns the plaintext's length, or nil if authentication fails (then `out`
    /// holds nothing to use). `combined` is not written.
    func open(_ combined: UnsafeRawBufferPointer, authenticating associatedData: UnsafeRawBufferPointer,
              into out: UnsafeMutableRawPointer, capacity: Int) -> Int? {
        guard combined.count >= Self.nonceLength + Self.tagLength,
              combined.count - Self.nonceLength - Self.tagLength <= capacity,
              let base = combined.baseAddress
        else { return nil }
        var written = 0
        let ok = vswitch_aead_open(context, out.assumingMemoryBound(to: UInt8.self), &written, capacity,
                                   base.assumingMemoryBound(to: UInt8.self), Self.nonceLength,
                                   (base + Self.nonceLength).assumingMemoryBound(to: UInt8.self), combined.count - Self.nonceLength,
                                   associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), associatedData.count)
        return ok == 1 ? written : nil
    }
}
