// Frames and a harness for the NeighbourShim tests: one TUN host (the peer, 198.18.5.2 and
// 2001:2:0:5::2 behind MAC `Fixture.portMAC`) and one host on the switch (198.18.5.1, 2001:2:0:5::1
// at `Fixture.hostMAC`). Frames are built with VSwitchWire's Reprs; checksums are checked here
// independently, over the pseudo-header, with InternetChecksum.
import Testing
import VSwitchCore
import VSwitchPorts
import VSwitchWire

enum Fixture {
    static let portMAC = MACAddress(0x02, 0x00, 0x00, 0x00, 0x05, 0x02)
    static let hostMAC = MACAddress(0x02, 0x00, 0x00, 0x00, 0x05, 0x01)
    static let otherMAC = MACAddress(0x02, 0x00, 0x00, 0x00, 0x05, 0x09)
    static let peer4 = IPv4Address(198, 18, 5, 2)
    static let host4 = IPv4Address(198, 18, 5, 1)
    static let peer6 = IPv6Address("2001:2:0:5::2")!
    static let host6 = IPv6Address("2001:2:0:5::1")!
    static let second: UInt64 = 1_000_000_000

    static func makeShim(holdCapacity: Int = 16) -> NeighbourShim {
        NeighbourShim(mac: portMAC, peers: [PeerAddress(cidr: "198.18.5.2/24")!, PeerAddress(cidr: "2001:2:0:5::2/64")!],
                      holdCapacity: holdCapacity)
    }
}

// MARK: - Building frames

func octets(_ mac: MACAddress) -> [UInt8] { mac.octets }

func emit(_ count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int?) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let written = bytes.withUnsafeMutableBytes { body($0) }
    precondition(written == count)
    return bytes
}

func ethernet(to destination: MACAddress, from source: MACAddress, type: EtherType, _ payload: [UInt8]) -> [UInt8] {
    emit(14) { EthernetRepr(destination: destination, source: source, etherType: type).emit(into: $0) } + payload
}

func arp(_ operation: ARPOperation, senderMAC: MACAddress, senderIP: IPv4Address,
         targetMAC: MACAddress = .zero, targetIP: IPv4Address) -> [UInt8] {
    emit(28) {
        ARPRepr(operation: operation, senderHardwareAddress: senderMAC, senderProtocolAddress: senderIP,
                targetHardwareAddress: targetMAC, targetProtocolAddress: targetIP).emit(into: $0)
    }
}

/// An IPv4 packet with `payloadLength` bytes of pattern after a 20-byte header.
func ipv4(from source: IPv4Address, to destination: IPv4Address, protocol: IPProtocol = .icmp, payloadLength: Int = 36) -> [UInt8] {
    emit(20) { IPv4Repr(source: source, destination: destination, protocol: `protocol`, payloadLength: payloadLength).emit(into: $0) }
        + (0..<payloadLength).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
}

func ipv6(from source: IPv6Address, to destination: IPv6Address, nextHeader: IPProtocol = .udp,
          hopLimit: UInt8 = 64, _ payload: [UInt8]) -> [UInt8] {
    emit(40) {
        IPv6Repr(source: source, destination: destination, nextHeader: nextHeader, payloadLength: payload.count,
                 hopLimit: hopLimit).emit(into: $0)
    } + payload
}

/// The ICMPv6 checksum of `message` between `source` and `destination`: RFC 8200's
/// pseudo-header (addresses, upper-layer length, next header 58) and the message.
func icmpv6Checksum(from source: IPv6Address, to destination: IPv6Address, _ message: [UInt8]) -> UInt16 {
    var pseudo = source.octets + destination.octets
    pseudo += [UInt8(message.count >> 24 & 0xff), UInt8(message.count >> 16 & 0xff), UInt8(message.count >> 8 & 0xff), UInt8(message.count & 0xff)]
    pseudo += [0, 0, 0, 58]
    var sum = InternetChecksum()
    pseudo.withUnsafeBytes { sum.add($0) }
    message.withUnsafeBytes { sum.add($0) }
    return sum.value
}

/// A neighbour solicitation or advertisement (type 135 / 136) for `target`, with a link-layer
/// address option when `linkLayer` is given, its checksum filled in (or spoilt).
func neighbourMessage(type: UInt8, flags: UInt8 = 0, target: IPv6Address, option: UInt8, linkLayer: MACAddress?,
                      source: IPv6Address, destination: IPv6Address, spoilChecksum: Bool = false) -> [UInt8] {
    var message: [UInt8] = [type, 0, 0, 0, flags, 0, 0, 0] + target.octets
    if let linkLayer { message += [option, 1] + linkLayer.octets }
    var checksum = icmpv6Checksum(from: source, to: destination, message)
    if spoilChecksum { checksum ^= 0x0101 }
    message[2] = UInt8(checksum >> 8)
    message[3] = UInt8(checksum & 0xff)
    return message
}

/// A whole solicitation frame from the host on the switch, asking for `target`.
func solicitationFrame(for target: IPv6Address, from source: IPv6Address = Fixture.host6, sourceMAC: MACAddress = Fixture.hostMAC,
                       unicast: Bool = false, hopLimit: UInt8 = 255, spoilChecksum: Bool = false) -> [UInt8] {
    let group = IPv6Address(high: 0xff02_0000_0000_0000, low: 0x0000_0001_ff00_0000 | target.low & 0xff_ffff)
    let destination = unicast ? target : group
    let destinationMAC = unicast ? Fixture.portMAC : MACAddress(rawValue: 0x3333_0000_0000 | group.low & 0xffff_ffff)
    let message = neighbourMessage(type: 135, target: target, option: 1, linkLayer: source.isUnspecified ? nil : sourceMAC,
                                   source: source, destination: destination, spoilChecksum: spoilChecksum)
    return ethernet(to: destinationMAC, from: sourceMAC, type: .ipv6,
                    ipv6(from: source, to: destination, nextHeader: .icmpv6, hopLimit: hopLimit, message))
}

/// A solicited advertisement of `target` at `mac`, unicast to the port.
func advertisementFrame(of target: IPv6Address, at mac: MACAddress, to destination: IPv6Address = Fixture.peer6) -> [UInt8] {
    let message = neighbourMessage(type: 136, flags: 0x60, target: target, option: 2, linkLayer: mac,
                                   source: target, destination: destination)
    return ethernet(to: Fixture.portMAC, from: mac, type: .ipv6,
                    ipv6(from: target, to: destination, nextHeader: .icmpv6, hopLimit: 255, message))
}

/// A virtio-net header as bytes.
func vnet(_ header: VirtioNetHeader) -> [UInt8] {
    emit(VirtioNetHeader.headerLength) { header.emit(into: $0) }
}

/// A TCP-over-IPv4 TSO description as a TAP gives it: offsets from the Ethernet header.
let tapTSOHeader = VirtioNetHeader(flags: .needsChecksum, gsoType: .tcpv4, segmentHeaderLength: 66, gsoSize: 1448,
                                   checksumStart: 34, checksumOffset: 16)
/// The same, as a TUN gives it: offsets from the IP header.
let tunTSOHeader = VirtioNetHeader(flags: .needsChecksum, gsoType: .tcpv4, segmentHeaderLength: 52, gsoSize: 1448,
                                   checksumStart: 20, checksumOffset: 16)

// MARK: - Driving the shim

/// A frame as it leaves the shim: its bytes and the offload header before it, if any.
struct EmittedFrame: Equatable {
    var bytes: [UInt8]
    var offload: [UInt8]
}

final class ShimDriver {
    let shim: NeighbourShim
    var counters = PortCounters()
    let batch = PacketBatch(capacity: 64)
    let header = UnsafeMutableRawPointer.allocate(byteCount: 10, alignment: 8)
    var now: UInt64 = 1_000 * Fixture.second

    init(_ shim: NeighbourShim = Fixture.makeShim()) { self.shim = shim }
    deinit { header.deallocate() }

    /// Hands `frame` (with `offload` before it, if given) to `decapsulate`; the result and, for a
    /// packet, the header and packet the port would write to the TUN.
    func fromSwitch(_ frame: [UInt8], offload: [UInt8]? = nil) -> (NeighbourShim.Decapsulation, written: [UInt8]?) {
        batch.reset()
        precondition(batch.append(frame))
        let b = batch.buffers
        if let offload {
            (b.pointee.frame - offload.count).copyMemory(from: offload, byteCount: offload.count)
            b.pointee.offloadLength = offload.count
        }
        let before = Array(b.pointee.bytes)
        let result = shim.decapsulate(UnsafePointer(b), header: header, now: now, counters: counters)
        #expect(Array(b.pointee.bytes) == before, "decapsulate must not modify the frame: other ports may share it")
        guard case .packet(let length) = result else { return (result, nil) }
        let written = Array(UnsafeRawBufferPointer(start: header, count: 10))
            + Array(UnsafeRawBufferPointer(start: b.pointee.frame + 14, count: length))
        return (result, written)
    }

    /// Hands a packet "read from the TUN" to `encapsulate`, laid out as TUNPort reads it; the frame
    /// for the switch if one is ready.
    func fromTUN(_ packet: [UInt8], offload: [UInt8]? = [UInt8](repeating: 0, count: 10)) -> EmittedFrame? {
        batch.reset()
        let b = batch.next
        let h = offload?.count ?? 0
        let read = (offload ?? []) + packet
        (b.pointee.frame + 14 - h).copyMemory(from: read, byteCount: read.count)
        guard shim.encapsulate(b, packetLength: packet.count, offloadLength: h, now: now, counters: counters) else { return nil }
        return emitted(b)
    }

    /// Everything the shim has for the switch now (answers, solicitations, released packets).
    func pending() -> [EmittedFrame] {
        var frames: [EmittedFrame] = []
        while shim.hasPendingFrames {
            batch.reset()
            shim.emitPending(into: batch, counters: counters)
            frames += (0..<batch.count).map { emitted(batch.buffers + $0) }
        }
        return frames
    }

    func expire(after nanoseconds: UInt64) {
        now += nanoseconds
        shim.expire(now: now, counters: counters)
    }

    private func emitted(_ b: UnsafeMutablePointer<PacketBuffer>) -> EmittedFrame {
        let h = b.pointee.offloadLength
        return EmittedFrame(bytes: Array(b.pointee.bytes),
                            offload: Array(UnsafeRawBufferPointer(start: b.pointee.frame - h, count: h)))
    }
}

/// The sum of every drop reason.
extension PortCounters {
    var allDrops: UInt64 { DropReason.allCases.reduce(0) { $0 + drops($1) } }
}
