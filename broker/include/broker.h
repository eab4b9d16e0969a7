/* broker: one Starling node. The public door for `main` and the tools.
 *
 * Contract:
 * - Everything runs on the libuv loop passed to broker_new(), on the thread that runs it.
 * - broker_start() opens the listeners, the durable state (Raft into LMDB) and loads it; the
 *   loop then serves clients until broker_stop() (or SIGINT/SIGTERM, which call it), after
 *   which uv_run() returns once every handle is closed.
 * - The config is borrowed and must outlive the broker.
 * - Errors: 0 or -errno (libuv codes pass through), with a one-line message where noted.
 */
#ifndef STARLING_BROKER_H
#define STARLING_BROKER_H

#include <stddef.h>

#include <uv.h>

struct broker;
struct config;

/* A new broker on loop. Returns 0 or -ENOMEM; *out is set only on success. */
int broker_new(uv_loop_t *loop, const struct config *cfg, struct broker **out /* OUT */);

/* Opens listeners, drops privileges (user), opens and loads the durable state, starts Raft,
 * installs signal handlers and timers. Prints where it listens and where its data lives.
 * Returns 0, or a negative error with `what is wrong` in err. */
int broker_start(struct broker *b, char *err, size_t errlen);

/* Graceful stop: stop accepting, DISCONNECT 0x8B to v5 clients, due wills sent, output
 * flushed, Raft and LMDB closed; then every handle closes and uv_run() returns. */
void broker_stop(struct broker *b);

/* Reloads the password and ACL files without dropping connections (SIGHUP). Returns 0 or a
 * negative error (the old files stay in force). */
int broker_reload(struct broker *b);

/* Frees the broker after uv_run() returned; removes a temporary data dir. NULL is a no-op. */
void broker_free(struct broker *b);

/* The data dir in use (valid until broker_free). */
const char *broker_data_dir(const struct broker *b);

#endif
