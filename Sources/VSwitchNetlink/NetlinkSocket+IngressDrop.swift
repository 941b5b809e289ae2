// Ingress drop for `vswitchctl bridge-nic`: the NIC's own network stack stops receiving frames, while
// AF_PACKET sockets bound to ETH_P_ALL (libpcap, the switch's pcap port) still see every one of them: what
// happens to the port of a Linux bridge, whose frames belong to the bridge.
//
// How. A tc filter on the link's ingress that drops everything:
//   tc qdisc add dev NIC clsact                       (only when the link has no clsact/ingress qdisc yet)
//   tc filter add dev NIC ingress prio 22099 handle 0x5653 protocol all bpf da bytecode '1,6 0 0 2,'
// In __netif_receive_skb_core the ETH_P_ALL taps (packet sockets) are served before tc ingress runs, and
// the protocol handlers (IPv4, IPv6, ARP, and packet sockets bound to one protocol) after it: a frame shot
// at tc ingress is seen by tcpdump and libpcap, and by nothing else.
//
// Why cls_bpf and not matchall + gact drop. The kernel this was written against (6.18, no modules) has
// neither cls_matchall nor act_gact ("TC classifier not found"), but has cls_bpf, like every distribution
// kernel. The filter is a one-instruction *classic* BPF program ("ret #2", TC_ACT_SHOT) in direct-action
// mode: given inline (TCA_BPF_OPS) it needs no bpf() syscall, no CAP_BPF and no action module. libnl 3.7
// knows neither "clsact" (set with rtnl_tc_set_kind and no options: fine) nor cls_bpf, so the filter
// messages are built by hand.
//
// Identity. Our filter is the one with priority `IngressDrop.priority`, handle `IngressDrop.handle`,
// protocol all and kind bpf on parent ffff:fff2; clear deletes exactly that one (the kernel matches
// priority, protocol, handle and kind). Filters of a lower priority number run first, as they would before
// a bridge; those of a higher one (including tc's automatic priorities, 49152 and below down) no longer see
// the link's ingress traffic.
//
// The qdisc. Created only when the link has no qdisc at ffff:fff1 (clsact, or the older ingress, which
// takes ingress filters at ffff:fff2 as well); the token says whether it was. Clear deletes it only when it
// was created for us (or, without a token, when it is a clsact) and no filter is left on it.
//
// Idempotence. Setting twice fails with EEXIST ("ingress drop is already set") and changes nothing; so a
// second token can never claim a qdisc the first one created. Clearing is harmless when there is nothing
// to clear (no qdisc, no filter of ours).
import CNetlink
import Glibc

/// What `setIngressDrop(on:)` did, for `clearIngressDrop(on:_:)` to undo exactly that. Codable, so it can
/// be kept with other state across a restart.
public struct IngressDropToken: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The link had no clsact (or ingress) qdisc: one was created for the filter.
    public var createdQdisc: Bool

    public init(createdQdisc: Bool) {
        self.createdQdisc = createdQdisc
    }

    public var description: String { createdQdisc ? "ingress drop (own clsact qdisc)" : "ingress drop" }
}

extension NetlinkSocket {
    /// The identity of the ingress drop filter (see the top of NetlinkSocket+IngressDrop.swift).
    public enum IngressDrop {
        /// tc's "pref": 0x5653, "VS".
        public static let priority: UInt16 = 0x5653
        public static let handle: UInt32 = 0x5653
        /// The classifier: cls_bpf with a classic BPF program in direct-action mode.
        public static let kind = "bpf"
    }

    /// Stops the network stack of `link` receiving anything while packet sockets (libpcap) still see every
    /// frame: a clsact qdisc (unless the link has one) and a drop-all filter on its ingress. Fails with
    /// "File exists" ("ingress drop is already set") when our filter is already there.
    /// Errors read `cannot set ingress drop on eth1 in namespace ns1: No such device`.
    @discardableResult
    public func setIngressDrop(on link: String) throws -> IngressDropToken {
        try withSocket("set ingress drop on", link) { socket, call in
            let ifindex = try Self.ifindex(of: link, socket: socket, call: call)
            var created = false
            if let existing = try Self.ingressQdisc(ifindex, socket: socket, call: call) {
                rtnl_qdisc_put(existing)
            } else {
                created = try Self.addClsact(ifindex, socket: socket, call: call)
            }
            do {
                try Self.sendDropFilter(Int32(RTM_NEWTFILTER), flags: NLM_F_CREATE | NLM_F_EXCL, ifindex: ifindex,
                                        socket: socket, call: call)
            } catch {
                if created {  // leave no qdisc of ours behind
                    try? Self.deleteIngressQdisc(ifindex, socket: socket, call: call)
                    call.slot.reset()
                }
                switch (error as? NetlinkError)?.code {
                case EEXIST: throw call.failure(EEXIST, "ingress drop is already set")
                case ENOENT: throw call.failure(ENOENT, "the kernel has no bpf classifier (cls_bpf)")
                default: throw error
                }
            }
            return IngressDropToken(createdQdisc: created)
        }
    }

    /// Undoes `setIngressDrop`: deletes our filter, then the clsact qdisc if `token` says it was created
    /// for it and no other filter has been put on it since. Without a token (lost in a crash), a clsact
    /// qdisc left without filters is deleted (one that was there before, empty, would go too); an
    /// `ingress` qdisc is never deleted. Nothing to clear is no error; a missing link is.
    public func clearIngressDrop(on link: String, _ token: IngressDropToken? = nil) throws {
        try withSocket("clear ingress drop on", link) { socket, call in
            let ifindex = try Self.ifindex(of: link, socket: socket, call: call)
            guard let qdisc = try Self.ingressQdisc(ifindex, socket: socket, call: call) else { return }
            defer { rtnl_qdisc_put(qdisc) }
            if try Self.ingressFilters(ifindex, socket: socket, call: call).contains(where: \.isOurs) {
                do {
                    try Self.sendDropFilter(Int32(RTM_DELTFILTER), flags: 0, ifindex: ifindex, socket: socket,
                                            call: call)
                } catch let error as NetlinkError where error.code == ENOENT {
                    // Gone in between: fine.
                }
            }
            let kind = rtnl_tc_get_kind(qdisc).map { String(cString: $0) }
            guard token?.createdQdisc ?? (kind == "clsact") else { return }
            guard try Self.ingressFilters(ifindex, socket: socket, call: call).isEmpty,
                  try Self.filters(ifindex, parent: egressParent, socket: socket, call: call).isEmpty else { return }
            try Self.deleteIngressQdisc(ifindex, socket: socket, call: call)
        }
    }

    /// Whether our drop filter is on the ingress of `link`.
    public func hasIngressDrop(on link: String) throws -> Bool {
        try withSocket("look for ingress drop on", link) { socket, call in
            let ifindex = try Self.ifindex(of: link, socket: socket, call: call)
            guard let qdisc = try Self.ingressQdisc(ifindex, socket: socket, call: call) else { return false }
            rtnl_qdisc_put(qdisc)
            return try Self.ingressFilters(ifindex, socket: socket, call: call).contains(where: \.isOurs)
        }
    }

    // MARK: - Internals

    /// One entry of a filter dump. The kernel also lists a head entry (handle 0) per priority.
    private struct FilterEntry {
        var priority: UInt16
        var protocolID: UInt16
        var handle: UInt32
        var kind: String?
        var isOurs: Bool {
            priority == IngressDrop.priority && handle == IngressDrop.handle && protocolID == ethPAll
                && kind == IngressDrop.kind
        }
    }

    /// The qdisc at ffff:fff1 (clsact or ingress) of `ifindex`, referenced, or nil.
    private static func ingressQdisc(_ ifindex: Int32, socket: OpaquePointer, call: Call) throws -> OpaquePointer? {
        var cache: OpaquePointer?
        try call.check(rtnl_qdisc_alloc_cache(socket, &cache))
        defer { nl_cache_free(cache) }
        return rtnl_qdisc_get_by_parent(cache, ifindex, clsactParent)
    }

    /// Adds a clsact qdisc; false when one appeared meanwhile (EEXIST), so it is not ours.
    private static func addClsact(_ ifindex: Int32, socket: OpaquePointer, call: Call) throws -> Bool {
        guard let qdisc = rtnl_qdisc_alloc() else { throw call.failure(ENOMEM) }
        defer { rtnl_qdisc_put(qdisc) }
        rtnl_tc_set_ifindex(qdisc, ifindex)
        rtnl_tc_set_parent(qdisc, clsactParent)
        rtnl_tc_set_handle(qdisc, clsactHandle)
        try call.check(rtnl_tc_set_kind(qdisc, "clsact"))
        let rc = rtnl_qdisc_add(socket, qdisc, NLM_F_CREATE | NLM_F_EXCL)
        if rc < 0, call.slot.code == EEXIST {
            call.slot.reset()
            return false
        }
        if rc < 0, call.slot.code == ENOENT {
            call.slot.reset()
            throw call.failure(ENOENT, "the kernel has no clsact qdisc (sch_ingress)")
        }
        try call.check(rc)
        return true
    }

    private static func deleteIngressQdisc(_ ifindex: Int32, socket: OpaquePointer, call: Call) throws {
        guard let qdisc = try ingressQdisc(ifindex, socket: socket, call: call) else { return }
        defer { rtnl_qdisc_put(qdisc) }
        let rc = rtnl_qdisc_delete(socket, qdisc)
        if rc < 0, call.slot.code == ENOENT || (call.slot.code == 0 && -rc == NLE_OBJ_NOTFOUND) {
            call.slot.reset()
            return
        }
        try call.check(rc)
    }

    private static func ingressFilters(_ ifindex: Int32, socket: OpaquePointer, call: Call) throws -> [FilterEntry] {
        try filters(ifindex, parent: ingressParent, socket: socket, call: call)
    }

    /// The filters (and per-priority head entries) under `parent` of `ifindex`.
    private static func filters(_ ifindex: Int32, parent: UInt32, socket: OpaquePointer,
                                call: Call) throws -> [FilterEntry] {
        var cache: OpaquePointer?
        try call.check(rtnl_cls_alloc_cache(socket, ifindex, parent, &cache))
        defer { nl_cache_free(cache) }
        var result: [FilterEntry] = []
        var object = nl_cache_get_first(cache)
        while let filter = object {
            object = nl_cache_get_next(filter)
            result.append(FilterEntry(priority: rtnl_cls_get_prio(filter), protocolID: rtnl_cls_get_protocol(filter),
                                      handle: rtnl_tc_get_handle(filter),
                                      kind: rtnl_tc_get_kind(filter).map { String(cString: $0) }))
        }
        return result
    }

    /// RTM_NEWTFILTER (with the program) or RTM_DELTFILTER (without) for our filter, built by hand:
    /// libnl 3.7 has no cls_bpf.
    private static func sendDropFilter(_ type: Int32, flags: Int32, ifindex: Int32, socket: OpaquePointer,
                                       call: Call) throws {
        guard let message = nlmsg_alloc_simple(type, flags) else { throw call.failure(ENOMEM) }
        var header = tcmsg()
        header.tcm_family = UInt8(AF_UNSPEC)
        header.tcm_ifindex = ifindex
        header.tcm_handle = IngressDrop.handle
        header.tcm_parent = ingressParent
        // TC_H_MAKE(prio << 16, htons(protocol)).
        header.tcm_info = UInt32(IngressDrop.priority) << 16 | UInt32(ethPAll.bigEndian)
        var built = nlmsg_append(message, &header, MemoryLayout<tcmsg>.size, Int32(NLMSG_ALIGNTO)) >= 0
            && nla_put_string(message, Int32(TCA_KIND), IngressDrop.kind) >= 0
        if built, type == Int32(RTM_NEWTFILTER) {
            if let options = nla_nest_start(message, Int32(TCA_OPTIONS)) {
                // "ret #TC_ACT_SHOT": in direct-action mode the program's return value is the verdict.
                var program = sock_filter(code: UInt16(BPF_RET | BPF_K), jt: 0, jf: 0, k: tcActShot)
                built = nla_put_u32(message, Int32(TCA_BPF_FLAGS), bpfFlagActDirect) >= 0
                    && nla_put_u16(message, Int32(TCA_BPF_OPS_LEN), 1) >= 0
                    && nla_put(message, Int32(TCA_BPF_OPS), Int32(MemoryLayout<sock_filter>.size), &program) >= 0
                    && nla_nest_end(message, options) >= 0
            } else {
                built = false
            }
        }
        guard built else {
            nlmsg_free(message)
            throw call.failure(EMSGSIZE)
        }
        try call.check(nl_send_sync(socket, message))  // frees the message
    }
}

private let clsactParent: UInt32 = 0xFFFF_FFF1   // TC_H_CLSACT (= TC_H_INGRESS)
private let clsactHandle: UInt32 = 0xFFFF_0000   // ffff:
private let ingressParent: UInt32 = 0xFFFF_FFF2  // TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
private let egressParent: UInt32 = 0xFFFF_FFF3   // TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)
private let ethPAll: UInt16 = 0x0003             // ETH_P_ALL
private let tcActShot: UInt32 = 2                // TC_ACT_SHOT
private let bpfFlagActDirect: UInt32 = 1         // TCA_BPF_FLAG_ACT_DIRECT
