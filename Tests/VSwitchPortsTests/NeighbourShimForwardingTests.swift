import Testing
import VSwitchCore
import VSwitchPorts
import VSwitchWire

/// Frames from the switch lose their Ethernet header into the TUN; packets from the TUN gain one.
@Suite struct NeighbourShimForwardingTests {
    typealias F = Fixture

    @Test func ipv4FrameToThePortBecomesAPacketWithAZeroHeader() {
        let driver = ShimDriver()
        let packet = ipv4(from: F.host4, to: F.peer4)
        let (result, written) = driver.fromSwitch(ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv4, packet))
        #expect(result == .packet(length: packet.count))
        #expect(written == [UInt8](repeating: 0, count: 10) + packet)
        #expect(driver.shim.neighbour(F.host4, now: driver.now) == F.hostMAC, "the sender is learned")
    }

    @Test func ethernetPaddingStaysOutOfTheTUN() {
        let driver = ShimDriver()
        let packet = ipv4(from: F.host4, to: F.peer4, payloadLength: 8)  // 28 bytes: padded to 46
        let frame = ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv4, packet + [UInt8](repeating: 0, count: 18))
        #expect(driver.fromSwitch(frame).written == [UInt8](repeating: 0, count: 10) + packet)
    }

    @Test func offloadHeaderIsRebasedOnTheIPHeader() {
        let driver = ShimDriver()
        let packet = ipv4(from: F.host4, to: F.peer4, protocol: .tcp, payloadLength: 3000)
        let (result, written) = driver.fromSwitch(ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv4, packet),
                                                  offload: vnet(tapTSOHeader))
        #expect(result == .packet(length: packet.count))
        #expect(written.map { Array($0[0..<10]) } == vnet(tunTSOHeader), "csum_start and hdr_len 14 bytes earlier")
        #expect(written.map { Array($0[10...]) } == packet)
    }

    @Test func offloadHeaderThatCannotBeRebasedIsDropped() {
        let driver = ShimDriver()
        let bad = VirtioNetHeader(flags: .needsChecksum, checksumStart: 10, checksumOffset: 16)  // inside the Ethernet header
        let frame = ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv4, ipv4(from: F.host4, to: F.peer4))
        #expect(driver.fromSwitch(frame, offload: vnet(bad)).0 == .dropped(.transmitUnsupported))
    }

    @Test func ipv6FrameToThePortBecomesAPacket() {
        let driver = ShimDriver()
        let packet = ipv6(from: F.host6, to: F.peer6, [1, 2, 3, 4, 5, 6, 7, 8])
        let (result, written) = driver.fromSwitch(ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv6, packet))
        #expect(result == .packet(length: 48))
        #expect(written == [UInt8](repeating: 0, count: 10) + packet)
        #expect(driver.shim.neighbour(F.host6, now: driver.now) == F.hostMAC)
    }

    @Test func broadcastAndMulticastIPReachTheTUN() {
        let driver = ShimDriver()
        let broadcast4 = ipv4(from: F.host4, to: .broadcast)
        #expect(driver.fromSwitch(ethernet(to: .broadcast, from: F.hostMAC, type: .ipv4, broadcast4)).0 == .packet(length: broadcast4.count))
        let directed = ipv4(from: F.host4, to: IPv4Address(198, 18, 5, 255))
        #expect(driver.fromSwitch(ethernet(to: .broadcast, from: F.hostMAC, type: .ipv4, directed)).0 == .packet(length: directed.count))
        let multicast4 = ipv4(from: F.host4, to: IPv4Address(224, 0, 0, 251))
        #expect(driver.fromSwitch(ethernet(to: MACAddress(0x01, 0, 0x5e, 0, 0, 0xfb), from: F.hostMAC, type: .ipv4, multicast4)).0
            == .packet(length: multicast4.count))
        let allNodes = ipv6(from: F.host6, to: IPv6Address("ff02::1")!, [0, 0, 0, 0])
        #expect(driver.fromSwitch(ethernet(to: MACAddress(0x33, 0x33, 0, 0, 0, 1), from: F.hostMAC, type: .ipv6, allNodes)).0
            == .packet(length: allNodes.count))
    }

    @Test func framesForOthersAreIgnoredAndNotCounted() {
        let driver = ShimDriver()
        let unicastElsewhere = ethernet(to: F.otherMAC, from: F.hostMAC, type: .ipv4, ipv4(from: F.host4, to: F.peer4))
        #expect(driver.fromSwitch(unicastElsewhere).0 == .ignored)
        let unicastIPInBroadcast = ethernet(to: .broadcast, from: F.hostMAC, type: .ipv4, ipv4(from: F.host4, to: F.peer4))
        #expect(driver.fromSwitch(unicastIPInBroadcast).0 == .ignored)
        let experimental = ethernet(to: .broadcast, from: F.hostMAC, type: EtherType(rawValue: 0x88b5), [UInt8](repeating: 7, count: 46))
        #expect(driver.fromSwitch(experimental).0 == .ignored)
        #expect(driver.counters == PortCounters())
        #expect(driver.shim.statistics.framesIgnored == 3)
        #expect(driver.shim.neighbourEntries(now: driver.now).isEmpty)
    }

    @Test func nonIPFramesToThePortAreDroppedAndCounted() {
        let driver = ShimDriver()
        let experimental = ethernet(to: F.portMAC, from: F.hostMAC, type: EtherType(rawValue: 0x88b5), [UInt8](repeating: 7, count: 46))
        #expect(driver.fromSwitch(experimental).0 == .dropped(.transmitUnsupported))
        let tagged = ethernet(to: F.portMAC, from: F.hostMAC, type: .vlan, [0, 5, 0x08, 0x00] + ipv4(from: F.host4, to: F.peer4))
        #expect(driver.fromSwitch(tagged).0 == .dropped(.transmitUnsupported))
        #expect(driver.counters.drops(.transmitUnsupported) == 2)
        #expect(driver.counters.txDrops == 2 && driver.counters.rxDrops == 0, "a transmit-side reason")
    }

    @Test func packetToAKnownNeighbourLeavesWithItsHeader() throws {
        let driver = ShimDriver()
        _ = driver.fromSwitch(ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv4, ipv4(from: F.host4, to: F.peer4)))
        let packet = ipv4(from: F.peer4, to: F.host4, protocol: .tcp, payloadLength: 3000)
        let frame = try #require(driver.fromTUN(packet, offload: vnet(tunTSOHeader)))
        #expect(frame == EmittedFrame(bytes: ethernet(to: F.hostMAC, from: F.portMAC, type: .ipv4, packet), offload: vnet(tapTSOHeader)))
    }

    @Test func plainPacketKeepsAZeroHeaderAndTrailingBytesAreCut() throws {
        let driver = ShimDriver()
        _ = driver.fromSwitch(ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv6, ipv6(from: F.host6, to: F.peer6, [])))
        let packet = ipv6(from: F.peer6, to: F.host6, [9, 9, 9, 9])
        let frame = try #require(driver.fromTUN(packet + [0xee, 0xee]))
        #expect(frame == EmittedFrame(bytes: ethernet(to: F.hostMAC, from: F.portMAC, type: .ipv6, packet),
                                      offload: [UInt8](repeating: 0, count: 10)))
        let withoutHeader = try #require(driver.fromTUN(packet, offload: nil))
        #expect(withoutHeader.offload.isEmpty)
    }

    @Test func groupDestinationsNeedNoResolution() throws {
        let driver = ShimDriver()
        let cases: [([UInt8], [UInt8])] = [
            (ipv4(from: F.peer4, to: .broadcast), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            (ipv4(from: F.peer4, to: IPv4Address(198, 18, 5, 255)), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            (ipv4(from: F.peer4, to: IPv4Address(239, 129, 2, 3)), [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]),
            (ipv6(from: F.peer6, to: IPv6Address("ff02::1:ff00:1")!, []), [0x33, 0x33, 0xff, 0x00, 0x00, 0x01]),
        ]
        for (packet, destination) in cases {
            let frame = try #require(driver.fromTUN(packet))
            #expect(Array(frame.bytes[0..<6]) == destination)
        }
        #expect(driver.pending().isEmpty, "nothing asked")
    }
}
