// Counts heap allocations by interposing malloc, calloc and realloc (benchmark harness only;
// never linked into lvsd). Forwards to glibc's own entry points.
#include <stddef.h>
#include <stdint.h>
#include "alloc_counter.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static uint64_t allocations;

void *malloc(size_t n) { __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED); return __libc_realloc(p, n); }
uint64_t lvs_allocation_count(void) { return __atomic_load_n(&allocations, __ATOMIC_RELAXED); }
