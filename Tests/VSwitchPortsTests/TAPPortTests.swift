import Foundation
import Testing
import VSwitchCore
import VSwitchNetlink
import VSwitchPorts
import VSwitchSystem
import VSwitchWire

/// TAP ports on real devices, in fresh namespaces named `vstTAP<hex>` (root only; CI runs as root).
@Suite(.serialized) struct TAPPortTests {
    /// A transmit of many frames goes out as one io_uring submission of writes (a single frame as
    /// one write(2)); either way every frame arrives, in order, and is counted once. The frames are
    /// UDP datagrams to a socket in the TAP's namespace, so the kernel's own stack is the judge.
    @Test(.enabled(if: getuid() == 0), arguments: [1, 2, 40, 64])
    func framesWrittenInABatchArriveInOrderAndAreCounted(_ count: Int) throws {
        let id = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        let namespace = "vstTAP\(id)"
        try NetworkNamespace.create(namespace)
        defer { try? NetworkNamespace.delete(namespace) }

        let mac: [UInt8] = [0x02, 0, 0, 0, 0x77, 0x01]
        let port = try TAPPort(name: "vsttap\(id)", namespace: namespace)
        defer { port.close() }
        try port.configure(mac: mac, mtu: nil, address: "198.18.77.1/24")

        // A UDP socket in the namespace, on the TAP's address.
        let fd: Int32 = try NetworkNamespace.run(in: namespace) { socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0) }
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(5001).bigEndian
        address.sin_addr.s_addr = UInt32(198 << 24 | 18 << 16 | 77 << 8 | 1).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let batch = PacketBatch(capacity: 64)
        for n in 0..<count { #expect(batch.append(Self.datagram(to: mac, number: UInt32(n)))) }
        let indices = (0..<count).map { UInt16($0) }
        let counters = PortCounters()
        port.transmit(batch, indices: indices, count: count, counters: counters)
        #expect(counters.txPackets == UInt64(count))
        #expect(counters.txBytes == UInt64(count * 60))
        #expect(counters.txDrops == 0 && counters.txErrors == 0)

        var received: [UInt32] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while received.count < count {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 { break }
            #expect(n == 4)
            received.append(UInt32(buffer[0]) << 24 | UInt32(buffer[1]) << 16 | UInt32(buffer[2]) << 8 | UInt32(buffer[3]))
        }
        #expect(received == (0..<UInt32(count)).map { $0 }, "every frame, once, in order")
    }

    /// An Ethernet frame of 60 bytes with an IPv4 UDP datagram from 198.18.77.2 to 198.18.77.1:5001
    /// carrying `number` (big-endian), padded as Ethernet pads.
    static func datagram(to mac: [UInt8], number: UInt32) -> [UInt8] {
        var ip: [UInt8] = [0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 77, 2, 198, 18, 77, 1]
        let sum = ip.withUnsafeBytes { InternetChecksum.compute($0) }
        ip[10] = UInt8(sum >> 8); ip[11] = UInt8(sum & 0xff)
        let udp: [UInt8] = [0x13, 0x89, 0x13, 0x89, 0, 12, 0, 0]
        let payload = withUnsafeBytes(of: number.bigEndian) { Array($0) }
        let frame = mac + [0x02, 0, 0, 0, 0x77, 0x02, 0x08, 0x00] + ip + udp + payload
        return frame + [UInt8](repeating: 0, count: 60 - frame.count)
    }
}
