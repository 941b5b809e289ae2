extension LabTopology {
    /// YAML text of a benchmark lab named `name`: `nodes` nodes "n1"... spread over ceil(nodes/perSwitch)
    /// switches "sw1"... (perSwitch nodes each, in order), node i (1-based) with one switch link and the
    /// address number i in 198.18.0.0/15 (198.18.0.1/16, 198.18.0.2/16, ... 198.18.255.255/16,
    /// 198.19.0.0/16, ...), so at most 131070 nodes.
    ///
    /// Derived interface names are "<name>n<i>e0": keep `name` short for large labs (parsing says so).
    public static func generated(name: String, nodes: Int, perSwitch: Int) -> String {
        precondition(nodes >= 0 && nodes <= 131_070, "generated labs hold 0-131070 nodes")
        precondition(perSwitch >= 1, "perSwitch must be at least 1")
        let switchCount = (nodes + perSwitch - 1) / perSwitch
        var out = "# Generated benchmark lab: \(nodes) nodes on \(switchCount) switches (\(perSwitch) per switch).\n"
        out += "name: \(name)\n"
        out += switchCount == 0 ? "switches: {}\n" : "switches:\n"
        for s in 0..<switchCount { out += "  sw\(s + 1): {}\n" }
        out += nodes == 0 ? "nodes: {}\n" : "nodes:\n"
        for i in 1...max(nodes, 1) where nodes > 0 {
            let address = 0xC612_0000 + UInt32(i)  // 198.18.0.0 + i
            let octets = [24, 16, 8, 0].map { String((address >> UInt32($0)) & 0xff) }.joined(separator: ".")
            out += "  n\(i): { links: [ { switch: sw\((i - 1) / perSwitch + 1), addr: \(octets)/16 } ] }\n"
        }
        return out
    }
}
