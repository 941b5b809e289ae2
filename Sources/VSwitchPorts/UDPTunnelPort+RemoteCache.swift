#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import VSwitchCore
import VSwitchSystem
import VSwitchTunnel
import VSwitchWire

/// The MAC -> remote cache of a multipoint tunnel: a fixed direct-mapped table (4,096 slots), so
/// a flood of random MACs costs no memory; entries age with the switch's `ageing-time`.
extension UDPTunnelPort {
    // MARK: - MAC -> remote

    @inline(__always)
    static func slot(_ mac: UInt64) -> Int {
        Int(truncatingIfNeeded: (mac &* 0x9E37_79B9_7F4A_7C15) >> 52)  // top 12 bits: 4096 slots
    }

    @inline(__always)
    func remember(_ mac: UInt64, at remote: Int, now: UInt32) {
        let s = Self.slot(mac)
        cacheMACs[s] = mac
        cacheRemotes[s] = Int32(remote)
        cacheSeen[s] = now
    }

    /// A topology change: which remote each MAC sits behind is learned again.
    public func forgetLearned() {
        for s in 0..<Self.cacheSlots { cacheRemotes[s] = -1 }
    }

    /// The remote `mac` was last seen behind, if known and fresh.
    @inline(__always)
    func remote(of mac: UInt64, now: UInt32) -> Int? {
        let s = Self.slot(mac)
        guard cacheMACs[s] == mac, cacheRemotes[s] >= 0, now &- cacheSeen[s] <= ageingSeconds else { return nil }
        return Int(cacheRemotes[s])
    }
}
