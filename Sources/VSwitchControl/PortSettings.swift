/// A port's settings (`vswitchctl set-port BR PORT KEY=VALUE...`): impairments, learning,
/// isolation, limits, 802.1Q and the spanning tree's port parameters, as typed values.
///
/// One model for both ends. vswitchctl parses the user's `KEY=VALUE` pairs with `init(parsing:)`
/// and refuses a bad one before anything is sent; the wire and the state file carry the typed
/// value (`Codable`, below); vswitchd merges a change into the port's settings (`merging`),
/// checks the result (`validate`), and maps it to the core's values in one place
/// (`SwitchService+Settings`). `pairs` renders the settings back to `KEY=VALUE` for `show` and logs.
///
/// A nil field is a key that was never set (the core's default applies). Settings are what the
/// user set, not what follows from it: `tag=10` alone is kept as a tag, and the access mode it
/// implies is derived (`effectiveVLANMode`), so a later `trunks=20` makes a trunk with native VLAN
/// 10, as in ovs-vsctl.
///
/// Adding a setting: a field, its key in `keys`, a case in `parse`, `pairs` and `CodingKeys`, its
/// meaning in `SwitchService+Settings`, and Docs/control-protocol.md and the user guide.
public struct PortSettings: Sendable, Equatable {
    public enum VLANMode: String, Sendable, CaseIterable {
        case access, trunk
        /// In a change: remove the port's VLAN settings. Never kept in a port's settings.
        case none
    }

    public enum STPEdge: String, Sendable, CaseIterable {
        /// A port that hears no BPDU within 3 s becomes an edge port.
        case auto
        case on, off
    }

    /// Impairments of the frames the switch sends out of the port.
    public var delayMicroseconds: UInt32?
    public var jitterMicroseconds: UInt32?
    /// Loss probability in parts per million (0-1,000,000).
    public var lossPPM: UInt32?
    /// Bytes per second; 0 for no limit.
    public var rateBytesPerSecond: UInt64?
    public var learning: Bool?
    public var isolated: Bool?
    /// Most MACs learned on the port; 0 for no limit beyond the switch's.
    public var maxMACs: Int?
    /// Flooded frames per second accepted from the port; 0 for no limit.
    public var broadcastLimit: UInt64?
    public var vlanMode: VLANMode?
    /// The access VLAN, or a trunk's native VLAN (1-4094).
    public var tag: UInt16?
    /// A trunk's VLANs, sorted, without repeats.
    public var trunks: [UInt16]?
    public var stpCost: UInt32?
    public var stpPortPriority: UInt8?
    public var stpEdge: STPEdge?

    public init() {}

    /// The keys, in the order messages list them.
    public static let keys = ["delay", "jitter", "loss", "rate", "learning", "isolated", "max-macs", "broadcast-limit",
                              "vlan-mode", "tag", "trunks", "stp-cost", "stp-port-priority", "stp-edge"]

    /// The keys and their values, for `vswitchctl set-port --help`.
    public static let help = """
        Keys: delay=DURATION jitter=DURATION loss=PERCENT rate=RATE (impairments of the frames the switch sends out of PORT; \
        delay=0ms loss=0 rate=0 removes them), learning=on|off, isolated=on|off, max-macs=N, broadcast-limit=PPS, \
        vlan-mode=access|trunk|none, tag=N (access VLAN, or a trunk's native VLAN), trunks=10,20,30-39, \
        stp-cost=N (path cost, default 20000), stp-port-priority=N (0-240, steps of 16, default 128), \
        stp-edge=auto|on|off (auto: a port that hears no BPDU within 3 s becomes an edge port).
        """

    public var isEmpty: Bool { self == PortSettings() }

    // MARK: - Parsing

    /// Parses `KEY=VALUE` arguments as typed on a command line (a key given twice: the last wins).
    public init(arguments: [String]) throws(PortSettingError) {
        var pairs: [String: String] = [:]
        for argument in arguments {
            let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else { throw PortSettingError("expected KEY=VALUE, got \"\(argument)\"") }
            pairs[String(parts[0])] = String(parts[1])
        }
        try self.init(parsing: pairs)
    }

    /// Parses `KEY=VALUE` pairs, each key and value on its own (the first bad one, in key order,
    /// is reported). Rules between keys are `validate`'s, on the port's settings after a change.
    public init(parsing pairs: [String: String]) throws(PortSettingError) {
        self.init()
        for (key, value) in pairs.sorted(by: { $0.key < $1.key }) { try parse(key, value) }
    }

    private mutating func parse(_ key: String, _ value: String) throws(PortSettingError) {
        func fail(_ message: String) -> PortSettingError { PortSettingError(message) }
        switch key {
        case "delay", "jitter":
            guard case .success(let us) = ValueSyntax.duration(value) else { throw fail("invalid \(key) \(value) (a duration like 20ms, 500us or 1s)") }
            if key == "delay" { delayMicroseconds = us } else { jitterMicroseconds = us }
        case "loss":
            guard let pct = ValueSyntax.percent(value), (0...100).contains(pct) else { throw fail("invalid loss \(value) (a percentage, 0-100%)") }
            lossPPM = UInt32((pct * 10_000).rounded())
        case "rate":
            if value == "0" || value == "none" { rateBytesPerSecond = 0; return }
            guard case .success(let bps) = ValueSyntax.rate(value) else { throw fail("invalid rate \(value) (like 100mbit, 1gbit or 64kbps; 0 for none)") }
            rateBytesPerSecond = bps
        case "broadcast-limit":
            guard let n = UInt64(value), n <= 100_000_000 else { throw fail("invalid broadcast-limit \(value) (frames per second, 0 for none)") }
            broadcastLimit = n
        case "max-macs":
            guard let n = Int(value), (0...16_777_216).contains(n) else { throw fail("invalid max-macs \(value) (0-16777216; 0 for no port limit)") }
            maxMACs = n
        case "vlan-mode":
            switch value {
            case "access": vlanMode = .access
            case "trunk": vlanMode = .trunk
            case "none", "": vlanMode = VLANMode.none
            default: throw fail("invalid vlan-mode \(value) (access, trunk or none)")
            }
        case "tag":
            guard let v = UInt16(value), (1...4094).contains(v) else { throw fail("invalid tag \(value) (a VLAN, 1-4094)") }
            tag = v
        case "trunks":
            guard let list = ValueSyntax.vlanList(value) else { throw fail("invalid trunks \(value) (VLANs 1-4094, like 10,20,30-39)") }
            trunks = list
        case "stp-cost":
            guard let n = UInt32(value), (1...200_000_000).contains(n) else { throw fail("invalid stp-cost \(value) (1-200000000)") }
            stpCost = n
        case "stp-port-priority":
            guard let n = UInt8(value), n <= 240, n % 16 == 0 else { throw fail("invalid stp-port-priority \(value) (0-240, in steps of 16)") }
            stpPortPriority = n
        case "stp-edge":
            guard let edge = STPEdge(rawValue: value) else { throw fail("invalid stp-edge \(value) (auto, on or off)") }
            stpEdge = edge
        case "learning", "isolated":
            guard let on = ValueSyntax.boolean(value) else { throw fail("invalid \(key) \(value) (on or off)") }
            if key == "learning" { learning = on } else { isolated = on }
        default:
            throw fail("unknown port setting \(key) (known: \(Self.keys.joined(separator: ", ")))")
        }
    }

    // MARK: - Merging and checking

    /// The port's settings after `change`: each key the change sets replaces the port's. A new
    /// `vlan-mode` starts the VLAN settings afresh (`tag` and `trunks` it does not repeat go), and
    /// `vlan-mode=none` removes them all.
    public func merging(_ change: PortSettings) -> PortSettings {
        var m = self
        if let mode = change.vlanMode {
            m.tag = change.tag
            m.trunks = change.trunks
            m.vlanMode = mode == .none ? nil : mode
        }
        if let v = change.delayMicroseconds { m.delayMicroseconds = v }
        if let v = change.jitterMicroseconds { m.jitterMicroseconds = v }
        if let v = change.lossPPM { m.lossPPM = v }
        if let v = change.rateBytesPerSecond { m.rateBytesPerSecond = v }
        if let v = change.learning { m.learning = v }
        if let v = change.isolated { m.isolated = v }
        if let v = change.maxMACs { m.maxMACs = v }
        if let v = change.broadcastLimit { m.broadcastLimit = v }
        if let v = change.tag { m.tag = v }
        if let v = change.trunks { m.trunks = v }
        if let v = change.stpCost { m.stpCost = v }
        if let v = change.stpPortPriority { m.stpPortPriority = v }
        if let v = change.stpEdge { m.stpEdge = v }
        return m
    }

    /// The 802.1Q mode the settings give: `vlan-mode` if set; else, as in ovs-vsctl, a trunk list
    /// alone makes a trunk and a tag alone an access port.
    public var effectiveVLANMode: VLANMode {
        if let vlanMode { return vlanMode }
        if !(trunks ?? []).isEmpty { return .trunk }
        return tag != nil ? .access : .none
    }

    /// The rules between keys, on a port's settings (after a change is merged).
    public func validate() throws(PortSettingError) {
        if (jitterMicroseconds ?? 0) > (delayMicroseconds ?? 0) { throw PortSettingError("jitter must not exceed delay") }
        let hasTrunks = !(trunks ?? []).isEmpty
        switch effectiveVLANMode {
        case .access where tag == nil: throw PortSettingError("vlan-mode=access needs tag=N (the port's VLAN)")
        case .access where hasTrunks: throw PortSettingError("an access port carries one VLAN: use tag=N without trunks")
        case .trunk where !hasTrunks && tag == nil: throw PortSettingError("vlan-mode=trunk needs trunks=LIST (and tag=N for a native VLAN)")
        case .none where tag != nil || hasTrunks: throw PortSettingError("tag and trunks need vlan-mode access or trunk")
        default: break
        }
    }

    /// The rules between keys that a change decides alone, whatever the port had: the VLAN rules
    /// when it sets `vlan-mode` (which starts the VLAN settings afresh), the jitter rule when it
    /// sets both `delay` and `jitter`. vswitchctl checks these before sending.
    public func validateAsChange() throws(PortSettingError) {
        var alone = PortSettings().merging(self)
        if vlanMode == nil { alone.tag = nil; alone.trunks = nil }
        if delayMicroseconds == nil || jitterMicroseconds == nil { alone.delayMicroseconds = nil; alone.jitterMicroseconds = nil }
        try alone.validate()
    }

    // MARK: - Rendering

    /// The settings as `KEY=VALUE` pairs that parse back to them, in key order, in the units a
    /// person would write (`20ms`, `1%`, `100mbit`).
    public var pairs: [(key: String, value: String)] {
        var out: [(String, String)] = []
        func add(_ key: String, _ value: String?) { if let value { out.append((key, value)) } }
        add("delay", delayMicroseconds.map(Self.duration))
        add("jitter", jitterMicroseconds.map(Self.duration))
        add("loss", lossPPM.map(Self.percent))
        add("rate", rateBytesPerSecond.map(Self.rate))
        add("learning", learning.map { $0 ? "on" : "off" })
        add("isolated", isolated.map { $0 ? "on" : "off" })
        add("max-macs", maxMACs.map(String.init))
        add("broadcast-limit", broadcastLimit.map(String.init))
        add("vlan-mode", vlanMode?.rawValue)
        add("tag", tag.map(String.init))
        add("trunks", trunks.map(Self.vlanList))
        add("stp-cost", stpCost.map(String.init))
        add("stp-port-priority", stpPortPriority.map(String.init))
        add("stp-edge", stpEdge?.rawValue)
        return out.sorted { $0.0 < $1.0 }.map { (key: $0.0, value: $0.1) }
    }

    /// `pairs` as a dictionary (`show`'s `settings`); nil when nothing is set.
    public var dictionary: [String: String]? {
        isEmpty ? nil : Dictionary(uniqueKeysWithValues: pairs.map { ($0.key, $0.value) })
    }

    /// `pairs` as one line, `delay=20ms tag=10`.
    public var description: String { pairs.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }

    static func duration(_ us: UInt32) -> String {
        if us == 0 { return "0ms" }
        if us % 1_000_000 == 0 { return "\(us / 1_000_000)s" }
        if us % 1_000 == 0 { return "\(us / 1_000)ms" }
        return "\(us)us"
    }

    static func percent(_ ppm: UInt32) -> String {
        let whole = ppm / 10_000, fraction = ppm % 10_000
        guard fraction != 0 else { return "\(whole)%" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 4 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)%"
    }

    /// The shorter of the exact forms in bits and in bytes per second (`100mbit`, `64kbps`).
    static func rate(_ bytesPerSecond: UInt64) -> String {
        if bytesPerSecond == 0 { return "0" }
        func scaled(_ n: UInt64, _ unit: String) -> String {
            for (prefix, scale) in [("g", UInt64(1_000_000_000)), ("m", 1_000_000), ("k", 1_000)] where n % scale == 0 {
                return "\(n / scale)\(prefix)\(unit)"
            }
            return "\(n)\(unit)"
        }
        let bytes = scaled(bytesPerSecond, "bps")
        let (bits, overflow) = bytesPerSecond.multipliedReportingOverflow(by: 8)
        guard !overflow else { return bytes }
        let inBits = scaled(bits, "bit")
        return inBits.count <= bytes.count ? inBits : bytes
    }

    static func vlanList(_ vlans: [UInt16]) -> String {
        var runs: [String] = []
        var i = 0
        while i < vlans.count {
            var j = i
            while j + 1 < vlans.count, vlans[j + 1] == vlans[j] + 1 { j += 1 }
            runs.append(j == i ? "\(vlans[i])" : "\(vlans[i])-\(vlans[j])")
            i = j + 1
        }
        return runs.joined(separator: ",")
    }
}

extension PortSettings: CustomStringConvertible {}

/// A port setting that is not valid: the message names the key and says what it takes.
public struct PortSettingError: Error, Equatable, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

// MARK: - Encoding

/// On the wire (set-port's `settings`) and in the state file (each port's `settings`), typed:
/// `{"delay_us": 20000, "loss_ppm": 10000, "rate_bytes_per_second": 12500000, "learning": false,
/// "vlan_mode": "trunk", "tag": 10, "trunks": [10, 20], "stp_edge": "on", ...}` (snake_case keys,
/// as everywhere in the protocol). Decoding also takes the string map of `KEY=VALUE` pairs that
/// vswitchd wrote before the settings were typed (`{"delay": "20ms", "vlan-mode": "trunk"}`), so
/// old state files and old clients still work. Either way each value is checked as `parse`
/// checks it (same messages); an unknown key is refused, naming it.
extension PortSettings: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        // Raw values as JSONRPC's convertFromSnakeCase makes them of the snake_case keys.
        case delayMicroseconds = "delayUs", jitterMicroseconds = "jitterUs", lossPPM = "lossPpm", rateBytesPerSecond
        case learning, isolated, maxMACs = "maxMacs", broadcastLimit, vlanMode, tag, trunks, stpCost, stpPortPriority, stpEdge
    }

    /// The typed form's keys that are not also keys of the old string map, as sent and as
    /// converted from snake_case.
    static let typedOnlyKeys: Set<String> = {
        let camel = CodingKeys.allCases.map(\.stringValue).filter { !keys.contains($0) }
        let snake = camel.map { name in
            name.unicodeScalars.reduce(into: "") { out, c in
                if c.properties.isUppercase { out += "_" + String(c).lowercased() } else { out.unicodeScalars.append(c) }
            }
        }
        return Set(camel + snake)
    }()

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        // The string map of old state files and clients: all values strings, and no key of the
        // typed form that only it has (`vlan_mode: "trunk"` is typed, `vlan-mode: "trunk"` old).
        if let legacy = try? decoder.singleValueContainer().decode([String: String].self),
           !legacy.keys.contains(where: { Self.typedOnlyKeys.contains($0) }) {
            do { try self.init(parsing: legacy) } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
            }
            return
        }
        let known = Set(CodingKeys.allCases.map(\.stringValue))
        let any = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = any.allKeys.first(where: { !known.contains($0.stringValue) }) {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [unknown],
                                                    debugDescription: "unknown port setting (known: \(Self.keys.joined(separator: ", ")))"))
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        delayMicroseconds = try c.decodeIfPresent(UInt32.self, forKey: .delayMicroseconds)
        jitterMicroseconds = try c.decodeIfPresent(UInt32.self, forKey: .jitterMicroseconds)
        lossPPM = try c.decodeIfPresent(UInt32.self, forKey: .lossPPM)
        rateBytesPerSecond = try c.decodeIfPresent(UInt64.self, forKey: .rateBytesPerSecond)
        learning = try c.decodeIfPresent(Bool.self, forKey: .learning)
        isolated = try c.decodeIfPresent(Bool.self, forKey: .isolated)
        maxMACs = try c.decodeIfPresent(Int.self, forKey: .maxMACs)
        broadcastLimit = try c.decodeIfPresent(UInt64.self, forKey: .broadcastLimit)
        if let text = try c.decodeIfPresent(String.self, forKey: .vlanMode) {
            guard let mode = VLANMode(rawValue: text) else {
                throw DecodingError.dataCorruptedError(forKey: .vlanMode, in: c, debugDescription: "invalid vlan-mode \(text) (access, trunk or none)")
            }
            vlanMode = mode
        }
        tag = try c.decodeIfPresent(UInt16.self, forKey: .tag)
        trunks = try c.decodeIfPresent([UInt16].self, forKey: .trunks)
        stpCost = try c.decodeIfPresent(UInt32.self, forKey: .stpCost)
        stpPortPriority = try c.decodeIfPresent(UInt8.self, forKey: .stpPortPriority)
        if let text = try c.decodeIfPresent(String.self, forKey: .stpEdge) {
            guard let edge = STPEdge(rawValue: text) else {
                throw DecodingError.dataCorruptedError(forKey: .stpEdge, in: c, debugDescription: "invalid stp-edge \(text) (auto, on or off)")
            }
            stpEdge = edge
        }
        // Ranges: each value rendered is parsed as the command line's would be (same messages).
        do {
            self = try PortSettings(parsing: Dictionary(uniqueKeysWithValues: pairs.map { ($0.key, $0.value) }))
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(delayMicroseconds, forKey: .delayMicroseconds)
        try c.encodeIfPresent(jitterMicroseconds, forKey: .jitterMicroseconds)
        try c.encodeIfPresent(lossPPM, forKey: .lossPPM)
        try c.encodeIfPresent(rateBytesPerSecond, forKey: .rateBytesPerSecond)
        try c.encodeIfPresent(learning, forKey: .learning)
        try c.encodeIfPresent(isolated, forKey: .isolated)
        try c.encodeIfPresent(maxMACs, forKey: .maxMACs)
        try c.encodeIfPresent(broadcastLimit, forKey: .broadcastLimit)
        try c.encodeIfPresent(vlanMode?.rawValue, forKey: .vlanMode)
        try c.encodeIfPresent(tag, forKey: .tag)
        try c.encodeIfPresent(trunks, forKey: .trunks)
        try c.encodeIfPresent(stpCost, forKey: .stpCost)
        try c.encodeIfPresent(stpPortPriority, forKey: .stpPortPriority)
        try c.encodeIfPresent(stpEdge?.rawValue, forKey: .stpEdge)
    }
}
