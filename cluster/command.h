/* The versioned binary encoding of struct cluster_cmd (cluster.h): one Raft log entry each.
 *
 * Integers are big-endian. str = u16 length, the bytes, one 0x00 (so that decoded strings
 * point into the entry and are NUL-terminated; no NUL inside). blob = u32 length, the bytes.
 * msg = topic str | qos u8 | retain u8 | expires_at_ms u64 | props blob | payload blob.
 *
 *   offset  size  field
 *   ------  ----  ------------------------------------------------
 *   0       1     encoding version (CMD_VERSION = 1)
 *   1       1     type (enum cluster_cmd_type)
 *   2       ...   body, by type:
 *
 *   type                 body
 *   -------------------  -----------------------------------------------------------------
 *   SESSION_OPEN    1    client str | node_id u64 | created_at_ms u64 | expiry_s u32
 *                        | protocol_version u8 (3..5) | flags u8 (STORE_SESSION_* bits only)
 *                        (applied, it also removes the client's will record: the will of
 *                        the connection it replaces is the old node's to publish or drop)
 *   SESSION_CLOSE   2    client str | at_ms u64
 *   SESSION_EXPIRE  3    client str | at_ms u64
 *   SESSION_DELETE  4    client str | at_ms u64
 *   SUBSCRIBE       5    client str | filter str | options u8 | subscription_id u32
 *   UNSUBSCRIBE     6    client str | filter str
 *   RETAIN_SET      7    msg (retain always 1) | publisher str
 *   RETAIN_CLEAR    8    topic str
 *   QUEUE_PUSH      9    client str | msg_id u64 | msg
 *   QUEUE_ACK       10   client str | msg_id u64
 *   QUEUE_DROP_OLD  11   client str | count u32
 *   WILL_SET        12   client str | delay_s u32 | msg
 *   WILL_CLEAR      13   client str | at_ms u64
 *   NODE_UP         14   node_id u64 | address str | at_ms u64
 *   NODE_DOWN       15   node_id u64 | address str | at_ms u64
 *
 * The decoder refuses (CLUSTER_ECORRUPT): a version it does not know (newer), an unknown
 * type, a field running past the end, bytes left over, a string without its NUL or with one
 * inside, client ids that are empty or not UTF-8, topics and filters that proto rejects
 * (mqtt_topic_name_check / mqtt_topic_filter_check with $share), qos > 2, retain > 1,
 * protocol_version outside 3..5, unknown session flags, subscription options with reserved
 * bits, QoS 3 or retain handling 3, subscription ids above 268435455, node id 0.
 * In the Raft log an entry is the command followed by 0..7 zero bytes, so that its length is a
 * multiple of 8: raft_uv's segment encoding (0.15) miscomputes the size of closed segments
 * holding entries of other lengths, which then fail to load ("short read") on restart.
 *
 * A new field goes at the end of its body with CMD_VERSION + 1; older versions keep decoding.
 */
#ifndef STARLING_CLUSTER_COMMAND_H
#define STARLING_CLUSTER_COMMAND_H

#include "cluster.h"

#define CMD_VERSION     1u
#define CMD_STR_MAX     65535u
#define CMD_BLOB_MAX    ((size_t)256 << 20)
#define CMD_SUB_ID_MAX  268435455u
#define CMD_HEADER_SIZE 2u

/* 0 if the command's fields are within the limits above, else -EINVAL. Both the encoder and
 * the decoder apply it, so what encodes also decodes. */
int cmd_validate(const struct cluster_cmd *cmd);

/* The size of a log entry holding an encoded command of this size (padded to 8). */
size_t cmd_entry_size(size_t encoded);
/* cluster_cmd_decode for a log entry: also accepts the zero padding. */
int cmd_decode_entry(const uint8_t *buf, size_t len, struct cluster_cmd *out /* OUT */);

#endif
