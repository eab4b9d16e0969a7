/* The cluster-port hello: every connection on the cluster port opens with it, in lockstep,
 * before any Raft or link byte. Pure encoding and HMAC checks; the socket side is port.c.
 *
 *   dialer -> acceptor  HELLO      "STCH" | version u8 (1) | channel u8 | addr_len u16
 *                                  | cluster u64 | node_id u64 | nonce_d[32] | addr bytes
 *   acceptor -> dialer  CHALLENGE  "STCC" | version u8 | status u8 | 0 u16 | node_id u64
 *                                  | nonce_a[32] | mac_a[32]
 *   dialer -> acceptor  PROOF      mac_d[32]
 *   acceptor -> dialer  OK         "STOK"
 *
 * Integers big-endian. cluster = XXH3 of the cluster name. mac_a = HMAC-SHA256(secret, "A" |
 * HELLO | node_id_a | nonce_a) proves the acceptor knows the secret (and answers this hello);
 * mac_d = HMAC-SHA256(secret, "D" | HELLO | nonce_a) proves the dialer does. Nonces are 32
 * bytes from wc_RNG. A status other than 0 in the CHALLENGE (wrong cluster, bad version)
 * carries no valid mac; the dialer closes. Nothing follows the OK until the dialer has read
 * it, so the stream handed on (to libraft or to the link) starts exactly after the hello.
 */
#ifndef STARLING_CLUSTER_HELLO_H
#define STARLING_CLUSTER_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HELLO_VERSION   1u
#define HELLO_NONCE     32u
#define HELLO_MAC       32u
#define HELLO_ADDR_MAX  255u
#define HELLO_FIXED     (4u + 4u + 8u + 8u + HELLO_NONCE)
#define HELLO_MAX       (HELLO_FIXED + HELLO_ADDR_MAX)
#define HELLO_CHALLENGE (4u + 4u + 8u + HELLO_NONCE + HELLO_MAC)
#define HELLO_PROOF     HELLO_MAC
#define HELLO_OK        4u

enum hello_channel {
    HELLO_CHANNEL_RAFT = 1,    /* libraft's stream (transport_tcp.c) */
    HELLO_CHANNEL_LINK = 2,    /* node-link frames (link.c) */
    HELLO_CHANNEL_JOIN = 3,    /* one join request and its answer (members.c) */
    HELLO_CHANNEL_REMOVED = 4, /* the leader tells a node it was removed (members.c) */
    HELLO_CHANNEL_PROBE = 5,   /* "is a leader known?" from a starting initial member (probe.c) */
    HELLO_CHANNEL_REJOIN = 6,  /* a join request from a node whose Raft log is empty */
    HELLO_CHANNEL_MAX = HELLO_CHANNEL_REJOIN,
};

enum hello_status {
    HELLO_STATUS_OK = 0,
    HELLO_STATUS_CLUSTER = 1, /* another cluster name */
    HELLO_STATUS_VERSION = 2, /* a version this node does not speak */
};

struct hello {
    uint8_t channel;
    uint64_t cluster;
    uint64_t node_id;
    uint8_t nonce[HELLO_NONCE];
    char addr[HELLO_ADDR_MAX + 1]; /* NUL-terminated */
};

/* The cluster id carried in hellos, from the cluster name. */
uint64_t hello_cluster_id(const char *name);

/* Random nonce from wc_RNG. 0 or -EIO. */
int hello_nonce(uint8_t out[HELLO_NONCE]);

/* HELLO: returns its size (<= HELLO_MAX) or 0 if addr is too long. */
size_t hello_encode(const struct hello *h, uint8_t *out);
/* Parses a HELLO from buf[0..len). Returns its size, 0 if more bytes are needed, -EPROTO if it
 * is not one. */
int hello_decode(const uint8_t *buf, size_t len, struct hello *out /* OUT */);

/* mac over (tag | hello bytes | extra): tag 'A' with extra = node_id_a u64 | nonce_a,
 * tag 'D' with extra = nonce_a. 0 or -EIO. */
int hello_mac(const uint8_t *secret, size_t secret_len, char tag, const uint8_t *hello,
              size_t hello_len, const uint8_t *extra, size_t extra_len,
              uint8_t out[HELLO_MAC] /* OUT */);
/* Constant-time comparison of two macs. */
bool hello_mac_equal(const uint8_t *a, const uint8_t *b);

void hello_put64(uint8_t *p, uint64_t v);
uint64_t hello_get64(const uint8_t *p);

#endif
