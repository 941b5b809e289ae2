import CNetlink
import Glibc

extension NetlinkSocket {
    /// Every link in this socket's namespace, by ifindex.
    public func links() throws -> [LinkInfo] {
        try withSocket("list links", "") { socket, call in
            var cache: OpaquePointer?
            try call.check(rtnl_link_alloc_cache(socket, AF_UNSPEC, &cache))
            defer { nl_cache_free(cache) }
            var result: [LinkInfo] = []
            var object = nl_cache_get_first(cache)
            while let link = object {
                result.append(Self.info(of: link))
                object = nl_cache_get_next(link)
            }
            return result.sorted { $0.ifindex < $1.ifindex }
        }
    }

    /// The link named `name`, or nil when there is none.
    public func link(named name: String) throws -> LinkInfo? {
        try withSocket("look up link", name) { socket, call in
            try Self.validate(name: name, call: call)
            var link: OpaquePointer?
            let rc = rtnl_link_get_kernel(socket, 0, name, &link)
            if rc < 0 {
                // The kernel says ENODEV; libnl would say NLE_OBJ_NOTFOUND or NLE_NODEV.
                if [ENODEV, ENOENT].contains(call.slot.code) || [NLE_NODEV, NLE_OBJ_NOTFOUND].contains(-rc) {
                    call.slot.reset()
                    return nil
                }
                try call.check(rc)
            }
            guard let link else { return nil }
            defer { rtnl_link_put(link) }
            return Self.info(of: link)
        }
    }

    /// Sets IFF_UP on (`up == true`) or off.
    public func setUp(_ name: String, _ up: Bool) throws {
        try change(name, up ? "set up" : "set down", name) { changes, _ in
            if up { rtnl_link_set_flags(changes, LinkFlags.up) } else { rtnl_link_unset_flags(changes, LinkFlags.up) }
        }
    }

    public func setMTU(_ name: String, _ mtu: Int) throws {
        try change(name, "set mtu \(mtu) on", name) { changes, call in
            guard mtu > 0, mtu <= Int(UInt32.max) else { throw call.failure(EINVAL, "invalid MTU") }
            rtnl_link_set_mtu(changes, UInt32(mtu))
        }
    }

    /// Sets the hardware address; `mac` must be 6 bytes.
    public func setMAC(_ name: String, _ mac: [UInt8]) throws {
        try change(name, "set mac \(LinkInfo.format(mac: mac)) on", name) { changes, call in
            guard mac.count == 6 else { throw call.failure(EINVAL, "a MAC address has 6 bytes") }
            let address = mac.withUnsafeBytes { nl_addr_build(AF_LLC, $0.baseAddress, 6) }
            guard let address else { throw call.failure(ENOMEM) }
            rtnl_link_set_addr(changes, address)  // takes its own reference
            nl_addr_put(address)
        }
    }

    public func rename(_ name: String, to newName: String) throws {
        try change(name, "rename", "\(name) to \(newName)") { changes, call in
            try Self.validate(name: newName, call: call)
            rtnl_link_set_name(changes, newName)
        }
    }

    /// Deletes a link; deleting one end of a veth pair deletes both.
    public func delete(link name: String) throws {
        try withSocket("delete link", name) { socket, call in
            let link = try Self.kernelLink(name, socket: socket, call: call)
            defer { rtnl_link_put(link) }
            try call.check(rtnl_link_delete(socket, link))
        }
    }

    /// Creates a veth pair `name` <-> `peer`, with the peer created directly in `peerNamespace` when given.
    /// Both ends start down; bring the peer up through a socket in its namespace.
    public func createVeth(name: String, peer peerName: String, peerNamespace: String? = nil) throws {
        let object = "\(name) (peer \(peerName)\(peerNamespace.map { " in namespace \($0)" } ?? ""))"
        try withSocket("create veth", object) { socket, call in
            try Self.validate(name: name, call: call)
            try Self.validate(name: peerName, call: call)
            var namespaceFD: Int32 = -1
            if let peerNamespace {
                namespaceFD = try NetworkNamespace.openHandle(peerNamespace, operation: call.operation,
                                                              object: object, namespace: namespace)
            }
            defer { if namespaceFD >= 0 { close(namespaceFD) } }

            guard let veth = rtnl_link_veth_alloc() else { throw call.failure(ENOMEM) }
            defer { rtnl_link_put(veth) }  // also frees the peer
            rtnl_link_set_name(veth, name)
            guard let peer = rtnl_link_veth_get_peer(veth) else { throw call.failure(ENOMEM) }
            defer { rtnl_link_put(peer) }
            rtnl_link_set_name(peer, peerName)
            if namespaceFD >= 0 { rtnl_link_set_ns_fd(peer, namespaceFD) }
            try call.check(rtnl_link_add(socket, veth, NLM_F_CREATE | NLM_F_EXCL))
        }
    }

    /// Moves a link into namespace `target`, optionally bringing it up there in the same request (the
    /// kernel moves first, then applies the flag). The move drops the link's addresses and takes it down.
    public func move(link name: String, toNamespace target: String, up: Bool = false) throws {
        try withSocket("move", "\(name) to namespace \(target)") { socket, call in
            let fd = try NetworkNamespace.openHandle(target, operation: call.operation, object: call.object,
                                                     namespace: namespace)
            defer { close(fd) }
            try Self.move(name, namespaceFD: fd, up: up, socket: socket, call: call)
        }
    }

    /// Moves `link` into the network namespace open as `namespaceFD` (an fd of /run/netns/NAME,
    /// /proc/PID/ns/net, ...), bringing it up there when `up`. The fd stays the caller's.
    public func move(link name: String, toNamespaceFD namespaceFD: Int32, up: Bool = false) throws {
        try withSocket("move", "\(name) to namespace fd \(namespaceFD)") { socket, call in
            try Self.move(name, namespaceFD: namespaceFD, up: up, socket: socket, call: call)
        }
    }

    private static func move(_ name: String, namespaceFD: Int32, up: Bool, socket: OpaquePointer, call: Call) throws {
        let original = try kernelLink(name, socket: socket, call: call)
        defer { rtnl_link_put(original) }
        guard let changes = rtnl_link_alloc() else { throw call.failure(ENOMEM) }
        defer { rtnl_link_put(changes) }
        rtnl_link_set_ns_fd(changes, namespaceFD)
        if up { rtnl_link_set_flags(changes, LinkFlags.up) }
        try call.check(rtnl_link_change(socket, original, changes, 0))
    }

    // MARK: - Internals

    /// Fetches `name` from the kernel, applies `edit` to an empty change object, sends the change.
    func change(_ name: String, _ operation: String, _ object: String,
                        _ edit: (OpaquePointer, Call) throws -> Void) throws {
        try withSocket(operation, object) { socket, call in
            let original = try Self.kernelLink(name, socket: socket, call: call)
            defer { rtnl_link_put(original) }
            guard let changes = rtnl_link_alloc() else { throw call.failure(ENOMEM) }
            defer { rtnl_link_put(changes) }
            try edit(changes, call)
            try call.check(rtnl_link_change(socket, original, changes, 0))
        }
    }

    /// The kernel's link object for `name` (referenced: put it), or a "No such device" error.
    static func kernelLink(_ name: String, socket: OpaquePointer, call: Call) throws -> OpaquePointer {
        try validate(name: name, call: call)
        var link: OpaquePointer?
        let rc = rtnl_link_get_kernel(socket, 0, name, &link)
        if rc < 0, call.slot.code == 0, -rc == NLE_OBJ_NOTFOUND {
            throw call.failure(ENODEV)
        }
        try call.check(rc)
        guard let link else { throw call.failure(ENODEV) }
        return link
    }

    /// The ifindex of `name`, or a "No such device" error.
    static func ifindex(of name: String, socket: OpaquePointer, call: Call) throws -> Int32 {
        let link = try kernelLink(name, socket: socket, call: call)
        defer { rtnl_link_put(link) }
        return rtnl_link_get_ifindex(link)
    }

    /// Refuses names the kernel would refuse or libnl would truncate (IFNAMSIZ is 16 with the NUL).
    static func validate(name: String, call: Call) throws {
        if name.isEmpty || name.utf8.count > 15 || name.contains("/") || name.contains(" ") {
            throw call.failure(EINVAL, "invalid interface name \"\(name)\" (1 to 15 bytes, no '/' or space)")
        }
    }

    static func info(of link: OpaquePointer) -> LinkInfo {
        var mac: [UInt8] = []
        if let address = rtnl_link_get_addr(link), let bytes = nl_addr_get_binary_addr(address) {
            mac = Array(UnsafeRawBufferPointer(start: bytes, count: Int(nl_addr_get_len(address))))
        }
        return LinkInfo(
            ifindex: rtnl_link_get_ifindex(link),
            name: rtnl_link_get_name(link).map { String(cString: $0) } ?? "",
            kind: rtnl_link_get_type(link).map { String(cString: $0) },
            mac: mac,
            mtu: Int(rtnl_link_get_mtu(link)),
            flags: rtnl_link_get_flags(link),
            rxPackets: rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS),
            rxBytes: rtnl_link_get_stat(link, RTNL_LINK_RX_BYTES),
            rxDrops: rtnl_link_get_stat(link, RTNL_LINK_RX_DROPPED),
            txPackets: rtnl_link_get_stat(link, RTNL_LINK_TX_PACKETS),
            txBytes: rtnl_link_get_stat(link, RTNL_LINK_TX_BYTES),
            txDrops: rtnl_link_get_stat(link, RTNL_LINK_TX_DROPPED))
    }
}
