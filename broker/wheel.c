/* The hierarchical timer wheel (see wheel.h for how it works). */
#include "wheel.h"

#include <assert.h>
#include <string.h>

#define SLOT_MASK ((uint64_t)WHEEL_SLOTS - 1)

static void list_push(struct wheel_entry **head, struct wheel_entry *e)
{
    e->next = *head;
    if (e->next) e->next->pprev = &e->next;
    e->pprev = head;
    *head = e;
}

static void list_unlink(struct wheel_entry *e)
{
    *e->pprev = e->next;
    if (e->next) e->next->pprev = e->pprev;
    e->next = NULL;
    e->pprev = NULL;
}

/* Moves every entry of *from to the front of *to. */
static void list_splice(struct wheel_entry **to, struct wheel_entry **from)
{
    while (*from) {
        struct wheel_entry *e = *from;
        list_unlink(e);
        list_push(to, e);
    }
}

/* The level for an entry due at due_ms when the wheel's time is now_ms (due_ms > now_ms):
 * the index of the highest 6-bit group in which they differ. */
static unsigned level_of(uint64_t due_ms, uint64_t now_ms)
{
    uint64_t diff = due_ms ^ now_ms;
    unsigned bit = 63u - (unsigned)__builtin_clzll(diff);
    return bit / WHEEL_BITS;
}

/* Files a linked-nowhere entry relative to the wheel's time. */
static void file_entry(struct wheel *w, struct wheel_entry *e)
{
    unsigned level;
    if (e->due_ms <= w->now_ms) {
        list_push(&w->due, e);
        return;
    }
    level = level_of(e->due_ms, w->now_ms);
    assert(level < WHEEL_LEVELS);
    list_push(&w->slots[level][(e->due_ms >> (level * WHEEL_BITS)) & SLOT_MASK], e);
}

void wheel_init(struct wheel *w, uint64_t now_ms)
{
    memset(w, 0, sizeof *w);
    w->now_ms = now_ms;
}

void wheel_close(struct wheel *w)
{
    unsigned l, s;
    while (w->due)
        list_unlink(w->due);
    for (l = 0; l < WHEEL_LEVELS; l++)
        for (s = 0; s < WHEEL_SLOTS; s++)
            while (w->slots[l][s])
                list_unlink(w->slots[l][s]);
    w->count = 0;
}

void wheel_entry_init(struct wheel_entry *e, wheel_cb cb)
{
    e->next = NULL;
    e->pprev = NULL;
    e->due_ms = 0;
    e->cb = cb;
}

void wheel_add(struct wheel *w, struct wheel_entry *e, uint64_t due_ms)
{
    if (e->pprev)
        list_unlink(e);
    else
        w->count++;
    e->due_ms = due_ms;
    file_entry(w, e);
}

void wheel_remove(struct wheel *w, struct wheel_entry *e)
{
    if (!e->pprev) return;
    list_unlink(e);
    w->count--;
}

size_t wheel_advance(struct wheel *w, uint64_t now_ms)
{
    struct wheel_entry *moved = NULL; /* entries whose slot time has passed */
    struct wheel_entry *expired = NULL;
    size_t ran = 0;
    unsigned l;

    if (now_ms < w->now_ms) now_ms = w->now_ms;
    /* Level l holds entries that agree with now_ms above group l and are later in group l.
     * The slots from the old time's group + 1 up to the new time's group have been passed;
     * when the new time leaves the level's revolution, every slot after the old group is. */
    for (l = 0; l < WHEEL_LEVELS && now_ms != w->now_ms; l++) {
        unsigned shift = l * WHEEL_BITS;
        uint64_t old_group = (w->now_ms >> shift) & SLOT_MASK;
        bool same_above = shift + WHEEL_BITS >= 64 ||
                          (now_ms >> (shift + WHEEL_BITS)) == (w->now_ms >> (shift + WHEEL_BITS));
        uint64_t last = same_above ? (now_ms >> shift) & SLOT_MASK : SLOT_MASK;
        uint64_t s;
        for (s = old_group + 1; s <= last; s++)
            list_splice(&moved, &w->slots[l][s]);
        if (same_above) break;
    }
    w->now_ms = now_ms;
    list_splice(&expired, &w->due);
    while (moved) {
        struct wheel_entry *e = moved;
        list_unlink(e);
        if (e->due_ms <= now_ms)
            list_push(&expired, e);
        else
            file_entry(w, e);
    }
    /* Run the callbacks one at a time from the list, so that a callback removing another due
     * entry unlinks it from this list and its callback does not run. */
    while (expired) {
        struct wheel_entry *e = expired;
        list_unlink(e);
        w->count--;
        ran++;
        e->cb(e);
    }
    return ran;
}

uint64_t wheel_next_ms(const struct wheel *w)
{
    unsigned l;
    if (w->due) return w->now_ms;
    for (l = 0; l < WHEEL_LEVELS; l++) {
        unsigned shift = l * WHEEL_BITS;
        uint64_t group = (w->now_ms >> shift) & SLOT_MASK;
        uint64_t s;
        for (s = group + 1; s < WHEEL_SLOTS; s++) {
            if (w->slots[l][s]) {
                /* The start of the slot: the time's bits above the level, then s. */
                uint64_t above = shift + WHEEL_BITS >= 64
                                     ? 0
                                     : (w->now_ms >> (shift + WHEEL_BITS)) << (shift + WHEEL_BITS);
                return above | (s << shift);
            }
        }
    }
    return UINT64_MAX;
}
