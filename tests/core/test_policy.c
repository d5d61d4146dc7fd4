/* test_policy.c -- eviction order of LRU and S3-FIFO, and their byte accounting. */
#include <string.h>

#include "check.h"
#include "core/core.h"

enum { ITEMS = 100 };

static policy_node nodes[ITEMS];

static policy *fresh(const char *name, uint64_t capacity)
{
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < ITEMS; i++) {
        nodes[i].bytes = 10;
        nodes[i].key_hash = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    }
    return policy_create(name, capacity);
}

static int victim_index(policy *p)
{
    policy_node *n = policy_victim(p);
    return n ? (int)(n - nodes) : -1;
}

static void test_unknown_policy_is_refused(void) { CHECK(policy_create("mru", 100) == NULL); }

static void test_lru_evicts_least_recently_used(void)
{
    policy *p = fresh("lru", 1000);
    for (int i = 0; i < 4; i++)
        policy_insert(p, &nodes[i]);
    policy_touch(p, &nodes[0]);
    CHECK(victim_index(p) == 1);
    CHECK(victim_index(p) == 2);
    CHECK(victim_index(p) == 3);
    CHECK(victim_index(p) == 0);
    CHECK(victim_index(p) == -1);
    policy_destroy(p);
}

static void test_bytes_follow_inserts_and_removals(void)
{
    const char *names[] = {"lru", "s3fifo"};
    for (int k = 0; k < 2; k++) {
        policy *p = fresh(names[k], 1000);
        nodes[0].bytes = 7;
        nodes[1].bytes = 100;
        policy_insert(p, &nodes[0]);
        policy_insert(p, &nodes[1]);
        CHECK(policy_bytes(p) == 107);
        policy_remove(p, &nodes[0]);
        CHECK(policy_bytes(p) == 100);
        policy_victim(p);
        CHECK(policy_bytes(p) == 0);
        policy_destroy(p);
    }
}

/* Items read while in the small queue survive a flood of items read once. */
static void test_s3fifo_keeps_items_read_again_over_one_hit_wonders(void)
{
    policy *p = fresh("s3fifo", 100); /* ten items; the small queue's share is one */
    for (int i = 0; i < 10; i++)
        policy_insert(p, &nodes[i]);
    policy_touch(p, &nodes[0]);
    policy_touch(p, &nodes[1]);
    int evicted_touched = 0, evicted = 0;
    for (int i = 10; i < 30; i++) { /* twenty items read once */
        policy_insert(p, &nodes[i]);
        while (policy_bytes(p) > 100) {
            int v = victim_index(p);
            evicted++;
            evicted_touched += v == 0 || v == 1;
        }
    }
    CHECK(evicted == 20);
    CHECK(evicted_touched == 0);
    policy_destroy(p);
}

/* A key evicted from the small queue and inserted again goes straight to the main queue. */
static void test_s3fifo_ghost_sends_returning_keys_to_main(void)
{
    policy *p = fresh("s3fifo", 100); /* small queue: one item */
    policy_insert(p, &nodes[0]);
    policy_insert(p, &nodes[1]);
    CHECK(victim_index(p) == 0); /* leaves a ghost */
    policy_insert(p, &nodes[0]); /* returns: main queue */
    for (int i = 2; i < 6; i++)
        policy_insert(p, &nodes[i]);
    /* the small queue is over its share: its items go before the main queue's */
    int first_five[5];
    for (int i = 0; i < 5; i++)
        first_five[i] = victim_index(p);
    bool zero_last = first_five[4] == 0;
    for (int i = 0; i < 4; i++)
        zero_last = zero_last && first_five[i] != 0;
    CHECK(zero_last);
    policy_destroy(p);
}

/* A scan of new items does not flush items that proved popular. */
static void test_s3fifo_resists_a_scan(void)
{
    policy *p = fresh("s3fifo", 300);
    for (int i = 0; i < 10; i++) {
        policy_insert(p, &nodes[i]);
        policy_touch(p, &nodes[i]);
    }
    for (int i = 0; i < 10; i++) /* all ten move to main */
        policy_touch(p, &nodes[i]);
    int scanned_out = 0, popular_out = 0;
    for (int i = 10; i < ITEMS; i++) {
        policy_insert(p, &nodes[i]);
        while (policy_bytes(p) > 300) {
            int v = victim_index(p);
            if (v < 10)
                popular_out++;
            else
                scanned_out++;
        }
    }
    CHECK(popular_out == 0);
    CHECK(scanned_out > 0);
    policy_destroy(p);
}

static void test_every_item_is_evicted_exactly_once(void)
{
    const char *names[] = {"lru", "s3fifo"};
    for (int k = 0; k < 2; k++) {
        policy *p = fresh(names[k], 100);
        int seen[ITEMS] = {0};
        for (int i = 0; i < ITEMS; i++) {
            policy_insert(p, &nodes[i]);
            if (i % 3 == 0)
                policy_touch(p, &nodes[i]);
        }
        for (int v; (v = victim_index(p)) >= 0;)
            seen[v]++;
        int once = 0;
        for (int i = 0; i < ITEMS; i++)
            once += seen[i] == 1;
        CHECK(once == ITEMS);
        CHECK(policy_bytes(p) == 0);
        policy_destroy(p);
    }
}

int main(void)
{
    RUN(test_unknown_policy_is_refused);
    RUN(test_lru_evicts_least_recently_used);
    RUN(test_bytes_follow_inserts_and_removals);
    RUN(test_s3fifo_keeps_items_read_again_over_one_hit_wonders);
    RUN(test_s3fifo_ghost_sends_returning_keys_to_main);
    RUN(test_s3fifo_resists_a_scan);
    RUN(test_every_item_is_evicted_exactly_once);
    return CHECK_DONE();
}
