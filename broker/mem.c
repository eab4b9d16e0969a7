/* The allocation wrapper with its fault schedule (see mem.h). */
#include "mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The schedule is for single-threaded tests; the counters are atomic (relaxed) so that
 * allocations from worker threads are no data race. */
static atomic_long fault_delay = -1; /* successful allocations left before faults; < 0: off */
static long fault_repeat;            /* faults left once the delay is over; < 0: unlimited */
static atomic_ulong faults;
static atomic_long live;

void mem_fault_set(long delay, long repeat)
{
    fault_delay = delay;
    fault_repeat = repeat;
}

unsigned long mem_fault_count(void)
{
    return faults;
}

long mem_live_blocks(void)
{
    return live;
}

/* Whether the allocation being made now must fail. */
static int should_fail(void)
{
    if (atomic_load_explicit(&fault_delay, memory_order_relaxed) < 0) return 0;
    if (fault_delay > 0) {
        fault_delay--;
        return 0;
    }
    if (fault_repeat == 0) {
        fault_delay = -1;
        return 0;
    }
    if (fault_repeat > 0 && --fault_repeat == 0) fault_delay = -1;
    faults++;
    return 1;
}

void *mem_malloc(size_t size)
{
    void *p;
    if (should_fail()) return NULL;
    p = malloc(size ? size : 1);
    if (p) atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void *mem_calloc(size_t count, size_t size)
{
    void *p;
    if (should_fail()) return NULL;
    p = calloc(count ? count : 1, size ? size : 1);
    if (p) atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void *mem_realloc(void *ptr, size_t size)
{
    void *p;
    if (size == 0) {
        mem_free(ptr);
        return NULL;
    }
    if (should_fail()) return NULL;
    p = realloc(ptr, size);
    if (p && !ptr) atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void mem_free(void *ptr)
{
    if (!ptr) return;
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    free(ptr);
}

char *mem_strndup(const char *s, size_t len)
{
    char *p = mem_malloc(len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}
