#ifndef ALLOC_COUNTER_H
#define ALLOC_COUNTER_H
#include <stdint.h>
/// Number of malloc/calloc/realloc calls in this process so far (benchmark harness only).
uint64_t lvs_allocation_count(void);
/// Number of swift_retain/swift_retain_n calls so far, when they are interposed (a build with the
/// Swift runtime linked dynamically); 0 for ever otherwise.
uint64_t lvs_retain_count(void);
#endif
