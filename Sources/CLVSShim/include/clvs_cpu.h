// CPU hints for LVSCore's packet path that Swift does not expose. Header only: the functions
// are static inline and compile into the Swift caller.
#ifndef CLVS_CPU_H
#define CLVS_CPU_H

/// Starts loading the cache line at `p` for writing, without waiting for it (never faults).
static inline __attribute__((always_inline)) void clvs_prefetch_write(const void *p) {
    __builtin_prefetch(p, 1, 3);
}

#endif
