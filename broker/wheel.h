/* A hierarchical timer wheel that is told the time: keepalive (1.5 x keepalive), will delay,
 * session expiry and handshake timeouts of all connections share one wheel, driven by one
 * uv_timer_t. Modelled on h2o's timerwheel (h2o:include/h2o/timerwheel.h).
 *
 * Contract:
 * - No clock of its own: wheel_advance() is given "now" in milliseconds (any monotonic
 *   origin), so tests inject time.
 * - Entries are embedded in their owners (struct wheel_entry inside struct conn) and the
 *   wheel never allocates: add, remove and reschedule are O(1); expiring costs O(1) amortised
 *   per entry (an entry moves down at most WHEEL_LEVELS times).
 * - Resolution is 1 ms; any expiry instant in 64 bits is representable.
 * - Single-threaded. Callbacks may add, remove or reschedule any entry, including their own
 *   and others due in the same wheel_advance() call (a removed entry's callback is not run).
 *
 * How it works: WHEEL_LEVELS levels of 64 slots. An entry due at `at` is filed at level L,
 * the index of the highest 6-bit group in which `at` differs from the wheel's current time,
 * in slot (at >> 6L) & 63. When time advances, the slots of each level that time has passed
 * are emptied: their entries are due (callback) or re-filed at a lower level. Entries due at
 * or before the current time when added wait in a list of their own for the next advance.
 */
#ifndef STARLING_BROKER_WHEEL_H
#define STARLING_BROKER_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WHEEL_BITS   6
#define WHEEL_SLOTS  (1u << WHEEL_BITS)
#define WHEEL_LEVELS 11 /* 66 bits: every uint64_t instant */

struct wheel_entry;
/* Called once when the entry is due; the entry is unlinked before the call. */
typedef void (*wheel_cb)(struct wheel_entry *e);

struct wheel_entry {
    struct wheel_entry *next;
    struct wheel_entry **pprev; /* NULL while not scheduled */
    uint64_t due_ms;
    wheel_cb cb;
};

struct wheel {
    uint64_t now_ms;         /* the time of the last advance */
    size_t count;            /* scheduled entries */
    struct wheel_entry *due; /* added with due_ms <= now_ms: run at the next advance */
    struct wheel_entry *slots[WHEEL_LEVELS][WHEEL_SLOTS];
};

/* Initialises an empty wheel whose current time is now_ms. */
void wheel_init(struct wheel *w, uint64_t now_ms);
/* Unschedules every entry (their callbacks are not called); the wheel may be reused after
 * wheel_init(). */
void wheel_close(struct wheel *w);

/* Initialises an unscheduled entry with its callback (use container_of-style arithmetic in the
 * callback to find the owner). */
void wheel_entry_init(struct wheel_entry *e, wheel_cb cb);
static inline bool wheel_entry_is_scheduled(const struct wheel_entry *e)
{
    return e->pprev != NULL;
}

/* Schedules e to be due at due_ms, or reschedules it if it is scheduled already. An instant
 * not after the wheel's time makes it due at the next wheel_advance(). */
void wheel_add(struct wheel *w, struct wheel_entry *e, uint64_t due_ms);
/* Unschedules e; a no-op if it is not scheduled. */
void wheel_remove(struct wheel *w, struct wheel_entry *e);

/* Moves the wheel's time to now_ms (never backwards: an earlier now_ms runs what is due at
 * the current time) and calls the callback of every entry due at or before it, in no
 * guaranteed order. Returns how many callbacks ran. */
size_t wheel_advance(struct wheel *w, uint64_t now_ms);

/* When to call wheel_advance() next: a lower bound on the earliest due instant (exact when
 * it lies in the wheel's lowest level, i.e. shares all but its low 6 bits with the wheel's
 * time), the wheel's time if something is already due, or UINT64_MAX when empty. */
uint64_t wheel_next_ms(const struct wheel *w);

static inline size_t wheel_count(const struct wheel *w)
{
    return w->count;
}

#endif
