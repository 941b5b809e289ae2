// vswitch-bench: drives the learning switch over in-memory ports, for Tools/bench.
//
//   vswitch-bench [--macs N] [--frames N] [--batches N] [--general] [--check-allocations]
//   vswitch-bench --handshakes N
//
// Two ports forward through the dedicated two-port path; --general forces the general path.
//
// Pre-learns N MACs (half behind each of two ports), pre-builds `--batches` batches of 64
// 64-byte frames between random hosts of the two halves, then forwards `--frames` frames
// (process + flush) and prints frames per second. Run under callgrind twice with different
// --frames and the difference of the instruction totals divided by the difference of frames
// gives instructions per frame (Tools/bench does this).
//
// --handshakes N: N complete secure-tunnel handshakes between two engines in memory (initiation,
// response, confirming keepalive; both sides' work, Curve25519 included), and the time each took.
#if canImport(Glibc)
import Glibc
#endif
import CMallocCounter
import VSwitchCore
import VSwitchTesting
import VSwitchTunnel

var macs = 1000, frames = 10_000_000, batchCount = 1024, checkAllocations = false, general = false
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--macs": macs = Int(args.popFirst() ?? "") ?? macs
    case "--frames": frames = Int(args.popFirst() ?? "") ?? frames
    case "--batches": batchCount = Int(args.popFirst() ?? "") ?? batchCount
    case "--check-allocations": checkAllocations = true
    case "--general": general = true
    case "--handshakes": measureHandshakes(Int(args.popFirst() ?? "") ?? 1000); exit(0)
    default:
        print("usage: vswitch-bench [--macs N] [--frames N] [--batches N] [--general] [--check-allocations]")
        exit(2)
    }
}

/// Times `count` handshakes between two secure engines that pass messages in memory.
func measureHandshakes(_ count: Int) {
    let ka = SecurePrivateKey.generate(), kb = SecurePrivateKey.generate()
    let addresses = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 2)
    let lengths = UnsafeMutablePointer<UInt32>.allocate(capacity: 2)
    for i in 0..<2 {
        addresses[i] = sockaddr_storage()
        (addresses + i).withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
            $0.pointee.sin_family = sa_family_t(AF_INET)
            $0.pointee.sin_port = UInt16(4789).bigEndian
            $0.pointee.sin_addr.s_addr = (UInt32(0xC612_0001) + UInt32(i)).bigEndian
        }
        lengths[i] = 16
    }
    // a's peer (b) sits at addresses[1], b's peer (a) at addresses[0].
    let a = SecureTunnel(configuration: SecureConfiguration(privateKey: ka, peers: [kb.publicKey]), endpoints: addresses + 1, endpointLengths: lengths + 1)
    let b = SecureTunnel(configuration: SecureConfiguration(privateKey: kb, peers: [ka.publicKey]), endpoints: addresses, endpointLengths: lengths)
    let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
    func pass(_ from: SecureTunnel, to: SecureTunnel, source: UnsafePointer<sockaddr_storage>, now: UInt64) -> Int {
        let n = from.outboxCount
        for i in 0..<n {
            _ = to.open(datagram: from.outboxMessage(i).bytes, from: source, sourceLength: 16, now: now, into: frame, frameHasHeadroom: false)
        }
        from.clearOutbox()
        return n
    }
    let start = seconds()
    var completed = 0
    for i in 0..<count {
        // Each round a fresh handshake: 6 s apart on the engines' clock (past the rekey timeout).
        let now = UInt64(i + 1) * 6_000_000_000
        a.start(now: now)
        var moved = 1
        while moved > 0 { moved = pass(a, to: b, source: addresses, now: now) + pass(b, to: a, source: addresses + 1, now: now) }
        if a.status(now: now)[0].sinceHandshake == 0 { completed += 1 }
    }
    let elapsed = seconds() - start
    print("handshakes: \(completed) of \(count) completed, \(String(format: "%.1f", elapsed / Double(count) * 1e6)) µs each (both sides)")
    print("RESULT handshake us \(String(format: "%.1f", elapsed / Double(count) * 1e6))")
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
