// vswitch-bench: drives the learning switch over in-memory ports, for Tools/bench.
//
//   vswitch-bench [--macs N] [--frames N] [--batches N] [--general] [--check-allocations]
//
// Two ports forward through the dedicated two-port path; --general forces the general path.
//
// Pre-learns N MACs (half behind each of two ports), pre-builds `--batches` batches of 64
// 64-byte frames between random hosts of the two halves, then forwards `--frames` frames
// (process + flush) and prints frames per second. Run under callgrind twice with different
// --frames and the difference of the instruction totals divided by the difference of frames
// gives instructions per frame (Tools/bench does this).
#if canImport(Glibc)
import Glibc
#endif
import CMallocCounter
import VSwitchCore
import VSwitchTesting

var macs = 1000, frames = 10_000_000, batchCount = 1024, checkAllocations = false, general = false
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--macs": macs = Int(args.popFirst() ?? "") ?? macs
    case "--frames": frames = Int(args.popFirst() ?? "") ?? frames
    case "--batches": batchCount = Int(args.popFirst() ?? "") ?? batchCount
    case "--check-allocations": checkAllocations = true
    case "--general": general = true
    default:
        print("usage: vswitch-bench [--macs N] [--frames N] [--batches N] [--general] [--check-allocations]")
        exit(2)
    }
}

let traffic = TrafficPattern(hosts: macs, batchCount: batchCount)
let sw = traffic.makeSwitch(twoPortPath: !general)
let batches = traffic.batches
let perBatch = batches[0].capacity
let rounds = frames / perBatch

func seconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

if checkAllocations { vswitch_malloc_counter_enable(1) }
let start = seconds()
var b = 0
for r in 0..<rounds {
    let batch = batches[b]
    sw.process(batch, from: 0, now: UInt64(r))
    sw.flush(batch)
    b += 1
    if b == batches.count { b = 0 }
}
let elapsed = seconds() - start
let allocations = vswitch_malloc_count()
vswitch_malloc_counter_enable(0)

let forwarded = sw.counters(1)!.txPackets
func fixed(_ x: Double, _ digits: Int) -> String {
    let scale = Double((0..<digits).reduce(1) { r, _ in r * 10 })
    let v = (x * scale).rounded() / scale
    return "\(v)"
}
print("macs \(macs) frames \(rounds * perBatch) forwarded \(forwarded) seconds \(fixed(elapsed, 3)) Mfps \(fixed(Double(rounds * perBatch) / elapsed / 1e6, 2))")
if checkAllocations {
    print("allocations \(allocations)")
    if allocations != 0 { exit(1) }
}
