import CMallocCounter
import Testing
import VSwitchCore
import VSwitchTesting

/// The packet path allocates nothing per frame. A release build allocates nothing at all
/// (`vswitch-bench --check-allocations`, run by Tools/test); a debug build, which these tests
/// use, spends at most a couple of allocations per batch on unoptimised generic code, never one
/// per frame.
@Suite struct AllocationTests {
    @Test func forwardingAllocatesNothingPerFrame() {
        let traffic = TrafficPattern(hosts: 1000, batchCount: 64)
        let sw = traffic.makeSwitch()
        // Some unknown destinations too, so the flood path runs.
        _ = sw.attach(DiscardPort(name: "p2"))
        sw.table.flush(port: 1)
        func pass() {
            for (i, batch) in traffic.batches.enumerated() {
                sw.process(batch, from: 0, now: UInt64(i) * 1_000_000)
                sw.flush(batch)
            }
        }
        pass()  // warm up
        let passes = 20
        vswitch_malloc_counter_enable(1)
        let before = vswitch_malloc_count()
        for _ in 0..<passes { pass() }
        let allocations = vswitch_malloc_count() - before
        vswitch_malloc_counter_enable(0)
        let batches = UInt64(passes * traffic.batches.count)
        let frames = batches * 64
        #expect(allocations <= 2 * batches, "\(allocations) allocations for \(batches) batches of \(frames) frames")
        #expect(sw.counters(0)!.rxPackets == UInt64(passes + 1) * 64 * 64)
        #expect(sw.counters(2)!.txPackets > 0, "the flood path ran")
    }
}
