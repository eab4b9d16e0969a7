/* cluster_recover: disaster recovery of a cluster that lost a majority of its voters for good.
 *
 * Contract:
 * - Offline only: the node whose data directory is given must be stopped. The call refuses
 *   (-EBUSY) while a process has the node's state open, and runs its own libuv loop; it is
 *   meant for a command-line tool, not for a running broker.
 * - What it does: libraft's raft_recover() over raft_uv on <data_dir>/raft appends a new
 *   configuration entry to the log on disk with this node as the only voter. Started again,
 *   the node elects itself and serves as a one-voter cluster; new or wiped nodes then join it.
 * - What may be lost: entries that were committed by the lost majority but never reached this
 *   node's log are gone for good (acknowledged retained messages, subscriptions, session and
 *   queue changes among them). Run it on the survivor with the longest log, exactly once, and
 *   never while any old member could still come back with its old log: wipe those first.
 */
#ifndef STARLING_CLUSTER_RECOVER_H
#define STARLING_CLUSTER_RECOVER_H

#include <stddef.h>
#include <stdint.h>

/* Forces the configuration of the Raft log in data_dir/raft to one voter: node_id at address
 * (the node's advertised cluster address, HOST:PORT). 0, or -EBUSY (a process has the state
 * open; its pid in *pid_out when not NULL), -ENOENT (no Raft log in data_dir), -EINVAL, or
 * CLUSTER_ERAFT with libraft's message in errmsg (errlen bytes, always NUL-terminated). */
int cluster_recover(const char *data_dir, uint64_t node_id, const char *address, long *pid_out,
                    char *errmsg, size_t errlen);

#endif
