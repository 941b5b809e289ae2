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
