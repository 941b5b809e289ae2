#define _GNU_SOURCE
#include "CVSwitchLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <sched.h>
#include <spawn.h>
#include <linux/if_tun.h>

int vswitch_tap_open(const char *name, int options, char *actual_name) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_NO_PI | ((options & VSWITCH_TAP_TUN) ? IFF_TUN : IFF_TAP);
    if (options & VSWITCH_TAP_VNET_HDR) ifr.ifr_flags |= IFF_VNET_HDR;
    if (name) strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { int e = errno; close(fd); return -e; }
    if (options & VSWITCH_TAP_VNET_HDR) {
        int size = VSWITCH_VNET_HDR_LEN;
        if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) { int e = errno; close(fd); return -e; }
        // Checksum offload plus TSO lets the kernel hand us (and take back) 64 KiB TCP superframes.
        unsigned offload = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
        if (ioctl(fd, TUNSETOFFLOAD, offload) < 0) { int e = errno; close(fd); return -e; }
    }
    if (actual_name) { memcpy(actual_name, ifr.ifr_name, IFNAMSIZ); actual_name[IFNAMSIZ - 1] = 0; }
    return fd;
}

int vswitch_tap_set_persist(int fd, int persist) {
    return ioctl(fd, TUNSETPERSIST, (unsigned long)(persist ? 1 : 0)) < 0 ? -errno : 0;
}

int vswitch_tap_get_flags(int fd) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ioctl(fd, TUNGETIFF, &ifr) < 0) return -errno;
    return (unsigned short)ifr.ifr_flags;
}

int vswitch_iff_persist(void) { return IFF_PERSIST; }

#include <pthread.h>
int vswitch_set_thread_name(pthread_t thread, const char *name) { return pthread_setname_np(thread, name); }

int vswitch_setns_net(int fd) { return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0; }
int vswitch_unshare_net(void) { return unshare(CLONE_NEWNET) < 0 ? -errno : 0; }

int vswitch_spawn_close_inherited(posix_spawn_file_actions_t *actions) { return posix_spawn_file_actions_addclosefrom_np(actions, 3); }

// MARK: - pcap ports

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sys/uio.h>

static int ethtool_value_ioctl(const char *ifname, struct ethtool_value *v) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    ifr.ifr_data = (void *)v;
    int r = ioctl(s, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
    close(s);
    return r;
}

int vswitch_ethtool_get_flags(const char *ifname, uint32_t *flags) {
    struct ethtool_value v = { .cmd = ETHTOOL_GFLAGS };
    int r = ethtool_value_ioctl(ifname, &v);
    if (r == 0) *flags = v.data;
    return r;
}

int vswitch_ethtool_set_flags(const char *ifname, uint32_t flags) {
    struct ethtool_value v = { .cmd = ETHTOOL_SFLAGS, .data = flags };
    return ethtool_value_ioctl(ifname, &v);
}

uint32_t vswitch_eth_flag_lro(void) { return ETH_FLAG_LRO; }

int vswitch_if_mtu(const char *ifname) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    int r = ioctl(s, SIOCGIFMTU, &ifr) < 0 ? -errno : ifr.ifr_mtu;
    close(s);
    return r;
}

int vswitch_if_running(int fd, const char *ifname) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) return -errno;
    return (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING) ? 1 : 0;
}

int vswitch_packet_tx_open(int ifindex, int sndbuf) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) goto fail;
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0
        && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) < 0) goto fail;
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = 0;
    sll.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

int vswitch_send_batch(int fd, void *const *starts, const uint32_t *lengths, unsigned count) {
    struct mmsghdr msgs[256];
    struct iovec iov[256];
    if (count > 256) count = 256;
    memset(msgs, 0, sizeof(struct mmsghdr) * count);
    for (unsigned i = 0; i < count; i++) {
        iov[i].iov_base = starts[i];
        iov[i].iov_len = lengths[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = sendmmsg(fd, msgs, count, MSG_DONTWAIT);
    return n < 0 ? -errno : n;
}

// MARK: - UDP tunnel ports

#include <netinet/ip.h>
#include <netinet/udp.h>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

int vswitch_recv_batch(int fd, void *const *starts, const uint32_t *capacities, uint32_t *lengths,
                       struct sockaddr_storage *sources, uint16_t *segments, unsigned count) {
    struct mmsghdr msgs[64];
    struct iovec iov[64];
    char control[64][CMSG_SPACE(sizeof(int))];
    if (count > 64) count = 64;
    memset(msgs, 0, sizeof(struct mmsghdr) * count);
    for (unsigned i = 0; i < count; i++) {
        iov[i].iov_base = starts[i];
        iov[i].iov_len = capacities[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &sources[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        msgs[i].msg_hdr.msg_control = control[i];
        msgs[i].msg_hdr.msg_controllen = sizeof control[i];
    }
    int n = recvmmsg(fd, msgs, count, MSG_DONTWAIT, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        lengths[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? UINT32_MAX : msgs[i].msg_len;
        segments[i] = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm; cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
            if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
                int size;
                memcpy(&size, CMSG_DATA(cm), sizeof size);
                segments[i] = size > 0 && size < 65536 ? (uint16_t)size : 0;
            }
        }
    }
    return n;
}

int vswitch_enable_udp_gro(int fd) {
    int one = 1;
    return setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) < 0 ? -errno : 0;
}

#include <linux/filter.h>

int vswitch_enable_reuseport(int fd) {
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ? -errno : 0;
}

int vswitch_steer_secure_handshakes(int fd) {
    // The program runs with the packet's data at the UDP payload. A load beyond the end makes
    // a classic BPF program return 0: short datagrams go to the data socket, which drops them.
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 1),            // A = payload[1], the type
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 0, 1),     // data?
        BPF_STMT(BPF_RET | BPF_K, 0),                     //   the first socket
        BPF_STMT(BPF_RET | BPF_K, 1),                     // else the second
    };
    struct sock_fprog program = { .len = sizeof code / sizeof code[0], .filter = code };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program) < 0 ? -errno : 0;
}

int vswitch_send_batch_to(int fd, const void *header, uint32_t header_length, void *const *starts, const uint32_t *lengths,
                          const struct sockaddr_storage *const *destinations, const uint32_t *destination_lengths,
                          unsigned count) {
    struct mmsghdr msgs[256];
    struct iovec iov[512];
    if (count > 256) count = 256;
    memset(msgs, 0, sizeof(struct mmsghdr) * count);
    for (unsigned i = 0; i < count; i++) {
        struct iovec *v = &iov[2 * i];
        int n = 0;
        if (header_length > 0) { v[n].iov_base = (void *)header; v[n].iov_len = header_length; n++; }
        v[n].iov_base = starts[i];
        v[n].iov_len = lengths[i];
        n++;
        msgs[i].msg_hdr.msg_iov = v;
        msgs[i].msg_hdr.msg_iovlen = n;
        msgs[i].msg_hdr.msg_name = (void *)destinations[i];
        msgs[i].msg_hdr.msg_namelen = destination_lengths[i];
    }
    int n = sendmmsg(fd, msgs, count, MSG_DONTWAIT);
    return n < 0 ? -errno : n;
}

int vswitch_path_mtu(const struct sockaddr_storage *destination, uint32_t length) {
    int family = destination->ss_family;
    int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    int r;
    if (connect(s, (const struct sockaddr *)destination, length) < 0) {
        r = -errno;
    } else {
        int mtu = 0;
        socklen_t len = sizeof mtu;
        int ok = family == AF_INET6 ? getsockopt(s, IPPROTO_IPV6, IPV6_MTU, &mtu, &len)
                                    : getsockopt(s, IPPROTO_IP, IP_MTU, &mtu, &len);
        r = ok < 0 ? -errno : mtu;
    }
    close(s);
    return r;
}

#include <netinet/udp.h>
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

int vswitch_send_gso(int fd, const struct iovec *pieces, uint32_t count, uint16_t segment,
                     const struct sockaddr_storage *destination, uint32_t destination_length) {
    char control[CMSG_SPACE(sizeof(uint16_t))];
    memset(control, 0, sizeof control);
    struct msghdr msg = {
        .msg_name = (void *)destination, .msg_namelen = destination_length,
        .msg_iov = (struct iovec *)pieces, .msg_iovlen = count,
        .msg_control = segment ? control : NULL, .msg_controllen = segment ? sizeof control : 0,
    };
    if (segment) {
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        memcpy(CMSG_DATA(cm), &segment, sizeof segment);
    }
    ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT);
    return n < 0 ? -errno : (int)n;
}

#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <arpa/inet.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

int vswitch_packet_open(int ifindex, int buffer_bytes) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0
        || setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    // Forced past the sysctl limits where allowed (CAP_NET_ADMIN), else as large as they allow.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer_bytes, sizeof buffer_bytes) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buffer_bytes, sizeof buffer_bytes) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
    struct sockaddr_ll address = {
        .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = ifindex,
    };
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}
