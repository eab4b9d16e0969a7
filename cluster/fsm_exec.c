/* Executes one decoded command against a write transaction: the only place that knows what
 * each command does to the tables. Deterministic: no clock, randomness or local settings. */
#include "fsm_exec.h"

#include <errno.h>

static int exec_session_open(struct store_txn *t, const struct store_session *in)
{
    if (in->flags & STORE_SESSION_CLEAN_START) {
        int rc = store_client_purge(t, in->client_id.ptr, in->client_id.len);
        if (rc != 0) return rc;
    }
    /* A new connection replaces the previous one's will: that connection's node publishes it
     * or drops it from memory (MQTT 5 3.1.2.5), and the new connection's own will, if any,
     * is set by the WILL_SET that follows its open. */
    int rc = store_will_del(t, in->client_id.ptr, in->client_id.len);
    if (rc != 0 && rc != -ENOENT) return rc;
    struct store_session s = *in;
    s.connected = true;
    s.disconnected_at_ms = 0;
    return store_session_put(t, &s);
}

static int exec_session_close(struct store_txn *t, const struct cluster_cmd_client *c)
{
    struct store_session s;
    int rc = store_session_get(t, c->client_id.ptr, c->client_id.len, &s);
    if (rc != 0) return rc;
    /* s points into the map: put it back keyed by the command's own copy of the id. */
    s.client_id = c->client_id;
    s.connected = false;
    s.disconnected_at_ms = c->at_ms;
    return store_session_put(t, &s);
}

static int exec_retain_set(struct store_txn *t, const struct store_retained *r)
{
    /* A zero-length retained payload clears the topic [MQTT-3.3.1-6]/[MQTT-3.3.1-10]. */
    if (r->msg.payload.len == 0) return store_retain_del(t, r->msg.topic.ptr, r->msg.topic.len);
    return store_retain_put(t, r);
}

static int exec_node(struct store_txn *t, const struct cluster_cmd_node *n, bool up)
{
    struct store_node rec = {
        .node_id = n->node_id, .address = n->address, .changed_at_ms = n->at_ms, .up = up};
    return store_node_put(t, &rec);
}

int fsm_exec(struct store_txn *t, struct cluster_cmd *c)
{
    switch (c->type) {
    case CLUSTER_CMD_SESSION_OPEN:
        return exec_session_open(t, &c->session_open);
    case CLUSTER_CMD_SESSION_CLOSE:
        return exec_session_close(t, &c->client);
    case CLUSTER_CMD_SESSION_EXPIRE:
    case CLUSTER_CMD_SESSION_DELETE:
        return store_client_purge(t, c->client.client_id.ptr, c->client.client_id.len);
    case CLUSTER_CMD_SUBSCRIBE:
        return store_sub_put(t, &c->subscribe);
    case CLUSTER_CMD_UNSUBSCRIBE:
        return store_sub_del(t, c->unsubscribe.client_id.ptr, c->unsubscribe.client_id.len,
                             c->unsubscribe.filter.ptr, c->unsubscribe.filter.len);
    case CLUSTER_CMD_RETAIN_SET:
        return exec_retain_set(t, &c->retain_set);
    case CLUSTER_CMD_RETAIN_CLEAR:
        return store_retain_del(t, c->retain_clear.topic.ptr, c->retain_clear.topic.len);
    case CLUSTER_CMD_QUEUE_PUSH:
        return store_queue_push(t, &c->queue_push, &c->queue_push.seq);
    case CLUSTER_CMD_QUEUE_ACK:
        return store_queue_ack(t, c->queue_ack.client_id.ptr, c->queue_ack.client_id.len,
                               c->queue_ack.msg_id);
    case CLUSTER_CMD_QUEUE_DROP_OLDEST:
        return store_queue_drop_oldest(t, c->queue_drop.client_id.ptr, c->queue_drop.client_id.len,
                                       c->queue_drop.count, NULL);
    case CLUSTER_CMD_WILL_SET:
        return store_will_put(t, &c->will_set);
    case CLUSTER_CMD_WILL_CLEAR:
        return store_will_del(t, c->client.client_id.ptr, c->client.client_id.len);
    case CLUSTER_CMD_NODE_UP:
        return exec_node(t, &c->node, true);
    case CLUSTER_CMD_NODE_DOWN:
        return exec_node(t, &c->node, false);
    }
    return -EINVAL;
}

bool fsm_exec_error_is_local(int rc)
{
    switch (rc) {
    case -ENOENT:       /* ack, unsubscribe, clear, close of something absent */
    case -ENAMETOOLONG: /* key beyond LMDB's limit: the same on every node */
    case -EINVAL:
    case -EEXIST:
    case -EOVERFLOW:
        return false;
    default:
        return true;
    }
}
