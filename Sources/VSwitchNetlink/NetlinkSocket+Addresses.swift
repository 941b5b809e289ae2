import CNetlink
import Glibc

extension NetlinkSocket {
    /// Adds an IPv4 or IPv6 address ("198.18.0.1/24", "2001:2::1/64"; no prefix means /32 or /128),
    /// like `ip addr add`: a duplicate fails with "File exists". `skipDAD` sets IFA_F_NODAD so an IPv6
    /// address is usable at once instead of "tentative" for a second or two.
    public func addAddress(_ cidr: String, to link: String, skipDAD: Bool = false) throws {
        try withSocket("add address", "\(cidr) to \(link)") { socket, call in
            let address = try Self.addressObject(cidr, link: link, socket: socket, call: call)
            defer { rtnl_addr_put(address) }
            if skipDAD { rtnl_addr_set_flags(address, ifaFlagNoDAD) }
            try call.check(rtnl_addr_add(socket, address, NLM_F_CREATE | NLM_F_EXCL))
        }
    }

    /// Removes an address, given as it was added ("198.18.0.1/24").
    public func deleteAddress(_ cidr: String, from link: String) throws {
        try withSocket("delete address", "\(cidr) from \(link)") { socket, call in
            let address = try Self.addressObject(cidr, link: link, socket: socket, call: call)
            defer { rtnl_addr_put(address) }
            try call.check(rtnl_addr_delete(socket, address, 0))
        }
    }

    /// The IPv4 and IPv6 addresses of `link`, or of every link when nil; sorted by ifindex, v4 first.
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
                result.append(AddressInfo(family: family, address: text,
                                          prefixLength: Int(rtnl_addr_get_prefixlen(address)), ifindex: index))
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
}

private let ifaFlagNoDAD: UInt32 = 0x02  // IFA_F_NODAD
