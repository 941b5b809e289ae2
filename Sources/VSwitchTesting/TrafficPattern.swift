import VSwitchCore

/// Pre-built batches of 64-byte frames between two groups of hosts, for benchmarks and allocation
/// checks: `hosts` MACs in all, half behind port 0 and half behind port 1, every frame from a
/// random host of the first half to a random host of the second. Batches use small buffers
/// (256 bytes) so that many distinct frames fit in memory.
public final class TrafficPattern {
    public let batches: [PacketBatch]
    public let hosts: Int
    private let pool: PacketPool

    public static func mac(_ i: Int) -> UInt64 { 0x0200_0000_0000 | UInt64(i) }

    public init(hosts: Int, batchCount: Int, batchCapacity: Int = 64, seed: UInt64 = 42) {
        precondition(hosts >= 2)
        self.hosts = hosts
        let pool = PacketPool(bufferCount: batchCount * batchCapacity, bufferSize: 256, headroom: 64)
        self.pool = pool
        var rng = SplitMix64(seed: seed)
        func next() -> UInt64 { rng.next() }
        let half = hosts / 2
        var frame = [UInt8](repeating: 0, count: 64)
        frame[12] = 0x08; frame[13] = 0x00
        batches = (0..<batchCount).map { _ in
            let batch = pool.makeBatch(capacity: batchCapacity)!
            for _ in 0..<batchCapacity {
                let src = Self.mac(Int(next() % UInt64(half)))
                let dst = Self.mac(half + Int(next() % UInt64(hosts - half)))
                for b in 0..<6 {
                    frame[b] = UInt8(truncatingIfNeeded: dst >> (40 - 8 * UInt64(b)))
                    frame[6 + b] = UInt8(truncatingIfNeeded: src >> (40 - 8 * UInt64(b)))
                }
                batch.append(frame)
            }
            return batch
        }
    }

    /// A switch with a sink on port 0 and port 1 and every host already learned on its side.
    public func makeSwitch(batchCapacity: Int = 64, twoPortPath: Bool = true) -> LearningSwitch {
        var settings = LearningSwitch.Settings()
        settings.maxMACs = max(hosts, 1)
        settings.twoPortPath = twoPortPath
        let sw = LearningSwitch(settings: settings, batchCapacity: batchCapacity)
        _ = sw.attach(DiscardPort(name: "p0"))
        _ = sw.attach(DiscardPort(name: "p1"))
        let half = hosts / 2
        for i in 0..<hosts { sw.table.learn(MACTable.key(mac: Self.mac(i), vlan: 0), port: i < half ? 0 : 1, now: 0) }
        return sw
    }
}
