// Allocation counting needs CMallocCounter, which this test target gets once Package.swift lists it
// among VSwitchPortsTests' dependencies; until then this file compiles to nothing.
#if canImport(CMallocCounter)
import CMallocCounter
import Testing
import VSwitchCore
import VSwitchPorts
import VSwitchWire

/// The shim's per-frame paths allocate nothing, even unoptimised: answering ARP and ND, learning,
/// delivering, encapsulating, holding and asking, releasing, expiring.
@Suite struct ShimAllocationTests {
    typealias F = Fixture

    @Test func perFramePathsAllocateNothing() {
        let shim = Fixture.makeShim()
        let counters = PortCounters()
        // One-time runtime work first: an unoptimised build instantiates the type metadata of the
        // drop counters' tuple (a few mallocs, once per process) on the first drop counted, which
        // in a test run alone may otherwise fall inside a measured round.
        counters.drop(.unresolved)
        let header = UnsafeMutableRawPointer.allocate(byteCount: 10, alignment: 8)
        defer { header.deallocate() }
        var now: UInt64 = 1_000 * F.second
        let awaited = IPv4Address(198, 18, 85, 1)
        let frames = PacketBatch(capacity: 8)
        for frame in [
            ethernet(to: .broadcast, from: F.hostMAC, type: .arp, arp(.request, senderMAC: F.hostMAC, senderIP: F.host4, targetIP: F.peer4)),
            solicitationFrame(for: F.peer6),
            ethernet(to: F.portMAC, from: F.hostMAC, type: .ipv4, ipv4(from: F.host4, to: F.peer4)),
            advertisementFrame(of: IPv6Address("2001:2:0:5::77")!, at: F.otherMAC),
            ethernet(to: F.portMAC, from: F.otherMAC, type: .arp,
                     arp(.reply, senderMAC: F.otherMAC, senderIP: awaited, targetMAC: F.portMAC, targetIP: F.peer4)),
        ] { frames.append(frame) }
        let (arpRequest, solicitation, toPort, advertisement, arpReply) = (0, 1, 2, 3, 4)
        let scratch = frames.buffers + 5
        let packet = ipv4(from: F.peer4, to: F.host4)

        func fromSwitch(_ index: Int) {
            _ = shim.decapsulate(UnsafePointer(frames.buffers + index), header: header, now: now, counters: counters)
            while shim.emitPending(into: scratch, counters: counters) {}
        }
        func fromTUN(to destination: IPv4Address) {
            scratch.pointee.offset = frames.headroom
            (scratch.pointee.frame + 14).copyMemory(from: packet, byteCount: packet.count)
            (scratch.pointee.frame + 14 + 16).storeBytes(of: destination.rawValue.bigEndian, as: UInt32.self)
            _ = shim.encapsulate(scratch, packetLength: packet.count, offloadLength: 0, now: now, counters: counters)
            while shim.emitPending(into: scratch, counters: counters) {}
        }
        func expectNoAllocations(_ label: String, _ body: () -> Void) {
            body()  // warm up
            vswitch_malloc_counter_enable(1)
            let before = vswitch_malloc_count()
            for _ in 0..<100 { body() }
            let allocations = vswitch_malloc_count() - before
            vswitch_malloc_counter_enable(0)
            #expect(allocations == 0, "\(label): \(allocations) allocations in 100 rounds")
        }

        expectNoAllocations("ARP answer") { fromSwitch(arpRequest) }
        expectNoAllocations("ND answer") { fromSwitch(solicitation) }
        expectNoAllocations("delivery") { fromSwitch(toPort) }
        expectNoAllocations("learning") { fromSwitch(advertisement) }
        expectNoAllocations("known neighbour") { fromTUN(to: F.host4) }
        var host: UInt8 = 0
        expectNoAllocations("hold and ask") {
            host &+= 1
            fromTUN(to: IPv4Address(198, 18, 6, host))
        }
        expectNoAllocations("expiry") {
            now += 2 * F.second
            shim.expire(now: now, counters: counters)
        }
        expectNoAllocations("hold and release") {
            fromTUN(to: awaited)
            fromSwitch(arpReply)
            now += 400 * F.second  // the neighbour ages out: the next round holds again
        }
        #expect(shim.statistics.packetsReleased == 101, "the release path ran")
    }
}
#endif
