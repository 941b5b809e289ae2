import Testing
@testable import VSwitchLab

/// One bad file: where the error must point and words its message must contain.
struct BadLab: CustomStringConvertible, Sendable {
    var label: String
    var yaml: String
    var line: Int
    var field: String
    var message: [String]
    var description: String { label }

    init(_ label: String, _ yaml: String, line: Int, field: String, _ message: String...) {
        self.label = label; self.yaml = yaml; self.line = line; self.field = field; self.message = message
    }
}

/// A valid head the cases build on: lines 1-3.
private let head = "name: demo\nswitches: { sw1: {} }\nnodes:\n"

@Suite struct LabFileErrorTests {
    static let cases: [BadLab] = [
        // The file as a whole.
        BadLab("empty", "", line: 1, field: "", "empty"),
        BadLab("comments only", "# nothing\n", line: 1, field: "", "empty"),
        BadLab("a list", "- name: demo\n", line: 1, field: "", "must be a mapping", "a list"),
        BadLab("a scalar", "just text\n", line: 1, field: "", "must be a mapping", "\"just text\""),
        BadLab("tab indent", "name: demo\nnodes:\n\th1: {}\n", line: 3, field: "", "not valid YAML", "tab"),
        BadLab("unclosed flow", "name: demo\nnodes: { h1: {\n", line: 3, field: "", "not valid YAML"),
        BadLab("bad indentation", "name: demo\nnodes:\n  h1: {}\n   h2: {}\n", line: 4, field: "", "not valid YAML"),
        BadLab("two documents", "name: a\nnodes: {}\n---\nname: b\n", line: 3, field: "", "not valid YAML", "second document"),

        // Top-level keys.
        BadLab("missing name", "switches: {}\nnodes: {}\n", line: 1, field: "name", "missing"),
        BadLab("empty name", "name:\nnodes: {}\n", line: 1, field: "name", "needs a single value"),
        BadLab("name with capitals", "name: Demo\nnodes: {}\n", line: 1, field: "name", "\"Demo\"", "not a valid lab name"),
        BadLab("name too long", "name: abcdefghi\nnodes: {}\n", line: 1, field: "name", "1-8 characters"),
        BadLab("name is a list", "name: [a]\nnodes: {}\n", line: 1, field: "name", "not a list"),
        BadLab("missing nodes", "name: demo\n", line: 1, field: "nodes", "missing"),
        BadLab("unknown top key", "name: demo\nswtiches: {}\nnodes: {}\n", line: 2, field: "swtiches",
               "unknown lab key \"swtiches\"", "known: name, daemon, socket, switches, nodes"),
        BadLab("duplicate top key", "name: demo\nnodes: {}\nname: other\n", line: 3, field: "name", "duplicate key", "line 1"),
        BadLab("bad daemon", "name: demo\ndaemon: mine\nnodes: {}\n", line: 2, field: "daemon", "\"mine\"", "own", "shared"),
        BadLab("socket with own daemon", "name: demo\nsocket: /tmp/s\nnodes: {}\n", line: 2, field: "socket", "daemon: shared"),
        BadLab("nodes is a list", "name: demo\nnodes:\n  - h1\n", line: 3, field: "nodes", "must be a mapping", "a list"),

        // Switches.
        BadLab("bad switch name", "name: demo\nswitches:\n  Sw1: {}\nnodes: {}\n", line: 3, field: "switches.Sw1", "not a valid switch name"),
        BadLab("duplicate switch", "name: demo\nswitches:\n  sw1: {}\n  sw1: {}\nnodes: {}\n", line: 4, field: "switches.sw1",
               "duplicate key \"sw1\"", "first at line 3"),
        BadLab("unknown switch key", "name: demo\nswitches:\n  sw1: { ageing: 3 }\nnodes: {}\n", line: 3, field: "switches.sw1.ageing",
               "unknown switch key", "ageing-time"),
        BadLab("ageing-time zero", "name: demo\nswitches:\n  sw1: { ageing-time: 0 }\nnodes: {}\n", line: 3,
               field: "switches.sw1.ageing-time", "\"0\"", "1 to 1000000"),
        BadLab("max-macs too many", "name: demo\nswitches:\n  sw1:\n    max-macs: 16777217\nnodes: {}\n", line: 4,
               field: "switches.sw1.max-macs", "1 to 16777216"),
        BadLab("flood-unknown maybe", "name: demo\nswitches:\n  sw1: { flood-unknown: maybe }\nnodes: {}\n", line: 3,
               field: "switches.sw1.flood-unknown", "neither on nor off"),

        // Nodes.
        BadLab("node name starts with digit", head + "  1h: {}\n", line: 4, field: "nodes.1h", "not a valid node name"),
        BadLab("duplicate node", head + "  h1: {}\n  h1: {}\n", line: 5, field: "nodes.h1", "duplicate key"),
        BadLab("unknown node key", head + "  h1:\n    link: []\n", line: 5, field: "nodes.h1.link", "unknown node key", "links, routes"),
        BadLab("vlan out of range", head + "  h1:\n    links:\n      - { switch: sw1, vlan: 4095 }\n", line: 6,
               field: "nodes.h1.links[0].vlan", "\"4095\"", "1 to 4094"),
        BadLab("vlan on a veth", head + "  h1:\n    links:\n      - { node: h2, vlan: 10 }\n  h2: {}\n", line: 6,
               field: "nodes.h1.links[0].vlan", "only for switch links"),
        BadLab("links not a list", head + "  h1:\n    links: { switch: sw1 }\n", line: 5, field: "nodes.h1.links", "must be a list"),
        BadLab("link is a scalar", head + "  h1:\n    links: [ sw1 ]\n", line: 5, field: "nodes.h1.links[0]", "a link must be a mapping"),

        // Links.
        BadLab("bad CIDR", head + "  h1:\n    links:\n      - { switch: sw1, addr: 198.18.0.300/24 }\n", line: 6,
               field: "nodes.h1.links[0].addr", "\"198.18.0.300/24\" is not an address with a prefix length (like 198.18.0.1/24)"),
        BadLab("CIDR without prefix", head + "  h1:\n    links:\n      - { switch: sw1, addr: 198.18.0.1 }\n", line: 6,
               field: "nodes.h1.links[0].addr", "not an address with a prefix length"),
        BadLab("IPv4 prefix 33", head + "  h1:\n    links:\n      - { switch: sw1, addr: 198.18.0.1/33 }\n", line: 6,
               field: "nodes.h1.links[0].addr", "\"198.18.0.1/33\""),
        BadLab("bad CIDR in a list", head + "  h1:\n    links:\n      - switch: sw1\n        addr:\n          - 2001:2::1/64\n          - 2001:2::g/64\n",
               line: 9, field: "nodes.h1.links[0].addr[1]", "\"2001:2::g/64\""),
        BadLab("same address twice", head + "  h1:\n    links:\n      - { switch: sw1, addr: [198.18.0.1/24, 198.18.0.1/24] }\n",
               line: 6, field: "nodes.h1.links[0].addr[1]", "listed twice"),
        BadLab("unknown link key", head + "  h1:\n    links:\n      - switch: sw1\n        adr: 198.18.0.1/24\n", line: 7,
               field: "nodes.h1.links[0].adr", "unknown link key \"adr\""),
        BadLab("link without switch or node", head + "  h1:\n    links:\n      - { addr: 198.18.0.1/24 }\n", line: 6,
               field: "nodes.h1.links[0]", "needs `switch:`", "`node:`"),
        BadLab("link with switch and node", head + "  h1:\n    links:\n      - { switch: sw1, node: h2 }\n  h2: {}\n", line: 6,
               field: "nodes.h1.links[0].node", "not both"),
        BadLab("unknown switch", head + "  h1:\n    links:\n      - { switch: sw9 }\n", line: 6,
               field: "nodes.h1.links[0].switch", "no switch named \"sw9\"", "declared: sw1"),
        BadLab("unknown node", head + "  h1:\n    links:\n      - { node: r9 }\n", line: 6,
               field: "nodes.h1.links[0].node", "no node named \"r9\"", "nodes: h1"),
        BadLab("self veth", head + "  h1:\n    links:\n      - { switch: sw1 }\n      - { node: h1 }\n", line: 7,
               field: "nodes.h1.links[1].node", "cannot join node h1 to itself"),
        BadLab("veth from both sides", head + "  h1:\n    links: [ { node: r1 } ]\n  r1:\n    links:\n      - { node: h1 }\n", line: 8,
               field: "nodes.r1.links[0].node", "between h1 and r1", "already declared at nodes.h1.links[0] (line 5)", "one side only"),
        BadLab("peer-addr on a switch link", head + "  h1:\n    links:\n      - { switch: sw1, peer-addr: 198.18.0.2/24 }\n", line: 6,
               field: "nodes.h1.links[0].peer-addr", "only for veth links"),
        BadLab("duplicate interface name", head + "  h1:\n    links:\n      - { switch: sw1, name: eth0 }\n  h2:\n    links:\n      - switch: sw1\n        name: eth0\n",
               line: 10, field: "nodes.h2.links[0].name", "\"eth0\" is already used by nodes.h1.links[0].name (line 6)", "unique across the lab"),
        BadLab("explicit name equals a derived one", head + "  h1:\n    links:\n      - { switch: sw1 }\n      - { switch: sw1, name: demoh1e0 }\n",
               line: 7, field: "nodes.h1.links[1].name", "already used by nodes.h1.links[0] (line 6)"),
        BadLab("bad interface name", head + "  h1:\n    links:\n      - { switch: sw1, name: a/b }\n", line: 6,
               field: "nodes.h1.links[0].name", "not a valid interface name"),
        BadLab("interface name too long", head + "  h1:\n    links:\n      - { switch: sw1, name: abcdefghijklmnop }\n", line: 6,
               field: "nodes.h1.links[0].name", "1-15 bytes"),
        BadLab("derived name too long", "name: labname\nswitches: { sw1: {} }\nnodes:\n  nodename:\n    links:\n      - { switch: sw1 }\n",
               line: 6, field: "nodes.nodename.links[0]", "\"labnamenodenamee0\" is 17 bytes, more than 15", "shorter lab or node name", "`name:`"),
        BadLab("derived peer name too long", "name: labname\nnodes:\n  a:\n    links: [ { node: nodename, name: x } ]\n  nodename: {}\n",
               line: 4, field: "nodes.a.links[0]", "peer interface name \"labnamenodenamep0\"", "`peer-name:`"),
        BadLab("mtu too small", head + "  h1:\n    links:\n      - { switch: sw1, mtu: 67 }\n", line: 6,
               field: "nodes.h1.links[0].mtu", "68 to 65521"),
        BadLab("mtu not a number", head + "  h1:\n    links:\n      - { switch: sw1, mtu: 1500b }\n", line: 6,
               field: "nodes.h1.links[0].mtu", "\"1500b\""),
        BadLab("multicast mac", head + "  h1:\n    links:\n      - { switch: sw1, mac: \"01:00:5e:00:00:01\" }\n", line: 6,
               field: "nodes.h1.links[0].mac", "not a unicast MAC"),
        BadLab("bad duration unit", head + "  h1:\n    links:\n      - { switch: sw1, delay: 20 }\n", line: 6,
               field: "nodes.h1.links[0].delay", "\"20\" is not a duration"),
        BadLab("bad duration text", head + "  h1:\n    links:\n      - { switch: sw1, delay: 20 ms }\n", line: 6,
               field: "nodes.h1.links[0].delay", "not a duration"),
        BadLab("duration below a microsecond", head + "  h1:\n    links:\n      - { switch: sw1, delay: 1.5us }\n", line: 6,
               field: "nodes.h1.links[0].delay", "whole number of microseconds"),
        BadLab("duration too long", head + "  h1:\n    links:\n      - { switch: sw1, delay: 5000s }\n", line: 6,
               field: "nodes.h1.links[0].delay", "too long"),
        BadLab("negative duration", head + "  h1:\n    links:\n      - { switch: sw1, delay: -1ms }\n", line: 6,
               field: "nodes.h1.links[0].delay", "not a duration"),
        BadLab("jitter without delay", head + "  h1:\n    links:\n      - switch: sw1\n        jitter: 5ms\n", line: 7,
               field: "nodes.h1.links[0].jitter", "jitter needs a delay"),
        BadLab("loss over 100", head + "  h1:\n    links:\n      - { switch: sw1, loss: 101% }\n", line: 6,
               field: "nodes.h1.links[0].loss", "out of range"),
        BadLab("bad percent", head + "  h1:\n    links:\n      - { switch: sw1, loss: ten% }\n", line: 6,
               field: "nodes.h1.links[0].loss", "not a percentage"),
        BadLab("percent twice", head + "  h1:\n    links:\n      - { switch: sw1, loss: 10%% }\n", line: 6,
               field: "nodes.h1.links[0].loss", "not a percentage"),
        BadLab("bad rate unit", head + "  h1:\n    links:\n      - { switch: sw1, rate: 100mb }\n", line: 6,
               field: "nodes.h1.links[0].rate", "\"100mb\" is not a rate"),
        BadLab("rate without number", head + "  h1:\n    links:\n      - { switch: sw1, rate: mbit }\n", line: 6,
               field: "nodes.h1.links[0].rate", "not a rate"),
        BadLab("rate zero", head + "  h1:\n    links:\n      - { switch: sw1, rate: 0kbit }\n", line: 6,
               field: "nodes.h1.links[0].rate", "less than one byte per second"),
        BadLab("rate too large", head + "  h1:\n    links:\n      - { switch: sw1, rate: 99999999999999999gbps }\n", line: 6,
               field: "nodes.h1.links[0].rate", "too large"),

        // Routes.
        BadLab("route without to", head + "  h1:\n    links: [ { switch: sw1 } ]\n    routes:\n      - { via: 198.18.0.1 }\n", line: 7,
               field: "nodes.h1.routes[0].to", "missing"),
        BadLab("route bad destination", head + "  h1:\n    links: [ { switch: sw1 } ]\n    routes:\n      - { to: somewhere, via: 198.18.0.1 }\n",
               line: 7, field: "nodes.h1.routes[0].to", "\"somewhere\""),
        BadLab("route host bits", head + "  h1:\n    links: [ { switch: sw1 } ]\n    routes:\n      - { to: 198.19.0.1/24, via: 198.18.0.1 }\n",
               line: 7, field: "nodes.h1.routes[0].to", "host bits"),
        BadLab("route bad via", head + "  h1:\n    links: [ { switch: sw1 } ]\n    routes:\n      - to: default\n        via: 198.18.0.1/24\n",
               line: 8, field: "nodes.h1.routes[0].via", "not an address"),
        BadLab("route family mismatch", head + "  h1:\n    links: [ { switch: sw1 } ]\n    routes:\n      - { to: 198.19.0.0/24, via: \"2001:2::1\" }\n",
               line: 7, field: "nodes.h1.routes[0].via", "same family"),
        BadLab("route unknown dev", head + "  h1:\n    links: [ { switch: sw1 } ]\n    routes:\n      - to: default\n        dev: eth9\n",
               line: 8, field: "nodes.h1.routes[0].dev", "no interface \"eth9\"", "demoh1e0"),
        BadLab("route dev of another node", head + "  h1:\n    links: [ { switch: sw1 } ]\n    routes: [ { to: default, dev: demoh2e0 } ]\n  h2:\n    links: [ { switch: sw1 } ]\n",
               line: 6, field: "nodes.h1.routes[0].dev", "no interface \"demoh2e0\""),
        BadLab("route with neither via nor dev", head + "  h1:\n    routes:\n      - { to: default }\n", line: 6,
               field: "nodes.h1.routes[0]", "needs `via:`"),
        BadLab("duplicate route", head + "  h1:\n    routes:\n      - { to: default, via: 198.18.0.1 }\n      - { to: default, via: 198.18.0.2 }\n",
               line: 7, field: "nodes.h1.routes[1].to", "already declared at nodes.h1.routes[0] (line 6)"),
        BadLab("unknown route key", head + "  h1:\n    routes:\n      - { to: default, gw: 198.18.0.1 }\n", line: 6,
               field: "nodes.h1.routes[0].gw", "unknown route key"),
    ]

    @Test(arguments: cases)
    func rejects(_ bad: BadLab) {
        do {
            let lab = try LabTopology.parse(yaml: bad.yaml, file: "bad.yaml")
            Issue.record("parsed: \(lab)")
        } catch let error as LabFileError {
            #expect(error.file == "bad.yaml")
            #expect(error.line == bad.line, "\(error)")
            #expect(error.field == bad.field, "\(error)")
            for part in bad.message {
                #expect(error.message.contains(part), "\(error) lacks \(part)")
            }
            #expect(error.description.hasPrefix(bad.field.isEmpty ? "bad.yaml:\(bad.line): " : "bad.yaml:\(bad.line): \(bad.field): "))
        } catch {
            Issue.record("not a LabFileError: \(error)")
        }
    }

    @Test func anIPv6DefaultRouteAndAnIPv4OneMayCoexist() throws {
        let lab = try LabTopology.parse(yaml: head + """
              h1:
                links: [ { switch: sw1, addr: [198.18.0.1/24, "2001:2::1/64"] } ]
                routes:
                  - { to: default, via: 198.18.0.254 }
                  - { to: default, via: "2001:2::fe" }
            """, file: "ok.yaml")
        #expect(lab.nodes[0].routes.count == 2)
    }

    @Test func parallelVethLinksFromOneSideAreFine() throws {
        let lab = try LabTopology.parse(yaml: head + "  a:\n    links: [ { node: b }, { node: b } ]\n  b: {}\n", file: "ok.yaml")
        #expect(lab.interfaces(of: "b") == ["demobp0", "demobp1"])
    }
}
