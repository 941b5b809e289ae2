import Testing
@testable import VSwitchLab

@Suite struct LabTopologyTests {
    static let full = """
        # a comment; keys use kebab-case
        name: demo
        daemon: shared
        socket: /run/vswitch/test.sock
        switches:
          sw2: {}
          sw1: { ageing-time: 300, max-macs: 1024, flood-unknown: off }
        nodes:
          h1:
            links:
              - { switch: sw1, addr: 198.18.0.1/24 }
              - switch: sw1
                addr: [198.18.1.1/24, 2001:2::1/64]
                mtu: 9000
                mac: 02:00:00:00:00:0A
                name: eth1
                delay: 20ms
                jitter: 5ms
                loss: 10%
                rate: 100mbit
              - { node: r1, addr: 198.18.2.1/24, peer-addr: 198.18.2.2/24 }
            routes:
              - { to: default, via: 198.18.0.254 }
              - { to: 198.19.0.0/24, via: 198.18.0.2 }
              - { to: 198.19.1.0/24, dev: eth1 }
              - { to: "2001:2:1::/64", via: "2001:2::2" }
          r1:
            links:
              - { switch: sw2 }
            routes:
              - { to: 198.18.0.0/24, dev: demor1p0 }
          h2:
          h3:
            links:
              - { node: r1, name: h3r1, peer-name: r1h3, loss: 0.5 }
        """

    @Test func parsesTheFullExample() throws {
        let lab = try LabTopology.parse(yaml: Self.full, file: "full.yaml")
        #expect(lab.name == "demo")
        #expect(lab.file == "full.yaml")
        #expect(lab.daemon == .shared(socket: "/run/vswitch/test.sock"))
        #expect(lab.switches == [
            LabSwitch(name: "sw1", ageingTime: 300, maxMacs: 1024, floodUnknown: false),
            LabSwitch(name: "sw2"),
        ])
        #expect(lab.nodes.map(\.name) == ["h1", "r1", "h2", "h3"])
        #expect(lab.nodes.map(\.namespace) == ["demo-h1", "demo-r1", "demo-h2", "demo-h3"])

        let h1 = try #require(lab.node(named: "h1"))
        #expect(h1.links == [
            LabLink(kind: .switchPort(switch: "sw1"), interface: "demoh1e0", addresses: ["198.18.0.1/24"], line: 11),
            LabLink(kind: .switchPort(switch: "sw1"), interface: "eth1", addresses: ["198.18.1.1/24", "2001:2::1/64"],
                    mtu: 9000, mac: "02:00:00:00:00:0a",
                    impairment: LabImpairment(delayMicroseconds: 20_000, jitterMicroseconds: 5_000, lossPercent: 10,
                                              rateBytesPerSecond: 12_500_000),
                    line: 12),
            LabLink(kind: .veth(peerNode: "r1", peerAddresses: ["198.18.2.2/24"], peerInterface: "demor1p0"),
                    interface: "demoh1e2", addresses: ["198.18.2.1/24"], line: 21),
        ])
        #expect(h1.routes == [
            LabRoute(destination: "default", gateway: "198.18.0.254"),
            LabRoute(destination: "198.19.0.0/24", gateway: "198.18.0.2"),
            LabRoute(destination: "198.19.1.0/24", device: "eth1"),
            LabRoute(destination: "2001:2:1::/64", gateway: "2001:2::2"),
        ])
        let r1 = try #require(lab.node(named: "r1"))
        #expect(r1.links == [LabLink(kind: .switchPort(switch: "sw2"), interface: "demor1e0", addresses: [], line: 29)])
        #expect(r1.routes == [LabRoute(destination: "198.18.0.0/24", device: "demor1p0")])
        #expect(lab.interfaces(of: "r1") == ["demor1e0", "demor1p0", "r1h3"])
        #expect(lab.interfaces(of: "h2") == [])
        #expect(lab.node(named: "h2")?.links == [])
        let h3 = try #require(lab.node(named: "h3"))
        #expect(h3.links == [LabLink(kind: .veth(peerNode: "r1", peerAddresses: [], peerInterface: "r1h3"), interface: "h3r1",
                                     addresses: [], impairment: LabImpairment(lossPercent: 0.5), line: 35)])
    }

    @Test func minimalLabHasDefaults() throws {
        let lab = try LabTopology.parse(yaml: """
            name: d
            switches: { sw1: {} }
            nodes:
              h1: { links: [ { switch: sw1, addr: 198.18.0.1/24 } ] }
              h2: { links: [ { switch: sw1, addr: 198.18.0.2/24 } ] }
            """, file: "m.yaml")
        #expect(lab.daemon == .own)
        #expect(lab.switches == [LabSwitch(name: "sw1")])
        #expect(lab.nodes.flatMap { $0.links.map(\.interface) } == ["dh1e0", "dh2e0"])
        #expect(lab.nodes.allSatisfy { $0.links.allSatisfy { $0.impairment == nil && $0.mtu == nil && $0.mac == nil } })
    }

    @Test func sharedDaemonWithoutSocketAndEmptySections() throws {
        let lab = try LabTopology.parse(yaml: "name: e\ndaemon: shared\nswitches:\nnodes: {}\n", file: "e.yaml")
        #expect(lab.daemon == .shared(socket: nil))
        #expect(lab.switches.isEmpty && lab.nodes.isEmpty)
    }

    @Test func peerInterfacesCountArrivalsPerPeer() throws {
        let lab = try LabTopology.parse(yaml: """
            name: v
            nodes:
              a: { links: [ { node: c }, { node: c }, { node: b } ] }
              b: { links: [ { node: c } ] }
              c:
            """, file: "v.yaml")
        let peers = lab.nodes.flatMap { $0.links }.map { link -> String in
            guard case .veth(_, _, let peer) = link.kind else { return "" }
            return peer
        }
        #expect(peers == ["vcp0", "vcp1", "vbp0", "vcp2"])
        #expect(lab.interfaces(of: "c") == ["vcp0", "vcp1", "vcp2"])
        #expect(lab.interfaces(of: "a") == ["vae0", "vae1", "vae2"])
    }

    @Test func impairmentUnits() throws {
        func impairment(_ settings: String) throws -> LabImpairment? {
            try LabTopology.parse(yaml: "name: i\nswitches: {s: {}}\nnodes:\n  h: { links: [ { switch: s, \(settings) } ] }\n",
                                  file: "i.yaml").nodes[0].links[0].impairment
        }
        #expect(try impairment("delay: 500us") == LabImpairment(delayMicroseconds: 500))
        #expect(try impairment("delay: 1.5ms") == LabImpairment(delayMicroseconds: 1_500))
        #expect(try impairment("delay: 2s, jitter: 0ms") == LabImpairment(delayMicroseconds: 2_000_000, jitterMicroseconds: 0))
        #expect(try impairment("loss: 100") == LabImpairment(lossPercent: 100))
        #expect(try impairment("loss: 0%") == LabImpairment(lossPercent: 0))
        #expect(try impairment("rate: 1gbit") == LabImpairment(rateBytesPerSecond: 125_000_000))
        #expect(try impairment("rate: 64kbps") == LabImpairment(rateBytesPerSecond: 64_000))
        #expect(try impairment("rate: 1.5Mbit") == LabImpairment(rateBytesPerSecond: 187_500))
        #expect(try impairment("rate: 8bit") == LabImpairment(rateBytesPerSecond: 1))
        #expect(try impairment("mtu: 1500") == nil)
    }

    @Test func derivedNamesLiveInLabNames() {
        #expect(LabNames.namespace(lab: "demo", node: "h1") == "demo-h1")
        #expect(LabNames.linkInterface(lab: "demo", node: "h1", index: 0) == "demoh1e0")
        #expect(LabNames.peerInterface(lab: "demo", peer: "r1", k: 2) == "demor1p2")
        #expect(LabNames.isValidLabOrNodeName("a-1"))
        #expect(!LabNames.isValidLabOrNodeName("1a"))
        #expect(!LabNames.isValidLabOrNodeName("abcdefghi"))
        #expect(!LabNames.isValidLabOrNodeName("Ab"))
        #expect(LabNames.isValidSwitchName("0-switch-abcdef"))
        #expect(!LabNames.isValidSwitchName("sw_1"))
    }

    @Test func errorsPrintFileLineFieldMessage() {
        let error = LabFileError(file: "etc/labs/two-hosts.yaml", line: 7, field: "nodes.h1.links[0].addr",
                                 message: "\"198.18.0.300/24\" is not an address with a prefix length (like 198.18.0.1/24)")
        #expect(error.description == "etc/labs/two-hosts.yaml:7: nodes.h1.links[0].addr: \"198.18.0.300/24\" is not an address with a prefix length (like 198.18.0.1/24)")
        #expect(LabFileError(file: "f", line: 0, field: "", message: "m").description == "f:0: m")
    }

    @Test func missingFileIsLineZeroAndNamesTheFile() {
        let path = "/nonexistent/vswitch-lab-test.yaml"
        #expect {
            try LabTopology.load(path: path)
        } throws: { error in
            guard let error = error as? LabFileError else { return false }
            return error.file == path && error.line == 0 && error.message.contains(path)
                && error.message.contains("No such file")
        }
        #expect(throws: LabFileError.self) { try LabTopology.load(path: "/") }  // a directory: EISDIR on read
    }

    @Test(arguments: [(1, 1), (2, 1), (10, 3), (130, 64), (1000, 100)])
    func generatedLabsParse(nodes: Int, perSwitch: Int) throws {
        let text = LabTopology.generated(name: "bench", nodes: nodes, perSwitch: perSwitch)
        let lab = try LabTopology.parse(yaml: text, file: "generated")
        #expect(lab.nodes.count == nodes)
        #expect(lab.switches.count == (nodes + perSwitch - 1) / perSwitch)
        let addresses = lab.nodes.flatMap { $0.links.flatMap(\.addresses) }
        #expect(Set(addresses).count == nodes)
        #expect(addresses.allSatisfy { $0.hasPrefix("198.18.") && $0.hasSuffix("/16") })
        #expect(lab.nodes.first?.links.first?.addresses == ["198.18.0.1/16"])
        // Each switch holds at most perSwitch nodes.
        var perSwitchCount: [String: Int] = [:]
        for node in lab.nodes {
            guard case .switchPort(let sw) = node.links[0].kind else { Issue.record("not a switch link"); return }
            perSwitchCount[sw, default: 0] += 1
        }
        #expect(perSwitchCount.values.allSatisfy { $0 <= perSwitch })
    }

    @Test func generatedLabBeyond198_18Parses() throws {
        let lab = try LabTopology.parse(yaml: LabTopology.generated(name: "b", nodes: 65_600, perSwitch: 1_000), file: "big")
        #expect(lab.nodes.count == 65_600)
        #expect(lab.nodes.last?.links[0].addresses == ["198.19.0.64/16"])
    }

    @Test func emptyGeneratedLabParses() throws {
        let lab = try LabTopology.parse(yaml: LabTopology.generated(name: "z", nodes: 0, perSwitch: 4), file: "g")
        #expect(lab.nodes.isEmpty && lab.switches.isEmpty)
    }
}
