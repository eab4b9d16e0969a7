/* An intrusive chained hash table keyed by a 64-bit hash, used for the session table (client
 * id), the connection table (connection id) and the pending-operation table. The table owns
 * only its bucket array; entries are embedded in their owners (struct htab_node). */
#ifndef STARLING_BROKER_HTAB_H
#define STARLING_BROKER_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct htab_node {
    struct htab_node *next;
    uint64_t hash;
};

struct htab {
    struct htab_node **buckets;
    size_t nbuckets; /* a power of two, or 0 before the first insert */
    size_t count;
};

/* Whether node is the entry sought by key (called only for nodes with the same hash). */
typedef bool (*htab_eq_fn)(const struct htab_node *node, const void *key);

void htab_init(struct htab *t);
void htab_close(struct htab *t); /* frees the buckets; entries stay their owners' */

/* Inserts node with hash. Returns 0 or -ENOMEM (then the node is not inserted). */
int htab_insert(struct htab *t, struct htab_node *node, uint64_t hash);
/* The entry with hash for which eq(node, key) holds, or NULL. eq NULL: the first with hash. */
struct htab_node *htab_find(const struct htab *t, uint64_t hash, htab_eq_fn eq, const void *key);
void htab_remove(struct htab *t, struct htab_node *node);

/* Iteration: *pos starts at 0; returns the next node or NULL at the end. The table must not
 * change during an iteration except by removing the node just returned. */
struct htab_node *htab_next(const struct htab *t, size_t *bucket, struct htab_node **cursor);

/* FNV-1a of a byte string: good enough for client ids and cheap. */
uint64_t htab_hash_bytes(const void *p, size_t len);
uint64_t htab_hash_u64(uint64_t v);

#endif
