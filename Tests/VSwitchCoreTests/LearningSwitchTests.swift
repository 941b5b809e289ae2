import Testing
import VSwitchCore
import VSwitchTesting

@Suite struct LearningSwitchTests {
    struct Case: CustomStringConvertible, Sendable {
        let name: String
        let steps: [(from: Int, dst: UInt64, src: UInt64, expect: Set<Int>)]
        var description: String { name }
    }

    /// Tables of frames in and the ports they must come out of, over three in-memory ports.
    static let cases: [Case] = [
        Case(name: "unknown unicast floods to all others, never back", steps: [
            (0, MAC.b, MAC.a, [1, 2]),
        ]),
        Case(name: "a learned MAC gets unicast only to its port", steps: [
            (0, MAC.b, MAC.a, [1, 2]),   // learns a@0
            (1, MAC.a, MAC.b, [0]),      // a known: only 0; learns b@1
            (0, MAC.b, MAC.a, [1]),      // b known: only 1
        ]),
        Case(name: "broadcast floods even when the source is known", steps: [
            (0, MAC.broadcast, MAC.a, [1, 2]),
            (2, MAC.broadcast, MAC.c, [0, 1]),
        ]),
        Case(name: "multicast floods", steps: [
            (1, MAC.b, MAC.a, [0, 2]),
            (0, MAC.multicast, MAC.b, [1, 2]),
        ]),
        Case(name: "destination on the ingress port is filtered", steps: [
            (0, MAC.c, MAC.a, [1, 2]),
            (0, MAC.b, MAC.c, [1, 2]),   // learns c@0
            (0, MAC.c, MAC.a, []),       // c is on 0: not sent back
        ]),
        Case(name: "a MAC that moves follows its new port", steps: [
            (0, MAC.b, MAC.a, [1, 2]),
            (2, MAC.b, MAC.a, [0, 1]),   // a moves to 2
            (1, MAC.a, MAC.b, [2]),
        ]),
    ]

    @Test(arguments: cases)
    func forwarding(_ c: Case) {
        let (sw, ports) = makeSwitch(ports: 3)
        for (i, step) in c.steps.enumerated() {
            let out = send(sw, ports, from: step.from, [frame(step.dst, step.src, tag: UInt8(i))])
            let got = Set(out.indices.filter { !out[$0].isEmpty })
            #expect(got == step.expect, "step \(i)")
            for p in got { #expect(out[p] == [frame(step.dst, step.src, tag: UInt8(i))], "frame intact, step \(i)") }
        }
    }

    @Test func invalidInputIsDroppedAndCounted() {
        let (sw, ports) = makeSwitch(ports: 2)
        let runts: [[UInt8]] = (0..<14).map { [UInt8](repeating: 0x02, count: $0) }
        let truncatedTags: [[UInt8]] = (14..<18).map { n in Array((bytes(of: MAC.b) + bytes(of: MAC.a) + [0x81, 0x00, 0, 5]).prefix(n)) }
        let badSources = [frame(MAC.b, MAC.broadcast), frame(MAC.b, MAC.multicast), frame(MAC.b, 0)]
        let out = send(sw, ports, from: 0, runts + truncatedTags + badSources)
        #expect(out[1].isEmpty)
        let c = sw.counters(0)!
        #expect(c.rxPackets == UInt64(runts.count + truncatedTags.count + badSources.count))
        #expect(c.drops(.runt) == 14)
        #expect(c.drops(.malformed) == 4)
        #expect(c.drops(.invalidSource) == 3)
        #expect(c.rxDrops == 21)
        #expect(sw.table.count == 0, "nothing learned from bad frames")
        // A whole 18-byte tagged frame passes.
        let tagged = bytes(of: MAC.b) + bytes(of: MAC.a) + [0x81, 0x00, 0, 5, 0x88, 0xb5]
        #expect(send(sw, ports, from: 0, [tagged])[1] == [tagged])
    }

    @Test func learningOffLearnsNothingFromThatPort() {
        let (sw, ports) = makeSwitch(ports: 3)
        sw.setOptions(.noLearning, for: 0)
        send(sw, ports, from: 0, [frame(MAC.broadcast, MAC.a)])
        #expect(sw.table.lookup(MACTable.key(mac: MAC.a, vlan: 0)) == -1)
        // Replies to a are unknown unicast: flooded (and never back to 1).
        let out = send(sw, ports, from: 1, [frame(MAC.a, MAC.b)])
        #expect(out[0].count == 1 && out[2].count == 1 && out[1].isEmpty)
        #expect(sw.table.lookup(MACTable.key(mac: MAC.b, vlan: 0)) == 1, "other ports still learn")
    }

    /// Isolated ports reach non-isolated ports only (like private VLAN "isolated" and the Linux
    /// bridge's `isolated on`).
    @Test func isolatedPortsOnlyReachNonIsolatedOnes() {
        let (sw, ports) = makeSwitch(ports: 4)  // 0, 1 isolated; 2, 3 not
        sw.setOptions(.isolated, for: 0)
        sw.setOptions(.isolated, for: 1)
        // Broadcast from an isolated port: only the non-isolated ones.
        var out = send(sw, ports, from: 0, [frame(MAC.broadcast, MAC.a)])
        #expect(out.map(\.count) == [0, 0, 1, 1])
        // From a non-isolated port: everyone else.
        out = send(sw, ports, from: 2, [frame(MAC.broadcast, MAC.c)])
        #expect(out.map(\.count) == [1, 1, 0, 1])
        // Known unicast between two isolated ports is dropped and counted.
        send(sw, ports, from: 1, [frame(MAC.broadcast, MAC.b)])
        out = send(sw, ports, from: 0, [frame(MAC.b, MAC.a)])
        #expect(out.allSatisfy { $0.isEmpty })
        #expect(sw.counters(0)!.drops(.isolated) == 1)
        // Isolated to non-isolated works both ways.
        #expect(send(sw, ports, from: 0, [frame(MAC.c, MAC.a)])[2].count == 1)
        #expect(send(sw, ports, from: 2, [frame(MAC.a, MAC.c)])[0].count == 1)
        // Unknown unicast from an isolated port floods to non-isolated ports only.
        out = send(sw, ports, from: 1, [frame(MAC.d, MAC.b)])
        #expect(out.map(\.count) == [0, 0, 1, 1])
    }

    @Test func broadcastLimitRateLimitsFloodingOnly() {
        let (sw, ports) = makeSwitch(ports: 2)
        sw.setFloodLimit(10, for: 0)
        let t0 = 100 * second
        var out = send(sw, ports, from: 0, (0..<50).map { _ in frame(MAC.broadcast, MAC.a) }, now: t0)
        #expect(out[1].count == 10, "a burst of one second's worth")
        #expect(sw.counters(0)!.drops(.floodLimit) == 40)
        // Known unicast is not limited.
        send(sw, ports, from: 1, [frame(MAC.broadcast, MAC.b)], now: t0)
        out = send(sw, ports, from: 0, (0..<30).map { _ in frame(MAC.b, MAC.a) }, now: t0)
        #expect(out[1].count == 30)
        // Half a second later, five more tokens; unknown unicast and multicast draw from them too.
        out = send(sw, ports, from: 0, (0..<10).map { _ in frame(MAC.multicast, MAC.a) } + [frame(MAC.d, MAC.a)], now: t0 + second / 2)
        #expect(out[1].count == 5)
        sw.setFloodLimit(0, for: 0)
        #expect(send(sw, ports, from: 0, (0..<50).map { _ in frame(MAC.broadcast, MAC.a) }, now: t0 + second)[1].count == 50)
    }

    @Test func linkLocalGroupsAreNotForwarded() {
        let (sw, ports) = makeSwitch(ports: 3)
        for last: UInt64 in [0x00, 0x01, 0x02, 0x0e, 0x0f] {
            #expect(send(sw, ports, from: 0, [frame(0x0180_c200_0000 | last, MAC.a)]).allSatisfy { $0.isEmpty })
        }
        #expect(sw.counters(0)!.drops(.linkLocal) == 5)
        #expect(send(sw, ports, from: 0, [frame(0x0180_c200_0010, MAC.a)])[1].count == 1, "01:80:c2:00:00:10 is ordinary multicast")
    }

    @Test func randomBytesNeverCrash() {
        let (sw, ports) = makeSwitch(ports: 3)
        var rng = SplitMix64(seed: 42)
        var frames: [[UInt8]] = []
        for _ in 0..<5000 {
            let n = Int(rng.next() % 200)
            frames.append((0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
        send(sw, ports, from: 1, frames)
        let c = sw.counters(1)!
        #expect(c.rxPackets == 5000)
        let forwarded = ports[0].transmitted.count
        #expect(forwarded <= 5000)
    }

    @Test func countersAgreeWithTraffic() {
        let (sw, ports) = makeSwitch(ports: 2)
        let frames = (0..<100).map { frame(MAC.b, MAC.a, payload: 50 + $0) }
        send(sw, ports, from: 0, frames)
        let bytes = UInt64(frames.reduce(0) { $0 + $1.count })
        #expect(sw.counters(0)!.rxPackets == 100)
        #expect(sw.counters(0)!.rxBytes == bytes)
        #expect(sw.counters(1)!.txPackets == 100)
        #expect(sw.counters(1)!.txBytes == bytes)
    }

    @Test func floodUnknownOffDropsUnknownUnicastOnly() {
        var settings = LearningSwitch.Settings()
        settings.floodUnknown = false
        let (sw, ports) = makeSwitch(ports: 3, settings: settings)
        #expect(send(sw, ports, from: 0, [frame(MAC.b, MAC.a)]).allSatisfy { $0.isEmpty })
        #expect(sw.counters(0)!.drops(.unknownUnicast) == 1)
        #expect(!send(sw, ports, from: 1, [frame(MAC.broadcast, MAC.b)])[0].isEmpty)
        #expect(send(sw, ports, from: 1, [frame(MAC.a, MAC.b)])[0].count == 1)
    }

    @Test func ageingWithAVirtualClock() {
        var settings = LearningSwitch.Settings()
        settings.ageingTime = 10
        let (sw, ports) = makeSwitch(ports: 3, settings: settings)
        send(sw, ports, from: 0, [frame(MAC.broadcast, MAC.a)], now: 100 * second)
        #expect(sw.table.lookup(MACTable.key(mac: MAC.a, vlan: 0)) == 0)
        #expect(sw.sweep(now: 109 * second) == 0, "9 s old: kept")
        #expect(send(sw, ports, from: 1, [frame(MAC.a, MAC.b)], now: 109 * second)[0].count == 1)
        #expect(sw.sweep(now: 110 * second) == 1, "10 s old: aged out")
        #expect(sw.table.aged == 1)
        let out = send(sw, ports, from: 1, [frame(MAC.a, MAC.b)], now: 111 * second)
        #expect(out[0].count == 1 && out[2].count == 1, "unknown again: flooded")
    }

    @Test func refreshKeepsAnEntryAlive() {
        var settings = LearningSwitch.Settings()
        settings.ageingTime = 10
        let (sw, ports) = makeSwitch(ports: 2, settings: settings)
        for t in stride(from: 0, through: 50, by: 5) {
            send(sw, ports, from: 0, [frame(MAC.broadcast, MAC.a)], now: UInt64(t) * second)
            sw.sweep(now: UInt64(t) * second)
        }
        #expect(sw.table.count == 1)
    }

    @Test func detachForgetsThePortsMACs() {
        let (sw, ports) = makeSwitch(ports: 3)
        send(sw, ports, from: 2, [frame(MAC.broadcast, MAC.c)])
        #expect(sw.table.count == 1)
        #expect(sw.detach(2) === ports[2])
        #expect(sw.table.count == 0)
        let out = send(sw, ports, from: 0, [frame(MAC.c, MAC.a)])
        #expect(out[1].count == 1 && out[2].isEmpty)
        #expect(sw.attachedPorts == [0, 1])
    }

    @Test func macLimitRefusesNewButKeepsOld() {
        var settings = LearningSwitch.Settings()
        settings.maxMACs = 4
        let (sw, ports) = makeSwitch(ports: 2, settings: settings)
        let floods = (0..<1000).map { frame(MAC.broadcast, 0x02_00_00_10_00_00 + UInt64($0)) }
        send(sw, ports, from: 0, floods)
        #expect(sw.table.count == 4)
        #expect(sw.table.learnRefused == 996)
        // The known ones still work; a new host is flooded, not learned.
        #expect(send(sw, ports, from: 1, [frame(0x02_00_00_10_00_00, MAC.b)])[0].count == 1)
        #expect(sw.table.lookup(MACTable.key(mac: MAC.b, vlan: 0)) == -1)
    }

    @Test func transmitQueueFullIsCounted() {
        let (sw, ports) = makeSwitch(ports: 2)
        ports[1].transmitLimit = 10
        send(sw, ports, from: 0, (0..<30).map { _ in frame(MAC.broadcast, MAC.a) })
        #expect(sw.counters(1)!.txPackets == 10)
        #expect(sw.counters(1)!.drops(.transmitQueueFull) == 20)
        #expect(sw.counters(1)!.txDrops == 20)
    }
}


@Suite struct PortCounterTests {
    @Test func everyDropReasonHasItsOwnWord() {
        #expect(PortCounters.wordCount == 6 + DropReason.allCases.count, "rows are sized from the reasons")
        let c = PortCounters()
        for r in DropReason.allCases { c.drop(r, count: UInt64(r.rawValue + 1)) }
        for r in DropReason.allCases { #expect(c.drops(r) == UInt64(r.rawValue + 1), "\(r.name)") }
        #expect(c.rxPackets == 0 && c.txPackets == 0 && c.rxErrors == 0 && c.txErrors == 0, "drops stay in their words")
        #expect(Set(DropReason.allCases.map(\.name)).count == DropReason.allCases.count, "names are distinct")
    }

    @Test func portKindReasonsFollowTheSwitchsOwn() {
        let kinds = DropReason.allCases.map(\.isPortKindReason)
        #expect(kinds == kinds.sorted { !$0 && $1 }, "one block of the switch's reasons, then the port kinds'")
        #expect(DropReason.authenticationFailed.isPortKindReason && !DropReason.filtered.isPortKindReason)
    }

    @Test func snapshotsAreCopiesAndViewsAreNot() {
        let live = PortCounters()
        live.rxPackets = 5
        let view = live
        let copy = live.snapshot()
        live.drop(.filtered)
        #expect(view.drops(.filtered) == 1, "a view sees the row")
        #expect(copy.drops(.filtered) == 0 && copy.rxPackets == 5, "a snapshot does not")
        #expect(copy != live)
        copy.drop(.filtered)
        #expect(copy == live)
    }

    @Test func aSwitchHandsOutSnapshots() {
        let (sw, ports) = makeSwitch(ports: 2)
        _ = send(sw, ports, from: 0, [frame(MAC.broadcast, MAC.a)])
        let before = sw.counters(0)!
        _ = send(sw, ports, from: 0, [frame(MAC.broadcast, MAC.a)])
        #expect(before.rxPackets == 1 && sw.counters(0)!.rxPackets == 2)
    }
}
