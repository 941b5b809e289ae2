// The Internet checksum's inner loop, in C so that it compiles to add-with-carry over 64-bit
// words (unsigned __int128 accumulators): about 8 bytes per cycle, where a portable loop of
// 16- or 32-bit words manages one or two. The tunnel's software segmentation and its userspace
// GRO sum every byte they move, so this loop is on the tunnel's hot path.
#include "CChecksum.h"
#include <string.h>

static inline uint64_t fold128(unsigned __int128 acc) {
    uint64_t lo = (uint64_t)acc, hi = (uint64_t)(acc >> 64);
    uint64_t s = lo + hi;
    return s + (s < hi);
}

uint64_t vswitch_csum_partial(const void *buf, size_t len, uint64_t sum) {
    const unsigned char *p = buf;
    unsigned __int128 a = sum, b = 0;
    while (len >= 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, p, 8); memcpy(&w1, p + 8, 8); memcpy(&w2, p + 16, 8); memcpy(&w3, p + 24, 8);
        a += w0; b += w1; a += w2; b += w3;
        p += 32; len -= 32;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        a += w;
        p += 8; len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        a += w;
    }
    a += fold128(b);
    return fold128(a);
}

uint64_t vswitch_csum_copy(void *dst, const void *src, size_t len, uint64_t sum) {
    const unsigned char *p = src;
    unsigned char *q = dst;
    unsigned __int128 a = sum, b = 0;
    while (len >= 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, p, 8); memcpy(&w1, p + 8, 8); memcpy(&w2, p + 16, 8); memcpy(&w3, p + 24, 8);
        memcpy(q, &w0, 8); memcpy(q + 8, &w1, 8); memcpy(q + 16, &w2, 8); memcpy(q + 24, &w3, 8);
        a += w0; b += w1; a += w2; b += w3;
        p += 32; q += 32; len -= 32;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        memcpy(q, &w, 8);
        a += w;
        p += 8; q += 8; len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        memcpy(q, p, len);
        a += w;
    }
    a += fold128(b);
    return fold128(a);
}

uint16_t vswitch_csum_fold(uint64_t sum) {
    uint64_t s = (sum & 0xffffffffu) + (sum >> 32);
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    uint16_t h = (uint16_t)s;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (uint16_t)((h >> 8) | (h << 8));
#else
    return h;
#endif
}
