/* Shared helpers for the cmocka unit tests. */
#include "testlib.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t test_seed(void)
{
    static uint64_t seed;
    static int ready;
    if (!ready) {
        const char *env = getenv("STARLING_TEST_SEED");
        if (env != NULL && *env != '\0') {
            seed = strtoull(env, NULL, 0);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
        }
        ready = 1;
        fprintf(stderr, "test seed: STARLING_TEST_SEED=%llu\n", (unsigned long long)seed);
    }
    return seed;
}

uint64_t test_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

const char *test_mkdtemp(void)
{
    static char paths[8][256];
    static unsigned next;
    const char *base = getenv("TMPDIR");
    char *path = paths[next++ % 8];
    snprintf(path, sizeof paths[0], "%s/starling-test-XXXXXX", base ? base : "/tmp");
    return mkdtemp(path);
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_rmdir(const char *path)
{
    if (path != NULL) nftw(path, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
}
