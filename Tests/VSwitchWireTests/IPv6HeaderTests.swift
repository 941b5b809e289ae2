import Testing
import VSwitchWire

@Suite struct IPv6HeaderTests {
    static let echo = IPv6Repr(source: IPv6Address("2001:db8::1")!, destination: IPv6Address("2001:db8::2")!,
                               nextHeader: .icmpv6, payloadLength: 8, hopLimit: 64, trafficClass: 0, flowLabel: 0x12345)

    @Test(arguments: [0, 1, 4, 7])
    func parsesICMPv6Echo(misalignment: Int) throws {
        try withBytes(Fixture.ipv6ICMPv6Echo, misalignment: misalignment) { buffer in
            let header = try #require(IPv6Header(validating: buffer))
            #expect(header.version == 6)
            #expect(header.trafficClass == 0)
            #expect(header.flowLabel == 0x12345)
            #expect(header.payloadLength == 8)
            #expect(header.nextHeader == .icmpv6)
            #expect(header.hopLimit == 64)
            #expect(header.source == IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
            #expect(header.destination == IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2))
            #expect(Array(header.payload) == [0x80, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01])
            #expect(IPv6Repr.parse(header) == Self.echo)
            #expect(header.description == "IPv6 src=2001:db8::1 dst=2001:db8::2 next=ICMPv6 hops=64 len=8")
        }
    }

    @Test func splitsTrafficClassAndFlowLabel() throws {
        var packet = Fixture.ipv6ICMPv6Echo
        packet[0] = 0x6b  // traffic class 0xb8 (DSCP 46, EF), flow label 0xfffff
        packet[1] = 0x8f
        packet[2] = 0xff
        packet[3] = 0xff
        try withBytes(packet) { buffer in
            let header = try #require(IPv6Header(validating: buffer))
            #expect(header.trafficClass == 0xb8)
            #expect(header.flowLabel == 0xfffff)
        }
    }

    @Test func excludesLinkLayerPadding() throws {
        try withBytes(Fixture.ipv6ICMPv6Echo + [0, 0, 0, 0]) { buffer in
            let header = try #require(IPv6Header(validating: buffer))
            #expect(header.payload.count == 8)
        }
    }

    @Test(arguments: [(0, 0x40 as UInt8), (0, 0x70), (0, 0x00), (5, 0x09), (4, 0x01)])
    func rejectsWrongVersionOrLength(offset: Int, value: UInt8) {
        var packet = Fixture.ipv6ICMPv6Echo
        packet[offset] = value
        withBytes(packet) { buffer in
            #expect(IPv6Header(validating: buffer) == nil)
        }
    }

    @Test func rejectsEveryTruncation() {
        let packet = Fixture.ipv6ICMPv6Echo
        withBytes(packet) { buffer in
            for length in 0..<packet.count {
                #expect(IPv6Header(validating: UnsafeRawBufferPointer(rebasing: buffer[..<length])) == nil, "length \(length)")
            }
            #expect(IPv6Header(validating: buffer) != nil)
        }
    }

    @Test func emitsTheFixtureHeader() {
        let output = emitted(count: 41) { Self.echo.emit(into: $0) }
        #expect(output.result == 40)
        #expect(Array(output.bytes[..<40]) == Array(Fixture.ipv6ICMPv6Echo[..<40]))
        #expect(output.bytes[40] == 0xee)
    }

    @Test func refusesWhatDoesNotFit() {
        for count in 0..<40 {
            let output = emitted(count: count) { Self.echo.emit(into: $0) }
            #expect(output.result == nil && output.bytes.allSatisfy { $0 == 0xee })
        }
        var badFlow = Self.echo
        badFlow.flowLabel = 0x100000
        var tooLong = Self.echo
        tooLong.payloadLength = 65_536
        var negative = Self.echo
        negative.payloadLength = -1
        for repr in [badFlow, tooLong, negative] {
            let output = emitted(count: 40) { repr.emit(into: $0) }
            #expect(output.result == nil && output.bytes.allSatisfy { $0 == 0xee }, "\(repr)")
        }
    }

    @Test func reprRoundTrips() throws {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<300 {
            let repr = IPv6Repr(source: IPv6Address(high: .random(in: 0...UInt64.max, using: &generator), low: .random(in: 0...UInt64.max, using: &generator)),
                                destination: IPv6Address(high: .random(in: 0...UInt64.max, using: &generator), low: .random(in: 0...UInt64.max, using: &generator)),
                                nextHeader: IPProtocol(rawValue: .random(in: 0...255, using: &generator)),
                                payloadLength: .random(in: 0...1_500, using: &generator),
                                hopLimit: .random(in: 0...255, using: &generator),
                                trafficClass: .random(in: 0...255, using: &generator),
                                flowLabel: .random(in: 0...0xfffff, using: &generator))
            let output = emitted(count: 40 + repr.payloadLength) { repr.emit(into: $0) }
            #expect(output.result == 40)
            try withBytes(output.bytes, misalignment: 5) { buffer in
                let header = try #require(IPv6Header(validating: buffer))
                #expect(IPv6Repr.parse(header) == repr)
            }
        }
    }
}
