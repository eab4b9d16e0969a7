/* Topic ownership: rendezvous (highest-random-weight) hashing over the live members.
 *
 * owner(topic) = the member id m maximizing XXH3_64bits_withSeed(topic, len, m); ties (which
 * need equal 64-bit hashes) go to the lower id. Every node computes it from the committed
 * member set alone, so all agree; when a member joins or leaves only the topics it wins or
 * held move (about 1/N). A direct-mapped cache of RING_CACHE_SLOTS entries, keyed by the
 * topic's XXH3 hash and invalidated by a generation number on every member change, spares the
 * N hashes per lookup.
 */
#ifndef STARLING_CLUSTER_RING_H
#define STARLING_CLUSTER_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_CACHE_SLOTS 4096u

struct ring_slot {
    uint64_t hash;
    uint64_t owner;
    uint32_t generation;
};

struct ring {
    uint64_t *members; /* sorted ascending */
    size_t n;
    uint32_t generation;
    struct ring_slot *cache;
    uint64_t hits, misses;
    uint64_t digest; /* of the live set and each member's last verdict (set by owner.c) */
};

void ring_init(struct ring *r);
void ring_close(struct ring *r);
/* Replaces the member set (ids in any order, duplicates ignored). Returns 1 if it changed,
 * 0 if not, -ENOMEM. */
int ring_set_members(struct ring *r, const uint64_t *ids, size_t n);
/* The owner of topic, 0 when there are no members. */
uint64_t ring_owner(struct ring *r, const char *topic, size_t len);
/* Without the cache (tests). */
uint64_t ring_owner_uncached(const struct ring *r, const char *topic, size_t len);

/* The ring epoch after a NODE_UP / NODE_DOWN applied at Raft index: that index, or one more
 * than the previous epoch when a new log (a restore) numbers entries from 1 again. The FSM
 * stores it with the state and the owner table keeps it in memory, by this same rule, so
 * every node that applied the same prefix of the log holds the same epoch. */
static inline uint64_t ring_epoch_next(uint64_t epoch, uint64_t index)
{
    return index > epoch ? index : epoch + 1;
}

#endif
