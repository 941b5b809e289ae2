import Testing
import VSwitchCore
import VSwitchTesting

/// The dedicated two-port path must behave exactly like the general path (SPEC section 6).
@Suite struct TwoPortPathTests {
    /// Random traffic between a few hosts on both sides, with broadcast, multicast, link-local
    /// groups, bad sources, runts and truncated tags mixed in.
    static func traffic(seed: UInt64, count: Int) -> [(from: Int, frame: [UInt8])] {
        var rng = SplitMix64(seed: seed)
        let hosts: [UInt64] = (1...6).map { 0x0200_0000_0000 | $0 }
        let groups: [UInt64] = [MAC.broadcast, MAC.multicast, 0x0180_C200_0000, 0x0180_C200_000E, 0]
        return (0..<count).map { _ in
            let from = Int(rng.next() % 2)
            let kind = rng.next() % 20
            let src = kind == 0 ? groups[Int(rng.next() % UInt64(groups.count))] : hosts[Int(rng.next() % UInt64(hosts.count))]
            let dst = kind < 4 ? groups[Int(rng.next() % UInt64(groups.count))] : hosts[Int(rng.next() % UInt64(hosts.count))]
            var f = frame(dst, src, tag: UInt8(truncatingIfNeeded: rng.next()))
            if kind == 19 { f = Array(f.prefix(Int(rng.next() % 18))) }
            return (from, f)
        }
    }

    @Test(arguments: [(true, 1 as UInt64), (false, 2), (true, 3)])
    func sameFramesCountersAndTableAsTheGeneralPath(_ floodUnknown: Bool, _ seed: UInt64) {
        var settings = LearningSwitch.Settings()
        settings.floodUnknown = floodUnknown
        var general = settings
        general.twoPortPath = false
        let (a, pa) = makeSwitch(ports: 2, settings: settings)
        let (b, pb) = makeSwitch(ports: 2, settings: general)
        for (i, step) in Self.traffic(seed: seed, count: 3000).enumerated() {
            let now = UInt64(i) * 10_000_000
            let outA = send(a, pa, from: step.from, [step.frame], now: now)
            let outB = send(b, pb, from: step.from, [step.frame], now: now)
            #expect(outA == outB, "frame \(i)")
            if outA != outB { return }
        }
        for p in 0..<2 { #expect(a.counters(p) == b.counters(p), "port \(p) counters") }
        let entries = { (t: MACTable) in t.entries.map { "\($0.mac)@\($0.portNumber)" }.sorted() }
        #expect(entries(a.table) == entries(b.table))
        #expect(a.table.learned == b.table.learned && a.table.moved == b.table.moved)
        #expect(a.counters(0)!.drops(.filtered) > 0, "the traffic exercised filtering")
    }
}
