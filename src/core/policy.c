/* policy.c -- eviction policies behind one interface.
 *
 * A policy orders the items of one tier (memory, or disk) and names the next victim. Items carry
 * an intrusive policy_node, so a policy allocates nothing per item. Weights are bytes: the owner
 * evicts victims until the new item fits its budget. A weight may change in place
 * (policy_resize): every total the policy keeps follows, and the item keeps its place.
 *
 * S3-FIFO (default; Yang et al., SOSP 2023): three FIFO queues. New items enter a small queue
 * (10% of the capacity); an item read while there moves to the main queue when it reaches the
 * small queue's tail, the others leave at once ("quick demotion": most items are read once).
 * The main queue is a FIFO with reinsertion: an item at its tail whose counter (0..3) is not zero
 * goes back to the head with the counter decremented. Evicted small-queue items leave their hash
 * in a ghost table; an item whose hash is there on insertion goes straight to the main queue.
 * A read only bumps a counter, so hits never reorder lists.
 *
 * LRU: one list, a read moves the item to the head, the victim is the tail.
 *
 * LFU: the victim is the least frequently read item, and among those the least recently used.
 * As in the O(1) LFU of Shah, Mitra and Matani, items sit in frequency buckets, each a recency
 * list, and a read moves an item to the next bucket up. Counts are capped at LFU_COUNT_MAX
 * (255), so the buckets are a fixed array (one per count) with a bitmap of the non-empty ones:
 * nothing is allocated per distinct frequency, and the least frequent bucket is found with four
 * word tests. Every operation is O(1). An item's count, stamp and mark (queue: item or bucket
 * head) fit in the node's existing 40 bytes.
 *
 * Aging: without it an item read often once stays forever. When the reads since the last aging
 * reach LFU_AGING_READS_PER_ITEM times the number of items (the average count grew by that
 * much), every count is halved, as TinyLFU does. Halving is lazy: the policy's epoch advances,
 * and an item's count is its stored count shifted right by the epochs passed since it was
 * stored (node->stamp), so no item is visited. The buckets follow in O(buckets): bucket k is
 * spliced onto the head of bucket k/2, in increasing k, so within the merged bucket j the
 * items of 2j leave before those of 2j+1 (the lower count first, then recency). So the bucket
 * an item is in is always its current count. Counts have 8 bits: after 8 halvings without a read an
 * item is at 0 whatever count it stored. The stamp has 32 bits: only an item left unread for
 * 2^32 halvings (each takes 16 reads per item held) could see it wrap and count a stale value
 * when next read, which would rank it a little too high and nothing worse, because the
 * accounting never trusts a computed count: a bucket is known empty when the sentinel left
 * behind by an unlink is linked to itself. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* ---- doubly linked lists with a sentinel: head.next is the newest, head.prev the oldest ---- */

typedef struct list {
    policy_node head;
    uint64_t    bytes;
    size_t      count;
} list;

static void ring_init(policy_node *head) { head->next = head->prev = head; }

static void ring_push_head(policy_node *head, policy_node *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

static void ring_unlink(policy_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* Move every node of src, in order, to the head of dst; src is left empty. */
static void ring_splice_head(policy_node *dst, policy_node *src)
{
    if (src->next == src)
        return;
    policy_node *first = src->next, *last = src->prev;
    last->next = dst->next;
    dst->next->prev = last;
    dst->next = first;
    first->prev = dst;
    ring_init(src);
}

static void list_init(list *l)
{
    memset(l, 0, sizeof *l);
    ring_init(&l->head);
}

static bool list_empty(const list *l) { return l->head.next == &l->head; }

static void list_push_head(list *l, policy_node *n)
{
    ring_push_head(&l->head, n);
    l->bytes += n->bytes;
    l->count++;
}

static void list_unlink(list *l, policy_node *n)
{
    ring_unlink(n);
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

/* A member's weight changes in place; unsigned arithmetic keeps the total exact either way. */
static void list_resize(list *l, policy_node *n, uint64_t bytes)
{
    l->bytes = l->bytes - n->bytes + bytes;
    n->bytes = bytes;
}

/* ---- the interface ------------------------------------------------------------------------ */

typedef struct policy_ops {
    const char *name;
    void (*insert)(policy *p, policy_node *n);
    void (*touch)(policy *p, policy_node *n);
    void (*remove)(policy *p, policy_node *n);
    void (*resize)(policy *p, policy_node *n, uint64_t bytes);
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
void         policy_resize(policy *p, policy_node *n, uint64_t bytes)
{
    p->ops->resize(p, n, bytes);
}
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

static void lru_resize(policy *p, policy_node *n, uint64_t bytes)
{
    list_resize(&((lru *)p)->items, n, bytes);
}

static policy_node *lru_victim(policy *p) { return list_pop_tail(&((lru *)p)->items); }

static uint64_t lru_bytes(const policy *p) { return ((const lru *)p)->items.bytes; }

static void lru_destroy(policy *p) { free(p); }

static const policy_ops lru_ops = {"lru",      lru_insert, lru_touch, lru_remove,
                                   lru_resize, lru_victim, lru_bytes, lru_destroy};

static policy *lru_create(void)
{
    lru *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base.ops = &lru_ops;
    list_init(&l->items);
    return &l->base;
}

/* ---- LFU ---------------------------------------------------------------------------------- */

enum {
    LFU_COUNT_BITS = 8, /* node->freq holds the count */
    LFU_COUNT_MAX = (1 << LFU_COUNT_BITS) - 1,
    LFU_BUCKETS = LFU_COUNT_MAX + 1,
    LFU_WORD_BITS = 64,
    LFU_WORDS = LFU_BUCKETS / LFU_WORD_BITS,
    LFU_FIRST_COUNT = 1, /* the insertion is the first use */
    /* Halve every count when the reads since the last halving reach this many per item: long
     * enough that counts separate items read a few times from items read once, short enough
     * that a shift of popularity shows within a few passes over the cache. */
    LFU_AGING_READS_PER_ITEM = POLICY_LFU_AGING_READS_PER_ITEM,
    LFU_SENTINEL = 0xFF, /* node->queue of a bucket's head; items have LFU_ITEM */
    LFU_ITEM = 0
};

typedef struct lfu {
    policy      base;
    policy_node buckets[LFU_BUCKETS]; /* sentinels: buckets[k] holds the items of count k */
    uint64_t    nonempty[LFU_WORDS];  /* bit k: buckets[k] has items */
    uint64_t    bytes;
    size_t      count;
    uint64_t    reads; /* since the last halving */
    uint32_t    epoch; /* halvings so far (wraps) */
} lfu;

static void bucket_mark(lfu *l, unsigned k)
{
    l->nonempty[k / LFU_WORD_BITS] |= 1ull << (k % LFU_WORD_BITS);
}

static void bucket_clear(lfu *l, unsigned k)
{
    l->nonempty[k / LFU_WORD_BITS] &= ~(1ull << (k % LFU_WORD_BITS));
}

static bool bucket_has_items(const lfu *l, unsigned k)
{
    return l->nonempty[k / LFU_WORD_BITS] >> (k % LFU_WORD_BITS) & 1;
}

/* The least frequent non-empty bucket, or -1. */
static int bucket_lowest(const lfu *l)
{
    for (unsigned w = 0; w < LFU_WORDS; w++) {
        if (l->nonempty[w])
            return (int)(w * LFU_WORD_BITS + (unsigned)__builtin_ctzll(l->nonempty[w]));
    }
    return -1;
}

/* An item's count now: its stored count halved once per epoch since it was stored. */
static unsigned lfu_count(const lfu *l, const policy_node *n)
{
    uint32_t halvings = l->epoch - n->stamp;
    return halvings >= LFU_COUNT_BITS ? 0 : (unsigned)n->freq >> halvings;
}

static void bucket_push(lfu *l, policy_node *n, unsigned count)
{
    n->freq = (uint8_t)count;
    n->stamp = l->epoch;
    n->queue = LFU_ITEM;
    ring_push_head(&l->buckets[count], n);
    bucket_mark(l, count);
}

/* Unlink n; when that empties its bucket, the neighbour left behind is the bucket's sentinel,
 * linked to itself, and names the bucket. */
static void bucket_unlink(lfu *l, policy_node *n)
{
    policy_node *prev = n->prev;
    ring_unlink(n);
    if (prev->queue == LFU_SENTINEL && prev->next == prev)
        bucket_clear(l, prev->freq);
}

/* Halve every count: merge bucket k into k/2 for k = 1, 2, ... (see the top of the file). */
static void lfu_halve(lfu *l)
{
    l->epoch++;
    l->reads = 0;
    for (unsigned k = 1; k < LFU_BUCKETS; k++) {
        if (!bucket_has_items(l, k))
            continue;
        ring_splice_head(&l->buckets[k / 2], &l->buckets[k]);
        bucket_clear(l, k);
        bucket_mark(l, k / 2);
    }
}

static void lfu_insert(policy *p, policy_node *n)
{
    lfu *l = (lfu *)p;
    bucket_push(l, n, LFU_FIRST_COUNT);
    l->bytes += n->bytes;
    l->count++;
}

static void lfu_touch(policy *p, policy_node *n)
{
    lfu     *l = (lfu *)p;
    unsigned count = lfu_count(l, n);
    bucket_unlink(l, n);
    bucket_push(l, n, count < LFU_COUNT_MAX ? count + 1 : LFU_COUNT_MAX);
    if (++l->reads >= (uint64_t)LFU_AGING_READS_PER_ITEM * l->count)
        lfu_halve(l);
}

static void lfu_remove(policy *p, policy_node *n)
{
    lfu *l = (lfu *)p;
    bucket_unlink(l, n);
    l->bytes -= n->bytes;
    l->count--;
}

static void lfu_resize(policy *p, policy_node *n, uint64_t bytes)
{
    lfu *l = (lfu *)p;
    l->bytes = l->bytes - n->bytes + bytes;
    n->bytes = bytes;
}

static policy_node *lfu_victim(policy *p)
{
    lfu *l = (lfu *)p;
    int  k = bucket_lowest(l);
    if (k < 0)
        return NULL;
    policy_node *n = l->buckets[k].prev; /* the least recently used of the least frequent */
    lfu_remove(p, n);
    return n;
}

static uint64_t lfu_bytes(const policy *p) { return ((const lfu *)p)->bytes; }

static void lfu_destroy(policy *p) { free(p); }

static const policy_ops lfu_ops = {"lfu",      lfu_insert, lfu_touch, lfu_remove,
                                   lfu_resize, lfu_victim, lfu_bytes, lfu_destroy};

static policy *lfu_create(void)
{
    lfu *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base.ops = &lfu_ops;
    for (unsigned k = 0; k < LFU_BUCKETS; k++) {
        ring_init(&l->buckets[k]);
        l->buckets[k].queue = LFU_SENTINEL;
        l->buckets[k].freq = (uint8_t)k;
    }
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

static list *s3fifo_queue_of(s3fifo *s, const policy_node *n)
{
    return n->queue == QUEUE_MAIN ? &s->main : &s->small;
}

static void s3fifo_remove(policy *p, policy_node *n)
{
    s3fifo *s = (s3fifo *)p;
    list_unlink(s3fifo_queue_of(s, n), n);
}

static void s3fifo_resize(policy *p, policy_node *n, uint64_t bytes)
{
    s3fifo *s = (s3fifo *)p;
    list_resize(s3fifo_queue_of(s, n), n, bytes);
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

static const policy_ops s3fifo_ops = {"s3fifo",      s3fifo_insert, s3fifo_touch,
                                      s3fifo_remove, s3fifo_resize, s3fifo_victim,
                                      s3fifo_bytes,  s3fifo_destroy};

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

typedef struct policy_kind {
    const char *name;
    policy *(*create)(void);
} policy_kind;

static const policy_kind kinds[] = {
    {"s3fifo", s3fifo_create}, /* the default: first */
    {"lru", lru_create},
    {"lfu", lfu_create},
};

enum { KINDS = sizeof kinds / sizeof kinds[0] };

const char *const *policy_names(void)
{
    static const char *const names[] = {"s3fifo", "lru", "lfu", NULL};
    _Static_assert(sizeof names / sizeof names[0] == KINDS + 1, "one name per kind");
    return names;
}

policy *policy_create(const char *name, uint64_t capacity_bytes)
{
    const policy_kind *kind = name ? NULL : &kinds[0];
    for (size_t i = 0; !kind && i < KINDS; i++) {
        if (strcmp(name, kinds[i].name) == 0)
            kind = &kinds[i];
    }
    policy *p = kind ? kind->create() : NULL;
    if (p)
        p->capacity_bytes = capacity_bytes;
    return p;
}
