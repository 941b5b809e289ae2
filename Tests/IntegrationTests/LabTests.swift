import Foundation
import Testing

/// `vswitchctl lab`: real namespaces, a lab vswitchd of its own, built and removed again.
@Suite(.enabled(if: Privilege.canRun, "needs root (runs in CI)"))
struct LabTests {
    /// A lab name unique to this test run: `vst` + a tag letter + 3 hex digits (8 characters at most).
    static func labName(_ tag: String) -> String { "vst" + tag + String(format: "%03x", Int.random(in: 0..<4096)) }

    static func write(_ yaml: String, in h: Harness, as name: String = "lab.yaml") throws -> String {
        let path = h.directory + "/" + name
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Namespaces and root links whose names start with `prefix`.
    static func leftovers(_ prefix: String) throws -> [String] {
        let ns = try run("ip", ["netns", "list"]).stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
        let links = try run("ip", ["-o", "link", "show"]).stdout.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: ":")
            return parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init) : nil
        }
        return (ns + links).filter { $0.hasPrefix(prefix) }
    }

    /// Removes the lab whatever state the test left it in.
    static func withLab(_ tag: String, _ body: (Harness, String, (String) throws -> String) throws -> Void) throws {
        try withHarness(tag) { h in
            try requireRoot()
            let name = labName(tag)
            var files: [String] = []
            defer { for f in files { _ = try? h.ctl(["lab", "down", f]) } }
            try body(h, name) { yaml in
                let f = try write(yaml, in: h, as: "lab\(files.count).yaml")
                files.append(f)
                return f
            }
        }
    }

    /// The vlans.yaml example: two VLANs on one switch, a router node with a leg in each.
    @Test func vlansExampleKeepsVLANsApartUntilTheRouterForwards() throws {
        try Self.withLab("v") { h, name, file in
            let example = try String(contentsOfFile: packageRoot + "/etc/labs/vlans.yaml", encoding: .utf8)
            let f = try file(example.replacingOccurrences(of: "name: vlans", with: "name: \(name)"))
            try h.ctlOK(["lab", "up", f])
            func ping(_ from: String, _ to: String) throws -> Bool {
                try h.ctl(["lab", "exec", f, from, "--", "ping", "-c", "2", "-i", "0.2", "-W", "1", to]).status == 0
            }
            #expect(try ping("h1", "198.18.10.254"), "h1 reaches the router in VLAN 10")
            #expect(try ping("h2", "198.18.20.254"), "h2 reaches the router in VLAN 20")
            #expect(try !ping("h1", "198.18.20.1"), "no forwarding yet: VLAN 10 does not reach VLAN 20")
            try h.ctlOK(["lab", "exec", f, "r1", "--", "sysctl", "-qw", "net.ipv4.ip_forward=1"])
            #expect(try ping("h1", "198.18.20.1"), "through the router")
            // `lab exec` hands the command vswitchctl's own stdin and stdout.
            let echoed = try run(productsDirectory + "/vswitchctl", ["lab", "exec", f, "r1", "--", "cat"], environment: h.environment,
                                 input: Data("through r1\n".utf8))
            #expect(echoed.status == 0 && echoed.stdout == "through r1\n", "\(echoed)")
        }
    }

    @Test func twoHostsUpStatusDown() throws {
        try Self.withLab("a") { h, name, file in
            let before = try Self.leftovers(name)
            #expect(before.isEmpty)
            let example = try String(contentsOfFile: packageRoot + "/etc/labs/two-hosts.yaml", encoding: .utf8)
            let f = try file(example.replacingOccurrences(of: "name: two", with: "name: \(name)"))
            let up = try h.ctlOK(["lab", "up", f])
            #expect(up.contains("created namespace \(name)-h1") && up.contains("up: 2 node(s)"), "\(up)")
            // Every node pings every other.
            for (from, to) in [("h1", "198.18.0.2"), ("h2", "198.18.0.1")] {
                let r = try h.ctl(["lab", "exec", f, from, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", to])
                #expect(r.status == 0, "\(from) -> \(to): \(r)")
            }
            let status = try h.ctlJSON(["lab", "status", f])
            let reach = status["reachability"] as? [[String: Any]] ?? []
            #expect(reach.count == 2 && reach.allSatisfy { $0["reachable"] as? Bool == true }, "\(status)")
            let text = try h.ctlOK(["lab", "status", f])
            #expect(text.contains("reachable") && text.contains("yes") && !text.contains("NO"))

            // A second up changes nothing.
            let again = try h.ctlOK(["lab", "up", f])
            #expect(again.contains("0 change(s)"), "\(again)")
            #expect(!again.contains("created"))

            let down = try h.ctlOK(["lab", "down", f])
            #expect(down.contains("stopped vswitchd"))
            #expect(try Self.leftovers(name).isEmpty, "down leaves nothing behind")
            #expect(!FileManager.default.fileExists(atPath: "/run/vswitch/lab-\(name).sock"))
            #expect(try run("pgrep", ["-f", "lab-\(name).sock"]).status != 0, "the lab's vswitchd is gone")
        }
    }

    @Test func impairmentsDelayAndLoss() throws {
        try Self.withLab("i") { h, name, file in
            let f = try file("""
                name: \(name)
                switches: { sw1: {} }
                nodes:
                  h1: { links: [ { switch: sw1, addr: 198.18.0.1/24, delay: 20ms } ] }
                  h2: { links: [ { switch: sw1, addr: 198.18.0.2/24, loss: 100% } ] }
                  h3: { links: [ { switch: sw1, addr: 198.18.0.3/24 } ] }
                """)
            try h.ctlOK(["lab", "up", f])
            let r = try h.ctl(["lab", "exec", f, "h3", "--", "ping", "-c", "5", "-i", "0.2", "198.18.0.1"])
            #expect(r.status == 0)
            let rtts = r.stdout.split(separator: "\n").compactMap { line -> Double? in
                guard let t = line.range(of: "time=") else { return nil }
                return Double(line[t.upperBound...].split(separator: " ")[0])
            }
            #expect(rtts.count == 5 && rtts.allSatisfy { $0 >= 20 }, "every RTT across the 20 ms link is at least 20 ms: \(rtts)")
            let lost = try h.ctl(["lab", "exec", f, "h3", "--", "ping", "-c", "5", "-i", "0.2", "-W", "1", "198.18.0.2"])
            #expect(lost.status != 0 && lost.stdout.contains("100% packet loss"), "\(lost)")
        }
    }

    @Test func badFileChangesNothingAndNamesLineAndField() throws {
        try Self.withLab("b") { h, name, file in
            let f = try file("""
                name: \(name)
                switches: { sw1: {} }
                nodes:
                  h1:
                    links:
                      - { switch: sw1, addr: 198.18.0.1/24 }
                  h2:
                    links:
                      - { switch: sw1, addr: 198.18.0.300/24 }
                """)
            let r = try h.ctl(["lab", "up", f])
            #expect(r.status == 1)
            #expect(r.stderr.hasPrefix("vswitchctl: \(f):9: nodes.h2.links[0].addr"), "\(r.stderr)")
            #expect(try Self.leftovers(name).isEmpty, "nothing was created")
            #expect(!FileManager.default.fileExists(atPath: "/run/vswitch/lab-\(name).sock"))
        }
    }

    @Test func failureMidwayRemovesWhatWasMade() throws {
        try Self.withLab("f") { h, name, file in
            let f = try file("""
                name: \(name)
                switches: { sw1: {} }
                nodes:
                  h1: { links: [ { switch: sw1, addr: 198.18.0.1/24 }, { node: r1, addr: 198.18.1.1/24, peer-addr: 198.18.1.2/24 } ] }
                  r1: { links: [ { switch: sw1, addr: 198.18.0.9/24 } ], routes: [ { to: 198.19.0.0/24, via: 198.18.0.1 } ] }
                """)
            var env = h.environment
            for n in [1, 3, 6, 9] {
                env["VSWITCH_LAB_FAIL_AFTER"] = String(n)
                let r = try run(productsDirectory + "/vswitchctl", ["lab", "up", f], environment: env)
                #expect(r.status == 1 && r.stderr.contains("injected failure"), "fail after \(n): \(r)")
                #expect(r.stdout.contains("rolled back \(n) change(s)"), "\(r.stdout)")
                #expect(try Self.leftovers(name).isEmpty, "fail after \(n): nothing left")
                #expect(try run("pgrep", ["-f", "lab-\(name).sock"]).status != 0, "no lab vswitchd left")
            }
            // Without the hook the same file comes up whole, veth and route included.
            let up = try h.ctlOK(["lab", "up", f])
            #expect(up.contains("veth"))
            #expect(try h.ctl(["lab", "exec", f, "h1", "--", "ping", "-c", "1", "-W", "2", "198.18.1.2"]).status == 0)
            #expect(try h.ctl(["lab", "exec", f, "r1", "--", "ip", "route", "show", "198.19.0.0/24"]).stdout.contains("via 198.18.0.1"))
        }
    }
}

/// The package root, for the example files under etc/.
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    return FileManager.default.currentDirectoryPath
}()
