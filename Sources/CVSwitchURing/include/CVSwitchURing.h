// CVSwitchURing: batched writes through io_uring (liburing), for what the data plane would
// otherwise do with one write(2) per frame. A thin shim: liburing's API is mostly static inline
// functions over a struct Swift should not lay out itself.
#ifndef CVSWITCH_URING_H
#define CVSWITCH_URING_H

#include <sys/uio.h>

/// A submission ring of its own for one descriptor.
typedef struct vswitch_uring vswitch_uring;

/// A ring of `entries` (a power of two, at most 4096) writing to `fd`; NULL with errno set when
/// io_uring is unavailable (an old kernel, io_uring_disabled, a seccomp filter): the caller
/// writes the usual way.
vswitch_uring *vswitch_uring_open(unsigned entries, int fd);
void vswitch_uring_close(vswitch_uring *ring);

/// Writes `count` buffers to the ring's descriptor, one write each, in one submission per
/// `entries` of them, and waits for all. `results[i]` is what write(2) would have returned for
/// buffer i (bytes written, or -errno: -EAGAIN when the device is full). Returns 0, or -errno if
/// the ring itself failed (then no result can be trusted and the caller writes the usual way).
int vswitch_uring_write(vswitch_uring *ring, const struct iovec *buffers, unsigned count, int *results);

#endif
