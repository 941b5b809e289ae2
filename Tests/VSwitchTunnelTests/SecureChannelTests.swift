import VSwitchTesting
import Crypto
import Foundation
import Testing
@testable import VSwitchTunnel

@Suite struct SecureChannelTests {
    let ring = SecureKeyRing(current: SecureKey.generate())

    @Test(arguments: SecureCipher.allCases)
    func roundTrip(cipher: SecureCipher) {
        let (a, b) = channelPair(ring, cipher: cipher)
        for frame in [frame1400, ipv6Frame(sourcePort: 1, destinationPort: 2), [UInt8](), [0x42]] {
            let datagram = sealFrame(a, frame, vni: 0xab_cdef)
            #expect(datagram.count == frame.count + 36)
            let (result, opened) = openDatagram(b, datagram)
            #expect(result == .frame(byteCount: frame.count, vni: 0xab_cdef))
            #expect(opened == frame)
        }
        // The other way round too: each channel seals and opens.
        let back = sealFrame(b, frame1400, vni: 7)
        #expect(openDatagram(a, back).result == .frame(byteCount: 1400, vni: 7))
    }

    @Test func headerCarriesVersionTypeKeySenderAndCounter() {
        let (a, _) = channelPair(ring, cipher: .chacha20Poly1305)  // byte 3 is 0
        let first = sealFrame(a, frame1400)
        let second = sealFrame(a, frame1400)
        for (datagram, counter) in [(first, UInt64(1)), (second, 2)] {
            datagram.withUnsafeBytes { buffer in
                let header = SecureHeader(validating: buffer)!
                #expect(header.magicAndVersion == 0xa1)
                #expect(header.type == .frame)
                #expect(header.keyID == ring.current.id)
                #expect(header.senderID == 0x1111_1111)
                #expect(header.counter == counter)
                #expect(buffer[3] == 0)
                #expect(SecureHeaderRepr.parse(header) == SecureHeaderRepr(keyID: ring.current.id, senderID: 0x1111_1111, counter: counter))
            }
        }
        #expect(Array(first[..<4]) == [0xa1, 0x01, ring.current.id, 0x00])
        #expect(Array(first[4..<16]) == bytes("11 11 11 11 00 00 00 00 00 00 00 01"))
        // The frame is encrypted: its bytes do not appear in the datagram.
        #expect(Array(first[20..<1420]) != frame1400)
        #expect(first[16...] != second[16...], "two datagrams of one frame differ")
    }

    @Test(arguments: SecureCipher.allCases)
    func everySingleByteModificationIsRejected(cipher: SecureCipher) {
        let (a, b) = channelPair(ring, cipher: cipher)
        for _ in 0..<4 { _ = sealFrame(a, frame1400) }  // counter 5: no flip below reaches 0
        let frame = ipv4Frame(sourcePort: 1, destinationPort: 2, payload: 40)
        let datagram = sealFrame(a, frame)
        for index in datagram.indices {
            for flip: UInt8 in [0x01, 0x80, 0xff] {
                var modified = datagram
                modified[index] ^= flip
                let result = openDatagram(b, modified).result
                let expected: SecureDropReason =
                    switch index {
                    case 0: .badVersion
                    case 1: .unknownType
                    case 2: .unknownKey
                    case 3: .cipherMismatch
                    default: .authenticationFailed
                    }
                #expect(result == .dropped(expected), "byte \(index) ^ \(flip)")
            }
        }
        // Forgeries changed nothing: the genuine datagram still opens, once.
        #expect(openDatagram(b, datagram).result == .frame(byteCount: frame.count, vni: 42))
        #expect(openDatagram(b, datagram).result == .dropped(.replayed))
    }

    @Test func replayIsRejected() {
        let (a, b) = channelPair(ring)
        let datagram = sealFrame(a, frame1400)
        #expect(openDatagram(b, datagram).result == .frame(byteCount: 1400, vni: 42))
        #expect(openDatagram(b, datagram).result == .dropped(.replayed))
        #expect(openDatagram(b, datagram).result == .dropped(.replayed))
    }

    @Test func outOfOrderWithinTheWindowIsAcceptedOnce() {
        let (a, b) = channelPair(ring)
        let datagrams = (0..<300).map { i in sealFrame(a, ipv4Frame(sourcePort: UInt16(i), destinationPort: 9)) }
        var generator = SeededGenerator(seed: 6479)
        let order = Array(datagrams.indices).shuffled(using: &generator)
        for i in order {
            let (result, frame) = openDatagram(b, datagrams[i])
            #expect(result == .frame(byteCount: datagrams[i].count - 36, vni: 42), "datagram \(i)")
            #expect(frame == ipv4Frame(sourcePort: UInt16(i), destinationPort: 9))
        }
        for i in order { #expect(openDatagram(b, datagrams[i]).result == .dropped(.replayed), "datagram \(i) again") }
    }

    @Test func olderThanTheWindowIsRejected() {
        let (a, b) = channelPair(ring)
        let oldest = sealFrame(a, frame1400)  // counter 1
        a.nextCounter = 1_000
        let edge = sealFrame(a, frame1400)  // 1,000
        let beyond = sealFrame(a, frame1400)  // 1,001
        a.nextCounter = 1_000 + ReplayWindow.size
        let newest = sealFrame(a, frame1400)  // 2,984: 1,000 is 1,984 behind, 1,001 is 1,983
        #expect(openDatagram(b, newest).result == .frame(byteCount: 1400, vni: 42))
        #expect(openDatagram(b, edge).result == .dropped(.replayed))
        #expect(openDatagram(b, oldest).result == .dropped(.replayed))
        #expect(openDatagram(b, beyond).result == .frame(byteCount: 1400, vni: 42))
        #expect(openDatagram(b, beyond).result == .dropped(.replayed))
    }

    @Test func everyTruncationIsRejectedWithoutTrapping() {
        let (a, b) = channelPair(ring)
        let datagram = sealFrame(a, ipv4Frame(sourcePort: 1, destinationPort: 2, payload: 60))
        for length in 0..<datagram.count {
            let result = openDatagram(b, Array(datagram[..<length])).result
            #expect(result == .dropped(length < 36 ? .truncated : .authenticationFailed), "length \(length)")
        }
        #expect(openDatagram(b, datagram).result == .frame(byteCount: datagram.count - 36, vni: 42))
    }

    @Test func unknownKeyIDIsRejected() {
        let (a, _) = channelPair(ring)
        let stranger = SecureChannel(keys: SecureKeyRing(current: key(differingFrom: ring.current)), senderID: 3)
        #expect(openDatagram(stranger, sealFrame(a, frame1400)).result == .dropped(.unknownKey))
    }

    @Test func anotherKeyWithTheSameIDFailsAuthentication() {
        let (a, _) = channelPair(ring)
        let impostor = SecureChannel(keys: SecureKeyRing(current: key(collidingWith: ring.current)), senderID: 3)
        #expect(openDatagram(impostor, sealFrame(a, frame1400)).result == .dropped(.authenticationFailed))
    }

    @Test func rotationKeepsThePreviousKeyForOpeningAndSealsWithTheNew() {
        let (a, b) = channelPair(ring)
        let old = sealFrame(a, frame1400)
        let next = key(differingFrom: ring.current)
        a.keys = a.keys.rotated(to: next)
        b.keys = b.keys.rotated(to: next)
        #expect(a.keys == SecureKeyRing(current: next, previous: ring.current))
        let new = sealFrame(a, frame1400)
        #expect(new[2] == next.id && old[2] == ring.current.id)
        #expect(new[15] == 2, "the counter carries on across a rotation")
        #expect(openDatagram(b, old).result == .frame(byteCount: 1400, vni: 42))
        #expect(openDatagram(b, new).result == .frame(byteCount: 1400, vni: 42))
        // Once the previous key is dropped, its datagrams are refused.
        let onlyNew = SecureChannel(keys: SecureKeyRing(current: next), senderID: 4)
        #expect(openDatagram(onlyNew, sealFrame(SecureChannel(keys: ring, senderID: 5), frame1400)).result == .dropped(.unknownKey))
        // Step 1 of a rotation: seal with the old key, already accept the next one.
        let staged = SecureChannel(keys: SecureKeyRing(current: ring.current, previous: next), senderID: 6)
        #expect(openDatagram(staged, sealFrame(SecureChannel(keys: SecureKeyRing(current: next), senderID: 7), frame1400)).result
            == .frame(byteCount: 1400, vni: 42))
    }

    @Test func bothKeysAreTriedWhenTheirIDsCollide() {
        let twin = key(collidingWith: ring.current)
        let receiver = SecureChannel(keys: SecureKeyRing(current: twin, previous: ring.current), senderID: 9)
        let fromOld = sealFrame(SecureChannel(keys: ring, senderID: 10), frame1400)
        let fromNew = sealFrame(SecureChannel(keys: SecureKeyRing(current: twin), senderID: 11), frame1400)
        #expect(openDatagram(receiver, fromOld).result == .frame(byteCount: 1400, vni: 42))
        #expect(openDatagram(receiver, fromNew).result == .frame(byteCount: 1400, vni: 42))
    }

    @Test func ownDatagramsReflectedBackAreDropped() {
        let (a, _) = channelPair(ring)
        #expect(openDatagram(a, sealFrame(a, frame1400)).result == .dropped(.reflected))
    }

    @Test func sendersAreKeptApart() {
        let (a, b) = channelPair(ring)
        let c = SecureChannel(keys: ring, senderID: 0x3333_3333)
        // Both count from 1; neither's counter 1 blocks the other's.
        #expect(openDatagram(b, sealFrame(a, frame1400)).result == .frame(byteCount: 1400, vni: 42))
        #expect(openDatagram(b, sealFrame(c, frame1400)).result == .frame(byteCount: 1400, vni: 42))
    }

    @Test func sealRefusesShortBuffersBigVNIsAndAnExhaustedCounter() {
        let (a, b) = channelPair(ring)
        var small = [UInt8](repeating: 0, count: 1400 + 35)
        #expect(frame1400.withUnsafeBytes { f in small.withUnsafeMutableBytes { a.seal(frame: f, vni: 1, into: $0) } } == nil)
        var buffer = [UInt8](repeating: 0, count: 1400 + 36)
        #expect(frame1400.withUnsafeBytes { f in buffer.withUnsafeMutableBytes { a.seal(frame: f, vni: 0x100_0000, into: $0) } } == nil)
        #expect(a.nextCounter == 1, "a refused seal uses no counter")

        a.nextCounter = .max - 1
        let last = sealFrame(a, frame1400)
        #expect(Array(last[8..<16]) == [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])
        #expect(a.isExhausted)
        #expect(frame1400.withUnsafeBytes { f in buffer.withUnsafeMutableBytes { a.seal(frame: f, vni: 1, into: $0) } } == nil)
        #expect(openDatagram(b, last).result == .frame(byteCount: 1400, vni: 42))
    }

    @Test func sealsInPlaceWhenTheFrameIsAlreadyInTheHeadroom() {
        let (a, b) = channelPair(ring)
        var datagram = [UInt8](repeating: 0, count: 20) + frame1400 + [UInt8](repeating: 0, count: 16)
        let length = datagram.withUnsafeMutableBytes { buffer in
            a.seal(frame: UnsafeRawBufferPointer(rebasing: buffer[20..<1420]), vni: 5, into: buffer)
        }
        #expect(length == 1436)
        let (result, frame) = openDatagram(b, datagram)
        #expect(result == .frame(byteCount: 1400, vni: 5) && frame == frame1400)
    }

    @Test func openRefusesAFrameLargerThanTheBuffer() {
        let (a, b) = channelPair(ring)
        let datagram = sealFrame(a, frame1400)
        #expect(openDatagram(b, datagram, capacity: 1399).result == .dropped(.frameTooLarge))
        #expect(openDatagram(b, datagram, capacity: 1400).result == .frame(byteCount: 1400, vni: 42))
    }

    /// Byte 3 names the cipher: ends configured with different ciphers drop each other's
    /// datagrams as `cipherMismatch` (before any AEAD work), never as forgeries, and a datagram
    /// whose cipher byte is rewritten to match fails authentication (the byte is associated data).
    @Test func aCipherMismatchIsToldApartFromAForgery() {
        let chacha = SecureChannel(keys: ring, cipher: .chacha20Poly1305, senderID: 1)
        let aes = SecureChannel(keys: ring, cipher: .aes256GCM, senderID: 2)
        let fromChaCha = sealFrame(chacha, frame1400), fromAES = sealFrame(aes, frame1400)
        #expect(fromChaCha[3] == 0 && fromAES[3] == 1)
        #expect(openDatagram(aes, fromChaCha).result == .dropped(.cipherMismatch))
        #expect(openDatagram(chacha, fromAES).result == .dropped(.cipherMismatch))
        var relabelled = fromChaCha
        relabelled[3] = 1
        #expect(openDatagram(aes, relabelled).result == .dropped(.authenticationFailed))
        var unknown = fromAES
        unknown[3] = 7
        #expect(openDatagram(aes, unknown).result == .dropped(.cipherMismatch))
        unknown.withUnsafeBytes { #expect(SecureHeaderRepr.parse(SecureHeader(validating: $0)!) == nil) }
        // Each still opens its own kind.
        #expect(openDatagram(SecureChannel(keys: ring, cipher: .aes256GCM, senderID: 3), fromAES).result == .frame(byteCount: 1400, vni: 42))
    }

    @Test func otherVersionsTypesAndVXLANAreRejected() {
        let (a, b) = channelPair(ring)
        var datagram = sealFrame(a, frame1400)
        datagram[0] = 0x08  // a VXLAN header
        #expect(openDatagram(b, datagram).result == .dropped(.badVersion))
        datagram[0] = 0xa2
        #expect(openDatagram(b, datagram).result == .dropped(.badVersion))
        datagram[0] = 0xa1
        datagram[1] = 2
        #expect(openDatagram(b, datagram).result == .dropped(.unknownType))
    }

    @Test(arguments: SecureCipher.allCases)
    func randomDatagramsNeverTrap(cipher: SecureCipher) {
        let (a, b) = channelPair(ring, cipher: cipher)
        var generator = SeededGenerator(seed: 8439)
        var output = [UInt8](repeating: 0, count: 65_535)
        func attempt(_ datagram: [UInt8]) {
            let result = datagram.withUnsafeBytes { d in output.withUnsafeMutableBytes { b.open(datagram: d, into: $0) } }
            if case .frame = result { Issue.record("random bytes opened as a frame") }
        }
        let id = ring.current.id
        for length in 0...2000 {
            var datagram = [UInt8].random(count: length, using: &generator)
            attempt(datagram)
            // And with a plausible header, so the replay check and the AEAD run on them too.
            if length >= 4 { datagram.replaceSubrange(0..<4, with: [0xa1, 0x01, id, cipher.rawValue]) }
            attempt(datagram)
        }
        for length in [8_192, 9_000, 32_768, 65_506, 65_507] {
            var datagram = [UInt8].random(count: length, using: &generator)
            attempt(datagram)
            datagram.replaceSubrange(0..<4, with: [0xa1, 0x01, id, cipher.rawValue])
            attempt(datagram)
        }
        // The biggest frame a UDP datagram over IPv4 can carry round-trips.
        let big = [UInt8].random(count: 65_507 - 36, using: &generator)
        #expect(openDatagram(b, sealFrame(a, big)).result == .frame(byteCount: 65_471, vni: 42))
    }

    /// The wire format does not depend on which code calls the AEAD: datagrams sealed through the
    /// CAEAD shim open with swift-crypto's `ChaChaPoly` or `AES.GCM`, and the reverse, for frames
    /// of every size class (including empty and a whole superframe-sized datagram).
    @Test(arguments: SecureCipher.allCases, [0, 1, 63, 64, 1_400, 65_000])
    func datagramsAreThoseSwiftCryptoSealsAndOpens(cipher: SecureCipher, size: Int) throws {
        let secret = SecureKey.generate()
        let key = secret.withUnsafeBytes { SymmetricKey(data: $0) }
        let (a, b) = channelPair(SecureKeyRing(current: secret), cipher: cipher)
        let frame = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // Ours sealed, swift-crypto opens: nonce, ciphertext and tag from byte 4, header as AD.
        let datagram = sealFrame(a, frame)
        #expect(datagram[3] == cipher.rawValue)
        let opened: Data =
            switch cipher {
            case .chacha20Poly1305:
                try ChaChaPoly.open(ChaChaPoly.SealedBox(combined: datagram[4...]), using: key, authenticating: datagram[..<16])
            case .aes256GCM:
                try AES.GCM.open(AES.GCM.SealedBox(combined: datagram[4...]), using: key, authenticating: datagram[..<16])
            }
        #expect(Array(opened) == [0, 0, 0, 42] + frame)
        // swift-crypto sealed (same header, next counter), ours opens.
        var header = Array(datagram[..<16])
        header[15] &+= 1
        let plaintext = Data([0, 0, 0, 42] + frame)
        let sealed: (ciphertext: Data, tag: Data) =
            switch cipher {
            case .chacha20Poly1305:
                try ChaChaPoly.seal(plaintext, using: key, nonce: ChaChaPoly.Nonce(data: header[4...]), authenticating: header)
                    .ciphertextAndTag
            case .aes256GCM:
                try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: header[4...]), authenticating: header)
                    .ciphertextAndTag
            }
        let theirs = header + Array(sealed.ciphertext) + Array(sealed.tag)
        let result = openDatagram(b, theirs)
        #expect(result.result == .frame(byteCount: size, vni: 42))
        #expect(result.frame == frame)
    }

    /// Opening into a packet buffer's headroom (no copy after decryption) delivers what opening
    /// into a plain buffer does, refuses what it refuses, and still tries both keys when their
    /// ids collide.
    @Test func openingIntoTheHeadroomMatchesOpeningIntoABuffer() {
        let old = SecureKey.generate()
        let (a, b) = channelPair(SecureKeyRing(current: old))
        func openWithHeadroom(_ channel: SecureChannel, _ datagram: [UInt8]) -> (SecureOpenResult, [UInt8]) {
            var buffer = [UInt8](repeating: 0xEE, count: 65_535 + 64)
            let result = datagram.withUnsafeBytes { d in
                buffer.withUnsafeMutableBytes { b in
                    channel.open(datagram: d, into: UnsafeMutableRawBufferPointer(rebasing: b[64...]), frameHasHeadroom: true)
                }
            }
            if case .frame(let n, _) = result { return (result, Array(buffer[64..<64 + n])) }
            return (result, [])
        }
        for size in [0, 1, 1_400, 9_000] {
            let frame = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let datagram = sealFrame(a, frame, vni: 77)
            let (result, opened) = openWithHeadroom(b, datagram)
            #expect(result == .frame(byteCount: size, vni: 77))
            #expect(opened == frame)
            #expect(openWithHeadroom(b, datagram).0 == .dropped(.replayed))
            var forged = sealFrame(a, frame, vni: 77)
            forged[forged.count - 1] ^= 1
            #expect(openWithHeadroom(b, forged).0 == .dropped(.authenticationFailed))
        }
        // Rotation to a key with the same id: the previous key still opens, in place too.
        let new = key(collidingWith: old)
        let late = sealFrame(a, [1, 2, 3])
        b.keys = SecureKeyRing(current: new, previous: old)
        let (result, opened) = openWithHeadroom(b, late)
        #expect(result == .frame(byteCount: 3, vni: 42))
        #expect(opened == [1, 2, 3])
    }
}

private extension ChaChaPoly.SealedBox {
    var ciphertextAndTag: (ciphertext: Data, tag: Data) { (ciphertext, tag) }
}

private extension AES.GCM.SealedBox {
    var ciphertextAndTag: (ciphertext: Data, tag: Data) { (ciphertext, tag) }
}
