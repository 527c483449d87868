#ifndef ALLOC_COUNTER_H
#define ALLOC_COUNTER_H
#include <stdint.h>
/// Number of malloc/calloc/realloc calls in this process so far (benchmark harness only).
uint64_t lvs_allocation_count(void);
#endif
