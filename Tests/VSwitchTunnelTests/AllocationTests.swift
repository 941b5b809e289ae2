import CMallocCounter
import Crypto
import Foundation
import Testing
import VSwitchTunnel

/// What sealing and opening cost in heap allocations. swift-crypto's AEAD API (a fresh BoringSSL
/// context per call, results returned as `Data`) allocates on every call; `SecureChannel` calls the
/// same BoringSSL AEAD through a thin shim (`CAEAD`) on its own buffers instead, so a secure
/// datagram is as allocation-free as the switch core's frames. These tests hold both to what was
/// measured, so a regression shows.
///
/// Measured per seal + open of a 1,400-byte frame (swift-crypto 3.12.3, Swift 6.3, Linux x86_64),
/// debug build:
///   swift-crypto ChaChaPoly.seal + open, called directly        18
///   swift-crypto AES.GCM.seal + open, called directly           14
///   SecureChannel.seal + open (ChaCha20-Poly1305, CAEAD)        0 (0.016: a few in 1,000 rounds,
///                                                               the replay table's first entries)
///   (before the shim, through swift-crypto: 19)
/// A datagram dropped before the AEAD (truncated, bad version, unknown key, replayed) costs none.
@Suite struct AllocationTests {
    static let rounds = 1_000

    /// Mallocs on this thread while `body` runs `rounds` times, after a warm-up run.
    func mallocs(_ body: () throws -> Void) rethrows -> UInt64 {
        for _ in 0..<10 { try body() }
        vswitch_malloc_counter_enable(1)
        let before = vswitch_malloc_count()
        for _ in 0..<Self.rounds { try body() }
        let count = vswitch_malloc_count() - before
        vswitch_malloc_counter_enable(0)
        return count
    }

    @Test func swiftCryptoChaChaPolyAllocatesPerCall() throws {
        let key = SymmetricKey(size: .bits256)
        let header = [UInt8](repeating: 7, count: 16)
        let count = try frame1400.withUnsafeBytes { frame in
            try header.withUnsafeBytes { header in
                try mallocs {
                    let nonce = try ChaChaPoly.Nonce(data: header[4..<16])
                    let box = try ChaChaPoly.seal(frame, using: key, nonce: nonce, authenticating: header)
                    let opened = try ChaChaPoly.open(box, using: key, authenticating: header)
                    precondition(opened.count == frame.count)
                }
            }
        }
        print("AllocationTests: swift-crypto ChaChaPoly seal+open of 1,400 bytes: \(count) mallocs / \(Self.rounds) = \(Double(count) / Double(Self.rounds)) each")
        #expect(count <= 18 * UInt64(Self.rounds) + 50)
    }

    @Test func swiftCryptoAESGCMAllocatesPerCall() throws {
        let key = SymmetricKey(size: .bits256)
        let header = [UInt8](repeating: 7, count: 16)
        let count = try frame1400.withUnsafeBytes { frame in
            try header.withUnsafeBytes { header in
                try mallocs {
                    let nonce = try AES.GCM.Nonce(data: header[4..<16])
                    let box = try AES.GCM.seal(frame, using: key, nonce: nonce, authenticating: header)
                    let opened = try AES.GCM.open(box, using: key, authenticating: header)
                    precondition(opened.count == frame.count)
                }
            }
        }
        print("AllocationTests: swift-crypto AES.GCM seal+open of 1,400 bytes: \(count) mallocs / \(Self.rounds) = \(Double(count) / Double(Self.rounds)) each")
        #expect(count <= 14 * UInt64(Self.rounds) + 50)
    }

    @Test(arguments: SecureCipher.allCases)
    func secureChannelSealAndOpen(cipher: SecureCipher) {
        let ring = SecureKeyRing(current: SecureKey.generate())
        let (a, b) = channelPair(ring, cipher: cipher)
        var datagram = [UInt8](repeating: 0, count: 1400 + SecureHeader.overhead)
        var output = [UInt8](repeating: 0, count: 65_535)
        var delivered = 0
        let count = frame1400.withUnsafeBytes { frame in
            datagram.withUnsafeMutableBytes { datagram in
                output.withUnsafeMutableBytes { output in
                    mallocs {
                        let length = a.seal(frame: frame, vni: 42, into: datagram)
                        let result = b.open(datagram: UnsafeRawBufferPointer(rebasing: datagram[..<length!]), into: output)
                        if case .frame = result { delivered += 1 }
                    }
                }
            }
        }
        print("AllocationTests: SecureChannel (\(cipher.name)) seal+open of 1,400 bytes: \(count) mallocs / \(Self.rounds) = \(Double(count) / Double(Self.rounds)) each")
        #expect(delivered == Self.rounds + 10)
        #expect(count <= 50, "\(count) mallocs for \(Self.rounds) seals and opens")
    }

    /// Drops before the AEAD (the checks a flood of junk meets) allocate nothing at all.
    @Test func droppingJunkAllocatesNothing() {
        let ring = SecureKeyRing(current: SecureKey.generate())
        let (a, b) = channelPair(ring)
        let replayed = sealFrame(a, frame1400)
        #expect(openDatagram(b, replayed).result == .frame(byteCount: 1400, vni: 42))
        var wrongVersion = replayed
        wrongVersion[0] = 0x08
        var unknownKey = replayed
        unknownKey[2] &+= 1
        var output = [UInt8](repeating: 0, count: 65_535)
        let count = output.withUnsafeMutableBytes { output in
            replayed.withUnsafeBytes { replayed in
                wrongVersion.withUnsafeBytes { wrongVersion in
                    unknownKey.withUnsafeBytes { unknownKey in
                        mallocs {
                            precondition(b.open(datagram: replayed, into: output) == .dropped(.replayed))
                            precondition(a.open(datagram: replayed, into: output) == .dropped(.reflected))
                            precondition(b.open(datagram: wrongVersion, into: output) == .dropped(.badVersion))
                            precondition(b.open(datagram: unknownKey, into: output) == .dropped(.unknownKey))
                            precondition(b.open(datagram: UnsafeRawBufferPointer(rebasing: replayed[..<20]), into: output) == .dropped(.truncated))
                        }
                    }
                }
            }
        }
        #expect(count == 0, "\(count) mallocs dropping \(5 * Self.rounds) datagrams")
    }
}
