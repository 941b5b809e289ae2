import Testing
import VSwitchCore
import VSwitchPorts
import VSwitchWire

/// The shim answers ARP and neighbour solicitations for the TUN host's addresses, exactly.
@Suite struct NeighbourShimAnswerTests {
    typealias F = Fixture

    @Test func arpRequestForAPeerGetsAReplyFromThePortMAC() {
        let driver = ShimDriver()
        let request = ethernet(to: .broadcast, from: F.hostMAC, type: .arp,
                               arp(.request, senderMAC: F.hostMAC, senderIP: F.host4, targetIP: F.peer4))
        #expect(driver.fromSwitch(request).0 == .handled)
        let reply = ethernet(to: F.hostMAC, from: F.portMAC, type: .arp,
                             arp(.reply, senderMAC: F.portMAC, senderIP: F.peer4, targetMAC: F.hostMAC, targetIP: F.host4))
            + [UInt8](repeating: 0, count: 18)  // padded to Ethernet's 60 bytes
        #expect(driver.pending() == [EmittedFrame(bytes: reply, offload: [])])
        #expect(driver.shim.neighbour(F.host4, now: driver.now) == F.hostMAC, "the asker is learned")
        #expect(driver.shim.statistics.arpRepliesSent == 1)
        #expect(driver.counters == PortCounters())
    }

    @Test func arpForOtherAddressesIsNotAnswered() {
        let driver = ShimDriver()
        let request = ethernet(to: .broadcast, from: F.hostMAC, type: .arp,
                               arp(.request, senderMAC: F.hostMAC, senderIP: F.host4, targetIP: IPv4Address(198, 18, 5, 9)))
        #expect(driver.fromSwitch(request).0 == .ignored)
        // A gratuitous announcement of the peer's own address by someone else is not believed either.
        let claim = ethernet(to: .broadcast, from: F.otherMAC, type: .arp,
                             arp(.request, senderMAC: F.otherMAC, senderIP: F.peer4, targetIP: F.peer4))
        #expect(driver.fromSwitch(claim).0 == .ignored)
        #expect(driver.pending().isEmpty)
        #expect(driver.shim.neighbour(F.host4, now: driver.now) == nil, "nothing learned from ARP not meant for us")
        #expect(driver.counters == PortCounters())
    }

    @Test func arpProbeForAPeerIsAnsweredAndTeachesNothing() {
        let driver = ShimDriver()
        let probe = ethernet(to: .broadcast, from: F.hostMAC, type: .arp,
                             arp(.request, senderMAC: F.hostMAC, senderIP: .any, targetIP: F.peer4))
        #expect(driver.fromSwitch(probe).0 == .handled)
        let frames = driver.pending()
        #expect(frames.count == 1)
        #expect(Array(frames.first?.bytes[0..<6] ?? []) == F.hostMAC.octets)
        #expect(driver.shim.neighbourEntries(now: driver.now).isEmpty)
    }

    @Test(arguments: [false, true])
    func solicitationForAPeerGetsAnAdvertisement(unicast: Bool) throws {
        let driver = ShimDriver()
        #expect(driver.fromSwitch(solicitationFrame(for: F.peer6, unicast: unicast)).0 == .handled)
        let frames = driver.pending()
        try #require(frames.count == 1)
        let expectedMessage = neighbourMessage(type: 136, flags: 0x60, target: F.peer6, option: 2, linkLayer: F.portMAC,
                                               source: F.peer6, destination: F.host6)
        let expected = ethernet(to: F.hostMAC, from: F.portMAC, type: .ipv6,
                                ipv6(from: F.peer6, to: F.host6, nextHeader: .icmpv6, hopLimit: 255, expectedMessage))
        #expect(frames[0] == EmittedFrame(bytes: expected, offload: []))
        // Independently: the ICMPv6 checksum over the pseudo-header and the message sums to zero.
        let message = Array(frames[0].bytes[54...])
        #expect(message.count == 32)
        #expect(icmpv6Checksum(from: F.peer6, to: F.host6, message) == 0)
        #expect(message[4] == 0x60, "solicited and override")
        #expect(driver.shim.neighbour(F.host6, now: driver.now) == F.hostMAC)
        #expect(driver.shim.statistics.advertisementsSent == 1)
    }

    @Test func duplicateAddressProbeIsDefendedToAllNodes() throws {
        let driver = ShimDriver()
        #expect(driver.fromSwitch(solicitationFrame(for: F.peer6, from: .unspecified)).0 == .handled)
        let frames = driver.pending()
        try #require(frames.count == 1)
        let allNodes = IPv6Address("ff02::1")!
        let bytes = frames[0].bytes
        #expect(Array(bytes[0..<6]) == [0x33, 0x33, 0, 0, 0, 1])
        #expect(Array(bytes[38..<54]) == allNodes.octets)
        #expect(bytes[58] == 0x20, "override only: not solicited")
        #expect(icmpv6Checksum(from: F.peer6, to: allNodes, Array(bytes[54...])) == 0)
        #expect(driver.shim.neighbourEntries(now: driver.now).isEmpty)
    }

    @Test func invalidSolicitationsAreRefused() {
        let driver = ShimDriver()
        // To the port's MAC: junk addressed to us, a drop. To the group: not ours to judge.
        #expect(driver.fromSwitch(solicitationFrame(for: F.peer6, unicast: true, spoilChecksum: true)).0 == .dropped(.transmitUnsupported))
        #expect(driver.fromSwitch(solicitationFrame(for: F.peer6, unicast: true, hopLimit: 64)).0 == .dropped(.transmitUnsupported))
        #expect(driver.fromSwitch(solicitationFrame(for: F.peer6, spoilChecksum: true)).0 == .ignored)
        #expect(driver.fromSwitch(solicitationFrame(for: F.peer6, hopLimit: 254)).0 == .ignored)
        #expect(driver.counters.drops(.transmitUnsupported) == 2)
        #expect(driver.pending().isEmpty)
    }

    @Test func solicitationsForOtherAddressesAreIgnored() {
        let driver = ShimDriver()
        #expect(driver.fromSwitch(solicitationFrame(for: IPv6Address("2001:2:0:5::9")!)).0 == .ignored)
        #expect(driver.pending().isEmpty)
    }

    @Test func routerDiscoveryNeverReachesTheTUN() {
        let driver = ShimDriver()
        let allRouters = IPv6Address("ff02::2")!
        let message: [UInt8] = [133, 0, 0, 0, 0, 0, 0, 0]
        let frame = ethernet(to: MACAddress(0x33, 0x33, 0, 0, 0, 2), from: F.hostMAC, type: .ipv6,
                             ipv6(from: F.host6, to: allRouters, nextHeader: .icmpv6, hopLimit: 255, message))
        #expect(driver.fromSwitch(frame).0 == .ignored)
    }

    @Test func fullControlQueueLosesAnswersAndCountsThem() {
        let driver = ShimDriver()
        let request = ethernet(to: .broadcast, from: F.hostMAC, type: .arp,
                               arp(.request, senderMAC: F.hostMAC, senderIP: F.host4, targetIP: F.peer4))
        for _ in 0..<33 { _ = driver.fromSwitch(request) }
        #expect(driver.pending().count == 32)
        #expect(driver.counters.drops(.transmitQueueFull) == 1)
        #expect(driver.shim.statistics.controlFramesLost == 1)
    }
}
