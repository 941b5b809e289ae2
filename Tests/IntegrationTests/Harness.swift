// The integration harness: real namespaces, a real vswitchd of the test's own, and vswitchctl.
//
// Rules (DEVELOPERS.md, SPEC §10): every test names what it creates with its own prefix starting
// `vst` plus a random suffix (tests run in parallel), uses addresses in 198.18.0.0/15 only, and
// removes everything it made in `cleanup()` (called from `defer`, so also when an expectation
// fails). It ends only the processes it started, by pid. `ip` is used here as an independent
// witness of what vswitchd did.
import Foundation
import Testing
import VSwitchSystem
#if canImport(Glibc)
import Glibc
#endif

enum Privilege {
    static let isRoot = geteuid() == 0
    static let inCI = ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty && $0 != "false" } ?? false
    /// Privileged tests run as root; in CI they must (a skip there would hide a failure).
    static let canRun = isRoot || inCI
}

struct CommandResult: CustomStringConvertible {
    let status: Int32
    let stdout: String
    let stderr: String
    var description: String { "status \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs a program to completion and captures its output. Children are started with
/// `ChildProcess` (posix_spawn), not Foundation's `Process`, whose `run()` crashes now and then on
/// Linux (see ChildProcess).
@discardableResult
func run(_ program: String, _ args: [String], environment: [String: String]? = nil, input: Data? = nil,
         timeout: Double = 120) throws -> CommandResult {
    let out = Pipe(), err = Pipe(), inp = Pipe()
    let p = try ChildProcess(path: program.hasPrefix("/") ? program : "/usr/bin/env",
                             arguments: program.hasPrefix("/") ? args : [program] + args, environment: environment,
                             standardInput: .descriptor(inp.fileHandleForReading.fileDescriptor),
                             standardOutput: .descriptor(out.fileHandleForWriting.fileDescriptor),
                             standardError: .descriptor(err.fileHandleForWriting.fileDescriptor))
    // The child has its own copies: close ours, or the reads below never see the end.
    try? out.fileHandleForWriting.close()
    try? err.fileHandleForWriting.close()
    try? inp.fileHandleForReading.close()
    // A watchdog: a hung command fails its test instead of hanging the run.
    let pid = p.processIdentifier
    let watchdog = DispatchWorkItem { if p.isRunning { kill(pid, SIGKILL) } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    defer { watchdog.cancel() }
    if let input { inp.fileHandleForWriting.write(input) }
    try? inp.fileHandleForWriting.close()
    // Read both pipes before waiting, so a chatty child cannot block on a full pipe.
    let group = DispatchGroup()
    nonisolated(unsafe) var errData = Data()
    group.enter()
    DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// The directory holding the built products (vswitchd, vswitchctl) next to the test bundle, or
/// the one `VSWITCH_TEST_PRODUCTS` names (to run these tests against a release build:
/// `VSWITCH_TEST_PRODUCTS=$(swift build -c release --show-bin-path) swift test --skip-build`).
let productsDirectory: String = {
    if let dir = ProcessInfo.processInfo.environment["VSWITCH_TEST_PRODUCTS"], !dir.isEmpty { return dir }
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    while dir.path != "/" {
        if FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("vswitchd").path) { return dir.path }
        dir = dir.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: exe).deletingLastPathComponent().path
}()

/// One test's world: a unique prefix, its namespaces, its daemon, its temporary directory.
final class Harness: @unchecked Sendable {
    let prefix: String
    let directory: String
    var socketPath: String { directory + "/vswitchd.sock" }
    var stateDirectory: String { directory + "/state" }
    var logPath: String { directory + "/vswitchd.log" }
    private(set) var namespaces: [String] = []
    private(set) var daemon: ChildProcess?
    private var rootLinks: [String] = []

    /// `tag`: 2-4 letters naming the test; the prefix is `vst` + tag + 3 random hex digits.
    init(_ tag: String) throws {
        prefix = "vst" + tag + String(format: "%03x", Int.random(in: 0..<4096))
        directory = NSTemporaryDirectory() + prefix + "-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    // MARK: Namespaces

    /// Creates namespace `prefix + suffix` with lo up and IPv6 off (no background ND noise)
    /// unless `ipv6` is true.
    @discardableResult
    func namespace(_ suffix: String, ipv6: Bool = false) throws -> String {
        let name = prefix + suffix
        let r = try run("ip", ["netns", "add", name])
        guard r.status == 0 else { throw HarnessError("ip netns add \(name): \(r.stderr)") }
        namespaces.append(name)
        let off = ipv6 ? "0" : "1"
        try exec(name, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=" + off])
        try exec(name, ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=" + off])
        try exec(name, ["ip", "link", "set", "lo", "up"])
        return name
    }

    @discardableResult
    func exec(_ ns: String, _ command: [String], input: Data? = nil) throws -> CommandResult {
        try run("ip", ["netns", "exec", ns] + command, input: input)
    }

    /// A root-namespace link name this test will create (removed in cleanup if still there).
    func rootLink(_ suffix: String) -> String {
        let name = prefix + suffix
        rootLinks.append(name)
        return name
    }

    private var spawned: [ChildProcess] = []

    /// Starts `command` inside `ns` in the background (output to a log file); ended in cleanup.
    /// (ChildProcess clears the signal mask the test thread runs with, so SIGTERM reaches it.)
    /// `environment`: variables added to the test's own; `appending`: keep what the log file
    /// holds (a restarted daemon's log follows its earlier lives).
    @discardableResult
    func spawn(_ ns: String, _ command: [String], log name: String, environment extra: [String: String] = [:],
               appending: Bool = false) throws -> ChildProcess {
        let path = directory + "/" + name
        if !appending || !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? log.close() }
        log.seekToEndOfFile()
        let p = try ChildProcess(path: "/usr/bin/env", arguments: ["ip", "netns", "exec", ns] + command,
                                 environment: extra.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(extra) { $1 },
                                 standardOutput: .descriptor(log.fileDescriptor), standardError: .descriptor(log.fileDescriptor))
        spawned.append(p)
        return p
    }

    // MARK: The daemon

    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["VSWITCH_SOCKET"] = socketPath
        env["VSWITCH_STATE_DIR"] = stateDirectory
        return env
    }

    /// Starts vswitchd and waits for its socket.
    func startDaemon(extraArguments: [String] = [], environment extra: [String: String] = [:]) throws {
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        defer { try? log.close() }
        log.seekToEndOfFile()
        let p = try ChildProcess(path: productsDirectory + "/vswitchd", arguments: ["--log-level", "debug"] + extraArguments,
                                 environment: environment.merging(extra) { $1 },
                                 standardOutput: .descriptor(log.fileDescriptor), standardError: .descriptor(log.fileDescriptor))
        daemon = p
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if !p.isRunning { throw HarnessError("vswitchd exited with \(p.terminationStatus):\n\(log_)") }
            if (try? ctl(["list-br"]))?.status == 0 { return }
            usleep(50_000)
        }
        throw HarnessError("vswitchd did not come up:\n\(log_)")
    }

    /// Starts another vswitchd inside namespace `ns` (its own socket and state under the test's
    /// directory); returns its socket path, for `ctl(["--socket", path, ...])`. Ended in cleanup.
    /// `environment`: variables added to the test's own (nil: those of this daemon's previous
    /// start, if any). Started again under the same name, it keeps its state directory, and its
    /// log continues.
    @discardableResult
    func startDaemon(in ns: String, name: String, environment extra: [String: String]? = nil) throws -> String {
        let socket = directory + "/\(name).sock"
        let extra = extra ?? daemonEnvironments[name] ?? [:]
        daemonEnvironments[name] = extra
        daemonNamespaces[name] = ns
        let p = try spawn(ns, [productsDirectory + "/vswitchd", "--socket", socket, "--state-dir", directory + "/\(name)-state",
                               "--log-level", "debug"], log: "\(name).log", environment: extra, appending: true)
        daemons[name] = p
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if !p.isRunning { throw HarnessError("vswitchd \(name) exited: \(log(name))") }
            if (try? ctl(["--socket", socket, "list-br"]))?.status == 0 { return socket }
            usleep(50_000)
        }
        throw HarnessError("vswitchd \(name) did not come up: \(log(name))")
    }

    /// The daemons started with `startDaemon(in:name:)`, by name (to signal them, by pid).
    private(set) var daemons: [String: ChildProcess] = [:]
    private var daemonEnvironments: [String: [String: String]] = [:]
    private var daemonNamespaces: [String: String] = [:]

    /// Sends SIGTERM to daemon `name` (by pid) and waits for it (SIGKILL after 10 s); returns its
    /// exit status.
    @discardableResult
    func stopDaemon(named name: String) -> Int32? {
        guard let p = daemons[name] else { return nil }
        if p.isRunning {
            kill(p.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while p.isRunning && Date() < deadline { usleep(10_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Stops daemon `name` and starts it again in its namespace, with its state directory and
    /// environment; returns once it answers on its socket.
    @discardableResult
    func restartDaemon(named name: String) throws -> String {
        guard let ns = daemonNamespaces[name] else { throw HarnessError("no daemon \(name) to restart") }
        stopDaemon(named: name)
        return try startDaemon(in: ns, name: name)
    }

    /// A log file a spawned process wrote.
    func log(_ name: String) -> String { (try? String(contentsOfFile: directory + "/\(name).log", encoding: .utf8)) ?? "" }

    /// Sends SIGTERM to our daemon and waits for it; returns its exit status.
    @discardableResult
    func stopDaemon() -> Int32? {
        guard let p = daemon else { return nil }
        daemon = nil
        if p.isRunning {
            kill(p.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while p.isRunning && Date() < deadline { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        }
        return p.terminationStatus
    }

    var daemonIsRunning: Bool { daemon?.isRunning ?? false }
    var daemonPID: Int32? { daemon.map(\.processIdentifier) }
    var log_: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    @discardableResult
    func ctl(_ args: [String]) throws -> CommandResult {
        try run(productsDirectory + "/vswitchctl", args, environment: environment)
    }

    /// Runs vswitchctl and requires success; returns stdout.
    @discardableResult
    func ctlOK(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = try ctl(args)
        #expect(r.status == 0, "vswitchctl \(args.joined(separator: " ")): \(r)", sourceLocation: sourceLocation)
        if r.status != 0 { throw HarnessError("vswitchctl \(args.joined(separator: " ")) failed: \(r.stderr)") }
        return r.stdout
    }

    func ctlJSON(_ args: [String]) throws -> [String: Any] {
        let out = try ctlOK(args + ["--json"])
        guard let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] else {
            throw HarnessError("not a JSON object: \(out)")
        }
        return obj
    }

    /// Per-port stats as [port: [counter: value]].
    func stats(_ bridge: String) throws -> [String: [String: Any]] {
        let obj = try ctlJSON(["stats", bridge])
        var out: [String: [String: Any]] = [:]
        for p in obj["ports"] as? [[String: Any]] ?? [] { out[p["port"] as! String] = p }
        return out
    }

    /// Starts the daemon, switch br0 and `count` hosts h1..hN, each in its own namespace behind
    /// a TAP port tN of br0, addressed 198.18.0.N/24 unless `addressed` is false.
    func switchWithHosts(_ count: Int, addressed: Bool = true) throws -> [(ns: String, port: String, ip: String)] {
        try requireRoot()
        try startDaemon()
        try ctlOK(["add-br", "br0"])
        return try (1...count).map { i in
            let ns = try namespace("h\(i)")
            let port = prefix + "t\(i)"
            let ip = "198.18.0.\(i)"
            try ctlOK(["add-port", "br0", port, "--netns", ns] + (addressed ? ["--addr", ip + "/24"] : []))
            return (ns, port, ip)
        }
    }

    // MARK: Witnesses

    /// `ip -j link show dev NAME` inside `ns`.
    func link(_ name: String, in ns: String?) throws -> [String: Any]? {
        let args = (ns.map { ["-n", $0] } ?? []) + ["-j", "-s", "link", "show", "dev", name]
        let r = try run("ip", args)
        guard r.status == 0, let arr = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] else { return nil }
        return arr.first
    }

    func macOf(_ name: String, in ns: String?) throws -> String {
        guard let l = try link(name, in: ns), let mac = l["address"] as? String else { throw HarnessError("no link \(name)") }
        return mac
    }

    /// Kernel counters of a link: (rx packets, rx bytes, tx packets, tx bytes).
    func kernelCounters(_ name: String, in ns: String?) throws -> (rxPackets: Int, rxBytes: Int, txPackets: Int, txBytes: Int) {
        guard let l = try link(name, in: ns), let s = l["stats64"] as? [String: Any],
              let rx = s["rx"] as? [String: Any], let tx = s["tx"] as? [String: Any] else { throw HarnessError("no stats for \(name)") }
        return (rx["packets"] as! Int, rx["bytes"] as! Int, tx["packets"] as! Int, tx["bytes"] as! Int)
    }

    // MARK: Cleanup

    /// Removes everything this test made: the daemon (ours, by pid), namespaces, root links, files.
    func cleanup() {
        for p in spawned where p.isRunning {
            kill(p.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while p.isRunning && Date() < deadline { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }  // ours, by pid: a stuck one must not hang the run
            p.waitUntilExit()
        }
        spawned.removeAll()
        stopDaemon()
        for ns in namespaces { _ = try? run("ip", ["netns", "del", ns]) }
        namespaces.removeAll()
        for l in rootLinks where (try? link(l, in: nil)) != nil { _ = try? run("ip", ["link", "del", l]) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs `body` with a fresh harness and always cleans up.
func withHarness(_ tag: String, _ body: (Harness) throws -> Void) throws {
    let h = try Harness(tag)
    defer { h.cleanup() }
    do { try body(h) } catch {
        Issue.record("\(error)\n--- vswitchd log ---\n\(h.log_)")
    }
}

/// Fails the test when a privileged test runs without root in CI.
func requireRoot() throws {
    if !Privilege.isRoot {
        Issue.record("this test needs root (CI runs as root)")
        throw HarnessError("not root")
    }
}
