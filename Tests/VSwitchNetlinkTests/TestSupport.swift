import Foundation
import Glibc
import Testing
@testable import VSwitchNetlink
import VSwitchSystem

/// Root-only tests: they run as root; without root they are skipped, unless CI is set (CI runs as root,
/// so there a missing root is a failure, recorded by `RootRequirement.check()`).
enum RootRequirement {
    static var isRoot: Bool { getuid() == 0 }
    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] != nil }
    /// For `.enabled(if:)`.
    static var shouldRun: Bool { isRoot || inCI }
    /// Call first in every root-only test: stops it with a failure when CI runs it without root.
    static func check() throws {
        try #require(isRoot, "CI is set but the tests do not run as root: real-namespace tests need root")
    }
}

/// Names for one test: namespaces "vstNL" + 4 hex, interfaces "vst" + 4 hex + a letter (<= 15 bytes).
struct TestNames {
    let id: String
    init() { id = String(format: "%04x", UInt16.random(in: 0...UInt16.max)) }
    func namespace(_ n: Int) -> String { "vstNL\(id)\(n)" }
    func link(_ letter: String) -> String { "vst\(id)\(letter)" }
}

/// Creates the namespaces, runs `body`, deletes them again whatever happens. Everything a test creates
/// lives in these namespaces, so deleting them removes it all.
func withNamespaces(_ names: TestNames, count: Int, _ body: ([String]) throws -> Void) throws {
    var created: [String] = []
    defer { for name in created { try? NetworkNamespace.delete(name) } }
    for n in 1...count {
        let name = names.namespace(n)
        try NetworkNamespace.create(name)
        created.append(name)
    }
    try body(created)
}

/// `ip` as an independent witness, parsed from its JSON output.
enum IP {
    /// Runs /usr/sbin/ip (or /sbin/ip) with `arguments`; returns its exit status and stdout.
    @discardableResult
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runTool("ip", arguments)
    }

    static func json(_ arguments: [String]) throws -> [[String: Any]] {
        let (status, output) = try run(["-j"] + arguments)
        guard status == 0, !output.isEmpty else { return [] }
        let value = try JSONSerialization.jsonObject(with: Data(output.utf8))
        return value as? [[String: Any]] ?? []
    }

    /// `ip -j -d -n NS link show dev NAME`, nil when there is no such link.
    static func link(_ namespace: String, _ name: String) throws -> [String: Any]? {
        try json(["-d", "-n", namespace, "link", "show", "dev", name]).first
    }

    static func links(_ namespace: String) throws -> [[String: Any]] {
        try json(["-n", namespace, "link", "show"])
    }

    /// The addr_info entries of one link: [(family, "local/prefixlen")].
    static func addresses(_ namespace: String, _ name: String) throws -> [(family: String, cidr: String)] {
        let entries = try json(["-n", namespace, "addr", "show", "dev", name]).first?["addr_info"]
            as? [[String: Any]] ?? []
        return entries.compactMap { entry in
            guard let family = entry["family"] as? String, let local = entry["local"] as? String,
                  let prefix = entry["prefixlen"] as? Int else { return nil }
            return (family, "\(local)/\(prefix)")
        }
    }

    /// `ip -j [-6] -n NS route show` as (dst, gateway, dev).
    static func routes(_ namespace: String, v6: Bool = false) throws
        -> [(destination: String, gateway: String?, device: String?)] {
        try json((v6 ? ["-6"] : []) + ["-n", namespace, "route", "show"]).map { entry in
            (entry["dst"] as? String ?? "?", entry["gateway"] as? String, entry["dev"] as? String)
        }
    }

    static func namespaces() throws -> [String] {
        try json(["netns", "list"]).compactMap { $0["name"] as? String }
    }
}

/// The calling thread's network namespace, as the target of /proc/thread-self/ns/net ("net:[4026531840]").
func currentNamespaceIdentity() -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    let count = readlink("/proc/thread-self/ns/net", &buffer, buffer.count - 1)
    return count > 0 ? String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
}

/// The message of a thrown NetlinkError, or a description of what was thrown instead.
func errorMessage(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as NetlinkError {
        return error.description
    } catch {
        return "not a NetlinkError: \(error)"
    }
}

/// Checks that `body` throws a NetlinkError whose message is `expected`, optionally followed by the
/// kernel's extended-ack text in parentheses (its wording varies between kernel versions).
func expectError(_ expected: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    guard let message = errorMessage(body) else {
        Issue.record("expected \"\(expected)\", nothing was thrown", sourceLocation: sourceLocation)
        return
    }
    let matches = message == expected || (message.hasPrefix(expected + " (") && message.hasSuffix(")"))
    #expect(matches, "got \"\(message)\"", sourceLocation: sourceLocation)
}

/// Runs an iproute2 tool (`ip`, `tc`) from /usr/sbin or /sbin with `arguments`; returns its exit
/// status and stdout (stderr is discarded).
func runTool(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let candidates = ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map { $0 + tool }
    let pipe = Pipe()
    let process = try ChildProcess(path: candidates.first { access($0, X_OK) == 0 } ?? "/usr/sbin/" + tool, arguments: arguments,
                                   standardOutput: .descriptor(pipe.fileHandleForWriting.fileDescriptor), standardError: .null)
    try? pipe.fileHandleForWriting.close()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A veth pair a/b for one test: `a` in the first of `namespaces` new namespaces, `b` in the second
/// (or beside `a` when there is one), and a netlink socket in the first. Root checked, all removed after.
struct VethFixture {
    let names: TestNames
    let ns: [String]
    let a: String
    let b: String
    let socket: NetlinkSocket
}

func withVeth(namespaces count: Int, _ body: (VethFixture) throws -> Void) throws {
    try RootRequirement.check()
    let names = TestNames()
    try withNamespaces(names, count: count) { ns in
        let a = names.link("a"), b = names.link("b")
        let socket = try NetlinkSocket(namespace: ns[0])
        try socket.createVeth(name: a, peer: b, peerNamespace: count > 1 ? ns[1] : nil)
        try body(VethFixture(names: names, ns: ns, a: a, b: b, socket: socket))
    }
}
