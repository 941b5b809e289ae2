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

    /// Secure remotes show their public key, an endpoint they roamed to, and the latest
    /// handshake, as `wg show` does; VXLAN remotes show none of it.
    @Test func showTunnels() {
        let keyB = "hN2XhFVx3IUtNmYqB0q6zw8m3y0sK8rYqg9wGJ0WpXM="
        let keyC = "5Kq9bq0T8J7Qe0GJtJrC1pKZyA3c5q0Pq3VtHk6xW1I="
        let secure = TunnelInfo(local: "0.0.0.0:4790", vni: 42, encap: "secure", cipher: "aes-256-gcm", remotes: [
            RemoteInfo(address: "198.51.100.7:4790", maxInnerFrame: 1436, rxPackets: 10, rxBytes: 1000, txPackets: 12, txBytes: 1200,
                       publicKey: keyB, endpoint: "198.51.100.7:4790", latestHandshake: 12.7, established: true),
            RemoteInfo(address: "192.0.2.9:4790", maxInnerFrame: 1436, rxPackets: 3, rxBytes: 300, txPackets: 4, txBytes: 400,
                       publicKey: keyC, endpoint: "203.0.113.50:61000", latestHandshake: 125, established: true),
            RemoteInfo(address: "[2001:db8::9]:4790", maxInnerFrame: 1416, rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0,
                       publicKey: keyC.replacingOccurrences(of: "5K", with: "6K"), endpoint: "[2001:db8::9]:4790", established: false),
        ])
        let vxlan = TunnelInfo(local: "0.0.0.0:4789", vni: 1, encap: "vxlan", remotes: [
            RemoteInfo(address: "198.51.100.7:4789", maxInnerFrame: 1464, rxPackets: 1, rxBytes: 60, txPackets: 2, txBytes: 120),
        ])
        let r = ShowResult(bridges: [BridgeInfo(name: "br0", settings: BridgeSettings(), ports: [
            PortInfo(name: "tun1", type: "udp", netns: nil, addr: nil, mtu: nil, mac: nil, created: true, status: "up", tunnel: secure),
            PortInfo(name: "vx0", type: "udp", netns: nil, addr: nil, mtu: nil, mac: nil, created: true, status: "up", tunnel: vxlan),
        ], fdbSize: 0)])
        #expect(Render.show(r) == """
            Bridge br0
                ageing_time: 300  max_macs: 65536  flood_unknown: on  fdb_size: 0
                Port tun1
                    type: udp
                    local: 0.0.0.0:4790  vni: 42  encap: secure (aes-256-gcm)
                    remote 198.51.100.7:4790: max inner frame 1436 (host MTU <= 1422)  rx 10  tx 12
                        public key: hN2XhFVx3IUtNmYqB0q6zw8m3y0sK8rYqg9wGJ0WpXM=
                        latest handshake: 12 s ago
                    remote 192.0.2.9:4790: max inner frame 1436 (host MTU <= 1422)  rx 3  tx 4
                        public key: 5Kq9bq0T8J7Qe0GJtJrC1pKZyA3c5q0Pq3VtHk6xW1I=
                        endpoint: 203.0.113.50:61000
                        latest handshake: 125 s ago
                    remote [2001:db8::9]:4790: max inner frame 1416 (host MTU <= 1402)  rx 0  tx 0
                        public key: 6Kq9bq0T8J7Qe0GJtJrC1pKZyA3c5q0Pq3VtHk6xW1I=
                        no handshake yet
                Port vx0
                    type: udp
                    local: 0.0.0.0:4789  vni: 1  encap: vxlan
                    remote 198.51.100.7:4789: max inner frame 1464 (host MTU <= 1450)  rx 1  tx 2

            """)
    }

    /// A port saved before version 2 of the secure mode comes back refused, with its reason.
    @Test func showRefusedPort() {
        let r = ShowResult(bridges: [BridgeInfo(name: "br0", settings: BridgeSettings(), ports: [
            PortInfo(name: "tun1", type: "udp", netns: nil, addr: nil, mtu: nil, mac: nil, created: false,
                     status: "error: port tun1 was saved with the version 1 secure mode"),
        ], fdbSize: 0)])
        #expect(Render.show(r) == """
            Bridge br0
                ageing_time: 300  max_macs: 65536  flood_unknown: on  fdb_size: 0
                Port tun1
                    type: udp
                    status: error: port tun1 was saved with the version 1 secure mode

            """)
    }

    @Test func tunnelFieldsInJSON() throws {
        let spec = PortSpec(name: "tun1", type: "udp", remotes: ["198.51.100.7:4790"], encap: "secure", keyFile: "/etc/vswitch/a.key",
                            peerKeys: ["hN2XhFVx3IUtNmYqB0q6zw8m3y0sK8rYqg9wGJ0WpXM="], pskFile: "/etc/vswitch/psk")
        let specText = String(decoding: try JSONRPC.encoder().encode(spec), as: UTF8.self)
        #expect(specText == #"{"encap":"secure","key_file":"/etc/vswitch/a.key","name":"tun1","peer_keys":["hN2XhFVx3IUtNmYqB0q6zw8m3y0sK8rYqg9wGJ0WpXM="],"psk_file":"/etc/vswitch/psk","remotes":["198.51.100.7:4790"],"type":"udp"}"#)
        #expect(try JSONRPC.decoder().decode(PortSpec.self, from: Data(specText.utf8)) == spec)
        let remote = RemoteInfo(address: "198.51.100.7:4790", maxInnerFrame: 1436, publicKey: "k", endpoint: "203.0.113.50:61000",
                                latestHandshake: 2.5, established: true)
        #expect(String(decoding: try JSONRPC.encoder().encode(remote), as: UTF8.self)
            == #"{"address":"198.51.100.7:4790","endpoint":"203.0.113.50:61000","established":true,"latest_handshake":2.5,"max_inner_frame":1436,"public_key":"k"}"#)
        // A spec saved before version 2 (no peer_keys) still decodes: vswitchd refuses it by name.
        let old = try JSONRPC.decoder().decode(PortSpec.self, from: Data(#"{"name":"tun1","type":"udp","encap":"secure","key_file":"/k"}"#.utf8))
        #expect(old.peerKeys == nil && old.pskFile == nil)
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
