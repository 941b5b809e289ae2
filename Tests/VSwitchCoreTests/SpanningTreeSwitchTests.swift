import CMallocCounter
import Testing
import VSwitchCore
import VSwitchTesting

/// Two switches joined by two parallel links (ports 0 and 1 of each), a host on port 2 of each,
/// the spanning tree on: frames carried between in-memory ports by hand.
final class TwoSwitchLoop {
    let x: LearningSwitch, y: LearningSwitch
    let px: [MemoryPort], py: [MemoryPort]
    let batch = PacketBatch(capacity: 64)
    var now: UInt64 = 0
    /// Data frames (not BPDUs) carried over the links, cumulative.
    var carried = 0

    init(stp: Bool = true) {
        (x, px) = makeSwitch(ports: 3)
        (y, py) = makeSwitch(ports: 3)
        if stp {
            x.startSpanningTree(SpanningTree.Parameters(), address: 0x0200_0000_0001, now: 0)
            y.startSpanningTree(SpanningTree.Parameters(), address: 0x0200_0000_0002, now: 0)
        }
    }

    /// Carries what each switch sent on its link ports to the other, until quiet or `rounds`.
    func shuttle(rounds: Int = 50) {
        for _ in 0..<rounds {
            var moved = false
            for (from, to, sw) in [(px, py, y), (py, px, x)] {
                for link in 0..<2 {
                    for f in from[link].takeTransmitted() {
                        moved = true
                        if f.prefix(6) != [0x01, 0x80, 0xC2, 0, 0, 0] { carried += 1 }
                        to[link].inject(f)
                    }
                    while !to[link].pending.isEmpty { _ = sw.poll(link, batch: batch, now: now) }
                }
            }
            if !moved { return }
        }
    }

    func run(seconds: Int) {
        for _ in 0..<(seconds * 10) {
            now += 100_000_000
            x.serviceSpanningTree(now: now)
            y.serviceSpanningTree(now: now)
            shuttle()
        }
    }
}

@Suite struct SpanningTreeSwitchTests {
    @Test func twoParallelLinksLeaveOneBlockedPortAndABroadcastCrossesOnce() {
        let net = TwoSwitchLoop()
        net.run(seconds: 5)
        let x = net.x.spanningTreeStatus!, y = net.y.spanningTreeStatus!
        #expect(x.rootPort == nil && y.rootPort == 0)
        #expect(y.ports.first { $0.number == 1 }?.role == .alternate)
        #expect(y.ports.first { $0.number == 1 }?.state == .discarding)
        #expect(y.ports.first { $0.number == 2 }?.state == .forwarding, "the host port is an edge port by now")
        _ = net.py[2].takeTransmitted(); _ = net.px[2].takeTransmitted()

        net.carried = 0
        net.px[2].inject(frame(MAC.broadcast, MAC.a))
        _ = net.x.poll(2, batch: net.batch, now: net.now)
        net.shuttle()
        let atY = net.py[2].takeTransmitted().filter { $0.prefix(6) == bytes(of: MAC.broadcast)[...] }
        #expect(atY.count == 1, "the broadcast reaches Y's host once")
        #expect(net.carried == 2, "one copy per link from X; Y's blocked port drops its copy: \(net.carried)")
        #expect(net.y.counters(1)!.drops(.stpDiscarding) == 1)
        // The copy that arrived on the blocked port was not learned there.
        #expect(net.y.table.lookup(MACTable.key(mac: MAC.a, vlan: 0)) == 0)
    }

    @Test func withoutTheTreeTheSameLoopMultipliesABroadcast() {
        let net = TwoSwitchLoop(stp: false)
        net.px[2].inject(frame(MAC.broadcast, MAC.a))
        _ = net.x.poll(2, batch: net.batch, now: 0)
        net.shuttle(rounds: 20)
        #expect(net.carried > 20, "a loop without the tree: \(net.carried) copies in 20 rounds")
    }

    @Test func aLinkThatGoesDownHandsOverToTheAlternate() {
        let net = TwoSwitchLoop()
        net.run(seconds: 5)
        // Port 0 of both goes down: Y's alternate becomes its root port and forwards.
        net.x.detach(0); net.y.detach(0)
        net.run(seconds: 1)
        let y = net.y.spanningTreeStatus!
        #expect(y.rootPort == 1)
        #expect(y.ports.first { $0.number == 1 }?.state == .forwarding)
    }

    @Test func bpdusAreDroppedAsLinkLocalWithTheTreeOff() {
        let (sw, ports) = makeSwitch(ports: 2)
        let bpdu = SpanningTree.encode(SpanningTree.BPDU(kind: .config, flags: 0, vector: .init(rootBridge: 1, rootPathCost: 0, designatedBridge: 1, designatedPort: 0x8001, bridgePort: 0), times: .init(messageAge: 0, maxAge: 20, helloTime: 2, forwardDelay: 15)), source: MAC.b)
        let out = send(sw, ports, from: 0, [bpdu])
        #expect(out[1].isEmpty)
        #expect(sw.counters(0)!.drops(.linkLocal) == 1)
        sw.startSpanningTree(SpanningTree.Parameters(), address: 0x0200_0000_0009, now: 0)
        #expect(ports[1].takeTransmitted().allSatisfy { $0.prefix(6) == [0x01, 0x80, 0xC2, 0, 0, 0] }, "the tree sends BPDUs only")
        #expect(send(sw, ports, from: 0, [frame(MAC.broadcast, MAC.a)])[1].isEmpty, "new ports discard at first")
        sw.stopSpanningTree()
        let again = send(sw, ports, from: 0, [frame(MAC.broadcast, MAC.a)])
        #expect(again[1].count == 1, "after stp=off every port forwards again")
    }

    @Test func forwardingWithTheTreeOnAllocatesNothingPerFrame() {
        let traffic = TrafficPattern(hosts: 1000, batchCount: 16)
        let sw = traffic.makeSwitch()
        _ = sw.attach(DiscardPort(name: "p2"))
        var edge = SpanningTree.PortParameters()
        edge.adminEdge = true
        sw.startSpanningTree(SpanningTree.Parameters(), address: 0x0200_0000_0009, now: 0)
        for n in sw.attachedPorts { sw.setSpanningTreeParameters(edge, for: n) }
        sw.table.flush(port: 1)
        func pass() {
            for (i, batch) in traffic.batches.enumerated() {
                sw.process(batch, from: 0, now: UInt64(i) * 1_000_000)
                sw.flush(batch)
            }
        }
        pass()
        vswitch_malloc_counter_enable(1)
        let before = vswitch_malloc_count()
        for _ in 0..<10 { pass() }
        let allocations = vswitch_malloc_count() - before
        vswitch_malloc_counter_enable(0)
        let batches = UInt64(10 * traffic.batches.count)
        #expect(allocations <= 2 * batches, "\(allocations) allocations for \(batches) batches")
        #expect(sw.counters(2)!.txPackets > 0, "admin-edge ports forward and flood")
    }

    /// The data plane's `now` may be older than the clock the tree started at (and a thread may
    /// stall): neither may send the tick loop around the 64-bit clock.
    @Test func aClockSlightlyBehindOrFarAheadTicksSanely() {
        let (sw, _) = makeSwitch(ports: 1)
        sw.startSpanningTree(SpanningTree.Parameters(), address: 0x0200_0000_0009, now: 5_000_000_000)
        sw.serviceSpanningTree(now: 4_900_000_000)
        sw.serviceSpanningTree(now: 1_000_000_000_000)
        #expect(sw.spanningTreeStatus != nil)
    }
}
