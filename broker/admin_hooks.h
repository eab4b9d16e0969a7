/* admin_hooks: the admin API of one node (admin.h) bound to this broker: readiness, the
 * cluster status, /metrics and membership changes, read from struct broker and the cluster. */
#ifndef STARLING_BROKER_ADMIN_HOOKS_H
#define STARLING_BROKER_ADMIN_HOOKS_H

#include <stddef.h>

struct admin;
struct broker;

/* Opens the admin listener of b->cfg (admin_listener, admin_token_file) with hooks reading
 * b. Without admin_listener it does nothing: returns 0 with *out NULL. Returns 0, or a
 * negative libuv error with `admin_listener ADDRESS:PORT: what is wrong` in err. Call from
 * broker_start() once b->cluster exists. */
int admin_hooks_start(struct broker *b, struct admin **out /* OUT */, char *err, size_t errlen);

/* Stops the admin listener started by admin_hooks_start (NULL: nothing). Call from
 * broker_stop(), before the cluster closes: operations still running are finished by the
 * cluster's close. */
void admin_hooks_stop(struct admin *a);

#endif
