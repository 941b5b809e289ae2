import Testing
import VSwitchCore
import VSwitchTesting

/// Bridges joined by point-to-point links, BPDUs carried between them by hand: the RSTP engine
/// without a frame of data.
final class STPNetwork {
    var bridges: [SpanningTree] = []
    /// (bridge, port) -> (bridge, port)
    var links: [Int: (Int, Int)] = [:]
    var cut: Set<Int> = []
    /// A legacy bridge: BPDUs it receives that are RST are ignored, as the Linux bridge does.
    var legacy: Set<Int> = []

    static func key(_ b: Int, _ p: Int) -> Int { b * 100 + p }

    init(addresses: [UInt64], parameters: SpanningTree.Parameters = SpanningTree.Parameters()) {
        bridges = addresses.enumerated().map { i, a in
            var p = parameters
            if legacy.contains(i) { p.forceVersion = 0 }
            return SpanningTree(address: a, parameters: p)
        }
    }

    func connect(_ a: (Int, Int), _ b: (Int, Int)) {
        links[Self.key(a.0, a.1)] = b
        links[Self.key(b.0, b.1)] = a
        for (br, p) in [a, b] {
            bridges[br].addPort(p)
            bridges[br].setEnabled(p, true)
        }
    }

    func addHost(_ b: Int, _ p: Int) {
        bridges[b].addPort(p)
        bridges[b].setEnabled(p, true)
    }

    func cutLink(_ a: (Int, Int)) {
        guard let b = links[Self.key(a.0, a.1)] else { return }
        cut.insert(Self.key(a.0, a.1)); cut.insert(Self.key(b.0, b.1))
        bridges[a.0].setEnabled(a.1, false)
        bridges[b.0].setEnabled(b.1, false)
    }

    /// Delivers BPDUs until the network is quiet.
    func settle() {
        for _ in 0..<100 {
            var moved = false
            for (i, br) in bridges.enumerated() {
                _ = br.takeFlushes()
                for (port, frame) in br.takeTransmits() {
                    let k = Self.key(i, port)
                    guard !cut.contains(k), let (pb, pp) = links[k] else { continue }
                    if legacy.contains(pb) && frame[20] == 0x02 { continue }
                    moved = true
                    frame.withUnsafeBytes { bridges[pb].receive(frame: $0, on: pp) }
                }
            }
            if !moved { return }
        }
    }

    func run(seconds: Int) {
        for _ in 0..<seconds {
            for br in bridges { br.tick() }
            settle()
        }
    }

    func state(_ b: Int, _ p: Int) -> SpanningTree.ForwardingState { bridges[b].state(of: p) }
    func role(_ b: Int, _ p: Int) -> SpanningTree.Role { bridges[b].role(of: p) }
}

@Suite struct SpanningTreeTests {
    // Triangle: bridge 0 (best priority: lowest address) is the root.
    //   0.p1 -- 1.p1,  1.p2 -- 2.p2,  2.p1 -- 0.p2
    static func triangle() -> STPNetwork {
        let net = STPNetwork(addresses: [0x0200_0000_0001, 0x0200_0000_0002, 0x0200_0000_0003])
        net.connect((0, 1), (1, 1))
        net.connect((1, 2), (2, 2))
        net.connect((2, 1), (0, 2))
        return net
    }

    @Test func aTriangleBlocksExactlyOnePortWithinASecond() {
        let net = Self.triangle()
        net.settle()
        net.run(seconds: 1)
        #expect(net.bridges[0].status.rootPort == nil)
        #expect(net.role(1, 1) == .root && net.role(2, 1) == .root)
        // The link between 1 and 2: bridge 1 (lower id) is designated, bridge 2 blocks.
        #expect(net.role(1, 2) == .designated && net.role(2, 2) == .alternate)
        #expect(net.state(2, 2) == .discarding)
        let forwarding = [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1)].allSatisfy { net.state($0.0, $0.1) == .forwarding }
        #expect(forwarding)
        for b in net.bridges { #expect(b.status.rootID == net.bridges[0].status.bridgeID) }
    }

    @Test func aCutRootLinkFailsOverToTheAlternateAtOnce() {
        let net = Self.triangle()
        net.run(seconds: 2)
        net.cutLink((2, 1))  // bridge 2's root port
        net.settle()
        #expect(net.role(2, 2) == .root)
        #expect(net.state(2, 2) == .forwarding)
        #expect(net.state(1, 2) == .forwarding)
        #expect(net.bridges[2].status.rootID == net.bridges[0].status.bridgeID)
        #expect(net.bridges[2].status.topologyChanges > 0)
    }

    @Test func aSilentNeighbourIsAgedOutAfterThreeHellos() {
        let net = Self.triangle()
        net.run(seconds: 2)
        // Bridge 0 stops talking on its link to 2, but the link stays up (a filtered path).
        net.cut.insert(STPNetwork.key(0, 2)); net.cut.insert(STPNetwork.key(2, 1))
        net.run(seconds: 7)
        #expect(net.role(2, 2) == .root)
        #expect(net.state(2, 2) == .forwarding)
    }

    @Test func hostPortsBecomeEdgeAndForwardAfterTheMigrateTime() {
        let net = Self.triangle()
        net.addHost(1, 5)
        net.settle()
        #expect(net.state(1, 5) == .discarding)
        net.run(seconds: 4)
        #expect(net.state(1, 5) == .forwarding)
        #expect(net.bridges[1].status.ports.first { $0.number == 5 }?.edge == true)
    }

    @Test func anAdminEdgePortForwardsAtOnce() {
        let stp = SpanningTree(address: 0x0200_0000_0009)
        var p = SpanningTree.PortParameters()
        p.adminEdge = true
        stp.addPort(0, parameters: p)
        stp.setEnabled(0, true)
        #expect(stp.state(of: 0) == .forwarding)
    }

    @Test func aLegacyNeighbourGetsConfigBPDUsAndTheLoopStillBreaks() {
        let net = STPNetwork(addresses: [0x0200_0000_0001, 0x0200_0000_0002], parameters: {
            var p = SpanningTree.Parameters(); p.forwardDelay = 4; p.maxAge = 6; p.helloTime = 1; return p
        }())
        net.legacy = [1]
        net.bridges[1] = SpanningTree(address: 0x0200_0000_0002, parameters: {
            var p = SpanningTree.Parameters(); p.forwardDelay = 4; p.maxAge = 6; p.helloTime = 1; p.forceVersion = 0; return p
        }())
        net.connect((0, 1), (1, 1))
        net.connect((0, 2), (1, 2))
        net.run(seconds: 20)
        let s = net.bridges[0].status
        #expect(s.ports.allSatisfy { !$0.rstp })
        // Two parallel links: exactly one port of the four discards.
        let states = [(0, 1), (0, 2), (1, 1), (1, 2)].map { net.state($0.0, $0.1) }
        #expect(states.filter { $0 == .discarding }.count == 1)
        #expect(states.filter { $0 == .forwarding }.count == 3)
    }

    @Test func bpdusRoundTrip() {
        let v = SpanningTree.PriorityVector(rootBridge: 0x8000_0200_0000_0001, rootPathCost: 20_000,
                                            designatedBridge: 0x8000_0200_0000_0002, designatedPort: 0x8003, bridgePort: 0)
        let times = SpanningTree.Times(messageAge: 1, maxAge: 20, helloTime: 2, forwardDelay: 15)
        for kind in [SpanningTree.BPDU.Kind.config, .rst] {
            let b = SpanningTree.BPDU(kind: kind, flags: 0x7D, vector: v, times: times)
            let frame = SpanningTree.encode(b, source: 0x0200_0000_0002)
            #expect(frame.count == 60)
            #expect(frame.withUnsafeBytes { SpanningTree.decode($0) } == b)
        }
    }

    @Test func truncatedAndRandomBPDUsAreRefusedWithoutCrashing() {
        var rng = SplitMix64(seed: 7)
        let good = SpanningTree.encode(SpanningTree.BPDU(kind: .rst, flags: 0x3C, vector: .init(rootBridge: 1, rootPathCost: 0, designatedBridge: 1, designatedPort: 1, bridgePort: 0), times: .init(messageAge: 0, maxAge: 20, helloTime: 2, forwardDelay: 15)), source: 2)
        for n in 0..<good.count {
            let cut = Array(good.prefix(n))
            let decoded = cut.withUnsafeBytes { SpanningTree.decode($0) }
            #expect(decoded == nil || n >= 53)
        }
        let stp = SpanningTree(address: 0x0200_0000_0001)
        stp.addPort(0); stp.setEnabled(0, true)
        for _ in 0..<20_000 {
            var f = good
            for _ in 0..<Int(rng.next() % 6) { f[Int(rng.next() % UInt64(f.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            f = Array(f.prefix(Int(rng.next() % 61)))
            f.withUnsafeBytes { stp.receive(frame: $0, on: 0) }
            if rng.next() % 10 == 0 { stp.tick() }
        }
        #expect(stp.status.ports.count == 1)
    }

    /// A new bridge priority moves the root without stopping ports that keep forwarding (the
    /// host's edge port), and the other bridges follow.
    @Test func aNewPriorityMovesTheRootWithoutStoppingEdgePorts() {
        let net = Self.triangle()
        net.addHost(2, 5)
        net.run(seconds: 5)
        #expect(net.state(2, 5) == .forwarding)
        var p = SpanningTree.Parameters()
        p.priority = 4096
        net.bridges[2].setParameters(p)
        #expect(net.state(2, 5) == .forwarding, "the edge port keeps forwarding")
        net.settle()
        net.run(seconds: 1)
        #expect(net.bridges[2].status.rootPort == nil)
        for b in net.bridges { #expect(b.status.rootID == net.bridges[2].status.bridgeID) }
        let states = [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)].map { net.state($0.0, $0.1) }
        #expect(states.filter { $0 == .discarding }.count == 1, "\(states)")
    }
}
