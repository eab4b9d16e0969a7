/* Intrusive chained hash table (see htab.h). */
#include "htab.h"

#include <errno.h>
#include <stdlib.h>

void htab_init(struct htab *t)
{
    t->buckets = NULL;
    t->nbuckets = 0;
    t->count = 0;
}

void htab_close(struct htab *t)
{
    free(t->buckets);
    htab_init(t);
}

static int htab_grow(struct htab *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 16;
    struct htab_node **b = calloc(n, sizeof *b);
    if (!b) return -ENOMEM;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct htab_node *e = t->buckets[i];
        while (e) {
            struct htab_node *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
    return 0;
}

int htab_insert(struct htab *t, struct htab_node *node, uint64_t hash)
{
    /* Up to two entries per bucket on average: chains stay short (the hash is compared
     * before the key) and a table of 10,000 connections costs 6.5 bytes each, not 13. */
    if (t->count >= 2 * t->nbuckets) {
        int rc = htab_grow(t);
        if (rc < 0) return rc;
    }
    size_t i = hash & (t->nbuckets - 1);
    node->hash = hash;
    node->next = t->buckets[i];
    t->buckets[i] = node;
    t->count++;
    return 0;
}

struct htab_node *htab_find(const struct htab *t, uint64_t hash, htab_eq_fn eq, const void *key)
{
    if (!t->nbuckets) return NULL;
    for (struct htab_node *e = t->buckets[hash & (t->nbuckets - 1)]; e; e = e->next)
        if (e->hash == hash && (!eq || eq(e, key))) return e;
    return NULL;
}

void htab_remove(struct htab *t, struct htab_node *node)
{
    if (!t->nbuckets) return;
    struct htab_node **pp = &t->buckets[node->hash & (t->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        if (*pp == node) {
            *pp = node->next;
            t->count--;
            return;
        }
    }
}

struct htab_node *htab_next(const struct htab *t, size_t *bucket, struct htab_node **cursor)
{
    if (*cursor && (*cursor)->next) {
        *cursor = (*cursor)->next;
        return *cursor;
    }
    size_t i = *cursor ? *bucket + 1 : *bucket;
    for (; i < t->nbuckets; i++) {
        if (t->buckets[i]) {
            *bucket = i;
            *cursor = t->buckets[i];
            return *cursor;
        }
    }
    *bucket = t->nbuckets;
    *cursor = NULL;
    return NULL;
}

uint64_t htab_hash_bytes(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t htab_hash_u64(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    v *= 0xc4ceb9fe1a85ec53ULL;
    v ^= v >> 33;
    return v;
}
