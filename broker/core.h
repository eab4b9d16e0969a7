/* The broker's state, owned by the loop thread: configuration, listeners, connections,
 * sessions, the subscription and retained indices, the keepalive/expiry wheel, the durable
 * state (cluster), counters. Private to broker/. */
#ifndef STARLING_BROKER_CORE_H
#define STARLING_BROKER_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "cluster.h"
#include "htab.h"
#include "wheel.h"

struct acl;
struct admin;
struct auth_db;
struct config;
struct conn;
struct listener;
struct retain;
struct route;
struct session_out;
struct sys_state;
struct dur_prop;
struct subs;

/* Bytes read per uv_read callback into the per-loop scratch buffer. */
#define BROKER_SCRATCH_SIZE (64 * 1024)
/* Seconds a new connection may take to send CONNECT. */
#define BROKER_CONNECT_TIMEOUT_S 10
/* A connection with this much output not yet written gets no QoS 0 messages (dropped). */
#define BROKER_SLOW_CONSUMER_BYTES (16u << 20)

struct broker_stats {
    uint64_t bytes_received, bytes_sent;
    uint64_t msgs_received, msgs_sent; /* packets */
    uint64_t pub_received, pub_sent;   /* PUBLISH packets */
    uint64_t pub_bytes_received, pub_bytes_sent;
    uint64_t pub_dropped;
    uint64_t clients_connected;  /* active (CONNACK sent) */
    uint64_t clients_connecting; /* accepted, no CONNACK yet */
    uint64_t clients_maximum;
    uint64_t clients_expired;
    uint64_t connects; /* CONNACKs with success */
    uint64_t sockets;  /* accepted sockets */
};

struct broker {
    uv_loop_t *loop;
    const struct config *cfg;
    char *data_dir;      /* where the durable state lives */
    bool data_dir_temp;  /* persistence false: removed at exit */
    uint64_t started_ms; /* wall clock */

    /* listeners */
    struct listener *listeners;
    size_t nlisteners;

    /* connections by id; the ones with output queued this iteration */
    struct htab conns;
    uint64_t next_conn_id;
    struct conn *flush_list;
    struct conn *closing; /* ended connections whose socket is not closed yet (conn.h) */
    size_t live_conns;    /* struct conn not yet freed */
    struct conn_wreq *wreq_free;
    unsigned wreq_free_count;
    uint8_t *scratch; /* BROKER_SCRATCH_SIZE bytes shared by every read */

    /* sessions by client id */
    struct htab sessions;
    /* connected clients whose clean session has no struct session yet, by client id (see
     * conn_bare_add) */
    struct htab bare_conns;
    uint64_t next_msg_id;         /* queued-message ids (unique per client) */
    struct session_out *out_free; /* pool of outbound message records */
    unsigned out_free_count;
    uint64_t auto_id_counter;

    struct subs *subs;
    struct retain *retain;
    struct wheel wheel; /* keepalive, will delay, session expiry */
    uv_timer_t wheel_timer;
    uint64_t now_ms; /* loop time (monotonic) at the last tick */
    uv_prepare_t flush_prepare;
    uv_check_t flush_check;
    uv_timer_t sys_timer;
    uv_signal_t sig_int, sig_term, sig_hup;
    uv_timer_t stop_timer;
    struct sys_state *sys;
    struct admin *admin; /* admin HTTP API (admin_listener); NULL without */

    /* auth */
    struct auth_db *auth;
    struct acl *acl;
    unsigned auth_jobs; /* uv_queue_work jobs in flight */

    /* durable state */
    struct cluster *cluster;
    bool cluster_failed; /* LMDB full: durable work refused */
    bool loading;        /* start-up: applied events come from the replayed tail */
    bool memory_only;    /* no cluster (fuzzing): commands apply at once, in memory */
    bool clustered;      /* several nodes (cluster_peers / cluster_join) */
    /* struct cluster_config strings (they must outlive the cluster); owned */
    struct cluster_peer *cl_peers;
    size_t cl_npeers;
    char *cl_join, *cl_advertise;
    struct route *route; /* publish forwarding between nodes (route.h); NULL on one node */

    struct broker_stats stats;
    bool stopping;
    bool stopped;
    bool closing_cluster;
    bool cluster_closing_called; /* cluster_close was called */
    bool noquorum_logged;        /* proposals refused for want of a majority: logged */
    bool accepting;              /* clients are accepted (a Raft leader is known) */
    bool stop_forced;            /* the stop's grace period is over */
    size_t dur_inflight;         /* proposals not yet applied or failed */
    struct dur_prop *dur_props;  /* those proposals */
    int exit_code;
    void (*stop_cb)(struct broker *b);
};

/* Wall-clock milliseconds since the epoch (for durable instants and expiry). */
uint64_t broker_wall_ms(void);
/* The maximum packet size we accept (message_size_limit / max_packet_size), 0 for none. */
uint32_t broker_max_packet_in(const struct broker *b);
/* Our Receive Maximum (inbound QoS > 0 publishes not yet acknowledged): max_inflight_messages
 * as in Mosquitto, 65535 when that is 0. */
uint16_t broker_receive_max(const struct broker *b);
/* The ACL that applies to a session of listener lst (NULL: loaded from storage). */
const struct acl *broker_session_acl(const struct broker *b, const struct listener *lst);
/* A Raft leader is known: clients waiting in the listen backlogs are accepted now. */
void broker_ready(struct broker *b);
/* Called by a connection's close callback: finishes a stop once everything is closed. */
void broker_maybe_finish_stop(struct broker *b);

#endif
