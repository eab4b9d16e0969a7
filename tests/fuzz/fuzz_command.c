/* Fuzz target `command`: the input is one Raft log entry given to the command decoder. The
 * decoder must never crash or read out of bounds; whatever it accepts must respect the
 * documented limits, and encode back to exactly the input bytes (the encoding is canonical),
 * which then decode to the same fields again. Any disagreement aborts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_command: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A decoded string points into the input, is NUL-terminated and holds no NUL. */
static void check_str(struct store_str s, const uint8_t *data, size_t size)
{
    CHECK(s.ptr != NULL);
    CHECK((const uint8_t *)s.ptr >= data && (const uint8_t *)s.ptr + s.len < data + size);
    CHECK(s.ptr[s.len] == 0);
    CHECK(memchr(s.ptr, 0, s.len) == NULL);
}

static void check_msg(const struct store_message *m, const uint8_t *data, size_t size)
{
    check_str(m->topic, data, size);
    CHECK(m->topic.len > 0);
    CHECK(m->qos <= 2);
    CHECK(m->payload.len == 0 ||
          (m->payload.ptr >= data && m->payload.ptr + m->payload.len <= data + size));
    CHECK(m->props.len == 0 ||
          (m->props.ptr >= data && m->props.ptr + m->props.len <= data + size));
}

static void check_fields(const struct cluster_cmd *c, const uint8_t *data, size_t size)
{
    switch (c->type) {
    case CLUSTER_CMD_SESSION_OPEN:
        check_str(c->session_open.client_id, data, size);
        CHECK(c->session_open.protocol_version >= 3 && c->session_open.protocol_version <= 5);
        break;
    case CLUSTER_CMD_SESSION_CLOSE:
    case CLUSTER_CMD_SESSION_EXPIRE:
    case CLUSTER_CMD_SESSION_DELETE:
    case CLUSTER_CMD_WILL_CLEAR:
        check_str(c->client.client_id, data, size);
        break;
    case CLUSTER_CMD_SUBSCRIBE:
        check_str(c->subscribe.client_id, data, size);
        check_str(c->subscribe.filter, data, size);
        CHECK((c->subscribe.options & 0xC0) == 0);
        CHECK(c->subscribe.subscription_id <= 268435455u);
        break;
    case CLUSTER_CMD_UNSUBSCRIBE:
        check_str(c->unsubscribe.client_id, data, size);
        check_str(c->unsubscribe.filter, data, size);
        break;
    case CLUSTER_CMD_RETAIN_SET:
        check_msg(&c->retain_set.msg, data, size);
        CHECK(c->retain_set.msg.retain);
        check_str(c->retain_set.publisher_client_id, data, size);
        break;
    case CLUSTER_CMD_RETAIN_CLEAR:
        check_str(c->retain_clear.topic, data, size);
        break;
    case CLUSTER_CMD_QUEUE_PUSH:
        check_str(c->queue_push.client_id, data, size);
        check_msg(&c->queue_push.msg, data, size);
        break;
    case CLUSTER_CMD_QUEUE_ACK:
        check_str(c->queue_ack.client_id, data, size);
        break;
    case CLUSTER_CMD_QUEUE_DROP_OLDEST:
        check_str(c->queue_drop.client_id, data, size);
        break;
    case CLUSTER_CMD_WILL_SET:
        check_str(c->will_set.client_id, data, size);
        check_msg(&c->will_set.msg, data, size);
        break;
    case CLUSTER_CMD_NODE_UP:
    case CLUSTER_CMD_NODE_DOWN:
        CHECK(c->node.node_id != 0);
        check_str(c->node.address, data, size);
        break;
    default:
        CHECK(!"decoded an unknown type");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cluster_cmd cmd;
    if (cluster_cmd_decode(data, size, &cmd) != 0) return 0;
    CHECK(size >= 2);
    check_fields(&cmd, data, size);
    CHECK(strcmp(cluster_cmd_type_name(cmd.type), "unknown") != 0);
    size_t n = cluster_cmd_encoded_size(&cmd);
    CHECK(n == size);
    uint8_t *again = malloc(n);
    CHECK(again != NULL);
    CHECK(cluster_cmd_encode(&cmd, again, n) == n);
    CHECK(memcmp(again, data, n) == 0);
    struct cluster_cmd cmd2;
    CHECK(cluster_cmd_decode(again, n, &cmd2) == 0);
    CHECK(cmd2.type == cmd.type);
    free(again);
    return 0;
}
