// VSwitchPorts: the port kinds. Each implements VSwitchCore's batched `Port` protocol over a
// device, and keeps its device's quirks (offloads, namespaces, persistence) to itself.
//
// Threading rule: a port is opened and configured on the control plane, then handed to one
// data-plane thread, which alone calls `receive`/`transmit` until the port is detached; only then
// does the control plane `close()` it.
#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import VSwitchCore
import VSwitchNetlink
import VSwitchSystem

/// A TAP device: the kernel's end of a virtual Ethernet cable.
///
/// Opened with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, a 10-byte virtio-net header and TUNSETOFFLOAD
/// (CSUM|TSO4|TSO6): the kernel then hands over TCP superframes of up to 64 KiB with checksums left
/// partial, described by the header, and accepts them back the same way. Forwarded between two such
/// TAPs with the header intact, one read and one write move what would be ~44 MTU-sized frames
/// (measured here: ~7x the throughput of plain 1,500-byte frames; NOTES.md).
///
/// A TAP that vswitch creates is not persistent, so the kernel removes it when its fd closes: on
/// `del-port`, on shutdown, and even if the daemon is killed. An existing persistent TAP is attached
/// to and left in place.
public final class TAPPort: ImpairablePort, DevicePort {
    public static let vnetHeaderLength = Int(VSWITCH_VNET_HDR_LEN)

    public let name: String
    public let namespace: String?
    /// True when vswitch created the device (it disappears when the port closes).
    public let created: Bool
    public private(set) var fd: Int32
    public var readinessDescriptor: Int32 { fd }

    /// Delay, jitter, loss and rate applied to what the switch sends into this TAP (set-port).
    public var impairment = Impairment() {
        didSet {
            if impairment.needsQueue {
                if let line = delayLine { line.impairment = impairment } else { delayLine = DelayLine(impairment: impairment) }
            } else {
                delayLine = nil  // held frames are dropped with it
                lossOnly = impairment.lossPPM > 0 ? DelayLine(capacity: 64, impairment: impairment) : nil
            }
        }
    }
    private var delayLine: DelayLine?
    /// Batched writes through io_uring, when the kernel allows it.
    private var writer: URingWriter?
    /// Draws losses when there is loss but nothing to hold frames for.
    private var lossOnly: DelayLine?

    /// Opens (creating if absent) TAP `name`, in namespace `namespace` if given, non-blocking.
    public init(name: String, namespace: String? = nil) throws {
        guard !name.isEmpty, name.utf8.count < Int(IFNAMSIZ), !name.contains("/"), name != ".", name != ".." else {
            throw PortError("invalid interface name \"\(name)\" (1-15 characters, no '/')")
        }
        let where_ = namespace.map { " in namespace \($0)" } ?? ""
        // Where to open it: in the namespace; or, when only the root namespace has a TAP of that
        // name (a persistent TAP made with `ip tuntap add`), there, and then move it (as `--netns`
        // moves an existing device). Any other root device of that name (the host's eth0) is
        // never touched: the TAP is created in the namespace.
        var openIn = namespace
        var existed = try NetworkNamespace.run(in: namespace) { if_nametoindex(name) != 0 }
        var moveInto: String? = nil
        if !existed, let ns = namespace, if_nametoindex(name) != 0, access("/sys/class/net/\(name)/tun_flags", F_OK) == 0 {
            openIn = nil
            existed = true
            moveInto = ns
        }
        let fd: Int32 = try NetworkNamespace.run(in: openIn) {
            var actual = [CChar](repeating: 0, count: Int(IFNAMSIZ))
            return vswitch_tap_open(name, Int32(VSWITCH_TAP_VNET_HDR), &actual)
        }
        guard fd >= 0 else {
            let e = SystemError("open", errno: -fd)
            let at = moveInto == nil ? where_ : ""
            switch -fd {
            case EBUSY: throw PortError("cannot attach to TAP \(name)\(at): it is in use by another process")
            case EINVAL where existed: throw PortError("cannot attach to \(name)\(at): it exists and is not a TAP device")
            case EPERM: throw PortError("cannot open TAP \(name)\(where_): \(e.reason) (vswitchd needs CAP_NET_ADMIN)")
            default: throw PortError("cannot open TAP \(name)\(where_): \(e.reason)")
            }
        }
        if existed {
            // TUNSETIFF on an existing device only succeeds if it is a free TAP; a non-persistent one
            // would already have an owner, so what we attached to is persistent: leave it in place.
            let flags = vswitch_tap_get_flags(fd)
            if flags >= 0 && flags & vswitch_iff_persist() == 0 {
                SystemCalls.close(fd)
                throw PortError("cannot attach to TAP \(name): it is not persistent")
            }
        }
        if let ns = moveInto {
            do { try NetlinkSocket().move(link: name, toNamespace: ns) } catch {
                SystemCalls.close(fd)
                throw PortError("cannot move TAP \(name) into namespace \(ns): \(error)")
            }
        }
        self.name = name
        self.namespace = namespace
        self.created = !existed
        self.fd = fd
        writer = URingWriter(fd: fd)
    }

    deinit { close() }

    /// Closes the fd; a TAP that vswitch created disappears with it.
    public func close() {
        writer = nil
        if fd >= 0 { SystemCalls.close(fd); fd = -1 }
    }

    /// Sets MAC, MTU, up, and an address, through netlink inside the port's namespace.
    public func configure(mac: [UInt8]?, mtu: Int?, address: String?) throws {
        let nl = try NetlinkSocket(namespace: namespace)
        if let mac { try nl.setMAC(name, mac) }
        if let mtu { try nl.setMTU(name, mtu) }
        try nl.setUp(name, true)
        if let address { try nl.addAddress(address, to: name) }
    }

    // MARK: - Packet path

    public func receive(into batch: PacketBatch, counters: PortCounters) {
        VnetHeaderIO.receive(fd, into: batch, counters: counters)
    }

    public func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        if delayLine != nil || lossOnly != nil { return transmitImpaired(batch, indices: indices, count: count, counters: counters) }
        // One frame goes out with one write(2): a submission of one costs more than it saves.
        if count > 1, let writer, writer.transmit(batch, indices: indices, count: count, counters: counters) { return }
        VnetHeaderIO.transmit(fd, batch, indices: indices, count: count, counters: counters)
    }

    private func transmitImpaired(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        let h = Self.vnetHeaderLength
        let now = SystemCalls.monotonicNanoseconds()
        for i in 0..<count {
            let b = batch.buffers + Int(indices[i])
            if (delayLine ?? lossOnly)!.dropsNext() { counters.drop(.impairmentLoss); continue }
            VnetHeaderIO.withHeader(b)
            let start = UnsafeRawPointer(b.pointee.frame - h)
            if let line = delayLine {
                if !line.enqueue(start, length: b.pointee.length + h, offloadLength: h, now: now) { counters.drop(.transmitQueueFull) }
            } else {
                VnetHeaderIO.write(fd, start, frameLength: b.pointee.length, counters: counters)
            }
        }
        service(now: now, counters: counters)
    }

    public var isTimed: Bool { delayLine != nil }

    public var nextDeadline: UInt64? { delayLine?.nextDeparture }

    public func service(now: UInt64, counters: PortCounters) {
        guard let line = delayLine else { return }
        let h = Self.vnetHeaderLength
        line.dequeue(now: now) { bytes, length, _ in VnetHeaderIO.write(fd, bytes, frameLength: length - h, counters: counters) }
    }
}

/// A port over a device the daemon opens and closes (everything but in-memory test ports).
public protocol DevicePort: VSwitchCore.Port {
    /// True when vswitch created the device (it goes away when the port closes).
    var created: Bool { get }
    /// Releases the device; the port is detached from its data plane first.
    func close()
}

/// A port that could not be opened or configured; the message says what and why.
public struct PortError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
