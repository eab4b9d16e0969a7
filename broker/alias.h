/* MQTT 5 topic aliases of one connection: the inbound table (aliases the client sets, bounded
 * by the Topic Alias Maximum we announced in CONNACK) and the outbound table (aliases we
 * assign, bounded by the client's Topic Alias Maximum from CONNECT, least recently used alias
 * reassigned when full).
 *
 * Contract: single-threaded, no I/O; tables are embedded in the connection and allocate
 * nothing until the first alias is used (idle connections cost only the struct). Topics are
 * copied. Errors: -EINVAL, -ENOENT, -ENOMEM. A table of maximum 0 uses no memory at all.
 */
#ifndef STARLING_BROKER_ALIAS_H
#define STARLING_BROKER_ALIAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Inbound: alias -> topic ---- */

struct alias_in {
    uint16_t max;           /* our Topic Alias Maximum */
    struct alias_str **map; /* [max], index alias - 1; NULL until first set */
};

void alias_in_init(struct alias_in *a, uint16_t max);
void alias_in_close(struct alias_in *a);

/* Records topic as the mapping of alias (a PUBLISH with both a topic and an alias).
 * Returns 0, -EINVAL when alias is 0 or above max (the caller sends DISCONNECT 0x94
 * [MQTT-3.3.2-8], [MQTT-3.3.2-9]) or the topic is empty, -ENOMEM (mapping unchanged). */
int alias_in_set(struct alias_in *a, uint16_t alias, const char *topic, size_t topic_len);

/* The topic mapped to alias (a PUBLISH with an empty topic and an alias). OUT *topic,
 * *topic_len: borrowed until the alias is set again or the table closed. Returns 0, -EINVAL
 * (alias 0 or above max), -ENOENT (no mapping yet: Protocol Error 0x82 for the caller). */
int alias_in_get(const struct alias_in *a, uint16_t alias, const char **topic, size_t *topic_len);

/* ---- Outbound: topic -> alias ---- */

struct alias_out {
    uint16_t max;                /* the client's Topic Alias Maximum */
    uint16_t used;               /* aliases assigned so far (1..used) */
    uint16_t lru_head, lru_tail; /* most / least recently used alias, 0 if none */
    /* [max], index alias - 1, followed in the same block by the hash table of topics (a power
     * of two of uint16_t buckets, at least max: the first alias of the chain, 0 for none);
     * NULL until first use */
    struct alias_slot *slots;
};

void alias_out_init(struct alias_out *a, uint16_t max);
void alias_out_close(struct alias_out *a);

/* Picks the alias to send topic with. OUT *alias: 0 when the table has maximum 0 (send the
 * topic without alias); otherwise the alias. OUT *known: true when the client already maps
 * *alias to topic (send an empty topic and the alias), false when the alias is new or was
 * reassigned from the least recently used topic (send the topic and the alias, which sets
 * the client's mapping). Returns 0 or -ENOMEM (then *alias is 0: send the topic alone). */
int alias_out_get(struct alias_out *a, const char *topic, size_t topic_len, uint16_t *alias,
                  bool *known);

/* Forgets alias (its PUBLISH carrying the topic was not sent after all, so the client does
 * not know the mapping). A no-op for an unassigned alias. */
void alias_out_forget(struct alias_out *a, uint16_t alias);

#endif
