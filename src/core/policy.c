/* policy.c -- eviction policies behind one interface.
 *
 * A policy orders the items of one tier (memory, or disk) and names the next victim. Items carry
 * an intrusive policy_node, so a policy allocates nothing per item. Weights are bytes: the owner
 * evicts victims until the new item fits its budget.
 *
 * S3-FIFO (default; Yang et al., SOSP 2023): three FIFO queues. New items enter a small queue
 * (10% of the capacity); an item read while there moves to the main queue when it reaches the
 * small queue's tail, the others leave at once ("quick demotion": most items are read once).
 * The main queue is a FIFO with reinsertion: an item at its tail whose counter (0..3) is not zero
 * goes back to the head with the counter decremented. Evicted small-queue items leave their hash
 * in a ghost table; an item whose hash is there on insertion goes straight to the main queue.
 * A read only bumps a counter, so hits never reorder lists.
 *
 * LRU: one list, a read moves the item to the head, the victim is the tail. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* ---- doubly linked lists with a sentinel: head.next is the newest, head.prev the oldest ---- */

typedef struct list {
    policy_node head;
    uint64_t    bytes;
    size_t      count;
} list;

static void list_init(list *l)
{
    memset(l, 0, sizeof *l);
    l->head.next = l->head.prev = &l->head;
}

static bool list_empty(const list *l) { return l->head.next == &l->head; }

static void list_push_head(list *l, policy_node *n)
{
    n->next = l->head.next;
    n->prev = &l->head;
    l->head.next->prev = n;
    l->head.next = n;
    l->bytes += n->bytes;
    l->count++;
}

static void list_unlink(list *l, policy_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
    l->bytes -= n->bytes;
    l->count--;
}

static policy_node *list_pop_tail(list *l)
{
    if (list_empty(l))
        return NULL;
    policy_node *n = l->head.prev;
    list_unlink(l, n);
    return n;
}

/* ---- the interface ------------------------------------------------------------------------ */

typedef struct policy_ops {
    const char *name;
    void (*insert)(policy *p, policy_node *n);
    void (*touch)(policy *p, policy_node *n);
    void (*remove)(policy *p, policy_node *n);
    policy_node *(*victim)(policy *p);
    uint64_t (*bytes)(const policy *p);
    void (*destroy)(policy *p);
} policy_ops;

struct policy {
    const policy_ops *ops;
    uint64_t          capacity_bytes;
};

void         policy_insert(policy *p, policy_node *n) { p->ops->insert(p, n); }
void         policy_touch(policy *p, policy_node *n) { p->ops->touch(p, n); }
void         policy_remove(policy *p, policy_node *n) { p->ops->remove(p, n); }
policy_node *policy_victim(policy *p) { return p->ops->victim(p); }
uint64_t     policy_bytes(const policy *p) { return p->ops->bytes(p); }
void         policy_destroy(policy *p)
{
    if (p)
        p->ops->destroy(p);
}

/* ---- LRU ---------------------------------------------------------------------------------- */

typedef struct lru {
    policy base;
    list   items;
} lru;

static void lru_insert(policy *p, policy_node *n) { list_push_head(&((lru *)p)->items, n); }

static void lru_touch(policy *p, policy_node *n)
{
    lru *l = (lru *)p;
    list_unlink(&l->items, n);
    list_push_head(&l->items, n);
}

static void lru_remove(policy *p, policy_node *n) { list_unlink(&((lru *)p)->items, n); }

static policy_node *lru_victim(policy *p) { return list_pop_tail(&((lru *)p)->items); }

static uint64_t lru_bytes(const policy *p) { return ((const lru *)p)->items.bytes; }

static void lru_destroy(policy *p) { free(p); }

static const policy_ops lru_ops = {"lru", lru_insert, lru_touch, lru_remove, lru_victim,
                                   lru_bytes, lru_destroy};

static policy *lru_create(void)
{
    lru *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base.ops = &lru_ops;
    list_init(&l->items);
    return &l->base;
}

/* ---- S3-FIFO ------------------------------------------------------------------------------ */

enum {
    QUEUE_SMALL = 1,
    QUEUE_MAIN = 2,
    FREQ_MAX = 3,             /* a two-bit counter, as in the paper */
    SMALL_QUEUE_PERCENT = 10, /* the paper's size of the small queue */
    GHOST_MIN_ENTRIES = 64
};

/* The ghost remembers the hashes of the last `capacity` items evicted from the small queue
 * (as many as the main queue holds items). It is direct-mapped: a slot keeps the newest hash that
 * fell into it, so a collision forgets an older ghost early, which costs a little hit ratio and
 * no correctness. Entries expire by sequence number, so nothing is ever deleted. */
typedef struct ghost_slot {
    uint64_t hash;
    uint64_t seq;
} ghost_slot;

typedef struct ghost {
    ghost_slot *slots;
    size_t      mask;
    uint64_t    seq;
} ghost;

typedef struct s3fifo {
    policy base;
    list   small, main;
    ghost  ghost;
} s3fifo;

static size_t ghost_capacity(const s3fifo *s)
{
    return s->main.count > GHOST_MIN_ENTRIES ? s->main.count : GHOST_MIN_ENTRIES;
}

static void ghost_resize(ghost *g, size_t want_slots)
{
    size_t slots = g->mask + 1;
    while (slots < want_slots)
        slots *= 2;
    ghost_slot *fresh = calloc(slots, sizeof *fresh);
    if (!fresh)
        return; /* keep the smaller table: a ghost is a hint */
    for (size_t i = 0; i <= g->mask; i++) {
        if (g->slots[i].hash)
            fresh[g->slots[i].hash & (slots - 1)] = g->slots[i];
    }
    free(g->slots);
    g->slots = fresh;
    g->mask = slots - 1;
}

static void ghost_add(s3fifo *s, uint64_t hash)
{
    ghost *g = &s->ghost;
    if (g->mask + 1 < 2 * ghost_capacity(s))
        ghost_resize(g, 2 * ghost_capacity(s));
    g->seq++;
    g->slots[hash & g->mask] = (ghost_slot){hash | 1, g->seq};
}

/* True if hash is a live ghost; it is consumed. */
static bool ghost_take(s3fifo *s, uint64_t hash)
{
    ghost_slot *slot = &s->ghost.slots[hash & s->ghost.mask];
    if (slot->hash != (hash | 1) || s->ghost.seq - slot->seq >= ghost_capacity(s))
        return false;
    slot->hash = 0;
    return true;
}

static void s3fifo_insert(policy *p, policy_node *n)
{
    s3fifo *s = (s3fifo *)p;
    n->freq = 0;
    if (ghost_take(s, n->key_hash)) {
        n->queue = QUEUE_MAIN;
        list_push_head(&s->main, n);
    } else {
        n->queue = QUEUE_SMALL;
        list_push_head(&s->small, n);
    }
}

static void s3fifo_touch(policy *p, policy_node *n)
{
    (void)p;
    if (n->freq < FREQ_MAX)
        n->freq++;
}

static void s3fifo_remove(policy *p, policy_node *n)
{
    s3fifo *s = (s3fifo *)p;
    list_unlink(n->queue == QUEUE_MAIN ? &s->main : &s->small, n);
}

static bool small_queue_over(const s3fifo *s)
{
    return s->small.bytes * 100 > s->base.capacity_bytes * SMALL_QUEUE_PERCENT;
}

/* Terminates: every item moved from small to main enters with freq 0, and every reinsertion in
 * main decrements a freq, so after at most FREQ_MAX rounds some item leaves. */
static policy_node *s3fifo_victim(policy *p)
{
    s3fifo *s = (s3fifo *)p;
    for (;;) {
        if (!list_empty(&s->small) && (small_queue_over(s) || list_empty(&s->main))) {
            policy_node *n = list_pop_tail(&s->small);
            if (n->freq > 0) {
                n->freq = 0;
                n->queue = QUEUE_MAIN;
                list_push_head(&s->main, n);
                continue;
            }
            ghost_add(s, n->key_hash);
            return n;
        }
        policy_node *n = list_pop_tail(&s->main);
        if (!n)
            return NULL;
        if (n->freq > 0) {
            n->freq--;
            list_push_head(&s->main, n);
            continue;
        }
        return n;
    }
}

static void s3fifo_destroy(policy *p)
{
    free(((s3fifo *)p)->ghost.slots);
    free(p);
}

static uint64_t s3fifo_bytes(const policy *p)
{
    const s3fifo *s = (const s3fifo *)p;
    return s->small.bytes + s->main.bytes;
}

static const policy_ops s3fifo_ops = {"s3fifo", s3fifo_insert, s3fifo_touch, s3fifo_remove,
                                      s3fifo_victim, s3fifo_bytes, s3fifo_destroy};

static policy *s3fifo_create(void)
{
    s3fifo *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ghost.slots = calloc(2 * GHOST_MIN_ENTRIES, sizeof *s->ghost.slots);
    if (!s->ghost.slots) {
        free(s);
        return NULL;
    }
    s->ghost.mask = 2 * GHOST_MIN_ENTRIES - 1;
    s->base.ops = &s3fifo_ops;
    list_init(&s->small);
    list_init(&s->main);
    return &s->base;
}

/* ---- creation ----------------------------------------------------------------------------- */

policy *policy_create(const char *name, uint64_t capacity_bytes)
{
    policy *p = NULL;
    if (!name || strcmp(name, "s3fifo") == 0)
        p = s3fifo_create();
    else if (strcmp(name, "lru") == 0)
        p = lru_create();
    if (p)
        p->capacity_bytes = capacity_bytes;
    return p;
}
