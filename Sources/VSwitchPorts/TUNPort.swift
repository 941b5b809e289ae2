#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import VSwitchCore
import VSwitchNetlink
import VSwitchSystem
import VSwitchWire

/// A TUN device (L3) joined to the L2 switch: the TUN side gets a MAC of its own, the port answers
/// ARP and IPv6 neighbour solicitations for the TUN host's addresses (`--peer`), and adds or strips
/// the Ethernet header. All of that is the `NeighbourShim`; this class is the device around it.
///
/// Opened like a TAP (IFF_TUN|IFF_NO_PI|IFF_VNET_HDR, TUNSETOFFLOAD CSUM|TSO4|TSO6), so TCP
/// superframes cross between TUN and TAP ports whole; a TUN's virtio-net header counts from the
/// IP header, a TAP's from the Ethernet header, and the shim re-bases it by 14 bytes each way.
///
/// The port makes frames of its own (ARP replies, solicitations, packets released once their next
/// hop answered), and the data plane only calls `receive` when `readinessDescriptor` polls
/// readable. So that descriptor is a private epoll set holding the TUN fd and an eventfd that
/// `transmit` rings when it left frames for the switch. Held packets time out through the data
/// plane's timed-port service (`nextDeadline`, `service`).
///
/// A TUN that vswitch creates is not persistent: it disappears when the port closes. An existing
/// persistent TUN in the namespace is attached to and left in place.
public final class TUNPort: TimedPort, DevicePort, LayerThreePort {
    public let name: String
    public let namespace: String?
    /// True when vswitch created the device (it disappears when the port closes).
    public let created: Bool
    /// The TUN side's MAC address on the switch.
    public let mac: MACAddress
    /// The ARP / neighbour discovery / Ethernet logic (its statistics and neighbours are readable).
    public let shim: NeighbourShim

    private var fd: Int32
    private var readiness: Epoll?
    private var doorbell: EventFD?
    /// Whether the doorbell was rung and not drained yet (saves a read per receive).
    private var doorbellRung = false
    /// The virtio-net header of the packet being written, built aside (the frame is shared).
    private let header: UnsafeMutableRawPointer
    /// Header and packet, for writev.
    private let vectors: UnsafeMutablePointer<iovec>

    public var readinessDescriptor: Int32 { readiness?.fd ?? -1 }

    /// Opens (creating if absent) TUN `name`, in namespace `namespace` if given, non-blocking.
    /// `mac` defaults to a random locally administered unicast address; `peers` are CIDRs
    /// ("198.18.5.2/24", "2001:2:0:5::2/64") of the TUN host, answered for on the switch.
    public init(name: String, namespace: String? = nil, mac: MACAddress? = nil, peers: [String] = []) throws {
        guard !name.isEmpty, name.utf8.count < Int(IFNAMSIZ), !name.contains("/"), name != ".", name != ".." else {
            throw PortError("invalid interface name \"\(name)\" (1-15 characters, no '/')")
        }
        var peerAddresses: [PeerAddress] = []
        for text in peers {
            guard let peer = PeerAddress(cidr: text) else {
                throw PortError("invalid peer address \"\(text)\" for TUN \(name) (an IPv4 or IPv6 host address with its prefix, like 198.18.5.2/24)")
            }
            if !peerAddresses.contains(peer) { peerAddresses.append(peer) }
        }
        guard peerAddresses.count <= NeighbourShim.maxPeers else {
            throw PortError("too many peer addresses for TUN \(name) (at most \(NeighbourShim.maxPeers))")
        }
        if let mac, !mac.isUnicast || mac.isZero {
            throw PortError("invalid MAC \(mac) for TUN \(name): it must be a unicast address")
        }
        let where_ = namespace.map { " in namespace \($0)" } ?? ""
        let existed = try NetworkNamespace.run(in: namespace) { if_nametoindex(name) != 0 }
        let fd: Int32 = try NetworkNamespace.run(in: namespace) {
            var actual = [CChar](repeating: 0, count: Int(IFNAMSIZ))
            return vswitch_tap_open(name, Int32(VSWITCH_TAP_TUN | VSWITCH_TAP_VNET_HDR), &actual)
        }
        guard fd >= 0 else {
            let e = SystemError("open", errno: -fd)
            switch -fd {
            case EBUSY: throw PortError("cannot attach to TUN \(name)\(where_): it is in use by another process")
            case EINVAL where existed: throw PortError("cannot attach to \(name)\(where_): it exists and is not a TUN device")
            case EPERM: throw PortError("cannot open TUN \(name)\(where_): \(e.reason) (vswitchd needs CAP_NET_ADMIN)")
            default: throw PortError("cannot open TUN \(name)\(where_): \(e.reason)")
            }
        }
        if existed {
            // As for a TAP: attaching succeeds only to a free TUN, and a free one is persistent.
            let flags = vswitch_tap_get_flags(fd)
            if flags >= 0 && flags & vswitch_iff_persist() == 0 {
                SystemCalls.close(fd)
                throw PortError("cannot attach to TUN \(name): it is not persistent")
            }
        }
        let readiness: Epoll, doorbell: EventFD
        do {
            readiness = try Epoll(capacity: 2)
            doorbell = try EventFD()
            try readiness.add(fd, token: 0)
            try readiness.add(doorbell.fd, token: 1)
        } catch {
            SystemCalls.close(fd)
            throw PortError("cannot set up TUN \(name): \(error)")
        }
        self.name = name
        self.namespace = namespace
        self.created = !existed
        self.fd = fd
        self.readiness = readiness
        self.doorbell = doorbell
        self.mac = mac ?? Self.randomMAC()
        self.shim = NeighbourShim(mac: self.mac, peers: peerAddresses)
        header = .allocate(byteCount: VirtioNetHeader.headerLength, alignment: 8)
        vectors = .allocate(capacity: 2)
        vectors.initialize(repeating: iovec(), count: 2)
    }

    deinit {
        close()
        header.deallocate()
        vectors.deallocate()
    }

    /// Closes the TUN fd, the epoll set and the eventfd; a TUN that vswitch created disappears.
    public func close() {
        readiness = nil
        doorbell = nil
        doorbellRung = false
        if fd >= 0 { SystemCalls.close(fd); fd = -1 }
    }

    /// Sets the MTU, brings the device up and adds `address` (a CIDR), through netlink inside the
    /// port's namespace. The address is the TUN host's own, so the shim answers for it too, as if
    /// it had been given as a peer. Call before the port is attached.
    public func configure(mtu: Int?, address: String?) throws {
        var peer: PeerAddress?
        if let address {
            guard let parsed = PeerAddress(cidr: address) else {
                throw PortError("invalid address \"\(address)\" for TUN \(name) (an IPv4 or IPv6 address with its prefix, like 198.18.5.2/24)")
            }
            peer = parsed
        }
        let nl = try NetlinkSocket(namespace: namespace)
        if let mtu { try nl.setMTU(name, mtu) }
        try nl.setUp(name, true)
        if let address, let peer {
            try nl.addAddress(address, to: name)
            guard shim.addPeer(peer) else {
                throw PortError("too many peer addresses for TUN \(name) (at most \(NeighbourShim.maxPeers))")
            }
        }
    }

    /// A random locally administered unicast address (02:xx:xx:xx:xx:xx and the like).
    static func randomMAC() -> MACAddress {
        var random = SystemRandomNumberGenerator()
        let bits = random.next() & 0xffff_ffff_ffff
        return MACAddress(rawValue: bits & ~(1 << 40) | 1 << 41)
    }

    // MARK: - Packet path

    public func receive(into batch: PacketBatch, counters: PortCounters) {
        guard fd >= 0 else { return }
        if doorbellRung {
            doorbell?.drain()
            doorbellRung = false
        }
        let now = SystemCalls.monotonicNanoseconds()
        let shim = self.shim
        shim.expire(now: now, counters: counters)
        shim.emitPending(into: batch, counters: counters)
        let h = VirtioNetHeader.headerLength
        reading: while !batch.isFull {
            let b = batch.next
            // Header and packet land so that the packet starts right after room for an Ethernet
            // header: adding it then needs no copy of the packet.
            let start = b.pointee.offset + EthernetFrame.headerLength - h
            let room = b.pointee.capacity - start
            switch SystemCalls.read(fd, b.pointee.base + start, room) {
            case .transferred(let n):
                if n < h { counters.drop(.runt); continue }
                if n == room { counters.drop(.oversize); continue }  // possibly truncated by the kernel
                if shim.encapsulate(b, packetLength: n - h, offloadLength: h, now: now, counters: counters) {
                    batch.commit()
                }
            case .wouldBlock:
                break reading
            case .failed:
                counters.rxErrors &+= 1
                break reading
            }
        }
        shim.emitPending(into: batch, counters: counters)
        if shim.hasPendingFrames { ringDoorbell() }
    }

    public func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        guard fd >= 0 else { return }
        let now = SystemCalls.monotonicNanoseconds()
        let shim = self.shim
        for i in 0..<count {
            let b = UnsafePointer(batch.buffers + Int(indices[i]))
            guard case .packet(let length) = shim.decapsulate(b, header: header, now: now, counters: counters) else { continue }
            vectors[0] = iovec(iov_base: header, iov_len: VirtioNetHeader.headerLength)
            vectors[1] = iovec(iov_base: b.pointee.frame + EthernetFrame.headerLength, iov_len: length)
            switch SystemCalls.writev(fd, vectors, 2) {
            case .transferred:
                counters.txPackets &+= 1
                counters.txBytes &+= UInt64(EthernetFrame.headerLength + length)
            case .wouldBlock:
                counters.drop(.transmitQueueFull)
            case .failed(let e):
                if e == EMSGSIZE { counters.drop(.transmitTooBig) } else { counters.txErrors &+= 1 }
            }
        }
        if shim.hasPendingFrames { ringDoorbell() }
    }

    @inline(__always)
    private func ringDoorbell() {
        guard !doorbellRung, let doorbell else { return }
        doorbell.signal()
        doorbellRung = true
    }

    // MARK: - Timed port: held packets time out

    /// Always served: cheap when nothing is held (`nextDeadline` is nil).
    public var isTimed: Bool { true }

    public var nextDeadline: UInt64? { shim.nextDeadline }

    public func service(now: UInt64, counters: PortCounters) {
        shim.expire(now: now, counters: counters)
    }
}
