/* MQTT over WebSocket: the HTTP/1.1 upgrade (http-parser) and framing (wslay); see ws.h. */
/* clang-format off */
#include <wolfssl/options.h> /* first: the library's build options (structure layouts) */
/* clang-format on */
#include "ws.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>

/* The upgrade request must fit in this (Mosquitto's websockets_headers_size default is 4096;
 * browsers send more cookies than that at times). */
#define WS_MAX_REQUEST 8192

struct ws_conn {
    wslay_event_context_ptr ctx; /* NULL until the upgrade is done */
    ws_out_fn out;
    void *out_arg;
    size_t max_msg;
    bool failed;
    /* the upgrade request, until its end */
    char *req;
    size_t reqlen;
    /* during ws_conn_input */
    const uint8_t *in;
    size_t inlen;
    ws_deliver_fn deliver;
    void *deliver_arg;
    int deliver_rc;
    bool text_frame;
};

/* ---- the upgrade ---- */

struct ws_req {
    bool in_value; /* last callback was a value */
    char field[64];
    bool upgrade_ws, connection_upgrade, version_13, has_key, proto_mqtt, proto_v31;
    char key[64];
};

static bool ws_token_in(const char *list, size_t len, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(list + start, token, tl) == 0) return true;
    }
    return false;
}

static int ws_on_field(http_parser *hp, const char *at, size_t len)
{
    struct ws_req *r = hp->data;
    size_t n = len < sizeof r->field - 1 ? len : sizeof r->field - 1;
    memcpy(r->field, at, n);
    r->field[n] = '\0';
    return 0;
}

static int ws_on_value(http_parser *hp, const char *at, size_t len)
{
    struct ws_req *r = hp->data;
    if (strcasecmp(r->field, "Upgrade") == 0) {
        r->upgrade_ws = ws_token_in(at, len, "websocket");
    } else if (strcasecmp(r->field, "Connection") == 0) {
        r->connection_upgrade |= ws_token_in(at, len, "upgrade");
    } else if (strcasecmp(r->field, "Sec-WebSocket-Version") == 0) {
        r->version_13 = len == 2 && memcmp(at, "13", 2) == 0;
    } else if (strcasecmp(r->field, "Sec-WebSocket-Key") == 0) {
        if (len < sizeof r->key) {
            memcpy(r->key, at, len);
            r->key[len] = '\0';
            r->has_key = true;
        }
    } else if (strcasecmp(r->field, "Sec-WebSocket-Protocol") == 0) {
        r->proto_mqtt |= ws_token_in(at, len, "mqtt");
        r->proto_v31 |= ws_token_in(at, len, "mqttv3.1");
    }
    return 0;
}

static void ws_refuse(struct ws_conn *w, const char *why, char *err, size_t errlen)
{
    static const char resp[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Connection: close\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "Content-Length: 0\r\n\r\n";
    w->out(w->out_arg, (const uint8_t *)resp, sizeof resp - 1);
    snprintf(err, errlen, "WebSocket upgrade refused: %s", why);
    w->failed = true;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user)
{
    struct ws_conn *w = user;
    (void)flags;
    if (w->inlen == 0 || w->deliver_rc < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = w->inlen < len ? w->inlen : len;
    memcpy(buf, w->in, n);
    w->in += n;
    w->inlen -= n;
    return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user)
{
    struct ws_conn *w = user;
    (void)flags;
    if (w->out(w->out_arg, data, len) < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user)
{
    struct ws_conn *w = user;
    if (arg->opcode == WSLAY_BINARY_FRAME) {
        if (w->deliver_rc >= 0 && arg->msg_length > 0)
            w->deliver_rc = w->deliver(w->deliver_arg, arg->msg, arg->msg_length);
    } else if (arg->opcode == WSLAY_TEXT_FRAME) {
        /* [MQTT-6.0.0-1]: MQTT travels in binary frames only. */
        w->text_frame = true;
        wslay_event_queue_close(ctx, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
    }
}

/* Parses the complete request in w->req[0..end) and answers it. */
static int ws_upgrade(struct ws_conn *w, size_t end, char *err, size_t errlen)
{
    struct ws_req r = {0};
    http_parser hp;
    http_parser_init(&hp, HTTP_REQUEST);
    hp.data = &r;
    http_parser_settings st = {0};
    st.on_header_field = ws_on_field;
    st.on_header_value = ws_on_value;
    size_t n = http_parser_execute(&hp, &st, w->req, end);
    if (HTTP_PARSER_ERRNO(&hp) != HPE_OK || n != end) {
        char why[160];
        snprintf(why, sizeof why, "malformed HTTP request (%s)",
                 http_errno_description(HTTP_PARSER_ERRNO(&hp)));
        ws_refuse(w, why, err, errlen);
        return -EPROTO;
    }
    const char *why = NULL;
    if (hp.method != HTTP_GET)
        why = "not a GET request";
    else if (hp.http_major != 1 || hp.http_minor < 1)
        why = "not HTTP/1.1";
    else if (!r.upgrade_ws || !r.connection_upgrade || !hp.upgrade)
        why = "no WebSocket upgrade";
    else if (!r.version_13)
        why = "Sec-WebSocket-Version is not 13";
    else if (!r.has_key)
        why = "no Sec-WebSocket-Key";
    else if (!r.proto_mqtt && !r.proto_v31)
        why = "Sec-WebSocket-Protocol does not offer mqtt";
    uint8_t raw[32];
    word32 rawlen = sizeof raw;
    if (!why && (Base64_Decode((const byte *)r.key, (word32)strlen(r.key), raw, &rawlen) != 0 ||
                 rawlen != 16))
        why = "Sec-WebSocket-Key is not 16 bytes in base64";
    if (why) {
        ws_refuse(w, why, err, errlen);
        return -EPROTO;
    }
    /* Sec-WebSocket-Accept = base64(SHA-1(key + the RFC 6455 GUID)). */
    char cat[128];
    int catlen = snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", r.key);
    uint8_t sha[20];
    uint8_t accept[64];
    word32 alen = sizeof accept - 1;
    if (wc_ShaHash((const byte *)cat, (word32)catlen, sha) != 0 ||
        Base64_Encode_NoNl(sha, sizeof sha, accept, &alen) != 0) {
        ws_refuse(w, "cannot compute Sec-WebSocket-Accept", err, errlen);
        return -EPROTO;
    }
    accept[alen] = '\0';
    char resp[256];
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n"
                      "Sec-WebSocket-Protocol: %s\r\n\r\n",
                      (const char *)accept, r.proto_mqtt ? "mqtt" : "mqttv3.1");
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = ws_recv_cb,
        .send_callback = ws_send_cb,
        .on_msg_recv_callback = ws_msg_cb,
    };
    if (wslay_event_context_server_init(&w->ctx, &cbs, w) != 0) {
        w->ctx = NULL;
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    wslay_event_config_set_max_recv_msg_length(w->ctx, w->max_msg);
    if (w->out(w->out_arg, (const uint8_t *)resp, (size_t)rl) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* ---- public ---- */

struct ws_conn *ws_conn_new(ws_out_fn out, void *arg, size_t max_msg)
{
    struct ws_conn *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->out = out;
    w->out_arg = arg;
    w->max_msg = max_msg;
    return w;
}

void ws_conn_free(struct ws_conn *w)
{
    if (!w) return;
    if (w->ctx) wslay_event_context_free(w->ctx);
    free(w->req);
    free(w);
}

/* Runs the frames in data through wslay. */
static int ws_frames(struct ws_conn *w, const uint8_t *data, size_t len, ws_deliver_fn deliver,
                     void *arg, char *err, size_t errlen)
{
    w->in = data;
    w->inlen = len;
    w->deliver = deliver;
    w->deliver_arg = arg;
    w->deliver_rc = 0;
    int r = wslay_event_recv(w->ctx);
    w->in = NULL;
    w->inlen = 0;
    if (w->deliver_rc < 0) return w->deliver_rc;
    /* Pongs and close replies go out now. */
    if (wslay_event_want_write(w->ctx)) wslay_event_send(w->ctx);
    if (r != 0) {
        snprintf(err, errlen, "WebSocket failure (%d)", r);
        return -EPROTO;
    }
    if (w->text_frame) {
        snprintf(err, errlen, "WebSocket text frame (MQTT needs binary frames)");
        return -EPROTO;
    }
    if (!wslay_event_get_read_enabled(w->ctx)) {
        if (wslay_event_get_close_received(w->ctx)) {
            snprintf(err, errlen, "WebSocket closed by the client (status %u)",
                     wslay_event_get_status_code_received(w->ctx));
            return -EPIPE;
        }
        snprintf(err, errlen, "malformed WebSocket frame");
        return -EPROTO;
    }
    return 0;
}

int ws_conn_input(struct ws_conn *w, const uint8_t *data, size_t len, ws_deliver_fn deliver,
                  void *arg, char *err, size_t errlen)
{
    if (w->failed) return -EPROTO;
    if (w->ctx) return ws_frames(w, data, len, deliver, arg, err, errlen);
    /* Collect the request up to its blank line. */
    size_t take = len;
    if (w->reqlen + take > WS_MAX_REQUEST) take = WS_MAX_REQUEST - w->reqlen;
    if (!w->req && !(w->req = malloc(WS_MAX_REQUEST))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t from = w->reqlen > 3 ? w->reqlen - 3 : 0;
    memcpy(w->req + w->reqlen, data, take);
    w->reqlen += take;
    size_t end = 0;
    for (size_t i = from; i + 4 <= w->reqlen; i++) {
        if (memcmp(w->req + i, "\r\n\r\n", 4) == 0) {
            end = i + 4;
            break;
        }
    }
    if (end == 0) {
        if (w->reqlen >= WS_MAX_REQUEST) {
            ws_refuse(w, "request headers too large", err, errlen);
            return -EPROTO;
        }
        return 0;
    }
    int rc = ws_upgrade(w, end, err, errlen);
    if (rc < 0) return rc;
    /* What followed the request (already frames) is taken from the caller's bytes. */
    size_t used = take - (w->reqlen - end);
    free(w->req);
    w->req = NULL;
    w->reqlen = 0;
    if (used < len) return ws_frames(w, data + used, len - used, deliver, arg, err, errlen);
    return 0;
}

int ws_conn_write(struct ws_conn *w, const uint8_t *data, size_t len)
{
    if (!w->ctx || w->failed) return -EPIPE;
    struct wslay_event_msg m = {.opcode = WSLAY_BINARY_FRAME, .msg = data, .msg_length = len};
    int r = wslay_event_queue_msg(w->ctx, &m);
    if (r == WSLAY_ERR_NO_MORE_MSG) return -EPIPE;
    if (r != 0) return -ENOMEM;
    return wslay_event_send(w->ctx) == 0 ? 0 : -ENOMEM;
}

void ws_conn_shutdown(struct ws_conn *w)
{
    if (!w->ctx || wslay_event_get_close_sent(w->ctx)) return;
    if (wslay_event_queue_close(w->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0) == 0)
        wslay_event_send(w->ctx);
}
