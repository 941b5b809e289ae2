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
        #expect(t.entries.count == model.count)
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
