#define _GNU_SOURCE
#include "CMallocCounter.h"
#include <stddef.h>
#include <errno.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

// Per thread: tests run in parallel, and only the thread under test is counted.
static _Thread_local uint64_t count;
static _Thread_local int enabled;

void vswitch_malloc_counter_enable(int on) { enabled = on; }
uint64_t vswitch_malloc_count(void) { return count; }

void *malloc(size_t n) { if (enabled) count++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { if (enabled) count++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { if (enabled) count++; return __libc_realloc(p, n); }
int posix_memalign(void **out, size_t align, size_t n) {
    if (enabled) count++;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
void *aligned_alloc(size_t align, size_t n) { if (enabled) count++; return __libc_memalign(align, n); }
