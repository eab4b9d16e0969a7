/* The in-memory retained-message index: a trie of topic levels whose nodes hold at most one
 * retained message each, matched against subscription filters by walking the trie (only the
 * branches a filter can match), never by scanning every message.
 *
 * Contract:
 * - Single-threaded, no I/O. Messages are opaque (void *): the index holds one reference per
 *   stored message and gives it back through the release callback given to retain_new() when
 *   the message is replaced, cleared, or the index is freed.
 * - Topics are copied level by level into the trie; nothing the caller passes is kept other
 *   than the message pointer.
 * - Errors: -EINVAL (empty topic, wildcard in topic, longer than 65535), -ENOMEM, -ENOENT.
 * - Callbacks must not modify the index they are called from.
 */
#ifndef STARLING_BROKER_RETAIN_H
#define STARLING_BROKER_RETAIN_H

#include <stddef.h>

struct retain;

/* Drops the index's reference to msg (e.g. msg_unref). */
typedef void (*retain_release_cb)(void *msg);
/* One retained message that matches; topic is lent for the call (not NUL-terminated). */
typedef void (*retain_match_cb)(void *ctx, const char *topic, size_t topic_len, void *msg);

/* A new empty index, or NULL without memory. release may be NULL (nothing to release). */
struct retain *retain_new(retain_release_cb release);
/* Releases every stored message and frees the index. retain_free(NULL) is a no-op. */
void retain_free(struct retain *r);

/* Stores msg as the retained message of topic, releasing the one it replaces. The caller's
 * reference to msg is transferred on every path: on error, msg is released before returning.
 * Returns 0, -EINVAL (bad topic, or msg NULL), -ENOMEM (the previous message of topic, if
 * any, stays). */
int retain_set(struct retain *r, const char *topic, size_t topic_len, void *msg);

/* Removes and releases the retained message of topic (a retained PUBLISH with an empty
 * payload). Returns 0 or -ENOENT. Never allocates. */
int retain_clear(struct retain *r, const char *topic, size_t topic_len);

/* Removes and releases every retained message, except those whose first topic level is keep
 * (keep_len bytes; keep NULL: none kept). Returns how many were removed. Never allocates. */
size_t retain_clear_all(struct retain *r, const char *keep, size_t keep_len);

/* The retained message of topic (borrowed: valid until it is replaced or cleared), or NULL. */
void *retain_get(const struct retain *r, const char *topic, size_t topic_len);

/* Calls cb for every retained message whose topic matches filter (a topic filter without the
 * $share prefix), with the $-rule [MQTT-4.7.2-1]. Returns 0, or -EINVAL for a malformed
 * filter (then cb was not called). Never allocates: topics are rebuilt in a buffer the index
 * owns. */
int retain_match(struct retain *r, const char *filter, size_t filter_len, retain_match_cb cb,
                 void *ctx);

/* Retained messages stored. */
size_t retain_count(const struct retain *r);

#endif
