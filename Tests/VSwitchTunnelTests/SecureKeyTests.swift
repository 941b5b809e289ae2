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

    @Test func ringDropsAPreviousKeyEqualToTheCurrent() {
        let key = SecureKey.generate()
        #expect(SecureKeyRing(current: key, previous: key).previous == nil)
        #expect(SecureKeyRing(current: key).keys == [key])
        let next = SecureKey.generate()
        let rotated = SecureKeyRing(current: key).rotated(to: next)
        #expect(rotated.keys == [next, key])
        #expect(rotated.rotated(to: key).keys == [key, next])
    }
}
