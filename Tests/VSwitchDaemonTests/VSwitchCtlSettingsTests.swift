import Foundation
import Testing
import VSwitchSystem

/// vswitchctl parses and checks `set-port` settings before it sends anything: a bad one is an
/// error of its own (exit 1, the daemon's message), and no connection is made to the socket.
@Suite(.serialized) struct VSwitchCtlSettingsTests {
    /// The built vswitchctl next to the test bundle (as the integration harness finds it).
    static let vswitchctl: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("vswitchctl").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return "vswitchctl"
    }()

    /// A listening Unix socket that never answers; `connections()` counts who connected.
    final class Listener {
        let path: String
        let fd: Int32
        init() throws {
            path = NSTemporaryDirectory() + "vswitchctl-test-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0, listen(fd, 8) == 0 else { throw POSIXError(.EADDRINUSE) }
        }
        deinit { close(fd); unlink(path) }
        func connections() -> Int {
            var n = 0
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return n }
                close(c)
                n += 1
            }
        }
    }

    func vswitchctl(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let errors = NSTemporaryDirectory() + "vswitchctl-test-\(UUID().uuidString).err"
        defer { unlink(errors) }
        let p = try ChildProcess(path: Self.vswitchctl, arguments: arguments, standardOutput: .null, standardError: .appending(errors))
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")
    }

    @Test func badSettingsAreRefusedBeforeSending() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.vswitchctl), "build vswitchctl first (swift build)")
        let listener = try Listener()
        let cases: [([String], String)] = [
            (["delay=5q"], "vswitchctl: invalid delay 5q (a duration like 20ms, 500us or 1s)\n"),
            (["speed=10"], "vswitchctl: unknown port setting speed (known: delay, jitter, loss, rate, learning, isolated, max-macs, broadcast-limit, vlan-mode, tag, trunks, stp-cost, stp-port-priority, stp-edge)\n"),
            (["vlan-mode=trunk"], "vswitchctl: vlan-mode=trunk needs trunks=LIST (and tag=N for a native VLAN)\n"),
            (["delay=1ms", "jitter=2ms"], "vswitchctl: jitter must not exceed delay\n"),
            (["tag=5000"], "vswitchctl: invalid tag 5000 (a VLAN, 1-4094)\n"),
        ]
        for (settings, message) in cases {
            let r = try vswitchctl(["--socket", listener.path, "--timeout", "1", "set-port", "br0", "p1"] + settings)
            #expect(r.status == 1 && r.stderr == message, "\(settings): \(r)")
            #expect(listener.connections() == 0, "\(settings): nothing may be sent")
        }
        // A good change is sent (the listener never answers: a timeout).
        let r = try vswitchctl(["--socket", listener.path, "--timeout", "1", "set-port", "br0", "p1", "jitter=5ms"])
        #expect(r.status == 1)
        #expect(listener.connections() == 1, "\(r)")
    }
}
