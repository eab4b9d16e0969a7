/* Rendezvous hashing of topics over the live members (ring.h). */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

void ring_init(struct ring *r)
{
    memset(r, 0, sizeof *r);
    r->generation = 1;
}

void ring_close(struct ring *r)
{
    free(r->members);
    free(r->cache);
    memset(r, 0, sizeof *r);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int ring_set_members(struct ring *r, const uint64_t *ids, size_t n)
{
    uint64_t *m = malloc((n ? n : 1) * sizeof *m);
    if (!m) return -ENOMEM;
    if (n) memcpy(m, ids, n * sizeof *m);
    qsort(m, n, sizeof *m, cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || m[k - 1] != m[i]) m[k++] = m[i];
    if (k == r->n && (k == 0 || memcmp(m, r->members, k * sizeof *m) == 0)) {
        free(m);
        return 0;
    }
    free(r->members);
    r->members = m;
    r->n = k;
    r->generation++;
    if (r->generation == 0) r->generation = 1; /* 0 marks an empty slot */
    return 1;
}

uint64_t ring_owner_uncached(const struct ring *r, const char *topic, size_t len)
{
    uint64_t best = 0, best_w = 0;
    for (size_t i = 0; i < r->n; i++) {
        uint64_t w = XXH3_64bits_withSeed(topic, len, r->members[i]);
        if (best == 0 || w > best_w) {
            best = r->members[i];
            best_w = w;
        }
    }
    return best;
}

uint64_t ring_owner(struct ring *r, const char *topic, size_t len)
{
    if (r->n <= 1) return r->n ? r->members[0] : 0;
    if (!r->cache) r->cache = calloc(RING_CACHE_SLOTS, sizeof *r->cache);
    if (!r->cache) return ring_owner_uncached(r, topic, len);
    uint64_t h = XXH3_64bits(topic, len);
    struct ring_slot *s = &r->cache[h % RING_CACHE_SLOTS];
    if (s->generation == r->generation && s->hash == h) {
        r->hits++;
        return s->owner;
    }
    r->misses++;
    s->hash = h;
    s->owner = ring_owner_uncached(r, topic, len);
    s->generation = r->generation;
    return s->owner;
}
