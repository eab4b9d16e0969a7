/* What each command does to the tables (fsm_exec.c). */
#ifndef STARLING_CLUSTER_FSM_EXEC_H
#define STARLING_CLUSTER_FSM_EXEC_H

#include <stdbool.h>

#include "cluster.h"

/* Applies c in t. May fill output fields of c (queue_push.seq). 0, or an error: see
 * fsm_exec_error_is_local. */
int fsm_exec(struct store_txn *t, struct cluster_cmd *c);

/* False for errors that are a deterministic property of the command and the state (absent
 * record, key too long): every node gets the same, the command is a no-op and the batch goes
 * on. True for errors of this node's environment (map or disk full, I/O, corruption): the
 * batch must not be committed without it. */
bool fsm_exec_error_is_local(int rc);

#endif
