// The kernel's VXLAN device, for udp ports with `--datapath kernel`: the kernel encapsulates and
// decapsulates, vswitchd switches. Created like `ip link add NAME type vxlan id VNI local ADDR
// dstport PORT` and, per remote, `bridge fdb append 00:00:00:00:00:00 dev NAME dst REMOTE` (the
// head-end replication list, as for a multipoint kernel VXLAN), with the IPv6 address generation
// mode "none", so the host's own stack gives the device no link-local address and sends nothing
// into the tunnel.
import CNetlink
import Glibc

extension NetlinkSocket {
    /// Creates VXLAN device `name` (down): VNI `vni`, UDP port `port` (listening and sending),
    /// source address `local` (nil: chosen by route), MTU `mtu` (nil: the kernel's), learning on,
    /// and a default forwarding entry to each of `remotes` (IP addresses, all of `local`'s family).
    /// A failure midway deletes the device again.
    public func createVXLAN(name: String, vni: UInt32, port: UInt16, local: String?, remotes: [String], mtu: Int?) throws {
        try withSocket("create vxlan", "\(name) (vni \(vni), dstport \(port))") { socket, call in
            try Self.validate(name: name, call: call)
            guard let link = rtnl_link_vxlan_alloc() else { throw call.failure(ENOMEM) }
            defer { rtnl_link_put(link) }
            rtnl_link_set_name(link, name)
            try call.check(rtnl_link_vxlan_set_id(link, vni))
            try call.check(rtnl_link_vxlan_set_port(link, UInt32(port)))
            try call.check(rtnl_link_vxlan_set_learning(link, 1))
            if let local {
                let address = try IPAddressText.parse(local, call: call)
                defer { nl_addr_put(address) }
                try call.check(rtnl_link_vxlan_set_local(link, address))
            }
            if let mtu { rtnl_link_set_mtu(link, UInt32(mtu)) }
            try call.check(rtnl_link_add(socket, link, NLM_F_CREATE | NLM_F_EXCL))
        }
        do {
            // The kernel takes no address generation mode in the creating request: a change after.
            try change(name, "set addrgenmode none on", name) { changes, call in
                try call.check(rtnl_link_inet6_set_addr_gen_mode(changes, UInt8(IN6_ADDR_GEN_MODE_NONE.rawValue)))
            }
            try withSocket("add forwarding entries to", name) { socket, call in
                let index = try Self.ifindex(of: name, socket: socket, call: call)
                var zero = [UInt8](repeating: 0, count: 6)
                guard let any = nl_addr_build(AF_LLC, &zero, 6) else { throw call.failure(ENOMEM) }
                defer { nl_addr_put(any) }
                for remote in remotes {
                    guard let entry = rtnl_neigh_alloc() else { throw call.failure(ENOMEM) }
                    defer { rtnl_neigh_put(entry) }
                    let destination = try IPAddressText.parse(remote, call: call)
                    defer { nl_addr_put(destination) }
                    // The destination first: libnl refuses one of another family than the entry's.
                    try call.check(rtnl_neigh_set_dst(entry, destination))
                    rtnl_neigh_set_family(entry, AF_BRIDGE)
                    rtnl_neigh_set_ifindex(entry, index)
                    rtnl_neigh_set_lladdr(entry, any)
                    rtnl_neigh_set_state(entry, Int32(NUD_PERMANENT | NUD_NOARP))
                    rtnl_neigh_set_flags(entry, UInt32(NTF_SELF))
                    try call.check(rtnl_neigh_add(socket, entry, NLM_F_CREATE | NLM_F_APPEND))
                }
            }
        } catch {
            try? delete(link: name)
            throw error
        }
    }
}
