// NeighbourShim: what turns a TUN device (IP packets, no link layer) into a station on an Ethernet
// switch, with no I/O of its own, so every byte of it can be tested without a device.
//
// What it does. The TUN side gets a MAC address of its own (`mac`). Toward the switch the shim
// behaves like the host behind the TUN would on a LAN: it answers ARP requests and IPv6 neighbour
// solicitations for the host's addresses (its `peers`), and it resolves the next hop of every packet
// the host sends, asking with ARP or a neighbour solicitation when it does not know it yet. Frames
// the switch delivers lose their Ethernet header on the way into the TUN; packets from the TUN gain
// one on the way out. There is no router: a packet to an off-link destination is resolved by its own
// destination address, which works on one segment and when the switch side answers for remote
// addresses (proxy ARP). Replies to off-link senders do reach them: the neighbour table learns the
// source MAC of every IP frame delivered to the TUN, which for a routed packet is the router's.
//
// Threading rule. Owned by one TUN port, so by one data-plane thread: no locks. The control plane
// builds it and may add peers before the port is attached, never after.
//
// The numbers. 64 neighbours, confirmed entries living 5 minutes; 16 held packets, each dropped after
// 1 second without an answer (Linux waits about as long: 3 probes 1 s apart for the first packet,
// keeping 101 packets meanwhile; a switch port has no reason to buffer that much); 32 made-up frames
// waiting for the next receive. All storage is allocated at init; the per-frame paths
// (`decapsulate`, `encapsulate`, `emitPending`) allocate nothing, take no lock, and read each header
// once through VSwitchWire's checked views, so hostile frames and packets are counted, never trusted.
import VSwitchCore
import VSwitchWire

/// The ARP / neighbour-discovery / Ethernet half of a TUN port. See the essay above.
public final class NeighbourShim {
    /// What `decapsulate` made of a frame from the switch.
    public enum Decapsulation: Equatable, Sendable {
        /// Write the virtio-net header the shim wrote, then `length` bytes of IP packet starting 14
        /// bytes into the frame (past the Ethernet header, before any padding), to the TUN.
        case packet(length: Int)
        /// ARP or neighbour discovery the shim took care of: answered, or learned from.
        case handled
        /// Not for this port: another host's unicast, ARP for someone else, router discovery.
        case ignored
        /// Dropped and counted in the port's counters under this reason.
        case dropped(DropReason)
    }

    /// What the shim did besides forwarding, for diagnostics and tests.
    public struct Statistics: Equatable, Sendable {
        public var arpRepliesSent: UInt64 = 0
        public var advertisementsSent: UInt64 = 0
        public var arpRequestsSent: UInt64 = 0
        public var solicitationsSent: UInt64 = 0
        /// Held packets sent on once their next hop answered.
        public var packetsReleased: UInt64 = 0
        /// Frames from the switch that were not meant for the TUN.
        public var framesIgnored: UInt64 = 0
        /// Made-up frames lost because the control-frame queue was full.
        public var controlFramesLost: UInt64 = 0
        public init() {}
    }

    /// Most `--peer` addresses one port answers for.
    public static let maxPeers = 16

    /// The TUN side's MAC address: the source of everything the shim sends into the switch.
    public let mac: MACAddress
    /// How long a packet waits for its next hop, in nanoseconds.
    public let holdTimeout: UInt64
    public internal(set) var statistics = Statistics()

    let peerStorage: UnsafeMutablePointer<PeerAddress>
    private(set) var peerCount = 0
    let neighbours: NeighbourTable
    let held: HoldQueue
    let outbox: ControlFrameQueue

    /// A shim answering for `peers` (at most `maxPeers`) as `mac` (unicast, non-zero).
    public init(mac: MACAddress, peers: [PeerAddress],
                neighbourCapacity: Int = 64, neighbourLifetime: UInt64 = 300_000_000_000,
                holdCapacity: Int = 16, holdTimeout: UInt64 = 1_000_000_000, controlFrameCapacity: Int = 32) {
        precondition(mac.isUnicast && !mac.isZero, "the TUN side's MAC must be a unicast address")
        precondition(peers.count <= Self.maxPeers, "at most \(Self.maxPeers) peer addresses")
        self.mac = mac
        self.holdTimeout = holdTimeout
        peerStorage = .allocate(capacity: Self.maxPeers)
        neighbours = NeighbourTable(capacity: neighbourCapacity, lifetime: neighbourLifetime)
        held = HoldQueue(capacity: holdCapacity)
        outbox = ControlFrameQueue(capacity: controlFrameCapacity)
        for peer in peers { _ = addPeer(peer) }
    }

    deinit { peerStorage.deallocate() }

    // MARK: - Control plane

    /// The addresses the shim answers for.
    public var peers: [PeerAddress] { (0..<peerCount).map { peerStorage[$0] } }

    /// Adds a peer address (before the port is attached). False when the shim already has
    /// `maxPeers`; true, changing nothing, when it has this one.
    @discardableResult
    public func addPeer(_ peer: PeerAddress) -> Bool {
        if (0..<peerCount).contains(where: { peerStorage[$0].key == peer.key }) { return true }
        guard peerCount < Self.maxPeers else { return false }
        (peerStorage + peerCount).initialize(to: peer)
        peerCount += 1
        return true
    }

    /// The MAC address the shim would send a packet for `address` to, if known and fresh.
    public func neighbour(_ address: IPv4Address, now: UInt64) -> MACAddress? {
        neighbours.lookup(IPv6Address(ipv4Mapped: address), now: now)
    }

    public func neighbour(_ address: IPv6Address, now: UInt64) -> MACAddress? {
        neighbours.lookup(address, now: now)
    }

    /// Known neighbours (IPv4 ones IPv4-mapped). Allocates: for diagnostics.
    public func neighbourEntries(now: UInt64) -> [(address: IPv6Address, mac: MACAddress)] {
        neighbours.entries(now: now)
    }

    /// Packets from the TUN still held: waiting for an answer, or answered and not yet sent on.
    public var heldPacketCount: Int { held.waitingCount + held.readyCount }

    // MARK: - Housekeeping

    /// Whether `emitPending` has frames for the switch: answers, solicitations, released packets.
    @inline(__always)
    public var hasPendingFrames: Bool { outbox.count > 0 || held.readyCount > 0 }

    /// When the next held packet times out (nanoseconds, the caller's clock); nil if none waits.
    public var nextDeadline: UInt64? { held.nextDeadline }

    /// Drops, as `unresolved`, the held packets whose next hop did not answer in time.
    public func expire(now: UInt64, counters: PortCounters) {
        let expired = held.expire(now: now)
        if expired > 0 { counters.drop(.unresolved, count: UInt64(expired)) }
    }

    /// Fills `buffer` (reset to an empty frame at its headroom) with the next frame for the switch:
    /// a made-up ARP or ND frame first, else the oldest released packet. False when there is none.
    public func emitPending(into buffer: UnsafeMutablePointer<PacketBuffer>, counters: PortCounters) -> Bool {
        if outbox.pop(into: buffer) { return true }
        while true {
            switch held.releaseOldest(into: buffer, source: mac) {
            case .none: return false
            case .released:
                statistics.packetsReleased &+= 1
                return true
            case .tooBig: counters.drop(.oversize)
            }
        }
    }

    /// Appends pending frames to `batch` until it is full or none are left.
    public func emitPending(into batch: PacketBatch, counters: PortCounters) {
        while hasPendingFrames && !batch.isFull {
            guard emitPending(into: batch.next, counters: counters) else { return }
            batch.commit()
        }
    }

    // MARK: - Switch to TUN

    /// Looks at a frame the switch sends to the port. For an IP packet meant for the TUN, writes
    /// the 10-byte virtio-net header to put before it at `header` (the frame's own, re-based on the
    /// IP header, or zeros for a plain frame) and returns `.packet`; the frame itself is never
    /// modified, since the switch may be sending the same buffer to other ports. ARP and neighbour
    /// discovery are answered or learned from here; drops are counted in `counters`.
    public func decapsulate(_ buffer: UnsafePointer<PacketBuffer>, header: UnsafeMutableRawPointer, now: UInt64,
                            counters: PortCounters) -> Decapsulation {
        let frame = UnsafeRawPointer(buffer.pointee.frame)
        let length = buffer.pointee.length
        guard length >= EthernetFrame.headerLength else { return drop(.transmitUnsupported,counters) }
        let destination = frame.loadMACAddress(fromByteOffset: 0)
        let source = frame.loadMACAddress(fromByteOffset: 6)
        let isOurs = destination == mac
        guard isOurs || destination.isMulticast else { return ignore() }
        guard source.isUnicast && !source.isZero else { return unwanted(isOurs,counters) }
        let payload = UnsafeRawBufferPointer(start: frame + EthernetFrame.headerLength, count: length - EthernetFrame.headerLength)
        let frameInfo = ReceivedFrame(source: source, isOurs: isOurs,
                                      checksumIsPartial: hasPartialChecksum(buffer))
        switch EtherType(rawValue: frame.loadBigEndian(fromByteOffset: 12, as: UInt16.self)) {
        case .arp:
            return handleARP(payload, frameInfo, now: now, counters: counters)
        case .ipv4:
            guard let ip = IPv4Header(validating: payload) else { return unwanted(isOurs,counters) }
            let target = ip.destination
            guard isOurs || target.isMulticast || target == .broadcast || isDirectedBroadcast(target) else { return ignore() }
            learnSender(IPv6Address(ipv4Mapped: ip.source), frameInfo, now: now)
            guard writeHeader(for: buffer, into: header) else { return drop(.transmitUnsupported,counters) }
            return .packet(length: ip.totalLength)
        case .ipv6:
            guard let ip = IPv6Header(validating: payload) else { return unwanted(isOurs,counters) }
            if ip.nextHeader == .icmpv6, ip.payloadLength > 0, NeighbourDiscovery.isNeighbourDiscovery(ip.payload[0]) {
                return handleNeighbourDiscovery(ip, frameInfo, now: now, counters: counters)
            }
            guard isOurs || ip.destination.isMulticast else { return ignore() }
            learnSender(ip.source, frameInfo, now: now)
            guard writeHeader(for: buffer, into: header) else { return drop(.transmitUnsupported,counters) }
            return .packet(length: IPv6Header.headerLength + ip.payloadLength)
        default:
            return unwanted(isOurs,counters)
        }
    }

    /// The facts about a frame from the switch that its handlers need.
    struct ReceivedFrame {
        let source: MACAddress
        let isOurs: Bool
        /// A virtio-net header says a checksum is still to be completed: do not verify one.
        let checksumIsPartial: Bool
    }

    @inline(__always)
    private func hasPartialChecksum(_ buffer: UnsafePointer<PacketBuffer>) -> Bool {
        guard buffer.pointee.offloadLength == VirtioNetHeader.headerLength else { return false }
        let flags = UnsafeRawPointer(buffer.pointee.frame - VirtioNetHeader.headerLength).load(as: UInt8.self)
        return VirtioNetHeader.Flags(rawValue: flags).contains(.needsChecksum)
    }

    /// The frame's virtio-net header re-based from the Ethernet header to the IP header, or zeros.
    @inline(__always)
    private func writeHeader(for buffer: UnsafePointer<PacketBuffer>, into header: UnsafeMutableRawPointer) -> Bool {
        guard buffer.pointee.offloadLength == VirtioNetHeader.headerLength else {
            VirtioNetHeader().store(to: header)
            return true
        }
        let offload = VirtioNetHeader(loadingFrom: buffer.pointee.frame - VirtioNetHeader.headerLength)
        guard let shifted = offload.shifted(by: -EthernetFrame.headerLength) else { return false }
        shifted.store(to: header)
        return true
    }

    // MARK: - TUN to switch

    /// Turns a packet read from the TUN into a frame for the switch, in place. The packet is
    /// `packetLength` bytes at `frame + 14`, preceded by `offloadLength` (0 or 10) bytes of
    /// virtio-net header; the buffer needs 10 bytes of headroom before `frame`. Returns true when
    /// the frame is ready (Ethernet header at `frame`, the re-based header before it as the
    /// buffer's offload); false when the packet was dropped (counted) or is held until its next
    /// hop answers the ARP request or neighbour solicitation queued for `emitPending`.
    public func encapsulate(_ buffer: UnsafeMutablePointer<PacketBuffer>, packetLength: Int, offloadLength: Int,
                            now: UInt64, counters: PortCounters) -> Bool {
        let packet = buffer.pointee.frame + EthernetFrame.headerLength
        let bytes = UnsafeRawBufferPointer(start: packet, count: packetLength)
        guard packetLength >= 1 else { counters.drop(.runt); return false }
        let etherType: EtherType
        let destination: IPv6Address
        let source: IPv6Address
        let ipLength: Int
        var nextHop: MACAddress?
        switch bytes[0] >> 4 {
        case 4:
            guard packetLength >= IPv4Header.minimumHeaderLength else { counters.drop(.runt); return false }
            guard let ip = IPv4Header(validating: bytes) else { counters.drop(.malformed); return false }
            let target = ip.destination
            guard !target.isUnspecified && !target.isLoopback else { counters.drop(.unresolved); return false }
            etherType = .ipv4
            ipLength = ip.totalLength
            destination = IPv6Address(ipv4Mapped: target)
            source = IPv6Address(ipv4Mapped: ip.source)
            if target.isMulticast {
                nextHop = MACAddress(rawValue: 0x0100_5e00_0000 | UInt64(target.rawValue & 0x7f_ffff))
            } else if target == .broadcast {
                nextHop = .broadcast
            }
        case 6:
            guard packetLength >= IPv6Header.headerLength else { counters.drop(.runt); return false }
            guard let ip = IPv6Header(validating: bytes) else { counters.drop(.malformed); return false }
            let target = ip.destination
            guard !target.isUnspecified && !target.isLoopback else { counters.drop(.unresolved); return false }
            etherType = .ipv6
            ipLength = IPv6Header.headerLength + ip.payloadLength
            destination = target
            source = ip.source
            if target.isMulticast { nextHop = MACAddress(rawValue: 0x3333_0000_0000 | target.low & 0xffff_ffff) }
        default:
            counters.drop(.malformed)
            return false
        }
        let hasOffload = offloadLength == VirtioNetHeader.headerLength
        var offload = VirtioNetHeader()
        if hasOffload {
            let read = VirtioNetHeader(loadingFrom: packet - VirtioNetHeader.headerLength)
            guard let shifted = read.shifted(by: EthernetFrame.headerLength) else { counters.drop(.malformed); return false }
            offload = shifted
        }
        if nextHop == nil { nextHop = neighbours.lookup(destination, now: now) }
        if nextHop == nil, let v4 = destination.ipv4Mapped, isDirectedBroadcast(v4) { nextHop = .broadcast }
        guard let nextHop else {
            if hasOffload { offload.store(to: packet - VirtioNetHeader.headerLength) }
            hold(packet - (hasOffload ? VirtioNetHeader.headerLength : 0), offloadLength: hasOffload ? VirtioNetHeader.headerLength : 0,
                 packetLength: ipLength, etherType: etherType, destination: destination, source: source,
                 now: now, counters: counters)
            return false
        }
        // The header read into frame + 4 ..< frame + 14 moves before the frame; then the Ethernet
        // header overwrites where it was.
        if hasOffload {
            offload.store(to: buffer.pointee.frame - VirtioNetHeader.headerLength)
            buffer.pointee.offloadLength = VirtioNetHeader.headerLength
        } else {
            buffer.pointee.offloadLength = 0
        }
        writeEthernetHeader(at: buffer.pointee.frame, to: nextHop, etherType: etherType)
        buffer.pointee.length = EthernetFrame.headerLength + ipLength
        return true
    }

    /// Keeps a packet until `destination` is resolved, asking for it unless a packet before it
    /// already did; a full queue drops it as `unresolved`.
    private func hold(_ bytes: UnsafeRawPointer, offloadLength: Int, packetLength: Int, etherType: EtherType,
                      destination: IPv6Address, source: IPv6Address, now: UInt64, counters: PortCounters) {
        let asked = held.isAwaiting(destination)
        guard held.hold(bytes, offloadLength: offloadLength, packetLength: packetLength, etherType: etherType,
                        destination: destination, deadline: now &+ holdTimeout) else {
            counters.drop(.unresolved)
            return
        }
        if !asked { solicit(destination, from: source) }
    }

    // MARK: - Shared helpers

    @inline(__always)
    func isPeer(_ address: IPv6Address) -> Bool {
        for index in 0..<peerCount where peerStorage[index].key == address { return true }
        return false
    }

    /// Whether `address` is the broadcast address of an IPv4 peer's prefix.
    @inline(__always)
    func isDirectedBroadcast(_ address: IPv4Address) -> Bool {
        for index in 0..<peerCount where peerStorage[index].directedBroadcast == address { return true }
        return false
    }

    /// Whether the shim has a use for `address`'s MAC: it knows it already, or a packet waits for it.
    @inline(__always)
    func wants(_ address: IPv6Address, now: UInt64) -> Bool {
        neighbours.contains(address, now: now) || held.isAwaiting(address)
    }

    /// Records `address` at `mac` and sends on the packets that waited for it.
    @inline(__always)
    func learn(_ address: IPv6Address, at mac: MACAddress, now: UInt64) {
        neighbours.learn(address, at: mac, now: now)
        held.resolve(address, to: mac)
    }

    /// Learns the sender of an IP frame delivered to the TUN, when it is a host's address.
    @inline(__always)
    private func learnSender(_ address: IPv6Address, _ frame: ReceivedFrame, now: UInt64) {
        if let v4 = address.ipv4Mapped {
            guard !v4.isUnspecified && !v4.isMulticast && v4 != .broadcast && !v4.isLoopback else { return }
        } else {
            guard !address.isUnspecified && !address.isMulticast && !address.isLoopback else { return }
        }
        guard !isPeer(address) else { return }
        learn(address, at: frame.source, now: now)
    }

    @inline(__always)
    func writeEthernetHeader(at bytes: UnsafeMutableRawPointer, to destination: MACAddress, etherType: EtherType) {
        _ = EthernetRepr(destination: destination, source: mac, etherType: etherType)
            .emit(into: UnsafeMutableRawBufferPointer(start: bytes, count: EthernetFrame.headerLength))
    }

    @inline(__always)
    func ignore() -> Decapsulation {
        statistics.framesIgnored &+= 1
        return .ignored
    }

    @inline(__always)
    func drop(_ reason: DropReason, _ counters: PortCounters) -> Decapsulation {
        counters.drop(reason)
        return .dropped(reason)
    }

    /// Junk: a drop when it was addressed to this port, else just not ours.
    @inline(__always)
    func unwanted(_ isOurs: Bool, _ counters: PortCounters) -> Decapsulation {
        isOurs ? drop(.transmitUnsupported,counters) : ignore()
    }

    /// Counts an answer that found the control-frame queue full: the switch gave the port a
    /// frame it could not take, so it is also a `tx-queue-full` drop.
    func lostAnswer(_ counters: PortCounters) {
        statistics.controlFramesLost &+= 1
        counters.drop(.transmitQueueFull)
    }
}
