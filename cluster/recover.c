/* Disaster recovery: a one-voter configuration forced into a stopped node's Raft log
 * (cluster_recover.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "cluster.h"
#include "cluster_recover.h"
#include "port.h"
#include "transport_local.h"

/* The FSM raft_init asks for; raft_recover never starts raft, so nothing is applied. */
static int refuse_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    (void)fsm;
    (void)buf;
    (void)result;
    return RAFT_INVALID;
}

static int refuse_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    (void)fsm;
    (void)bufs;
    (void)n;
    return RAFT_INVALID;
}

static int refuse_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    (void)fsm;
    (void)buf;
    return RAFT_INVALID;
}

static void raft_closed(struct raft *r)
{
    *(bool *)r->data = true;
}

static bool has_metadata(const char *raft_dir)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/metadata1", raft_dir);
    if (stat(path, &st) == 0) return true;
    snprintf(path, sizeof path, "%s/metadata2", raft_dir);
    return stat(path, &st) == 0;
}

/* Everything libraft needs to run raft_recover, allocated together. */
struct recovery {
    uv_loop_t loop;
    struct transport_local transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    char raft_dir[4096];
    char state_dir[4096];
};

int cluster_recover(const char *data_dir, uint64_t node_id, const char *address, long *pid_out,
                    char *errmsg, size_t errlen)
{
    char host[256], service[16];
    if (errlen) errmsg[0] = '\0';
    if (pid_out) *pid_out = 0;
    if (!data_dir || !*data_dir || node_id == 0 || !address ||
        port_split_address(address, host, sizeof host, service, sizeof service) != 0)
        return -EINVAL;
    struct recovery *rec = calloc(1, sizeof *rec);
    if (!rec) return -ENOMEM;
    int rc = 0;
    snprintf(rec->raft_dir, sizeof rec->raft_dir, "%s/raft", data_dir);
    snprintf(rec->state_dir, sizeof rec->state_dir, "%s/state", data_dir);
    /* The broker keeps its state open for as long as it runs: that is the running check. */
    long pid = 0;
    rc = store_in_use(rec->state_dir, &pid);
    if (rc > 0) {
        if (pid_out) *pid_out = pid;
        rc = -EBUSY;
    }
    if (rc == 0 && !has_metadata(rec->raft_dir)) rc = -ENOENT;
    if (rc != 0) goto out;

    rc = uv_loop_init(&rec->loop);
    if (rc != 0) goto out;
    transport_local_init(&rec->transport, &rec->loop);
    rec->fsm = (struct raft_fsm){.version = 1,
                                 .apply = refuse_apply,
                                 .snapshot = refuse_snapshot,
                                 .restore = refuse_restore};
    bool closed = false;
    int rv = raft_uv_init(&rec->io, &rec->loop, rec->raft_dir, &rec->transport.t);
    if (rv != 0) {
        snprintf(errmsg, errlen, "raft storage in %s: %s", rec->raft_dir, rec->io.errmsg);
        rc = CLUSTER_ERAFT;
        goto loop;
    }
    rv = raft_init(&rec->raft, &rec->io, &rec->fsm, node_id, address);
    if (rv != 0) {
        snprintf(errmsg, errlen, "raft init: %s", raft_errmsg(&rec->raft));
        raft_uv_close(&rec->io);
        rc = CLUSTER_ERAFT;
        goto loop;
    }
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    rv = raft_configuration_add(&conf, node_id, address, RAFT_VOTER);
    if (rv == 0) rv = raft_recover(&rec->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0) {
        snprintf(errmsg, errlen, "raft recover in %s: %s", rec->raft_dir,
                 *raft_errmsg(&rec->raft) ? raft_errmsg(&rec->raft) : raft_strerror(rv));
        rc = CLUSTER_ERAFT;
    }
    rec->raft.data = &closed;
    raft_close(&rec->raft, raft_closed);
    while (!closed && uv_run(&rec->loop, UV_RUN_ONCE) != 0) {
    }
    raft_uv_close(&rec->io);
loop:
    uv_run(&rec->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&rec->loop) != 0 && rc == 0) rc = -EBUSY;
out:
    free(rec);
    return rc;
}
