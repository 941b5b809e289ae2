import VSwitchTesting
import Testing
import VSwitchWire

@Suite struct VirtioNetHeaderTests {
    /// A TSO header as a TAP hands it over for TCP/IPv4 with timestamps: NEEDS_CSUM, TCPV4,
    /// hdr_len 66, gso_size 1448, csum_start 34, csum_offset 16; little endian.
    static let tsoBytes = bytes("01 01 42 00 a8 05 22 00 10 00")
    static let tso = VirtioNetHeader(flags: .needsChecksum, gsoType: .tcpv4, segmentHeaderLength: 66, gsoSize: 1448,
                                     checksumStart: 34, checksumOffset: 16)

    @Test(arguments: [0, 1, 3])
    func loadsAndStoresLittleEndian(misalignment: Int) throws {
        try withBytes(Self.tsoBytes, misalignment: misalignment) { buffer in
            #expect(VirtioNetHeader(loadingFrom: buffer.baseAddress!) == Self.tso)
            let header = try #require(VirtioNetHeader(validating: buffer))
            #expect(header == Self.tso)
            #expect(header.flags == .needsChecksum && header.gsoType == .tcpv4 && !header.isPlain)
        }
        var storage = [UInt8](repeating: 0xee, count: 10 + misalignment + 1)
        storage.withUnsafeMutableBytes { Self.tso.store(to: $0.baseAddress! + misalignment) }
        #expect(Array(storage[misalignment..<misalignment + 10]) == Self.tsoBytes)
        #expect(storage[misalignment + 10] == 0xee && storage[..<misalignment].allSatisfy { $0 == 0xee })
    }

    @Test func emitsOnlyIntoRoom() {
        let output = emitted(count: 11) { Self.tso.emit(into: $0) }
        #expect(output.result == 10 && Array(output.bytes[..<10]) == Self.tsoBytes && output.bytes[10] == 0xee)
        for count in 0..<10 {
            let short = emitted(count: count) { Self.tso.emit(into: $0) }
            #expect(short.result == nil && short.bytes.allSatisfy { $0 == 0xee })
            withBytes(Array(Self.tsoBytes[..<count])) { #expect(VirtioNetHeader(validating: $0) == nil) }
        }
        #expect(VirtioNetHeader.headerLength == 10)
    }

    @Test func keepsUnknownValues() {
        withBytes(bytes("fc 83 00 00 00 00 00 00 00 00")) { buffer in
            let header = VirtioNetHeader(validating: buffer)!
            #expect(header.flags.rawValue == 0xfc && !header.flags.contains(.needsChecksum))
            #expect(header.gsoType.hasECN && header.gsoType.withoutECN == .udp)
            #expect(header.description == "vnet flags=0xfc gso=udp+ecn hdr_len=0 gso_size=0 csum_start=0 csum_offset=0")
            #expect(VirtioNetHeader.GSOType(rawValue: 0x07).description == "0x07")
        }
        #expect(Self.tso.description == "vnet flags=0x01 gso=tcpv4 hdr_len=66 gso_size=1448 csum_start=34 csum_offset=16")
        #expect(VirtioNetHeader().isPlain && VirtioNetHeader(flags: .dataValid).isPlain)
        #expect(VirtioNetHeader(gsoType: .ecn).isPlain, "the ECN bit alone is no GSO")
    }

    @Test func shiftsWithTheHeadersInFront() {
        // A VLAN tag pushed, an Ethernet header stripped, then too much stripped.
        #expect(Self.tso.shifted(by: 4) == VirtioNetHeader(flags: .needsChecksum, gsoType: .tcpv4, segmentHeaderLength: 70,
                                                           gsoSize: 1448, checksumStart: 38, checksumOffset: 16))
        #expect(Self.tso.shifted(by: -14)?.checksumStart == 20)
        #expect(Self.tso.shifted(by: -14)?.segmentHeaderLength == 52)
        #expect(Self.tso.shifted(by: 0) == Self.tso)
        #expect(Self.tso.shifted(by: -35) == nil)
        var large = Self.tso
        large.segmentHeaderLength = 65_535
        #expect(large.shifted(by: 1) == nil)
        // Fields that are not in use do not move, so they cannot go negative.
        let plain = VirtioNetHeader(flags: .dataValid)
        #expect(plain.shifted(by: -18) == plain)
        #expect(plain.shifted(by: 18) == plain)
    }

    @Test func completesAChecksumLikeTheKernel() {
        for (ipv6, tcp, vlan) in [(false, true, false), (true, true, true), (false, false, true), (true, false, false)] {
            for count in [0, 1, 2, 3, 1_000, 1_459] {
                let partial = OffloadFrame(ipv6: ipv6, vlan: vlan, tcp: tcp, payload: OffloadFrame.payload(count: count),
                                           checksum: .partial)
                let complete = OffloadFrame(ipv6: ipv6, vlan: vlan, tcp: tcp, payload: OffloadFrame.payload(count: count))
                var frame = partial.bytes
                var header = VirtioNetHeader(flags: [.needsChecksum, .dataValid], segmentHeaderLength: UInt16(partial.headersEnd),
                                             checksumStart: UInt16(partial.transportOffset), checksumOffset: tcp ? 16 : 6)
                let done = frame.withUnsafeMutableBytes { header.completeChecksum(in: $0) }
                #expect(done)
                #expect(frame == complete.bytes, "ipv6 \(ipv6) tcp \(tcp) payload \(count)")
                #expect(OffloadFrame.transportChecksumHolds(frame, networkOffset: partial.networkOffset))
                #expect(header == VirtioNetHeader(flags: .dataValid, segmentHeaderLength: UInt16(partial.headersEnd)))
                // Nothing left to do the second time.
                #expect(frame.withUnsafeMutableBytes { header.completeChecksum(in: $0) })
                #expect(frame == complete.bytes)
            }
        }
    }

    @Test func storesAComputedZeroAsAllOnes() {
        // The sum over [start, end) is 0xffff, so the checksum is 0, which goes out as 0xffff.
        var frame: [UInt8] = [0xaa, 0xbb, 0xff, 0xff, 0x00, 0x00]
        var header = VirtioNetHeader(flags: .needsChecksum, checksumStart: 2, checksumOffset: 2)
        #expect(frame.withUnsafeMutableBytes { header.completeChecksum(in: $0) })
        #expect(frame == [0xaa, 0xbb, 0xff, 0xff, 0xff, 0xff])
    }

    @Test func refusesInvalidChecksumOffsetsAndSuperframes() {
        let partial = OffloadFrame(payload: OffloadFrame.payload(count: 10), checksum: .partial)
        let count = partial.bytes.count
        for (start, offset) in [(count - 1, 0), (count, 0), (count - 2, 1), (0, count - 1), (65_535, 65_535), (count - 16, 16)] {
            var frame = partial.bytes
            var header = VirtioNetHeader(flags: .needsChecksum, checksumStart: UInt16(start), checksumOffset: UInt16(offset))
            let before = header
            #expect(!frame.withUnsafeMutableBytes { header.completeChecksum(in: $0) }, "start \(start) offset \(offset)")
            #expect(frame == partial.bytes && header == before)
        }
        var frame = partial.bytes
        var header = GSOSegmenterTests.tsoHeader(partial)
        #expect(!frame.withUnsafeMutableBytes { header.completeChecksum(in: $0) })
        #expect(frame == partial.bytes)
        // The last position that fits is accepted.
        var last = VirtioNetHeader(flags: .needsChecksum, checksumStart: UInt16(count - 2), checksumOffset: 0)
        #expect(frame.withUnsafeMutableBytes { last.completeChecksum(in: $0) })
    }
}
