/* Layouts of the LMDB keys and values, and the bounded byte cursor that reads and writes them.
 *
 * Integers are big-endian. A "str" is u32 length, the bytes, then one NUL (so that a string
 * handed out points into the map and is NUL-terminated); a "blob" is u32 length and the
 * bytes. Every value opens with a record version byte (1); a reader refuses other versions
 * (STORE_ECORRUPT). Keys that hold strings end each string with a NUL, so that the client id
 * part of every per-client key is a unique prefix "client_id\0" (client ids, topics and
 * filters contain no NUL).
 *
 *   table          key                              value
 *   -------------  -------------------------------  ---------------------------------------
 *   meta           "format_version"                 u32
 *                  "last_applied"                   u64
 *                  "cluster_id"                     raw bytes (<= 64)
 *   sessions       client_id \0                     v=1 | flags u8 | proto u8 | connected u8
 *                                                   | expiry_s u32 | node_id u64
 *                                                   | created_ms u64 | disconnected_ms u64
 *   subscriptions  client_id \0 filter \0           v=1 | options u8 | subscription_id u32
 *   retained       topic \0                         v=1 | qos u8 | expires_ms u64
 *                                                   | publisher str | props blob | payload blob
 *   queue          client_id \0 seq u64             v=1 | qos u8 | retain u8 | msg_id u64
 *                                                   | expires_ms u64 | topic str | props blob
 *                                                   | payload blob
 *   wills          client_id \0                     v=1 | qos u8 | retain u8 | delay_s u32
 *                                                   | expires_ms u64 | topic str | props blob
 *                                                   | payload blob
 *   nodes          node_id u64                      v=1 | up u8 | changed_ms u64 | address str
 *
 * LMDB limits keys to 511 bytes (mdb_env_get_maxkeysize): longer keys are refused with
 * -ENAMETOOLONG before anything is written.
 */
#ifndef STARLING_STORAGE_RECORD_H
#define STARLING_STORAGE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

#define RECORD_VERSION 1u
#define RECORD_KEY_MAX 511u

/* A write cursor over out[0..cap). Writing past cap sets overflow and writes nothing more, so
 * a first pass with cap 0 measures the size. */
struct rec_writer {
    uint8_t *out;
    size_t cap;
    size_t len;
    bool overflow;
};

void rec_put_u8(struct rec_writer *w, uint8_t v);
void rec_put_u32(struct rec_writer *w, uint32_t v);
void rec_put_u64(struct rec_writer *w, uint64_t v);
void rec_put_bytes(struct rec_writer *w, const void *p, size_t n);
void rec_put_str(struct rec_writer *w, struct store_str s);
void rec_put_blob(struct rec_writer *w, struct store_blob b);

/* A read cursor: every get fails (returns false, sets bad) instead of overrunning. */
struct rec_reader {
    const uint8_t *p;
    size_t left;
    bool bad;
};

bool rec_get_u8(struct rec_reader *r, uint8_t *v);
bool rec_get_u32(struct rec_reader *r, uint32_t *v);
bool rec_get_u64(struct rec_reader *r, uint64_t *v);
bool rec_get_str(struct rec_reader *r, struct store_str *s);
bool rec_get_blob(struct rec_reader *r, struct store_blob *b);
/* True if everything was read and nothing is left over. */
bool rec_done(const struct rec_reader *r);

static inline void rec_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static inline uint64_t rec_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Message part shared by queue and will values (after their own leading fields). */
void rec_put_message_tail(struct rec_writer *w, const struct store_message *m);
bool rec_get_message_tail(struct rec_reader *r, struct store_message *m);

#endif
