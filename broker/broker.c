/* The node's lifecycle: start-up (listeners, privileges, durable state), the loop's per
 * iteration work (flush of queued output, the timer wheel), signals, graceful stop. */
#include "broker.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "acl.h"
#include "admin_hooks.h"
#include "auth.h"
#include "config.h"
#include "conn.h"
#include "core.h"
#include "durable.h"
#include "listener.h"
#include "log.h"
#include "msg.h"
#include "notify.h"
#include "retain.h"
#include "route.h"
#include "session.h"
#include "subs.h"
#include "sys.h"

/* How often the wheel is advanced (keepalive precision). */
#define BROKER_TICK_MS 100
/* How long a stop waits for clients to take their last bytes. */
#define BROKER_STOP_GRACE_MS 2000

uint64_t broker_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

uint32_t broker_max_packet_in(const struct broker *b)
{
    /* message_size_limit bounds payloads (checked per PUBLISH); max_packet_size packets. */
    return b->cfg->max_packet_size;
}

uint16_t broker_receive_max(const struct broker *b)
{
    return b->cfg->max_inflight_messages ? b->cfg->max_inflight_messages : 65535;
}

const char *broker_data_dir(const struct broker *b)
{
    return b->data_dir;
}

static void broker_release_msg(void *m)
{
    msg_unref(m);
}

int broker_new(uv_loop_t *loop, const struct config *cfg, struct broker **out)
{
    struct broker *b = calloc(1, sizeof *b);
    if (!b) return -ENOMEM;
    b->loop = loop;
    b->cfg = cfg;
    b->scratch = malloc(BROKER_SCRATCH_SIZE);
    b->subs = subs_new();
    b->retain = retain_new(broker_release_msg);
    if (!b->scratch || !b->subs || !b->retain) {
        subs_free(b->subs);
        retain_free(b->retain);
        free(b->scratch);
        free(b);
        return -ENOMEM;
    }
    htab_init(&b->conns);
    htab_init(&b->bare_conns);
    session_table_init(b);
    wheel_init(&b->wheel, uv_now(loop));
    b->started_ms = broker_wall_ms();
    *out = b;
    return 0;
}

/* ---- per iteration ---- */

static void broker_flush_prepare_cb(uv_prepare_t *h)
{
    conn_flush_all(h->data);
}

static void broker_flush_check_cb(uv_check_t *h)
{
    conn_flush_all(h->data);
}

static void broker_tick_cb(uv_timer_t *t)
{
    struct broker *b = t->data;
    b->now_ms = uv_now(b->loop);
    wheel_advance(&b->wheel, b->now_ms);
}

/* ---- stop ---- */

static void broker_handles_closed_cb(uv_handle_t *h)
{
    (void)h;
}

static void broker_close_handles(struct broker *b)
{
    uv_handle_t *hs[] = {
        (uv_handle_t *)&b->wheel_timer, (uv_handle_t *)&b->flush_prepare,
        (uv_handle_t *)&b->flush_check, (uv_handle_t *)&b->sys_timer,
        (uv_handle_t *)&b->sig_int,     (uv_handle_t *)&b->sig_term,
        (uv_handle_t *)&b->sig_hup,     (uv_handle_t *)&b->stop_timer,
    };
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        if (hs[i]->loop && !uv_is_closing(hs[i])) uv_close(hs[i], broker_handles_closed_cb);
}

static void broker_cluster_closed_cb(void *data)
{
    struct broker *b = data;
    b->cluster = NULL;
    b->stopped = true;
    broker_close_handles(b);
}

static void broker_transferred_cb(void *data, int status)
{
    struct broker *b = data;
    if (status < 0)
        log_at(LOG_TYPE_WARNING, "Leadership not handed over: %s.", cluster_strerror(status));
    if (!b->cluster_closing_called) {
        b->cluster_closing_called = true;
        cluster_close(b->cluster, broker_cluster_closed_cb, b);
    }
}

/* A hand-over that does not finish in time does not hold the stop. */
static void broker_transfer_timeout_cb(uv_timer_t *t)
{
    struct broker *b = t->data;
    if (b->cluster && !b->cluster_closing_called) {
        log_at(LOG_TYPE_WARNING, "Leadership hand-over timed out.");
        b->cluster_closing_called = true;
        cluster_close(b->cluster, broker_cluster_closed_cb, b);
    }
}

static void broker_close_cluster_cb(uv_timer_t *t)
{
    struct broker *b = t->data;
    if (!b->cluster) {
        broker_cluster_closed_cb(b);
        return;
    }
    /* The leader of several nodes hands over before it goes. */
    if (b->clustered && cluster_is_leader(b->cluster) &&
        cluster_transfer(b->cluster, 0, broker_transferred_cb, b) == 0) {
        log_at(LOG_TYPE_NOTICE, "Handing over the cluster's leadership.");
        uv_timer_start(&b->stop_timer, broker_transfer_timeout_cb, BROKER_STOP_GRACE_MS, 0);
        return;
    }
    b->cluster_closing_called = true;
    cluster_close(b->cluster, broker_cluster_closed_cb, b);
}

void broker_maybe_finish_stop(struct broker *b)
{
    if (!b->stopping || b->stopped || b->closing_cluster) return;
    if (b->live_conns > 0 || b->auth_jobs > 0 || (b->dur_inflight > 0 && !b->stop_forced)) return;
    /* Last flush and the final state: close Raft and LMDB, from a callback of our own (not
     * from inside one of Raft's). */
    b->closing_cluster = true;
    if (!b->stop_timer.loop) {
        /* Never started (no timers, no cluster): nothing left to close. */
        broker_cluster_closed_cb(b);
        return;
    }
    uv_timer_stop(&b->stop_timer);
    uv_timer_start(&b->stop_timer, broker_close_cluster_cb, 20, 0);
}

static void broker_stop_timer_cb(uv_timer_t *t)
{
    struct broker *b = t->data;
    if (b->closing_cluster) return;
    /* Proposals that do not complete in the grace period are not waited for any longer. */
    b->stop_forced = true;
    /* Clients that do not take their last bytes are cut off. */
    conn_abort_all(b);
    broker_maybe_finish_stop(b);
}

void broker_stop(struct broker *b)
{
    if (b->stopping) return;
    b->stopping = true;
    notify_service_manager("STOPPING=1");
    log_at(LOG_TYPE_NOTICE, "Starling version %s terminating.", STARLING_VERSION);
    for (size_t i = 0; i < b->nlisteners; i++)
        listener_close(&b->listeners[i]);
    admin_hooks_stop(b->admin);
    b->admin = NULL;
    /* Wills that are due by now are sent before the end. */
    wheel_advance(&b->wheel, uv_now(b->loop));
    conn_close_all(b, MQTT_RC_SERVER_SHUTTING_DOWN);
    conn_flush_all(b);
    if (b->stop_timer.loop)
        uv_timer_start(&b->stop_timer, broker_stop_timer_cb, BROKER_STOP_GRACE_MS, 0);
    broker_maybe_finish_stop(b);
}

static void broker_signal_cb(uv_signal_t *h, int signum)
{
    struct broker *b = h->data;
    if (signum == SIGHUP) {
        log_at(LOG_TYPE_NOTICE, "Reloading config.");
        log_reopen();
        broker_reload(b);
        return;
    }
    broker_stop(b);
}

/* ---- auth files ---- */

/* Loads the password and ACL files of one set of security settings. */
static int broker_load_security(const struct config_security *sec, struct auth_db **db,
                                struct acl **acl)
{
    char err[512];
    *db = NULL;
    *acl = NULL;
    if (sec->password_file) {
        int rc = auth_db_load(sec->password_file, db, err, sizeof err);
        if (rc < 0) {
            log_at(LOG_TYPE_ERROR, "Error: %s.", err);
            return rc;
        }
    }
    if (sec->acl_file) {
        int rc = acl_load(sec->acl_file, acl, err, sizeof err);
        if (rc < 0) {
            log_at(LOG_TYPE_ERROR, "Error: %s.", err);
            auth_db_unref(*db);
            *db = NULL;
            return rc;
        }
    }
    return 0;
}

/* Drops what the listeners own (per_listener_settings) and the global files. */
static void broker_release_security(struct broker *b)
{
    for (size_t i = 0; i < b->nlisteners; i++) {
        struct listener *l = &b->listeners[i];
        if (l->owns_security) {
            auth_db_unref(l->auth);
            acl_free(l->acl);
        }
        l->auth = NULL;
        l->acl = NULL;
        l->owns_security = false;
    }
    auth_db_unref(b->auth);
    acl_free(b->acl);
    b->auth = NULL;
    b->acl = NULL;
}

int broker_reload(struct broker *b)
{
    const struct config *cfg = b->cfg;
    size_t n = cfg->per_listener_settings ? b->nlisteners : 0;
    struct auth_db *gdb = NULL, *dbs[64] = {0};
    struct acl *gacl = NULL, *acls[64] = {0};
    int rc = 0;
    if (n > 64) n = 64;
    if (!cfg->per_listener_settings) {
        rc = broker_load_security(&cfg->security, &gdb, &gacl);
    } else {
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = broker_load_security(&b->listeners[i].cfg->security, &dbs[i], &acls[i]);
    }
    if (rc < 0) {
        /* All or nothing: the files in force stay. */
        auth_db_unref(gdb);
        acl_free(gacl);
        for (size_t i = 0; i < n; i++) {
            auth_db_unref(dbs[i]);
            acl_free(acls[i]);
        }
        log_at(LOG_TYPE_ERROR, "Error: password or ACL file not (re)loaded.");
        return rc;
    }
    broker_release_security(b);
    b->auth = gdb;
    b->acl = gacl;
    for (size_t i = 0; i < b->nlisteners; i++) {
        struct listener *l = &b->listeners[i];
        if (cfg->per_listener_settings && i < n) {
            l->auth = dbs[i];
            l->acl = acls[i];
            l->owns_security = true;
        } else {
            l->auth = gdb;
            l->acl = gacl;
        }
    }
    return 0;
}

void broker_ready(struct broker *b)
{
    if (b->accepting) return;
    b->accepting = true;
    for (size_t i = 0; i < b->nlisteners; i++)
        listener_accept_pending(&b->listeners[i]);
    notify_service_manager("READY=1");
}

const struct acl *broker_session_acl(const struct broker *b, const struct listener *lst)
{
    if (lst) return lst->acl;
    return b->nlisteners ? b->listeners[0].acl : b->acl;
}

/* ---- start ---- */

/* "host:port", or "[host]:port" for an IPv6 address. NULL without memory. */
static char *broker_hostport(const char *host, unsigned port)
{
    char buf[600];
    bool v6 = strchr(host, ':') != NULL;
    snprintf(buf, sizeof buf, v6 ? "[%s]:%u" : "%s:%u", host, port);
    return strdup(buf);
}

/* The cluster directives into cc (strings kept in b until broker_free). */
static int broker_cluster_config(struct broker *b, struct cluster_config *cc, char *err,
                                 size_t errlen)
{
    const struct config *cfg = b->cfg;
    if (!config_is_clustered(cfg)) return 0;
    b->clustered = true;
    if (cfg->cluster_peer_count) {
        b->cl_peers = calloc(cfg->cluster_peer_count, sizeof *b->cl_peers);
        if (!b->cl_peers) goto nomem;
        for (size_t i = 0; i < cfg->cluster_peer_count; i++) {
            b->cl_peers[i].id = cfg->cluster_peers[i].id;
            b->cl_peers[i].address =
                broker_hostport(cfg->cluster_peers[i].host, cfg->cluster_peers[i].port);
            b->cl_npeers++;
            if (!b->cl_peers[i].address) goto nomem;
        }
    }
    if (cfg->cluster_join_host) {
        b->cl_join = broker_hostport(cfg->cluster_join_host, cfg->cluster_join_port);
        if (!b->cl_join) goto nomem;
    }
    if (cfg->cluster_advertise_set && cfg->cluster_advertise_host) {
        b->cl_advertise = broker_hostport(cfg->cluster_advertise_host,
                                          cfg->cluster_advertise_port ? cfg->cluster_advertise_port
                                                                      : cfg->cluster_port);
        if (!b->cl_advertise) goto nomem;
    }
    cc->peers = b->cl_peers;
    cc->n_peers = b->cl_npeers;
    cc->join = b->cl_join;
    cc->listen_port = cfg->cluster_port;
    cc->listen_bind = cfg->cluster_bind_address;
    cc->advertise = b->cl_advertise;
    cc->secret = cfg->cluster_secret;
    cc->secret_len = cfg->cluster_secret_len;
    cc->tls_ca_pem = cfg->cluster_ca_pem; /* cluster TLS: all three or none (config.c) */
    cc->tls_ca_pem_len = cfg->cluster_ca_pem_len;
    cc->tls_cert_pem = cfg->cluster_cert_pem;
    cc->tls_cert_pem_len = cfg->cluster_cert_pem_len;
    cc->tls_key_pem = cfg->cluster_key_pem;
    cc->tls_key_pem_len = cfg->cluster_key_pem_len;
    if (!cfg->cluster_secret)
        log_at(LOG_TYPE_WARNING, "Warning: no cluster_secret_file: anyone who reaches the cluster "
                                 "port can join this cluster.");
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

static int broker_drop_privileges(struct broker *b, char *err, size_t errlen)
{
    if (geteuid() != 0 || !b->cfg->user || !b->cfg->user[0]) return 0;
    struct passwd *pw = getpwnam(b->cfg->user);
    if (!pw) {
        log_at(LOG_TYPE_WARNING, "Warning: user %s does not exist: running as root.", b->cfg->user);
        return 0;
    }
    if (b->data_dir && chown(b->data_dir, pw->pw_uid, pw->pw_gid) < 0 && errno != ENOENT)
        log_at(LOG_TYPE_WARNING, "Warning: cannot give %s to %s: %s.", b->data_dir, b->cfg->user,
               strerror(errno));
    /* The data dir must stay usable after the switch (its parents too): try as that user. */
    bool usable = true;
    if (b->data_dir && setegid(pw->pw_gid) == 0) {
        if (seteuid(pw->pw_uid) == 0) {
            usable = euidaccess(b->data_dir, R_OK | W_OK | X_OK) == 0;
            if (seteuid(0) < 0) usable = false;
        }
        if (setegid(0) < 0) usable = false;
    }
    if (!usable) {
        log_at(LOG_TYPE_WARNING,
               "Warning: user %s cannot use the data dir %s: running as root. Set `user` or "
               "`persistence_location` to avoid this.",
               b->cfg->user, b->data_dir);
        return 0;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        snprintf(err, errlen, "cannot become user %s: %s", b->cfg->user, strerror(errno));
        return -errno;
    }
    return 0;
}

static int broker_make_data_dir(struct broker *b, char *err, size_t errlen)
{
    if (!b->cfg->persistence) {
        const char *tmp = getenv("TMPDIR");
        char path[4096];
        snprintf(path, sizeof path, "%s/starling-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(path)) {
            snprintf(err, errlen, "cannot create a temporary data dir in %s: %s",
                     tmp && *tmp ? tmp : "/tmp", strerror(errno));
            return -errno;
        }
        b->data_dir = strdup(path);
        b->data_dir_temp = true;
    } else {
        const char *loc =
            b->cfg->persistence_location ? b->cfg->persistence_location : "./starling-data";
        b->data_dir = strdup(loc);
        if (b->data_dir) {
            size_t n = strlen(b->data_dir);
            while (n > 1 && b->data_dir[n - 1] == '/')
                b->data_dir[--n] = '\0';
        }
        if (b->data_dir && mkdir(b->data_dir, 0700) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create data dir %s: %s", b->data_dir, strerror(errno));
            return -errno;
        }
    }
    if (!b->data_dir) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int broker_open_listeners(struct broker *b, char *err, size_t errlen)
{
    const struct config *cfg = b->cfg;
    b->listeners = calloc(cfg->listener_count ? cfg->listener_count : 1, sizeof *b->listeners);
    if (!b->listeners) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t ok = 0;
    char lerr[512] = "";
    for (size_t i = 0; i < cfg->listener_count; i++) {
        const struct config_listener *lc = &cfg->listeners[i];
        int rc = listener_open(b, &b->listeners[b->nlisteners], lc, lerr, sizeof lerr);
        b->nlisteners++;
        if (rc < 0) {
            if (lc->local_only) {
                /* Local-only mode: ::1 may be missing on this host. */
                log_at(LOG_TYPE_WARNING, "Warning: %s.", lerr);
                continue;
            }
            snprintf(err, errlen, "%s", lerr);
            return rc;
        }
        ok++;
    }
    if (ok == 0) {
        snprintf(err, errlen, "%s", lerr[0] ? lerr : "no listener could be opened");
        return -EADDRNOTAVAIL;
    }
    return 0;
}

static void broker_print_where(struct broker *b)
{
    char where[1024] = "";
    size_t n = 0;
    for (size_t i = 0; i < b->nlisteners; i++)
        for (unsigned j = 0; j < b->listeners[i].nsocks; j++)
            if (b->listeners[i].socks[j].addr[0] && n < sizeof where)
                n += (size_t)snprintf(where + n, sizeof where - n, "%s%s", n ? ", " : "",
                                      b->listeners[i].socks[j].addr);
    log_at(LOG_TYPE_NOTICE, "Starling version %s running: MQTT on %s; data in %s%s.",
           STARLING_VERSION, where, b->data_dir,
           b->data_dir_temp ? " (temporary: persistence false)" : "");
}

int broker_start(struct broker *b, char *err, size_t errlen)
{
    const struct config *cfg = b->cfg;
    /* Signals first: a SIGTERM during start-up is a clean stop too. */
    uv_signal_init(b->loop, &b->sig_int);
    uv_signal_init(b->loop, &b->sig_term);
    uv_signal_init(b->loop, &b->sig_hup);
    b->sig_int.data = b->sig_term.data = b->sig_hup.data = b;
    uv_signal_start(&b->sig_int, broker_signal_cb, SIGINT);
    uv_signal_start(&b->sig_term, broker_signal_cb, SIGTERM);
    uv_signal_start(&b->sig_hup, broker_signal_cb, SIGHUP);
    int rc = broker_make_data_dir(b, err, errlen);
    if (rc < 0) return rc;
    rc = broker_open_listeners(b, err, errlen);
    if (rc < 0) return rc;
    rc = broker_reload(b);
    if (rc < 0) {
        snprintf(err, errlen, "cannot load the password or ACL file");
        return rc;
    }
    rc = broker_drop_privileges(b, err, errlen);
    if (rc < 0) return rc;

    struct cluster_config cc = {
        .data_dir = b->data_dir,
        .node_id = cfg->node_id,
        .log = dur_log,
        .log_ctx = b,
    };
    rc = broker_cluster_config(b, &cc, err, errlen);
    if (rc < 0) return rc;
    struct cluster_events ev = {
        .applied = dur_applied,
        .restored = dur_restored,
        .leader_changed = dur_leader_changed,
        .failed = dur_failed,
    };
    if (b->clustered) {
        ev.link_frame = route_link_frame;
        ev.ring_changed = route_ring_changed;
        ev.node_changed = route_node_changed;
        ev.removed = route_removed;
    }
    rc = cluster_new(b->loop, &cc, &ev, b, &b->cluster);
    if (rc < 0) {
        snprintf(err, errlen, "cannot open the data dir %s: %s", b->data_dir, cluster_strerror(rc));
        return rc;
    }
    if (b->clustered && (rc = route_new(b)) < 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    rc = dur_load(b);
    if (rc < 0) {
        snprintf(err, errlen, "cannot load the state in %s: %s", b->data_dir, cluster_strerror(rc));
        return rc;
    }
    rc = cluster_start(b->cluster);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start Raft in %s: %s", b->data_dir, cluster_strerror(rc));
        return rc;
    }

    uv_prepare_init(b->loop, &b->flush_prepare);
    b->flush_prepare.data = b;
    uv_prepare_start(&b->flush_prepare, broker_flush_prepare_cb);
    uv_unref((uv_handle_t *)&b->flush_prepare);
    uv_check_init(b->loop, &b->flush_check);
    b->flush_check.data = b;
    uv_check_start(&b->flush_check, broker_flush_check_cb);
    uv_unref((uv_handle_t *)&b->flush_check);
    uv_timer_init(b->loop, &b->wheel_timer);
    b->wheel_timer.data = b;
    uv_timer_start(&b->wheel_timer, broker_tick_cb, BROKER_TICK_MS, BROKER_TICK_MS);
    uv_timer_init(b->loop, &b->stop_timer);
    b->stop_timer.data = b;
    uv_unref((uv_handle_t *)&b->stop_timer);
    rc = admin_hooks_start(b, &b->admin, err, errlen);
    if (rc < 0) return rc;
    sys_start(b);
    broker_print_where(b);
    return 0;
}

static int broker_rm_cb(const char *path)
{
    return remove(path);
}

/* Removes a directory tree (the temporary data dir). */
static void broker_rmtree(const char *dir)
{
    char cmdpath[4096];
    struct stat st;
    if (lstat(dir, &st) < 0) return;
    if (!S_ISDIR(st.st_mode)) {
        broker_rm_cb(dir);
        return;
    }
    /* nftw-free walk: a temporary data dir is at most two levels deep. */
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(cmdpath, sizeof cmdpath, "%s/%s", dir, e->d_name);
            broker_rmtree(cmdpath);
        }
        closedir(d);
    }
    rmdir(dir);
}

void broker_free(struct broker *b)
{
    if (!b) return;
    route_free(b);
    session_table_close(b);
    subs_free(b->subs);
    retain_free(b->retain);
    wheel_close(&b->wheel);
    htab_close(&b->conns);
    htab_close(&b->bare_conns);
    conn_pool_free(b);
    sys_free(b);
    broker_release_security(b);
    free(b->listeners);
    for (size_t i = 0; i < b->cl_npeers; i++)
        free((char *)b->cl_peers[i].address);
    free(b->cl_peers);
    free(b->cl_join);
    free(b->cl_advertise);
    if (b->data_dir_temp && b->data_dir) broker_rmtree(b->data_dir);
    free(b->data_dir);
    free(b->scratch);
    free(b);
}
