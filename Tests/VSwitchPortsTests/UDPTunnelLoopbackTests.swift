// Two udp ports on 127.0.0.1 (no privileges needed): what a TCP superframe becomes on its way
// through a tunnel. The loopback keeps UDP GSO sends whole and the receiving socket takes them
// with UDP_GRO, as a veth underlay does.
import Glibc
import Testing
import VSwitchCore
import VSwitchDataPlane
import VSwitchTesting
@testable import VSwitchPorts
import VSwitchTunnel
import VSwitchWire

@Suite struct UDPTunnelLoopbackTests {
    static let mss = 1448
    static let segments = 45  // a TAP's 64 KiB superframe: more than one UDP GSO send holds

    /// Ethernet + IPv4 + TCP (with a timestamp option, 32 bytes) + `segments` x `mss` bytes, as a
    /// TAP hands it over: the TCP checksum field holding the pseudo-header sum, PSH set.
    static func superframe(sequence: UInt32) -> [UInt8] {
        let payload = segments * mss
        var f: [UInt8] = [0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x00]
        let total = 20 + 32 + payload
        var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0x12, 0x34, 0x40, 0, 64, 6, 0, 0,
                           198, 18, 0, 1, 198, 18, 0, 2]
        let ipSum = ~fold(sum(ip))
        ip[10] = UInt8(ipSum >> 8); ip[11] = UInt8(ipSum & 0xff)
        var tcp: [UInt8] = [0x9c, 0x40, 0x14, 0x51]
        tcp += [UInt8(sequence >> 24), UInt8(sequence >> 16 & 0xff), UInt8(sequence >> 8 & 0xff), UInt8(sequence & 0xff)]
        tcp += [0, 0, 0x10, 0, 0x80, 0x18, 0x1f, 0x00, 0, 0, 0, 0, 1, 1, 8, 10, 0, 0, 0, 100, 0, 0, 0, 7]
        let tcpLength = 32 + payload
        let pseudo = fold(sum(Array(ip[12..<20])) + 6 + UInt32(tcpLength))
        tcp[16] = UInt8(pseudo >> 8); tcp[17] = UInt8(pseudo & 0xff)
        f += ip + tcp
        f += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(sequence)) }
        return f
    }

    static func sum(_ bytes: [UInt8]) -> UInt32 {
        stride(from: 0, to: bytes.count, by: 2).reduce(UInt32(0)) { s, i in
            s + (UInt32(bytes[i]) << 8 | (i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0))
        }
    }

    static func fold(_ value: UInt32) -> UInt16 {
        var v = value
        while v > 0xffff { v = (v & 0xffff) + (v >> 16) }
        return UInt16(v)
    }

    static let tso = VirtioNetHeader(flags: .needsChecksum, gsoType: .tcpv4, segmentHeaderLength: 66, gsoSize: UInt16(mss),
                                     checksumStart: 34, checksumOffset: 16)

    /// Two ports that send to each other, on free loopback ports: `vxlan`, or secure with the
    /// cipher named `mode`, each with its own key pair, their handshake done.
    static func pair(_ mode: String) throws -> (a: UDPTunnelPort, b: UDPTunnelPort) {
        let ka = SecurePrivateKey.generate(), kb = SecurePrivateKey.generate()
        func encapsulation(_ own: SecurePrivateKey, _ peer: SecurePrivateKey) -> UDPTunnelPort.Encapsulation {
            mode == "vxlan" ? .vxlan
                : .secure(SecureConfiguration(privateKey: own, peers: [peer.publicKey], cipher: SecureCipher(name: mode)!))
        }
        for _ in 0..<20 {
            let pa = Int.random(in: 20_000...60_000), pb = pa + 1
            guard let a = try? UDPTunnelPort(name: "vsta", local: "127.0.0.1:\(pa)", remotes: ["127.0.0.1:\(pb)"], vni: 5,
                                             encapsulation: encapsulation(ka, kb)),
                  let b = try? UDPTunnelPort(name: "vstb", local: "127.0.0.1:\(pb)", remotes: ["127.0.0.1:\(pa)"], vni: 5,
                                             encapsulation: encapsulation(kb, ka))
            else { continue }
            if mode != "vxlan" { try handshake(a, b) }
            return (a, b)
        }
        throw PortError("no two free loopback ports")
    }

    /// Lets two secure ports answer each other's handshakes until both have a session.
    static func handshake(_ a: UDPTunnelPort, _ b: UDPTunnelPort) throws {
        let batch = PacketBatch(capacity: 8)
        let counters = PortCounters()
        for _ in 0..<200 {
            if a.peerStatus()[0].established && b.peerStatus()[0].established { return }
            for port in [a, b] { batch.count = 0; port.receive(into: batch, counters: counters) }
            usleep(2_000)
        }
        throw PortError("no handshake between the loopback ports: \(counters)")
    }

    static func send(_ frames: [[UInt8]], from port: UDPTunnelPort) {
        let batch = PacketBatch(capacity: 8)
        for frame in frames {
            #expect(batch.append(frame))
            let b = batch.buffers + (batch.count - 1)
            tso.store(to: b.pointee.frame - VirtioNetHeader.headerLength)
            b.pointee.offloadLength = VirtioNetHeader.headerLength
        }
        let counters = PortCounters()
        var indices = (0..<frames.count).map { UInt16($0) }
        port.transmit(batch, indices: &indices, count: frames.count, counters: counters)
        #expect(counters.txPackets == UInt64(frames.count * segments), "\(counters)")
    }

    /// A superframe too big for one UDP GSO send (45 segments: VXLAN sends 43 + 2, the secure
    /// mode 42 + 3) arrives as two messages and still comes out as one frame, the same bytes
    /// with a TSO header; and a message the batch cannot take whole waits for the next call
    /// rather than being cut, so each of three superframes comes out as one frame.
    @Test(arguments: ["vxlan", "chacha20-poly1305", "aes-256-gcm"])
    func aSuperframeCrossesAsOneFrame(mode: String) throws {
        let (a, b) = try Self.pair(mode)
        defer { a.close(); b.close() }
        let frames = [Self.superframe(sequence: 1000), Self.superframe(sequence: 1000 + UInt32(Self.segments * Self.mss)),
                      Self.superframe(sequence: 1000 + UInt32(2 * Self.segments * Self.mss))]
        Self.send(frames, from: a)
        // Room for the first two superframes (one merged frame plus one message of 43 or 42
        // segments at most at once), not for the third's first message as well.
        let perMessage = mode == "vxlan" ? 65_507 / (1514 + 8) : 65_507 / (1514 + 36)
        let batch = PacketBatch(capacity: perMessage + 1)
        let counters = PortCounters()
        b.receive(into: batch, counters: counters)
        var received: [(bytes: [UInt8], header: VirtioNetHeader)] = []
        func take() {
            for i in 0..<batch.count {
                let buffer = batch.buffers[i]
                #expect(buffer.offloadLength == VirtioNetHeader.headerLength)
                received.append((Array(buffer.bytes), VirtioNetHeader(loadingFrom: buffer.frame - VirtioNetHeader.headerLength)))
            }
        }
        #expect(batch.count == 2, "the third superframe waits whole")
        take()
        batch.count = 0
        b.receive(into: batch, counters: counters)
        #expect(batch.count == 1)
        take()
        #expect(b.trafficByRemote[0].rxPackets == UInt64(3 * Self.segments), "every segment arrived")
        #expect(counters.rxDrops == 0, "\(counters)")
        #expect(received.count == 3)
        for (frame, got) in zip(frames, received) {
            #expect(got.bytes.count == frame.count)
            #expect(got.bytes[66...] == frame[66...], "the payload")
            #expect(got.bytes[..<16] == frame[..<16] && got.bytes[26..<50] == frame[26..<50], "the headers")
            #expect(got.header.gsoType == .tcpv4 && got.header.gsoSize == UInt16(Self.mss) && got.header.flags.contains(.needsChecksum))
        }
    }

    /// Where the kernel refuses UDP_SEGMENT, each datagram of a superframe goes in a send of its
    /// own (VXLAN: still gathered from its headers and the frame's payload), and the far end
    /// still puts the superframe together again.
    @Test(arguments: ["vxlan", "aes-256-gcm"])
    func withoutUDPGSOEachDatagramIsSentAlone(mode: String) throws {
        let (a, b) = try Self.pair(mode)
        defer { a.close(); b.close() }
        a.udpGSO = false
        let frame = Self.superframe(sequence: 77)
        Self.send([frame], from: a)
        let batch = PacketBatch(capacity: 64)
        let counters = PortCounters()
        for _ in 0..<50 where b.trafficByRemote[0].rxPackets < UInt64(Self.segments) {
            b.receive(into: batch, counters: counters)
            if b.trafficByRemote[0].rxPackets < UInt64(Self.segments) { usleep(10_000) }
        }
        #expect(b.trafficByRemote[0].rxPackets == UInt64(Self.segments), "every datagram arrived, one by one")
        #expect(counters.rxDrops == 0, "\(counters)")
        #expect(batch.count == 1, "merged again into one frame")
        if batch.count == 1 {
            #expect(Array(batch.buffers[0].bytes)[66...] == frame[66...])
        }
    }

    /// What a tunnel port holds back (a message the batch could not take whole) reaches the
    /// switch without another datagram arriving: the data plane polls a port that says it holds
    /// input before it sleeps, although the socket is no longer readable.
    @Test func heldInputIsServedWithoutWaitingForMore() throws {
        let (a, b) = try Self.pair("vxlan")
        defer { a.close(); b.close() }
        let plane = try DataPlane(name: "vst-held", settings: LearningSwitch.Settings(), batchCapacity: 44)
        let sink = MemoryPort(name: "sink", keepsFrames: false)
        _ = try #require(try plane.attach(b))
        let out = try #require(try plane.attach(sink))
        // Everything is queued on the socket before the data plane starts: its first wake-up
        // reads all six messages into the slab, takes two superframes, and holds the third's
        // messages, with nothing left for epoll to report.
        let mss = Self.mss, n = Self.segments
        Self.send((0..<3).map { Self.superframe(sequence: 1000 + UInt32($0 * n * mss)) }, from: a)
        try plane.start()
        defer { plane.stop() }
        var payload: UInt64 = 0
        for _ in 0..<100 {
            payload = plane.perform { dp in
                let c = dp.switching.counters(out) ?? PortCounters()
                return c.txBytes - 66 * c.txPackets
            }
            if payload >= UInt64(3 * n * mss) { break }
            usleep(20_000)
        }
        #expect(payload == UInt64(3 * n * mss), "all three superframes reached the other port")
    }
}
