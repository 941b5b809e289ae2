// VSwitchNetlink: links, addresses, routes and network namespaces over rtnetlink, through libnl-route-3.
//
// What it is. The control plane's hands on the kernel: create veth pairs, move them between namespaces,
// set them up, give them MTUs, MACs and addresses, add routes, read counters, impair links, make a NIC's
// own stack deaf (bridge-nic's ingress drop). It is what `ip link`, `ip addr`, `ip route`, `ip netns` and
// `tc` do, as library calls with typed results and one-line errors
// (`cannot add address 198.18.0.1/24 to vst1h1 in namespace vst1-h1: File exists`). It never runs `ip`.
// The packet path does not come here: everything in this module is a few syscalls and allocations per
// call, made at configuration time.
//
// Threading rule. A network namespace is a property of a thread (setns/unshare act on the caller only),
// but a socket keeps the namespace it was created in for its whole life. So:
//   - A `NetlinkSocket` is bound to one namespace when it is opened; opening it for a named namespace
//     creates the socket on a dedicated thread that entered that namespace and has exited since.
//   - A socket is used by one thread at a time: every method takes the socket's lock, so sharing one
//     between threads is safe but serialises them (libnl's nl_sock holds sequence numbers and callback
//     state that cannot be interleaved).
//   - `NetworkNamespace.run(in:)` runs its body on a fresh pthread that does setns and is joined before
//     run returns; no caller's thread ever changes namespace.
//
// libnl quirks this file works around.
//   - libnl turns the kernel's errno into an NLE_* code through nl_syserr2nlerr, which is lossy: ENOTCONN,
//     ENOTSUP and many others all become NLE_FAILURE ("Unspecific failure"). Each socket installs an error
//     callback (nl_socket_modify_err_cb) that records the real errno, and the kernel's extended-ack text
//     (NETLINK_EXT_ACK), before libnl folds it; errors report that errno with strerror's words. NLE_* codes
//     that did not come from the kernel are mapped back (NLE_EXIST -> EEXIST, NLE_NODEV -> ENODEV, ...).
//   - rtnl_link_get_kernel, rtnl_link_veth_get_peer and nl_addr_parse hand out references; every one is
//     put with a `defer` right after it is taken. rtnl_link_set_addr, rtnl_addr_set_local and
//     rtnl_route_nh_set_gateway take their own reference, so the parsed address is put by the caller too;
//     rtnl_route_add_nexthop takes ownership of the nexthop.
//   - Interface names longer than 15 bytes would be cut silently by rtnl_link_set_name: they are refused.
//   - IFF_UP cannot be set on a veth peer in its create request (ENOTCONN, reported as NLE_FAILURE); the
//     peer comes up later, e.g. in the same change that moves it to its namespace (`move(link:...up:)`:
//     the kernel applies the move first, then the flag).
//   - Moving a link to another namespace takes it down and drops its addresses: configure after the move.
//   - The kernel deletes only the IPv4 route whose protocol, scope and type match the request when those
//     are given, and libnl always gives them (RTPROT_STATIC and a scope guessed from the nexthops), so
//     deleting a gateway route by destination alone would fail. Deletes patch the built message to
//     "any" for all three, as `ip route del` sends.
//   - libnl's route cache identifies a route by (family, tos, table, destination, metric), not by device: it
//     merges IPv6 routes of two links with the same destination and metric (each link's fe80::/64) into one
//     multipath route, and keeps one of two such IPv4 routes. `routes()` parses each route of the dump on its
//     own instead (nl_rtgen_request + a valid callback + rtnl_route_parse).
//   - libnl 3.7 knows neither the clsact qdisc nor the bpf classifier: the ingress drop sets "clsact" as a bare
//     kind, and builds its filter messages by hand (NetlinkSocket+IngressDrop.swift).
//   - Swift's Glibc module is built without _GNU_SOURCE: setns/unshare come from CVSwitchLinux.
import CNetlink
import Glibc
import Synchronization

/// An rtnetlink socket bound to one network namespace. See the essay at the top of this file.
public final class NetlinkSocket: @unchecked Sendable {
    /// The namespace this socket operates in; nil for the namespace of the thread that opened it.
    public let namespace: String?

    // Guarded by `lock`: the nl_sock and the error slot its callback writes into.
    private let socket: OpaquePointer
    private let ackError: AckErrorSlot
    private let lock = Mutex(())

    /// Opens an rtnetlink socket in namespace `namespace` (nil: the calling thread's namespace).
    public init(namespace: String? = nil) throws {
        self.namespace = namespace
        guard let socket = nl_socket_alloc() else {
            throw NetlinkError(operation: "open netlink socket", object: "", namespace: namespace, code: ENOMEM)
        }
        let slot = AckErrorSlot()
        let rc: Int32
        do {
            rc = try NetworkNamespace.run(in: namespace) { nl_connect(socket, NETLINK_ROUTE) }
        } catch {
            nl_socket_free(socket)
            throw error
        }
        if rc < 0 {
            nl_socket_free(socket)
            throw NetlinkError.libnl(rc, kernelErrno: 0, kernelMessage: nil, operation: "open netlink socket",
                                     object: "", namespace: namespace)
        }
        let fd = nl_socket_get_fd(socket)
        var one: Int32 = 1
        // Ask for the kernel's reason text, and not for a copy of our request inside each error.
        _ = setsockopt(fd, solNetlink, netlinkCapAck, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, solNetlink, netlinkExtAck, &one, socklen_t(MemoryLayout<Int32>.size))
        nl_socket_modify_err_cb(socket, NL_CB_CUSTOM, recordAckError, Unmanaged.passUnretained(slot).toOpaque())
        self.socket = socket
        self.ackError = slot
    }

    deinit {
        nl_socket_free(socket)  // closes the fd too
    }

    // MARK: - Plumbing shared by the +Links, +Addresses, +Routes files

    /// Runs `body` with the socket under the lock; `body` gets a `Call` to check libnl return codes with.
    func withSocket<T>(_ operation: String, _ object: String,
                       _ body: (OpaquePointer, Call) throws -> T) throws -> T {
        try lock.withLock { _ in
            ackError.reset()
            return try body(socket, Call(operation: operation, object: object, namespace: namespace,
                                         slot: ackError))
        }
    }

    /// One operation's context: turns a negative libnl code into a NetlinkError naming the operation.
    struct Call {
        let operation: String
        let object: String
        let namespace: String?
        let slot: AckErrorSlot

        /// Throws when `rc` is negative, with the kernel's errno when the error callback saw one.
        func check(_ rc: Int32) throws {
            guard rc < 0 else { return }
            let error = NetlinkError.libnl(rc, kernelErrno: slot.code, kernelMessage: slot.message,
                                           operation: operation, object: object, namespace: namespace)
            slot.reset()
            throw error
        }

        /// An error with an errno of our own choosing (bad input, missing object).
        func failure(_ code: Int32, _ reason: String? = nil) -> NetlinkError {
            NetlinkError(operation: operation, object: object, namespace: namespace, code: code, reason: reason)
        }
    }
}

// MARK: - Error capture

/// Where the error callback leaves the kernel's errno and extended-ack message for the call in progress.
final class AckErrorSlot {
    var code: Int32 = 0
    var message: String?
    func reset() { code = 0; message = nil }
}

private let solNetlink: Int32 = 270     // SOL_NETLINK
private let netlinkCapAck: Int32 = 10   // NETLINK_CAP_ACK
private let netlinkExtAck: Int32 = 11   // NETLINK_EXT_ACK
private let nlmFAckTLVs: UInt16 = 0x200 // NLM_F_ACK_TLVS
private let nlmFCapped: UInt16 = 0x100  // NLM_F_CAPPED
private let nlmsgerrAttrMsg: UInt16 = 1 // NLMSGERR_ATTR_MSG

/// libnl's error callback: record errno and the ext-ack message, then let libnl fail as it would (NL_STOP
/// makes it return -nl_syserr2nlerr(error)).
private func recordAckError(_ peer: UnsafeMutablePointer<sockaddr_nl>?, _ error: UnsafeMutablePointer<nlmsgerr>?,
                            _ argument: UnsafeMutableRawPointer?) -> Int32 {
    guard let error, let argument else { return Int32(NL_STOP.rawValue) }
    let slot = Unmanaged<AckErrorSlot>.fromOpaque(argument).takeUnretainedValue()
    slot.code = -error.pointee.error
    slot.message = extendedAckMessage(error)
    return Int32(NL_STOP.rawValue)
}

/// The NLMSGERR_ATTR_MSG string of an NLMSG_ERROR, if the kernel attached one. `error` points at the
/// payload of the message, which starts 16 bytes (NLMSG_HDRLEN) after its header.
private func extendedAckMessage(_ error: UnsafeMutablePointer<nlmsgerr>) -> String? {
    let header = UnsafeRawPointer(error) - 16
    let totalLength = Int(header.loadUnaligned(as: UInt32.self))
    let flags = header.loadUnaligned(fromByteOffset: 6, as: UInt16.self)
    guard flags & nlmFAckTLVs != 0 else { return nil }
    // nlmsgerr is the errno (4) and the request's header (16); uncapped, the request's payload follows.
    var offset = 16 + 20
    if flags & nlmFCapped == 0 {
        let requestLength = Int(header.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
        offset = 16 + 4 + ((requestLength + 3) & ~3)
    }
    while offset + 4 <= totalLength {
        let length = Int(header.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        let type = header.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3fff
        guard length >= 4, offset + length <= totalLength else { return nil }
        if type == nlmsgerrAttrMsg {
            let bytes = UnsafeRawBufferPointer(start: header + offset + 4, count: length - 4)
            let text = bytes.prefix { $0 != 0 }
            return String(decoding: text, as: UTF8.self)
        }
        offset += (length + 3) & ~3
    }
    return nil
}
