import Foundation
import Glibc
import Testing
@testable import VSwitchNetlink

/// Impairments on a real veth pair between two namespaces, witnessed by `tc -j` and `ping`.
/// The delay and loss tests need the kernel's netem qdisc (CONFIG_NET_SCH_NETEM): without it they are
/// disabled and `withoutNetem` checks the error instead. Rate limits need only tbf.
@Suite("NetlinkSocket impairments", .serialized,
       .enabled(if: RootRequirement.shouldRun, "needs root; set CI to fail instead"))
struct NetlinkSocketImpairmentTests {
    @Test
    func delayReplaceAndClear() throws {
        guard Netem.isAvailable else { return try withoutNetem() }
        try RootRequirement.check()
        try withLinkedPair { pair in
            let defaultKind = try QdiscWitness.root(pair.namespace, pair.link)?.kind
            try pair.socket.setImpairment(QdiscImpairment(delayMicroseconds: 20_000), on: pair.link)

            let root = try #require(try QdiscWitness.root(pair.namespace, pair.link))
            #expect(root.kind == "netem")
            #expect(root.handle == "1:")
            let delay = try #require(QdiscWitness.netemDelaySeconds(root.entry))
            #expect(abs(delay - 0.020) < 0.0005, "tc shows delay \(delay) s")
            let ping = try Ping.run(from: pair.namespace, to: pair.peerAddress)
            #expect(ping.received == 3)
            #expect((ping.averageMilliseconds ?? 0) >= 20, "avg RTT \(ping.averageMilliseconds ?? -1) ms")

            // Set again with other values: the same qdisc is changed in place.
            try pair.socket.setImpairment(QdiscImpairment(delayMicroseconds: 40_000, jitterMicroseconds: 1000,
                                                     lossPercent: 0), on: pair.link)
            let replaced = try #require(try QdiscWitness.root(pair.namespace, pair.link))
            #expect(replaced.kind == "netem")
            let newDelay = try #require(QdiscWitness.netemDelaySeconds(replaced.entry))
            #expect(abs(newDelay - 0.040) < 0.0005, "tc shows delay \(newDelay) s")
            #expect(try QdiscWitness.all(pair.namespace, pair.link).filter { $0.kind == "netem" }.count == 1)

            try pair.socket.clearImpairment(on: pair.link)
            #expect(try QdiscWitness.root(pair.namespace, pair.link)?.kind == defaultKind)
            #expect(try QdiscWitness.root(pair.namespace, pair.link)?.handle == "0:")
            try pair.socket.clearImpairment(on: pair.link)  // nothing left: a no-op
            #expect(try QdiscWitness.root(pair.namespace, pair.link)?.kind == defaultKind)
            let after = try Ping.run(from: pair.namespace, to: pair.peerAddress)
            #expect(after.received == 3)
            #expect((after.averageMilliseconds ?? 100) < 20, "avg RTT \(after.averageMilliseconds ?? -1) ms")
        }
    }

    @Test
    func totalLoss() throws {
        guard Netem.isAvailable else { return try withoutNetem() }
        try RootRequirement.check()
        try withLinkedPair { pair in
            try pair.socket.setImpairment(QdiscImpairment(lossPercent: 100), on: pair.link)
            let root = try #require(try QdiscWitness.root(pair.namespace, pair.link))
            #expect(root.kind == "netem")
            let ping = try Ping.run(from: pair.namespace, to: pair.peerAddress)
            #expect(ping.transmitted == 3)
            #expect(ping.received == 0)

            try pair.socket.clearImpairment(on: pair.link)
            #expect(try Ping.run(from: pair.namespace, to: pair.peerAddress).received == 3)
        }
    }

    @Test
    func delayWithRate() throws {
        guard Netem.isAvailable else { return try withoutNetem() }
        try RootRequirement.check()
        try withLinkedPair { pair in
            try pair.socket.setImpairment(QdiscImpairment(delayMicroseconds: 20_000, rateBytesPerSecond: 125_000),
                                          on: pair.link)
            let qdiscs = try QdiscWitness.all(pair.namespace, pair.link)
            let root = try #require(qdiscs.first { $0.isRoot })
            #expect(root.kind == "netem")
            let child = try #require(qdiscs.first { $0.parent == "1:1" })
            #expect(child.kind == "tbf")
            #expect(QdiscWitness.tbfRate(child.entry) == 125_000)
            let ping = try Ping.run(from: pair.namespace, to: pair.peerAddress)
            #expect((ping.averageMilliseconds ?? 0) >= 20, "avg RTT \(ping.averageMilliseconds ?? -1) ms")

            // Rate only now: the shape changes (tbf at the root, no netem left).
            try pair.socket.setImpairment(QdiscImpairment(rateBytesPerSecond: 250_000), on: pair.link)
            let after = try QdiscWitness.all(pair.namespace, pair.link)
            #expect(after.first { $0.isRoot }?.kind == "tbf")
            #expect(after.first { $0.isRoot }.flatMap { QdiscWitness.tbfRate($0.entry) } == 250_000)
            #expect(!after.contains { $0.kind == "netem" })

            try pair.socket.clearImpairment(on: pair.link)
            #expect(!(try QdiscWitness.all(pair.namespace, pair.link)).contains { $0.kind == "netem" || $0.kind == "tbf" })
        }
    }

    @Test func rateReplaceAndClear() throws {
        try RootRequirement.check()
        try withLinkedPair { pair in
            let defaultKind = try QdiscWitness.root(pair.namespace, pair.link)?.kind
            try pair.socket.setImpairment(QdiscImpairment(rateBytesPerSecond: 125_000), on: pair.link)  // 1 mbit
            let root = try #require(try QdiscWitness.root(pair.namespace, pair.link))
            #expect(root.kind == "tbf")
            #expect(root.handle == "1:")
            #expect(QdiscWitness.tbfRate(root.entry) == 125_000)
            #expect(try Ping.run(from: pair.namespace, to: pair.peerAddress).received == 3)

            // Replace: the same tbf is changed in place.
            try pair.socket.setImpairment(QdiscImpairment(rateBytesPerSecond: 1_250_000), on: pair.link)  // 10 mbit
            let replaced = try QdiscWitness.all(pair.namespace, pair.link).filter { $0.kind == "tbf" }
            #expect(replaced.count == 1)
            #expect(replaced.first?.isRoot == true)
            #expect(replaced.first.flatMap { QdiscWitness.tbfRate($0.entry) } == 1_250_000)

            // An empty impairment clears, like clearImpairment.
            try pair.socket.setImpairment(QdiscImpairment(), on: pair.link)
            #expect(try QdiscWitness.root(pair.namespace, pair.link)?.kind == defaultKind)

            try pair.socket.setImpairment(QdiscImpairment(rateBytesPerSecond: 125_000), on: pair.link)
            try pair.socket.clearImpairment(on: pair.link)
            #expect(try QdiscWitness.root(pair.namespace, pair.link)?.kind == defaultKind)
            #expect(try QdiscWitness.root(pair.namespace, pair.link)?.handle == "0:")
            try pair.socket.clearImpairment(on: pair.link)  // a no-op the second time
            #expect(try QdiscWitness.root(pair.namespace, pair.link)?.kind == defaultKind)
            #expect(try Ping.run(from: pair.namespace, to: pair.peerAddress).received == 3)
        }
    }

    /// A root qdisc someone else put there is replaced by setImpairment, and left alone by clearImpairment
    /// when it is no impairment (htb).
    @Test func foreignRoots() throws {
        try RootRequirement.check()
        try withLinkedPair { pair in
            let ns = pair.namespace, link = pair.link
            // A tbf under a handle the kernel chose (8001:): another kind of replace than in place.
            #expect(try QdiscWitness.tc(["-n", ns, "qdisc", "add", "dev", link, "root", "tbf", "rate", "2mbit",
                                         "burst", "3200", "limit", "30000"]).status == 0)
            try pair.socket.setImpairment(QdiscImpairment(rateBytesPerSecond: 125_000), on: link)
            let tbfs = try QdiscWitness.all(ns, link).filter { $0.kind == "tbf" }
            #expect(tbfs.count == 1)
            #expect(tbfs.first?.handle == "1:")
            #expect(tbfs.first.flatMap { QdiscWitness.tbfRate($0.entry) } == 125_000)
            try pair.socket.clearImpairment(on: link)

            // htb 1: is not ours to clear, but setImpairment replaces it (same handle, other kind).
            #expect(try QdiscWitness.tc(["-n", ns, "qdisc", "add", "dev", link, "root", "handle", "1:", "htb"])
                .status == 0)
            try pair.socket.clearImpairment(on: link)
            #expect(try QdiscWitness.root(ns, link)?.kind == "htb")
            try pair.socket.setImpairment(QdiscImpairment(rateBytesPerSecond: 125_000), on: link)
            let root = try QdiscWitness.root(ns, link)
            #expect(root?.kind == "tbf")
            #expect(root?.handle == "1:")
            #expect(!(try QdiscWitness.all(ns, link)).contains { $0.kind == "htb" })
            try pair.socket.clearImpairment(on: link)
            #expect(try QdiscWitness.root(ns, link)?.handle == "0:")
        }
    }

    @Test func errors() throws {
        try withVeth(namespaces: 1) { v in
            let (names, ns, a, socket) = (v.names, v.ns, v.a, v.socket)
            let missing = names.link("z")
            let defaultKind = try QdiscWitness.root(ns[0], a)?.kind
            let suffix = "in namespace \(ns[0])"

            expectError("cannot set impairment (delay 20ms) on \(missing) \(suffix): No such device") {
                try socket.setImpairment(QdiscImpairment(delayMicroseconds: 20_000), on: missing)
            }
            expectError("cannot set impairment (rate 1mbit) on \(missing) \(suffix): No such device") {
                try socket.setImpairment(QdiscImpairment(rateBytesPerSecond: 125_000), on: missing)
            }
            expectError("cannot clear impairment on \(missing) \(suffix): No such device") {
                try socket.clearImpairment(on: missing)
            }
            expectError("cannot set impairment (loss 150%) on \(a) \(suffix): "
                        + "loss must be between 0 and 100 percent, not 150") {
                try socket.setImpairment(QdiscImpairment(lossPercent: 150), on: a)
            }
            expectError("cannot set impairment (loss -1%) on \(a) \(suffix): "
                        + "loss must be between 0 and 100 percent, not -1") {
                try socket.setImpairment(QdiscImpairment(lossPercent: -1), on: a)
            }
            expectError("cannot set impairment (jitter 5ms) on \(a) \(suffix): jitter requires a delay") {
                try socket.setImpairment(QdiscImpairment(jitterMicroseconds: 5000), on: a)
            }
            expectError("cannot set impairment (rate 0bit) on \(a) \(suffix): "
                        + "rate must be 1 to 2147483647 bytes per second") {
                try socket.setImpairment(QdiscImpairment(rateBytesPerSecond: 0), on: a)
            }
            expectError("cannot set impairment (delay 200s) on \(a) \(suffix): delay must be at most 100s") {
                try socket.setImpairment(QdiscImpairment(delayMicroseconds: 200_000_000), on: a)
            }
            // Refused inputs change nothing.
            #expect(try QdiscWitness.root(ns[0], a)?.kind == defaultKind)
            #expect(try socket.link(named: a) != nil)
        }
    }

    /// On a kernel without sch_netem, delay and loss fail with words that say so; rates still work.
    /// The check the netem tests make instead on a kernel without netem (none of them is skipped).
    func withoutNetem() throws {
        try withVeth(namespaces: 1) { v in
            let (ns, a, socket) = (v.ns, v.a, v.socket)
            let defaultKind = try QdiscWitness.root(ns[0], a)?.kind
            expectError("cannot set impairment (delay 20ms, loss 1%) on \(a) in namespace \(ns[0]): "
                        + "the kernel has no netem qdisc (sch_netem)") {
                try socket.setImpairment(QdiscImpairment(delayMicroseconds: 20_000, lossPercent: 1), on: a)
            }
            #expect(try QdiscWitness.root(ns[0], a)?.kind == defaultKind)
            try socket.setImpairment(QdiscImpairment(rateBytesPerSecond: 125_000), on: a)
            #expect(try QdiscWitness.root(ns[0], a)?.kind == "tbf")
            try socket.clearImpairment(on: a)
            #expect(try QdiscWitness.root(ns[0], a)?.kind == defaultKind)
        }
    }

    @Test func descriptions() {
        #expect(QdiscImpairment(delayMicroseconds: 20_000, jitterMicroseconds: 500, lossPercent: 0.5,
                           rateBytesPerSecond: 125_000).description
                == "delay 20ms, jitter 500us, loss 0.5%, rate 1mbit")
        #expect(QdiscImpairment(delayMicroseconds: 1_500, rateBytesPerSecond: 1000).description
                == "delay 1.5ms, rate 8kbit")
        #expect(QdiscImpairment().description == "none")
        #expect(QdiscImpairment().isEmpty)
        #expect(QdiscImpairment(lossPercent: 100).validationError == nil)
        #expect(QdiscImpairment(lossPercent: .nan).validationError != nil)
    }
}

// MARK: - Helpers

/// A veth pair between two namespaces, both ends up and addressed (198.18.0.1/24 <-> 198.18.0.2/24).
private struct LinkedPair {
    let namespace: String
    let link: String
    let socket: NetlinkSocket
    let peerAddress: String
}

private func withLinkedPair(_ body: (LinkedPair) throws -> Void) throws {
    let names = TestNames()
    try withNamespaces(names, count: 2) { ns in
        let a = names.link("a"), b = names.link("b")
        let socket = try NetlinkSocket(namespace: ns[0])
        try socket.createVeth(name: a, peer: b, peerNamespace: ns[1])
        try socket.setUp(a, true)
        try socket.addAddress("198.18.0.1/24", to: a)
        let peer = try NetlinkSocket(namespace: ns[1])
        try peer.setUp(b, true)
        try peer.addAddress("198.18.0.2/24", to: b)
        try body(LinkedPair(namespace: ns[0], link: a, socket: socket, peerAddress: "198.18.0.2"))
    }
}

/// Whether this kernel has sch_netem, asked once of `tc` on the loopback of a scratch namespace.
private enum Netem {
    static let isAvailable: Bool = {
        guard RootRequirement.isRoot else { return false }
        let name = "vstNL\(TestNames().id)p"
        guard (try? NetworkNamespace.create(name)) != nil else { return false }
        defer { try? NetworkNamespace.delete(name) }
        let status = (try? QdiscWitness.tc(["-n", name, "qdisc", "add", "dev", "lo", "root", "netem",
                                            "delay", "1ms"]).status) ?? -1
        return status == 0
    }()
}

/// `tc` as an independent witness, parsed from its JSON output.
enum QdiscWitness {
    struct Qdisc {
        let entry: [String: Any]
        var kind: String? { entry["kind"] as? String }
        var handle: String? { entry["handle"] as? String }
        var parent: String? { entry["parent"] as? String }
        var isRoot: Bool { entry["root"] as? Bool ?? false }
    }

    @discardableResult
    static func tc(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runTool("tc", arguments)
    }

    /// `tc -j -n NS qdisc show dev NAME`.
    static func all(_ namespace: String, _ link: String) throws -> [Qdisc] {
        let (status, output) = try tc(["-j", "-n", namespace, "qdisc", "show", "dev", link])
        guard status == 0, !output.isEmpty else { return [] }
        let value = try JSONSerialization.jsonObject(with: Data(output.utf8))
        return (value as? [[String: Any]] ?? []).map(Qdisc.init)
    }

    static func root(_ namespace: String, _ link: String) throws -> Qdisc? {
        try all(namespace, link).first { $0.isRoot }
    }

    /// netem's delay in seconds: iproute2 prints `"delay": {"delay": 0.02, "jitter": 0, ...}`.
    static func netemDelaySeconds(_ entry: [String: Any]) -> Double? {
        let options = entry["options"] as? [String: Any]
        if let delay = options?["delay"] as? [String: Any] { return number(delay["delay"]) }
        return number(options?["delay"])
    }

    /// tbf's rate in bytes per second: `"options": {"rate": 125000, ...}`.
    static func tbfRate(_ entry: [String: Any]) -> UInt64? {
        number((entry["options"] as? [String: Any])?["rate"]).map { UInt64($0) }
    }

    static func number(_ value: Any?) -> Double? {
        switch value {
        case let value as NSNumber: return value.doubleValue
        case let value as Double: return value
        case let value as Int: return Double(value)
        default: return nil
        }
    }
}

/// `ip netns exec NS ping -c 3 -i 0.2 -W 1 ADDRESS`, summarised.
enum Ping {
    struct Result {
        var transmitted = 0
        var received = 0
        var averageMilliseconds: Double?
    }

    static func run(from namespace: String, to address: String) throws -> Result {
        let (_, output) = try IP.run(["netns", "exec", namespace, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1",
                                      address])
        var result = Result()
        for line in output.split(separator: "\n") {
            if line.contains("packets transmitted") {
                // "3 packets transmitted, 3 received, 0% packet loss, time 401ms"
                let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                result.transmitted = Int(fields.first?.split(separator: " ").first ?? "") ?? 0
                if fields.count > 1 { result.received = Int(fields[1].split(separator: " ").first ?? "") ?? 0 }
            } else if line.hasPrefix("rtt") || line.hasPrefix("round-trip") {
                // "rtt min/avg/max/mdev = 20.1/20.2/20.3/0.1 ms"
                let values = line.split(separator: "=").last?.trimmingCharacters(in: .whitespaces)
                    .split(separator: " ").first?.split(separator: "/")
                if let values, values.count > 1 { result.averageMilliseconds = Double(values[1]) }
            }
        }
        return result
    }
}
