// Link impairments for labs: delay, jitter and loss with the netem qdisc, a rate limit with tbf, on a link's
// egress. What `tc qdisc replace dev X root handle 1: netem delay 20ms loss 1%` does, through libnl.
//
// The qdiscs this file owns (nothing else is touched):
//   - delay/jitter/loss only:  root 1: netem
//   - rate only:               root 1: tbf
//   - both:                    root 1: netem, with tbf 10: as its child (parent 1:1); packets are delayed (or
//                              dropped) first, then shaped. libnl 3.7 has no setter for netem's own rate.
// Setting again with the same shape changes the qdiscs in place (NLM_F_REPLACE on an existing handle of the
// same kind is a change). A different shape, or a root qdisc that is not ours, is deleted first: the
// kernel refuses to replace a qdisc by one of another kind under the same handle ("Invalid qdisc name").
//
// libnl units (lib/route/qdisc/netem.c, tbf.c):
//   - rtnl_netem_set_delay/jitter take microseconds and store scheduler ticks (nl_us2ticks), in 32 bits:
//     delays are capped at 100 s here.
//   - rtnl_netem_set_loss stores the kernel's probability as is: a fraction of UINT32_MAX (100% is
//     0xffffffff, passed as the C int -1).
//   - rtnl_qdisc_tbf_set_rate takes bytes per second as a C int, a bucket in bytes, and a cell size (0:
//     default); rtnl_qdisc_tbf_set_limit takes bytes. The rate table is built from the link's MTU, hence
//     rtnl_tc_set_link rather than only the ifindex.
//   - The netem and tbf setters BUG() (abort) when the qdisc has no kind: the kind is always set first.
//
// Kernels without sch_netem (CONFIG_NET_SCH_NETEM unset) answer ENOENT "Specified qdisc kind is unknown";
// that is reported as such. A rate-only impairment needs only sch_tbf.
import CNetlink
import Glibc

extension NetlinkSocket {
    /// Replaces the root qdisc of `link` so its egress has the delay/jitter/loss (netem) and/or the rate
    /// limit (tbf). An impairment with every field nil clears the link's impairment.
    /// Errors read `cannot set impairment (delay 20ms) on vst1h1 in namespace vst1-h1: No such device`.
    public func setImpairment(_ impairment: QdiscImpairment, on link: String) throws {
        try withSocket("set impairment (\(impairment)) on", link) { socket, call in
            if let problem = impairment.validationError { throw call.failure(EINVAL, problem) }
            try Self.validate(name: link, call: call)
            if impairment.isEmpty {
                try Self.clearImpairment(link, socket: socket, call: call)
                return
            }
            let kernelLink = try Self.kernelLink(link, socket: socket, call: call)
            defer { rtnl_link_put(kernelLink) }
            let ifindex = rtnl_link_get_ifindex(kernelLink)

            let wantsNetem = impairment.delayMicroseconds != nil || impairment.lossPercent != nil
            let rootKind = wantsNetem ? QdiscKind.netem : .tbf
            let wantsChild = wantsNetem && impairment.rateBytesPerSecond != nil

            // What is there now decides between changing in place and starting over.
            let current = try Self.currentQdiscs(ifindex, socket: socket, call: call)
            defer { current.release() }
            let reusable = current.rootHandle == QdiscHandle.root && current.rootKind == rootKind.rawValue
                && (current.childKind == QdiscKind.tbf.rawValue) == wantsChild
            if !reusable, let root = current.root, current.rootHandle != 0 {
                try Self.deleteIgnoringMissing(root, socket: socket, call: call)
            } else if reusable, !wantsChild, let child = current.child {
                try Self.deleteIgnoringMissing(child, socket: socket, call: call)
            }

            let root = try Self.qdisc(rootKind, link: kernelLink, parent: TC_H_ROOT, handle: QdiscHandle.root,
                                      call: call)
            defer { rtnl_qdisc_put(root) }
            if wantsNetem {
                Self.configureNetem(root, impairment)
            } else {
                Self.configureTBF(root, rate: impairment.rateBytesPerSecond ?? 0, mtu: rtnl_link_get_mtu(kernelLink))
            }
            try Self.add(root, kind: rootKind, socket: socket, call: call)

            if wantsChild, let rate = impairment.rateBytesPerSecond {
                let child = try Self.qdisc(.tbf, link: kernelLink, parent: QdiscHandle.netemClass,
                                           handle: QdiscHandle.child, call: call)
                defer { rtnl_qdisc_put(child) }
                Self.configureTBF(child, rate: rate, mtu: rtnl_link_get_mtu(kernelLink))
                do {
                    try Self.add(child, kind: .tbf, socket: socket, call: call)
                } catch {
                    // Leave no half impairment behind (a delay without its rate limit).
                    _ = rtnl_qdisc_delete(socket, root)
                    call.slot.reset()
                    throw error
                }
            }
        }
    }

    /// Removes an impairment: deletes the link's root qdisc when it is a netem or tbf (with its child);
    /// no error when there is none. A missing link is an error.
    public func clearImpairment(on link: String) throws {
        try withSocket("clear impairment on", link) { socket, call in
            try Self.clearImpairment(link, socket: socket, call: call)
        }
    }

    // MARK: - Internals

    private enum QdiscKind: String {
        case netem, tbf
    }

    private enum QdiscHandle {
        static let root: UInt32 = 0x0001_0000       // 1:
        static let netemClass: UInt32 = 0x0001_0001 // 1:1, where netem grafts its child
        static let child: UInt32 = 0x000a_0000      // 10:
    }

    /// The root qdisc of a link and the child grafted under 1:1, as found in a fresh dump (referenced).
    private struct CurrentQdiscs {
        var root: OpaquePointer?
        var child: OpaquePointer?
        var rootHandle: UInt32 { root.map { rtnl_tc_get_handle($0) } ?? 0 }
        var rootKind: String? { root.flatMap { rtnl_tc_get_kind($0) }.map { String(cString: $0) } }
        var childKind: String? { child.flatMap { rtnl_tc_get_kind($0) }.map { String(cString: $0) } }
        func release() {
            if let root { rtnl_qdisc_put(root) }
            if let child { rtnl_qdisc_put(child) }
        }
    }

    private static func currentQdiscs(_ ifindex: Int32, socket: OpaquePointer, call: Call) throws -> CurrentQdiscs {
        var cache: OpaquePointer?
        try call.check(rtnl_qdisc_alloc_cache(socket, &cache))
        defer { nl_cache_free(cache) }
        let root = rtnl_qdisc_get_by_parent(cache, ifindex, TC_H_ROOT)
        var child: OpaquePointer?
        if let root, rtnl_tc_get_handle(root) == QdiscHandle.root {
            child = rtnl_qdisc_get_by_parent(cache, ifindex, QdiscHandle.netemClass)
        }
        return CurrentQdiscs(root: root, child: child)
    }

    private static func clearImpairment(_ link: String, socket: OpaquePointer, call: Call) throws {
        let ifindex = try Self.ifindex(of: link, socket: socket, call: call)
        let current = try currentQdiscs(ifindex, socket: socket, call: call)
        defer { current.release() }
        // The default qdisc (handle 0: noqueue, pfifo_fast, mq...) cannot be deleted, and is no impairment.
        guard let root = current.root, current.rootHandle != 0,
              let kind = current.rootKind, QdiscKind(rawValue: kind) != nil else { return }
        try deleteIgnoringMissing(root, socket: socket, call: call)
    }

    /// A new qdisc object of `kind` on `link` (referenced: put it).
    private static func qdisc(_ kind: QdiscKind, link: OpaquePointer, parent: UInt32, handle: UInt32,
                              call: Call) throws -> OpaquePointer {
        guard let qdisc = rtnl_qdisc_alloc() else { throw call.failure(ENOMEM) }
        rtnl_tc_set_link(qdisc, link)  // takes its own reference; also gives the MTU for tbf's rate table
        rtnl_tc_set_parent(qdisc, parent)
        rtnl_tc_set_handle(qdisc, handle)
        let rc = rtnl_tc_set_kind(qdisc, kind.rawValue)
        if rc < 0 {
            rtnl_qdisc_put(qdisc)
            throw call.failure(0, "libnl has no \(kind.rawValue) support: \(String(cString: nl_geterror(rc)))")
        }
        return qdisc
    }

    private static func configureNetem(_ qdisc: OpaquePointer, _ impairment: QdiscImpairment) {
        // Values were validated: delays fit an Int32, loss is in 0...100.
        if let delay = impairment.delayMicroseconds { rtnl_netem_set_delay(qdisc, Int32(delay)) }
        if let jitter = impairment.jitterMicroseconds { rtnl_netem_set_jitter(qdisc, Int32(jitter)) }
        if let loss = impairment.lossPercent {
            let probability = UInt32((loss / 100 * Double(UInt32.max)).rounded())
            rtnl_netem_set_loss(qdisc, Int32(bitPattern: probability))
        }
    }

    /// A bucket of 10 ms of traffic, at least two full frames; a queue of 100 ms beyond the bucket.
    private static func configureTBF(_ qdisc: OpaquePointer, rate: UInt64, mtu: UInt32) {
        let frame = UInt64(max(mtu, 1500)) + 14
        let cap = UInt64(Int32.max)
        let bucket = min(max(rate / 100, 2 * frame), cap)
        let limit = min(bucket + rate / 10, cap)
        rtnl_qdisc_tbf_set_rate(qdisc, Int32(min(rate, cap)), Int32(bucket), 0)
        rtnl_qdisc_tbf_set_limit(qdisc, Int32(limit))
    }

    /// rtnl_qdisc_add with CREATE|REPLACE; a kernel without the qdisc kind is said in words.
    private static func add(_ qdisc: OpaquePointer, kind: QdiscKind, socket: OpaquePointer, call: Call) throws {
        let rc = rtnl_qdisc_add(socket, qdisc, NLM_F_CREATE | NLM_F_REPLACE)
        if rc < 0, call.slot.code == ENOENT, rtnl_tc_get_parent(qdisc) == TC_H_ROOT {
            call.slot.reset()
            throw call.failure(ENOENT, "the kernel has no \(kind.rawValue) qdisc (sch_\(kind.rawValue))")
        }
        try call.check(rc)
    }

    /// Deletes a qdisc (and what hangs below it); one that is already gone is no error.
    private static func deleteIgnoringMissing(_ qdisc: OpaquePointer, socket: OpaquePointer, call: Call) throws {
        let rc = rtnl_qdisc_delete(socket, qdisc)
        if rc < 0, call.slot.code == ENOENT || (call.slot.code == 0 && -rc == NLE_OBJ_NOTFOUND) {
            call.slot.reset()
            return
        }
        try call.check(rc)
    }
}
