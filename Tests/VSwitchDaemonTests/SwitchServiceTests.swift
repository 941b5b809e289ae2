import Foundation
import Logging
import Testing
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
@testable import VSwitchDaemon

/// A SwitchService over in-memory ports and a state directory of its own.
final class Fixture {
    let directory: String
    let factory = MemoryPortFactory()
    private(set) var service: SwitchService

    init() {
        directory = NSTemporaryDirectory() + "vswitch-daemon-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        service = SwitchService(store: StateStore(directory: directory), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), factory: factory)
    }

    deinit {
        service.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    struct Reply {
        var result: [String: Any]?
        var code: Int?
        var message: String?
        var ok: Bool { result != nil }
    }

    /// One JSON-RPC request through the service's entry point, as the control server hands it over.
    @discardableResult
    func request(_ method: String, _ params: String) -> Reply {
        let line = #"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(params)}"#
        let reply = try! JSONSerialization.jsonObject(with: service.handle(Data(line.utf8))) as! [String: Any]
        if let error = reply["error"] as? [String: Any] { return Reply(code: error["code"] as? Int, message: error["message"] as? String) }
        return Reply(result: reply["result"] as? [String: Any])
    }

    /// Saves fail (a directory where the temporary file goes: refused even for root) until `mendSaving`.
    func breakSaving() { try! FileManager.default.createDirectory(atPath: directory + "/state.json.tmp", withIntermediateDirectories: true) }
    func mendSaving() { try? FileManager.default.removeItem(atPath: directory + "/state.json.tmp") }

    var statePath: String { directory + "/state.json" }
    var stateText: String { (try? String(contentsOfFile: statePath, encoding: .utf8)) ?? "" }

    /// A new service on the same state directory, restored from it (a restart).
    func restart() {
        service.shutdown()
        service = SwitchService(store: StateStore(directory: directory), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), factory: factory)
        service.restore()
    }

    func bridge(_ name: String = "br0") -> SwitchService.ManagedBridge { service.bridges[name]! }
    func port(_ name: String, on bridge: String = "br0") -> SwitchService.ManagedPort? { service.bridges[bridge]?.ports.first { $0.spec.name == name } }

    /// The names of the ports attached to the bridge's data plane.
    func attached(_ bridge: String = "br0") -> [String] {
        self.bridge(bridge).dataPlane.perform { dp -> Handover<[String]> in
            Handover(dp.switching.attachedPorts.compactMap { dp.switching.port($0)?.name }.sorted())
        }.value
    }

    struct PortView {
        var options: LearningSwitch.PortOptions
        var vlan: VLANMode
        var tag: UInt16
        var maxMACs: Int
    }

    /// What the data plane holds for a port: options, VLAN mode and tag, MAC limit.
    func dataPlaneView(of name: String, on bridge: String = "br0") -> PortView? {
        guard let n = port(name, on: bridge)?.number else { return nil }
        return self.bridge(bridge).dataPlane.perform { dp -> Handover<PortView> in
            let v = dp.switching.vlanMode(n)
            return Handover(PortView(options: dp.switching.options(n), vlan: v.mode, tag: v.tag, maxMACs: dp.switching.table.limit(for: n)))
        }.value
    }
}

@Suite(.serialized) struct SwitchServiceTests {
    @Test func addSetAndDeleteAPort() throws {
        let f = Fixture()
        #expect(f.request("add-br", #"{"bridge":"br0"}"#).ok)
        #expect(f.request("add-port", #"{"bridge":"br0","port":{"name":"p1","type":"tap"}}"#).ok)
        #expect(f.attached() == ["p1"])
        let set = f.request("set-port", #"{"bridge":"br0","port":"p1","settings":{"delay_us":20000,"jitter_us":1000,"learning":false,"tag":10,"max_macs":5}}"#)
        #expect(set.ok, "\(set)")
        let device = try #require(f.factory.port("p1"))
        #expect(device.impairment == Impairment(delayNanoseconds: 20_000_000, jitterNanoseconds: 1_000_000))
        let view = try #require(f.dataPlaneView(of: "p1"))
        #expect(view.options == .noLearning && view.vlan == .access && view.tag == 10 && view.maxMACs == 5)
        // show renders the settings back to KEY=VALUE; the state file keeps them typed.
        let show = f.request("show", "{}").result?["bridges"] as? [[String: Any]]
        let shown = (show?.first?["ports"] as? [[String: Any]])?.first?["settings"] as? [String: String]
        #expect(shown == ["delay": "20ms", "jitter": "1ms", "learning": "off", "tag": "10", "max-macs": "5"])
        #expect(f.stateText.contains("\"delay_us\" : 20000"))

        #expect(f.request("del-port", #"{"bridge":"br0","port":"p1"}"#).ok)
        #expect(device.closed)
        #expect(f.attached().isEmpty && f.port("p1") == nil)
        #expect(!f.stateText.contains("p1"))
    }

    @Test func setPortMergesChanges() throws {
        let f = Fixture()
        f.request("add-br", #"{"bridge":"br0"}"#)
        f.request("add-port", #"{"bridge":"br0","port":{"name":"p1","type":"tap"}}"#)
        // The old string-map form of a change is still taken.
        #expect(f.request("set-port", #"{"bridge":"br0","port":"p1","settings":{"tag":"10","delay":"5ms"}}"#).ok)
        #expect(f.request("set-port", #"{"bridge":"br0","port":"p1","settings":{"trunks":[20,30]}}"#).ok)
        #expect(f.dataPlaneView(of: "p1")?.vlan == .trunk, "a tag, then trunks: a trunk with native VLAN 10")
        #expect(f.port("p1")?.spec.settings?.description == "delay=5ms tag=10 trunks=20,30")
        #expect(f.request("set-port", #"{"bridge":"br0","port":"p1","settings":{"vlan_mode":"none"}}"#).ok)
        #expect(f.port("p1")?.spec.settings?.description == "delay=5ms")
        #expect(f.dataPlaneView(of: "p1")?.vlan == VLANMode.none)
    }

    @Test func refusedSettingsChangeNothing() throws {
        let f = Fixture()
        f.request("add-br", #"{"bridge":"br0"}"#)
        f.request("add-port", #"{"bridge":"br0","port":{"name":"p1","type":"tap"}}"#)
        f.request("set-port", #"{"bridge":"br0","port":"p1","settings":{"delay_us":1000,"tag":10}}"#)
        let before = f.stateText
        let cases: [(String, Int, String)] = [
            (#"{"jitter_us":5000}"#, -32000, "jitter must not exceed delay"),
            (#"{"vlan_mode":"access","trunks":[3]}"#, -32000, "vlan-mode=access needs tag=N (the port's VLAN)"),
            (#"{"tag":5000}"#, -32602, "invalid params for set-port: settings: invalid tag 5000 (a VLAN, 1-4094)"),
            (#"{"delay":"5q"}"#, -32602, "invalid params for set-port: settings: invalid delay 5q (a duration like 20ms, 500us or 1s)"),
            (#"{"speed":"fast"}"#, -32602, "unknown port setting speed"),
            (#"{"learning":"maybe"}"#, -32602, "invalid learning maybe (on or off)"),
        ]
        for (settings, code, message) in cases {
            let r = f.request("set-port", #"{"bridge":"br0","port":"p1","settings":\#(settings)}"#)
            #expect(r.code == code && r.message?.contains(message) == true, "\(settings): \(r)")
        }
        #expect(f.port("p1")?.spec.settings?.description == "delay=1ms tag=10")
        #expect(f.factory.port("p1")?.impairment.delayNanoseconds == 1_000_000)
        #expect(f.stateText == before)
    }

    @Test func portKindsAreCheckedByTheFactory() {
        let f = Fixture()
        f.request("add-br", #"{"bridge":"br0"}"#)
        let cases: [(String, String)] = [
            (#"{"name":"p1","type":"bogus"}"#, "unknown port type bogus (known: tap, internal, pcap, tun, udp)"),
            (#"{"name":"p1","type":"pcap","mtu":1500}"#, "a pcap port binds an existing interface as it is"),
            (#"{"name":"p1","type":"tap","vni":5}"#, "apply to udp ports only"),
            (#"{"name":"p1","type":"tap","peers":["198.18.0.2/24"]}"#, "--peer applies to tun ports only"),
            (#"{"name":"p1","type":"tap","mtu":20}"#, "invalid mtu 20 (68-65521)"),
            (#"{"name":"p1","type":"udp","addr":"198.18.0.1/24"}"#, "a udp port is a socket, not a device"),
        ]
        for (spec, message) in cases {
            let r = f.request("add-port", #"{"bridge":"br0","port":\#(spec)}"#)
            #expect(r.message?.contains(message) == true, "\(spec): \(r)")
        }
        #expect(f.factory.opened.isEmpty && f.bridge().ports.isEmpty)
    }

    @Test func aPortThatCannotBeOpenedLeavesNothing() {
        let f = Fixture()
        f.request("add-br", #"{"bridge":"br0"}"#)
        f.factory.failing = ["p1"]
        let r = f.request("add-port", #"{"bridge":"br0","port":{"name":"p1","type":"tap"}}"#)
        #expect(r.message?.contains("cannot open TAP p1") == true, "\(r)")
        #expect(f.bridge().ports.isEmpty && f.attached().isEmpty)
        #expect(!f.stateText.contains("p1"))
    }

    @Test func aChangeThatCannotBeSavedIsUndone() throws {
        let f = Fixture()
        f.request("add-br", #"{"bridge":"br0"}"#)
        f.request("add-port", #"{"bridge":"br0","port":{"name":"p1","type":"tap"}}"#)
        f.request("set-port", #"{"bridge":"br0","port":"p1","settings":{"isolated":true}}"#)
        let before = f.stateText
        f.breakSaving()

        let add = f.request("add-port", #"{"bridge":"br0","port":{"name":"p2","type":"tap"}}"#)
        #expect(add.message?.hasPrefix("cannot save state") == true, "\(add)")
        #expect(f.port("p2") == nil && f.attached() == ["p1"])
        #expect(f.factory.port("p2")?.closed == true)

        let set = f.request("set-port", #"{"bridge":"br0","port":"p1","settings":{"isolated":false,"delay_us":3000,"vlan_mode":"trunk","trunks":[7]}}"#)
        #expect(set.message?.hasPrefix("cannot save state") == true, "\(set)")
        #expect(f.port("p1")?.spec.settings?.description == "isolated=on")
        #expect(f.factory.port("p1")?.impairment == Impairment())
        let view = try #require(f.dataPlaneView(of: "p1"))
        #expect(view.options == .isolated && view.vlan == VLANMode.none)

        let br = f.request("add-br", #"{"bridge":"br1"}"#)
        #expect(br.message?.hasPrefix("cannot save state") == true && f.service.bridges["br1"] == nil)

        #expect(f.stateText == before)
        f.mendSaving()
        #expect(f.request("add-port", #"{"bridge":"br0","port":{"name":"p2","type":"tap"}}"#).ok)
        #expect(f.attached() == ["p1", "p2"])
    }

    @Test func restoreReopensPortsWithTheirSettings() throws {
        let f = Fixture()
        f.request("add-br", #"{"bridge":"br0"}"#)
        f.request("add-port", #"{"bridge":"br0","port":{"name":"p1","type":"tap"}}"#)
        f.request("set-port", #"{"bridge":"br0","port":"p1","settings":{"delay_us":2000,"vlan_mode":"trunk","trunks":[10,11,12],"stp_edge":"on"}}"#)
        f.restart()
        #expect(f.attached() == ["p1"])
        #expect(f.port("p1")?.spec.settings?.description == "delay=2ms stp-edge=on trunks=10-12 vlan-mode=trunk")
        #expect(f.factory.port("p1")?.impairment.delayNanoseconds == 2_000_000)
        #expect(f.dataPlaneView(of: "p1")?.vlan == .trunk)
    }

    /// A state file written before the settings were typed (settings as a map of strings).
    @Test func restoreReadsAnOldStateFile() throws {
        let f = Fixture()
        let old = """
            {
              "bridges" : [
                {
                  "name" : "br0",
                  "ports" : [
                    { "name" : "p1", "type" : "tap", "settings" : { "delay" : "20ms", "jitter" : "2ms", "loss" : "1", "learning" : "no", "max-macs" : "7" } },
                    { "name" : "p2", "type" : "tap", "settings" : { "tag" : "12" } },
                    { "name" : "p3", "type" : "internal" }
                  ],
                  "settings" : { "ageing_time" : 300, "flood_unknown" : true, "max_macs" : 65536, "stp_address" : "02:99:37:88:c6:57" },
                  "static_fdb" : [ { "mac" : "02:00:00:00:00:09", "vlan" : 0, "port" : "p3" } ]
                }
              ],
              "version" : 1
            }
            """
        try old.write(toFile: f.statePath, atomically: true, encoding: .utf8)
        f.service.restore()
        #expect(f.attached() == ["p1", "p2", "p3"])
        #expect(f.factory.port("p1")?.impairment == Impairment(delayNanoseconds: 20_000_000, jitterNanoseconds: 2_000_000, lossPPM: 10_000))
        let p1 = try #require(f.dataPlaneView(of: "p1"))
        #expect(p1.options == .noLearning && p1.maxMACs == 7)
        #expect(f.dataPlaneView(of: "p2")?.vlan == .access && f.dataPlaneView(of: "p2")?.tag == 12)
        #expect(f.bridge().staticFdb.count == 1)
        // The next change saves the typed form; nothing was lost on the way.
        #expect(f.request("set-port", #"{"bridge":"br0","port":"p2","settings":{"isolated":true}}"#).ok)
        #expect(f.stateText.contains("\"loss_ppm\" : 10000") && !f.stateText.contains("\"20ms\""))
        f.restart()
        #expect(f.port("p1")?.spec.settings?.description == "delay=20ms jitter=2ms learning=off loss=1% max-macs=7")
        #expect(f.port("p2")?.spec.settings?.description == "isolated=on tag=12")
    }

    @Test func aPortThatCannotBeReopenedStaysConfigured() {
        let f = Fixture()
        f.request("add-br", #"{"bridge":"br0"}"#)
        f.request("add-port", #"{"bridge":"br0","port":{"name":"p1","type":"tap"}}"#)
        f.request("add-port", #"{"bridge":"br0","port":{"name":"p2","type":"tap"}}"#)
        f.factory.failing = ["p1"]
        f.restart()
        #expect(f.attached() == ["p2"])
        #expect(f.port("p1")?.status.hasPrefix("error: cannot open TAP p1") == true)
        // Still saved: a later start, with the device back, opens it again.
        #expect(f.request("set-port", #"{"bridge":"br0","port":"p2","settings":{"isolated":true}}"#).ok)
        #expect(f.stateText.contains("\"p1\""))
    }
}
