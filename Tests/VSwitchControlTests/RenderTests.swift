import Foundation
import Testing
import VSwitchControl

/// Golden output of the human-readable renderings and the JSON shapes scripts rely on.
@Suite struct RenderTests {
    @Test func fdbTableHasAHeaderEvenWhenEmpty() {
        let empty = FDBShowResult(bridge: "br0", entries: [], learned: 0, moved: 0, aged: 0, learnRefused: 0)
        #expect(Render.fdb(empty) == "port  VLAN  MAC  Age  Type\n")
        let r = FDBShowResult(bridge: "br0", entries: [
            FDBEntry(port: "tap0", vlan: 0, mac: "02:00:00:00:00:01", age: 12, static: false),
            FDBEntry(port: "tap10", vlan: 100, mac: "02:00:00:00:00:02", age: 0, static: true),
        ], learned: 1, moved: 0, aged: 0, learnRefused: 0)
        #expect(Render.fdb(r) == """
            port   VLAN  MAC                Age  Type
            tap0      0  02:00:00:00:00:01   12  learned
            tap10   100  02:00:00:00:00:02    -  static

            """)
    }

    @Test func statsTable() {
        let r = StatsResult(bridge: "br0", ports: [
            PortStats(port: "tap0", rxPackets: 5, rxBytes: 420, rxDrops: 1, rxErrors: 0, txPackets: 4, txBytes: 336,
                      txDrops: 0, txErrors: 0, drops: [:]),
        ])
        #expect(Render.stats(r) == """
            port  rx_packets  rx_bytes  rx_drops  rx_errors  tx_packets  tx_bytes  tx_drops  tx_errors
            tap0           5       420         1          0           4       336         0          0

            """)
    }

    @Test func showTree() {
        let r = ShowResult(bridges: [BridgeInfo(name: "br0", settings: BridgeSettings(), ports: [
            PortInfo(name: "tap0", type: "tap", netns: "h1", addr: "198.18.0.1/24", mtu: nil, mac: nil, created: true, status: "up"),
            PortInfo(name: "tap1", type: "tap", netns: nil, addr: nil, mtu: 9000, mac: nil, created: false, status: "up"),
        ], fdbSize: 2)])
        #expect(Render.show(r) == """
            Bridge br0
                ageing_time: 300  max_macs: 65536  flood_unknown: on  fdb_size: 2
                Port tap0
                    type: tap
                    netns: h1
                    addr: 198.18.0.1/24
                Port tap1
                    type: tap
                    mtu: 9000
                    existing device (kept on del-port)

            """)
    }

    @Test func jsonUsesSnakeCaseKeys() throws {
        let data = try JSONRPC.encoder().encode(PortStats(port: "p", rxPackets: 1, rxBytes: 2, rxDrops: 3, rxErrors: 4,
                                                          txPackets: 5, txBytes: 6, txDrops: 7, txErrors: 8, drops: ["runt": 3]))
        let text = String(decoding: data, as: UTF8.self)
        #expect(text == #"{"drops":{"runt":3},"port":"p","rx_bytes":2,"rx_drops":3,"rx_errors":4,"rx_packets":1,"tx_bytes":6,"tx_drops":7,"tx_errors":8,"tx_packets":5}"#)
        let params = try JSONRPC.encoder().encode(JSONRPC.Request(id: .number(1), method: "add-br", params: BridgeParams(bridge: "br0", mayExist: true)))
        #expect(String(decoding: params, as: UTF8.self) == #"{"id":1,"jsonrpc":"2.0","method":"add-br","params":{"bridge":"br0","may_exist":true}}"#)
    }

    @Test func idsRoundTrip() throws {
        for id in [JSONRPC.ID.number(7), .string("x"), .null] {
            let data = JSONRPC.encodeResponse(id: id, result: OK())
            let back = try JSONRPC.decoder().decode(JSONRPC.RawResponse.self, from: data)
            #expect((back.id ?? .null) == id && back.hasResult && back.error == nil)
        }
    }

    @Test func socketPathPrecedence() {
        #expect(ControlSocket.path(flag: "/a", environment: ["VSWITCH_SOCKET": "/b"]) == "/a")
        #expect(ControlSocket.path(flag: nil, environment: ["VSWITCH_SOCKET": "/b"]) == "/b")
        #expect(ControlSocket.path(flag: nil, environment: [:]) == "/run/vswitch/vswitchd.sock")
    }
}
