// Every name a lab derives, in one place. The builder must use these, never rebuild the strings.

/// Name rules and derived names of a lab.
///
/// - namespace of node N in lab L: "L-N" (at most 8 + 1 + 8 = 17 bytes).
/// - a node's link at position i in its `links:` list, without `name:`: "LNe<i>" ("demoh1e0"). For a
///   switch link that is both the TAP port name in vswitchd and the interface name in the node.
/// - the peer end of a veth link toward node P, without `peer-name:`: "LPp<k>", k counting the veth links
///   arriving at P (0, 1, ...) in file order.
///
/// Interface names (derived or explicit) must be 1-15 bytes and are unique across the whole lab.
public enum LabNames {
    /// Longest interface name the kernel takes (IFNAMSIZ 16 with the NUL).
    public static let maxInterfaceLength = 15
    /// Longest lab and node name.
    public static let maxLabLength = 8
    public static let maxNodeLength = 8
    /// Longest switch name.
    public static let maxSwitchLength = 15

    /// The network namespace of `node`.
    public static func namespace(lab: String, node: String) -> String { "\(lab)-\(node)" }

    /// The derived name of `node`'s link at position `index` of its list.
    public static func linkInterface(lab: String, node: String, index: Int) -> String { "\(lab)\(node)e\(index)" }

    /// The derived name of the `k`-th veth end arriving at node `peer`.
    public static func peerInterface(lab: String, peer: String, k: Int) -> String { "\(lab)\(peer)p\(k)" }

    /// Lab and node names: [a-z0-9-], 1-8 characters, starting with a letter.
    public static func isValidLabOrNodeName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...maxLabLength).contains(bytes.count), let first = bytes.first, isLower(first) else { return false }
        return bytes.allSatisfy { isLower($0) || isDigit($0) || $0 == UInt8(ascii: "-") }
    }

    /// Switch names: [a-z0-9-], 1-15 characters.
    public static func isValidSwitchName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...maxSwitchLength).contains(bytes.count) else { return false }
        return bytes.allSatisfy { isLower($0) || isDigit($0) || $0 == UInt8(ascii: "-") }
    }

    /// Explicit interface names: 1-15 bytes of printable ASCII without '/', ':' or spaces; not ".", "..", "lo".
    public static func isValidInterfaceName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...maxInterfaceLength).contains(bytes.count), name != ".", name != "..", name != "lo" else { return false }
        return bytes.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") }
    }

    private static func isLower(_ b: UInt8) -> Bool { b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") }
    private static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
}
