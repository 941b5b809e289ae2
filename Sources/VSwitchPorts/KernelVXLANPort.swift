#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import VSwitchCore
import VSwitchNetlink
import VSwitchSystem

/// A udp port in VXLAN mode with `--datapath kernel`: the kernel's own VXLAN device does the
/// encapsulation, and vswitchd switches frames in and out of it through a packet socket.
///
/// Why. The userspace tunnel (`UDPTunnelPort`) must cut each TAP superframe into datagrams
/// (copying or at least summing every byte), send them through a UDP socket, and put them together
/// again at the far end: six passes over every byte where the kernel's VXLAN makes none, since
/// it carries a 64 KiB superframe through the underlay as one GSO packet. Here the packet socket
/// has a virtio-net header both ways (PACKET_VNET_HDR), like the TAPs, so superframes go to the
/// kernel's VXLAN whole and come back whole (its GRO), and the only copies are the socket's two.
///
/// What it is, in `ip` terms: `ip link add NAME type vxlan id VNI [local ADDR] dstport PORT`,
/// IPv6 address generation off (the host's stack sends nothing into the tunnel), a default
/// forwarding entry per remote (`bridge fdb append 00:00:00:00:00:00 dev NAME dst REMOTE`: the
/// kernel floods to every remote, learns which remote each MAC sits behind, and ages what it
/// learned), an ingress drop (tc, as for `bridge-nic`) so that the host's own stack never receives
/// what comes out of the tunnel (the packet socket sees it first), up. The device lives in the
/// port's namespace (`--netns`, the underlay's) and is deleted when the port closes; if the daemon
/// is killed, it stays (delete it with `ip link del NAME`).
///
/// What it gives up against the userspace tunnel: per-remote counters (the kernel keeps none),
/// remotes on another UDP port than the local one (the device has one port), and the secure mode.
public final class KernelVXLANPort: DevicePort {
    public let name: String
    public let namespace: String?
    public let created = true
    public let local: UDPEndpoint
    public let remotes: [UDPEndpoint]
    public let vni: UInt32
    /// The largest inner frame the tunnel carries (the smallest over the remotes): the device's MTU
    /// plus the Ethernet header.
    public let maxInnerFrame: Int
    public private(set) var fd: Int32
    public var readinessDescriptor: Int32 { fd }

    /// Socket buffers: room for dozens of 64 KiB superframes each way.
    static let bufferBytes: Int32 = 8 << 20

    /// Creates the device and opens the socket; a failure on the way removes what was made.
    public init(name: String, namespace: String? = nil, local: String?, remotes: [String], vni: UInt32) throws {
        guard !remotes.isEmpty else { throw PortError("a udp port needs at least one --remote ADDR:PORT") }
        let localEndpoint = try UDPEndpoint(local ?? "0.0.0.0:4789", namespace: namespace)
        let family = Int32(localEndpoint.address.ss_family)
        let resolved = try remotes.map { try UDPEndpoint($0, family: family, namespace: namespace) }
        for remote in resolved where remote.port != localEndpoint.port {
            throw PortError("--datapath kernel: remote \(remote.text) must use the local port \(localEndpoint.port) (the kernel's VXLAN device has one port)")
        }
        // The device's MTU: the smallest path MTU to a remote, less the outer IP, UDP and VXLAN
        // headers and the inner Ethernet header (the device's MTU counts from the inner IP header).
        let outer = (family == AF_INET6 ? 40 : 20) + 8 + 8
        let pathMTUs = try resolved.map { remote in
            var address = remote.address
            let mtu = try NetworkNamespace.run(in: namespace) { vswitch_path_mtu(&address, UInt32(remote.length)) }
            guard mtu > 0 else { throw PortError("no route to remote \(remote.text): \(SystemError("connect", errno: -mtu).reason)") }
            return Int(mtu)
        }
        let mtu = max(68, (pathMTUs.min() ?? 1500) - outer - 14)
        let wildcard = localEndpoint.host == "0.0.0.0" || localEndpoint.host == "::"
        let nl = try NetlinkSocket(namespace: namespace)
        try nl.createVXLAN(name: name, vni: vni, port: localEndpoint.port, local: wildcard ? nil : localEndpoint.host,
                           remotes: resolved.map(\.host), mtu: mtu)
        do {
            _ = try nl.setIngressDrop(on: name)
            try nl.setUp(name, true)
            let fd = try NetworkNamespace.run(in: namespace) { () -> Int32 in
                let index = if_nametoindex(name)
                guard index != 0 else { return -ENODEV }
                return vswitch_packet_open(Int32(index), Self.bufferBytes)
            }
            guard fd >= 0 else { throw PortError("cannot open a packet socket on \(name): \(SystemError("socket", errno: -fd).reason)") }
            self.fd = fd
        } catch {
            try? nl.delete(link: name)
            throw error
        }
        self.name = name
        self.namespace = namespace
        self.local = localEndpoint
        self.remotes = resolved
        self.vni = vni
        self.maxInnerFrame = mtu + 14
    }

    deinit { close() }

    /// Closes the socket and deletes the device.
    public func close() {
        guard fd >= 0 else { return }
        SystemCalls.close(fd)
        fd = -1
        try? NetlinkSocket(namespace: namespace).delete(link: name)
    }

    public func receive(into batch: PacketBatch, counters: PortCounters) {
        VnetHeaderIO.receive(fd, into: batch, counters: counters)
    }

    public func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        VnetHeaderIO.transmit(fd, batch, indices: indices, count: count, counters: counters)
    }
}
