import Testing
@testable import VSwitchCore
import VSwitchTesting

/// The forwarding loop against a model: a plain, frame-at-a-time switch written from the rules
/// in `LearningSwitch.forward`'s comment, with dictionaries and no pointers. Random traffic (hosts,
/// groups, link-local frames, tags of several VLANs, bad sources, runts, truncated tags) goes
/// through both in random batches, for every ingress policy: plain, two-port, options and limits,
/// VLAN-aware, and ports the spanning tree keeps learning or discarding. What every port
/// transmits (per batch, as sets: a VLAN port sends its retagged copies after the rest), every
/// counter and the learned table must agree.
@Suite struct ForwardingModelTests {
    enum Scenario: String, CaseIterable, Sendable {
        case plain, twoPort, options, vlans, spanningTree, everything
    }

    struct PortConfig {
        var options: LearningSwitch.PortOptions = []
        var floodLimit: UInt64 = 0
        var vlanMode: VLANMode = .none
        var tag: UInt16 = 0
        var trunks: Set<UInt16> = []
        /// `SpanningTree.ForwardingState` raw value: 0 forwarding, 1 learning, 2 discarding.
        var state: UInt8 = 0
    }

    static let vlans: [UInt16] = [10, 20, 30]

    static func configs(_ scenario: Scenario, _ rng: inout SplitMix64) -> [PortConfig] {
        let count = scenario == .twoPort ? 2 : 3 + Int(rng.next() % 4)
        // Ports 0 and 1 keep the defaults of what the scenario varies least (forwarding, not
        // isolated), so every configuration forwards something.
        return (0..<count).map { n in
            var c = PortConfig()
            if scenario == .options || scenario == .everything {
                if rng.next() % 3 == 0 { c.options.insert(.noLearning) }
                if rng.next() % 2 == 0 && n > 0 { c.options.insert(.isolated) }
                if rng.next() % 3 == 0 { c.floodLimit = 1 + rng.next() % 40 }
            }
            if scenario == .vlans || scenario == .everything {
                switch rng.next() % 3 {
                case 0: break
                case 1: c.vlanMode = .access; c.tag = vlans[Int(rng.next() % 3)]
                default:
                    c.vlanMode = .trunk
                    c.trunks = Set(vlans.filter { _ in rng.next() % 2 == 0 })
                    if rng.next() % 2 == 0 || c.trunks.isEmpty { c.tag = vlans[Int(rng.next() % 3)] }
                }
            }
            if scenario == .spanningTree || scenario == .everything {
                c.state = n < 2 ? 0 : [0, 1, 2][Int(rng.next() % 3)]
            }
            return c
        }
    }

    static func traffic(ports: Int, count: Int, _ rng: inout SplitMix64) -> [(from: Int, frame: [UInt8])] {
        let hosts: [UInt64] = (1...8).map { 0x0200_0000_0000 | $0 }
        let groups: [UInt64] = [MAC.broadcast, MAC.multicast, 0x0180_C200_0000, 0x0180_C200_000E, 0]
        return (0..<count).map { _ in
            let from = Int(rng.next() % UInt64(ports))
            let kind = rng.next() % 24
            let src = kind == 0 ? groups[Int(rng.next() % UInt64(groups.count))] : hosts[Int(rng.next() % UInt64(hosts.count))]
            let dst = kind < 5 ? groups[Int(rng.next() % UInt64(groups.count))] : hosts[Int(rng.next() % UInt64(hosts.count))]
            var f = frame(dst, src, tag: UInt8(truncatingIfNeeded: rng.next()))
            if rng.next() % 3 == 0 {
                // A tag: a VLAN of the scenario, another, or VLAN 0 (priority only), with a priority.
                let vid: UInt16 = [10, 20, 30, 40, 0][Int(rng.next() % 5)]
                let tci = UInt16(truncatingIfNeeded: rng.next() % 8) << 13 | vid
                f.insert(contentsOf: [0x81, 0x00, UInt8(tci >> 8), UInt8(tci & 0xff)], at: 12)
            }
            if kind == 23 { f = Array(f.prefix(Int(rng.next() % 18))) }
            return (from, f)
        }
    }

    @Test(arguments: Scenario.allCases, [1, 2, 3] as [UInt64])
    func theLoopAgreesWithTheModel(_ scenario: Scenario, _ seed: UInt64) {
        var rng = SplitMix64(seed: seed &* 7919 &+ UInt64(Scenario.allCases.firstIndex(of: scenario)!))
        let configs = Self.configs(scenario, &rng)
        var settings = LearningSwitch.Settings()
        settings.floodUnknown = rng.next() % 3 != 0
        let sw = LearningSwitch(settings: settings, batchCapacity: 16)
        let ports = configs.indices.map { MemoryPort(name: "p\($0)") }
        for p in ports { _ = sw.attach(p) }
        for (n, c) in configs.enumerated() {
            sw.setOptions(c.options, for: n)
            sw.setFloodLimit(c.floodLimit, for: n)
            sw.setVLAN(c.vlanMode, tag: c.tag, members: c.trunks.sorted(), for: n)
            sw.ports.forwardingStates[n] = c.state
        }
        sw.floodSet.rebuild(states: sw.ports.forwardingStates)
        var model = Model(ports: configs, floodUnknown: settings.floodUnknown)

        let traffic = Self.traffic(ports: configs.count, count: 4000, &rng)
        var i = 0
        let batch = PacketBatch(capacity: 16)
        while i < traffic.count {
            // A batch: up to 16 frames from one port.
            let from = traffic[i].from
            var frames: [[UInt8]] = []
            while i < traffic.count, traffic[i].from == from, frames.count < 16, rng.next() % 8 != 0 || frames.isEmpty {
                frames.append(traffic[i].frame)
                i += 1
            }
            for f in frames { ports[from].inject(f) }
            _ = sw.poll(from, batch: batch, now: 0)
            let expected = model.batch(frames, from: from)
            for (n, p) in ports.enumerated() {
                let got = p.takeTransmitted()
                let ok = got.sorted { $0.lexicographicallyPrecedes($1) } == expected[n].sorted { $0.lexicographicallyPrecedes($1) }
                #expect(ok, "\(scenario) seed \(seed): port \(n) after frame \(i)")
                if !ok { return }
            }
        }
        for n in configs.indices {
            let c = sw.counters(n)!
            #expect(c.rxPackets == model.rxPackets[n] && c.txPackets == model.txPackets[n], "\(scenario) port \(n) packets")
            for r in DropReason.allCases {
                #expect(c.drops(r) == model.drops[n][r, default: 0], "\(scenario) seed \(seed): port \(n) \(r.name)")
            }
        }
        let table = Set(sw.table.entries.map { "\($0.mac)/\($0.vlan)@\($0.portNumber)" })
        let modelTable = Set(model.table.map { "\($0.key.mac)/\($0.key.vlan)@\($0.value)" })
        #expect(table == modelTable, "\(scenario) seed \(seed): learned table")
        #expect(model.forwarded > 0, "the traffic forwarded something")
    }

    /// The switch as a frame-at-a-time loop over dictionaries.
    struct Model {
        struct Key: Hashable { var mac: UInt64; var vlan: UInt16 }
        let ports: [PortConfig]
        let floodUnknown: Bool
        var table: [Key: Int] = [:]
        var tokens: [UInt64]
        var rxPackets: [UInt64]
        var txPackets: [UInt64]
        var drops: [[DropReason: UInt64]]
        var forwarded = 0
        let vlanAware: Bool

        init(ports: [PortConfig], floodUnknown: Bool) {
            self.ports = ports
            self.floodUnknown = floodUnknown
            tokens = ports.map(\.floodLimit)
            rxPackets = Array(repeating: 0, count: ports.count)
            txPackets = rxPackets
            drops = Array(repeating: [:], count: ports.count)
            vlanAware = ports.contains { $0.vlanMode != .none }
        }

        func carries(_ p: Int, _ vlan: UInt16) -> Bool {
            switch ports[p].vlanMode {
            case .none: true
            case .access: vlan == ports[p].tag
            case .trunk: (ports[p].tag != 0 && vlan == ports[p].tag) || (vlan != 0 && ports[p].trunks.contains(vlan))
            }
        }

        func classify(tagged: Bool, vid: UInt16, on p: Int) -> UInt16? {
            switch ports[p].vlanMode {
            case .none: return tagged ? vid : 0
            case .access: return !tagged || vid == ports[p].tag ? ports[p].tag : nil
            case .trunk:
                if !tagged { return ports[p].tag != 0 ? ports[p].tag : nil }
                return vid != 0 && carries(p, vid) ? vid : nil
            }
        }

        func tagsOnEgress(_ p: Int, _ vlan: UInt16) -> Bool {
            switch ports[p].vlanMode {
            case .none: vlan != 0
            case .access: false
            case .trunk: vlan != ports[p].tag
            }
        }

        mutating func drop(_ p: Int, _ r: DropReason) { drops[p][r, default: 0] += 1 }

        /// What each port sends for one batch from `from`.
        mutating func batch(_ frames: [[UInt8]], from: Int) -> [[[UInt8]]] {
            var out: [[[UInt8]]] = Array(repeating: [], count: ports.count)
            let me = ports[from]
            for f in frames {
                rxPackets[from] += 1
                guard f.count >= 14 else { drop(from, .runt); continue }
                let mac = { (o: Int) in f[o..<o + 6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
                let dst = mac(0), src = mac(6)
                let type = UInt16(f[12]) << 8 | UInt16(f[13])
                if f.count < 18 && (type == 0x8100 || type == 0x88A8) { drop(from, .malformed); continue }
                if src & 0x0100_0000_0000 != 0 || src == 0 { drop(from, .invalidSource); continue }
                if dst & 0xFFFF_FFFF_FFF0 == 0x0180_C200_0000 { drop(from, .linkLocal); continue }
                let tagged = type == 0x8100
                let vid = tagged ? (UInt16(f[14]) << 8 | UInt16(f[15])) & 0xFFF : 0
                let learns = !me.options.contains(.noLearning) && me.state != 2
                var vlan: UInt16 = 0
                if vlanAware && (me.state == 0 || learns) {
                    guard let v = classify(tagged: tagged, vid: vid, on: from) else { drop(from, .vlanFiltered); continue }
                    vlan = v
                }
                if learns { table[Key(mac: src, vlan: vlan)] = from }
                if me.state != 0 { drop(from, .stpDiscarding); continue }
                var egress: [Int] = []
                if dst & 0x0100_0000_0000 == 0, let known = table[Key(mac: dst, vlan: vlan)] {
                    if known == from { drop(from, .filtered); continue }
                    if me.options.contains(.isolated) && ports[known].options.contains(.isolated) { drop(from, .isolated); continue }
                    if vlanAware && !carries(known, vlan) { drop(from, .vlanFiltered); continue }
                    egress = [known]
                } else {
                    if dst & 0x0100_0000_0000 == 0 && !floodUnknown { drop(from, .unknownUnicast); continue }
                    if me.floodLimit != 0 {
                        if tokens[from] == 0 { drop(from, .floodLimit); continue }
                        tokens[from] -= 1
                    }
                    egress = ports.indices.filter { p in
                        p != from && ports[p].state == 0 && (!vlanAware || carries(p, vlan))
                            && !(me.options.contains(.isolated) && ports[p].options.contains(.isolated))
                    }
                }
                for p in egress {
                    // Known unicast for a port that does not forward is dropped at flush.
                    if ports[p].state != 0 { drop(p, .stpBlocked); continue }
                    var copy = f
                    if vlanAware {
                        let wanted = tagsOnEgress(p, vlan)
                        if wanted && !tagged {
                            copy.insert(contentsOf: [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xff)], at: 12)
                        } else if !wanted && tagged {
                            copy.removeSubrange(12..<16)
                        }
                    }
                    out[p].append(copy)
                    txPackets[p] += 1
                    forwarded += 1
                }
            }
            return out
        }
    }
}
