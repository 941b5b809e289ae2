import VSwitchWire

/// IP address -> MAC address for the hosts a TUN port talks to, in one fixed allocation.
///
/// Small on purpose: a TUN host usually talks to a handful of neighbours on the switch, so 64
/// entries searched linearly (a remembered last hit first) cost less than hashing would, and
/// never grow. An entry lives `lifetime` (5 minutes, like OVS's and Linux's stale timers in
/// spirit) after it was last confirmed; an expired entry is as good as absent. When the table is
/// full, the least recently confirmed entry makes room.
final class NeighbourTable {
    let capacity: Int
    let lifetime: UInt64
    /// Keys: IPv6 addresses, IPv4 ones IPv4-mapped.
    private let addresses: UnsafeMutablePointer<IPv6Address>
    /// MAC per entry; 0 marks a free slot (the zero MAC is never learned).
    private let macs: UnsafeMutablePointer<UInt64>
    private let confirmed: UnsafeMutablePointer<UInt64>
    private var lastHit = 0

    init(capacity: Int = 64, lifetime: UInt64 = 300_000_000_000) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.lifetime = lifetime
        addresses = .allocate(capacity: capacity)
        addresses.initialize(repeating: .unspecified, count: capacity)
        macs = .allocate(capacity: capacity)
        macs.initialize(repeating: 0, count: capacity)
        confirmed = .allocate(capacity: capacity)
        confirmed.initialize(repeating: 0, count: capacity)
    }

    deinit {
        addresses.deallocate()
        macs.deallocate()
        confirmed.deallocate()
    }

    @inline(__always)
    private func isLive(_ slot: Int, now: UInt64) -> Bool {
        macs[slot] != 0 && now &- confirmed[slot] < lifetime
    }

    @inline(__always)
    private func slot(of address: IPv6Address) -> Int? {
        if macs[lastHit] != 0 && addresses[lastHit] == address { return lastHit }
        for slot in 0..<capacity where macs[slot] != 0 && addresses[slot] == address {
            lastHit = slot
            return slot
        }
        return nil
    }

    /// The MAC of `address`, if known and not expired.
    @inline(__always)
    func lookup(_ address: IPv6Address, now: UInt64) -> MACAddress? {
        guard let slot = slot(of: address), isLive(slot, now: now) else { return nil }
        return MACAddress(rawValue: macs[slot])
    }

    /// Whether `address` has a live entry.
    func contains(_ address: IPv6Address, now: UInt64) -> Bool { lookup(address, now: now) != nil }

    /// Records (or confirms) `address` at `mac`.
    func learn(_ address: IPv6Address, at mac: MACAddress, now: UInt64) {
        guard !mac.isZero else { return }
        var target = slot(of: address)
        if target == nil {
            // A free slot, else an expired one, else the one confirmed longest ago.
            var oldest = 0
            for slot in 0..<capacity {
                if !isLive(slot, now: now) { target = slot; break }
                if confirmed[slot] < confirmed[oldest] { oldest = slot }
            }
            target = target ?? oldest
        }
        let slot = target!
        addresses[slot] = address
        macs[slot] = mac.rawValue
        confirmed[slot] = now
        lastHit = slot
    }

    /// Live entries, for diagnostics and tests (allocates).
    func entries(now: UInt64) -> [(address: IPv6Address, mac: MACAddress)] {
        (0..<capacity).filter { isLive($0, now: now) }.map { (addresses[$0], MACAddress(rawValue: macs[$0])) }
    }
}
