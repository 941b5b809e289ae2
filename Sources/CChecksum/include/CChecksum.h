#ifndef CCHECKSUM_H
#define CCHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/// The Internet checksum's one's complement sum (RFC 1071) of `len` bytes at `buf`, added to
/// `sum`: 16-bit words taken in memory order and summed in host order, 8 bytes at a time with
/// end-around carry. An odd last byte is padded with a zero byte. The result is unfolded; fold it
/// to 16 bits and swap it to big-endian (RFC 1071 2(B): the sum is byte-order independent).
uint64_t vswitch_csum_partial(const void *buf, size_t len, uint64_t sum);

/// Copies `len` bytes from `src` to `dst` (not overlapping) and returns their sum as
/// `vswitch_csum_partial` would: one pass over the bytes instead of two.
uint64_t vswitch_csum_copy(void *dst, const void *src, size_t len, uint64_t sum);

/// Folds a sum from the two functions above to 16 bits, in big-endian (network) order.
uint16_t vswitch_csum_fold(uint64_t sum);

#endif
