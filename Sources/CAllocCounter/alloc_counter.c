// Counts heap allocations by interposing malloc, calloc and realloc, and the Swift runtime's
// retains (below): benchmark harness only, never linked into lvsd. Forwards to the real entry points.
#define _GNU_SOURCE
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

// The Swift runtime's retains, by interposing swift_retain and swift_retain_n. Weak, so that a
// build that links the runtime statically keeps the runtime's own (lvs-bench then reports the
// retains as not counted).
#include <dlfcn.h>

typedef void *(*lvs_retain_fn)(void *);
typedef void *(*lvs_retain_n_fn)(void *, uint32_t);
static uint64_t retains;
static lvs_retain_fn next_retain;
static lvs_retain_n_fn next_retain_n;

__attribute__((weak)) void *swift_retain(void *object) {
    __atomic_fetch_add(&retains, 1, __ATOMIC_RELAXED);
    lvs_retain_fn next = __atomic_load_n(&next_retain, __ATOMIC_ACQUIRE);
    if (!next) {
        next = (lvs_retain_fn)dlsym(RTLD_NEXT, "swift_retain");
        __atomic_store_n(&next_retain, next, __ATOMIC_RELEASE);
    }
    return next(object);
}

__attribute__((weak)) void *swift_retain_n(void *object, uint32_t n) {
    __atomic_fetch_add(&retains, 1, __ATOMIC_RELAXED);
    lvs_retain_n_fn next = __atomic_load_n(&next_retain_n, __ATOMIC_ACQUIRE);
    if (!next) {
        next = (lvs_retain_n_fn)dlsym(RTLD_NEXT, "swift_retain_n");
        __atomic_store_n(&next_retain_n, next, __ATOMIC_RELEASE);
    }
    return next(object, n);
}

uint64_t lvs_retain_count(void) { return __atomic_load_n(&retains, __ATOMIC_RELAXED); }
