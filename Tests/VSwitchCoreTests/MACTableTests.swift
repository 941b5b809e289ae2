import Testing
import VSwitchCore
import VSwitchTesting

@Suite struct MACTableTests {
    @Test func learnLookupMoveRemove() {
        let t = MACTable(limit: 100, seed: 7)
        let k = MACTable.key(mac: 0x0200_0000_0001, vlan: 5)
        #expect(t.lookup(k) == -1)
        #expect(t.learn(k, port: 3, now: 1) == .learned)
        #expect(t.learn(k, port: 3, now: 2) == .refreshed)
        #expect(t.learn(k, port: 4, now: 3) == .moved)
        #expect(t.lookup(k) == 4)
        #expect(t.lookup(MACTable.key(mac: 0x0200_0000_0001, vlan: 6)) == -1, "VLAN is part of the key")
        #expect(t.remove(k))
        #expect(t.count == 0 && t.lookup(k) == -1)
    }

    @Test func staticEntriesNeverAgeNorMove() {
        let t = MACTable(limit: 10)
        let k = MACTable.key(mac: 0x0200_0000_0002, vlan: 0)
        #expect(t.addStatic(k, port: 1))
        #expect(t.learn(k, port: 2, now: 5) == .staticConflict)
        #expect(t.lookup(k) == 1)
        #expect(t.sweep(now: 100_000, ageingTime: 1) == 0)
        #expect(t.flush() == 0, "flush keeps static entries")
        #expect(t.flush(includingStatic: true) == 1)
    }

    /// Heavy churn against a model: deletion by backward shift must keep every entry findable.
    @Test func churnMatchesAModel() {
        let t = MACTable(limit: 512, seed: 99)
        var model: [UInt64: Int] = [:]
        var rng = SplitMix64(seed: 1)
        for step in 0..<50_000 {
            let k = MACTable.key(mac: 0x0200_0000_0000 | (rng.next() % 700), vlan: UInt16(rng.next() % 2))
            if rng.next() % 3 == 0 {
                #expect(t.remove(k) == (model.removeValue(forKey: k) != nil))
            } else {
                let r = t.learn(k, port: step % 7, now: 0)
                if r != .refused { model[k] = step % 7 } else { #expect(model.count == 512) }
            }
        }
        #expect(t.count == model.count)
        for (k, p) in model { #expect(t.lookup(k) == p) }
        for p in 0..<7 { #expect(t.count(on: p) == model.values.filter { $0 == p }.count, "per-port count of \(p)") }
        #expect(t.entries.count == model.count)
    }

    @Test func aMACMovingBackAndForthIsFlaggedOnce() {
        let t = MACTable(limit: 100)
        let k = MACTable.key(mac: 0x0200_0000_0042, vlan: 7)
        t.learn(k, port: 1, now: 100)
        for i in 0..<8 { t.learn(k, port: i % 2 == 0 ? 2 : 1, now: 100 + UInt32(i)) }  // 8 moves in 8 s
        #expect(t.moved == 8)
        #expect(t.flapping == 1)
        #expect(t.isFlapping(k, now: 108))
        let events = t.takeMoveEvents()
        #expect(events.count == 1 && events[0].mac == 0x0200_0000_0042 && events[0].vlan == 7 && events[0].moves == 6)
        #expect(t.takeMoveEvents().isEmpty, "each event is handed over once")
        #expect(!t.isFlapping(k, now: 111), "the window has passed")
        // Slow moves (one per window) never flag.
        let slow = MACTable.key(mac: 0x0200_0000_0043, vlan: 0)
        for i in 0..<20 { t.learn(slow, port: 1 + i % 2, now: 200 + UInt32(i) * 11) }
        #expect(t.flapping == 1)
    }

    @Test func perPortLimit() {
        let t = MACTable(limit: 100, portCount: 4)
        t.setLimit(3, for: 1)
        let keys = (0..<10).map { MACTable.key(mac: 0x0200_0000_1000 + UInt64($0), vlan: 0) }
        for k in keys { t.learn(k, port: 1, now: 0) }
        #expect(t.count(on: 1) == 3 && t.count == 3 && t.learnRefused == 7)
        // Other ports are not limited, and a MAC cannot move onto the full port.
        for k in keys[3...] { #expect(t.learn(k, port: 2, now: 0) == .learned) }
        #expect(t.learn(keys[5], port: 1, now: 0) == .refused)
        #expect(t.lookup(keys[5]) == 2)
        // Ageing frees room again; a static entry counts too.
        t.remove(keys[0])
        #expect(t.count(on: 1) == 2)
        #expect(t.addStatic(MACTable.key(mac: 0x0200_0000_2000, vlan: 0), port: 1))
        #expect(t.count(on: 1) == 3)
        #expect(t.learn(keys[5], port: 1, now: 0) == .refused)
        t.setLimit(0, for: 1)
        #expect(t.learn(keys[5], port: 1, now: 0) == .moved)
        #expect(t.count(on: 1) == 4 && t.count(on: 2) == 6)
    }

    @Test func sweepAgesOnlyOldLearnedEntries() {
        let t = MACTable(limit: 1000)
        for i in 0..<300 { t.learn(MACTable.key(mac: 0x0200_0000_0000 + UInt64(i), vlan: 0), port: 0, now: UInt32(i)) }
        #expect(t.sweep(now: 400, ageingTime: 200) == 201)  // entries 0...200 are >= 200 s old
        #expect(t.count == 99)
        #expect(t.aged == 201)
        for i in 201..<300 { #expect(t.lookup(MACTable.key(mac: 0x0200_0000_0000 + UInt64(i), vlan: 0)) == 0) }
    }
}

@Suite struct DelayLineTests {
    @Test func framesLeaveAfterTheirDelayInOrder() {
        let line = DelayLine(capacity: 4096, impairment: Impairment(delayNanoseconds: 20_000_000))
        for i in 0..<5 {
            let bytes = [UInt8](repeating: UInt8(i), count: 100 + i)
            #expect(bytes.withUnsafeBytes { line.enqueue($0.baseAddress!, length: $0.count, offloadLength: 0, now: UInt64(i) * 1_000_000) })
        }
        #expect(line.nextDeparture == 20_000_000)
        var out: [[UInt8]] = []
        line.dequeue(now: 19_999_999) { p, n, _ in out.append(Array(UnsafeRawBufferPointer(start: p, count: n))) }
        #expect(out.isEmpty)
        line.dequeue(now: 22_000_000) { p, n, _ in out.append(Array(UnsafeRawBufferPointer(start: p, count: n))) }
        #expect(out.count == 3 && out.map(\.count) == [100, 101, 102] && out[2].allSatisfy { $0 == 2 })
        line.dequeue(now: 100_000_000) { p, n, _ in out.append(Array(UnsafeRawBufferPointer(start: p, count: n))) }
        #expect(out.count == 5 && line.count == 0 && line.nextDeparture == nil)
    }

    @Test func ringWrapsAndRefusesWhenFull() {
        let line = DelayLine(capacity: 1024, impairment: Impairment(delayNanoseconds: 1))
        let frame = [UInt8](repeating: 7, count: 200)
        var accepted = 0, delivered = 0
        for round in 0..<50 {
            while frame.withUnsafeBytes({ line.enqueue($0.baseAddress!, length: 200, offloadLength: 10, now: UInt64(round)) }) { accepted += 1 }
            #expect(line.count > 0 && line.count <= 4)
            delivered += line.dequeue(now: UInt64(round) + 10) { p, n, off in
                #expect(n == 200 && off == 10 && p.load(fromByteOffset: 199, as: UInt8.self) == 7)
            }
        }
        #expect(accepted == delivered && accepted > 100)
    }

    @Test func rateSpacesDepartures() {
        // 1,000,000 bytes/s: a 1,000-byte frame takes 1 ms.
        let line = DelayLine(capacity: 1 << 16, impairment: Impairment(rateBytesPerSecond: 1_000_000))
        let frame = [UInt8](repeating: 0, count: 1000)
        for _ in 0..<10 { _ = frame.withUnsafeBytes { line.enqueue($0.baseAddress!, length: 1000, offloadLength: 0, now: 0) } }
        #expect(line.dequeue(now: 5_000_000) { _, _, _ in } == 5)
    }

    @Test func lossDropsAboutTheRightShare() {
        let line = DelayLine(capacity: 1024, impairment: Impairment(lossPPM: 250_000))
        let lost = (0..<100_000).filter { _ in line.dropsNext() }.count
        #expect(lost > 24_000 && lost < 26_000)
        line.impairment = Impairment(lossPPM: 1_000_000)
        #expect((0..<1000).allSatisfy { _ in line.dropsNext() })
    }
}
