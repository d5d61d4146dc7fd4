/* table.c -- a chained hash table of intrusive nodes.
 *
 * The cache's index: key -> entry. Nodes live inside the entries, so inserting allocates
 * nothing but, now and then, a bigger bucket array. Buckets are a power of two and the table
 * doubles when the load factor passes one; a lookup compares the stored 64-bit hash (XXH3)
 * before touching the key, so a miss rarely reads key bytes. Rehashing moves every node at once:
 * with a few pointers per key it takes milliseconds for a million keys, and it happens
 * log(n) times in the life of a cache. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core.h"

enum { TABLE_MIN_BUCKETS = 64 };

struct table {
    table_node **buckets;
    size_t       mask; /* buckets - 1 */
    size_t       count;
};

uint64_t table_hash(const char *key, size_t len) { return XXH3_64bits(key, len); }

table *table_create(void)
{
    table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->buckets = calloc(TABLE_MIN_BUCKETS, sizeof *t->buckets);
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    t->mask = TABLE_MIN_BUCKETS - 1;
    return t;
}

void table_destroy(table *t)
{
    if (!t)
        return;
    free(t->buckets);
    free(t);
}

size_t table_count(const table *t) { return t->count; }

table_node *table_find(const table *t, const char *key, size_t len, uint64_t hash)
{
    for (table_node *n = t->buckets[hash & t->mask]; n; n = n->next) {
        if (n->hash == hash && n->key_len == len && memcmp(n->key, key, len) == 0)
            return n;
    }
    return NULL;
}

static bool grow(table *t)
{
    size_t size = (t->mask + 1) * 2;
    table_node **buckets = calloc(size, sizeof *buckets);
    if (!buckets)
        return false;
    for (size_t i = 0; i <= t->mask; i++) {
        table_node *n = t->buckets[i];
        while (n) {
            table_node *next = n->next;
            n->next = buckets[n->hash & (size - 1)];
            buckets[n->hash & (size - 1)] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->mask = size - 1;
    return true;
}

bool table_insert(table *t, table_node *node)
{
    table_node **bucket = &t->buckets[node->hash & t->mask];
    node->next = *bucket;
    *bucket = node;
    t->count++;
    if (t->count > t->mask + 1)
        return grow(t);
    return true;
}

void table_remove(table *t, table_node *node)
{
    for (table_node **p = &t->buckets[node->hash & t->mask]; *p; p = &(*p)->next) {
        if (*p == node) {
            *p = node->next;
            node->next = NULL;
            t->count--;
            return;
        }
    }
}

table_node *table_next(const table *t, size_t *cursor, table_node *node)
{
    if (node && node->next)
        return node->next;
    size_t i = node ? *cursor + 1 : *cursor;
    for (; i <= t->mask; i++) {
        if (t->buckets[i]) {
            *cursor = i;
            return t->buckets[i];
        }
    }
    *cursor = i;
    return NULL;
}
