import Testing
import VSwitchCore
import VSwitchPorts
import VSwitchTesting
import VSwitchWire

/// Hostile input, from either side, is counted and never trusted.
@Suite struct NeighbourShimFuzzTests {
    typealias F = Fixture

    /// Every packet from the TUN ends one way: a frame, a drop, or held (which ends in a frame or
    /// a drop later). So each call adds exactly one to frames + drops + held.
    @Test func truncatedPacketsFromTheTUNAreCounted() {
        let driver = ShimDriver()
        let whole4 = ipv4(from: F.peer4, to: F.host4, payloadLength: 180)
        let whole6 = ipv6(from: F.peer6, to: F.host6, [UInt8](repeating: 5, count: 160))
        var frames: UInt64 = 0
        for whole in [whole4, whole6] {
            for length in 0...200 {
                let before = frames + driver.counters.allDrops + UInt64(driver.shim.heldPacketCount)
                if driver.fromTUN(Array(whole.prefix(length))) != nil { frames += 1 }
                #expect(frames + driver.counters.allDrops + UInt64(driver.shim.heldPacketCount) == before + 1, "length \(length)")
                driver.expire(after: F.second)
            }
        }
        #expect(driver.counters.drops(.runt) == 20 + 40, "0 bytes, and under each header's fixed size")
        #expect(driver.counters.drops(.malformed) > 0, "lengths that claim more than was read")
        #expect(frames == 0, "no neighbour is known, so nothing leaves at once")
    }

    @Test func badVersionsAndLengthsFromTheTUNAreMalformed() {
        let driver = ShimDriver()
        var packet = ipv4(from: F.peer4, to: F.host4)
        packet[0] = 0x55  // version 5
        #expect(driver.fromTUN(packet) == nil)
        packet[0] = 0x44  // IHL 4: shorter than the fixed header
        #expect(driver.fromTUN(packet) == nil)
        packet[0] = 0x45
        packet[2] = 0x10  // total length 4096+ beyond the read
        #expect(driver.fromTUN(packet) == nil)
        var packet6 = ipv6(from: F.peer6, to: F.host6, [1, 2])
        packet6[5] = 3  // payload length 3, 2 bytes read
        #expect(driver.fromTUN(packet6) == nil)
        #expect(driver.counters.drops(.malformed) == 4)
        #expect(driver.shim.heldPacketCount == 0)
    }

    @Test func randomPacketsFromTheTUNNeverCrash() {
        var random = SplitMix64(seed: 0x7e57_7017)
        let driver = ShimDriver()
        for round in 0..<4000 {
            let length = Int(random.next() % 201)
            var packet = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            // Half of them look like IP at first glance, to get past the version check.
            if length > 0 && round % 2 == 0 { packet[0] = round % 4 == 0 ? 0x45 : 0x60 }
            let offload: [UInt8]? = round % 3 == 0 ? nil : (0..<10).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            _ = driver.fromTUN(packet, offload: offload)
            if round % 50 == 0 { _ = driver.pending(); driver.expire(after: F.second) }
        }
    }

    /// Frames from the switch cut at every length: the whole frame is delivered or handled, a cut
    /// one addressed to the port is dropped and counted, and nothing traps.
    @Test func truncatedFramesFromTheSwitchAreCounted() {
        let driver = ShimDriver()
        let frames: [[UInt8]] = [
            ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv4, ipv4(from: F.host4, to: F.peer4, payloadLength: 100)),
            ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv6, ipv6(from: F.host6, to: F.peer6, [UInt8](repeating: 1, count: 100))),
            ethernet(to: F.portMAC, from: F.hostMAC, type: .arp,
                     arp(.request, senderMAC: F.hostMAC, senderIP: F.host4, targetIP: F.peer4)),
            solicitationFrame(for: F.peer6, unicast: true),
        ]
        for whole in frames {
            for length in 0...min(200, whole.count) {
                let dropsBefore = driver.counters.txDrops
                let result = driver.fromSwitch(Array(whole.prefix(length))).0
                if length == whole.count {
                    #expect(result != .dropped(.transmitUnsupported))
                } else {
                    #expect(result == .dropped(.transmitUnsupported), "length \(length) of \(whole.count)")
                    #expect(driver.counters.txDrops == dropsBefore + 1)
                }
            }
            _ = driver.pending()
        }
    }

    @Test func randomFramesFromTheSwitchNeverCrash() {
        var random = SplitMix64(seed: 0xf00d)
        let driver = ShimDriver()
        let types: [UInt16] = [0x0800, 0x86dd, 0x0806, 0x8100, 0x88b5]
        for round in 0..<4000 {
            let length = Int(random.next() % 201)
            var frame = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if length >= 14 {
                let destination = round % 3 == 0 ? F.portMAC.octets : (round % 3 == 1 ? [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] : [0x33, 0x33, 0xff, 0, 0, 2])
                frame.replaceSubrange(0..<6, with: destination)
                frame.replaceSubrange(6..<12, with: F.hostMAC.octets)
                let type = types[round % types.count]
                frame[12] = UInt8(type >> 8)
                frame[13] = UInt8(type & 0xff)
                if length > 14 && round % 2 == 0 { frame[14] = type == 0x86dd ? 0x60 : 0x45 }
            }
            let offload: [UInt8]? = round % 4 == 0 ? (0..<10).map { _ in UInt8(truncatingIfNeeded: random.next()) } : nil
            _ = driver.fromSwitch(frame, offload: offload)
            if round % 50 == 0 { _ = driver.pending() }
        }
    }
}
