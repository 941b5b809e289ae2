#include "CVSwitchURing.h"
#include <errno.h>
#include <stdlib.h>
#include <liburing.h>

struct vswitch_uring {
    struct io_uring ring;
    unsigned entries;
    int fd;
};

vswitch_uring *vswitch_uring_open(unsigned entries, int fd) {
    vswitch_uring *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    // SUBMIT_ALL: a write that fails (EAGAIN: the device is full) does not stop the ones after it.
    int e = io_uring_queue_init(entries, &r->ring, IORING_SETUP_SUBMIT_ALL);
    if (e < 0) { free(r); errno = -e; return NULL; }
    // The descriptor is not registered: a registered file is released only when the ring's
    // teardown work runs, after close returns, and a TAP must go away when its port closes.
    r->fd = fd;
    r->entries = entries;
    return r;
}

void vswitch_uring_close(vswitch_uring *r) {
    if (!r) return;
    io_uring_queue_exit(&r->ring);
    free(r);
}

int vswitch_uring_write(vswitch_uring *r, const struct iovec *buffers, unsigned count, int *results) {
    unsigned done = 0;
    while (done < count) {
        unsigned n = count - done;
        if (n > r->entries) n = r->entries;
        for (unsigned i = 0; i < n; i++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
            if (!sqe) return -EBUSY;
            io_uring_prep_write(sqe, r->fd, buffers[done + i].iov_base, (unsigned)buffers[done + i].iov_len, 0);
            sqe->user_data = done + i;
        }
        int e = io_uring_submit_and_wait(&r->ring, n);
        if (e < 0) return e;
        unsigned seen = 0;
        while (seen < n) {
            struct io_uring_cqe *cqe;
            e = io_uring_wait_cqe(&r->ring, &cqe);
            if (e < 0) return e;
            unsigned long long i = cqe->user_data;
            if (i < count) results[i] = cqe->res;
            io_uring_cqe_seen(&r->ring, cqe);
            seen++;
        }
        done += n;
    }
    return 0;
}
