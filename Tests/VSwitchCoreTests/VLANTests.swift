import Testing
import VSwitchCore
import VSwitchTesting

/// 802.1Q in the core: classification, VLAN-aware learning and flooding, tagging per egress port.
@Suite struct VLANTests {
    /// An 802.1Q-tagged frame for `vlan`.
    func tagged(_ dst: UInt64, _ src: UInt64, vlan: UInt16, payload: Int = 46) -> [UInt8] {
        bytes(of: dst) + bytes(of: src) + [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xff), 0x88, 0xB5] + [UInt8](repeating: 7, count: payload)
    }
    func untagged(_ dst: UInt64, _ src: UInt64, payload: Int = 46) -> [UInt8] {
        bytes(of: dst) + bytes(of: src) + [0x88, 0xB5] + [UInt8](repeating: 7, count: payload)
    }

    /// Ports 0, 1: access VLAN 10; port 2: access VLAN 20; port 3: trunk 10,20 with native 30.
    func makeVLANSwitch() -> (LearningSwitch, [MemoryPort]) {
        let (sw, ports) = makeSwitch(ports: 4)
        sw.setVLAN(.access, tag: 10, members: [], for: 0)
        sw.setVLAN(.access, tag: 10, members: [], for: 1)
        sw.setVLAN(.access, tag: 20, members: [], for: 2)
        sw.setVLAN(.trunk, tag: 30, members: [10, 20], for: 3)
        return (sw, ports)
    }

    @Test func accessPortsReachTheirVLANOnlyAndTrunksCarryTags() {
        let (sw, ports) = makeVLANSwitch()
        // Broadcast from VLAN 10: the other VLAN 10 access port untagged, the trunk tagged 10.
        let out = send(sw, ports, from: 0, [untagged(MAC.broadcast, MAC.a)])
        #expect(out[1] == [untagged(MAC.broadcast, MAC.a)])
        #expect(out[2].isEmpty, "VLAN 20 hears nothing of VLAN 10")
        #expect(out[3] == [tagged(MAC.broadcast, MAC.a, vlan: 10)])
        // A tagged frame of VLAN 20 from the trunk: to the VLAN 20 access port, untagged.
        let back = send(sw, ports, from: 3, [tagged(MAC.broadcast, MAC.b, vlan: 20)])
        #expect(back[2] == [untagged(MAC.broadcast, MAC.b)])
        #expect(back[0].isEmpty && back[1].isEmpty)
        // Learning is per VLAN: a (VLAN 10) knows nothing of b (VLAN 20): unicast floods VLAN 10 only.
        let uni = send(sw, ports, from: 0, [untagged(MAC.b, MAC.a)])
        #expect(uni[2].isEmpty && uni[1].count == 1 && uni[3] == [tagged(MAC.b, MAC.a, vlan: 10)])
        let entries = sw.table.entries.map { ($0.mac, $0.vlan, $0.portNumber) }
        #expect(entries.contains { $0 == (MAC.a, 10, 0) } && entries.contains { $0 == (MAC.b, 20, 3) })
    }

    @Test func untaggedOnATrunkIsTheNativeVLANAndLeavesUntagged() {
        let (sw, ports) = makeVLANSwitch()
        sw.setVLAN(.access, tag: 30, members: [], for: 2)
        let out = send(sw, ports, from: 3, [untagged(MAC.broadcast, MAC.c)])
        #expect(out[2] == [untagged(MAC.broadcast, MAC.c)], "native VLAN 30 to the VLAN 30 access port")
        let back = send(sw, ports, from: 2, [untagged(MAC.c, MAC.d)])
        #expect(back[3] == [untagged(MAC.c, MAC.d)], "the native VLAN leaves the trunk untagged")
    }

    @Test func framesOfVLANsAPortDoesNotCarryAreDroppedAndCounted() {
        let (sw, ports) = makeVLANSwitch()
        sw.setVLAN(.trunk, tag: 0, members: [10, 20], for: 3)
        _ = send(sw, ports, from: 0, [tagged(MAC.broadcast, MAC.a, vlan: 20)])   // access 10, tagged 20
        _ = send(sw, ports, from: 3, [tagged(MAC.broadcast, MAC.a, vlan: 99)])   // trunk without 99
        _ = send(sw, ports, from: 3, [untagged(MAC.broadcast, MAC.a)])           // trunk without native
        #expect(sw.counters(0)!.drops(.vlanFiltered) == 1)
        #expect(sw.counters(3)!.drops(.vlanFiltered) == 2)
        // A frame tagged with the access port's own VLAN is accepted (and leaves untagged).
        let ok = send(sw, ports, from: 0, [tagged(MAC.broadcast, MAC.a, vlan: 10)])
        #expect(ok[1] == [untagged(MAC.broadcast, MAC.a)])
    }

    @Test func portsWithoutAModeCarryEveryVLANAsReceived() {
        let (sw, ports) = makeSwitch(ports: 3)
        sw.setVLAN(.access, tag: 10, members: [], for: 0)
        let out = send(sw, ports, from: 0, [untagged(MAC.broadcast, MAC.a)])
        #expect(out[1] == [tagged(MAC.broadcast, MAC.a, vlan: 10)] && out[2] == out[1], "a port without a mode is a trunk of all VLANs")
        let back = send(sw, ports, from: 1, [tagged(MAC.a, MAC.b, vlan: 10), untagged(MAC.broadcast, MAC.c)])
        #expect(back[0] == [untagged(MAC.a, MAC.b)], "VLAN 10 reaches the access port untagged")
        #expect(back[2] == [untagged(MAC.broadcast, MAC.c)], "untagged is VLAN 0 and stays untagged")
        // Back to no modes anywhere: VLAN-unaware again, tags are just bytes.
        sw.setVLAN(.none, tag: 0, members: [], for: 0)
        let plain = send(sw, ports, from: 1, [tagged(MAC.broadcast, MAC.b, vlan: 55)])
        #expect(plain[0] == [tagged(MAC.broadcast, MAC.b, vlan: 55)])
    }

    @Test func retaggingMovesTheVirtioHeaderOffsets() {
        let (sw, ports) = makeVLANSwitch()
        // A TSO-style header: hdr_len 54, csum_start 34 (after an untagged Ethernet + IPv4 header).
        let frame = untagged(MAC.broadcast, MAC.a, payload: 100)
        let batch = PacketBatch(capacity: 4)
        #expect(batch.append(frame))
        let b = batch.buffers
        let header: [UInt8] = [1, 1, 54, 0, 0x10, 0x05, 34, 0, 16, 0]
        header.withUnsafeBytes { (b.pointee.frame - 10).copyMemory(from: $0.baseAddress!, byteCount: 10) }
        b.pointee.offloadLength = 10
        let capture = OffloadCapture(name: "trunk")
        sw.detach(3)
        _ = sw.attach(capture)
        sw.setVLAN(.trunk, tag: 30, members: [10, 20], for: 3)
        sw.process(batch, from: 0, now: 0)
        sw.flush(batch)
        #expect(capture.headers.count == 1)
        #expect(capture.headers.first.map { Array($0[2..<4]) + Array($0[6..<8]) } == [58, 0, 38, 0], "hdr_len and csum_start moved by 4")
        #expect(capture.frames.first.map { Array($0[12..<16]) } == [0x81, 0x00, 0, 10])
        _ = ports
    }

    @Test func randomFramesThroughVLANPortsNeverTrap() {
        let (sw, ports) = makeVLANSwitch()
        var rng = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            let n = Int(rng.next() % 80)
            var f = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if n > 16 && rng.next() % 2 == 0 { f[12] = 0x81; f[13] = 0 }
            if n > 6 { f[6] &= 0xFE }
            _ = send(sw, ports, from: Int(rng.next() % 4), [f])
        }
    }
}

/// A port that keeps each frame and the virtio-net header in front of it.
final class OffloadCapture: Port {
    let name: String
    var readinessDescriptor: Int32 { -1 }
    var frames: [[UInt8]] = []
    var headers: [[UInt8]] = []
    init(name: String) { self.name = name }
    func receive(into batch: PacketBatch, counters: PortCounters) {}
    func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        for i in 0..<count {
            let b = batch.buffers[Int(indices[i])]
            frames.append(Array(b.bytes))
            if b.offloadLength == 10 { headers.append(Array(UnsafeRawBufferPointer(start: b.frame - 10, count: 10))) }
        }
    }
}

@Suite struct VLANTrunkWithoutNativeTests {
    @Test func aTrunkWithoutANativeVLANCarriesNoUntaggedFrames() {
        let (sw, ports) = makeSwitch(ports: 3)
        sw.setVLAN(.trunk, tag: 0, members: [10], for: 1)
        sw.setVLAN(.access, tag: 10, members: [], for: 2)
        // Port 0 has no mode: its untagged frames are VLAN 0, which the trunk does not carry.
        let out = send(sw, ports, from: 0, [bytes(of: MAC.broadcast) + bytes(of: MAC.a) + [0x88, 0xB5] + [UInt8](repeating: 1, count: 46)])
        #expect(out[1].isEmpty && out[2].isEmpty)
    }
}
