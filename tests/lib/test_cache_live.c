/* test_cache_live.c -- what the cache alone holds (live.c, op.c): collection operations and
 * JSON edits, their life across restarts, the memory budget of values that cannot be evicted,
 * compaction of the journal, and concurrent operations. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cache_test.h"
#include "value/value.h"

static void test_collection_operations_create_change_and_read_a_key(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){0});
    /* a read of a missing collection answers an empty one and creates nothing */
    CHECK(op_answers(c, "l", "list_length", NULL, "0"));
    CHECK(op_answers(c, "n", "counter_get", NULL, "0"));
    CHECK(!cached(c, "l") && !cached(c, "n") && stats_of(c).keys == 0);
    CHECK(op_answers(c, "l", "list_push", "{\"values\": [1, 2]}", "2"));
    CHECK(op_answers(c, "l", "list_push", "{\"value\": 0, \"end\": \"front\"}", "3"));
    CHECK(op_answers(c, "l", "list_range", NULL, "[0, 1, 2]"));
    CHECK(op_answers(c, "s", "set_add", "{\"values\": [\"x\", \"y\", \"x\"]}", "2"));
    CHECK(op_answers(c, "m", "map_set", "{\"fields\": {\"a\": 1, \"b\": [true]}}", "2"));
    CHECK(op_answers(c, "m", "map_increment", "{\"field\": \"a\", \"by\": 4}", "5"));
    CHECK(op_answers(c, "n", "counter_increment", "{\"by\": 7}", "7"));
    CHECK(op_answers(c, "d.json", "json_set", "{\"pointer\": \"\", \"value\": {\"v\": [1]}}",
                     "{\"result\": \"success\"}"));
    CHECK(op_answers(c, "d.json", "json_set", "{\"pointer\": \"/v/-\", \"value\": 2}",
                     "{\"result\": \"success\"}"));
    /* reads through the cache answer each as JSON of its type */
    CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[0, 1, 2]"));
    CHECK(reads_as(c, "s", ASIDE_TYPE_SET, "[\"x\", \"y\"]"));
    CHECK(reads_as(c, "m", ASIDE_TYPE_MAP, "{\"a\": 5, \"b\": [true]}"));
    CHECK(reads_as(c, "n", ASIDE_TYPE_COUNTER, "7"));
    CHECK(reads_as(c, "d.json", ASIDE_TYPE_JSON, "{\"v\": [1, 2]}"));
    /* a change after a read is seen by the next read */
    CHECK(op_answers(c, "l", "list_pop", NULL, "2"));
    CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[0, 1]"));
    aside_entry_info info;
    CHECK(aside_entry(c, "m", &info, NULL) == ASIDE_OK);
    CHECK(info.type == ASIDE_TYPE_MAP && info.cache_only && info.expires_ms == 0);
    free(info.key);
    CHECK(stats_of(c).keys == 5);
    /* nothing of a collection lands in the disk tier as a value file */
    CHECK(file_size(f.cache, "l") == -1 && file_size(f.cache, "m") == -1);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_collections_and_json_edits_survive_a_restart(void)
{
    static const aside_fsync policies[] = {ASIDE_FSYNC_EVERYSEC, ASIDE_FSYNC_ALWAYS,
                                           ASIDE_FSYNC_NEVER};
    for (size_t p = 0; p < 3; p++) {
        fixture f;
        fixture_init(&f);
        write_file(f.sor, "doc.json", "{\"from\": \"sor\", \"n\": 1}", 23);
        cache_options o = {.fsync = policies[p]};
        aside_cache *c = open_with(&f, &o);
        CHECK(op_answers(c, "l", "list_push", "{\"values\": [\"a\", \"b\", \"c\"]}", "3"));
        CHECK(op_answers(c, "l", "list_pop", "{\"end\": \"front\"}", "\"a\""));
        CHECK(op_answers(c, "s", "set_add", "{\"values\": [3, 1, 2]}", "3"));
        CHECK(op_answers(c, "s", "set_remove", "{\"value\": 2}", "1"));
        CHECK(op_answers(c, "m", "map_set", "{\"field\": \"f\", \"value\": {\"deep\": [1]}}",
                         "1"));
        CHECK(op_answers(c, "m", "map_increment", "{\"field\": \"x\", \"by\": 0.5}", "0.5"));
        for (int i = 0; i < 10; i++)
            CHECK(op_status(c, "n", "counter_increment", NULL, NULL) == ASIDE_OK);
        CHECK(op_answers(c, "doc.json", "json_set", "{\"pointer\": \"/n\", \"value\": 2}",
                         "{\"result\": \"success\"}"));
        CHECK(op_answers(c, "doc.json", "json_merge", "{\"patch\": {\"from\": null, \"e\": 1}}",
                         "{\"n\": 2, \"e\": 1}"));
        aside_cache_close(c);
        c = open_with(&f, &o);
        CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[\"b\", \"c\"]"));
        CHECK(reads_as(c, "s", ASIDE_TYPE_SET, "[1, 3]"));
        CHECK(reads_as(c, "m", ASIDE_TYPE_MAP, "{\"f\": {\"deep\": [1]}, \"x\": 0.5}"));
        CHECK(reads_as(c, "n", ASIDE_TYPE_COUNTER, "10"));
        CHECK(reads_as(c, "doc.json", ASIDE_TYPE_JSON, "{\"n\": 2, \"e\": 1}"));
        CHECK(op_answers(c, "l", "list_push", "{\"value\": \"d\"}", "3"));
        CHECK(stats_of(c).sor_fetches == 0); /* the edited document is the cache's own now */
        aside_cache_close(c);
        /* a second restart replays what the first run and the second wrote */
        c = open_with(&f, &o);
        CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[\"b\", \"c\", \"d\"]"));
        CHECK(reads_as(c, "doc.json", ASIDE_TYPE_JSON, "{\"n\": 2, \"e\": 1}"));
        aside_cache_close(c);
        fixture_done(&f);
    }
}

static void test_a_collection_operation_on_a_put_value_is_wrong_type_and_changes_nothing(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){0});
    CHECK(aside_put(c, "b.bin", NULL, "raw bytes", 9, NULL) == ASIDE_OK);
    aside_entry_info before;
    CHECK(aside_entry(c, "b.bin", &before, NULL) == ASIDE_OK);
    free(before.key);
    aside_error err;
    CHECK(op_status(c, "b.bin", "list_push", "{\"value\": 1}", &err) == ASIDE_ERR_WRONG_TYPE);
    CHECK(strstr(err.message, "bytes") != NULL);
    CHECK(op_status(c, "b.bin", "list_length", NULL, NULL) == ASIDE_ERR_WRONG_TYPE);
    CHECK(op_status(c, "b.bin", "counter_increment", NULL, NULL) == ASIDE_ERR_WRONG_TYPE);
    CHECK(op_status(c, "b.bin", "json_set", "{\"pointer\": \"\", \"value\": 1}", NULL) ==
          ASIDE_ERR_WRONG_TYPE);
    aside_entry_info after;
    CHECK(aside_entry(c, "b.bin", &after, NULL) == ASIDE_OK);
    free(after.key);
    CHECK(after.generation == before.generation && after.type == ASIDE_TYPE_BYTES);
    aside_value *v = NULL;
    CHECK(aside_get(c, "b.bin", &v, NULL, NULL) == ASIDE_OK && value_is(v, "raw bytes", 9));
    aside_value_release(v);
    /* and the other way round: a value operation's type check on a collection */
    CHECK(op_answers(c, "l", "list_push", "{\"value\": 1}", "1"));
    CHECK(op_status(c, "l", "map_set", "{\"field\": \"a\", \"value\": 1}", NULL) ==
          ASIDE_ERR_WRONG_TYPE);
    CHECK(op_status(c, "l", "json_get", NULL, NULL) == ASIDE_ERR_WRONG_TYPE);
    CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[1]"));
    aside_cache_close(c);
    c = open_with(&f, &(cache_options){0});
    CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[1]"));
    CHECK(aside_get(c, "b.bin", &v, NULL, NULL) == ASIDE_OK && value_is(v, "raw bytes", 9));
    aside_value_release(v);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_put_over_a_collection_replaces_it_for_good(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){.fsync = ASIDE_FSYNC_ALWAYS});
    CHECK(op_answers(c, "k", "list_push", "{\"values\": [1, 2, 3]}", "3"));
    CHECK(aside_put(c, "k", NULL, "plain", 5, NULL) == ASIDE_OK);
    aside_value *v = NULL;
    CHECK(aside_get(c, "k", &v, NULL, NULL) == ASIDE_OK && value_is(v, "plain", 5) &&
          aside_value_type_of(v) == ASIDE_TYPE_BYTES);
    aside_value_release(v);
    CHECK(op_status(c, "k", "list_length", NULL, NULL) == ASIDE_ERR_WRONG_TYPE);
    aside_cache_close(c);
    c = open_with(&f, &(cache_options){.fsync = ASIDE_FSYNC_ALWAYS});
    CHECK(aside_get(c, "k", &v, NULL, NULL) == ASIDE_OK && value_is(v, "plain", 5) &&
          aside_value_type_of(v) == ASIDE_TYPE_BYTES);
    aside_value_release(v);
    CHECK(op_status(c, "k", "list_length", NULL, NULL) == ASIDE_ERR_WRONG_TYPE);
    /* and a put of a collection type over a file makes it a collection again */
    aside_read_options as_list = {.type = "list"};
    CHECK(aside_put(c, "k", &as_list, "[\"x\"]", 5, NULL) == ASIDE_OK);
    CHECK(op_answers(c, "k", "list_push", "{\"value\": \"y\"}", "2"));
    CHECK(file_size(f.cache, "k") == -1);
    aside_cache_close(c);
    c = open_with(&f, &(cache_options){.fsync = ASIDE_FSYNC_ALWAYS});
    CHECK(reads_as(c, "k", ASIDE_TYPE_LIST, "[\"x\", \"y\"]"));
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_a_deleted_collection_stays_deleted_after_a_restart(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){0});
    CHECK(op_answers(c, "gone", "set_add", "{\"value\": 1}", "1"));
    CHECK(op_answers(c, "kept", "set_add", "{\"value\": 2}", "1"));
    CHECK(aside_delete(c, "gone", NULL) == ASIDE_OK);
    CHECK(aside_delete(c, "gone", NULL) == ASIDE_ERR_NOT_FOUND);
    aside_cache_close(c);
    c = open_with(&f, &(cache_options){0});
    CHECK(!cached(c, "gone") && cached(c, "kept"));
    CHECK(stats_of(c).keys == 1);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_compact_keeps_the_content_and_shrinks_the_journal(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){0});
    for (int i = 0; i < 300; i++) {
        char args[64];
        snprintf(args, sizeof args, "{\"value\": %d}", i);
        CHECK(op_status(c, "l", "list_push", args, NULL) == ASIDE_OK);
        CHECK(op_status(c, "n", "counter_increment", NULL, NULL) == ASIDE_OK);
        if (i >= 3)
            CHECK(op_status(c, "l", "list_pop", "{\"end\": \"front\"}", NULL) == ASIDE_OK);
    }
    CHECK(op_answers(c, "gone", "set_add", "{\"value\": 1}", "1"));
    CHECK(aside_delete(c, "gone", NULL) == ASIDE_OK);
    CHECK(aside_expire(c, "n", 3600 * 1000, NULL) == ASIDE_OK);
    aside_stats before = stats_of(c);
    CHECK(before.log_bytes > 10000 && before.log_bytes == (uint64_t)file_size(f.cache, ".aside/journal"));
    CHECK(aside_compact(c, NULL) == ASIDE_OK);
    aside_stats after = stats_of(c);
    CHECK(after.log_bytes < before.log_bytes / 10);
    CHECK(after.log_compactions == before.log_compactions + 1);
    CHECK(after.log_bytes == (uint64_t)file_size(f.cache, ".aside/journal"));
    CHECK(file_size(f.cache, ".aside/journal.new") == -1);
    CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[297, 298, 299]"));
    CHECK(reads_as(c, "n", ASIDE_TYPE_COUNTER, "300"));
    CHECK(op_answers(c, "n", "counter_increment", NULL, "301"));
    aside_cache_close(c);
    c = open_with(&f, &(cache_options){0});
    CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[297, 298, 299]"));
    CHECK(reads_as(c, "n", ASIDE_TYPE_COUNTER, "301"));
    CHECK(ttl_of(c, "n") > 3500 * 1000);
    CHECK(!cached(c, "gone"));
    CHECK(stats_of(c).keys == 2);
    /* a second compaction of the same content writes the same */
    uint64_t once = stats_of(c).log_bytes;
    CHECK(aside_compact(c, NULL) == ASIDE_OK);
    CHECK(aside_compact(c, NULL) == ASIDE_OK);
    CHECK(stats_of(c).log_bytes <= once);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_the_journal_compacts_itself_past_its_threshold(void)
{
    fixture f;
    fixture_init(&f);
    cache_options o = {.journal_compact_bytes = 16 * 1024};
    aside_cache *c = open_with(&f, &o);
    int ops = 0;
    for (; ops < 2000 && stats_of(c).log_bytes <= 40 * 1024; ops++)
        CHECK(op_status(c, "n", "counter_increment", NULL, NULL) == ASIDE_OK);
    for (int waited = 0; waited < DEADLINE_MS && stats_of(c).log_compactions == 0;
         waited += POLL_MS)
        pause_ms(POLL_MS);
    aside_stats s = stats_of(c);
    CHECK(s.log_compactions >= 1);
    CHECK(s.log_bytes < 16 * 1024);
    char want[32];
    snprintf(want, sizeof want, "%d", ops);
    CHECK(reads_as(c, "n", ASIDE_TYPE_COUNTER, want));
    aside_cache_close(c);
    c = open_with(&f, &o);
    CHECK(reads_as(c, "n", ASIDE_TYPE_COUNTER, want));
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_a_collection_that_would_pass_the_memory_budget_is_full_and_changes_nothing(void)
{
    enum { BUDGET = 16 * 1024, BIG = 20 * 1024 };
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){.memory = BUDGET});
    char *args = malloc(BIG + 64);
    int n = snprintf(args, BIG + 64, "{\"value\": \"");
    memset(args + n, 'x', BIG);
    snprintf(args + n + BIG, 64, "\"}");
    aside_error err;
    CHECK(op_status(c, "fresh", "list_push", args, &err) == ASIDE_ERR_FULL);
    CHECK(!cached(c, "fresh") && stats_of(c).keys == 0 && stats_of(c).pinned_bytes == 0);
    CHECK(op_answers(c, "l", "list_push", "{\"values\": [1, 2]}", "2"));
    aside_entry_info before;
    CHECK(aside_entry(c, "l", &before, NULL) == ASIDE_OK);
    free(before.key);
    CHECK(op_status(c, "l", "list_push", args, &err) == ASIDE_ERR_FULL);
    CHECK(strlen(err.message) > 0);
    aside_entry_info after;
    CHECK(aside_entry(c, "l", &after, NULL) == ASIDE_OK);
    free(after.key);
    CHECK(after.generation == before.generation && after.bytes == before.bytes);
    CHECK(op_answers(c, "l", "list_range", NULL, "[1, 2]"));
    aside_cache_close(c);
    /* nothing of the refused change was journaled */
    c = open_with(&f, &(cache_options){.memory = BUDGET});
    CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[1, 2]") && !cached(c, "fresh"));
    aside_cache_close(c);
    free(args);
    fixture_done(&f);
}

/* The budget check must count what a change really adds: one push of many small values adds
 * far more than the text of its arguments. */
static void test_a_push_of_many_values_cannot_pass_the_memory_budget(void)
{
    enum { BUDGET = 64 * 1024, VALUES = 2000 };
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){.memory = BUDGET});
    char *args = malloc(VALUES * 8 + 32);
    size_t at = (size_t)sprintf(args, "{\"values\": [");
    for (int i = 0; i < VALUES; i++)
        at += (size_t)sprintf(args + at, "%s%d", i ? "," : "", i % 10);
    sprintf(args + at, "]}");
    aside_status st = op_status(c, "many", "list_push", args, NULL);
    aside_stats s = stats_of(c);
    CHECK(st == ASIDE_ERR_FULL || s.pinned_bytes <= BUDGET);
    if (st == ASIDE_OK)
        fprintf(stderr, "  a push of %d values was accepted: %llu bytes that cannot be "
                "evicted, budget %d\n", VALUES, (unsigned long long)s.pinned_bytes, BUDGET);
    free(args);
    aside_cache_close(c);
    fixture_done(&f);
}

/* When what cannot be evicted fills the budget, operations that shrink a collection (and its
 * deletion) are the way out: they must not be refused as if they grew it. */
static void test_a_full_budget_still_lets_a_collection_shrink(void)
{
    enum { BUDGET = 32 * 1024 };
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){.memory = BUDGET});
    CHECK(op_answers(c, "l", "list_push", "{\"values\": [1, 2, 3, 4]}", "4"));
    CHECK(op_answers(c, "m", "map_set", "{\"fields\": {\"a\": 1, \"b\": 2}}", "2"));
    /* a pinned file takes all but a few bytes of the rest */
    uint64_t left = BUDGET - stats_of(c).pinned_bytes;
    CHECK(left > 100);
    char *data = malloc(left);
    fill(data, left - 8, 4);
    write_file(f.sor, "filler.bin", data, left - 8);
    free(data);
    CHECK(aside_pin(c, "filler.bin", NULL, NULL) == ASIDE_OK);
    CHECK(stats_of(c).pinned_bytes == BUDGET - 8);
    aside_error err;
    CHECK(op_status(c, "l", "list_push", "{\"value\": 5}", &err) == ASIDE_ERR_FULL);
    aside_status pop = op_status(c, "l", "list_pop", NULL, &err);
    CHECK(pop == ASIDE_OK);
    if (pop != ASIDE_OK)
        fprintf(stderr, "  list_pop refused: %s\n", err.message);
    CHECK(op_status(c, "l", "list_trim", "{\"start\": 1}", NULL) == ASIDE_OK);
    CHECK(op_status(c, "m", "map_delete", "{\"field\": \"a\"}", NULL) == ASIDE_OK);
    CHECK(op_answers(c, "l", "list_length", NULL, pop == ASIDE_OK ? "2" : "4"));
    CHECK(aside_delete(c, "m", NULL) == ASIDE_OK);
    aside_cache_close(c);
    fixture_done(&f);
}

/* A collection's home is memory: telemetry must not show it on disk until it is first read. */
static void test_a_collection_is_reported_in_memory(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){0});
    CHECK(op_answers(c, "l", "list_push", "{\"value\": 1}", "1"));
    aside_entry_info info;
    CHECK(aside_entry(c, "l", &info, NULL) == ASIDE_OK);
    free(info.key);
    CHECK(info.in_memory && info.pinned && info.cache_only);
    CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[1]"));
    CHECK(op_answers(c, "l", "list_push", "{\"value\": 2}", "2"));
    CHECK(in_memory(c, "l"));
    aside_cache_close(c);
    c = open_with(&f, &(cache_options){0});
    CHECK(in_memory(c, "l"));
    aside_cache_close(c);
    fixture_done(&f);
}

/* ---- collections under concurrency ----------------------------------------------------------- */

enum { WORKERS = 4, WORKER_OPS = 300, EDITS = 3000, MEMBERS = 32 };

typedef struct worker {
    aside_cache *c;
    int          id;
    int          failures;
    atomic_bool *stop;
} worker;

/* Replaces members of one document (each replaced value is freed) while others read it. */
static void *edit_document(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < EDITS; i++) {
        char args[160];
        snprintf(args, sizeof args, "{\"pointer\": \"/w%d-%d\", \"value\": {\"i\": [%d, "
                 "\"a value long enough to be worth copying\"]}}", w->id, i % MEMBERS, i);
        if (op_status(w->c, "shared.json", "json_set", args, NULL) != ASIDE_OK)
            w->failures++;
    }
    return NULL;
}

static void *read_document(void *arg)
{
    worker *w = arg;
    while (!atomic_load(w->stop)) {
        char *result = NULL;
        const char *pointer = w->id % 2 ? "{\"pointer\": \"/w0-1\"}" : NULL;
        if (aside_op(w->c, "shared.json", "json_get", pointer, &result, NULL) != ASIDE_OK) {
            w->failures += pointer == NULL; /* a member may not be there yet */
            continue;
        }
        json_t *doc = json_loads(result, 0, NULL);
        w->failures += !json_is_object(doc);
        json_decref(doc);
        free(result);
        if (aside_op(w->c, "c", "counter_get", NULL, &result, NULL) == ASIDE_OK)
            free(result);
    }
    return NULL;
}

static void *count_up(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < WORKER_OPS; i++)
        w->failures += op_status(w->c, "c", "counter_increment", NULL, NULL) != ASIDE_OK;
    return NULL;
}

/* Readers of a document get whole JSON while writers change it; increments from many threads
 * add up exactly; both survive a restart as they were. */
static void test_concurrent_reads_and_edits_of_collections_are_whole_and_exact(void)
{
    fixture f;
    fixture_init(&f);
    cache_options o = {.memory = 8 << 20, .fsync = ASIDE_FSYNC_NEVER};
    aside_cache *c = open_with(&f, &o);
    CHECK(op_answers(c, "shared.json", "json_set", "{\"pointer\": \"\", \"value\": {}}",
                     "{\"result\": \"success\"}"));
    atomic_bool stop = false;
    pthread_t threads[3 * WORKERS];
    worker workers[3 * WORKERS];
    for (int i = 0; i < 3 * WORKERS; i++) {
        workers[i] = (worker){c, i % WORKERS, 0, &stop};
        pthread_create(&threads[i], NULL,
                       i < WORKERS ? edit_document : i < 2 * WORKERS ? count_up : read_document,
                       &workers[i]);
    }
    for (int i = 0; i < 2 * WORKERS; i++)
        pthread_join(threads[i], NULL);
    atomic_store(&stop, true);
    int failures = 0;
    for (int i = 2 * WORKERS; i < 3 * WORKERS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < 3 * WORKERS; i++)
        failures += workers[i].failures;
    CHECK(failures == 0);
    char want[32];
    snprintf(want, sizeof want, "%d", WORKERS * WORKER_OPS);
    CHECK(reads_as(c, "c", ASIDE_TYPE_COUNTER, want));
    char *doc = NULL;
    CHECK(aside_op(c, "shared.json", "json_get", NULL, &doc, NULL) == ASIDE_OK);
    json_t *parsed = doc ? json_loads(doc, 0, NULL) : NULL;
    CHECK(json_object_size(parsed) == WORKERS * MEMBERS);
    aside_cache_close(c);
    c = open_with(&f, &o);
    char *again = NULL;
    CHECK(aside_op(c, "shared.json", "json_get", NULL, &again, NULL) == ASIDE_OK);
    CHECK(doc && again && same_json(doc, again));
    CHECK(reads_as(c, "c", ASIDE_TYPE_COUNTER, want));
    json_decref(parsed);
    free(doc);
    free(again);
    aside_cache_close(c);
    fixture_done(&f);
}

/* Operations with the "always" policy wait for the disk after the cache lock is released, so a
 * compaction can run in between: every one of them must still return. */
typedef struct pusher {
    aside_cache *c;
    int          id;
    int          failures;
    atomic_bool  done;
} pusher;

static void *push_always(void *arg)
{
    pusher *p = arg;
    char key[16];
    snprintf(key, sizeof key, "q%d", p->id);
    for (int i = 0; i < WORKER_OPS; i++) {
        char args[64];
        snprintf(args, sizeof args, "{\"value\": %d}", i);
        aside_error err;
        aside_status st = op_status(p->c, key, "list_push", args, &err);
        if (st == ASIDE_OK && i % 4 == 3)
            st = op_status(p->c, key, "list_pop", "{\"end\": \"front\"}", &err);
        if (st != ASIDE_OK && p->failures++ == 0)
            fprintf(stderr, "  %s: %s: %s\n", key, aside_status_name(st), err.message);
    }
    atomic_store(&p->done, true);
    return NULL;
}

static void test_operations_waiting_for_the_disk_return_across_compactions(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){.fsync = ASIDE_FSYNC_ALWAYS});
    pthread_t threads[WORKERS];
    pusher pushers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        pushers[i] = (pusher){c, i, 0, false};
        pthread_create(&threads[i], NULL, push_always, &pushers[i]);
    }
    int compactions = 0;
    bool all_done = false;
    for (int i = 0; i < 20000 && !all_done; i++) {
        compactions += aside_compact(c, NULL) == ASIDE_OK;
        all_done = true;
        for (int k = 0; k < WORKERS; k++)
            all_done &= atomic_load(&pushers[k].done);
    }
    for (int waited = 0; waited < DEADLINE_MS && !all_done; waited += POLL_MS) {
        pause_ms(POLL_MS);
        all_done = true;
        for (int k = 0; k < WORKERS; k++)
            all_done &= atomic_load(&pushers[k].done);
    }
    CHECK(all_done);
    /* a stuck waiter is let go by later appends past its position */
    for (int i = 0; i < 5000 && !all_done; i++) {
        op_status(c, "unstick", "counter_increment", "{\"by\": 1}", NULL);
        all_done = true;
        for (int k = 0; k < WORKERS; k++)
            all_done &= atomic_load(&pushers[k].done);
    }
    int failures = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(threads[i], NULL);
        failures += pushers[i].failures;
    }
    CHECK(failures == 0);
    CHECK(compactions > 0);
    aside_cache_close(c);
    fixture_done(&f);
}

/* The text key reads as (aside_get), malloc'd; NULL when it cannot be read. */
static char *text_of(aside_cache *c, const char *key)
{
    aside_value *v = NULL;
    if (aside_get(c, key, &v, NULL, NULL) != ASIDE_OK)
        return NULL;
    char *text = strndup(aside_value_data(v), aside_value_size(v));
    aside_value_release(v);
    return text;
}

static void test_changes_made_while_the_journal_compacts_survive_a_restart(void)
{
    fixture f;
    fixture_init(&f);
    cache_options o = {.fsync = ASIDE_FSYNC_NEVER};
    aside_cache *c = open_with(&f, &o);
    pthread_t threads[WORKERS];
    pusher pushers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        pushers[i] = (pusher){c, i, 0, false};
        pthread_create(&threads[i], NULL, push_always, &pushers[i]);
    }
    int compactions = 0;
    bool all_done = false;
    for (int i = 0; i < 20000 && !all_done; i++) {
        compactions += aside_compact(c, NULL) == ASIDE_OK;
        all_done = true;
        for (int k = 0; k < WORKERS; k++)
            all_done &= atomic_load(&pushers[k].done);
    }
    char *before[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(threads[i], NULL);
        CHECK(pushers[i].failures == 0);
        char key[16];
        snprintf(key, sizeof key, "q%d", i);
        before[i] = text_of(c, key);
        CHECK(before[i] != NULL);
    }
    CHECK(compactions > 0);
    aside_cache_close(c);
    c = open_with(&f, &o); /* the compacted journal and what was appended during compactions */
    for (int i = 0; i < WORKERS; i++) {
        char key[16];
        snprintf(key, sizeof key, "q%d", i);
        char *after = text_of(c, key);
        CHECK(after && before[i] && same_json(after, before[i]));
        free(after);
        free(before[i]);
    }
    aside_cache_close(c);
    fixture_done(&f);
}

/* Replay a journal of edits of one document that grows with each: the whole document is
 * measured (serialised) a fixed number of times, not once per edit, so replay costs the
 * journal's bytes rather than the square of the edits; the state and its byte count come back
 * as they were. */
static void test_replaying_edits_of_one_document_measures_it_once(void)
{
    enum { EDITS = 3000 };
    fixture f;
    fixture_init(&f);
    cache_options o = {.memory = 64 << 20, .fsync = ASIDE_FSYNC_NEVER};
    aside_cache *c = open_with(&f, &o);
    CHECK(op_status(c, "d.json", "json_set", "{\"pointer\": \"\", \"value\": {}}", NULL) ==
          ASIDE_OK);
    for (int i = 0; i < EDITS; i++) {
        char args[96];
        snprintf(args, sizeof args, "{\"pointer\": \"/k%d\", \"value\": [%d]}", i, i);
        CHECK(op_status(c, "d.json", "json_set", args, NULL) == ASIDE_OK);
        if (i % 100 == 0)
            CHECK(op_status(c, "d.json", "json_merge", "{\"patch\": {\"m\": 1}}", NULL) ==
                  ASIDE_OK);
    }
    aside_entry_info before, after;
    CHECK(aside_entry(c, "d.json", &before, NULL) == ASIDE_OK);
    uint64_t resident = stats_of(c).memory_used_bytes;
    aside_cache_close(c);
    uint64_t measured = collection_measure_count();
    c = open_with(&f, &o);
    uint64_t replay_measures = collection_measure_count() - measured;
    CHECK(replay_measures <= 1);
    CHECK(aside_entry(c, "d.json", &after, NULL) == ASIDE_OK);
    CHECK(after.bytes == before.bytes);
    CHECK(stats_of(c).memory_used_bytes == resident);
    char want[64];
    snprintf(want, sizeof want, "[%d]", EDITS - 1);
    char args[64];
    snprintf(args, sizeof args, "{\"pointer\": \"/k%d\"}", EDITS - 1);
    CHECK(op_answers(c, "d.json", "json_get", args, want));
    CHECK(op_answers(c, "d.json", "json_get", "{\"pointer\": \"/m\"}", "1"));
    free(before.key);
    free(after.key);
    aside_cache_close(c);
    fixture_done(&f);
}

/* The descriptor the cache's journal holds (found through /proc/self/fd), or -1. */
static int journal_fd(const fixture *f)
{
    char want[PATH_MAX], real[PATH_MAX];
    snprintf(want, sizeof want, "%s/.aside/journal", f->cache);
    if (!realpath(want, real))
        return -1;
    DIR *d = opendir("/proc/self/fd");
    int found = -1;
    for (struct dirent *de; d && found < 0 && (de = readdir(d));) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0 && (target[n] = '\0', strcmp(target, real) == 0))
            found = atoi(de->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

/* Under "always", a change whose sync fails is answered "not_durable" (applied, not yet
 * durable), and it is applied: reads see it; the housekeeping thread then rewrites the journal
 * from memory, after which changes are durable again and all of them survive a restart. */
static void test_a_change_whose_sync_fails_is_answered_not_durable_and_kept(void)
{
    fixture f;
    fixture_init(&f);
    cache_options o = {.fsync = ASIDE_FSYNC_ALWAYS};
    aside_cache *c = open_with(&f, &o);
    CHECK(op_answers(c, "l", "list_push", "{\"value\": \"x\"}", "1"));
    /* the journal's descriptor now leads where fdatasync fails (EINVAL) */
    int fd = journal_fd(&f), null = open("/dev/null", O_WRONLY);
    CHECK(fd >= 0 && null >= 0 && dup2(null, fd) == fd);
    close(null);
    aside_error err = {0};
    CHECK(op_status(c, "l", "list_push", "{\"value\": \"y\"}", &err) == ASIDE_ERR_IO);
    CHECK(strcmp(err.code, "not_durable") == 0);
    CHECK(strstr(err.message, "applied but not yet durable") != NULL);
    CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[\"x\", \"y\"]"));
    for (int waited = 0; waited < DEADLINE_MS && stats_of(c).log_compactions == 0;
         waited += POLL_MS)
        pause_ms(POLL_MS);
    CHECK(stats_of(c).log_compactions == 1);
    CHECK(op_answers(c, "l", "list_push", "{\"value\": \"z\"}", "3"));
    aside_cache_close(c);
    c = open_with(&f, &o);
    CHECK(reads_as(c, "l", ASIDE_TYPE_LIST, "[\"x\", \"y\", \"z\"]"));
    aside_cache_close(c);
    fixture_done(&f);
}

/* A journal of many small records compacts itself long before its minimum size (64 MiB by
 * default): replay costs per record, and a counter incremented 100,000 times is 6 MB. */
static void test_a_journal_of_many_small_records_compacts_before_its_minimum_size(void)
{
    enum { INCREMENTS = 100001 };
    fixture f;
    fixture_init(&f);
    cache_options o = {.fsync = ASIDE_FSYNC_NEVER};
    aside_cache *c = open_with(&f, &o);
    int done = 0;
    for (; done < INCREMENTS; done++)
        if (op_status(c, "n", "counter_increment", NULL, NULL) != ASIDE_OK)
            break;
    CHECK(done == INCREMENTS);
    for (int waited = 0; waited < DEADLINE_MS && stats_of(c).log_compactions == 0;
         waited += POLL_MS)
        pause_ms(POLL_MS);
    aside_stats s = stats_of(c);
    CHECK(s.log_compactions >= 1);
    CHECK(s.log_bytes < 4096);
    char want[32];
    snprintf(want, sizeof want, "%d", INCREMENTS);
    aside_cache_close(c);
    c = open_with(&f, &o);
    CHECK(reads_as(c, "n", ASIDE_TYPE_COUNTER, want));
    aside_cache_close(c);
    fixture_done(&f);
}

int main(void)
{
    RUN(test_collection_operations_create_change_and_read_a_key);
    RUN(test_collections_and_json_edits_survive_a_restart);
    RUN(test_a_collection_operation_on_a_put_value_is_wrong_type_and_changes_nothing);
    RUN(test_put_over_a_collection_replaces_it_for_good);
    RUN(test_a_deleted_collection_stays_deleted_after_a_restart);
    RUN(test_compact_keeps_the_content_and_shrinks_the_journal);
    RUN(test_the_journal_compacts_itself_past_its_threshold);
    RUN(test_replaying_edits_of_one_document_measures_it_once);
    RUN(test_a_journal_of_many_small_records_compacts_before_its_minimum_size);
    RUN(test_a_change_whose_sync_fails_is_answered_not_durable_and_kept);
    RUN(test_a_collection_that_would_pass_the_memory_budget_is_full_and_changes_nothing);
    RUN(test_a_push_of_many_values_cannot_pass_the_memory_budget);
    RUN(test_a_full_budget_still_lets_a_collection_shrink);
    RUN(test_a_collection_is_reported_in_memory);
    RUN(test_concurrent_reads_and_edits_of_collections_are_whole_and_exact);
    RUN(test_operations_waiting_for_the_disk_return_across_compactions);
    RUN(test_changes_made_while_the_journal_compacts_survive_a_restart);
    return CHECK_DONE();
}
