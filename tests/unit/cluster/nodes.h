/* The fixture of the multi-node cluster unit tests: up to MAX_NODES cluster nodes on one libuv
 * loop (the global `loop`), over real sockets on 127.0.0.1, in temporary data dirs; every wait
 * is bounded (run_until). Shared by test_multi.c and test_tls.c. */
#ifndef STARLING_TESTS_UNIT_CLUSTER_NODES_H
#define STARLING_TESTS_UNIT_CLUSTER_NODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cluster.h"

#define MAX_NODES  5
#define MAX_FRAMES 4096

struct tnode {
    int idx;
    uint64_t id;
    struct cluster *c;
    struct cluster_config cfg;
    char dir[512];
    char addr[64];
    bool open, closed, removed;
    unsigned n_applied, n_ring, n_down_events, n_restored, n_bulk;
    uint64_t last_applied_index;
    /* link frames received */
    uint32_t frames[MAX_FRAMES];
    unsigned n_frames;
    uint64_t frame_from;
};

struct done {
    bool fired;
    int status;
    uint64_t index;
};

extern uv_loop_t loop;
extern struct tnode nodes[MAX_NODES];
extern struct cluster_peer peers[MAX_NODES]; /* the static configuration start_cluster uses */
extern size_t n_peers;
extern const char *secret;                 /* the cluster secret node_prepare sets */
extern unsigned snap_threshold;            /* node_prepare's snapshot threshold; 0: default */
extern const char *payload;                /* the value c_retain proposes */
extern uint64_t want_index;                /* what all_applied waits for */
extern const struct cluster_events events; /* counts into struct tnode */

/* A free TCP port on 127.0.0.1. */
unsigned free_port(void);
/* Node i (id i+1) with a fresh data dir and port, host "127.0.0.1" or a name; not started. */
void node_prepare(int i, const char *host);
void node_start(int i);
/* Runs the loop until cond(arg) or ms pass; false on time-out. */
bool run_until(bool (*cond)(void *arg), void *arg, unsigned ms);
void node_stop(int i);
/* Stops every node and removes the data dirs. */
void all_stop(void);
/* A fresh loop and n nodes bootstrapped with one static configuration. */
void start_cluster(int n, const char *host);

/* The leader every open node agrees on, or NULL. */
struct tnode *agreed_leader(void);
bool have_leader(void *arg);
struct tnode *a_follower(void);

/* A proposal's completion, for cluster_propose's callback. */
void done_cb(void *data, int status, uint64_t index);
bool fired(void *arg);
struct cluster_cmd c_retain(const char *topic);
bool has_retained(struct cluster *c, const char *topic);
bool all_applied(void *arg);
/* Proposes a retained topic on node n (again after a leader change) and checks that it
 * reaches every open node. */
void propose_everywhere(struct tnode *n, const char *topic);
/* Node 4 is a voter, at nodes[3]'s address, in the agreed leader's configuration. */
bool n4_voter(void *arg);

#endif
