import VSwitchTesting
import Testing
import VSwitchTunnel

@Suite struct VXLANHeaderTests {
    @Test func parsesHeaderAndInnerFrame() {
        let datagram = bytes("08 00 00 00 00 00 2a 00") + hostB + hostA + [0x08, 0x06]
        datagram.withUnsafeBytes { buffer in
            guard let header = VXLANHeader(validating: buffer) else { Issue.record("valid header refused"); return }
            #expect(header.flags == 0x08)
            #expect(header.vni == 42)
            #expect(Array(header.payload) == hostB + hostA + [0x08, 0x06])
            #expect(VXLANRepr.parse(header) == VXLANRepr(vni: 42))
            #expect(header.description == "VXLAN vni=42")
        }
    }

    @Test func largestVNI() {
        bytes("08 00 00 00 ff ff ff 00").withUnsafeBytes { #expect(VXLANHeader(validating: $0)?.vni == 0xff_ffff) }
    }

    @Test func refusesMissingIFlag() {
        for flags: UInt8 in [0x00, 0x01, 0x80, 0xf7] {
            ([flags] + bytes("00 00 00 00 00 2a 00")).withUnsafeBytes { #expect(VXLANHeader(validating: $0) == nil) }
        }
    }

    @Test func ignoresReservedBitsAndOtherFlags() {
        // GBP-style extra flags and a group policy id in the first reserved field, junk in the last.
        bytes("88 00 12 34 12 34 56 ff").withUnsafeBytes { buffer in
            #expect(VXLANHeader(validating: buffer)?.vni == 0x12_3456)
            #expect(VXLANHeader(validating: buffer)?.payload.count == 0)
        }
    }

    @Test func refusesEveryLengthShorterThanTheHeader() {
        let header = bytes("08 00 00 00 00 00 2a 00")
        for length in 0..<8 {
            Array(header[..<length]).withUnsafeBytes { #expect(VXLANHeader(validating: $0) == nil) }
        }
    }

    @Test func emitsHeader() {
        var buffer = [UInt8](repeating: 0xee, count: 10)
        let written = buffer.withUnsafeMutableBytes { VXLANRepr(vni: 0xab_cdef).emit(into: $0) }
        #expect(written == 8)
        #expect(buffer == bytes("08 00 00 00 ab cd ef 00 ee ee"))
        buffer.withUnsafeBytes { #expect(VXLANHeader(validating: $0)?.vni == 0xab_cdef) }
    }

    @Test func refusesToEmitIntoShortBufferOrOversizedVNI() {
        var short = [UInt8](repeating: 0xee, count: 7)
        #expect(short.withUnsafeMutableBytes { VXLANRepr(vni: 1).emit(into: $0) } == nil)
        #expect(short == [UInt8](repeating: 0xee, count: 7))
        var buffer = [UInt8](repeating: 0xee, count: 8)
        #expect(buffer.withUnsafeMutableBytes { VXLANRepr(vni: 0x100_0000).emit(into: $0) } == nil)
        #expect(buffer == [UInt8](repeating: 0xee, count: 8))
    }

    @Test func randomBytesNeverTrap() {
        var generator = SeededGenerator(seed: 7348)
        for length in 0...64 {
            for _ in 0..<20 {
                let data = [UInt8].random(count: length, using: &generator)
                data.withUnsafeBytes { buffer in
                    guard let header = VXLANHeader(validating: buffer) else {
                        #expect(length < 8 || data[0] & 0x08 == 0)
                        return
                    }
                    #expect(header.vni <= 0xff_ffff && header.payload.count == length - 8)
                }
            }
        }
    }
}
