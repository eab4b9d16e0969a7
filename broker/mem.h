/* The broker's allocation wrapper: every allocation of the decision-logic files (subscription
 * index, retained index, timer wheel users, topic aliases, messages) goes through here, so that
 * tests can make the Nth allocation fail and check the failure paths.
 *
 * Threading: the counters and the fault schedule are process-wide and not synchronised; fault
 * injection is meant for single-threaded unit tests. The functions themselves are as
 * thread-safe as malloc. */
#ifndef STARLING_BROKER_MEM_H
#define STARLING_BROKER_MEM_H

#include <stddef.h>

/* malloc/calloc/realloc/free with fault injection. mem_free(NULL) is a no-op;
 * mem_realloc(p, 0) frees p and returns NULL. A failed call returns NULL and, for realloc,
 * leaves the old block untouched. */
void *mem_malloc(size_t size);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *ptr, size_t size);
void mem_free(void *ptr);

/* A NUL-terminated copy of s[0..len), or NULL. */
char *mem_strndup(const char *s, size_t len);

/* Fault schedule: after `delay` more successful allocations, the following `repeat`
 * allocations fail (repeat < 0: all of them). mem_fault_set(-1, 0) turns faults off (the
 * default). A realloc to size 0 is a free and never fails. */
void mem_fault_set(long delay, long repeat);

/* Allocations that failed by injection since start-up (tests check that a fault was hit). */
unsigned long mem_fault_count(void);

/* Blocks allocated and not yet freed through this wrapper (tests check for leaks). */
long mem_live_blocks(void);

#endif
