import Testing
import VSwitchCore
import VSwitchPorts
import VSwitchWire

/// A packet to an unknown neighbour waits while the shim asks, and leaves when the answer comes,
/// or is dropped and counted when none comes in time or there is no room to wait.
@Suite struct NeighbourShimResolutionTests {
    typealias F = Fixture

    @Test func unknownIPv4NeighbourIsAskedWithARPThenReleased() throws {
        let driver = ShimDriver()
        let first = ipv4(from: F.peer4, to: F.host4, protocol: .tcp, payloadLength: 2000)
        let second = ipv4(from: F.peer4, to: F.host4, payloadLength: 10)
        #expect(driver.fromTUN(first, offload: vnet(tunTSOHeader)) == nil)
        #expect(driver.fromTUN(second) == nil)
        #expect(driver.shim.heldPacketCount == 2)
        let request = ethernet(to: .broadcast, from: F.portMAC, type: .arp,
                               arp(.request, senderMAC: F.portMAC, senderIP: F.peer4, targetIP: F.host4))
            + [UInt8](repeating: 0, count: 18)
        #expect(driver.pending() == [EmittedFrame(bytes: request, offload: [])], "one request for both packets")

        let reply = ethernet(to: F.portMAC, from: F.hostMAC, type: .arp,
                             arp(.reply, senderMAC: F.hostMAC, senderIP: F.host4, targetMAC: F.portMAC, targetIP: F.peer4))
        #expect(driver.fromSwitch(reply).0 == .handled)
        #expect(driver.pending() == [
            EmittedFrame(bytes: ethernet(to: F.hostMAC, from: F.portMAC, type: .ipv4, first), offload: vnet(tapTSOHeader)),
            EmittedFrame(bytes: ethernet(to: F.hostMAC, from: F.portMAC, type: .ipv4, second), offload: [UInt8](repeating: 0, count: 10)),
        ], "in order, each with its own offload header")
        #expect(driver.shim.heldPacketCount == 0)
        #expect(driver.shim.statistics.packetsReleased == 2)
        #expect(driver.shim.statistics.arpRequestsSent == 1)
        #expect(driver.counters == PortCounters())
    }

    @Test func unknownIPv6NeighbourIsSolicitedThenReleased() throws {
        let driver = ShimDriver()
        let packet = ipv6(from: F.peer6, to: F.host6, [1, 2, 3])
        #expect(driver.fromTUN(packet) == nil)
        let frames = driver.pending()
        try #require(frames.count == 1)
        let group = IPv6Address("ff02::1:ff00:1")!
        let solicitation = neighbourMessage(type: 135, target: F.host6, option: 1, linkLayer: F.portMAC,
                                            source: F.peer6, destination: group)
        #expect(frames[0].bytes == ethernet(to: MACAddress(0x33, 0x33, 0xff, 0, 0, 1), from: F.portMAC, type: .ipv6,
                                            ipv6(from: F.peer6, to: group, nextHeader: .icmpv6, hopLimit: 255, solicitation)))
        #expect(icmpv6Checksum(from: F.peer6, to: group, Array(frames[0].bytes[54...])) == 0)

        #expect(driver.fromSwitch(advertisementFrame(of: F.host6, at: F.hostMAC)).0 == .handled)
        #expect(driver.pending() == [EmittedFrame(bytes: ethernet(to: F.hostMAC, from: F.portMAC, type: .ipv6, packet),
                                                  offload: [UInt8](repeating: 0, count: 10))])
        #expect(driver.shim.neighbour(F.host6, now: driver.now) == F.hostMAC)
    }

    @Test func asksFromThePeerAddressOfTheDestinationsPrefix() throws {
        let shim = NeighbourShim(mac: F.portMAC, peers: [PeerAddress(cidr: "198.18.5.2/24")!, PeerAddress(cidr: "198.18.7.2/24")!])
        let driver = ShimDriver(shim)
        // The packet's source is not a peer address (the TUN host routes it): the peer of the
        // destination's prefix asks.
        #expect(driver.fromTUN(ipv4(from: IPv4Address(198, 19, 0, 1), to: IPv4Address(198, 18, 7, 1))) == nil)
        let frames = driver.pending()
        try #require(frames.count == 1)
        #expect(Array(frames[0].bytes[28..<32]) == [198, 18, 7, 2])
    }

    @Test func anAnswerFromSomeoneElseReleasesNothing() {
        let driver = ShimDriver()
        #expect(driver.fromTUN(ipv4(from: F.peer4, to: F.host4)) == nil)
        _ = driver.pending()
        let unrelated = ethernet(to: .broadcast, from: F.otherMAC, type: .arp,
                                 arp(.request, senderMAC: F.otherMAC, senderIP: IPv4Address(198, 18, 5, 9), targetIP: IPv4Address(198, 18, 5, 10)))
        #expect(driver.fromSwitch(unrelated).0 == .ignored)
        #expect(driver.pending().isEmpty)
        #expect(driver.shim.heldPacketCount == 1)
    }

    @Test func anyTrafficFromTheAwaitedHostResolvesIt() {
        let driver = ShimDriver()
        #expect(driver.fromTUN(ipv4(from: F.peer4, to: F.host4)) == nil)
        _ = driver.pending()
        // The host asks for the peer before answering: its request teaches the shim its MAC.
        let request = ethernet(to: .broadcast, from: F.hostMAC, type: .arp,
                               arp(.request, senderMAC: F.hostMAC, senderIP: F.host4, targetIP: F.peer4))
        #expect(driver.fromSwitch(request).0 == .handled)
        let frames = driver.pending()
        #expect(frames.count == 2, "the ARP reply, then the released packet")
        #expect(frames.last.map { Array($0.bytes[0..<6]) } == F.hostMAC.octets)
    }

    @Test func heldPacketTimesOutAfterASecondAndIsCounted() {
        let driver = ShimDriver()
        #expect(driver.fromTUN(ipv4(from: F.peer4, to: F.host4)) == nil)
        #expect(driver.shim.nextDeadline == driver.now + F.second)
        driver.expire(after: F.second / 2)
        #expect(driver.shim.heldPacketCount == 1)
        #expect(driver.counters.drops(.unresolved) == 0)
        driver.expire(after: F.second / 2)
        #expect(driver.shim.heldPacketCount == 0)
        #expect(driver.counters.drops(.unresolved) == 1)
        #expect(driver.counters.rxDrops == 1, "a receive-side reason")
        #expect(driver.shim.nextDeadline == nil)
        // A late answer releases nothing, and the next packet asks again.
        _ = driver.pending()
        _ = driver.fromSwitch(advertisementFrame(of: F.host6, at: F.hostMAC))
        #expect(driver.pending().isEmpty)
        #expect(driver.fromTUN(ipv4(from: F.peer4, to: F.host4)) == nil)
        #expect(driver.pending().count == 1)
    }

    @Test func fullHoldQueueDropsAndCounts() {
        let driver = ShimDriver(Fixture.makeShim(holdCapacity: 16))
        for host in 0..<17 {
            #expect(driver.fromTUN(ipv4(from: F.peer4, to: IPv4Address(198, 18, 5, UInt8(100 + host)))) == nil)
        }
        #expect(driver.shim.heldPacketCount == 16)
        #expect(driver.counters.drops(.unresolved) == 1)
        #expect(driver.pending().count == 16, "one request per waiting destination; none for the dropped packet")
        driver.expire(after: F.second)
        #expect(driver.counters.drops(.unresolved) == 17)
    }

    @Test func unroutableDestinationsAreUnresolved() {
        let driver = ShimDriver()
        #expect(driver.fromTUN(ipv4(from: F.peer4, to: .any)) == nil)
        #expect(driver.fromTUN(ipv6(from: F.peer6, to: .loopback, [])) == nil)
        #expect(driver.counters.drops(.unresolved) == 2)
        #expect(driver.shim.heldPacketCount == 0)
    }

    @Test func neighboursAgeOut() {
        let shim = NeighbourShim(mac: F.portMAC, peers: [PeerAddress(cidr: "198.18.5.2/24")!], neighbourLifetime: 300 * F.second)
        let driver = ShimDriver(shim)
        _ = driver.fromSwitch(ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv4, ipv4(from: F.host4, to: F.peer4)))
        #expect(shim.neighbour(F.host4, now: driver.now + 299 * F.second) == F.hostMAC)
        #expect(shim.neighbour(F.host4, now: driver.now + 300 * F.second) == nil)
    }

    @Test func fullNeighbourTableForgetsTheLeastRecentlyConfirmed() {
        let shim = NeighbourShim(mac: F.portMAC, peers: [PeerAddress(cidr: "198.18.0.2/16")!], neighbourCapacity: 4)
        let driver = ShimDriver(shim)
        for host in 1...5 {
            driver.now += 1
            let address = IPv4Address(198, 18, 1, UInt8(host))
            let mac = MACAddress(0x02, 0, 0, 0, 1, UInt8(host))
            _ = driver.fromSwitch(ethernet(to: F.portMAC, from: mac, type: .ipv4, ipv4(from: address, to: IPv4Address(198, 18, 0, 2))))
        }
        #expect(shim.neighbour(IPv4Address(198, 18, 1, 1), now: driver.now) == nil)
        #expect(shim.neighbour(IPv4Address(198, 18, 1, 5), now: driver.now) == MACAddress(0x02, 0, 0, 0, 1, 5))
        #expect(shim.neighbourEntries(now: driver.now).count == 4)
    }
}
