/* The subscription index: a trie of topic-filter levels ('+' and '#' are nodes of their own)
 * whose nodes hold their subscribers, plus per-owner lists, shared-subscription groups with a
 * round-robin cursor, and a scratch area that merges the matches of one topic per owner.
 *
 * Contract:
 * - Pure decision logic: no I/O, no clock. Single-threaded (the loop thread owns it).
 * - An owner is an opaque non-NULL pointer (a session); the index never dereferences it.
 * - Filters are copied; nothing the caller passes is retained after a call returns.
 * - Errors: -EINVAL for a malformed filter, -ENOMEM (the index is then unchanged), -ENOENT.
 * - Results of subs_collect() live in the index's scratch area: valid until the next
 *   subs_collect() on the same index or subs_free(). Other calls (add, remove, match) leave
 *   the scratch area alone, so delivering to the targets may subscribe or unsubscribe.
 * - Callbacks must not modify the index they are called from.
 */
#ifndef STARLING_BROKER_SUBS_H
#define STARLING_BROKER_SUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct subs;

/* The options byte in MQTT 5's SUBSCRIBE layout (mqtt_sub_opts_byte() builds it; 3.x uses
 * only the QoS bits): bits 0-1 QoS, bit 2 No Local, bit 3 Retain As Published, bits 4-5
 * Retain Handling. */
#define SUBS_OPT_QOS(o)             ((uint8_t)((o)&0x03))
#define SUBS_OPT_NO_LOCAL(o)        (((o)&0x04) != 0)
#define SUBS_OPT_RAP(o)             (((o)&0x08) != 0)
#define SUBS_OPT_RETAIN_HANDLING(o) ((uint8_t)(((o) >> 4) & 0x03))
#define SUBS_OPTIONS(qos, nl, rap, rh)                                                             \
    ((uint8_t)(((qos)&0x03) | ((nl) ? 0x04 : 0) | ((rap) ? 0x08 : 0) | (((rh)&0x03) << 4)))

/* A read-only view of one subscription, lent to callbacks for the duration of the call. */
struct subs_info {
    void *owner;
    const char *filter; /* as subscribed, "$share/<group>/..." included; NUL-terminated */
    size_t filter_len;
    const char *group; /* share group name (points into filter), or NULL if not shared */
    size_t group_len;
    uint8_t options; /* SUBS_OPT_* */
    uint32_t sub_id; /* MQTT 5 subscription identifier, 0 for none */
};

/* One delivery decided by subs_collect(): ONE copy to `owner`, merging every non-shared
 * subscription of that owner that matches (MQTT-3.3.5-1, MQTT 5 section 3.3.4), or the member
 * chosen for one shared group (a copy of its own, never merged: MQTT 5 section 4.8.2). */
struct subs_target {
    void *owner;
    uint8_t qos;              /* the maximum granted QoS over the merged subscriptions */
    bool retain_as_published; /* any merged subscription has Retain As Published */
    bool shared;              /* the chosen member of a shared group */
    uint32_t sub_id_count;    /* non-zero subscription identifiers of the merged subs */
    const uint32_t *sub_ids;  /* [sub_id_count], in the index's scratch area */
    /* shared: the member's filter ("$share/<group>/..."), which names the group; lent until the
     * index changes (copy it before delivering). NULL for a non-shared target. */
    const char *filter;
    size_t filter_len;
};

typedef void (*subs_match_cb)(void *ctx, const struct subs_info *sub);
/* Whether owner can take a shared-subscription message now (e.g. it is online). */
typedef bool (*subs_able_cb)(void *ctx, void *owner);

/* An able callback that leaves shared groups out altogether: passed to subs_match() or
 * subs_collect(), no group member is tried and no round-robin cursor moves (the groups'
 * deliveries were decided elsewhere). Returns false. */
bool subs_able_none(void *ctx, void *owner);

/* A new empty index, or NULL without memory. subs_free(NULL) is a no-op. */
struct subs *subs_new(void);
void subs_free(struct subs *s);

/* Subscribes owner to filter (a topic filter or "$share/<group>/<filter>"), or replaces the
 * options and identifier of the subscription owner already has to that exact filter.
 * OUT *replaced (may be NULL): true when it replaced one (Retain Handling 1 then sends no
 * retained messages). Returns 0, -EINVAL (malformed filter: empty, misplaced wildcard, bad
 * $share form, longer than 65535), -ENOMEM (index unchanged). */
int subs_add(struct subs *s, void *owner, const char *filter, size_t filter_len, uint8_t options,
             uint32_t sub_id, bool *replaced);

/* Removes owner's subscription to exactly filter. Returns 0 or -ENOENT. Never allocates. */
int subs_remove(struct subs *s, void *owner, const char *filter, size_t filter_len);

/* Removes every subscription of owner; returns how many. Never allocates. */
size_t subs_remove_owner(struct subs *s, void *owner);

/* Finds owner's subscription to exactly filter: 0 with *out filled (lent until the index
 * changes), or -ENOENT. */
int subs_find(const struct subs *s, void *owner, const char *filter, size_t filter_len,
              struct subs_info *out);

/* Calls cb for every subscription of owner, in the order they were added. */
void subs_foreach_owner(const struct subs *s, void *owner, subs_match_cb cb, void *ctx);

/* Calls cb once for every subscription that matches topic (a topic name, no wildcards), and
 * for each shared group that matches, once for exactly one member chosen round-robin among
 * those for which able(able_ctx, owner) holds (able NULL: all are able; a group without an
 * able member is skipped). The $-rule applies: a filter whose first level is a wildcard never
 * matches a topic beginning with '$' [MQTT-4.7.2-1]. Never allocates. */
void subs_match(struct subs *s, const char *topic, size_t topic_len, subs_able_cb able,
                void *able_ctx, subs_match_cb cb, void *ctx);

/* Decides the deliveries of a message published to topic: like subs_match(), but merged into
 * one subs_target per owner for non-shared subscriptions (max QoS, all subscription ids), and
 * one subs_target per matching shared group. publisher (may be NULL) is the publishing owner:
 * its No Local subscriptions are left out [MQTT-3.8.3-3]. OUT *targets, *count: in the index's
 * scratch area, valid until the next subs_collect() on s. Returns 0 or -ENOMEM (scratch could not
 * grow; *count is 0). No allocation once the scratch area has grown to the largest fan-out. */
int subs_collect(struct subs *s, const char *topic, size_t topic_len, void *publisher,
                 subs_able_cb able, void *able_ctx, const struct subs_target **targets,
                 size_t *count);

/* The next member, round-robin among those for which able(able_ctx, owner) holds (able NULL:
 * all), of the shared group that filter ("$share/<group>/<filter>") names, advancing the
 * group's cursor as a match does: 0 with *out filled (lent until the index changes), or
 * -ENOENT (not a shared filter, no such group, or no able member). Never allocates. */
int subs_group_pick(struct subs *s, const char *filter, size_t filter_len, subs_able_cb able,
                    void *able_ctx, struct subs_info *out);

/* Subscriptions in the index (shared members included), and those of one owner. */
size_t subs_count(const struct subs *s);
/* Of those, the shared subscriptions ($share/<group>/...). */
size_t subs_shared_count(const struct subs *s);
size_t subs_owner_count(const struct subs *s, void *owner);

#endif
