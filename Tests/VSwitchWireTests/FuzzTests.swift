import Testing
import VSwitchWire

/// Hostile input: every view is handed random and mutated bytes and every accessor is read. The
/// tests pass if nothing traps and every sub-buffer a view hands out lies inside the buffer it was
/// given; whatever parses must also survive a parse/emit/parse round trip.
@Suite struct FuzzTests {
    /// True if `inner` lies within `outer` (an empty `inner` anywhere at or inside `outer`'s bounds).
    static func contains(_ outer: UnsafeRawBufferPointer, _ inner: UnsafeRawBufferPointer) -> Bool {
        guard let innerStart = inner.baseAddress else { return inner.isEmpty }
        guard let outerStart = outer.baseAddress else { return false }
        return innerStart >= outerStart && innerStart + inner.count <= outerStart + outer.count
    }

    /// Reads everything every view offers over `buffer`, checking sub-buffers stay inside it.
    /// Returns how many views accepted the buffer, so the loops can check they exercised something.
    @discardableResult
    static func exercise(_ buffer: UnsafeRawBufferPointer) -> Int {
        var accepted = 0
        var scratch = [UInt8](repeating: 0, count: 64)

        if let frame = EthernetFrame(validating: buffer) {
            accepted += 1
            _ = frame.description
            #expect(contains(buffer, frame.payload))
            let repr = EthernetRepr.parse(frame)
            #expect(repr.destination == frame.destination && repr.etherType == frame.etherType)
            if frame.etherType.isVLANTag {
                #expect(frame.vlanTag != nil, "a validated tagged frame must have its tag")
            }
            if let tag = frame.vlanTag {
                #expect(contains(frame.payload, tag.payload))
            }
        }

        if let tag = VLANTag(validating: buffer) {
            accepted += 1
            _ = tag.description
            #expect(tag.priorityCodePoint <= 7 && tag.vlanID.rawValue <= 4095)
            #expect(contains(buffer, tag.payload))
            let repr = VLANTagRepr.parse(tag)
            scratch.withUnsafeMutableBytes { output in
                #expect(repr.emit(into: output) == 4)
                #expect(VLANTag(validating: UnsafeRawBufferPointer(output)).map(VLANTagRepr.parse) == repr)
            }
        }

        if let packet = ARPPacket(validating: buffer) {
            accepted += 1
            _ = packet.description
            let repr = ARPRepr.parse(packet)
            scratch.withUnsafeMutableBytes { output in
                #expect(repr.emit(into: output) == 28)
                #expect(ARPPacket(validating: UnsafeRawBufferPointer(output)).map(ARPRepr.parse) == repr)
                #expect(output.prefix(28).elementsEqual(buffer.prefix(28)), "ARP emit must reproduce the bytes")
            }
        }

        if let header = IPv4Header(validating: buffer) {
            accepted += 1
            _ = header.description
            #expect(header.version == 4)
            #expect(header.headerLength >= 20 && header.headerLength <= header.totalLength)
            #expect(header.totalLength <= buffer.count)
            _ = (header.dscp, header.ecn, header.identification, header.flags, header.fragmentByteOffset)
            #expect(contains(buffer, header.options) && contains(buffer, header.payload))
            #expect(header.verifyChecksum() == (header.computeChecksum() == header.checksum))
            if let repr = IPv4Repr.parse(header, verifyingChecksum: false) {
                var output = [UInt8](repeating: 0, count: 20 + repr.payloadLength)
                output.withUnsafeMutableBytes { output in
                    #expect(repr.emit(into: output) == 20)
                    #expect(IPv4Header(validating: UnsafeRawBufferPointer(output)).flatMap { IPv4Repr.parse($0) } == repr)
                }
            }
        }

        if let header = IPv6Header(validating: buffer) {
            accepted += 1
            _ = header.description
            #expect(header.version == 6 && header.flowLabel <= 0xfffff)
            #expect(contains(buffer, header.payload) && header.payload.count == header.payloadLength)
            let repr = IPv6Repr.parse(header)
            var output = [UInt8](repeating: 0, count: 40 + repr.payloadLength)
            output.withUnsafeMutableBytes { output in
                #expect(repr.emit(into: output) == 40)
                #expect(IPv6Header(validating: UnsafeRawBufferPointer(output)).map(IPv6Repr.parse) == repr)
            }
        }
        return accepted
    }

    @Test func randomBuffers() {
        var generator = SeededGenerator(seed: 0x5eed)
        var accepted = 0
        for iteration in 0..<10_000 {
            var data = [UInt8].random(count: .random(in: 0...100, using: &generator), using: &generator)
            // Steer a share of the inputs past the first checks, or only Ethernet would ever parse.
            if !data.isEmpty {
                switch iteration % 4 {
                case 0: data[0] = 0x40 | (data[0] & 0x0f)       // IPv4, random IHL
                case 1: data[0] = 0x60 | (data[0] & 0x0f)       // IPv6
                case 2 where data.count >= 6:                   // Ethernet/IPv4 ARP
                    data.replaceSubrange(0..<6, with: [0x00, 0x01, 0x08, 0x00, 0x06, 0x04])
                default: break
                }
            }
            if data.count >= 4 && iteration % 8 == 0 { data[2] = 0; data[3] = UInt8.random(in: 0...UInt8(min(data.count, 255)), using: &generator) }
            withBytes(data, misalignment: .random(in: 0...7, using: &generator)) { buffer in
                accepted += Self.exercise(buffer)
            }
        }
        #expect(accepted > 10_000, "the fuzz loop should get past validation often")
    }

    @Test func mutatedFixtures() {
        var generator = SeededGenerator(seed: 0xf00d)
        let seeds = [Fixture.arpRequestFrame, Fixture.vlanTaggedIPv4Frame, Fixture.qinqIPv6Frame,
                     Fixture.ipv4ICMPEcho, Fixture.ipv6ICMPv6Echo, Fixture.arpReply]
        for iteration in 0..<6_000 {
            var data = seeds[iteration % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                data[.random(in: 0..<data.count, using: &generator)] = .random(in: 0...255, using: &generator)
            }
            data.removeLast(.random(in: 0...data.count, using: &generator) / 2)
            withBytes(data, misalignment: .random(in: 0...7, using: &generator)) { buffer in
                Self.exercise(buffer)
                // Parse the layers below Ethernet too, as the switch would.
                if let frame = EthernetFrame(validating: buffer) {
                    Self.exercise(frame.payload)
                    if let tag = frame.vlanTag { Self.exercise(tag.payload) }
                }
            }
        }
    }

    @Test func everyEdgeLength() {
        // All-zero and all-ones buffers of every length up to 128: boundaries without randomness.
        for fill in [UInt8(0x00), 0xff, 0x45, 0x60, 0x81] {
            for length in 0...128 {
                withBytes([UInt8](repeating: fill, count: length)) { _ = Self.exercise($0) }
            }
        }
        Self.exercise(UnsafeRawBufferPointer(start: nil, count: 0))
    }
}
