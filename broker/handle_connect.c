/* CONNECT: validation, client id rules, authentication off the loop, session takeover,
 * clean start or resume, the durable session open, CONNACK. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "auth.h"
#include "config.h"
#include "conn.h"
#include "core.h"
#include "durable.h"
#include "handle.h"
#include "listener.h"
#include "log.h"
#include "msg.h"
#include "session.h"

/* What a CONNECT asks for beyond what the connection holds, kept while it is authenticated
 * and while its session open is committed. */
struct connect_req {
    uv_work_t work;
    struct broker *b;
    uint64_t conn_id;
    struct auth_db *db;
    char *username;
    char *password;
    size_t password_len;
    int auth_rc;
    bool clean_start;
    bool assigned_id; /* the client sent an empty id: CONNACK carries the one we made */
    uint32_t expiry_s;
    struct msg *will;
    uint32_t will_delay_s;
    uint32_t will_expiry_s; /* 0: none */
};

static void connect_req_free(struct connect_req *r)
{
    if (!r) return;
    if (r->password) {
        memset(r->password, 0, r->password_len);
        free(r->password);
    }
    free(r->username);
    auth_db_unref(r->db);
    msg_unref(r->will);
    free(r);
}

/* An id for a client that sent none: auto_id_prefix + a random UUID-like string, from
 * session_id_new(). */
static char *connect_make_id(struct conn *c)
{
    const char *prefix = c->lst->cfg->security.auto_id_prefix;
    if (!prefix) prefix = "auto-";
    uint8_t r[16];
    if (uv_random(NULL, NULL, r, sizeof r, 0, NULL) != 0) {
        uint64_t x = htab_hash_u64(uv_hrtime() ^ ++c->b->auto_id_counter);
        uint64_t y = htab_hash_u64(x ^ c->id);
        memcpy(r, &x, 8);
        memcpy(r + 8, &y, 8);
    }
    char uuid[37], *p = uuid;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        p += sprintf(p, "%02X", r[i]);
    }
    size_t plen = strlen(prefix), ulen = (size_t)(p - uuid);
    char *id = malloc(plen + ulen);
    if (!id) return NULL;
    memcpy(id, prefix, plen);
    memcpy(id + plen, uuid, ulen);
    char *shared = session_id_new(id, plen + ulen);
    free(id);
    return shared;
}

static void connect_send_connack(struct conn *c, struct connect_req *r, bool session_present)
{
    struct broker *b = c->b;
    const struct config *cfg = b->cfg;
    struct mqtt_packet pkt = {.type = MQTT_CONNACK};
    pkt.u.connack.session_present = session_present;
    pkt.u.connack.reason = MQTT_RC_SUCCESS;
    if (c->version == MQTT_V5) {
        struct mqtt_props *p = &pkt.props;
        p->present |= MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM);
        p->receive_maximum = broker_receive_max(b);
        if (c->lst->cfg->max_qos < 2) {
            p->present |= MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS);
            p->maximum_qos = c->lst->cfg->max_qos;
        }
        if (!cfg->retain_available) {
            p->present |= MQTT_PROP_BIT(MQTT_PROP_RETAIN_AVAILABLE);
            p->retain_available = 0;
        }
        uint32_t maxp = broker_max_packet_in(b);
        if (maxp) {
            p->present |= MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE);
            p->maximum_packet_size = maxp;
        }
        if (c->lst->cfg->max_topic_alias) {
            p->present |= MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
            p->topic_alias_maximum = c->lst->cfg->max_topic_alias;
        }
        if (r->assigned_id) {
            p->present |= MQTT_PROP_BIT(MQTT_PROP_ASSIGNED_CLIENT_ID);
            p->assigned_client_id = MQTT_STR(c->client_id);
        }
        if (c->server_keepalive) {
            p->present |= MQTT_PROP_BIT(MQTT_PROP_SERVER_KEEP_ALIVE);
            p->server_keep_alive_s = c->keepalive_s;
        }
    }
    conn_send(c, &pkt);
}

/* The session is ready (and durable when it must be): CONNACK and redelivery. s NULL: the
 * connection is bare (conn.h). */
static void connect_complete(struct conn *c, struct session *s, struct connect_req *r,
                             bool session_present)
{
    struct broker *b = c->b;
    connect_send_connack(c, r, session_present);
    c->state = CONN_ACTIVE;
    if (b->stats.clients_connecting > 0) b->stats.clients_connecting--;
    b->stats.clients_connected++;
    b->stats.connects++;
    if (b->stats.clients_connected > b->stats.clients_maximum)
        b->stats.clients_maximum = b->stats.clients_connected;
    if (b->cfg->connection_messages) {
        if (c->username)
            log_at(LOG_TYPE_NOTICE, "New client connected from %s as %s (p%d, c%d, k%d, u'%s').",
                   conn_addr(c), c->client_id, c->version, r->clean_start ? 1 : 0, c->keepalive_s,
                   c->username);
        else
            log_at(LOG_TYPE_NOTICE, "New client connected from %s as %s (p%d, c%d, k%d).",
                   conn_addr(c), c->client_id, c->version, r->clean_start ? 1 : 0, c->keepalive_s);
    }
    conn_touch(c);
    if (s) session_attach(s, c); /* NULL: a bare connection */
    conn_resume(c);
}

static void connect_opened_cb(struct broker *b, struct dur_wait *w, int status)
{
    struct connect_req *r = w->data;
    struct conn *c = conn_find(b, w->conn_id);
    if (c && c->sess) {
        if (status < 0) {
            log_at(LOG_TYPE_ERROR, "Client %s: session could not be stored: %s.", c->client_id,
                   cluster_strerror(status));
            conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "session could not be stored");
        } else {
            connect_complete(c, c->sess, r, w->u32 != 0);
        }
    }
    connect_req_free(r);
    free(w);
}

/* Authentication passed: takeover, clean start or resume, then CONNACK (after the session
 * open committed, for a persistent session). Takes r. */
static void connect_finish(struct conn *c, struct connect_req *r)
{
    struct broker *b = c->b;
    size_t idlen = strlen(c->client_id);
    struct conn *old = conn_bare_find(b, c->client_id, idlen);
    if (old) conn_close(old, MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
    struct session *s = session_find(b, c->client_id, idlen);
    if (s && s->conn) {
        /* Session takeover [MQTT-3.1.4-3]: the old connection ends with 0x8E. */
        conn_close(s->conn, MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
        s = session_find(b, c->client_id, idlen);
    }
    bool persistent = c->version == MQTT_V5 ? r->expiry_s > 0 : !r->clean_start;
    bool was_durable = s && s->durable;
    bool session_present = false;
    bool ended = false; /* a previous session ended: the open purges what is left of it */
    if (s && (r->clean_start || !s->persistent)) {
        session_end(s, false);
        s = NULL;
        ended = true;
    } else if (s) {
        session_present = true;
    }
    if (!s && !persistent && !b->clustered && !r->will) {
        /* A clean session with nothing to hold yet: no struct session until the client
         * sends more than PINGREQ (conn.h, bare connections). */
        if (conn_bare_add(c) < 0) {
            conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
            connect_req_free(r);
            return;
        }
        if (was_durable) dur_session_client(b, CLUSTER_CMD_SESSION_DELETE, c->client_id, idlen);
        connect_complete(c, NULL, r, false);
        connect_req_free(r);
        return;
    }
    if (!s) {
        s = session_new_id(b, c->client_id);
        if (!s) {
            conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
            connect_req_free(r);
            return;
        }
    }
    s->version = c->version;
    s->persistent = persistent;
    s->expiry_s = c->version == MQTT_V5
                      ? r->expiry_s
                      : (b->cfg->persistent_client_expiration_s
                             ? (uint32_t)(b->cfg->persistent_client_expiration_s > UINT32_MAX - 1
                                              ? UINT32_MAX - 1
                                              : b->cfg->persistent_client_expiration_s)
                             : UINT32_MAX);
    free(s->username);
    s->username = c->username ? strdup(c->username) : NULL;
    s->conn = c;
    s->lst = c->lst;
    c->sess = s;
    session_set_will(s, r->will, r->will_delay_s, r->will_expiry_s);
    r->will = NULL;
    if (!persistent && !b->clustered) {
        if (was_durable)
            dur_session_client(b, CLUSTER_CMD_SESSION_DELETE, s->client_id, s->client_id_len);
        if (s->will.m && s->will.delay_s > 0) dur_will_set(b, s);
        /* A v5 session resumed with Session Expiry 0 is still present [MQTT-3.2.2-2]. */
        connect_complete(c, s, r, session_present);
        connect_req_free(r);
        return;
    }
    /* A persistent session (or any session on several nodes, where the open moves the client
     * id here): CONNACK once its open is committed. */
    struct dur_wait *w = dur_wait_new(b, connect_opened_cb);
    if (!w) {
        conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
        connect_req_free(r);
        return;
    }
    w->conn_id = c->id;
    w->data = r;
    w->u32 = session_present;
    conn_pause(c);
    int rc = dur_session_open(b, s, r->clean_start || ended, dur_wait_cb, dur_hold(w));
    if (rc < 0)
        dur_wait_fail(w, rc);
    else
        s->durable = true;
    if (rc == 0 && s->will.m) dur_will_set(b, s);
    dur_wait_release(w);
}

static void connect_auth_work(uv_work_t *work)
{
    struct connect_req *r = work->data;
    r->auth_rc = auth_check(r->db, r->username, r->password, r->password_len);
}

static void connect_auth_after(uv_work_t *work, int status)
{
    struct connect_req *r = work->data;
    struct broker *b = r->b;
    b->auth_jobs--;
    struct conn *c = conn_find(b, r->conn_id);
    if (!c) {
        connect_req_free(r);
        broker_maybe_finish_stop(b);
        return;
    }
    if (status < 0 || r->auth_rc < 0) {
        /* v5: 0x86, the code for credentials the server does not accept. 3.x: 5 "not
         * authorized", as Mosquitto answers; 3.1.1 keeps 4 for malformed user name or
         * password data (section 3.2.2.3). */
        conn_close(
            c, c->version == MQTT_V5 ? MQTT_RC_BAD_USERNAME_OR_PASSWORD : MQTT_RC_NOT_AUTHORIZED,
            "bad username or password");
        connect_req_free(r);
        return;
    }
    connect_finish(c, r);
}

/* Copies the will of a CONNECT into a message. Returns 0 or a reason code. */
static int connect_will(struct conn *c, const struct mqtt_connect *ct, struct connect_req *r)
{
    const struct config *cfg = c->b->cfg;
    if (!ct->will_flag) return 0;
    if (ct->will_retain && !cfg->retain_available)
        return MQTT_RC_RETAIN_NOT_SUPPORTED;                                   /* [MQTT-3.2.2-13] */
    if (ct->will_qos > c->lst->cfg->max_qos) return MQTT_RC_QOS_NOT_SUPPORTED; /* [MQTT-3.2.2-12] */
    struct msg_init in = {
        .topic = ct->will_topic.ptr,
        .topic_len = ct->will_topic.len,
        .payload = ct->will_payload.ptr,
        .payload_len = ct->will_payload.len,
        .qos = ct->will_qos,
        .retain = ct->will_retain,
    };
    if (c->version == MQTT_V5) {
        const struct mqtt_props *wp = &ct->will_props;
        if ((wp->present & MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT)) && wp->payload_format == 1 &&
            mqtt_utf8_check((const char *)ct->will_payload.ptr, ct->will_payload.len) !=
                MQTT_ERR_NONE)
            return MQTT_RC_PAYLOAD_FORMAT_INVALID;
        in.props = wp->raw;
        in.props_len = wp->raw_len;
        if (wp->present & MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY)) r->will_delay_s = wp->will_delay_s;
        if (wp->present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY))
            r->will_expiry_s = wp->message_expiry_s; /* runs from when the will is published */
    }
    int rc = msg_new(&in, &r->will);
    if (rc == -ENOMEM) return MQTT_RC_SERVER_UNAVAILABLE;
    if (rc < 0) return MQTT_RC_MALFORMED_PACKET;
    return 0;
}

void handle_connect(struct conn *c, const struct mqtt_packet *pkt)
{
    struct broker *b = c->b;
    const struct config *cfg = b->cfg;
    const struct config_security *sec = &c->lst->cfg->security;
    const struct mqtt_connect *ct = &pkt->u.connect;
    uint8_t reason = 0;
    const char *why = NULL;

    c->version = ct->version; /* the parser's protocol level from now on */
    c->state = CONN_CONNECTING;
    struct connect_req *r = calloc(1, sizeof *r);
    if (!r) {
        conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
        return;
    }
    r->b = b;
    r->conn_id = c->id;
    r->clean_start = ct->clean_start;

    /* Client identifier [MQTT-3.1.3-6..8]. */
    if (ct->client_id.len == 0) {
        if (c->version == MQTT_V31 || !sec->allow_zero_length_clientid ||
            (c->version == MQTT_V311 && !ct->clean_start)) {
            reason = MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID;
            why = "empty client id not allowed";
            goto refuse;
        }
        c->client_id = connect_make_id(c);
        r->assigned_id = c->version == MQTT_V5;
    } else {
        c->client_id = session_id_new(ct->client_id.ptr, ct->client_id.len);
    }
    if (!c->client_id) {
        reason = MQTT_RC_SERVER_UNAVAILABLE;
        why = "out of memory";
        goto refuse;
    }
    if (ct->has_username) {
        c->username = malloc(ct->username.len + 1);
        if (!c->username) {
            reason = MQTT_RC_SERVER_UNAVAILABLE;
            why = "out of memory";
            goto refuse;
        }
        memcpy(c->username, ct->username.ptr, ct->username.len);
        c->username[ct->username.len] = '\0';
    }

    /* Keepalive: max_keepalive is told to MQTT 5 clients with Server Keep Alive
     * [MQTT-3.2.2-21]; a 3.x client asking for more is refused (mosquitto.conf(5)). */
    c->keepalive_s = ct->keepalive_s;
    if (cfg->max_keepalive < 65535 && c->version == MQTT_V5 &&
        (ct->keepalive_s > cfg->max_keepalive || ct->keepalive_s == 0)) {
        c->keepalive_s = cfg->max_keepalive;
        c->server_keepalive = true;
    } else if (c->version != MQTT_V5 && ct->keepalive_s > cfg->max_keepalive) {
        reason = MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID;
        why = "keepalive above max_keepalive";
        goto refuse;
    }

    /* MQTT 5 properties. */
    if (c->version == MQTT_V5) {
        const struct mqtt_props *p = &pkt->props;
        if (p->present & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY)) r->expiry_s = p->session_expiry_s;
        if (p->present & MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM))
            c->receive_max_out = p->receive_maximum;
        if (p->present & MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE))
            c->max_packet_out = p->maximum_packet_size;
        if ((p->present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM)) &&
            p->topic_alias_maximum > 0) {
            struct conn_ext *e = conn_ext(c);
            if (!e) {
                reason = MQTT_RC_SERVER_UNAVAILABLE;
                why = "out of memory";
                goto refuse;
            }
            alias_out_init(&e->alias_out, p->topic_alias_maximum);
        }
        if (p->present & MQTT_PROP_BIT(MQTT_PROP_REQUEST_PROBLEM_INFO))
            c->want_problem_info = p->request_problem_info != 0;
        if (p->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)) {
            /* No enhanced authentication method is supported. */
            reason = MQTT_RC_BAD_AUTHENTICATION_METHOD;
            why = "unsupported authentication method";
            goto refuse;
        }
    }

    reason = (uint8_t)connect_will(c, ct, r);
    if (reason) {
        why = "will refused";
        goto refuse;
    }

    /* Authentication. */
    if (!ct->has_username && !sec->allow_anonymous) {
        reason = MQTT_RC_NOT_AUTHORIZED;
        why = "anonymous clients not allowed";
        goto refuse;
    }
    /* A certificate identity is the authentication: the password file is not consulted for
     * it, as with Mosquitto. */
    if (ct->has_username && c->lst->auth && !c->lst->cfg->tls.use_identity_as_username &&
        !c->lst->cfg->tls.use_subject_as_username) {
        r->db = auth_db_ref(c->lst->auth);
        r->username = strdup(c->username);
        r->password_len = ct->has_password ? ct->password.len : 0;
        r->password = malloc(r->password_len + 1);
        if (!r->password || !r->username) {
            reason = MQTT_RC_SERVER_UNAVAILABLE;
            why = "out of memory";
            goto refuse;
        }
        /* A user name without a password has no password bytes (ptr NULL). */
        if (r->password_len) memcpy(r->password, ct->password.ptr, r->password_len);
        r->password[r->password_len] = '\0';
        r->work.data = r;
        conn_pause(c);
        int rc = uv_queue_work(b->loop, &r->work, connect_auth_work, connect_auth_after);
        if (rc < 0) {
            reason = MQTT_RC_SERVER_UNAVAILABLE;
            why = "cannot queue authentication";
            goto refuse;
        }
        b->auth_jobs++;
        return;
    }
    connect_finish(c, r);
    return;

refuse:
    connect_req_free(r);
    conn_close(c, reason, why);
}
