/* The retained-message index (see retain.h): a trie of topic levels, each node with at most
 * one message. Children sit in a small chained hash table per node. Matching follows the
 * filter: an exact level is one lookup, '+' visits every child, '#' visits a whole subtree
 * (iteratively, through parent pointers, so a deep topic cannot exhaust the stack). */
#include "retain.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "mem.h"

#define TOPIC_MAX 65535

struct rnode {
    struct rnode *parent;
    struct rnode *hnext;    /* chain in the parent's buckets */
    struct rnode **buckets; /* children */
    uint32_t nbuckets;      /* a power of two, or 0 */
    uint32_t nchildren;
    void *msg;
    uint32_t level_hash;
    uint32_t level_len;
    char level[];
};

struct retain {
    struct rnode *root;
    retain_release_cb release;
    size_t count;
    char *topic; /* [TOPIC_MAX]: the topic being rebuilt while matching */
};

static uint32_t hash_level(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static void release(struct retain *r, void *msg)
{
    if (r->release && msg) r->release(msg);
}

static struct rnode *node_new(struct rnode *parent, const char *level, size_t len, uint32_t h)
{
    struct rnode *n = mem_malloc(sizeof *n + len);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->parent = parent;
    n->level_hash = h;
    n->level_len = (uint32_t)len;
    memcpy(n->level, level, len);
    return n;
}

static struct rnode *child_find(const struct rnode *n, const char *level, size_t len)
{
    uint32_t h;
    struct rnode *c;
    if (!n->nbuckets) return NULL;
    h = hash_level(level, len);
    for (c = n->buckets[h & (n->nbuckets - 1)]; c; c = c->hnext)
        if (c->level_hash == h && c->level_len == len && !memcmp(c->level, level, len)) return c;
    return NULL;
}

/* Grows n's buckets; failure only costs longer chains. */
static void child_grow(struct rnode *n)
{
    uint32_t cap = n->nbuckets * 2, i;
    struct rnode **b = mem_calloc(cap, sizeof *b);
    if (!b) return;
    for (i = 0; i < n->nbuckets; i++) {
        struct rnode *c = n->buckets[i], *next;
        for (; c; c = next) {
            next = c->hnext;
            c->hnext = b[c->level_hash & (cap - 1)];
            b[c->level_hash & (cap - 1)] = c;
        }
    }
    mem_free(n->buckets);
    n->buckets = b;
    n->nbuckets = cap;
}

static struct rnode *child_get(struct rnode *n, const char *level, size_t len)
{
    struct rnode *c = child_find(n, level, len);
    uint32_t h;
    if (c) return c;
    if (!n->nbuckets) {
        n->buckets = mem_calloc(4, sizeof *n->buckets);
        if (!n->buckets) return NULL;
        n->nbuckets = 4;
    }
    h = hash_level(level, len);
    c = node_new(n, level, len, h);
    if (!c) {
        if (!n->nchildren) { /* the buckets made for it */
            mem_free(n->buckets);
            n->buckets = NULL;
            n->nbuckets = 0;
        }
        return NULL;
    }
    if (n->nchildren >= n->nbuckets) child_grow(n);
    c->hnext = n->buckets[h & (n->nbuckets - 1)];
    n->buckets[h & (n->nbuckets - 1)] = c;
    n->nchildren++;
    return c;
}

/* Frees n and its ancestors while they hold neither a message nor children. */
static void prune(struct retain *r, struct rnode *n)
{
    while (n && n != r->root && !n->msg && !n->nchildren) {
        struct rnode *p = n->parent;
        struct rnode **link = &p->buckets[n->level_hash & (p->nbuckets - 1)];
        while (*link != n)
            link = &(*link)->hnext;
        *link = n->hnext;
        if (--p->nchildren == 0) {
            mem_free(p->buckets);
            p->buckets = NULL;
            p->nbuckets = 0;
        }
        mem_free(n->buckets);
        mem_free(n);
        n = p;
    }
}

static bool topic_is_valid(const char *t, size_t len)
{
    return len > 0 && len <= TOPIC_MAX && !memchr(t, '+', len) && !memchr(t, '#', len);
}

/* The node of topic, created (create) or looked up; NULL if missing or without memory. */
static struct rnode *node_path(struct retain *r, const char *t, size_t len, bool create)
{
    struct rnode *n = r->root;
    size_t start = 0, i;
    for (i = 0; i <= len; i++) {
        if (i == len || t[i] == '/') {
            struct rnode *c =
                create ? child_get(n, t + start, i - start) : child_find(n, t + start, i - start);
            if (!c) {
                if (create) prune(r, n);
                return NULL;
            }
            n = c;
            start = i + 1;
        }
    }
    return n;
}

struct retain *retain_new(retain_release_cb release_cb)
{
    struct retain *r = mem_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->root = node_new(NULL, "", 0, 0);
    r->topic = mem_malloc(TOPIC_MAX);
    if (!r->root || !r->topic) {
        mem_free(r->root);
        mem_free(r->topic);
        mem_free(r);
        return NULL;
    }
    r->release = release_cb;
    return r;
}

/* The first child of n (in bucket order), or NULL. */
static struct rnode *first_child(const struct rnode *n, uint32_t from_bucket)
{
    uint32_t b;
    for (b = from_bucket; b < n->nbuckets; b++)
        if (n->buckets[b]) return n->buckets[b];
    return NULL;
}

/* The sibling after n in its parent's buckets, or NULL. */
static struct rnode *next_sibling(const struct rnode *n)
{
    const struct rnode *p = n->parent;
    if (n->hnext) return n->hnext;
    return first_child(p, (n->level_hash & (p->nbuckets - 1)) + 1);
}

void retain_free(struct retain *r)
{
    struct rnode *n;
    if (!r) return;
    /* Post-order, iteratively: descend to a leaf, free it, climb. */
    n = r->root;
    while (n) {
        struct rnode *c = first_child(n, 0);
        if (c) {
            n = c;
            continue;
        }
        release(r, n->msg);
        n->msg = NULL;
        if (n == r->root) {
            mem_free(n);
            break;
        }
        {
            struct rnode *p = n->parent;
            struct rnode **link = &p->buckets[n->level_hash & (p->nbuckets - 1)];
            while (*link != n)
                link = &(*link)->hnext;
            *link = n->hnext;
            if (--p->nchildren == 0) {
                mem_free(p->buckets);
                p->buckets = NULL;
                p->nbuckets = 0;
            }
            mem_free(n->buckets);
            mem_free(n);
            n = p;
        }
    }
    mem_free(r->topic);
    mem_free(r);
}

/* Unlinks n from its parent's buckets (the parent drops its buckets with its last child). */
static void unlink_child(struct rnode *n)
{
    struct rnode *p = n->parent;
    struct rnode **link = &p->buckets[n->level_hash & (p->nbuckets - 1)];
    while (*link != n)
        link = &(*link)->hnext;
    *link = n->hnext;
    if (--p->nchildren == 0) {
        mem_free(p->buckets);
        p->buckets = NULL;
        p->nbuckets = 0;
    }
}

/* Releases every message at top and below it and frees those nodes, top included. */
static void subtree_free(struct retain *r, struct rnode *top)
{
    struct rnode *n = top;
    for (;;) {
        struct rnode *c = first_child(n, 0);
        if (c) {
            n = c;
            continue;
        }
        if (n->msg) {
            release(r, n->msg);
            r->count--;
        }
        struct rnode *p = n->parent;
        bool last = n == top;
        unlink_child(n);
        mem_free(n->buckets);
        mem_free(n);
        if (last) return;
        n = p;
    }
}

size_t retain_clear_all(struct retain *r, const char *keep, size_t keep_len)
{
    size_t before = r->count;
    struct rnode *root = r->root;
    for (uint32_t b = 0; b < root->nbuckets; b++) {
        struct rnode *c = root->buckets[b];
        while (c) {
            struct rnode *next = c->hnext;
            if (!keep || c->level_len != keep_len || memcmp(c->level, keep, keep_len) != 0)
                subtree_free(r, c);
            c = next;
        }
    }
    return before - r->count;
}

int retain_set(struct retain *r, const char *topic, size_t topic_len, void *msg)
{
    struct rnode *n;
    if (!msg) return -EINVAL;
    if (!topic_is_valid(topic, topic_len)) {
        release(r, msg);
        return -EINVAL;
    }
    n = node_path(r, topic, topic_len, true);
    if (!n) {
        release(r, msg);
        return -ENOMEM;
    }
    if (n->msg)
        release(r, n->msg);
    else
        r->count++;
    n->msg = msg;
    return 0;
}

int retain_clear(struct retain *r, const char *topic, size_t topic_len)
{
    struct rnode *n;
    if (!topic_is_valid(topic, topic_len)) return -ENOENT;
    n = node_path(r, topic, topic_len, false);
    if (!n || !n->msg) return -ENOENT;
    release(r, n->msg);
    n->msg = NULL;
    r->count--;
    prune(r, n);
    return 0;
}

void *retain_get(const struct retain *r, const char *topic, size_t topic_len)
{
    struct rnode *n;
    if (!topic_is_valid(topic, topic_len)) return NULL;
    n = node_path((struct retain *)r, topic, topic_len, false);
    return n ? n->msg : NULL;
}

size_t retain_count(const struct retain *r)
{
    return r->count;
}

/* ---- Matching ---- */

struct rmatch {
    struct retain *r;
    retain_match_cb cb;
    void *ctx;
};

/* Appends child c's level to the topic of its parent (length len); returns the new length. */
static size_t topic_push(struct retain *r, const struct rnode *c, size_t len)
{
    if (c->parent != r->root) r->topic[len++] = '/';
    memcpy(r->topic + len, c->level, c->level_len);
    return len + c->level_len;
}

/* The topic length of c's parent, given c's (undoes topic_push). */
static size_t topic_pop(const struct retain *r, const struct rnode *c, size_t len)
{
    return len - c->level_len - (c->parent != r->root ? 1 : 0);
}

static bool is_dollar(const struct rnode *c)
{
    return c->level_len > 0 && c->level[0] == '$';
}

/* Every message at top and below it; at the root, topics beginning with '$' are left out
 * [MQTT-4.7.2-1]. len is top's topic length. */
static void match_subtree(struct rmatch *m, struct rnode *top, size_t len)
{
    struct retain *r = m->r;
    struct rnode *n = top;
    for (;;) {
        struct rnode *c;
        if (n->msg) m->cb(m->ctx, r->topic, len, n->msg);
        c = first_child(n, 0);
        while (c && n == r->root && is_dollar(c))
            c = next_sibling(c);
        if (c) {
            len = topic_push(r, c, len);
            n = c;
            continue;
        }
        /* No child: climb until a sibling is left. */
        for (;;) {
            struct rnode *sib;
            if (n == top) return;
            len = topic_pop(r, n, len);
            sib = next_sibling(n);
            while (sib && n->parent == r->root && is_dollar(sib))
                sib = next_sibling(sib);
            if (sib) {
                len = topic_push(r, sib, len);
                n = sib;
                break;
            }
            n = n->parent;
        }
    }
}

/* Matches the filter levels [p, end) (more: a level is left) below n, whose topic length is
 * len. Exact levels are followed in the loop, '+' by recursion over the children. */
static void match_from(struct rmatch *m, struct rnode *n, const char *p, const char *end, bool more,
                       size_t len)
{
    struct retain *r = m->r;
    for (;;) {
        const char *slash, *lvl_end, *next_p;
        size_t lvl_len;
        bool next_more;
        struct rnode *c;
        if (!more) {
            if (n->msg) m->cb(m->ctx, r->topic, len, n->msg);
            return;
        }
        slash = memchr(p, '/', (size_t)(end - p));
        lvl_end = slash ? slash : end;
        lvl_len = (size_t)(lvl_end - p);
        next_p = slash ? slash + 1 : end;
        next_more = slash != NULL;
        if (lvl_len == 1 && p[0] == '#') {
            match_subtree(m, n, len); /* n itself too: "a/#" matches "a" */
            return;
        }
        if (lvl_len == 1 && p[0] == '+') {
            uint32_t b;
            for (b = 0; b < n->nbuckets; b++) {
                for (c = n->buckets[b]; c; c = c->hnext) {
                    if (n == r->root && is_dollar(c)) continue; /* [MQTT-4.7.2-1] */
                    match_from(m, c, next_p, end, next_more, topic_push(r, c, len));
                }
            }
            return;
        }
        c = child_find(n, p, lvl_len);
        if (!c) return;
        len = topic_push(r, c, len);
        n = c;
        p = next_p;
        more = next_more;
    }
}

static bool filter_is_valid(const char *f, size_t len)
{
    size_t i, start = 0;
    if (len == 0 || len > TOPIC_MAX) return false;
    for (i = 0; i <= len; i++) {
        if (i == len || f[i] == '/') {
            size_t n = i - start;
            const char *lv = f + start;
            if ((memchr(lv, '+', n) || memchr(lv, '#', n)) &&
                (n != 1 || (lv[0] == '#' && i != len)))
                return false;
            start = i + 1;
        }
    }
    return true;
}

int retain_match(struct retain *r, const char *filter, size_t filter_len, retain_match_cb cb,
                 void *ctx)
{
    struct rmatch m = {.r = r, .cb = cb, .ctx = ctx};
    if (!filter_is_valid(filter, filter_len)) return -EINVAL;
    match_from(&m, r->root, filter, filter + filter_len, true, 0);
    return 0;
}
