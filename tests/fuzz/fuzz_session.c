/* Fuzz target `session`: the input is the byte stream of two client connections, fed through
 * the real connection path (conn_feed: the incremental parser, every packet handler, sessions,
 * delivery, retained messages, wills, topic aliases, QoS flows) of a broker without sockets and
 * without Raft (commands apply at once, in memory). The first byte picks the chunk size with
 * which the two streams are interleaved. Checks: nothing crashes or leaks, and the loop closes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "broker.h"
#include "config.h"
#include "conn.h"
#include "core.h"
#include "listener.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_session: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t chunk = (size_t)(data[0] & 31) + 1;
    data++;
    size--;

    log_enabled_types = 0; /* one line per refused input would drown the fuzzer */
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    struct config cfg;
    CHECK(config_defaults(&cfg) == 0);
    cfg.sys_interval_s = 0;
    cfg.connection_messages = false;
    cfg.max_queued_messages = 16;
    struct config_listener lc;
    memset(&lc, 0, sizeof lc);
    lc.port = 1883;
    lc.max_connections = -1;
    lc.max_qos = 2;
    lc.max_topic_alias = 4;
    lc.security.allow_anonymous = true;
    lc.security.allow_zero_length_clientid = true;
    lc.security.auto_id_prefix = (char *)"auto-";
    struct broker *b = NULL;
    CHECK(broker_new(&loop, &cfg, &b) == 0);
    b->memory_only = true;
    struct listener l;
    memset(&l, 0, sizeof l);
    l.b = b;
    l.cfg = &lc;

    /* Two connections, so that deliveries, takeover and shared groups have a peer. */
    uint64_t ids[2];
    for (int i = 0; i < 2; i++) {
        struct conn *c = conn_new_detached(b, &l);
        CHECK(c != NULL);
        ids[i] = c->id;
    }
    size_t half = size / 2;
    const uint8_t *streams[2] = {data, data + half};
    size_t left[2] = {half, size - half};
    while (left[0] > 0 || left[1] > 0) {
        for (int i = 0; i < 2; i++) {
            size_t n = left[i] < chunk ? left[i] : chunk;
            struct conn *c = conn_find(b, ids[i]);
            if (n > 0 && c) conn_feed(c, streams[i], n);
            streams[i] += n;
            left[i] -= n;
        }
        /* Time passes: keepalive, will delay and expiry entries fire. */
        wheel_advance(&b->wheel, b->wheel.now_ms + 1000);
    }
    /* The end: every connection closes (output is dropped: there is no socket). */
    b->stopping = true;
    conn_abort_all(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    broker_free(b);
    CHECK(uv_loop_close(&loop) == 0);
    config_free(&cfg);
    return 0;
}
