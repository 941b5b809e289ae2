import Foundation
import Testing
import VSwitchControl

/// vswitchd's control socket and vswitchctl's contract. These need no root: switches without
/// ports use no device, and the socket and state live in the test's own temporary directory.
@Suite struct ControlTests {
    @Test func vswitchctlWithoutDaemonNamesTheSocket() throws {
        let path = NSTemporaryDirectory() + "vst-nodaemon-\(UUID().uuidString.prefix(8)).sock"
        let r = try run(productsDirectory + "/vswitchctl", ["--socket", path, "show"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("vswitchctl: ") && r.stderr.contains(path), "\(r)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one line")
        var env = ProcessInfo.processInfo.environment
        env["VSWITCH_SOCKET"] = path
        let r2 = try run(productsDirectory + "/vswitchctl", ["list-br"], environment: env)
        #expect(r2.status == 1 && r2.stderr.contains(path))
    }

    @Test func usageErrorsExit2() throws {
        for args in [["add-br"], ["no-such-command"], ["set", "br0"], ["set", "br0", "novalue"], ["add-port", "br0", "p", "--mtu", "big"]] {
            let r = try run(productsDirectory + "/vswitchctl", args)
            #expect(r.status == 2, "\(args): \(r)")
        }
        #expect(try run(productsDirectory + "/vswitchctl", ["--help"]).status == 0)
    }

    @Test func bridgesSettingsAndErrors() throws {
        try withHarness("ct") { h in
            try h.startDaemon()
            try h.ctlOK(["add-br", "br1"])
            try h.ctlOK(["add-br", "br0"])
            #expect(try h.ctlOK(["list-br"]) == "br0\nbr1\n")
            let dup = try h.ctl(["add-br", "br0"])
            #expect(dup.status == 1 && dup.stderr == "vswitchctl: bridge br0 already exists\n", "\(dup)")
            try h.ctlOK(["add-br", "br0", "--may-exist"])
            let missing = try h.ctl(["del-br", "nope"])
            #expect(missing.status == 1 && missing.stderr == "vswitchctl: no bridge named nope\n", "\(missing)")
            try h.ctlOK(["del-br", "nope", "--if-exists"])
            try h.ctlOK(["del-port", "br0", "nope", "--if-exists"])
            #expect(try h.ctl(["del-port", "br0", "nope"]).status == 1)
            #expect(try h.ctl(["add-port", "br0", "x", "--type", "bogus"]).stderr.contains("unknown port type"))
            #expect(try h.ctl(["add-port", "br0", "name-much-too-long"]).status == 1)
            #expect(try h.ctl(["add-port", "br0", "x", "--mac", "01:00:5e:00:00:01"]).stderr.contains("invalid mac"))

            try h.ctlOK(["set", "br0", "ageing-time=30", "max-macs=100", "flood-unknown=off"])
            let show = try h.ctlJSON(["show"])
            let br0 = (show["bridges"] as? [[String: Any]])?.first { $0["name"] as? String == "br0" }
            let settings = br0?["settings"] as? [String: Any]
            #expect(settings?["ageing_time"] as? Int == 30 && settings?["max_macs"] as? Int == 100 && settings?["flood_unknown"] as? Bool == false)
            for bad in ["ageing-time=0", "ageing-time=x", "max-macs=-1", "flood-unknown=maybe", "stpx=on"] {
                let r = try h.ctl(["set", "br0", bad])
                #expect(r.status == 1 && r.stderr.hasPrefix("vswitchctl: "), "\(bad): \(r)")
            }
            // A refused set changes nothing.
            #expect(try h.ctl(["set", "br0", "ageing-time=77", "max-macs=0"]).status == 1)
            let after = ((try h.ctlJSON(["show"])["bridges"] as? [[String: Any]])?.first { $0["name"] as? String == "br0" }?["settings"] as? [String: Any])
            #expect(after?["ageing_time"] as? Int == 30)

            // Empty tables still print their header.
            #expect(try h.ctlOK(["fdb", "show", "br0"]).hasPrefix("port  VLAN  MAC  Age  Type"))
            #expect(try h.ctlOK(["stats", "br0"]).hasPrefix("port  rx_packets"))
            #expect(try h.ctl(["fdb", "add", "br0", "02:00:00:00:00:01", "nope"]).stderr.contains("no port nope"))
            #expect(try h.ctl(["fdb", "del", "br0", "02:00:00:00:00:01"]).status == 1)
        }
    }

    /// Sends raw lines to the daemon's socket; the daemon answers each with an error and stays up.
    @Test func malformedRequestsGetErrorReplies() throws {
        try withHarness("jr") { h in
            try h.startDaemon()
            let client = ControlClient(path: h.socketPath, timeout: 10)
            func reply(_ line: String) throws -> [String: Any] {
                let data = try client.exchange(Data(line.utf8))
                return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
            }
            func code(_ line: String) throws -> Int? { (try reply(line)["error"] as? [String: Any])?["code"] as? Int }
            #expect(try code("this is not json") == -32700)
            #expect(try code("{\"jsonrpc\":\"2.0\",\"id\":1,") == -32700)
            #expect(try code("[1,2,3]") == -32600)
            #expect(try code("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"list-br\"}") == -32600)
            #expect(try code("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope\"}") == -32601)
            #expect(try code("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"add-br\",\"params\":{\"bridge\":5}}") == -32602)
            #expect(try code("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"add-br\",\"params\":{}}") == -32602)
            #expect(try code("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"add-port\",\"params\":{\"bridge\":\"b\",\"port\":{\"name\":\"p\",\"type\":\"tap\",\"mtu\":\"x\"}}}") == -32602)
            let msg = (try reply("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"add-br\",\"params\":{\"bridge\":5}}"))
            #expect(msg["id"] as? Int == 7)
            #expect(((msg["error"] as? [String: Any])?["message"] as? String)?.contains("bridge") == true, "\(msg)")
            // Binary garbage and an over-long line.
            _ = try? client.exchange(Data((0..<4096).map { _ in UInt8.random(in: 0...255) }.filter { $0 != 10 }) + Data([10]))
            _ = try? client.exchange(Data(repeating: 0x41, count: 2 << 20) + Data([10]))
            #expect(h.daemonIsRunning)
            try h.ctlOK(["add-br", "br0"])
            #expect(try h.ctlOK(["list-br"]) == "br0\n")
            // A valid request with a string id is answered with that id.
            let ok = try reply("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"list-br\",\"params\":{}}")
            #expect(ok["id"] as? String == "abc" && (ok["result"] as? [String: Any])?["bridges"] as? [String] == ["br0"])
        }
    }

    @Test func corruptStateFileIsSetAside() throws {
        try withHarness("cs") { h in
            try FileManager.default.createDirectory(atPath: h.stateDirectory, withIntermediateDirectories: true)
            try Data("{\"version\":1,\"bridges\":[{\"name\":".utf8).write(to: URL(fileURLWithPath: h.stateDirectory + "/state.json"))
            try h.startDaemon()
            #expect(try h.ctlOK(["list-br"]) == "")
            let files = try FileManager.default.contentsOfDirectory(atPath: h.stateDirectory)
            #expect(files.contains { $0.hasPrefix("state.json.corrupt-") }, "\(files)")
            #expect(h.log_.contains("corrupt"), "a clear log line")
            try h.ctlOK(["add-br", "br0"])
            let aside = files.first { $0.hasPrefix("state.json.corrupt-") }!
            #expect(try String(contentsOfFile: h.stateDirectory + "/" + aside, encoding: .utf8).hasPrefix("{\"version\":1,\"bridges\":[{\"name\":"), "kept as it was")
        }
    }

    @Test func stateIsPersistedBeforeTheReply() throws {
        try withHarness("sp") { h in
            try h.startDaemon()
            try h.ctlOK(["add-br", "br0"])
            try h.ctlOK(["set", "br0", "max-macs=1000"])
            let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: h.stateDirectory + "/state.json"))) as? [String: Any]
            let b = (state?["bridges"] as? [[String: Any]])?.first
            #expect(b?["name"] as? String == "br0")
            #expect((b?["settings"] as? [String: Any])?["max_macs"] as? Int == 1000)
        }
    }
}
