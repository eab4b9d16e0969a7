/* The subscription index (see subs.h).
 *
 * Layout: a trie whose nodes are filter levels. A node's exact-level children sit in a small
 * chained hash table; its '+' and '#' children have pointers of their own, so that matching
 * a topic follows at most three branches per level: the exact level, '+', and '#'. A node
 * holds its non-shared subscriptions in a list, and its shared groups (one per group name)
 * each with a member list and a round-robin cursor. Every subscription is also on its owner's
 * list (owners are found through a hash table keyed by the owner pointer), which makes
 * "remove all of an owner" proportional to that owner's subscriptions.
 *
 * Merging per owner without sorting: each owner record carries a generation stamp. A collect
 * bumps the index's generation; the first match of an owner stamps it and appends a target,
 * later matches of the same owner find the target by the index stored beside the stamp. The
 * subscription identifiers are gathered in a second pass over a scratch list of (target, id)
 * pairs into one array, each target's ids contiguous. All scratch arrays belong to the index
 * and only grow. */
#include "subs.h"

#include <errno.h>
#include <string.h>

#include "mem.h"

#define SHARE_PREFIX     "$share/"
#define SHARE_PREFIX_LEN 7

struct owner_rec;
struct group;

struct entry {
    struct entry *prev, *next;   /* in its node's list or its group's member list */
    struct entry *oprev, *onext; /* in its owner's list */
    struct owner_rec *own;
    struct node *node;
    struct group *group; /* NULL for a non-shared subscription */
    uint32_t sub_id;
    uint8_t options;
    uint32_t filter_len;
    char filter[];
};

struct owner_rec {
    struct owner_rec *hnext;
    void *owner;
    struct entry *first, *last;
    size_t count;
    uint32_t gen;    /* collect generation that last matched this owner */
    uint32_t target; /* its target index in that collect */
};

struct group {
    struct group *next; /* in its node's list */
    struct entry *first, *last;
    struct entry *cursor; /* the member to try first next time; NULL: the first */
    size_t count;
    size_t name_len;
    char name[];
};

struct node {
    struct node *parent;
    struct node *hnext;    /* chain in the parent's buckets */
    struct node **buckets; /* exact-level children */
    uint32_t nbuckets;     /* a power of two, or 0 */
    uint32_t nchildren;
    struct node *plus, *hash;
    struct entry *subs; /* non-shared subscriptions */
    size_t nsubs;
    struct group *groups;
    uint32_t level_hash;
    uint32_t level_len;
    char level[];
};

struct pair {
    uint32_t target;
    uint32_t sub_id;
};

struct subs {
    struct node *root;
    struct owner_rec **owners;
    size_t nowners_buckets; /* power of two */
    size_t nowners;
    size_t count;
    size_t shared_count; /* of count, the shared subscriptions */
    uint32_t gen;
    /* collect scratch */
    struct subs_target *targets;
    size_t targets_cap;
    struct pair *pairs;
    size_t pairs_cap;
    uint32_t *ids;
    size_t ids_cap;
};

/* A parsed filter: the group (or none) and the filter proper. */
struct parsed {
    const char *group;
    size_t group_len;
    const char *filter;
    size_t filter_len;
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

static size_t hash_owner(const void *owner)
{
    uint64_t v = (uint64_t)(uintptr_t)owner * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(v >> 32);
}

/* Checks filter and splits off "$share/<group>/". */
static int parse_filter(const char *f, size_t len, struct parsed *out)
{
    size_t i, level_start = 0;
    if (len == 0 || len > UINT16_MAX) return -EINVAL;
    out->group = NULL;
    out->group_len = 0;
    if (len >= SHARE_PREFIX_LEN && !memcmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN)) {
        const char *g = f + SHARE_PREFIX_LEN;
        const char *slash = memchr(g, '/', len - SHARE_PREFIX_LEN);
        if (!slash || slash == g) return -EINVAL;
        for (i = 0; g + i < slash; i++)
            if (g[i] == '+' || g[i] == '#') return -EINVAL;
        out->group = g;
        out->group_len = (size_t)(slash - g);
        f = slash + 1;
        len -= (size_t)(f - (g - SHARE_PREFIX_LEN));
        if (len == 0) return -EINVAL;
    }
    out->filter = f;
    out->filter_len = len;
    for (i = 0; i <= len; i++) {
        if (i == len || f[i] == '/') {
            size_t n = i - level_start;
            const char *lv = f + level_start;
            if (memchr(lv, '+', n) || memchr(lv, '#', n)) {
                if (n != 1) return -EINVAL;
                if (lv[0] == '#' && i != len) /* '#' only last [MQTT-4.7.1-2] */
                    return -EINVAL;
            }
            level_start = i + 1;
        }
    }
    return 0;
}

/* ---- Trie nodes ---- */

static struct node *node_new(struct node *parent, const char *level, size_t len, uint32_t h)
{
    struct node *n = mem_malloc(sizeof *n + len + 1);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->parent = parent;
    n->level_hash = h;
    n->level_len = (uint32_t)len;
    memcpy(n->level, level, len);
    n->level[len] = '\0';
    return n;
}

static struct node *child_find(const struct node *n, const char *level, size_t len, uint32_t h)
{
    struct node *c;
    if (!n->nbuckets) return NULL;
    for (c = n->buckets[h & (n->nbuckets - 1)]; c; c = c->hnext)
        if (c->level_hash == h && c->level_len == len && !memcmp(c->level, level, len)) return c;
    return NULL;
}

/* Grows n's buckets to hold more children; failure only costs longer chains. */
static void child_grow(struct node *n)
{
    uint32_t cap = n->nbuckets * 2, i;
    struct node **b = mem_calloc(cap, sizeof *b);
    if (!b) return;
    for (i = 0; i < n->nbuckets; i++) {
        struct node *c = n->buckets[i], *next;
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

/* The child of n for level, created if missing; NULL without memory. */
static struct node *child_get(struct node *n, const char *level, size_t len)
{
    struct node *c, **slot;
    uint32_t h;
    if (len == 1 && (level[0] == '+' || level[0] == '#')) {
        slot = level[0] == '+' ? &n->plus : &n->hash;
        if (!*slot) *slot = node_new(n, level, 1, 0);
        return *slot;
    }
    h = hash_level(level, len);
    c = child_find(n, level, len, h);
    if (c) return c;
    if (!n->nbuckets) {
        n->buckets = mem_calloc(4, sizeof *n->buckets);
        if (!n->buckets) return NULL;
        n->nbuckets = 4;
    }
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

static bool node_is_empty(const struct node *n)
{
    return !n->nchildren && !n->plus && !n->hash && !n->subs && !n->groups;
}

/* Frees n and its ancestors while they are empty (the root stays). */
static void prune(struct subs *s, struct node *n)
{
    while (n && n != s->root && node_is_empty(n)) {
        struct node *p = n->parent;
        if (p->plus == n) {
            p->plus = NULL;
        } else if (p->hash == n) {
            p->hash = NULL;
        } else {
            struct node **link = &p->buckets[n->level_hash & (p->nbuckets - 1)];
            while (*link != n)
                link = &(*link)->hnext;
            *link = n->hnext;
            p->nchildren--;
            if (!p->nchildren) {
                mem_free(p->buckets);
                p->buckets = NULL;
                p->nbuckets = 0;
            }
        }
        mem_free(n->buckets);
        mem_free(n);
        n = p;
    }
}

/* The node of a filter, created (create) or only looked up. NULL when missing or without
 * memory; with create, nodes made before a failure are pruned again. */
static struct node *node_path(struct subs *s, const char *f, size_t len, bool create)
{
    struct node *n = s->root;
    size_t start = 0, i;
    for (i = 0; i <= len; i++) {
        if (i == len || f[i] == '/') {
            const char *lv = f + start;
            size_t n_len = i - start;
            struct node *c;
            if (create) {
                c = child_get(n, lv, n_len);
                if (!c) {
                    prune(s, n);
                    return NULL;
                }
            } else if (n_len == 1 && lv[0] == '+') {
                c = n->plus;
            } else if (n_len == 1 && lv[0] == '#') {
                c = n->hash;
            } else {
                c = child_find(n, lv, n_len, hash_level(lv, n_len));
            }
            if (!c) return NULL;
            n = c;
            start = i + 1;
        }
    }
    return n;
}

/* ---- Owners ---- */

static struct owner_rec *owner_find(const struct subs *s, const void *owner)
{
    struct owner_rec *o;
    for (o = s->owners[hash_owner(owner) & (s->nowners_buckets - 1)]; o; o = o->hnext)
        if (o->owner == owner) return o;
    return NULL;
}

static void owners_grow(struct subs *s)
{
    size_t cap = s->nowners_buckets * 2, i;
    struct owner_rec **b = mem_calloc(cap, sizeof *b);
    if (!b) return; /* longer chains, still correct */
    for (i = 0; i < s->nowners_buckets; i++) {
        struct owner_rec *o = s->owners[i], *next;
        for (; o; o = next) {
            next = o->hnext;
            o->hnext = b[hash_owner(o->owner) & (cap - 1)];
            b[hash_owner(o->owner) & (cap - 1)] = o;
        }
    }
    mem_free(s->owners);
    s->owners = b;
    s->nowners_buckets = cap;
}

static struct owner_rec *owner_add(struct subs *s, void *owner)
{
    struct owner_rec *o = mem_calloc(1, sizeof *o);
    size_t b;
    if (!o) return NULL;
    o->owner = owner;
    if (s->nowners >= s->nowners_buckets) owners_grow(s);
    b = hash_owner(owner) & (s->nowners_buckets - 1);
    o->hnext = s->owners[b];
    s->owners[b] = o;
    s->nowners++;
    return o;
}

static void owner_drop(struct subs *s, struct owner_rec *o)
{
    struct owner_rec **link = &s->owners[hash_owner(o->owner) & (s->nowners_buckets - 1)];
    while (*link != o)
        link = &(*link)->hnext;
    *link = o->hnext;
    s->nowners--;
    mem_free(o);
}

/* ---- Lists ---- */

static void list_append(struct entry **first, struct entry **last, struct entry *e)
{
    e->next = NULL;
    e->prev = last ? *last : NULL;
    if (last) {
        if (*last)
            (*last)->next = e;
        else
            *first = e;
        *last = e;
    } else {
        /* node lists keep no tail: push at the front */
        e->next = *first;
        if (*first) (*first)->prev = e;
        *first = e;
    }
}

static void list_unlink(struct entry **first, struct entry **last, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        *first = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else if (last)
        *last = e->prev;
}

/* Owner's subscription at node n in group (name) or not shared; NULL if none. */
static struct entry *entry_find(const struct node *n, const struct owner_rec *o,
                                const struct parsed *p)
{
    struct entry *e;
    const struct group *g = NULL;
    size_t here;
    if (p->group) {
        for (g = n->groups; g; g = g->next)
            if (g->name_len == p->group_len && !memcmp(g->name, p->group, p->group_len)) break;
        if (!g) return NULL;
        here = g->count;
    } else {
        here = n->nsubs;
    }
    if (o->count <= here) {
        for (e = o->first; e; e = e->onext)
            if (e->node == n && e->group == g) return e;
        return NULL;
    }
    for (e = g ? g->first : n->subs; e; e = e->next)
        if (e->own == o) return e;
    return NULL;
}

static void info_of(const struct entry *e, struct subs_info *out)
{
    out->owner = e->own->owner;
    out->filter = e->filter;
    out->filter_len = e->filter_len;
    out->group = e->group ? e->group->name : NULL;
    out->group_len = e->group ? e->group->name_len : 0;
    out->options = e->options;
    out->sub_id = e->sub_id;
}

/* Unlinks e from everything, frees it and whatever became empty. */
static void entry_remove(struct subs *s, struct entry *e)
{
    struct node *n = e->node;
    struct owner_rec *o = e->own;
    struct group *g = e->group;
    if (g) {
        if (g->cursor == e) g->cursor = e->next;
        list_unlink(&g->first, &g->last, e);
        s->shared_count--;
        if (--g->count == 0) {
            struct group **link = &n->groups;
            while (*link != g)
                link = &(*link)->next;
            *link = g->next;
            mem_free(g);
        }
    } else {
        list_unlink(&n->subs, NULL, e);
        n->nsubs--;
    }
    if (e->oprev)
        e->oprev->onext = e->onext;
    else
        o->first = e->onext;
    if (e->onext)
        e->onext->oprev = e->oprev;
    else
        o->last = e->oprev;
    if (--o->count == 0) owner_drop(s, o);
    mem_free(e);
    s->count--;
    prune(s, n);
}

/* ---- Public ---- */

struct subs *subs_new(void)
{
    struct subs *s = mem_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->root = node_new(NULL, "", 0, 0);
    s->owners = mem_calloc(16, sizeof *s->owners);
    if (!s->root || !s->owners) {
        mem_free(s->root);
        mem_free(s->owners);
        mem_free(s);
        return NULL;
    }
    s->nowners_buckets = 16;
    return s;
}

void subs_free(struct subs *s)
{
    size_t i;
    if (!s) return;
    for (i = 0; i < s->nowners_buckets; i++)
        while (s->owners[i])
            entry_remove(s, s->owners[i]->first);
    mem_free(s->root->buckets);
    mem_free(s->root);
    mem_free(s->owners);
    mem_free(s->targets);
    mem_free(s->pairs);
    mem_free(s->ids);
    mem_free(s);
}

int subs_add(struct subs *s, void *owner, const char *filter, size_t filter_len, uint8_t options,
             uint32_t sub_id, bool *replaced)
{
    struct parsed p;
    struct owner_rec *o;
    struct node *n;
    struct group *g = NULL;
    struct entry *e;
    bool new_owner = false;
    int rc = parse_filter(filter, filter_len, &p);

    if (replaced) *replaced = false;
    if (rc < 0) return rc;
    o = owner_find(s, owner);
    if (o) {
        n = node_path(s, p.filter, p.filter_len, false);
        e = n ? entry_find(n, o, &p) : NULL;
        if (e) {
            e->options = options;
            e->sub_id = sub_id;
            if (replaced) *replaced = true;
            return 0;
        }
    }
    e = mem_malloc(sizeof *e + filter_len + 1);
    if (!e) return -ENOMEM;
    memset(e, 0, sizeof *e);
    memcpy(e->filter, filter, filter_len);
    e->filter[filter_len] = '\0';
    e->filter_len = (uint32_t)filter_len;
    e->options = options;
    e->sub_id = sub_id;
    if (!o) {
        o = owner_add(s, owner);
        if (!o) goto fail_entry;
        new_owner = true;
    }
    n = node_path(s, p.filter, p.filter_len, true);
    if (!n) goto fail_owner;
    if (p.group) {
        for (g = n->groups; g; g = g->next)
            if (g->name_len == p.group_len && !memcmp(g->name, p.group, p.group_len)) break;
        if (!g) {
            g = mem_calloc(1, sizeof *g + p.group_len + 1);
            if (!g) {
                prune(s, n);
                goto fail_owner;
            }
            g->name_len = p.group_len;
            memcpy(g->name, p.group, p.group_len);
            g->next = n->groups;
            n->groups = g;
        }
        list_append(&g->first, &g->last, e);
        g->count++;
        s->shared_count++;
    } else {
        list_append(&n->subs, NULL, e);
        n->nsubs++;
    }
    e->node = n;
    e->group = g;
    e->own = o;
    e->oprev = o->last;
    if (o->last)
        o->last->onext = e;
    else
        o->first = e;
    o->last = e;
    o->count++;
    s->count++;
    return 0;

fail_owner:
    if (new_owner) owner_drop(s, o);
fail_entry:
    mem_free(e);
    return -ENOMEM;
}

int subs_remove(struct subs *s, void *owner, const char *filter, size_t filter_len)
{
    struct parsed p;
    struct owner_rec *o;
    struct node *n;
    struct entry *e;
    if (parse_filter(filter, filter_len, &p) < 0) return -ENOENT;
    o = owner_find(s, owner);
    if (!o) return -ENOENT;
    n = node_path(s, p.filter, p.filter_len, false);
    e = n ? entry_find(n, o, &p) : NULL;
    if (!e) return -ENOENT;
    entry_remove(s, e);
    return 0;
}

size_t subs_remove_owner(struct subs *s, void *owner)
{
    struct owner_rec *o = owner_find(s, owner);
    size_t count, i;
    if (!o) return 0;
    count = o->count;
    for (i = 0; i < count; i++)
        entry_remove(s, o->first); /* the last removal frees o */
    return count;
}

int subs_find(const struct subs *s, void *owner, const char *filter, size_t filter_len,
              struct subs_info *out)
{
    struct parsed p;
    struct owner_rec *o;
    struct node *n;
    struct entry *e;
    if (parse_filter(filter, filter_len, &p) < 0) return -ENOENT;
    o = owner_find(s, owner);
    if (!o) return -ENOENT;
    n = node_path((struct subs *)s, p.filter, p.filter_len, false);
    e = n ? entry_find(n, o, &p) : NULL;
    if (!e) return -ENOENT;
    info_of(e, out);
    return 0;
}

void subs_foreach_owner(const struct subs *s, void *owner, subs_match_cb cb, void *ctx)
{
    struct owner_rec *o = owner_find(s, owner);
    struct entry *e;
    struct subs_info info;
    for (e = o ? o->first : NULL; e; e = e->onext) {
        info_of(e, &info);
        cb(ctx, &info);
    }
}

size_t subs_count(const struct subs *s)
{
    return s->count;
}

size_t subs_shared_count(const struct subs *s)
{
    return s->shared_count;
}

size_t subs_owner_count(const struct subs *s, void *owner)
{
    struct owner_rec *o = owner_find(s, owner);
    return o ? o->count : 0;
}

/* ---- Matching ---- */

/* What a walk does with each matching node. */
struct walk {
    struct subs *s;
    subs_able_cb able;
    void *able_ctx;
    void (*entry_cb)(struct walk *w, struct entry *e); /* a non-shared subscription */
    void (*group_cb)(struct walk *w, struct entry *e); /* the chosen member of a group */
    /* subs_match */
    subs_match_cb cb;
    void *ctx;
    /* subs_collect */
    void *publisher;
    size_t ntargets, npairs;
    bool failed;
};

/* The next member of g round-robin among the able ones, advancing the cursor; or NULL. */
static struct entry *group_pick(struct walk *w, struct group *g)
{
    struct entry *e = g->cursor ? g->cursor : g->first;
    size_t tried;
    for (tried = 0; tried < g->count; tried++) {
        if (!w->able || w->able(w->able_ctx, e->own->owner)) {
            g->cursor = e->next;
            return e;
        }
        e = e->next ? e->next : g->first;
    }
    return NULL;
}

bool subs_able_none(void *ctx, void *owner)
{
    (void)ctx;
    (void)owner;
    return false;
}

static void visit(struct walk *w, struct node *n)
{
    struct entry *e, *next;
    struct group *g;
    for (e = n->subs; e; e = next) {
        next = e->next;
        w->entry_cb(w, e);
    }
    if (w->able == subs_able_none) return;
    for (g = n->groups; g; g = g->next) {
        e = group_pick(w, g);
        if (e) w->group_cb(w, e);
    }
}

/* Visits the nodes matching the topic levels in [p, end) below n. more: whether a level is
 * left (a topic "a/" has a last, empty, level). first: n is the root. The exact branch is
 * followed in the loop, '+' branches by recursion, so the depth of recursion is bounded by
 * the number of '+' levels of the filters in the index. */
static void walk_from(struct walk *w, struct node *n, const char *p, const char *end, bool more,
                      bool dollar)
{
    bool first = true;
    for (;;) {
        const char *slash, *lvl_end, *next_p;
        bool next_more;
        bool wild_ok = !(first && dollar); /* [MQTT-4.7.2-1] */
        struct node *c;
        if (n->hash && wild_ok)
            visit(w, n->hash); /* "a/#" matches "a" and everything below it [MQTT-4.7.1-2] */
        if (!more) {
            visit(w, n);
            return;
        }
        slash = memchr(p, '/', (size_t)(end - p));
        lvl_end = slash ? slash : end;
        next_p = slash ? slash + 1 : end;
        next_more = slash != NULL;
        if (n->plus && wild_ok) walk_from(w, n->plus, next_p, end, next_more, false);
        c = child_find(n, p, (size_t)(lvl_end - p), hash_level(p, (size_t)(lvl_end - p)));
        if (!c) return;
        n = c;
        p = next_p;
        more = next_more;
        first = false;
        dollar = false;
    }
}

static void walk(struct walk *w, const char *topic, size_t len)
{
    walk_from(w, w->s->root, topic, topic + len, true, len > 0 && topic[0] == '$');
}

static void match_entry_cb(struct walk *w, struct entry *e)
{
    struct subs_info info;
    info_of(e, &info);
    w->cb(w->ctx, &info);
}

void subs_match(struct subs *s, const char *topic, size_t topic_len, subs_able_cb able,
                void *able_ctx, subs_match_cb cb, void *ctx)
{
    struct walk w = {.s = s, .able = able, .able_ctx = able_ctx, .cb = cb, .ctx = ctx};
    w.entry_cb = match_entry_cb;
    w.group_cb = match_entry_cb;
    if (topic_len == 0) return;
    walk(&w, topic, topic_len);
}

/* Makes room for n elements of size sz in *arr (capacity *cap); false without memory. */
static bool scratch_reserve(void **arr, size_t *cap, size_t n, size_t sz)
{
    size_t c = *cap ? *cap : 16;
    void *p;
    if (n <= *cap) return true;
    while (c < n)
        c *= 2;
    p = mem_realloc(*arr, c * sz);
    if (!p) return false;
    *arr = p;
    *cap = c;
    return true;
}

static struct subs_target *target_new(struct walk *w, struct entry *e, bool shared)
{
    struct subs *s = w->s;
    struct subs_target *t;
    if (!scratch_reserve((void **)&s->targets, &s->targets_cap, w->ntargets + 1,
                         sizeof *s->targets)) {
        w->failed = true;
        return NULL;
    }
    t = &s->targets[w->ntargets++];
    t->owner = e->own->owner;
    t->qos = 0;
    t->retain_as_published = false;
    t->shared = shared;
    t->sub_id_count = 0;
    t->sub_ids = NULL;
    t->filter = shared ? e->filter : NULL;
    t->filter_len = shared ? e->filter_len : 0;
    return t;
}

/* Adds e's options and identifier to target t (index ti). */
static void target_merge(struct walk *w, struct subs_target *t, uint32_t ti, struct entry *e)
{
    struct subs *s = w->s;
    if (SUBS_OPT_QOS(e->options) > t->qos) t->qos = SUBS_OPT_QOS(e->options);
    if (SUBS_OPT_RAP(e->options)) t->retain_as_published = true;
    if (e->sub_id) {
        if (!scratch_reserve((void **)&s->pairs, &s->pairs_cap, w->npairs + 1, sizeof *s->pairs)) {
            w->failed = true;
            return;
        }
        s->pairs[w->npairs].target = ti;
        s->pairs[w->npairs].sub_id = e->sub_id;
        w->npairs++;
        t->sub_id_count++;
    }
}

static void collect_entry_cb(struct walk *w, struct entry *e)
{
    struct owner_rec *o = e->own;
    struct subs_target *t;
    if (w->failed) return;
    if (SUBS_OPT_NO_LOCAL(e->options) && w->publisher && o->owner == w->publisher)
        return; /* [MQTT-3.8.3-3] */
    if (o->gen != w->s->gen) {
        t = target_new(w, e, false);
        if (!t) return;
        o->gen = w->s->gen;
        o->target = (uint32_t)(w->ntargets - 1);
    } else {
        t = &w->s->targets[o->target];
    }
    target_merge(w, t, o->target, e);
}

static void collect_group_cb(struct walk *w, struct entry *e)
{
    struct subs_target *t;
    if (w->failed) return;
    if (SUBS_OPT_NO_LOCAL(e->options) && w->publisher && e->own->owner == w->publisher) return;
    t = target_new(w, e, true);
    if (t) target_merge(w, t, (uint32_t)(w->ntargets - 1), e);
}

/* The next collect generation; on wrap-around every owner's stamp is cleared. */
static void next_gen(struct subs *s)
{
    size_t i;
    struct owner_rec *o;
    if (++s->gen != 0) return;
    for (i = 0; i < s->nowners_buckets; i++)
        for (o = s->owners[i]; o; o = o->hnext)
            o->gen = 0;
    s->gen = 1;
}

int subs_collect(struct subs *s, const char *topic, size_t topic_len, void *publisher,
                 subs_able_cb able, void *able_ctx, const struct subs_target **targets,
                 size_t *count)
{
    struct walk w = {.s = s, .able = able, .able_ctx = able_ctx, .publisher = publisher};
    size_t i, off = 0;
    w.entry_cb = collect_entry_cb;
    w.group_cb = collect_group_cb;
    *targets = s->targets;
    *count = 0;
    if (topic_len == 0) return 0;
    next_gen(s);
    walk(&w, topic, topic_len);
    if (w.failed) return -ENOMEM;
    if (w.npairs) {
        if (!scratch_reserve((void **)&s->ids, &s->ids_cap, w.npairs, sizeof *s->ids))
            return -ENOMEM;
        /* Each target's ids get a contiguous run; sub_id_count counts the run as it fills. */
        for (i = 0; i < w.ntargets; i++) {
            s->targets[i].sub_ids = s->ids + off;
            off += s->targets[i].sub_id_count;
            s->targets[i].sub_id_count = 0;
        }
        for (i = 0; i < w.npairs; i++) {
            struct subs_target *t = &s->targets[s->pairs[i].target];
            s->ids[(size_t)(t->sub_ids - s->ids) + t->sub_id_count++] = s->pairs[i].sub_id;
        }
    }
    *targets = s->targets;
    *count = w.ntargets;
    return 0;
}

int subs_group_pick(struct subs *s, const char *filter, size_t filter_len, subs_able_cb able,
                    void *able_ctx, struct subs_info *out)
{
    struct parsed p;
    struct node *n;
    struct group *g;
    struct entry *e;
    struct walk w = {.s = s, .able = able, .able_ctx = able_ctx};
    if (parse_filter(filter, filter_len, &p) < 0 || !p.group) return -ENOENT;
    n = node_path(s, p.filter, p.filter_len, false);
    if (!n) return -ENOENT;
    for (g = n->groups; g; g = g->next)
        if (g->name_len == p.group_len && !memcmp(g->name, p.group, p.group_len)) break;
    if (!g) return -ENOENT;
    e = group_pick(&w, g);
    if (!e) return -ENOENT;
    info_of(e, out);
    return 0;
}
