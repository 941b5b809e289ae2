#if canImport(Glibc)
import Glibc
#endif
import Yams

// Reading a lab file: Yams composes a Node tree (with line marks), walked here by hand so that every
// problem names its line and field. The first problem found is thrown as a LabFileError: first the shape
// of the file in file order (types, keys, values), then references between its parts (switch and node
// names, interface names, route devices).

extension LabTopology {
    /// Reads and validates the lab file at `path`.
    public static func load(path: String) throws -> LabTopology {
        try parse(yaml: readText(path), file: path)
    }

    /// Validates lab `yaml`; `file` names it in errors and in `LabTopology.file`.
    public static func parse(yaml: String, file: String) throws -> LabTopology {
        try LabFileParser(file: file, text: yaml).topology()
    }

    private static func readText(_ path: String) throws -> String {
        func failure(_ code: Int32) -> LabFileError {
            LabFileError(file: path, line: 0, field: "", message: "cannot read lab file \(path): \(String(cString: strerror(code)))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(errno)
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            guard bytes.count <= 16 << 20 else {
                throw LabFileError(file: path, line: 0, field: "", message: "lab file \(path) is larger than 16 MiB")
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw LabFileError(file: path, line: 0, field: "", message: "lab file \(path) is not UTF-8 text")
        }
        return text
    }
}

/// One key of a mapping, with the lines of the key and of its value.
private struct Entry {
    var key: String
    var keyLine: Int
    var value: Node
    var field: String
}

private struct ParsedLink {
    var index: Int
    var field: String
    var line: Int
    var switchName: String?
    var switchLine = 0
    var peerNode: String?
    var peerLine = 0
    var addresses: [String] = []
    var peerAddresses: [String] = []
    var name: String?
    var nameLine = 0
    var peerName: String?
    var peerNameLine = 0
    var mtu: Int?
    var mac: String?
    var impairment: LabImpairment?
    var vlan: Int?
}

private struct ParsedRoute {
    var field: String
    var line: Int
    var route: LabRoute
    var family: LabValues.Family?
    var deviceLine = 0
}

private struct ParsedNode {
    var name: String
    var field: String
    var line: Int
    var links: [ParsedLink] = []
    var routes: [ParsedRoute] = []
}

private struct LabFileParser {
    let file: String
    let text: String

    static let topKeys = ["name", "daemon", "socket", "switches", "nodes"]
    static let switchKeys = ["ageing-time", "max-macs", "flood-unknown"]
    static let nodeKeys = ["links", "routes"]
    static let linkKeys = ["switch", "node", "addr", "peer-addr", "name", "peer-name", "mtu", "mac",
                           "delay", "jitter", "loss", "rate", "vlan"]
    static let routeKeys = ["to", "via", "dev"]

    func fail(_ line: Int, _ field: String, _ message: String) -> LabFileError {
        LabFileError(file: file, line: line, field: field, message: message)
    }

    // MARK: The file

    func topology() throws -> LabTopology {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw fail(1, "", "the file is empty: a lab needs at least `name:` and `nodes:`")
            }
            root = node
        } catch let error as YamlError {
            throw yamlFailure(error)
        }
        guard case .mapping = root else {
            throw fail(line(root), "", "a lab file must be a mapping of keys (name, switches, nodes, ...), not \(describe(root))")
        }
        let entries = try mapping(root, field: "")
        try checkKeys(entries, allowed: Self.topKeys, what: "lab")

        guard let nameEntry = entries.first(where: { $0.key == "name" }) else {
            throw fail(line(root), "name", "missing: every lab needs a name (like `name: demo`)")
        }
        let name = try scalar(nameEntry)
        guard LabNames.isValidLabOrNodeName(name) else {
            throw fail(line(nameEntry.value), "name",
                       "\(quoted(name)) is not a valid lab name (1-8 characters of a-z, 0-9 and '-', starting with a letter)")
        }

        var daemon = LabDaemon.own
        if let entry = entries.first(where: { $0.key == "daemon" }) {
            switch try scalar(entry) {
            case "own": daemon = .own
            case "shared": daemon = .shared(socket: nil)
            case let other: throw fail(line(entry.value), "daemon", "\(quoted(other)) is neither `own` nor `shared`")
            }
        }
        if let entry = entries.first(where: { $0.key == "socket" }) {
            guard daemon != .own else {
                throw fail(entry.keyLine, "socket", "a socket is only for `daemon: shared` (an own daemon uses its own socket)")
            }
            let socket = try scalar(entry)
            guard !socket.isEmpty, socket.utf8.count <= 107, !socket.utf8.contains(0) else {
                throw fail(line(entry.value), "socket", "\(quoted(socket)) is not a socket path (1-107 bytes)")
            }
            daemon = .shared(socket: socket)
        }

        var switches: [LabSwitch] = []
        if let entry = entries.first(where: { $0.key == "switches" }) {
            switches = try parseSwitches(entry)
        }
        guard let nodesEntry = entries.first(where: { $0.key == "nodes" }) else {
            throw fail(line(root), "nodes", "missing: a lab needs `nodes:` (a mapping of node names, may be {})")
        }
        let nodes = try parseNodes(nodesEntry)
        return try resolve(name: name, daemon: daemon, switches: switches, nodes: nodes)
    }

    private func yamlFailure(_ error: YamlError) -> LabFileError {
        func message(_ context: YamlError.Context?, _ problem: String, _ mark: Mark) -> LabFileError {
            var text = "not valid YAML: \(problem)"
            if let context { text += " (\(context.text) at line \(context.mark.line))" }
            let lines = self.text.split(separator: "\n", omittingEmptySubsequences: false)
            if mark.line >= 1, mark.line <= lines.count, lines[mark.line - 1].contains("\t") {
                text += "; the line has a tab: YAML indents with spaces only"
            }
            return fail(mark.line, "", text)
        }
        switch error {
        case let .composer(_, problem, mark, _) where problem == "but found another document":
            return fail(mark.line, "", "not valid YAML for a lab: a second document starts here (a lab file holds one)")
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return message(context, problem, mark)
        case let .reader(problem, offset, _, yaml):
            let line = offset.map { o in 1 + yaml.prefix(o).reduce(0) { $0 + ($1 == "\n" ? 1 : 0) } } ?? 1
            return fail(line, "", "not valid YAML text: \(problem)")
        default:
            return fail(1, "", "not valid YAML: \(error)")
        }
    }

    // MARK: Switches

    private func parseSwitches(_ entry: Entry) throws -> [LabSwitch] {
        var result: [LabSwitch] = []
        for sw in try mapping(entry.value, field: entry.field, nullIsEmpty: true) {
            guard LabNames.isValidSwitchName(sw.key) else {
                throw fail(sw.keyLine, sw.field, "\(quoted(sw.key)) is not a valid switch name (1-15 characters of a-z, 0-9 and '-')")
            }
            var item = LabSwitch(name: sw.key)
            let settings = try mapping(sw.value, field: sw.field, nullIsEmpty: true)
            try checkKeys(settings, allowed: Self.switchKeys, what: "switch")
            for setting in settings {
                let value = try scalar(setting)
                switch setting.key {
                case "ageing-time":
                    item.ageingTime = try integer(value, setting, in: 1...1_000_000, unit: "seconds")
                case "max-macs":
                    item.maxMacs = try integer(value, setting, in: 1...16_777_216, unit: "MAC addresses")
                default:
                    guard let on = LabValues.boolean(value) else {
                        throw fail(line(setting.value), setting.field, "\(quoted(value)) is neither on nor off")
                    }
                    item.floodUnknown = on
                }
            }
            result.append(item)
        }
        return result.sorted { $0.name < $1.name }
    }

    // MARK: Nodes

    private func parseNodes(_ entry: Entry) throws -> [ParsedNode] {
        var result: [ParsedNode] = []
        for item in try mapping(entry.value, field: entry.field, nullIsEmpty: true) {
            guard LabNames.isValidLabOrNodeName(item.key) else {
                throw fail(item.keyLine, item.field,
                           "\(quoted(item.key)) is not a valid node name (1-8 characters of a-z, 0-9 and '-', starting with a letter)")
            }
            var node = ParsedNode(name: item.key, field: item.field, line: item.keyLine)
            let parts = try mapping(item.value, field: item.field, nullIsEmpty: true)
            try checkKeys(parts, allowed: Self.nodeKeys, what: "node")
            for part in parts {
                let elements = try sequence(part)
                for (index, element) in elements.enumerated() {
                    let field = "\(part.field)[\(index)]"
                    if part.key == "links" {
                        node.links.append(try parseLink(element, index: index, field: field))
                    } else {
                        node.routes.append(try parseRoute(element, field: field))
                    }
                }
            }
            result.append(node)
        }
        return result
    }

    private func parseLink(_ node: Node, index: Int, field: String) throws -> ParsedLink {
        guard case .mapping = node else {
            throw fail(line(node), field, "a link must be a mapping (like `{ switch: sw1, addr: 198.18.0.1/24 }`), not \(describe(node))")
        }
        var link = ParsedLink(index: index, field: field, line: line(node))
        let entries = try mapping(node, field: field)
        try checkKeys(entries, allowed: Self.linkKeys, what: "link")
        var delay: (UInt32, Entry)?, jitter: (UInt32, Entry)?
        var loss: Double?, rate: UInt64?
        for entry in entries {
            switch entry.key {
            case "addr", "peer-addr":
                let addresses = try cidrs(entry)
                if entry.key == "addr" { link.addresses = addresses } else { link.peerAddresses = addresses }
                continue
            default: break
            }
            let value = try scalar(entry)
            let valueLine = line(entry.value)
            switch entry.key {
            case "switch":
                link.switchName = value; link.switchLine = valueLine
            case "node":
                link.peerNode = value; link.peerLine = valueLine
            case "name", "peer-name":
                guard LabNames.isValidInterfaceName(value) else {
                    throw fail(valueLine, entry.field,
                               "\(quoted(value)) is not a valid interface name (1-15 bytes of printable ASCII, no '/', ':' or space; not lo)")
                }
                if entry.key == "name" { link.name = value; link.nameLine = valueLine }
                else { link.peerName = value; link.peerNameLine = valueLine }
            case "mtu":
                link.mtu = try integer(value, entry, in: 68...65_521, unit: "bytes")
            case "vlan":
                link.vlan = try integer(value, entry, in: 1...4094, unit: "(a VLAN)")
            case "mac":
                guard let mac = LabValues.unicastMAC(value) else {
                    throw fail(valueLine, entry.field, "\(quoted(value)) is not a unicast MAC address (like 02:00:00:00:00:01)")
                }
                link.mac = mac
            case "delay", "jitter":
                switch LabValues.duration(value) {
                case .success(let micros):
                    if entry.key == "delay" { delay = (micros, entry) } else { jitter = (micros, entry) }
                case .failure(.syntax):
                    throw fail(valueLine, entry.field, "\(quoted(value)) is not a duration (a number with us, ms or s, like 20ms)")
                case .failure(.notWhole):
                    throw fail(valueLine, entry.field, "\(quoted(value)) is not a whole number of microseconds")
                case .failure(.tooLarge):
                    throw fail(valueLine, entry.field, "\(quoted(value)) is too long (at most 4294s)")
                }
            case "loss":
                guard let percent = LabValues.percent(value) else {
                    throw fail(valueLine, entry.field, "\(quoted(value)) is not a percentage (a number 0-100 with an optional %, like 10%)")
                }
                guard (0...100).contains(percent) else {
                    throw fail(valueLine, entry.field, "\(quoted(value)) is out of range (0-100%)")
                }
                loss = percent
            case "rate":
                switch LabValues.rate(value) {
                case .success(let bytes): rate = bytes
                case .failure(.syntax):
                    throw fail(valueLine, entry.field,
                               "\(quoted(value)) is not a rate (a number with bit, kbit, mbit, gbit or bps, kbps, mbps, gbps, like 100mbit)")
                case .failure(.zero):
                    throw fail(valueLine, entry.field, "\(quoted(value)) is less than one byte per second")
                case .failure(.tooLarge):
                    throw fail(valueLine, entry.field, "\(quoted(value)) is too large")
                }
            default:
                break
            }
        }
        switch (link.switchName, link.peerNode) {
        case (nil, nil):
            throw fail(link.line, field, "a link needs `switch:` (a port of a switch) or `node:` (a veth pair to another node)")
        case (.some, .some):
            let entry = entries.first { $0.key == "node" }!
            throw fail(entry.keyLine, entry.field, "a link has either `switch:` or `node:`, not both")
        case (nil, .some):
            if let entry = entries.first(where: { $0.key == "vlan" }) {
                throw fail(entry.keyLine, entry.field, "`vlan` is only for switch links (`switch:`), not veth links")
            }
        case (.some, nil):
            for key in ["peer-addr", "peer-name"] {
                if let entry = entries.first(where: { $0.key == key }) {
                    throw fail(entry.keyLine, entry.field, "`\(key)` is only for veth links (`node:`), not switch links")
                }
            }
        }
        if let (_, entry) = jitter, delay == nil {
            throw fail(entry.keyLine, entry.field, "jitter needs a delay (add `delay:` to this link)")
        }
        if delay != nil || jitter != nil || loss != nil || rate != nil {
            link.impairment = LabImpairment(delayMicroseconds: delay?.0, jitterMicroseconds: jitter?.0,
                                            lossPercent: loss, rateBytesPerSecond: rate)
        }
        return link
    }

    private func parseRoute(_ node: Node, field: String) throws -> ParsedRoute {
        guard case .mapping = node else {
            throw fail(line(node), field, "a route must be a mapping (like `{ to: default, via: 198.18.0.254 }`), not \(describe(node))")
        }
        let entries = try mapping(node, field: field)
        try checkKeys(entries, allowed: Self.routeKeys, what: "route")
        guard let to = entries.first(where: { $0.key == "to" }) else {
            throw fail(line(node), "\(field).to", "missing: a route needs `to:` (default or a network like 198.19.0.0/24)")
        }
        var parsed = ParsedRoute(field: field, line: line(node), route: LabRoute(destination: try scalar(to)))
        if parsed.route.destination != "default" {
            guard let cidr = LabValues.cidr(parsed.route.destination) else {
                throw fail(line(to.value), to.field,
                           "\(quoted(parsed.route.destination)) is neither default nor a network with a prefix length (like 198.19.0.0/24)")
            }
            guard LabValues.hostBitsAreZero(cidr.bytes, prefix: cidr.prefix) else {
                throw fail(line(to.value), to.field,
                           "\(quoted(parsed.route.destination)) has host bits set: a route goes to a network (like 198.19.0.0/24)")
            }
            parsed.family = cidr.family
        }
        if let via = entries.first(where: { $0.key == "via" }) {
            let gateway = try scalar(via)
            guard let address = LabValues.address(gateway) else {
                throw fail(line(via.value), via.field, "\(quoted(gateway)) is not an address (like 198.18.0.254, no prefix length)")
            }
            if let family = parsed.family, family != address.family {
                throw fail(line(via.value), via.field, "gateway \(gateway) is not of the same family as \(parsed.route.destination)")
            }
            parsed.route.gateway = gateway
        }
        if let dev = entries.first(where: { $0.key == "dev" }) {
            parsed.route.device = try scalar(dev)
            parsed.deviceLine = line(dev.value)
        }
        guard parsed.route.gateway != nil || parsed.route.device != nil else {
            throw fail(parsed.line, field, "a route needs `via:` (a gateway), `dev:` (an interface of the node) or both")
        }
        return parsed
    }

    // MARK: References and derived names

    private func resolve(name lab: String, daemon: LabDaemon, switches: [LabSwitch],
                         nodes parsed: [ParsedNode]) throws -> LabTopology {
        let switchNames = Set(switches.map(\.name))
        let nodeNames = Set(parsed.map(\.name))
        /// Unordered node pair -> where its veth link was declared (to refuse a declaration from the other side).
        var pairs: [String: (from: String, field: String, line: Int)] = [:]
        /// Interface name -> where it was taken.
        var taken: [String: (field: String, line: Int)] = [:]
        var arriving: [String: Int] = [:]
        var peerInterfaces: [String: [String]] = [:]
        var nodes: [LabNode] = []

        func take(_ interface: String, field: String, line: Int) throws {
            if let previous = taken[interface] {
                throw fail(line, field, "interface name \(quoted(interface)) is already used by \(previous.field) (line \(previous.line)); "
                           + "interface names are unique across the lab, as they name switch ports too")
            }
            taken[interface] = (field, line)
        }

        for node in parsed {
            var links: [LabLink] = []
            for link in node.links {
                let interface = link.name ?? LabNames.linkInterface(lab: lab, node: node.name, index: link.index)
                if link.name == nil, interface.utf8.count > LabNames.maxInterfaceLength {
                    throw fail(link.line, link.field, "the derived interface name \(quoted(interface)) is \(interface.utf8.count) bytes, "
                               + "more than \(LabNames.maxInterfaceLength): use a shorter lab or node name, or give the link a `name:`")
                }
                try take(interface, field: link.name == nil ? link.field : "\(link.field).name",
                         line: link.name == nil ? link.line : link.nameLine)
                let kind: LabLink.Kind
                if let sw = link.switchName {
                    guard switchNames.contains(sw) else {
                        let known = switches.isEmpty ? "no switches are declared" : "declared: " + switches.map(\.name).joined(separator: ", ")
                        throw fail(link.switchLine, "\(link.field).switch", "no switch named \(quoted(sw)) under `switches:` (\(known))")
                    }
                    kind = .switchPort(switch: sw)
                } else {
                    let peer = link.peerNode!
                    let peerField = "\(link.field).node"
                    guard peer != node.name else {
                        throw fail(link.peerLine, peerField, "a veth link cannot join node \(node.name) to itself")
                    }
                    guard nodeNames.contains(peer) else {
                        throw fail(link.peerLine, peerField, "no node named \(quoted(peer)) (nodes: \(parsed.map(\.name).joined(separator: ", ")))")
                    }
                    let key = [node.name, peer].sorted().joined(separator: " ")
                    if let previous = pairs[key], previous.from != node.name {
                        throw fail(link.peerLine, peerField, "the veth pair between \(previous.from) and \(node.name) is already declared "
                                   + "at \(previous.field) (line \(previous.line)); declare a pair on one side only (with `peer-addr:` for the other end)")
                    }
                    if pairs[key] == nil { pairs[key] = (node.name, link.field, link.line) }
                    let k = arriving[peer, default: 0]
                    arriving[peer] = k + 1
                    let peerInterface = link.peerName ?? LabNames.peerInterface(lab: lab, peer: peer, k: k)
                    if link.peerName == nil, peerInterface.utf8.count > LabNames.maxInterfaceLength {
                        throw fail(link.line, link.field, "the derived peer interface name \(quoted(peerInterface)) (in node \(peer)) is "
                                   + "\(peerInterface.utf8.count) bytes, more than \(LabNames.maxInterfaceLength): use a shorter lab or node name, "
                                   + "or give the link a `peer-name:`")
                    }
                    try take(peerInterface, field: link.peerName == nil ? link.field : "\(link.field).peer-name",
                             line: link.peerName == nil ? link.line : link.peerNameLine)
                    peerInterfaces[peer, default: []].append(peerInterface)
                    kind = .veth(peerNode: peer, peerAddresses: link.peerAddresses, peerInterface: peerInterface)
                }
                links.append(LabLink(kind: kind, interface: interface, addresses: link.addresses, mtu: link.mtu,
                                     mac: link.mac, impairment: link.impairment, vlan: link.vlan, line: link.line))
            }
            nodes.append(LabNode(name: node.name, namespace: LabNames.namespace(lab: lab, node: node.name),
                                 links: links, routes: node.routes.map(\.route)))
        }

        // Routes last: a route's device may be the end of a veth pair declared by a later node.
        for (node, parsedNode) in zip(nodes, parsed) {
            let interfaces = Set(node.links.map(\.interface) + peerInterfaces[node.name, default: []])
            var destinations: [String: ParsedRoute] = [:]
            for route in parsedNode.routes {
                if let device = route.route.device, !interfaces.contains(device) {
                    let known = interfaces.isEmpty ? "it has none" : "it has " + interfaces.sorted().joined(separator: ", ")
                    throw fail(route.deviceLine, "\(route.field).dev", "node \(node.name) has no interface \(quoted(device)) (\(known))")
                }
                let family = route.family.map { "\($0)" } ?? (route.route.gateway.flatMap { LabValues.address($0)?.family }).map { "\($0)" } ?? "ipv4"
                let key = "\(family) \(route.route.destination)"
                if let previous = destinations[key] {
                    throw fail(route.line, "\(route.field).to", "a route to \(route.route.destination) is already declared at "
                               + "\(previous.field) (line \(previous.line))")
                }
                destinations[key] = route
            }
        }
        return LabTopology(name: lab, daemon: daemon, switches: switches, nodes: nodes, file: file)
    }

    // MARK: Node helpers

    private func line(_ node: Node) -> Int { node.mark?.line ?? 0 }

    private func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    private func describe(_ node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar(let scalar): isNull(node) ? "an empty value" : "the value \(quoted(scalar.string))"
        }
    }

    private func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 32 || scalar.value == 127: out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// The entries of mapping `node` (null is an empty mapping when `nullIsEmpty`); refuses non-scalar and
    /// duplicate keys.
    private func mapping(_ node: Node, field: String, nullIsEmpty: Bool = false) throws -> [Entry] {
        if nullIsEmpty, isNull(node) { return [] }
        guard case .mapping(let mapping) = node else {
            throw fail(line(node), field, "must be a mapping (`key: value` lines or `{ key: value }`), not \(describe(node))")
        }
        var result: [Entry] = []
        var seen: [String: Int] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                throw fail(line(key), field, "keys must be plain names, not \(describe(key))")
            }
            let name = scalar.string
            let path = field.isEmpty ? name : "\(field).\(name)"
            if let first = seen[name] {
                throw fail(line(key), path, "duplicate key \(quoted(name)) (first at line \(first))")
            }
            seen[name] = line(key)
            result.append(Entry(key: name, keyLine: line(key), value: value, field: path))
        }
        return result
    }

    private func checkKeys(_ entries: [Entry], allowed: [String], what: String) throws {
        for entry in entries where !allowed.contains(entry.key) {
            throw fail(entry.keyLine, entry.field, "unknown \(what) key \(quoted(entry.key)) (known: \(allowed.joined(separator: ", ")))")
        }
    }

    /// The text of a single non-empty value.
    private func scalar(_ entry: Entry) throws -> String {
        guard case .scalar(let scalar) = entry.value, !isNull(entry.value) else {
            throw fail(isNull(entry.value) ? entry.keyLine : line(entry.value), entry.field,
                       "needs a single value, not \(describe(entry.value))")
        }
        return scalar.string
    }

    /// The elements of a list (null: none).
    private func sequence(_ entry: Entry) throws -> [Node] {
        if isNull(entry.value) { return [] }
        guard case .sequence(let sequence) = entry.value else {
            throw fail(line(entry.value), entry.field, "must be a list (`- item` lines or `[ ... ]`), not \(describe(entry.value))")
        }
        return Array(sequence)
    }

    private func integer(_ text: String, _ entry: Entry, in range: ClosedRange<Int>, unit: String) throws -> Int {
        guard let value = LabValues.wholeNumber(text), range.contains(value) else {
            throw fail(line(entry.value), entry.field, "\(quoted(text)) is not a whole number from \(range.lowerBound) to \(range.upperBound) (\(unit))")
        }
        return value
    }

    /// `addr:` or `peer-addr:`: one CIDR or a list of them.
    private func cidrs(_ entry: Entry) throws -> [String] {
        let items: [(Node, String)]
        switch entry.value {
        case .sequence(let sequence):
            items = sequence.enumerated().map { ($1, "\(entry.field)[\($0)]") }
        default:
            items = [(entry.value, entry.field)]
        }
        var result: [String] = []
        for (node, field) in items {
            guard case .scalar(let scalar) = node, !isNull(node) else {
                throw fail(isNull(node) ? entry.keyLine : line(node), field,
                           "needs an address with a prefix length (like 198.18.0.1/24), not \(describe(node))")
            }
            let text = scalar.string
            guard LabValues.cidr(text) != nil else {
                throw fail(line(node), field, "\(quoted(text)) is not an address with a prefix length (like 198.18.0.1/24)")
            }
            if result.contains(text) {
                throw fail(line(node), field, "\(quoted(text)) is listed twice")
            }
            result.append(text)
        }
        return result
    }
}
