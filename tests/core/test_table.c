/* test_table.c -- the index: find what was inserted, forget what was removed, survive growth. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/core.h"

enum { MANY = 100000 };

typedef struct item {
    table_node node;
    char       key[24];
} item;

static void item_init(item *it, int i)
{
    snprintf(it->key, sizeof it->key, "key/%d", i);
    it->node.key = it->key;
    it->node.key_len = strlen(it->key);
    it->node.hash = table_hash(it->key, it->node.key_len);
}

static table_node *find(table *t, const char *key)
{
    return table_find(t, key, strlen(key), table_hash(key, strlen(key)));
}

static void test_every_inserted_key_is_found_after_growth(void)
{
    table *t = table_create();
    item *items = calloc(MANY, sizeof *items);
    for (int i = 0; i < MANY; i++) {
        item_init(&items[i], i);
        table_insert(t, &items[i].node);
    }
    CHECK(table_count(t) == MANY);
    int found = 0;
    for (int i = 0; i < MANY; i++)
        found += find(t, items[i].key) == &items[i].node;
    CHECK(found == MANY);
    CHECK(find(t, "key/-1") == NULL);
    CHECK(find(t, "key/1000000") == NULL);
    table_destroy(t);
    free(items);
}

static void test_removed_keys_are_gone_and_others_stay(void)
{
    table *t = table_create();
    item *items = calloc(1000, sizeof *items);
    for (int i = 0; i < 1000; i++) {
        item_init(&items[i], i);
        table_insert(t, &items[i].node);
    }
    for (int i = 0; i < 1000; i += 2)
        table_remove(t, &items[i].node);
    CHECK(table_count(t) == 500);
    int right = 0;
    for (int i = 0; i < 1000; i++)
        right += (find(t, items[i].key) != NULL) == (i % 2 == 1);
    CHECK(right == 1000);
    table_destroy(t);
    free(items);
}

static void test_iteration_visits_each_node_once(void)
{
    table *t = table_create();
    item *items = calloc(5000, sizeof *items);
    for (int i = 0; i < 5000; i++) {
        item_init(&items[i], i);
        table_insert(t, &items[i].node);
    }
    int *seen = calloc(5000, sizeof *seen);
    size_t cursor = 0, visited = 0;
    for (table_node *n = table_next(t, &cursor, NULL); n; n = table_next(t, &cursor, n)) {
        seen[(item *)n - items]++;
        visited++;
    }
    CHECK(visited == 5000);
    int once = 0;
    for (int i = 0; i < 5000; i++)
        once += seen[i] == 1;
    CHECK(once == 5000);
    table_destroy(t);
    free(items);
    free(seen);
}

static void test_keys_differing_only_in_length_are_distinct(void)
{
    table *t = table_create();
    item a, b;
    item_init(&a, 1);
    item_init(&b, 1);
    b.node.key_len = 3; /* "key" */
    b.node.hash = table_hash(b.key, 3);
    table_insert(t, &a.node);
    CHECK(table_find(t, "key", 3, table_hash("key", 3)) == NULL);
    table_insert(t, &b.node);
    CHECK(table_find(t, "key", 3, table_hash("key", 3)) == &b.node);
    CHECK(find(t, "key/1") == &a.node);
    table_destroy(t);
}

int main(void)
{
    RUN(test_every_inserted_key_is_found_after_growth);
    RUN(test_removed_keys_are_gone_and_others_stay);
    RUN(test_iteration_visits_each_node_once);
    RUN(test_keys_differing_only_in_length_are_distinct);
    return CHECK_DONE();
}
