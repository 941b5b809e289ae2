// CVSwitchLinux: the few kernel interfaces Swift cannot call directly.
// ioctl() is variadic and TUNSETIFF, TUNSETVNETHDRSZ, TUNSETOFFLOAD and TUNSETPERSIST are
// function-like macros, and struct ifreq is a union: none of them import into Swift.
// Each function returns 0 (or a non-negative fd) on success and -errno on failure, so the
// Swift side never reads a racy global errno.
#ifndef CVSWITCH_LINUX_H
#define CVSWITCH_LINUX_H

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/if_packet.h>

/// Size of struct virtio_net_hdr (no mergeable buffers): the header the TAP driver prepends
/// to every frame when opened with IFF_VNET_HDR.
#define VSWITCH_VNET_HDR_LEN 10

/// Options for vswitch_tap_open.
enum {
    VSWITCH_TAP_VNET_HDR = 1,  ///< IFF_VNET_HDR + TUNSETVNETHDRSZ + TUNSETOFFLOAD(CSUM|TSO4|TSO6)
    VSWITCH_TAP_TUN      = 2,  ///< IFF_TUN (L3) instead of IFF_TAP
};

/// An AF_PACKET socket bound to interface `ifindex`, every protocol, with a virtio-net header
/// before each frame both ways (PACKET_VNET_HDR: GSO superframes and partial checksums, as a TAP
/// with IFF_VNET_HDR), blind to what the host itself sends out of the interface
/// (PACKET_IGNORE_OUTGOING), non-blocking, close-on-exec, socket buffers of `buffer_bytes` each.
/// Opened for no protocol and only then bound, so no frame of another interface gets in.
/// Returns the fd, or -errno.
int vswitch_packet_open(int ifindex, int buffer_bytes);

/// Open /dev/net/tun and attach to (or create) interface `name` as TAP (IFF_TAP|IFF_NO_PI),
/// non-blocking and close-on-exec. `actual_name` (IFNAMSIZ bytes) receives the kernel's name.
/// Returns the fd, or -errno.
int vswitch_tap_open(const char *name, int options, char *actual_name);

/// TUNSETPERSIST on an open TAP fd. Returns 0 or -errno.
int vswitch_tap_set_persist(int fd, int persist);

/// TUNGETIFF: reads the flags the device was attached with. Returns flags (>= 0) or -errno.
int vswitch_tap_get_flags(int fd);

/// IFF_PERSIST as TUNGETIFF reports it, for telling a persistent TAP from one we own.
int vswitch_iff_persist(void);

/// setns(fd, CLONE_NEWNET) and unshare(CLONE_NEWNET): GNU extensions that Swift's Glibc module
/// (built without _GNU_SOURCE) does not import. Return 0 or -errno.
int vswitch_setns_net(int fd);
int vswitch_unshare_net(void);

/// posix_spawn_file_actions_addclosefrom_np(actions, 3): the child keeps only stdin, stdout and
/// stderr, so a long-lived child (a lab's vswitchd) holds no pipe or socket of its parent's.
#include <spawn.h>
int vswitch_spawn_close_inherited(posix_spawn_file_actions_t *actions);

/// pthread_setname_np (a GNU extension Glibc's module map does not export).
#include <pthread.h>
int vswitch_set_thread_name(pthread_t thread, const char *name);

// MARK: - pcap ports: ethtool, MTU, an AF_PACKET transmit socket

/// ETHTOOL_GFLAGS / ETHTOOL_SFLAGS on interface `ifname` (in the calling thread's namespace).
/// Return 0 or -errno.
int vswitch_ethtool_get_flags(const char *ifname, uint32_t *flags);
int vswitch_ethtool_set_flags(const char *ifname, uint32_t flags);
/// ETH_FLAG_LRO: large receive offload, which must be off on a bridged interface.
uint32_t vswitch_eth_flag_lro(void);

/// SIOCGIFMTU: the interface's MTU, or -errno.
int vswitch_if_mtu(const char *ifname);
/// 1 if interface `ifname` (in the namespace of socket `fd`) is up with carrier, 0 if not, -errno.
int vswitch_if_running(int fd, const char *ifname);

/// An AF_PACKET raw socket bound to `ifindex` for transmitting only (protocol 0: it receives
/// nothing), with PACKET_VNET_HDR so each frame is preceded by a virtio-net header and the kernel
/// segments and checksums what the header describes. Non-blocking, close-on-exec. `sndbuf` > 0
/// sets SO_SNDBUF(FORCE). Returns the fd, or -errno.
int vswitch_packet_tx_open(int ifindex, int sndbuf);

/// sendmmsg of `count` (at most 256) messages, message i being the `lengths[i]` bytes at
/// `starts[i]`. Returns how many were sent (>= 0) or -errno for the first one.
int vswitch_send_batch(int fd, void *const *starts, const uint32_t *lengths, unsigned count);

// MARK: - UDP tunnel ports: batched datagram I/O

#include <netinet/in.h>

/// recvmmsg of up to `count` (at most 64) messages, message i into the `capacities[i]` bytes at
/// `starts[i]`, its length in `lengths[i]` (UINT32_MAX if it was truncated), its source in
/// `sources[i]`, and in `segments[i]` the size of the datagrams UDP_GRO coalesced into it (0: one
/// datagram). Non-blocking. Returns how many were received (0 if none) or -errno.
int vswitch_recv_batch(int fd, void *const *starts, const uint32_t *capacities, uint32_t *lengths,
                       struct sockaddr_storage *sources, uint16_t *segments, unsigned count);

/// setsockopt(SOL_UDP, UDP_GRO, 1): the kernel may hand several datagrams of one flow over as one
/// message. Returns 0 or -errno.
int vswitch_enable_udp_gro(int fd);

/// Secure tunnels: SO_REUSEPORT on `fd` (before bind), so that a second socket can share its
/// address and port. 0 or -errno.
int vswitch_enable_reuseport(int fd);

/// Secure tunnels: attaches to `fd`'s reuseport group (both sockets bound) a classic BPF program
/// that steers each datagram by its second byte: data (type 4, or anything too short to say) to
/// the group's first socket, every other type (handshakes, cookie replies) to the second. The
/// kernel then queues and drops handshake floods apart from the data. 0 or -errno.
int vswitch_steer_secure_handshakes(int fd);

/// sendmmsg of `count` (at most 256) datagrams, datagram i being the `header_length` bytes at
/// `header` (none if 0: one header shared by every datagram, never copied) followed by the
/// `lengths[i]` bytes at `starts[i]`, to `destinations[i]` (`destination_lengths[i]` bytes).
/// Returns how many were sent or -errno for the first one.
int vswitch_send_batch_to(int fd, const void *header, uint32_t header_length, void *const *starts, const uint32_t *lengths,
                          const struct sockaddr_storage *const *destinations, const uint32_t *destination_lengths,
                          unsigned count);

/// One sendmsg of the bytes the `count` iovecs at `pieces` gather, to `destination`, with
/// UDP_SEGMENT = `segment` (none if 0): the kernel (or the NIC) cuts them into datagrams of
/// `segment` bytes (the last may be shorter), whichever pieces they come from.
/// Returns the bytes sent or -errno (EINVAL/ENOPROTOOPT/EIO: no UDP GSO here).
int vswitch_send_gso(int fd, const struct iovec *pieces, uint32_t count, uint16_t segment,
                     const struct sockaddr_storage *destination, uint32_t destination_length);

/// The path MTU the kernel would use toward `destination` (IP_MTU / IPV6_MTU of a connected
/// datagram socket), or -errno.
int vswitch_path_mtu(const struct sockaddr_storage *destination, uint32_t length);

#endif
