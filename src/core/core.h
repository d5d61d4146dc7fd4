/* core.h -- the data structures of the cache, free of I/O.
 *
 *   key     validation of keys (relative paths) -- aside_key_check() in aside.h
 *   table   a hash table of intrusive nodes keyed by string
 *   policy  eviction policies behind one interface: S3-FIFO (default), LRU and LFU
 *   flight  single flight: concurrent loads of one key run once, the others wait for it
 *
 * None of these lock: the owner (the cache, src/lib/, under its lock) serialises access to a
 * table and its policies, except flight, which is made for concurrent use and locks itself. */
#ifndef ASIDE_CORE_H
#define ASIDE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"

/* ---- table ------------------------------------------------------------------------------- */

/* Embed a table_node in the struct to be indexed; the table never allocates nodes. */
typedef struct table_node {
    struct table_node *next; /* bucket chain */
    uint64_t           hash;
    const char        *key;  /* owned by the embedding struct */
    size_t             key_len;
} table_node;

typedef struct table table;

uint64_t    table_hash(const char *key, size_t len);
table      *table_create(void); /* NULL when out of memory */
void        table_destroy(table *t); /* frees the table, not the nodes */
size_t      table_count(const table *t);
table_node *table_find(const table *t, const char *key, size_t len, uint64_t hash);
/* Insert a node whose key, key_len and hash are set and which is not in the table yet.
 * Returns false only when growing failed; the node is inserted all the same. */
bool        table_insert(table *t, table_node *node);
void        table_remove(table *t, table_node *node);
/* Iterate: start with *cursor = 0 and node NULL; returns NULL at the end. The table must not
 * change during an iteration. */
table_node *table_next(const table *t, size_t *cursor, table_node *node);

/* ---- policy ------------------------------------------------------------------------------ */

/* Embed a policy_node in each cached item; one node per policy the item takes part in. Every
 * byte here is paid per cached key and per tier: the node is 40 bytes on a 64-bit machine. */
typedef struct policy_node {
    struct policy_node *prev, *next;
    uint64_t bytes;    /* the item's weight: set before insertion, then changed only by
                        * policy_resize() */
    uint64_t key_hash; /* remembered by policies that track evicted keys */
    uint8_t  freq;     /* policy-private */
    uint8_t  queue;    /* policy-private */
    uint32_t stamp;    /* policy-private (fits the padding after freq and queue) */
} policy_node;

typedef struct policy policy;

/* LFU halves every count when the reads since its last halving reach this many per item it
 * holds (see policy.c). */
enum { POLICY_LFU_AGING_READS_PER_ITEM = 16 };

/* Create the policy called name ("s3fifo", "lru", "lfu"); NULL for an unknown name or no
 * memory. A NULL name is the default, "s3fifo". capacity_bytes is the budget the policy works
 * for (S3-FIFO sizes its queues from it). */
policy      *policy_create(const char *name, uint64_t capacity_bytes);
void         policy_destroy(policy *p);
/* The names policy_create() knows, default first, ending with NULL. Static: do not free. */
const char *const *policy_names(void);
/* A new item enters (node->bytes and node->key_hash set). */
void         policy_insert(policy *p, policy_node *node);
/* The item was read. */
void         policy_touch(policy *p, policy_node *node);
/* The item leaves for a reason of its own (deleted, replaced). */
void         policy_remove(policy *p, policy_node *node);
/* The weight of an item in the policy changed in place (a collection grew or shrank) to bytes:
 * node->bytes and every total (policy_bytes, and a policy's own per-queue totals) follow; the
 * item keeps its place and counts as neither read nor inserted. The policy evicts nothing: an
 * owner whose budget is now passed asks policy_victim() as after an insertion. */
void         policy_resize(policy *p, policy_node *node, uint64_t bytes);
/* Choose the item to evict next and remove it from the policy; NULL when empty. */
policy_node *policy_victim(policy *p);
/* The sum of the weights of the items in the policy. */
uint64_t     policy_bytes(const policy *p);

/* ---- flight ------------------------------------------------------------------------------ */

/* A group of loads in progress, one per key. A caller that finds no load of its key in progress
 * becomes its leader, does the work and completes it; callers arriving meanwhile are followers
 * and wait for the leader's outcome. Results are opaque pointers; the group takes a reference
 * for each follower with the retain function given at creation. */
typedef struct flight_group flight_group;
typedef struct flight flight;

flight_group *flight_group_create(void *(*retain)(void *result));
void          flight_group_destroy(flight_group *g); /* no flights may be in progress */

/* Join the load of key: returns the flight (release it with flight_release) and sets *leader.
 * NULL when out of memory. */
flight *flight_join(flight_group *g, const char *key, bool *leader);
/* Leader: publish the outcome (result may be NULL on error; err is copied when status != OK).
 * The key is free for a new flight from now on. The group takes its own reference to result. */
void    flight_complete(flight_group *g, flight *f, aside_status status, void *result,
                        int tag, const aside_error *err);
/* Follower: wait for the outcome. On ASIDE_OK sets *result (a new reference) and *tag. */
aside_status flight_wait(flight_group *g, flight *f, void **result, int *tag,
                         aside_error *err);
/* Drop the caller's hold on f. release_result frees the group's reference to the result. */
void    flight_release(flight_group *g, flight *f, void (*release_result)(void *result));

#endif
