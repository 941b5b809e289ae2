// Helpers that build frames for the table-driven switch tests.
import VSwitchCore
import VSwitchTesting

enum MAC {
    static let a: UInt64 = 0x02_00_00_00_00_0a
    static let b: UInt64 = 0x02_00_00_00_00_0b
    static let c: UInt64 = 0x02_00_00_00_00_0c
    static let d: UInt64 = 0x02_00_00_00_00_0d
    static let broadcast: UInt64 = 0xff_ff_ff_ff_ff_ff
    static let multicast: UInt64 = 0x01_00_5e_00_00_01
}

func bytes(of mac: UInt64) -> [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: mac >> (40 - 8 * UInt64($0))) } }

/// An Ethernet II frame dst, src, type, with `payload` bytes of a recognisable pattern.
func frame(_ dst: UInt64, _ src: UInt64, type: UInt16 = 0x88B5, payload: Int = 46, tag: UInt8 = 0) -> [UInt8] {
    bytes(of: dst) + bytes(of: src) + [UInt8(type >> 8), UInt8(type & 0xff)] + [UInt8](repeating: tag, count: payload)
}

/// A switch with `count` in-memory ports named p0, p1, ...
func makeSwitch(ports count: Int, settings: LearningSwitch.Settings = .init()) -> (LearningSwitch, [MemoryPort]) {
    let sw = LearningSwitch(settings: settings, batchCapacity: 64)
    let ports = (0..<count).map { MemoryPort(name: "p\($0)") }
    for p in ports { _ = sw.attach(p) }
    return (sw, ports)
}

let second: UInt64 = 1_000_000_000

/// Sends `frames` into port `from` at `now` and returns what each port transmitted.
@discardableResult
func send(_ sw: LearningSwitch, _ ports: [MemoryPort], from: Int, _ frames: [[UInt8]], now: UInt64 = 0) -> [[[UInt8]]] {
    let batch = PacketBatch(capacity: 64)
    for f in frames { ports[from].inject(f) }
    while !ports[from].pending.isEmpty { _ = sw.poll(from, batch: batch, now: now) }
    return ports.map { $0.takeTransmitted() }
}
