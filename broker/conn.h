/* One client connection: the socket, the read path (per-loop scratch buffer, only partial
 * packets are copied), the write path (replies and shared PUBLISH buffers queued during a loop
 * iteration and flushed in one uv_write per connection before the loop polls), the ordered
 * chain of replies that wait for a commit, and the single place where a connection ends.
 *
 * Ownership: the broker owns every struct conn; it is freed in the uv_close callback. Code
 * that outlives a loop iteration (an off-loop job, a proposal's callback) keeps the id and
 * finds the connection again with conn_find(), which returns NULL once the connection ended.
 *
 * Transports: plain TCP, TLS, WebSocket, or WebSocket over TLS. Above this file every
 * connection reads and writes plain MQTT bytes. A TLS or WebSocket connection carries its
 * state in a separately allocated struct conn_xport (plain TCP: c->x is NULL and costs
 * nothing more): input is decrypted / unframed before it reaches the MQTT parser, and the
 * output queued during an iteration is framed / encrypted as one batch and leaves in one
 * uv_write, as for plain TCP. */
#ifndef STARLING_BROKER_CONN_H
#define STARLING_BROKER_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "alias.h"
#include "htab.h"
#include "msg.h"
#include "proto.h"
#include "wheel.h"

struct broker;
struct conn_xport;
struct listener;
struct session;

enum conn_state {
    CONN_NEW = 0,    /* waiting for CONNECT */
    CONN_CONNECTING, /* CONNECT received, authentication or session open pending */
    CONN_ACTIVE,     /* CONNACK sent */
    CONN_CLOSING,    /* ended: writes drain, then the socket closes */
};

/* One piece of output: bytes in the connection's own buffer (ref NULL, off into obuf) or a
 * slice of a shared message body (ref holds a reference until the write completes). */
struct conn_seg {
    struct msg *ref;
    uint32_t off;
    uint32_t len;
};

/* A reply that waits for something (a commit) and the replies queued behind it. */
struct conn_reply {
    struct conn_reply *next;
    uint64_t seq;
    bool done;
    uint32_t len;
    uint8_t *bytes;
};

/* The chain of deferred replies, allocated with the first one and freed once it is empty. */
struct conn_replies {
    struct conn_reply *head, *tail;
    uint64_t seq; /* the last sequence number given out */
};

/* The buffers of a connection that has input or output under way (c->io): allocated when
 * first needed and freed once it is idle again (conn_io_trim), so an idle connection carries
 * one pointer for them. */
struct conn_io {
    /* input: only a partial packet (or input held while paused) lives here; freed as soon
     * as it is empty */
    uint8_t *rbuf;
    uint32_t rlen, rcap;
    /* output queued this iteration */
    uint8_t *obuf;
    uint32_t olen, ocap;
    struct conn_seg *segs;
    uint32_t nsegs, segcap;
    uint64_t out_queued;    /* bytes queued or being written */
    uint32_t writes_active; /* uv_write requests in flight */
};

struct conn {
    uv_tcp_t tcp;
    struct broker *b;
    struct listener *lst;
    /* in b->conns by id: the id is the node's hash (ids are sequential, which spreads them
     * evenly over the buckets), so it is stored once */
    union {
        struct htab_node id_node;
        struct {
            struct htab_node *id_link;
            uint64_t id;
        };
    };
    /* in b->bare_conns while bare; once the connection ended, in the list b->closing until
     * its socket is closed */
    union {
        struct htab_node bare_node;
        struct {
            struct conn *closing_prev, *closing_next;
        };
    };
    struct wheel_entry keepalive; /* in the broker's wheel */
    struct session *sess;         /* NULL before CONNECT, and while bare */
    struct conn_ext *ext;         /* NULL for a plain-TCP client without topic aliases (owned) */
    char *client_id;              /* a reference from session_id_new() (the session shares it); NULL
                                     before CONNECT */
    char *username;               /* owned, NULL when none */
    /* input and output buffers while some are in use; NULL while idle (owned) */
    struct conn_io *io;
    struct conn *flush_next;

    /* replies that wait for a commit, in the order the requests came; NULL while none
     * (owned) */
    struct conn_replies *replies;

    /* inbound QoS > 0 publishes not yet acknowledged (our Receive Maximum) */
    uint32_t inflight_in;
    /* MQTT 5 limits announced by the client in CONNECT */
    uint32_t max_packet_out;  /* 0: protocol maximum */
    uint16_t receive_max_out; /* the client's Receive Maximum (65535 when absent) */
    uint16_t keepalive_s;

    uint8_t state;              /* enum conn_state */
    uint8_t version;            /* protocol level after CONNECT, 0 before */
    uint8_t close_reason;       /* why it ended, for the session (0: client DISCONNECT) */
    bool in_flush : 1;          /* on the broker's flush list */
    bool reading : 1;           /* uv_read_start active */
    bool paused : 1;            /* input held while a CONNECT is being authenticated */
    bool in_input : 1;          /* conn_input() is running for this connection */
    bool detached : 1;          /* no socket (conn_new_detached) */
    bool counted : 1;           /* counted in the listener's connections */
    bool closed : 1;            /* output finished: shutdown or close under way */
    bool shutting : 1;          /* uv_shutdown pending */
    bool send_will : 1;         /* the session's will fires on close */
    bool server_keepalive : 1;  /* v5: CONNACK announces keepalive_s as Server Keep Alive */
    bool want_problem_info : 1; /* v5 Request Problem Information (default 1) */
    bool bare : 1;              /* a clean session without its struct session yet */
    bool in_closing : 1;        /* in b->closing */
    /* the peer's address (conn_addr() formats it): AF_INET or AF_INET6, 0 when unknown or
     * detached; in network byte order */
    uint8_t peer_family;
    uint8_t peer_port[2];
    uint8_t peer_ip[16];
};

/* What only some connections need (c->ext), allocated at first need so that a plain-TCP
 * client that uses no topic alias does not carry it. */
struct conn_ext {
    struct conn_xport *x;       /* TLS / WebSocket state; NULL for plain TCP (owned) */
    struct alias_in alias_in;   /* aliases the client set; max 0 until the first one */
    struct alias_out alias_out; /* aliases we set; max 0 unless the client accepts them */
};

/* c->ext, created (empty) at the first call. NULL without memory. */
struct conn_ext *conn_ext(struct conn *c);

/* The table of aliases we set, when the client accepts topic aliases; else NULL. */
static inline struct alias_out *conn_alias_out(struct conn *c)
{
    return c->ext && c->ext->alias_out.max > 0 ? &c->ext->alias_out : NULL;
}

/* "address:port" of the peer, for log lines: valid until the next call. */
const char *conn_addr(const struct conn *c);

/* Accepts a pending connection on server into a new struct conn (registered, reading).
 * Returns 0 or a negative libuv error (the connection is then refused and closed). */
int conn_accept(struct broker *b, struct listener *lst, uv_stream_t *server);

/* The live connection with this id, or NULL if it ended. */
struct conn *conn_find(struct broker *b, uint64_t id);

/* ---- clean sessions without a session object ----
 *
 * A client of this node (not clustered) with a clean session (3.x clean session 1, MQTT 5
 * Session Expiry 0) and no will has nothing a session would hold until it sends a packet
 * other than PINGREQ: no subscription, nothing in flight, nothing to commit. Such a
 * connection is "bare": CONNACK is sent without a struct session, the connection is found by
 * its client id in b->bare_conns (for takeover), and its session is created (empty) before
 * its first other packet is handled, so every handler sees c->sess as before. An idle client
 * then costs only its connection. */

/* Registers c (with its client id, no session) as bare. Returns 0 or -ENOMEM. */
int conn_bare_add(struct conn *c);
/* The bare connection with this client id, or NULL. */
struct conn *conn_bare_find(struct broker *b, const char *client_id, size_t len);
/* Ends c's bare state (its session was just attached, or it ends). No-op if not bare. */
void conn_bare_remove(struct conn *c);

/* ---- output ---- */

/* Bytes queued or being written on the connection. */
static inline uint64_t conn_out_queued(const struct conn *c)
{
    return c->io ? c->io->out_queued : 0;
}

/* Appends len bytes to the connection's output; they leave in this iteration's flush.
 * Returns 0 or -ENOMEM (then the connection is being closed). No-op once closing. */
int conn_write(struct conn *c, const void *bytes, size_t len);
/* Reserves len bytes of output and returns where to write them (valid until the next
 * conn_* output call), or NULL without memory. */
uint8_t *conn_reserve(struct conn *c, size_t len);
/* Queues a slice of a message's body (a reference to m is taken until the write completes). */
int conn_write_shared(struct conn *c, struct msg *m, const uint8_t *base, size_t len);
/* Encodes pkt for the connection's protocol version and queues it. Returns 0, -ENOMEM, or
 * -EMSGSIZE when it exceeds the client's Maximum Packet Size (nothing queued). */
int conn_send(struct conn *c, const struct mqtt_packet *pkt);
/* Adds a Reason String (why, or the reason's name) to an MQTT 5 packet with an error reason,
 * where the client's Request Problem Information allows it. why must outlive the encoding. */
void conn_reason_string(const struct conn *c, struct mqtt_packet *pkt, uint8_t reason,
                        const char *why);
/* Sends an ack-type packet (PUBACK/PUBREC/PUBREL/PUBCOMP) with reason (v5) at once, or after
 * pending deferred replies. */
int conn_send_ack(struct conn *c, uint8_t type, uint16_t packet_id, uint8_t reason);

/* Starts a deferred reply: replies sent later queue behind it until conn_reply_finish.
 * Returns the sequence number to finish it with, or 0 without memory. */
uint64_t conn_reply_defer(struct conn *c);
/* Fills the deferred reply `seq` with the encoded pkt (NULL: nothing to send) and sends every
 * finished reply at the head of the chain. */
void conn_reply_finish(struct conn *c, uint64_t seq, const struct mqtt_packet *pkt);
/* Whether replies are waiting behind a deferred one. */
static inline bool conn_replies_pending(const struct conn *c)
{
    return c->replies != NULL;
}

/* Writes everything queued on every connection: called once per loop iteration. */
void conn_flush_all(struct broker *b);

/* ---- input control ---- */

/* Stops handling input (kept buffered) until conn_resume(). */
void conn_pause(struct conn *c);
/* Handles input held while paused, then reads again. */
void conn_resume(struct conn *c);
/* The connection received a packet now: keepalive restarts. */
void conn_touch(struct conn *c);

/* ---- the end of a connection ----
 *
 * conn_close() is the one place a connection ends. reason is an MQTT 5 reason code (0: normal,
 * the client sent DISCONNECT or the broker stops); `why` is the log text. In MQTT 5 a
 * DISCONNECT with the reason (and a reason string when the client asked for problem
 * information) precedes the close when CONNACK was sent and reason >= 0x80; before CONNACK a
 * CONNACK carries it (MQTT 5 and, for codes it has, 3.x). Pending output is flushed first.
 * The session is detached (its will handled per will_due). Safe to call again (no-op). */
void conn_close(struct conn *c, uint8_t reason, const char *why);
/* As conn_close, but without sending anything (the peer is gone or a DISCONNECT was sent). */
void conn_drop(struct conn *c, uint8_t reason, const char *why);

/* Closes every connection (broker stop): v5 clients get DISCONNECT 0x8B. */
void conn_close_all(struct broker *b, uint8_t reason);

/* Closes every socket at once, without waiting for output (end of a stop's grace period). */
void conn_abort_all(struct broker *b);
/* Frees the pooled write requests (broker exit). */
void conn_pool_free(struct broker *b);

/* A connection without a socket, fed with conn_feed() (fuzzing and tests): its output is
 * dropped when flushed (the write fails) and it ends like any other. NULL without memory. */
struct conn *conn_new_detached(struct broker *b, struct listener *lst);
/* Feeds bytes as if read from the socket (fuzzing and tests). */
void conn_feed(struct conn *c, const uint8_t *data, size_t len);

#endif
