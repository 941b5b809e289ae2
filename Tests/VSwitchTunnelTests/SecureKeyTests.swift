import Testing
@testable import VSwitchTunnel

@Suite struct SecureKeyTests {
    // RFC 4648 section 10 test vectors.
    @Test func base64MatchesRFC4648() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(Array(encoded.utf8)) == Array(plain.utf8))
        }
        #expect(Base64.decode(Array("Zm9vYg".utf8)) == Array("foob".utf8), "padding may be left out")
        for bad in ["Zm9v!", "Zm9vY", "Zg===", "Z===", "Zm=v", "Zg=", "Zm 9v"] {
            #expect(Base64.decode(Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test func textRoundTripAndWhitespace() {
        let key = SecureKey.generate()
        #expect(key.base64.utf8.count == 44 && key.base64.hasSuffix("="))
        #expect(SecureKey(base64: key.base64) == key)
        #expect(SecureKey(base64: "  \t" + key.base64 + "\r\n\n") == key)
        #expect(SecureKey(base64: String(key.base64.dropLast())) == key)
    }

    @Test func refusesWrongLengthsAndJunk() {
        #expect(SecureKey(bytes: [UInt8](repeating: 1, count: 31)) == nil)
        #expect(SecureKey(bytes: [UInt8](repeating: 1, count: 33)) == nil)
        #expect(SecureKey(base64: Base64.encode([UInt8](repeating: 1, count: 31))) == nil)
        #expect(SecureKey(base64: Base64.encode([UInt8](repeating: 1, count: 33))) == nil)
        #expect(SecureKey(base64: "") == nil)
        #expect(SecureKey(base64: "not a key at all, not even close to one!!!!") == nil)
    }

    @Test func keyIDIsDerivedFromTheKey() {
        // SHA-256("vswitch secure key id v1" ‖ 32 zero bytes), first byte (computed with sha256sum).
        let zero = SecureKey(bytes: [UInt8](repeating: 0, count: 32))!
        #expect(zero.id == SecureKey(bytes: [UInt8](repeating: 0, count: 32))!.id)
        #expect(zero.id == 0xf6)
        var ids = Set<UInt8>()
        for _ in 0..<200 { ids.insert(SecureKey.generate().id) }
        #expect(ids.count > 100, "ids spread")
    }

    @Test func generatedKeysDifferAndNeverPrint() {
        let first = SecureKey.generate(), second = SecureKey.generate()
        #expect(first != second)
        #expect(!first.description.contains(first.base64))
        #expect(first.description.hasPrefix("key id 0x") && first.description.count == 11)
    }

    /// A key file line is a private key as it is (genkey and pubkey rely on it), and a private
    /// key never prints.
    @Test func privateKeyFromAKeyFileLine() {
        let line = SecureKey.generate()
        let privateKey = SecurePrivateKey(line)
        #expect(privateKey.base64 == line.base64)
        #expect(SecurePublicKey(base64: privateKey.publicKey.base64) == privateKey.publicKey)
        #expect(privateKey.publicKey.base64 != line.base64)
        #expect(!privateKey.description.contains(line.base64))
        #expect(privateKey.description.contains(privateKey.publicKey.base64))
    }
}
