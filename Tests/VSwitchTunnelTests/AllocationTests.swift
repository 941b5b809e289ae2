import CMallocCounter
import Crypto
import Foundation
import Testing
import VSwitchTunnel

/// What sealing and opening cost in heap allocations. swift-crypto's AEAD API (a fresh BoringSSL
/// context per call, results returned as `Data`) allocates on every call; `SecureTunnel` calls the
/// same BoringSSL AEAD through a thin shim (`CAEAD`) on its own buffers instead, so a secure data
/// datagram is as allocation-free as the switch core's frames. These tests hold both to what was
/// measured, so a regression shows. (Handshakes allocate; they are not on the per-frame path.)
///
/// Measured per seal + open of a 1,400-byte frame (swift-crypto 3.12.3, Swift 6.3, Linux x86_64),
/// debug build:
///   swift-crypto ChaChaPoly.seal + open, called directly        18
///   swift-crypto AES.GCM.seal + open, called directly           14
///   SecureTunnel.seal + open, after a handshake (either cipher) 0 (0.016 until ReplayWindow's
///                                                               loop over a UInt64 range became a while loop)
///   (before the shim, through swift-crypto: 19)
/// A data datagram dropped before the AEAD (truncated, another magic byte, another cipher, an
/// unknown session, replayed) costs none.
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
    func secureTunnelSealAndOpen(cipher: SecureCipher) {
        let pair = EstablishedPair(cipher: cipher)
        var datagram = [UInt8](repeating: 0, count: 1400 + SecureHandshake.dataOverhead)
        var output = [UInt8](repeating: 0, count: 65_535)
        var delivered = 0
        let count = frame1400.withUnsafeBytes { frame in
            datagram.withUnsafeMutableBytes { datagram in
                output.withUnsafeMutableBytes { output in
                    mallocs {
                        guard case .sealed(let length) = pair.a.seal(frame: frame, vni: 42, peer: 0, now: pair.now, into: datagram) else { return }
                        let result = pair.b.open(datagram: UnsafeRawBufferPointer(rebasing: datagram[..<length]), from: pair.addressA,
                                                 sourceLength: pair.length, now: pair.now, into: output, frameHasHeadroom: false)
                        if case .frame(byteCount: 1400, vni: 42, peer: 0) = result { delivered += 1 }
                    }
                }
            }
        }
        print("AllocationTests: SecureTunnel (\(cipher.name)) seal+open of 1,400 bytes: \(count) mallocs / \(Self.rounds) = \(Double(count) / Double(Self.rounds)) each")
        #expect(delivered == Self.rounds + 10)
        #expect(count == 0, "\(count) mallocs for \(Self.rounds) seals and opens")
    }

    /// Drops before the AEAD (the checks a flood of junk data datagrams meets) allocate nothing at all.
    @Test func droppingJunkAllocatesNothing() {
        let pair = EstablishedPair()
        var replayed = [UInt8](repeating: 0, count: 1400 + SecureHandshake.dataOverhead)
        let sealed = frame1400.withUnsafeBytes { frame in
            replayed.withUnsafeMutableBytes { pair.a.seal(frame: frame, vni: 42, peer: 0, now: pair.now, into: $0) }
        }
        #expect(sealed == .sealed(replayed.count))
        var output = [UInt8](repeating: 0, count: 65_535)
        func open(_ datagram: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) -> SecureReceiveResult {
            pair.b.open(datagram: datagram, from: pair.addressA, sourceLength: pair.length, now: pair.now, into: output, frameHasHeadroom: false)
        }
        #expect(replayed.withUnsafeBytes { d in output.withUnsafeMutableBytes { open(d, $0) } } == .frame(byteCount: 1400, vni: 42, peer: 0))
        var vxlan = replayed
        vxlan[0] = 0x08
        var version1 = replayed
        version1[0] = 0xA1
        var otherCipher = replayed
        otherCipher[3] ^= 1
        var unknownSession = replayed
        unknownSession[5] &+= 1
        let count = output.withUnsafeMutableBytes { output in
            replayed.withUnsafeBytes { replayed in
                vxlan.withUnsafeBytes { vxlan in
                    version1.withUnsafeBytes { version1 in
                        otherCipher.withUnsafeBytes { otherCipher in
                            unknownSession.withUnsafeBytes { unknownSession in
                                mallocs {
                                    precondition(open(replayed, output) == .dropped(.replayed))
                                    precondition(open(vxlan, output) == .dropped(.malformed))
                                    precondition(open(version1, output) == .dropped(.malformed))
                                    precondition(open(otherCipher, output) == .dropped(.cipherMismatch))
                                    precondition(open(unknownSession, output) == .dropped(.unknownSession))
                                    precondition(open(UnsafeRawBufferPointer(rebasing: replayed[..<20]), output) == .dropped(.malformed))
                                }
                            }
                        }
                    }
                }
            }
        }
        #expect(count == 0, "\(count) mallocs dropping \(6 * Self.rounds) datagrams")
    }
}

/// Two secure tunnel engines, `a` and `b`, each with the other as its one remote (at
/// 127.0.0.1:40001 and 127.0.0.1:40002), after a completed handshake: `a` initiated, `b`
/// answered, and `a`'s keepalive confirmed `b`'s session, so both seal and open. `now` is the
/// time both were given; datagrams from `a` come from `pairAddressA`.
private final class EstablishedPair {
    let a: SecureTunnel
    let b: SecureTunnel
    let now: UInt64 = 1_000 * 1_000_000_000
    let endpoints = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 2)
    let lengths = UnsafeMutablePointer<UInt32>.allocate(capacity: 2)
    let addressA = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
    let addressB = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
    let length = UInt32(MemoryLayout<sockaddr_in>.size)

    init(cipher: SecureCipher = .default, presharedKey: SecureKey? = nil) {
        let keyA = SecurePrivateKey.generate(), keyB = SecurePrivateKey.generate()
        Self.loopback(addressA, port: 40001)
        Self.loopback(addressB, port: 40002)
        endpoints[0] = addressB.pointee  // a's remote: b
        endpoints[1] = addressA.pointee  // b's remote: a
        lengths[0] = length
        lengths[1] = length
        a = SecureTunnel(configuration: SecureConfiguration(privateKey: keyA, peers: [keyB.publicKey], presharedKey: presharedKey,
                                                            cipher: cipher),
                         endpoints: endpoints, endpointLengths: lengths)
        b = SecureTunnel(configuration: SecureConfiguration(privateKey: keyB, peers: [keyA.publicKey], presharedKey: presharedKey,
                                                            cipher: cipher),
                         endpoints: endpoints + 1, endpointLengths: lengths + 1)
        a.start(now: now)
        precondition(deliver(from: a, to: b, source: addressA) == 1, "no initiation")
        precondition(deliver(from: b, to: a, source: addressB) == 1, "no response")
        precondition(deliver(from: a, to: b, source: addressA) == 1, "no keepalive")
    }

    deinit {
        endpoints.deallocate(); lengths.deallocate(); addressA.deallocate(); addressB.deallocate()
    }

    /// Hands everything in `sender`'s outbox to `receiver` as coming from `source`; the number
    /// of messages the receiver consumed.
    @discardableResult
    func deliver(from sender: SecureTunnel, to receiver: SecureTunnel, source: UnsafePointer<sockaddr_storage>) -> Int {
        var consumed = 0
        var scratch = [UInt8](repeating: 0, count: 2048)
        var messages: [[UInt8]] = []
        for i in 0..<sender.outboxCount { messages.append(Array(sender.outboxMessage(i).bytes)) }
        sender.clearOutbox()
        for message in messages {
            let result = message.withUnsafeBytes { m in
                scratch.withUnsafeMutableBytes {
                    receiver.open(datagram: m, from: source, sourceLength: length, now: now, into: $0, frameHasHeadroom: false)
                }
            }
            if result == .consumed { consumed += 1 }
        }
        return consumed
    }

    private static func loopback(_ address: UnsafeMutablePointer<sockaddr_storage>, port: UInt16) {
        address.initialize(to: sockaddr_storage())
        address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
            sin.pointee.sin_family = sa_family_t(AF_INET)
            sin.pointee.sin_port = port.bigEndian
            sin.pointee.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        }
    }
}
