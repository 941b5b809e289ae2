import Testing
import VSwitchWire

@Suite struct ARPPacketTests {
    static let request = ARPRepr(operation: .request,
                                 senderHardwareAddress: MACAddress("52:54:00:12:34:56")!,
                                 senderProtocolAddress: IPv4Address("192.168.1.10")!,
                                 targetHardwareAddress: .zero,
                                 targetProtocolAddress: IPv4Address("192.168.1.1")!)
    static let reply = ARPRepr(operation: .reply,
                               senderHardwareAddress: MACAddress("02:00:5e:00:00:01")!,
                               senderProtocolAddress: IPv4Address("192.168.1.1")!,
                               targetHardwareAddress: MACAddress("52:54:00:12:34:56")!,
                               targetProtocolAddress: IPv4Address("192.168.1.10")!)

    @Test(arguments: [0, 1, 2])
    func parsesRequestInsideItsFrame(misalignment: Int) throws {
        try withBytes(Fixture.arpRequestFrame, misalignment: misalignment) { buffer in
            let frame = try #require(EthernetFrame(validating: buffer))
            let packet = try #require(ARPPacket(validating: frame.payload))
            #expect(packet.operation == .request)
            #expect(packet.senderHardwareAddress == frame.source)
            #expect(packet.senderProtocolAddress == IPv4Address(192, 168, 1, 10))
            #expect(packet.targetHardwareAddress.isZero)
            #expect(packet.targetProtocolAddress == IPv4Address(192, 168, 1, 1))
            #expect(ARPRepr.parse(packet) == Self.request)
            #expect(packet.description == "ARP request who-has 192.168.1.1 tell 192.168.1.10 (52:54:00:12:34:56)")
        }
    }

    @Test func parsesReply() throws {
        try withBytes(Fixture.arpReply) { buffer in
            let packet = try #require(ARPPacket(validating: buffer))
            #expect(ARPRepr.parse(packet) == Self.reply)
            #expect(packet.description == "ARP reply 192.168.1.1 is-at 02:00:5e:00:00:01 to 192.168.1.10 (52:54:00:12:34:56)")
        }
    }

    @Test func keepsUnknownOperations() throws {
        var rarp = Fixture.arpReply
        rarp[7] = 3
        try withBytes(rarp) { buffer in
            let packet = try #require(ARPPacket(validating: buffer))
            #expect(packet.operation.rawValue == 3)
            #expect(packet.operation.description == "0x0003")
            #expect(packet.description.hasPrefix("ARP op=0x0003 "))
        }
    }

    @Test func rejectsEveryTruncation() {
        let packet = Fixture.arpReply
        withBytes(packet) { buffer in
            for length in 0...packet.count {
                let parsed = ARPPacket(validating: UnsafeRawBufferPointer(rebasing: buffer[..<length]))
                #expect((parsed == nil) == (length < ARPPacket.length), "length \(length)")
            }
        }
    }

    /// Non-Ethernet hardware, non-IPv4 protocol, or other address lengths put the addresses elsewhere.
    @Test(arguments: [(1, 0x06 as UInt8), (0, 0x01), (3, 0x06), (2, 0x86), (4, 0x08), (5, 0x10)])
    func rejectsOtherAddressFamilies(offset: Int, value: UInt8) {
        var packet = Fixture.arpReply
        packet[offset] = value
        withBytes(packet) { buffer in
            #expect(ARPPacket(validating: buffer) == nil)
        }
    }

    @Test func emitsTheFixtureReply() {
        let output = emitted(count: 29) { Self.reply.emit(into: $0) }
        #expect(output.result == 28)
        #expect(Array(output.bytes[..<28]) == Fixture.arpReply)
        #expect(output.bytes[28] == 0xee)
    }

    @Test func refusesABufferTooSmall() {
        for count in 0..<28 {
            let output = emitted(count: count) { Self.request.emit(into: $0) }
            #expect(output.result == nil)
            #expect(output.bytes.allSatisfy { $0 == 0xee })
        }
    }

    @Test func reprRoundTrips() throws {
        var generator = SeededGenerator(seed: 3)
        for _ in 0..<500 {
            let repr = ARPRepr(operation: ARPOperation(rawValue: .random(in: 0...UInt16.max, using: &generator)),
                               senderHardwareAddress: MACAddress(rawValue: .random(in: 0...UInt64.max, using: &generator)),
                               senderProtocolAddress: IPv4Address(rawValue: .random(in: 0...UInt32.max, using: &generator)),
                               targetHardwareAddress: MACAddress(rawValue: .random(in: 0...UInt64.max, using: &generator)),
                               targetProtocolAddress: IPv4Address(rawValue: .random(in: 0...UInt32.max, using: &generator)))
            let output = emitted(count: 28) { repr.emit(into: $0) }
            try withBytes(output.bytes, misalignment: 3) { buffer in
                let packet = try #require(ARPPacket(validating: buffer))
                #expect(ARPRepr.parse(packet) == repr)
            }
        }
    }
}
