import CNetlink
import Glibc

extension NetlinkSocket {
    /// Adds an IPv4 or IPv6 address ("198.18.0.1/24", "2001:2::1/64"; no prefix means /32 or /128),
    /// like `ip addr add`: a duplicate fails with "File exists".
    ///
    /// - `skipDAD` sets IFA_F_NODAD so an IPv6 address is usable at once instead of "tentative" for a
    ///   second or two (the same as `AddressFlags.noDAD` in `flags`).
    /// - `flags`: IFA_F_* (`AddressFlags`), e.g. `AddressFlags.noPrefixRoute`. Only
    ///   `AddressFlags.settable` count; the rest (permanent, secondary, tentative...) is state the kernel
    ///   derives and is dropped, so the `flags` of a listed `AddressInfo` can be passed as they are.
    /// - `scope`: RT_SCOPE_* for IPv4 (default: global, host for 127/8); IPv6 derives its scope from the
    ///   address and ignores this.
    /// - `label` (IPv4 only, at most 15 bytes): `ip addr add ... label eth0:1`; nil: the device name.
    /// - `broadcast` (IPv4 only): an address, or "+" for the subnet's last address (`brd +`); nil: none.
    /// - `validLifetime`/`preferredLifetime` in seconds, nil for forever (a permanent address); an
    ///   address with a lifetime disappears when it runs out. Preferred defaults to valid.
    public func addAddress(_ cidr: String, to link: String, skipDAD: Bool = false, flags: UInt32 = 0,
                           scope: UInt8? = nil, label: String? = nil, broadcast: String? = nil,
                           validLifetime: UInt32? = nil, preferredLifetime: UInt32? = nil) throws {
        try withSocket("add address", "\(cidr) to \(link)") { socket, call in
            let address = try Self.addressObject(cidr, link: link, socket: socket, call: call)
            defer { rtnl_addr_put(address) }
            let ipv4 = rtnl_addr_get_family(address) == AF_INET
            let requested = (flags & AddressFlags.settable) | (skipDAD ? AddressFlags.noDAD : 0)
            if requested != 0 { rtnl_addr_set_flags(address, requested) }
            if let scope, ipv4 { rtnl_addr_set_scope(address, Int32(scope)) }
            if let label {
                guard ipv4 else { throw call.failure(EINVAL, "only IPv4 addresses have labels") }
                guard !label.isEmpty, label.utf8.count <= 15 else {
                    throw call.failure(EINVAL, "invalid label \"\(label)\" (1 to 15 bytes)")
                }
                try call.check(rtnl_addr_set_label(address, label))
            }
            if let broadcast {
                guard ipv4 else { throw call.failure(EINVAL, "only IPv4 addresses have a broadcast address") }
                try Self.setBroadcast(broadcast, on: address, call: call)
            }
            if validLifetime != nil || preferredLifetime != nil {
                let valid = validLifetime ?? UInt32.max
                let preferred = preferredLifetime ?? valid
                guard preferred <= valid else {
                    throw call.failure(EINVAL, "the preferred lifetime is longer than the valid one")
                }
                rtnl_addr_set_valid_lifetime(address, valid)
                rtnl_addr_set_preferred_lifetime(address, preferred)
            }
            try call.check(rtnl_addr_add(socket, address, NLM_F_CREATE | NLM_F_EXCL))
        }
    }

    /// Adds a listed address (from `addresses(of:)`) to `link`, which may be another device than the one
    /// it was listed on: same prefix, scope, settable flags, broadcast and lifetimes (what is left of
    /// them: an address with a lifetime keeps counting down). A label of the form "olddev:suffix" becomes
    /// "link:suffix"; a label equal to the old device name becomes the new one (the kernel's default).
    public func addAddress(_ info: AddressInfo, to link: String) throws {
        var label: String?
        if let old = info.label, let colon = old.firstIndex(of: ":") { label = link + old[colon...] }
        try addAddress(info.cidr, to: link, flags: info.flags,
                       scope: info.family == .ipv4 ? info.scope : nil, label: label,
                       broadcast: info.family == .ipv4 ? info.broadcast : nil,
                       validLifetime: info.validLifetime, preferredLifetime: info.preferredLifetime)
    }

    /// Adds listed addresses to `link` so that `ip addr show` lists them in the same order as they were
    /// listed: IPv4 in the given order (primaries before their secondaries, which the kernel requires
    /// anyway), IPv6 in reverse, because the kernel puts a new IPv6 address before the older ones of the
    /// same scope. Stops at the first failure (what was added stays).
    public func addAddresses(_ infos: [AddressInfo], to link: String) throws {
        for info in infos where info.family == .ipv4 { try addAddress(info, to: link) }
        for info in infos.reversed() where info.family == .ipv6 { try addAddress(info, to: link) }
    }

    /// Removes an address, given as it was added ("198.18.0.1/24"). Removing an IPv4 primary address
    /// removes its secondaries too (unless net.ipv4.conf.DEV.promote_secondaries is set).
    public func deleteAddress(_ cidr: String, from link: String) throws {
        try withSocket("delete address", "\(cidr) from \(link)") { socket, call in
            let address = try Self.addressObject(cidr, link: link, socket: socket, call: call)
            defer { rtnl_addr_put(address) }
            try call.check(rtnl_addr_delete(socket, address, 0))
        }
    }

    /// The IPv4 and IPv6 addresses of `link`, or of every link when nil; sorted by ifindex, v4 first, each
    /// family in the kernel's order (the order of `ip addr show`).
    public func addresses(of link: String? = nil) throws -> [AddressInfo] {
        try withSocket("list addresses", link.map { "of \($0)" } ?? "") { socket, call in
            var ifindex: Int32?
            if let link { ifindex = try Self.ifindex(of: link, socket: socket, call: call) }
            var cache: OpaquePointer?
            try call.check(rtnl_addr_alloc_cache(socket, &cache))
            defer { nl_cache_free(cache) }
            var result: [AddressInfo] = []
            var object = nl_cache_get_first(cache)
            while let address = object {
                object = nl_cache_get_next(address)
                let index = rtnl_addr_get_ifindex(address)
                if let ifindex, index != ifindex { continue }
                guard let family = IPAddressText.family(rtnl_addr_get_family(address)),
                      let local = rtnl_addr_get_local(address),
                      let text = IPAddressText.string(local) else { continue }
                let valid = rtnl_addr_get_valid_lifetime(address)
                let preferred = rtnl_addr_get_preferred_lifetime(address)
                result.append(AddressInfo(
                    family: family, address: text, prefixLength: Int(rtnl_addr_get_prefixlen(address)),
                    ifindex: index, scope: UInt8(truncatingIfNeeded: rtnl_addr_get_scope(address)),
                    flags: rtnl_addr_get_flags(address),
                    label: family == .ipv4 ? rtnl_addr_get_label(address).map { String(cString: $0) } : nil,
                    broadcast: rtnl_addr_get_broadcast(address).flatMap(IPAddressText.string),
                    validLifetime: valid == UInt32.max ? nil : valid,
                    preferredLifetime: preferred == UInt32.max ? nil : preferred))
            }
            return result.enumerated().sorted { a, b in
                (a.element.ifindex, a.element.family == .ipv4 ? 0 : 1, a.offset)
                    < (b.element.ifindex, b.element.family == .ipv4 ? 0 : 1, b.offset)
            }.map(\.element)
        }
    }

    /// An rtnl_addr for `cidr` on `link` (referenced: put it).
    private static func addressObject(_ cidr: String, link: String, socket: OpaquePointer,
                                      call: Call) throws -> OpaquePointer {
        let local = try IPAddressText.parse(cidr, call: call)
        defer { nl_addr_put(local) }
        let ifindex = try ifindex(of: link, socket: socket, call: call)
        guard let address = rtnl_addr_alloc() else { throw call.failure(ENOMEM) }
        rtnl_addr_set_ifindex(address, ifindex)
        rtnl_addr_set_family(address, nl_addr_get_family(local))
        let rc = rtnl_addr_set_local(address, local)  // takes its own reference, sets the prefix length
        if rc < 0 { rtnl_addr_put(address); try call.check(rc) }
        return address
    }

    /// IFA_BROADCAST from "198.18.0.255" or "+" (the last address of the subnet of `address`).
    private static func setBroadcast(_ text: String, on address: OpaquePointer, call: Call) throws {
        var value: OpaquePointer
        if text == "+" {
            guard let local = rtnl_addr_get_local(address), let bytes = nl_addr_get_binary_addr(local),
                  nl_addr_get_len(local) == 4 else { throw call.failure(EINVAL, "no IPv4 address for brd +") }
            let prefix = rtnl_addr_get_prefixlen(address)
            let host = UInt32(bigEndian: bytes.loadUnaligned(as: UInt32.self))
            let mask: UInt32 = prefix <= 0 ? 0 : (prefix >= 32 ? UInt32.max : ~(UInt32.max >> UInt32(prefix)))
            var broadcast = (host | ~mask).bigEndian
            guard let built = nl_addr_build(AF_INET, &broadcast, 4) else { throw call.failure(ENOMEM) }
            value = built
        } else {
            value = try IPAddressText.parse(text, call: call)
            guard nl_addr_get_family(value) == AF_INET else {
                nl_addr_put(value)
                throw call.failure(EINVAL, "\"\(text)\" is not an IPv4 broadcast address")
            }
        }
        defer { nl_addr_put(value) }
        try call.check(rtnl_addr_set_broadcast(address, value))  // takes its own reference
    }
}
