import Testing
import VSwitchWire

@Suite struct IPv4HeaderTests {
    static let echo = IPv4Repr(source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2),
                               protocol: .icmp, payloadLength: 16, timeToLive: 64,
                               identification: 0x1c46, dontFragment: true)

    @Test(arguments: [0, 1, 2, 3])
    func parsesICMPEcho(misalignment: Int) throws {
        try withBytes(Fixture.ipv4ICMPEcho, misalignment: misalignment) { buffer in
            let header = try #require(IPv4Header(validating: buffer))
            #expect(header.version == 4)
            #expect(header.headerLength == 20)
            #expect(header.dscp == 0 && header.ecn == 0)
            #expect(header.totalLength == 36)
            #expect(header.identification == 0x1c46)
            #expect(header.flags == 0b010)
            #expect(header.dontFragment && !header.moreFragments)
            #expect(header.fragmentByteOffset == 0)
            #expect(header.timeToLive == 64)
            #expect(header.protocol == .icmp)
            #expect(header.checksum == 0x0a91)
            #expect(header.computeChecksum() == 0x0a91)
            #expect(header.verifyChecksum())
            #expect(header.source == IPv4Address(10, 0, 0, 1))
            #expect(header.destination == IPv4Address(10, 0, 0, 2))
            #expect(header.options.isEmpty)
            #expect(header.payload.count == 16)
            #expect(header.payload.first == 8)                       // ICMP echo request
            #expect(InternetChecksum.compute(header.payload) == 0)  // and its checksum holds
            #expect(IPv4Repr.parse(header) == Self.echo)
            #expect(header.description == "IPv4 src=10.0.0.1 dst=10.0.0.2 proto=ICMP ttl=64 len=36")
        }
    }

    @Test func computesTheWorkedExampleChecksum() throws {
        try withBytes(Fixture.ipv4UDPHeader + [UInt8](repeating: 0, count: 0x73 - 20)) { buffer in
            let header = try #require(IPv4Header(validating: buffer))
            #expect(header.checksum == 0xb861)
            #expect(header.computeChecksum() == 0xb861)
            #expect(header.verifyChecksum())
            #expect(header.protocol == .udp)
        }
    }

    @Test func excludesLinkLayerPadding() throws {
        try withBytes(Fixture.ipv4ICMPEcho + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) { buffer in
            let header = try #require(IPv4Header(validating: buffer))
            #expect(header.payload.count == 16)
        }
    }

    @Test func detectsACorruptHeader() throws {
        var corrupt = Fixture.ipv4ICMPEcho
        corrupt[8] = 63  // TTL decremented without fixing the checksum
        try withBytes(corrupt) { buffer in
            let header = try #require(IPv4Header(validating: buffer))
            #expect(!header.verifyChecksum())
            #expect(header.computeChecksum() != header.checksum)
            #expect(IPv4Repr.parse(header) == nil)
            #expect(IPv4Repr.parse(header, verifyingChecksum: false)?.timeToLive == 63)
        }
    }

    @Test func exposesOptions() throws {
        // IHL 6: four option bytes (NOP, NOP, NOP, EOL), then the same ICMP payload.
        var packet = Array(Fixture.ipv4ICMPEcho[..<20]) + [0x01, 0x01, 0x01, 0x00] + Array(Fixture.ipv4ICMPEcho[20...])
        packet[0] = 0x46
        packet[3] = 40
        let checksum = try withBytes(packet) { try #require(IPv4Header(validating: $0)).computeChecksum() }
        packet[10] = UInt8(checksum >> 8)
        packet[11] = UInt8(checksum & 0xff)
        try withBytes(packet, misalignment: 1) { buffer in
            let header = try #require(IPv4Header(validating: buffer))
            #expect(header.headerLength == 24)
            #expect(Array(header.options) == [0x01, 0x01, 0x01, 0x00])
            #expect(header.payload.count == 16)
            #expect(header.verifyChecksum())
            // Options are dropped by the Repr; the payload length still excludes them.
            #expect(IPv4Repr.parse(header) == Self.echo)
        }
    }

    @Test(arguments: [
        (0, 0x55 as UInt8),   // version 5
        (0, 0x65),            // version 6
        (0, 0x44),            // IHL 4: shorter than the fixed header
        (0, 0x4f),            // IHL 15: 60 bytes, more than the 36 present
        (3, 19),              // total length shorter than the header
        (3, 37),              // total length longer than the buffer
        (2, 0x01),            // total length 292
    ])
    func rejectsInconsistentLengthsAndVersions(offset: Int, value: UInt8) {
        var packet = Fixture.ipv4ICMPEcho
        packet[offset] = value
        withBytes(packet) { buffer in
            #expect(IPv4Header(validating: buffer) == nil)
        }
    }

    @Test func rejectsEveryTruncation() {
        let packet = Fixture.ipv4ICMPEcho
        withBytes(packet) { buffer in
            for length in 0..<packet.count {
                #expect(IPv4Header(validating: UnsafeRawBufferPointer(rebasing: buffer[..<length])) == nil, "length \(length)")
            }
            #expect(IPv4Header(validating: buffer) != nil)
        }
    }

    @Test func emitsTheFixtureHeader() {
        let output = emitted(count: 21) { Self.echo.emit(into: $0) }
        #expect(output.result == 20)
        #expect(Array(output.bytes[..<20]) == Array(Fixture.ipv4ICMPEcho[..<20]))
        #expect(output.bytes[20] == 0xee)
    }

    @Test func refusesWhatDoesNotFit() {
        for count in 0..<20 {
            let output = emitted(count: count) { Self.echo.emit(into: $0) }
            #expect(output.result == nil && output.bytes.allSatisfy { $0 == 0xee })
        }
        var invalid: [IPv4Repr] = []
        for change in 0..<7 {
            var repr = Self.echo
            switch change {
            case 0: repr.dscp = 64
            case 1: repr.ecn = 4
            case 2: repr.payloadLength = 65_516
            case 3: repr.payloadLength = -1
            case 4: repr.fragmentByteOffset = 7
            case 5: repr.fragmentByteOffset = 65_536
            default: repr.fragmentByteOffset = -8
            }
            invalid.append(repr)
        }
        for repr in invalid {
            let output = emitted(count: 20) { repr.emit(into: $0) }
            #expect(output.result == nil && output.bytes.allSatisfy { $0 == 0xee }, "\(repr)")
        }
        var largest = Self.echo
        largest.payloadLength = 65_515
        largest.fragmentByteOffset = 65_528
        #expect(emitted(count: 20) { largest.emit(into: $0) }.result == 20)
    }

    @Test func reprRoundTrips() throws {
        var generator = SeededGenerator(seed: 6)
        for _ in 0..<300 {
            let repr = IPv4Repr(source: IPv4Address(rawValue: .random(in: 0...UInt32.max, using: &generator)),
                                destination: IPv4Address(rawValue: .random(in: 0...UInt32.max, using: &generator)),
                                protocol: IPProtocol(rawValue: .random(in: 0...255, using: &generator)),
                                payloadLength: .random(in: 0...1_500, using: &generator),
                                timeToLive: .random(in: 0...255, using: &generator),
                                dscp: .random(in: 0...63, using: &generator),
                                ecn: .random(in: 0...3, using: &generator),
                                identification: .random(in: 0...UInt16.max, using: &generator),
                                dontFragment: .random(using: &generator),
                                moreFragments: .random(using: &generator),
                                fragmentByteOffset: 8 * .random(in: 0...0x1fff, using: &generator))
            let output = emitted(count: 20 + repr.payloadLength) { repr.emit(into: $0) }
            #expect(output.result == 20)
            try withBytes(output.bytes, misalignment: 2) { buffer in
                let header = try #require(IPv4Header(validating: buffer))
                #expect(header.verifyChecksum())
                #expect(IPv4Repr.parse(header) == repr)
            }
        }
    }
}
