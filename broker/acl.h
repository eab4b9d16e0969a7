/* Access control from a Mosquitto ACL file.
 *
 * File format (mosquitto.conf(5), acl_file):
 *   # comment
 *   topic [read|write|readwrite|deny] <topic>   before any `user` line: anonymous clients
 *   user <username>                             following topic lines: that user
 *   topic [read|write|readwrite|deny] <topic>   (no access word = readwrite)
 *   pattern [read|write|readwrite|deny] <topic> every client; %u = username, %c = client id
 *
 * Decision (acl_check):
 * - `$SYS/...` topics are never writable by clients; `$share/...` is only a subscription
 *   (Mosquitto's dollar check). Both apply with and without an ACL file.
 * - Without an ACL file (acl == NULL) everything else is allowed.
 * - The client's rules are its user's `topic` lines (the anonymous section when it has no
 *   username) plus every `pattern` line. A pattern with %u does not apply to a client without
 *   a username; a pattern whose %u/%c value contains '+' or '#' denies.
 * - A `deny` rule that matches wins over any grant.
 * - READ/WRITE of a topic name: allowed when a rule granting that access matches the topic.
 * - SUBSCRIBE of a filter: allowed when a rule granting read could match some topic the filter
 *   matches (the filters overlap), unless a deny rule covers every topic of the filter.
 *   Deliveries are checked again per topic with READ, so an overlapping subscription only
 *   receives what the rules allow. `$share/<group>/<filter>` is checked as <filter>.
 * - UNSUBSCRIBE is always allowed.
 * The acl is immutable after acl_load(): acl_check() is thread-safe and allocation-free.
 *
 * Differences from Mosquitto 2.0.11 (whose default check grants every SUBSCRIBE and filters
 * only deliveries): a SUBSCRIBE that no read rule can ever deliver on is refused, and a deny
 * rule in the patterns also overrides a grant from the user's own topic lines.
 */
#ifndef STARLING_BROKER_ACL_H
#define STARLING_BROKER_ACL_H

#include <stddef.h>

struct acl;

/* Access kinds (Mosquitto's MOSQ_ACL_* values). */
enum acl_access {
    ACL_READ = 0x01,      /* delivering a PUBLISH to the client */
    ACL_WRITE = 0x02,     /* the client publishing (also wills and retained sets) */
    ACL_SUBSCRIBE = 0x04, /* a SUBSCRIBE filter */
    ACL_UNSUBSCRIBE = 0x08,
};

/* Loads an ACL file. Returns 0 with *out a new acl, or a negative errno with
 * `FILE:LINE: what is wrong` (or `FILE: ...`) in err: -ENOENT/-EACCES/-EIO, -EINVAL for a
 * malformed line (unknown keyword, bad access word, missing topic, invalid filter), -ENOMEM. */
int acl_load(const char *path, struct acl **out /* OUT */, char *err, size_t errlen);

/* As acl_load(), from memory; `name` is used in messages. */
int acl_load_buffer(const char *name, const char *buf, size_t len, struct acl **out /* OUT */,
                    char *err, size_t errlen);

/* Frees an acl; NULL is a no-op. */
void acl_free(struct acl *acl);

/* Whether the client (username NULL for anonymous) may do `access` on topic (a topic name
 * for READ/WRITE, a filter for SUBSCRIBE/UNSUBSCRIBE). acl may be NULL (no acl_file).
 * Returns 0 when allowed, -EACCES when denied. */
int acl_check(const struct acl *acl, const char *client_id, const char *username, const char *topic,
              enum acl_access access);

#endif
