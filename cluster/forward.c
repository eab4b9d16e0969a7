/* Forwarding of proposals to the leader: the follower's bookkeeping and the frames
 * (forward.h). */
#include "forward.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hello.h"
#include "link.h"

struct fwd_item {
    cluster_applied_cb cb;
    void *data;
};

struct fwd_req {
    struct fwd_req *next;
    uint64_t id;
    uint32_t n, cap;
    struct fwd_item *items;
    uint8_t *frame; /* header (12 bytes) + the commands */
    size_t frame_len, frame_cap;
    uint64_t created_ms, sent_ms;
    uint64_t first_index;
    unsigned attempts;
};

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void fwd_init(struct fwd *f, uint64_t timeout_ms)
{
    memset(f, 0, sizeof *f);
    f->timeout_ms = timeout_ms;
    f->next_req_id = 1;
}

static void req_complete(struct fwd *f, struct fwd_req *r, int status)
{
    if (status != 0) f->n_failed += r->n;
    for (uint32_t i = 0; i < r->n; i++)
        if (r->items[i].cb)
            r->items[i].cb(r->items[i].data, status, status == 0 ? r->first_index + i : 0);
    free(r->items);
    free(r->frame);
    free(r);
}

static void list_fail(struct fwd *f, struct fwd_req **head, int status)
{
    while (*head) {
        struct fwd_req *r = *head;
        *head = r->next;
        req_complete(f, r, status);
    }
}

void fwd_close(struct fwd *f, int status)
{
    if (f->current) {
        f->current->next = f->queued_head;
        f->queued_head = f->current;
        f->current = NULL;
    }
    list_fail(f, &f->queued_head, status);
    f->queued_tail = NULL;
    list_fail(f, &f->sent, status);
    list_fail(f, &f->answered, status);
}

static void queue_push(struct fwd *f, struct fwd_req *r)
{
    r->next = NULL;
    if (f->queued_tail)
        f->queued_tail->next = r;
    else
        f->queued_head = r;
    f->queued_tail = r;
}

int fwd_add(struct fwd *f, const uint8_t *cmd, size_t len, cluster_applied_cb cb, void *data,
            uint64_t now_ms)
{
    struct fwd_req *r = f->current;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return -ENOMEM;
        r->frame_cap = 4096;
        r->frame = malloc(r->frame_cap);
        if (!r->frame) {
            free(r);
            return -ENOMEM;
        }
        r->frame_len = 12;
        r->created_ms = now_ms;
        f->current = r;
    }
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        struct fwd_item *it = realloc(r->items, cap * sizeof *it);
        if (!it) return -ENOMEM;
        r->items = it;
        r->cap = cap;
    }
    if (r->frame_len + 4 + len > r->frame_cap) {
        size_t cap = r->frame_cap;
        while (cap < r->frame_len + 4 + len)
            cap *= 2;
        uint8_t *nb = realloc(r->frame, cap);
        if (!nb) return -ENOMEM;
        r->frame = nb;
        r->frame_cap = cap;
    }
    put32(r->frame + r->frame_len, (uint32_t)len);
    memcpy(r->frame + r->frame_len + 4, cmd, len);
    r->frame_len += 4 + len;
    r->items[r->n++] = (struct fwd_item){cb, data};
    return 0;
}

void fwd_flush(struct fwd *f, uint64_t leader_id, uint64_t now_ms, fwd_send_fn send, void *ctx)
{
    if (f->current) {
        queue_push(f, f->current);
        f->current = NULL;
    }
    while (f->queued_head) {
        struct fwd_req *r = f->queued_head;
        if (leader_id == 0) {
            /* Nobody to send to: fail what waited too long, keep the rest in order. */
            if (now_ms - r->created_ms < f->timeout_ms) return;
            f->queued_head = r->next;
            if (!f->queued_head) f->queued_tail = NULL;
            req_complete(f, r, CLUSTER_ENOQUORUM);
            continue;
        }
        r->id = f->next_req_id++;
        hello_put64(r->frame, r->id);
        put32(r->frame + 8, r->n);
        int rc = send(ctx, leader_id, LINK_TYPE_FWD_PROPOSE, r->frame, r->frame_len);
        if (rc == -EAGAIN) {
            /* No link to the leader yet: keep the order, try again (until the timeout). */
            if (now_ms - r->created_ms < f->timeout_ms) return;
            rc = CLUSTER_ENOQUORUM;
        }
        f->queued_head = r->next;
        if (!f->queued_head) f->queued_tail = NULL;
        if (rc != 0) {
            req_complete(f, r, rc == -ENOBUFS ? CLUSTER_ENOQUORUM : rc);
            continue;
        }
        r->attempts++;
        r->sent_ms = now_ms;
        r->next = f->sent;
        f->sent = r;
        f->n_sent++;
    }
}

static struct fwd_req *take_sent(struct fwd *f, uint64_t id)
{
    for (struct fwd_req **pp = &f->sent; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct fwd_req *r = *pp;
            *pp = r->next;
            return r;
        }
    }
    return NULL;
}

int fwd_on_result(struct fwd *f, const uint8_t *buf, size_t len, uint64_t last_applied)
{
    if (len != FWD_RESULT_SIZE) return CLUSTER_ECORRUPT;
    uint64_t id = hello_get64(buf);
    int32_t status = (int32_t)get32(buf + 8);
    uint64_t first = hello_get64(buf + 12);
    uint32_t n = get32(buf + 20);
    struct fwd_req *r = take_sent(f, id);
    if (!r) return 0; /* already failed (leader change, timeout) */
    if (status == 0 && (n != r->n || first == 0)) {
        req_complete(f, r, CLUSTER_ECORRUPT);
        return CLUSTER_ECORRUPT;
    }
    if (status == CLUSTER_ENOTLEADER) {
        if (r->attempts >= FWD_MAX_ATTEMPTS) {
            req_complete(f, r, CLUSTER_ENOTLEADER);
        } else {
            f->n_retried++;
            queue_push(f, r);
        }
        return 0;
    }
    if (status != 0) {
        req_complete(f, r, status);
        return 0;
    }
    r->first_index = first;
    if (first + r->n - 1 <= last_applied) {
        req_complete(f, r, 0);
        return 0;
    }
    r->next = f->answered;
    f->answered = r;
    return 0;
}

void fwd_on_applied(struct fwd *f, uint64_t last_applied)
{
    struct fwd_req **pp = &f->answered;
    while (*pp) {
        struct fwd_req *r = *pp;
        if (r->first_index + r->n - 1 <= last_applied) {
            *pp = r->next;
            req_complete(f, r, 0);
        } else {
            pp = &r->next;
        }
    }
}

void fwd_on_leader_change(struct fwd *f, uint64_t leader_id)
{
    (void)leader_id;
    list_fail(f, &f->sent, CLUSTER_ELEADERSHIPLOST);
}

void fwd_expire(struct fwd *f, uint64_t now_ms)
{
    struct fwd_req **pp = &f->sent;
    while (*pp) {
        struct fwd_req *r = *pp;
        if (now_ms - r->sent_ms >= f->timeout_ms) {
            *pp = r->next;
            req_complete(f, r, CLUSTER_ELEADERSHIPLOST);
        } else {
            pp = &r->next;
        }
    }
}

bool fwd_busy(const struct fwd *f)
{
    return f->current || f->queued_head || f->sent || f->answered;
}

void fwd_take_queued(struct fwd *f,
                     void (*take)(void *ctx, const uint8_t *cmd, size_t len, cluster_applied_cb cb,
                                  void *data),
                     void *ctx)
{
    if (f->current) {
        queue_push(f, f->current);
        f->current = NULL;
    }
    while (f->queued_head) {
        struct fwd_req *r = f->queued_head;
        f->queued_head = r->next;
        size_t off = 12;
        for (uint32_t i = 0; i < r->n; i++) {
            uint32_t len = get32(r->frame + off);
            take(ctx, r->frame + off + 4, len, r->items[i].cb, r->items[i].data);
            off += 4 + len;
        }
        free(r->items);
        free(r->frame);
        free(r);
    }
    f->queued_tail = NULL;
}

int fwd_decode_propose(const uint8_t *buf, size_t len, uint64_t *req_id,
                       int (*each)(void *ctx, const uint8_t *cmd, size_t len), void *ctx)
{
    if (len < 12) return CLUSTER_ECORRUPT;
    *req_id = hello_get64(buf);
    uint32_t n = get32(buf + 8);
    if (n == 0) return CLUSTER_ECORRUPT;
    /* Check the whole frame before handing out anything. */
    size_t off = 12;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 4) return CLUSTER_ECORRUPT;
        uint32_t l = get32(buf + off);
        if (l == 0 || len - off - 4 < l) return CLUSTER_ECORRUPT;
        off += 4 + l;
    }
    if (off != len) return CLUSTER_ECORRUPT;
    off = 12;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t l = get32(buf + off);
        int rc = each(ctx, buf + off + 4, l);
        if (rc != 0) return rc;
        off += 4 + l;
    }
    return (int)n;
}

void fwd_encode_result(uint8_t *out, uint64_t req_id, int32_t status, uint64_t first_index,
                       uint32_t n)
{
    hello_put64(out, req_id);
    put32(out + 8, (uint32_t)status);
    hello_put64(out + 12, first_index);
    put32(out + 20, n);
}
