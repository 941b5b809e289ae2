import Foundation
import Testing
import VSwitchControl

/// `PortSettings`: the one parser of `set-port` KEY=VALUE pairs (vswitchctl's and vswitchd's), the
/// merge rule, the rules between keys, the rendering back, and the typed and old encodings.
@Suite struct PortSettingsTests {
    func parse(_ arguments: String) throws -> PortSettings {
        try PortSettings(arguments: arguments.split(separator: " ").map(String.init))
    }

    func error(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return "\(error)" }
    }

    @Test func parsesEveryKey() throws {
        let s = try parse("delay=1.5ms jitter=500us loss=0.25% rate=100mbit learning=off isolated=yes max-macs=9 broadcast-limit=100 vlan-mode=trunk tag=5 trunks=30-32,10 stp-cost=2000 stp-port-priority=64 stp-edge=auto")
        #expect(s.delayMicroseconds == 1500 && s.jitterMicroseconds == 500 && s.lossPPM == 2500 && s.rateBytesPerSecond == 12_500_000)
        #expect(s.learning == false && s.isolated == true && s.maxMACs == 9 && s.broadcastLimit == 100)
        #expect(s.vlanMode == .trunk && s.tag == 5 && s.trunks == [10, 30, 31, 32])
        #expect(s.stpCost == 2000 && s.stpPortPriority == 64 && s.stpEdge == .auto)
        #expect(try parse("rate=none").rateBytesPerSecond == 0)
    }

    /// The messages are the ones vswitchd gave before the settings were typed.
    @Test func refusesBadValuesNamingTheKey() {
        let cases: [(String, String)] = [
            ("delay=5q", "invalid delay 5q (a duration like 20ms, 500us or 1s)"),
            ("jitter=1.0001ms", "invalid jitter 1.0001ms (a duration like 20ms, 500us or 1s)"),
            ("loss=101%", "invalid loss 101% (a percentage, 0-100%)"),
            ("rate=fast", "invalid rate fast (like 100mbit, 1gbit or 64kbps; 0 for none)"),
            ("learning=maybe", "invalid learning maybe (on or off)"),
            ("max-macs=-3", "invalid max-macs -3 (0-16777216; 0 for no port limit)"),
            ("broadcast-limit=lots", "invalid broadcast-limit lots (frames per second, 0 for none)"),
            ("vlan-mode=hybrid", "invalid vlan-mode hybrid (access, trunk or none)"),
            ("tag=5000", "invalid tag 5000 (a VLAN, 1-4094)"),
            ("trunks=10,x", "invalid trunks 10,x (VLANs 1-4094, like 10,20,30-39)"),
            ("stp-cost=0", "invalid stp-cost 0 (1-200000000)"),
            ("stp-port-priority=17", "invalid stp-port-priority 17 (0-240, in steps of 16)"),
            ("stp-edge=maybe", "invalid stp-edge maybe (auto, on or off)"),
            ("speed=10", "unknown port setting speed (known: delay, jitter, loss, rate, learning, isolated, max-macs, broadcast-limit, vlan-mode, tag, trunks, stp-cost, stp-port-priority, stp-edge)"),
            ("delay", "expected KEY=VALUE, got \"delay\""),
            // The first bad key in key order is the one reported.
            ("tag=0 delay=x", "invalid delay x (a duration like 20ms, 500us or 1s)"),
        ]
        for (arguments, message) in cases {
            #expect(error { _ = try parse(arguments) } == message, "\(arguments)")
        }
    }

    @Test func rulesBetweenKeys() throws {
        let cases: [(String, String?)] = [
            ("delay=1ms jitter=2ms", "jitter must not exceed delay"),
            ("delay=2ms jitter=2ms", nil),
            ("vlan-mode=access", "vlan-mode=access needs tag=N (the port's VLAN)"),
            ("vlan-mode=access tag=3 trunks=4", "an access port carries one VLAN: use tag=N without trunks"),
            ("vlan-mode=trunk", "vlan-mode=trunk needs trunks=LIST (and tag=N for a native VLAN)"),
            ("vlan-mode=trunk tag=3", nil),
            ("tag=3", nil),
            ("tag=3 trunks=4", nil),
        ]
        for (arguments, message) in cases {
            #expect(error { try PortSettings().merging(try parse(arguments)).validate() } == message, "\(arguments)")
        }
    }

    /// What vswitchctl checks before sending: only what the change decides whatever the port has.
    @Test func changesAreCheckedOnlyForWhatTheyDecide() throws {
        #expect(error { try parse("jitter=5ms").validateAsChange() } == nil, "the port may have a delay")
        #expect(error { try parse("trunks=5").validateAsChange() } == nil)
        #expect(error { try parse("delay=1ms jitter=5ms").validateAsChange() } == "jitter must not exceed delay")
        #expect(error { try parse("vlan-mode=access").validateAsChange() } == "vlan-mode=access needs tag=N (the port's VLAN)")
        #expect(error { try parse("vlan-mode=none").validateAsChange() } == nil)
    }

    @Test func mergeRule() throws {
        var port = try parse("delay=5ms tag=10")
        port = port.merging(try parse("trunks=20"))
        #expect(port.description == "delay=5ms tag=10 trunks=20")
        #expect(port.effectiveVLANMode == .trunk)
        // A new vlan-mode starts the VLAN settings afresh.
        port = port.merging(try parse("vlan-mode=access tag=7"))
        #expect(port.description == "delay=5ms tag=7 vlan-mode=access")
        // vlan-mode=none removes them all; other keys stay.
        port = port.merging(try parse("vlan-mode=none isolated=on"))
        #expect(port.description == "delay=5ms isolated=on")
        #expect(port.merging(try parse("delay=0ms")).delayMicroseconds == 0)
    }

    @Test func rendersBackToWhatParsesToTheSame() throws {
        let s = try parse("delay=1500us jitter=1s loss=0.0001% rate=64kbps learning=true isolated=no max-macs=0 broadcast-limit=7 tag=12 trunks=1,2,3,7,9-10 stp-cost=5 stp-port-priority=0 stp-edge=off")
        #expect(s.description == "broadcast-limit=7 delay=1500us isolated=off jitter=1s learning=on loss=0.0001% max-macs=0 rate=64kbps stp-cost=5 stp-edge=off stp-port-priority=0 tag=12 trunks=1-3,7,9-10")
        #expect(try PortSettings(parsing: s.dictionary ?? [:]) == s)
        for rate in ["100mbit", "1gbit", "1000bit", "3bps", "1500kbps", "12mbps"] {
            let r = try parse("rate=\(rate)")
            #expect(try PortSettings(parsing: r.dictionary ?? [:]) == r, "\(rate) -> \(r.description)")
        }
        #expect(try parse("rate=100mbit").description == "rate=100mbit")
        #expect(PortSettings().dictionary == nil)
    }

    func decode(_ json: String) throws -> PortSettings {
        try JSONRPC.decoder().decode(PortSettings.self, from: Data(json.utf8))
    }

    @Test func typedEncodingRoundTrips() throws {
        let s = try parse("delay=20ms loss=1% rate=100mbit learning=off vlan-mode=trunk trunks=10,20 tag=1 stp-edge=on stp-port-priority=64")
        let json = String(decoding: try JSONRPC.encoder().encode(s), as: UTF8.self)
        for field in [#""delay_us":20000"#, #""loss_ppm":10000"#, #""rate_bytes_per_second":12500000"#, #""learning":false"#,
                      #""vlan_mode":"trunk""#, #""trunks":[10,20]"#, #""stp_edge":"on""#, #""stp_port_priority":64"#] {
            #expect(json.contains(field), "\(json)")
        }
        #expect(try decode(json) == s)
        #expect(try decode(#"{"stp_edge":"on"}"#).stpEdge == .on)
        #expect(try decode(#"{"vlan_mode":"none"}"#).vlanMode == PortSettings.VLANMode.none)
    }

    @Test func oldStringMapsAreRead() throws {
        #expect(try decode(#"{"delay":"20ms","vlan-mode":"trunk","trunks":"10,20","learning":"no","max-macs":"7"}"#)
                == (try parse("delay=20ms vlan-mode=trunk trunks=10,20 learning=off max-macs=7")))
        #expect(try decode("{}") == PortSettings())
    }

    @Test func decodingChecksEachValue() {
        func decodeError(_ json: String) -> String? {
            do { _ = try decode(json); return nil } catch DecodingError.dataCorrupted(let c) { return c.debugDescription } catch { return "\(error)" }
        }
        #expect(decodeError(#"{"tag":5000}"#) == "invalid tag 5000 (a VLAN, 1-4094)")
        #expect(decodeError(#"{"loss_ppm":1000001}"#) == "invalid loss 100.0001% (a percentage, 0-100%)")
        #expect(decodeError(#"{"stp_port_priority":17}"#) == "invalid stp-port-priority 17 (0-240, in steps of 16)")
        #expect(decodeError(#"{"trunks":[0]}"#) == "invalid trunks 0 (VLANs 1-4094, like 10,20,30-39)")
        #expect(decodeError(#"{"vlan_mode":"hybrid"}"#) == "invalid vlan-mode hybrid (access, trunk or none)")
        #expect(decodeError(#"{"delay":"5q"}"#) == "invalid delay 5q (a duration like 20ms, 500us or 1s)")
        #expect(decodeError(#"{"speed":"fast"}"#)?.hasPrefix("unknown port setting speed") == true)
        #expect(decodeError(#"{"speed":5}"#)?.hasPrefix("unknown port setting") == true)
        #expect(decodeError(#"{"delay_us":-1}"#) != nil)
    }
}
