/* MQTT 5 topic alias tables (see alias.h). */
#include "alias.h"

#include <errno.h>
#include <string.h>

#include "mem.h"

/* An inbound mapping: one allocation holding the topic. */
struct alias_str {
    size_t len;
    size_t cap;
    char topic[];
};

/* An outbound alias: its topic, its hash chain and its place in the LRU list. */
struct alias_slot {
    char *topic; /* NULL while unmapped (never used, or forgotten) */
    size_t topic_len;
    uint32_t hash;
    uint16_t chain;      /* next alias in the bucket, 0 for none */
    uint16_t prev, next; /* LRU neighbours (prev: more recent), 0 for none */
};

static uint32_t hash_bytes(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

/* ---- Inbound ---- */

void alias_in_init(struct alias_in *a, uint16_t max)
{
    a->max = max;
    a->map = NULL;
}

void alias_in_close(struct alias_in *a)
{
    unsigned i;
    if (a->map) {
        for (i = 0; i < a->max; i++)
            mem_free(a->map[i]);
        mem_free(a->map);
    }
    a->map = NULL;
}

int alias_in_set(struct alias_in *a, uint16_t alias, const char *topic, size_t topic_len)
{
    struct alias_str *str;
    if (alias == 0 || alias > a->max || topic_len == 0 || topic_len > UINT16_MAX) return -EINVAL;
    if (!a->map) {
        a->map = mem_calloc(a->max, sizeof *a->map);
        if (!a->map) return -ENOMEM;
    }
    str = a->map[alias - 1];
    if (!str || str->cap < topic_len) {
        /* Round up so that a topic changing length a little does not reallocate. */
        size_t cap = (topic_len + 31) & ~(size_t)31;
        struct alias_str *bigger = mem_malloc(sizeof *bigger + cap);
        if (!bigger) return -ENOMEM;
        bigger->cap = cap;
        mem_free(str);
        str = bigger;
        a->map[alias - 1] = str;
    }
    memcpy(str->topic, topic, topic_len);
    str->len = topic_len;
    return 0;
}

int alias_in_get(const struct alias_in *a, uint16_t alias, const char **topic, size_t *topic_len)
{
    const struct alias_str *str;
    if (alias == 0 || alias > a->max) return -EINVAL;
    str = a->map ? a->map[alias - 1] : NULL;
    if (!str) return -ENOENT;
    *topic = str->topic;
    *topic_len = str->len;
    return 0;
}

/* ---- Outbound ---- */

void alias_out_init(struct alias_out *a, uint16_t max)
{
    memset(a, 0, sizeof *a);
    a->max = max;
}

void alias_out_close(struct alias_out *a)
{
    unsigned i;
    if (a->slots) {
        for (i = 0; i < a->used; i++)
            mem_free(a->slots[i].topic);
        mem_free(a->slots);
    }
    alias_out_init(a, a->max);
}

#define SLOT(a, alias) (&(a)->slots[(alias)-1])

/* The hash buckets follow the slots in the same allocation: a power of two, at least max. */
static uint32_t out_nbuckets(const struct alias_out *a)
{
    return a->max <= 1 ? 1u : 1u << (32 - __builtin_clz((unsigned)a->max - 1u));
}

static uint16_t *out_bucket(const struct alias_out *a, uint32_t hash)
{
    uint16_t *buckets = (uint16_t *)(a->slots + a->max);
    return &buckets[hash & (out_nbuckets(a) - 1)];
}

static void lru_unlink(struct alias_out *a, uint16_t alias)
{
    struct alias_slot *s = SLOT(a, alias);
    if (s->prev)
        SLOT(a, s->prev)->next = s->next;
    else
        a->lru_head = s->next;
    if (s->next)
        SLOT(a, s->next)->prev = s->prev;
    else
        a->lru_tail = s->prev;
    s->prev = s->next = 0;
}

static void lru_push_head(struct alias_out *a, uint16_t alias)
{
    struct alias_slot *s = SLOT(a, alias);
    s->prev = 0;
    s->next = a->lru_head;
    if (a->lru_head)
        SLOT(a, a->lru_head)->prev = alias;
    else
        a->lru_tail = alias;
    a->lru_head = alias;
}

static void lru_push_tail(struct alias_out *a, uint16_t alias)
{
    struct alias_slot *s = SLOT(a, alias);
    s->next = 0;
    s->prev = a->lru_tail;
    if (a->lru_tail)
        SLOT(a, a->lru_tail)->next = alias;
    else
        a->lru_head = alias;
    a->lru_tail = alias;
}

/* Removes alias's topic from the hash table and frees it. */
static void unmap(struct alias_out *a, uint16_t alias)
{
    struct alias_slot *s = SLOT(a, alias);
    uint16_t *link;
    if (!s->topic) return;
    link = out_bucket(a, s->hash);
    while (*link != alias)
        link = &SLOT(a, *link)->chain;
    *link = s->chain;
    s->chain = 0;
    mem_free(s->topic);
    s->topic = NULL;
    s->topic_len = 0;
}

/* Allocates the slots and the buckets (one block) on first use. */
static int out_setup(struct alias_out *a)
{
    a->slots = mem_calloc(1, a->max * sizeof *a->slots + out_nbuckets(a) * sizeof(uint16_t));
    return a->slots ? 0 : -ENOMEM;
}

int alias_out_get(struct alias_out *a, const char *topic, size_t topic_len, uint16_t *alias,
                  bool *known)
{
    uint32_t h = hash_bytes(topic, topic_len);
    uint16_t id;
    char *copy;
    struct alias_slot *s;

    *alias = 0;
    *known = false;
    if (a->max == 0) return 0;
    if (!a->slots && out_setup(a) < 0) return -ENOMEM;
    for (id = *out_bucket(a, h); id; id = SLOT(a, id)->chain) {
        s = SLOT(a, id);
        if (s->hash == h && s->topic_len == topic_len && !memcmp(s->topic, topic, topic_len)) {
            lru_unlink(a, id);
            lru_push_head(a, id);
            *alias = id;
            *known = true;
            return 0;
        }
    }
    copy = mem_malloc(topic_len ? topic_len : 1);
    if (!copy) return -ENOMEM;
    memcpy(copy, topic, topic_len);
    if (a->used < a->max) {
        id = ++a->used;
    } else {
        /* Full: the least recently used (or a forgotten) alias is reassigned. */
        id = a->lru_tail;
        lru_unlink(a, id);
        unmap(a, id);
    }
    s = SLOT(a, id);
    s->topic = copy;
    s->topic_len = topic_len;
    s->hash = h;
    s->chain = *out_bucket(a, h);
    *out_bucket(a, h) = id;
    lru_push_head(a, id);
    *alias = id;
    return 0;
}

void alias_out_forget(struct alias_out *a, uint16_t alias)
{
    if (!a->slots || alias == 0 || alias > a->used || !SLOT(a, alias)->topic) return;
    unmap(a, alias);
    /* Reused first when the table is full. */
    lru_unlink(a, alias);
    lru_push_tail(a, alias);
}
