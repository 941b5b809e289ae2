// CMallocCounter: counts heap allocations in the process, for allocation tests of the packet path.
// Linking this target interposes malloc, calloc, realloc and posix_memalign with versions that
// count and then call glibc's own (__libc_*). Counting is per thread and off until enabled on that thread.
#ifndef CMALLOC_COUNTER_H
#define CMALLOC_COUNTER_H
#include <stdint.h>
void vswitch_malloc_counter_enable(int on);
uint64_t vswitch_malloc_count(void);
#endif
