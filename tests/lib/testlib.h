/* Shared helpers for the cmocka unit tests: seeds that are printed, and temp dirs. */
#ifndef STARLING_TESTLIB_H
#define STARLING_TESTLIB_H

#include <stdint.h>

/* The seed for this run: $STARLING_TEST_SEED if set, else a fresh one. Printed once, so that
 * a failing randomized test can be replayed with the same seed. */
uint64_t test_seed(void);

/* A deterministic generator (splitmix64) over *state. */
uint64_t test_rand(uint64_t *state);

/* Creates a fresh directory under $TMPDIR (or /tmp) and returns its path (static storage
 * for up to 8 live directories). test_rmdir() removes it and everything below it. */
const char *test_mkdtemp(void);
void test_rmdir(const char *path);

#endif
