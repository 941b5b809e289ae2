import Testing
import VSwitchWire

@Suite struct InternetChecksumTests {
    /// The straightforward RFC 1071 definition, to check the word-at-a-time implementation against.
    static func reference(_ data: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index < data.count {
            let high = UInt32(data[index]) << 8
            let low = index + 1 < data.count ? UInt32(data[index + 1]) : 0
            sum += high | low
            index += 2
        }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    @Test func matchesTheRFC1071Example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement).
        withBytes([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]) { buffer in
            #expect(InternetChecksum.compute(buffer) == ~UInt16(0xddf2))
        }
    }

    @Test func emptyInputSumsToAllOnes() {
        #expect(InternetChecksum().value == 0xffff)
        #expect(InternetChecksum.compute(UnsafeRawBufferPointer(start: nil, count: 0)) == 0xffff)
    }

    @Test func matchesTheReferenceOnRandomData() {
        var generator = SeededGenerator(seed: 8)
        for _ in 0..<1_000 {
            let data = [UInt8].random(count: .random(in: 0...200, using: &generator), using: &generator)
            let misalignment = Int.random(in: 0...7, using: &generator)
            withBytes(data, misalignment: misalignment) { buffer in
                #expect(InternetChecksum.compute(buffer) == Self.reference(data))
            }
        }
    }

    @Test func piecesOfAnyLengthSumLikeTheWhole() {
        var generator = SeededGenerator(seed: 9)
        for _ in 0..<500 {
            let data = [UInt8].random(count: .random(in: 0...100, using: &generator), using: &generator)
            var checksum = InternetChecksum()
            withBytes(data) { buffer in
                var offset = 0
                while offset < data.count {
                    let end = min(data.count, offset + .random(in: 0...9, using: &generator))
                    checksum.add(UnsafeRawBufferPointer(rebasing: buffer[offset..<end]))
                    offset = end
                }
            }
            #expect(checksum.value == Self.reference(data))
        }
    }

    @Test func wordsSumLikeTheirBytes() {
        var checksum = InternetChecksum()
        withBytes([0xab]) { checksum.add($0) }   // odd piece first: the word must straddle it
        checksum.add(UInt16(0xcdef))
        withBytes([0x12, 0x34]) { checksum.add($0) }
        #expect(checksum.value == Self.reference([0xab, 0xcd, 0xef, 0x12, 0x34]))
    }

    @Test func wordsAndPiecesInAnyOrderSumLikeTheirBytes() {
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<500 {
            var checksum = InternetChecksum()
            var all: [UInt8] = []
            for _ in 0..<Int.random(in: 0...8, using: &generator) {
                if Bool.random(using: &generator) {
                    let word = UInt16.random(in: 0...UInt16.max, using: &generator)
                    checksum.add(word)
                    all += [UInt8(word >> 8), UInt8(truncatingIfNeeded: word)]
                } else {
                    let piece = [UInt8].random(count: .random(in: 0...5, using: &generator), using: &generator)
                    withBytes(piece) { checksum.add($0) }
                    all += piece
                }
            }
            #expect(checksum.value == Self.reference(all))
        }
    }

    @Test func dataCarryingItsChecksumSumsToZero() {
        withBytes(Fixture.ipv4ICMPEcho) { buffer in
            #expect(InternetChecksum.compute(UnsafeRawBufferPointer(rebasing: buffer[..<20])) == 0)
            #expect(InternetChecksum.compute(UnsafeRawBufferPointer(rebasing: buffer[20...])) == 0)
        }
    }
}
