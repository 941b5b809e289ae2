import Foundation
import Glibc
import Testing
@testable import VSwitchNetlink

/// The ingress drop of `bridge-nic` on a veth pair between two namespaces: ping from the left namespace
/// to the right end `b`, whose stack is made deaf while a raw AF_PACKET socket (what libpcap opens) on `b`
/// still receives the echo requests. Witnesses: `ping`, `tc -j`, the packet socket.
@Suite("NetlinkSocket ingress drop", .enabled(if: RootRequirement.shouldRun, "needs root; set CI to fail instead"))
struct NetlinkSocketIngressDropTests {
    @Test func dropsForTheStackNotForPacketSockets() throws {
        try withDeafPair { p in
            let qdiscsBefore = try TC.text(["qdisc", "show", "dev", p.link], in: p.namespace)
            #expect(try Ping.run(from: p.pingNamespace, to: p.address).received == 3)

            let token = try p.socket.setIngressDrop(on: p.link)
            #expect(token == IngressDropToken(createdQdisc: true))
            #expect(try p.socket.hasIngressDrop(on: p.link))
            let qdiscs = try QdiscWitness.all(p.namespace, p.link)
            #expect(qdiscs.contains { $0.kind == "clsact" && $0.handle == "ffff:" && $0.parent == "ffff:fff1" })
            let filter = try #require(try TC.ingressFilters(p.namespace, p.link).first { $0.options != nil })
            #expect(filter.kind == "bpf")
            #expect(filter.priority == Int(NetlinkSocket.IngressDrop.priority))
            #expect(filter.protocolName == "all")
            #expect(filter.options?["handle"] as? String == "0x5653")
            #expect(filter.options?["direct-action"] as? Bool == true)

            let tap = try PacketTap(namespace: p.namespace, link: p.link)
            let ping = try Ping.run(from: p.pingNamespace, to: p.address)
            #expect(ping.transmitted == 3)
            #expect(ping.received == 0)
            let requests = tap.drain().filter { PacketTap.isEchoRequest($0, to: [198, 18, 0, 2]) }
            #expect(requests.count >= 3, "the packet socket saw \(requests.count) echo requests")

            // Setting twice fails and changes nothing.
            expectError("cannot set ingress drop on \(p.link) in namespace \(p.namespace): ingress drop is already set") {
                try p.socket.setIngressDrop(on: p.link)
            }
            #expect(try TC.ingressFilters(p.namespace, p.link).filter { $0.options != nil }.count == 1)

            try p.socket.clearIngressDrop(on: p.link, token)
            #expect(try !p.socket.hasIngressDrop(on: p.link))
            #expect(try TC.text(["qdisc", "show", "dev", p.link], in: p.namespace) == qdiscsBefore)
            #expect(try Ping.run(from: p.pingNamespace, to: p.address).received == 3)
            try p.socket.clearIngressDrop(on: p.link, token)  // nothing left: a no-op
            try p.socket.clearIngressDrop(on: p.link)

            // Without the token (lost in a crash): our clsact is empty after the filter goes, so it goes too.
            let again = try p.socket.setIngressDrop(on: p.link)
            #expect(again.createdQdisc)
            #expect(try Ping.run(from: p.pingNamespace, to: p.address).received == 0)
            try p.socket.clearIngressDrop(on: p.link)
            #expect(try TC.text(["qdisc", "show", "dev", p.link], in: p.namespace) == qdiscsBefore)
            #expect(try Ping.run(from: p.pingNamespace, to: p.address).received == 3)
        }
    }

    /// A clsact qdisc that was there before, with a filter of someone else's, stays as it was.
    @Test func keepsAnExistingClsact() throws {
        try withDeafPair { p in
            let (ns, link) = (p.namespace, p.link)
            #expect(try TC.run(["qdisc", "add", "dev", link, "clsact"], in: ns) == 0)
            // Runs before ours (prio 1) and says "continue" (TC_ACT_UNSPEC): our drop still decides.
            #expect(try TC.run(["filter", "add", "dev", link, "ingress", "prio", "1", "handle", "7", "protocol", "all",
                                "bpf", "da", "bytecode", "1,6 0 0 4294967295,"], in: ns) == 0)
            let qdiscsBefore = try TC.text(["qdisc", "show", "dev", link], in: ns)
            let filtersBefore = try TC.text(["filter", "show", "dev", link, "ingress"], in: ns)

            let token = try p.socket.setIngressDrop(on: link)
            #expect(token == IngressDropToken(createdQdisc: false))
            #expect(try Ping.run(from: p.pingNamespace, to: p.address).received == 0)
            #expect(try TC.ingressFilters(ns, link).filter { $0.options != nil }.count == 2)

            try p.socket.clearIngressDrop(on: link, token)
            #expect(try TC.text(["qdisc", "show", "dev", link], in: ns) == qdiscsBefore)
            #expect(try TC.text(["filter", "show", "dev", link, "ingress"], in: ns) == filtersBefore)
            #expect(try Ping.run(from: p.pingNamespace, to: p.address).received == 3)

            // Without a token the clsact stays too: it still holds the other filter.
            try p.socket.setIngressDrop(on: link)
            try p.socket.clearIngressDrop(on: link)
            #expect(try TC.text(["qdisc", "show", "dev", link], in: ns) == qdiscsBefore)
            #expect(try TC.text(["filter", "show", "dev", link, "ingress"], in: ns) == filtersBefore)

            // A token that claims the qdisc does not delete it while another filter is on it.
            try p.socket.setIngressDrop(on: link)
            try p.socket.clearIngressDrop(on: link, IngressDropToken(createdQdisc: true))
            #expect(try TC.text(["qdisc", "show", "dev", link], in: ns) == qdiscsBefore)
        }
    }

    /// The older `ingress` qdisc takes the filter as well, and is never deleted.
    @Test func usesAnExistingIngressQdisc() throws {
        try withDeafPair { p in
            let (ns, link) = (p.namespace, p.link)
            #expect(try TC.run(["qdisc", "add", "dev", link, "ingress"], in: ns) == 0)
            let qdiscsBefore = try TC.text(["qdisc", "show", "dev", link], in: ns)

            let token = try p.socket.setIngressDrop(on: link)
            #expect(!token.createdQdisc)
            #expect(try p.socket.hasIngressDrop(on: link))
            #expect(try Ping.run(from: p.pingNamespace, to: p.address).received == 0)
            try p.socket.clearIngressDrop(on: link)  // no token: an ingress qdisc is never ours
            #expect(try TC.text(["qdisc", "show", "dev", link], in: ns) == qdiscsBefore)
            #expect(try QdiscWitness.all(ns, link).contains { $0.kind == "ingress" })
            #expect(try Ping.run(from: p.pingNamespace, to: p.address).received == 3)
        }
    }

    @Test func errors() throws {
        try withVeth(namespaces: 1) { v in
            let (names, ns, a, socket) = (v.names, v.ns, v.a, v.socket)
            let missing = names.link("z")
            let suffix = "in namespace \(ns[0])"
            expectError("cannot set ingress drop on \(missing) \(suffix): No such device") {
                try socket.setIngressDrop(on: missing)
            }
            expectError("cannot clear ingress drop on \(missing) \(suffix): No such device") {
                try socket.clearIngressDrop(on: missing)
            }
            expectError("cannot look for ingress drop on \(missing) \(suffix): No such device") {
                _ = try socket.hasIngressDrop(on: missing)
            }
            #expect(try !socket.hasIngressDrop(on: a))
            try socket.clearIngressDrop(on: a)  // nothing there: no error
            #expect(try !QdiscWitness.all(ns[0], a).contains { $0.kind == "clsact" })
        }
    }

    @Test func tokenIsCodable() throws {
        let token = IngressDropToken(createdQdisc: true)
        let data = try JSONEncoder().encode(token)
        #expect(String(decoding: data, as: UTF8.self) == #"{"createdQdisc":true}"#)
        #expect(try JSONDecoder().decode(IngressDropToken.self, from: data) == token)
    }
}

// MARK: - Helpers

/// `b` (198.18.0.2/24, in the second namespace) is the link whose stack goes deaf; the first namespace
/// pings it from `a` (198.18.0.1/24) and knows b's MAC for good, so that what reaches b are echo
/// requests rather than ARP requests b can no longer answer.
private struct DeafPair {
    let namespace: String
    let link: String
    let socket: NetlinkSocket
    let address: String
    let pingNamespace: String
}

private func withDeafPair(_ body: (DeafPair) throws -> Void) throws {
    try withVeth(namespaces: 2) { v in
        let right = try NetlinkSocket(namespace: v.ns[1])
        try v.socket.setUp(v.a, true)
        try v.socket.addAddress("198.18.0.1/24", to: v.a)
        try right.setUp(v.b, true)
        try right.addAddress("198.18.0.2/24", to: v.b)
        let mac = try #require(try right.link(named: v.b)).macString
        #expect(try IP.run(["-n", v.ns[0], "neigh", "replace", "198.18.0.2", "lladdr", mac, "dev", v.a,
                            "nud", "permanent"]).status == 0)
        try body(DeafPair(namespace: v.ns[1], link: v.b, socket: right, address: "198.18.0.2",
                          pingNamespace: v.ns[0]))
    }
}

/// `tc` in a namespace, as text or parsed.
enum TC {
    struct Filter {
        let entry: [String: Any]
        var kind: String? { entry["kind"] as? String }
        var priority: Int? { entry["pref"] as? Int }
        var protocolName: String? { entry["protocol"] as? String }
        /// nil for the head entry tc lists first for each priority.
        var options: [String: Any]? { entry["options"] as? [String: Any] }
    }

    static func run(_ arguments: [String], in namespace: String) throws -> Int32 {
        try runTool("tc", ["-n", namespace] + arguments).status
    }

    /// `tc -j -n NS ARGUMENTS` as it prints it.
    static func text(_ arguments: [String], in namespace: String) throws -> String {
        try runTool("tc", ["-j", "-n", namespace] + arguments).output
    }

    static func ingressFilters(_ namespace: String, _ link: String) throws -> [Filter] {
        let output = try text(["filter", "show", "dev", link, "ingress"], in: namespace)
        guard !output.isEmpty else { return [] }
        let value = try JSONSerialization.jsonObject(with: Data(output.utf8))
        return (value as? [[String: Any]] ?? []).map(Filter.init)
    }
}

/// A raw AF_PACKET socket bound to ETH_P_ALL on one link of a namespace: what libpcap opens.
final class PacketTap {
    private let fd: Int32

    init(namespace: String, link: String) throws {
        fd = try NetworkNamespace.run(in: namespace) { () throws -> Int32 in
            let ethPAll = UInt16(0x0003).bigEndian
            let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(ethPAll))
            guard fd >= 0 else { throw NetlinkError(operation: "open packet socket on", object: link, code: errno) }
            let index = Int32(if_nametoindex(link))
            // struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8].
            var address = [UInt8](repeating: 0, count: 20)
            withUnsafeBytes(of: UInt16(AF_PACKET)) { address.replaceSubrange(0..<2, with: $0) }
            withUnsafeBytes(of: ethPAll) { address.replaceSubrange(2..<4, with: $0) }
            withUnsafeBytes(of: index) { address.replaceSubrange(4..<8, with: $0) }
            let rc = address.withUnsafeBytes { raw in
                bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
            }
            guard index > 0, rc == 0 else {
                let code = errno
                close(fd)
                throw NetlinkError(operation: "bind packet socket to", object: link, code: index > 0 ? code : ENODEV)
            }
            return fd
        }
    }

    deinit { close(fd) }

    /// Every frame queued so far.
    func drain() -> [[UInt8]] {
        var frames: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count <= 0 { return frames }
            frames.append(Array(buffer[..<count]))
        }
    }

    /// An Ethernet frame with an IPv4 ICMP echo request to `destination`.
    static func isEchoRequest(_ frame: [UInt8], to destination: [UInt8]) -> Bool {
        guard frame.count >= 34, frame[12] == 0x08, frame[13] == 0x00, frame[23] == 1,
              Array(frame[30..<34]) == destination else { return false }
        let icmp = 14 + Int(frame[14] & 0x0f) * 4
        return frame.count > icmp && frame[icmp] == 8
    }
}
