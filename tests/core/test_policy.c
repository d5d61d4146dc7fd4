/* test_policy.c -- eviction order of LRU, LFU and S3-FIFO, and their byte accounting. */
#include <string.h>

#include "check.h"
#include "core/core.h"

enum { ITEMS = 100 };

static const char *const all_policies[] = {"lru", "lfu", "s3fifo"};
enum { POLICIES = sizeof all_policies / sizeof all_policies[0] };

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
    for (int k = 0; k < POLICIES; k++) {
        policy *p = fresh(all_policies[k], 1000);
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
    for (int k = 0; k < POLICIES; k++) {
        policy *p = fresh(all_policies[k], 100);
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

static void test_every_name_listed_creates_a_policy(void)
{
    const char *const *names = policy_names();
    int listed = 0;
    for (; names[listed]; listed++) {
        policy *p = policy_create(names[listed], 100);
        CHECK(p != NULL);
        policy_destroy(p);
    }
    CHECK(listed == POLICIES);
    CHECK(strcmp(names[0], "s3fifo") == 0); /* the default comes first */
}

static void test_victim_of_an_empty_policy_is_null(void)
{
    for (int k = 0; k < POLICIES; k++) {
        policy *p = fresh(all_policies[k], 100);
        CHECK(policy_victim(p) == NULL);
        policy_insert(p, &nodes[0]);
        CHECK(victim_index(p) == 0);
        CHECK(policy_victim(p) == NULL); /* emptied again */
        CHECK(policy_bytes(p) == 0);
        policy_destroy(p);
    }
}

static void test_lfu_evicts_least_frequently_used(void)
{
    policy *p = fresh("lfu", 1000);
    for (int i = 0; i < 4; i++)
        policy_insert(p, &nodes[i]);
    int reads[4] = {3, 0, 5, 1}; /* counts 4, 1, 6, 2 */
    for (int i = 0; i < 4; i++) {
        for (int r = 0; r < reads[i]; r++)
            policy_touch(p, &nodes[i]);
    }
    CHECK(victim_index(p) == 1);
    CHECK(victim_index(p) == 3);
    CHECK(victim_index(p) == 0);
    CHECK(victim_index(p) == 2);
    CHECK(victim_index(p) == -1);
    policy_destroy(p);
}

static void test_lfu_breaks_ties_by_recency(void)
{
    policy *p = fresh("lfu", 1000);
    for (int i = 0; i < 4; i++)
        policy_insert(p, &nodes[i]);
    /* every item read once, in the order 2, 0, 3, 1: the least recently read goes first */
    int order[4] = {2, 0, 3, 1};
    for (int i = 0; i < 4; i++)
        policy_touch(p, &nodes[order[i]]);
    for (int i = 0; i < 4; i++)
        CHECK(victim_index(p) == order[i]);
    policy_destroy(p);
}

/* After a halving, counts 2 and 3 are both 1: the item that had 2 goes first even if it was
 * read more recently, and both now go before an item inserted after the halving (count 1, more
 * recent). Without the halving the new item would go before both. */
static void test_lfu_halving_merges_counts_lower_first(void)
{
    policy *p = fresh("lfu", 1000);
    for (int i = 0; i < 4; i++)
        policy_insert(p, &nodes[i]);
    policy_touch(p, &nodes[1]);
    policy_touch(p, &nodes[1]); /* item 1: count 3 */
    policy_touch(p, &nodes[0]); /* item 0: count 2, read after item 1 */
    int reads_to_halving = POLICY_LFU_AGING_READS_PER_ITEM * 4 - 3;
    for (int r = 0; r < reads_to_halving; r++)
        policy_touch(p, &nodes[3]); /* item 3: hot; the last read halves every count */
    policy_insert(p, &nodes[4]);
    CHECK(victim_index(p) == 2); /* count 1 halved to 0 */
    CHECK(victim_index(p) == 0);
    CHECK(victim_index(p) == 1);
    CHECK(victim_index(p) == 4);
    CHECK(victim_index(p) == 3);
    policy_destroy(p);
}

/* Evict, as the cache does, until an item of 10 bytes fits. */
static void make_room(policy *p, uint64_t capacity, bool *cached, int *evicted)
{
    while (policy_bytes(p) + 10 > capacity) {
        int v = victim_index(p);
        if (v < 0)
            return;
        cached[v] = false;
        evicted[v]++;
    }
}

/* An item read a great deal once, then never, leaves; an item still read stays. */
static void test_lfu_aging_lets_a_once_hot_item_leave(void)
{
    enum { CAPACITY = 100, STREAM = 5000, HOT_ONCE = 0, HOT_STILL = 1, FIRST_OTHER = 2 };
    policy *p = fresh("lfu", CAPACITY); /* ten items */
    bool cached[ITEMS] = {false};
    int evicted[ITEMS] = {0};
    policy_insert(p, &nodes[HOT_ONCE]);
    policy_insert(p, &nodes[HOT_STILL]);
    cached[HOT_ONCE] = cached[HOT_STILL] = true;
    for (int r = 0; r < 1000; r++)
        policy_touch(p, &nodes[HOT_ONCE]);
    int left_at = -1;
    for (int i = 0; i < STREAM && left_at < 0; i++) {
        int other = FIRST_OTHER + i % (ITEMS - FIRST_OTHER); /* read twice, then forgotten */
        if (!cached[other]) {
            make_room(p, CAPACITY, cached, evicted);
            policy_insert(p, &nodes[other]);
            cached[other] = true;
        }
        policy_touch(p, &nodes[other]);
        policy_touch(p, &nodes[other]);
        if (i % 2 == 0)
            policy_touch(p, &nodes[HOT_STILL]);
        if (evicted[HOT_ONCE])
            left_at = i;
    }
    CHECK(left_at > 0);
    CHECK(evicted[HOT_STILL] == 0);
    policy_destroy(p);
}

/* Resizing keeps every total exact and the item's place: the eviction order is unchanged. */
static void test_resize_keeps_totals_exact_and_order(void)
{
    for (int k = 0; k < POLICIES; k++) {
        policy *p = fresh(all_policies[k], 1000);
        for (int i = 0; i < 3; i++)
            policy_insert(p, &nodes[i]);
        policy_resize(p, &nodes[1], 250);
        CHECK(nodes[1].bytes == 250);
        CHECK(policy_bytes(p) == 270);
        policy_resize(p, &nodes[0], 1);
        CHECK(policy_bytes(p) == 261);
        CHECK(victim_index(p) == 0);
        CHECK(policy_bytes(p) == 260);
        CHECK(victim_index(p) == 1);
        CHECK(policy_bytes(p) == 10);
        CHECK(victim_index(p) == 2);
        CHECK(policy_bytes(p) == 0);
        policy_destroy(p);
    }
}

/* S3-FIFO keeps a total per queue: a resize in the main queue and one in the small queue must
 * both land in the right total, or the small queue's share (and the final total) goes wrong. */
static void test_s3fifo_resize_in_either_queue_keeps_totals(void)
{
    policy *p = fresh("s3fifo", 100); /* the small queue's share: 10 bytes */
    policy_insert(p, &nodes[0]);
    policy_touch(p, &nodes[0]);
    policy_insert(p, &nodes[1]);
    policy_insert(p, &nodes[2]);
    CHECK(victim_index(p) == 1); /* item 0, read, moved to the main queue on the way */
    policy_resize(p, &nodes[0], 70); /* main queue */
    policy_resize(p, &nodes[2], 5);  /* small queue */
    CHECK(policy_bytes(p) == 75);
    policy_insert(p, &nodes[3]); /* small: 15 bytes, over its share */
    CHECK(victim_index(p) == 2); /* the small queue's tail, not the main queue's */
    CHECK(policy_bytes(p) == 80);
    CHECK(victim_index(p) == 0); /* small is within its share: the main queue's turn */
    CHECK(policy_bytes(p) == 10);
    CHECK(victim_index(p) == 3);
    CHECK(policy_bytes(p) == 0);
    policy_destroy(p);
}

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static uint64_t live_bytes(const bool *live)
{
    uint64_t sum = 0;
    for (int i = 0; i < ITEMS; i++)
        sum += live[i] ? nodes[i].bytes : 0;
    return sum;
}

/* One random operation on item i; returns false when a victim was not a live item. */
static bool random_step(policy *p, bool *live, int i, uint64_t dice, uint64_t *state)
{
    if (!live[i]) {
        nodes[i].bytes = 1 + next_random(state) % 1000;
        policy_insert(p, &nodes[i]);
        live[i] = true;
    } else if (dice < 40) {
        policy_touch(p, &nodes[i]);
    } else if (dice < 55) {
        policy_remove(p, &nodes[i]);
        live[i] = false;
    } else if (dice < 75) {
        policy_resize(p, &nodes[i], 1 + next_random(state) % 1000);
    } else {
        int v = victim_index(p);
        if (v < 0 || !live[v])
            return false;
        live[v] = false;
    }
    return true;
}

static void test_random_operations_keep_bytes_equal_to_live_items(void)
{
    enum { STEPS = 20000 };
    for (int k = 0; k < POLICIES; k++) {
        policy *p = fresh(all_policies[k], 5000);
        bool live[ITEMS] = {false};
        uint64_t state = 0x2545F4914F6CDD1Dull;
        int bad_victims = 0, bad_totals = 0;
        for (int s = 0; s < STEPS; s++) {
            int i = (int)(next_random(&state) % ITEMS);
            if (!random_step(p, live, i, next_random(&state) % 100, &state))
                bad_victims++;
            bad_totals += policy_bytes(p) != live_bytes(live);
        }
        for (int v; (v = victim_index(p)) >= 0;) {
            bad_victims += !live[v];
            live[v] = false;
        }
        CHECK(bad_victims == 0);
        CHECK(bad_totals == 0);
        CHECK(live_bytes(live) == 0);
        CHECK(policy_bytes(p) == 0);
        policy_destroy(p);
    }
}

int main(void)
{
    RUN(test_unknown_policy_is_refused);
    RUN(test_every_name_listed_creates_a_policy);
    RUN(test_victim_of_an_empty_policy_is_null);
    RUN(test_lru_evicts_least_recently_used);
    RUN(test_bytes_follow_inserts_and_removals);
    RUN(test_s3fifo_keeps_items_read_again_over_one_hit_wonders);
    RUN(test_s3fifo_ghost_sends_returning_keys_to_main);
    RUN(test_s3fifo_resists_a_scan);
    RUN(test_every_item_is_evicted_exactly_once);
    RUN(test_lfu_evicts_least_frequently_used);
    RUN(test_lfu_breaks_ties_by_recency);
    RUN(test_lfu_halving_merges_counts_lower_first);
    RUN(test_lfu_aging_lets_a_once_hot_item_leave);
    RUN(test_resize_keeps_totals_exact_and_order);
    RUN(test_s3fifo_resize_in_either_queue_keeps_totals);
    RUN(test_random_operations_keep_bytes_equal_to_live_items);
    return CHECK_DONE();
}
