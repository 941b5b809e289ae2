import Crypto
import struct Foundation.Data

/// ChaCha20-Poly1305 from swift-crypto for one key: the only code in this module that touches
/// swift-crypto's AEAD API and the Foundation `Data` it returns, so that a later in-place version
/// (a thin shim over BoringSSL's `EVP_AEAD_CTX_seal`/`open` on caller buffers) replaces one file.
///
/// Cost today, per datagram: swift-crypto builds a fresh BoringSSL context per call and returns
/// `Data`, so a seal and an open each allocate several times (measured in the tests:
/// `AllocationTests`), and each copies once more than in place would: the sealed box is copied
/// into the datagram, the opened plaintext into the frame buffer. The `SymmetricKey` is made once
/// per key, not per datagram.
struct ChaChaPolyAEAD {
    private let key: SymmetricKey

    init(_ key: SecureKey) {
        self.key = key.withUnsafeBytes { SymmetricKey(data: $0) }
    }

    /// Seals `plaintext` with `nonce` (12 bytes) and `associatedData`, and writes nonce, ciphertext
    /// and tag (12 + plaintext.count + 16 bytes) to `combined`. The inputs may lie inside
    /// `combined`: they are read in full before it is written. False if the library refused.
    func seal(_ plaintext: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer,
              authenticating associatedData: UnsafeRawBufferPointer, into combined: UnsafeMutableRawBufferPointer) -> Bool {
        guard let nonce = try? ChaChaPoly.Nonce(data: nonce),
              let box = try? ChaChaPoly.seal(plaintext, using: key, nonce: nonce, authenticating: associatedData),
              box.combined.count == combined.count
        else { return false }
        box.combined.withUnsafeBytes { combined.copyMemory(from: $0) }
        return true
    }

    /// Opens `combined` (nonce, ciphertext, tag) authenticated with `associatedData` and calls
    /// `body` with the plaintext, or returns nil without calling it if authentication fails.
    func open<Result>(_ combined: UnsafeRawBufferPointer, authenticating associatedData: UnsafeRawBufferPointer,
                      _ body: (UnsafeRawBufferPointer) -> Result) -> Result? {
        guard let box = try? ChaChaPoly.SealedBox(combined: combined),
              let plaintext = try? ChaChaPoly.open(box, using: key, authenticating: associatedData)
        else { return nil }
        return plaintext.withUnsafeBytes(body)
    }
}
