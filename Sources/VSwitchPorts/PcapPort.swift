#if canImport(Glibc)
import Glibc
#endif
import CPcap
import CVSwitchLinux
import VSwitchCore
import VSwitchNetlink
import VSwitchSystem
import VSwitchWire

/// An existing interface (a NIC, a veth, an OpenVPN tap) bound to the switch: received through
/// libpcap, transmitted through an AF_PACKET socket.
///
/// Receive: libpcap, promiscuous, immediate mode, direction PCAP_D_IN only, so the frames the
/// switch injects are never captured (and learned) again; non-blocking, its selectable fd in the
/// data plane's epoll; `pcap_dispatch` hands up to a batch of frames per call, each copied once
/// into a pool buffer.
///
/// Offloads are kept on, for speed, and made explicit instead: a frame captured on Linux may be a
/// GRO/GSO superframe larger than the MTU and may carry only a partial TCP/UDP checksum. The port
/// recognises both (`VirtioNetHeader.infer`) and describes them with a virtio-net header, as a TAP
/// with offloads would; TAP ports pass that header to the kernel, other egress ports segment and
/// checksum in software. LRO, which merges frames in a way that cannot be undone, is turned off
/// on the interface while it is bound and restored exactly on detach, as the Linux bridge does.
///
/// Transmit: libpcap sends one frame per `send()` and knows no offload metadata, so the port
/// sends with `sendmmsg` on an AF_PACKET socket with PACKET_VNET_HDR: a batch per system call,
/// and TSO superframes from TAP ports go out as one message that the kernel segments (or the NIC).
public final class PcapPort: DevicePort, LinkStatePort {
    public let name: String
    public let namespace: String?
    /// A pcap port binds an interface that exists; vswitch never creates or removes it.
    public let created = false
    public let mtu: Int
    public private(set) var readinessDescriptor: Int32 = -1

    private var pcap: OpaquePointer?
    private var txFD: Int32 = -1
    /// ethtool flags to put back on close (nil: nothing was changed).
    private var restoreFlags: UInt32?

    // Receive context, valid during `pcap_dispatch` only.
    private var rxBatch: PacketBatch?
    private var rxCounters: PortCounters?

    // Transmit scratch, allocated once.
    private static let txCapacity = 256
    private let txStarts: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let txLengths: UnsafeMutablePointer<UInt32>

    /// The largest frame captured whole (a 64 KiB GRO superframe plus headers).
    public static let snapLength = 65_535 + 14 + 4 + 64
    /// libpcap's ring: room for a burst of superframes.
    public static let ringBytes: Int32 = 32 << 20

    /// Binds interface `name` (in namespace `namespace` if given).
    public init(name: String, namespace: String? = nil) throws {
        guard !name.isEmpty, name.utf8.count < Int(IFNAMSIZ), !name.contains("/") else {
            throw PortError("invalid interface name \"\(name)\" (1-15 characters, no '/')")
        }
        self.name = name
        self.namespace = namespace
        txStarts = .allocate(capacity: Self.txCapacity)
        txLengths = .allocate(capacity: Self.txCapacity)
        let where_ = namespace.map { " in namespace \($0)" } ?? ""
        let ifindex = try NetworkNamespace.run(in: namespace) { if_nametoindex(name) }
        guard ifindex != 0 else { throw PortError("no interface \(name)\(where_) to bind (a pcap port binds an existing interface)") }
        if name == "lo" { throw PortError("cannot bind lo: a loopback interface is not an Ethernet segment") }
        let m = try NetworkNamespace.run(in: namespace) { vswitch_if_mtu(name) }
        guard m > 0 else { throw PortError("cannot read the MTU of \(name)\(where_): \(SystemError("ioctl", errno: -m).reason)") }
        mtu = Int(m)
        do {
            try NetworkNamespace.run(in: namespace) {
                try openCapture(where: where_)
                let fd = vswitch_packet_tx_open(Int32(ifindex), 4 << 20)
                guard fd >= 0 else { throw PortError("cannot open a packet socket on \(name)\(where_): \(SystemError("socket", errno: -fd).reason)") }
                txFD = fd
                disableLRO()
            }
        } catch {
            close()
            throw error
        }
    }

    private func openCapture(where where_: String) throws {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let p = pcap_create(name, &errbuf) else { throw PortError("cannot bind \(name)\(where_): \(Self.text(errbuf))") }
        pcap = p
        pcap_set_snaplen(p, Int32(Self.snapLength))
        pcap_set_promisc(p, 1)
        pcap_set_immediate_mode(p, 1)
        pcap_set_buffer_size(p, Self.ringBytes)
        let status = pcap_activate(p)
        if status < 0 {
            let reason = String(cString: pcap_geterr(p))
            let hint = status == PCAP_ERROR_PERM_DENIED ? " (vswitchd needs CAP_NET_RAW)" : ""
            throw PortError("cannot bind \(name)\(where_): \(reason.isEmpty ? String(cString: pcap_statustostr(status)) : reason)\(hint)")
        }
        guard pcap_datalink(p) == DLT_EN10MB else { throw PortError("cannot bind \(name)\(where_): not an Ethernet interface") }
        guard pcap_setdirection(p, PCAP_D_IN) == 0 else {
            throw PortError("cannot bind \(name)\(where_): libpcap cannot capture inbound frames only: \(String(cString: pcap_geterr(p)))")
        }
        guard pcap_setnonblock(p, 1, &errbuf) == 0 else { throw PortError("cannot bind \(name)\(where_): \(Self.text(errbuf))") }
        let fd = pcap_get_selectable_fd(p)
        guard fd >= 0 else { throw PortError("cannot bind \(name)\(where_): libpcap gives no selectable fd") }
        readinessDescriptor = fd
    }

    private static func text(_ buffer: [CChar]) -> String { buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } }

    /// Turns LRO off while bound (a no-op for interfaces without it, such as veth).
    private func disableLRO() {
        var flags: UInt32 = 0
        guard vswitch_ethtool_get_flags(name, &flags) == 0 else { return }
        let lro = vswitch_eth_flag_lro()
        if flags & lro != 0, vswitch_ethtool_set_flags(name, flags & ~lro) == 0 { restoreFlags = flags }
    }

    deinit {
        close()
        txStarts.deallocate()
        txLengths.deallocate()
    }

    /// Closes the capture and the socket, and puts back the ethtool flags it changed. Promiscuous
    /// mode was a membership of the capture socket and ends with it.
    public func close() {
        if let p = pcap { pcap_close(p); pcap = nil }
        readinessDescriptor = -1
        if txFD >= 0 { SystemCalls.close(txFD); txFD = -1 }
        if let flags = restoreFlags {
            _ = try? NetworkNamespace.run(in: namespace) { vswitch_ethtool_set_flags(name, flags) }
            restoreFlags = nil
        }
    }

    // MARK: - Packet path

    /// Up with carrier, asked through the transmit socket (so in the interface's namespace). The
    /// spanning tree polls it; a veth whose peer goes down, or a NIC whose cable is pulled, reads
    /// as down at once.
    public var isLinkUp: Bool {
        guard txFD >= 0 else { return false }
        return vswitch_if_running(txFD, name) == 1
    }

    public func receive(into batch: PacketBatch, counters: PortCounters) {
        guard let p = pcap, !batch.isFull else { return }
        rxBatch = batch
        let me = Unmanaged.passUnretained(self).toOpaque().assumingMemoryBound(to: UInt8.self)
        rxCounters = counters
        let n = pcap_dispatch(p, Int32(batch.capacity - batch.count), { user, header, bytes in
            guard let user, let header, let bytes else { return }
            Unmanaged<PcapPort>.fromOpaque(UnsafeRawPointer(user)).takeUnretainedValue().accept(header, bytes)
        }, me)
        if n < 0 { counters.rxErrors &+= 1 }
        rxCounters = nil
        rxBatch = nil
    }

    @inline(__always)
    private func accept(_ header: UnsafePointer<pcap_pkthdr>, _ bytes: UnsafePointer<UInt8>) {
        guard let batch = rxBatch, let counters = rxCounters, !batch.isFull else { return }
        let length = Int(header.pointee.caplen)
        let b = batch.next
        guard length == Int(header.pointee.len), length <= b.pointee.capacity - b.pointee.offset else {
            counters.drop(.oversize)
            return
        }
        b.pointee.frame.copyMemory(from: bytes, byteCount: length)
        b.pointee.length = length
        if let offload = VirtioNetHeader.infer(frame: b.pointee.frame, length: length, mtu: mtu) {
            offload.store(to: b.pointee.frame - VirtioNetHeader.headerLength)
            b.pointee.offloadLength = VirtioNetHeader.headerLength
        }
        batch.commit()
    }

    public func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        let h = VirtioNetHeader.headerLength
        var done = 0
        while done < count {
            let n = min(count - done, Self.txCapacity)
            for i in 0..<n {
                let b = batch.buffers + Int(indices[done + i])
                if b.pointee.offloadLength != h {
                    // A plain frame: a zero header says "nothing to segment, checksums done".
                    (b.pointee.frame - h).initializeMemory(as: UInt8.self, repeating: 0, count: h)
                    b.pointee.offloadLength = h
                }
                txStarts[i] = b.pointee.frame - h
                txLengths[i] = UInt32(b.pointee.length + h)
            }
            var sent = 0
            while sent < n {
                let r = vswitch_send_batch(txFD, txStarts + sent, txLengths + sent, UInt32(n - sent))
                if r > 0 {
                    for i in sent..<(sent + Int(r)) { counters.txBytes &+= UInt64(txLengths[i]) &- UInt64(h) }
                    counters.txPackets &+= UInt64(r)
                    sent += Int(r)
                    continue
                }
                let e = -r
                if e == EAGAIN || e == ENOBUFS {
                    counters.drop(.transmitQueueFull, count: UInt64(n - sent))
                    sent = n
                } else {
                    // The first frame was refused (too big for the MTU, a header the kernel
                    // rejects): count it and go on with the rest.
                    if e == EMSGSIZE { counters.drop(.transmitTooBig) } else { counters.txErrors &+= 1 }
                    sent += 1
                }
            }
            done += n
        }
    }
}
