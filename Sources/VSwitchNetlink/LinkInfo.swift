/// One network interface as the kernel reports it (`ip -s link show`).
public struct LinkInfo: Sendable, Equatable, CustomStringConvertible {
    public var ifindex: Int32
    public var name: String
    /// The rtnetlink kind ("veth", "bridge", "tun", ...), nil for physical devices and loopback.
    public var kind: String?
    /// The hardware address: 6 bytes for Ethernet-like links, empty for links without one.
    public var mac: [UInt8]
    public var mtu: Int
    /// IFF_* flags (net/if.h).
    public var flags: UInt32
    public var rxPackets: UInt64
    public var rxBytes: UInt64
    public var rxDrops: UInt64
    public var txPackets: UInt64
    public var txBytes: UInt64
    public var txDrops: UInt64

    /// Administratively up (IFF_UP).
    public var isUp: Bool { flags & LinkFlags.up != 0 }
    /// Operationally up (IFF_RUNNING): for a veth, both ends are up.
    public var isRunning: Bool { flags & LinkFlags.running != 0 }
    /// "aa:bb:cc:dd:ee:ff", or "" for links without a hardware address.
    public var macString: String { LinkInfo.format(mac: mac) }

    public var description: String {
        "\(ifindex): \(name)\(kind.map { " (\($0))" } ?? "") \(macString) mtu \(mtu) \(isUp ? "up" : "down")"
    }

    static func format(mac: [UInt8]) -> String {
        let digits: [Character] = Array("0123456789abcdef")
        return mac.map { String([digits[Int($0 >> 4)], digits[Int($0 & 15)]]) }.joined(separator: ":")
    }

    /// Parses "aa:bb:cc:dd:ee:ff" (hex, either case) into 6 bytes.
    public static func parse(mac text: String) -> [UInt8]? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}

/// IFF_* values (net/if.h imports them as Int, and ambiguously when linux/if.h is also visible).
enum LinkFlags {
    static let up: UInt32 = 0x1
    static let running: UInt32 = 0x40
}
