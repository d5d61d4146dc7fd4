/* test_cache_retention.c -- how long and where keys are kept (retention.c, housekeeping.c):
 * times to live, their expiry and the default one, pins, unpinning, explicit eviction, and
 * their life across restarts. */
#include <pthread.h>
#include <stdatomic.h>

#include "cache_test.h"

static void test_expire_sets_and_removes_a_time_to_live(void)
{
    fixture f;
    fixture_init(&f);
    write_file(f.sor, "file.json", "[1]", 3);
    aside_cache *c = open_with(&f, &(cache_options){0});
    CHECK(op_answers(c, "l", "list_push", "{\"value\": 1}", "1"));
    aside_value *v = NULL;
    CHECK(aside_get(c, "file.json", &v, NULL, NULL) == ASIDE_OK);
    aside_value_release(v);
    const char *keys[] = {"l", "file.json"};
    for (int i = 0; i < 2; i++) {
        CHECK(ttl_of(c, keys[i]) == -1);
        int64_t before = now_ms();
        CHECK(aside_expire(c, keys[i], 60000, NULL) == ASIDE_OK);
        int64_t ttl = ttl_of(c, keys[i]);
        CHECK(ttl > 0 && ttl <= 60000);
        aside_entry_info info;
        CHECK(aside_entry(c, keys[i], &info, NULL) == ASIDE_OK);
        free(info.key);
        CHECK(info.expires_ms >= before + 60000 && info.expires_ms <= now_ms() + 60000);
        CHECK(aside_expire(c, keys[i], 0, NULL) == ASIDE_OK); /* persist */
        CHECK(ttl_of(c, keys[i]) == -1);
    }
    aside_error err;
    CHECK(aside_expire(c, "missing", 1000, &err) == ASIDE_ERR_NOT_FOUND);
    int64_t ttl = 0;
    CHECK(aside_ttl(c, "missing", &ttl, &err) == ASIDE_ERR_NOT_FOUND);
    CHECK(aside_expire(c, "../bad", 1000, &err) == ASIDE_ERR_INVALID);
    CHECK(!cached(c, "missing"));
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_a_key_whose_time_runs_out_leaves_memory_and_disk(void)
{
    fixture f;
    fixture_init(&f);
    write_file(f.sor, "short.json", "{\"a\": 1}", 8);
    aside_cache *c = open_with(&f, &(cache_options){0});
    aside_value *v = NULL;
    CHECK(aside_get(c, "short.json", &v, NULL, NULL) == ASIDE_OK);
    aside_value_release(v);
    CHECK(op_answers(c, "short-list", "list_push", "{\"value\": 1}", "1"));
    write_file(f.sor, "short-pin.bin", "pinned", 6);
    CHECK(aside_pin(c, "short-pin.bin", NULL, NULL) == ASIDE_OK);
    CHECK(file_size(f.cache, "short.json") == 8);
    CHECK(aside_expire(c, "short.json", 50, NULL) == ASIDE_OK);
    CHECK(aside_expire(c, "short-list", 50, NULL) == ASIDE_OK);
    CHECK(aside_expire(c, "short-pin.bin", 50, NULL) == ASIDE_OK);
    CHECK(gone_in_time(c, "short.json"));
    CHECK(gone_in_time(c, "short-list"));
    CHECK(gone_in_time(c, "short-pin.bin"));
    CHECK(file_size(f.cache, "short.json") == -1 && file_size(f.cache, "short-pin.bin") == -1);
    aside_stats s = stats_of(c);
    CHECK(s.expirations == 3 && s.keys == 0);
    CHECK(s.pinned_bytes == 0 && s.memory_used_bytes == 0 && s.disk_used_bytes == 0);
    CHECK(op_answers(c, "short-list", "list_length", NULL, "0"));
    /* the key of the system of record is fetched again on the next read */
    uint64_t fetches = stats_of(c).sor_fetches;
    CHECK(read_source(c, "short.json") == ASIDE_SOURCE_SOR);
    CHECK(stats_of(c).sor_fetches == fetches + 1);
    CHECK(ttl_of(c, "short.json") == -1);
    aside_cache_close(c);
    c = open_with(&f, &(cache_options){0});
    CHECK(!cached(c, "short-list"));
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_housekeeping_removes_expired_keys_nobody_reads(void)
{
    fixture f;
    fixture_init(&f);
    write_file(f.sor, "idle.bin", "idle", 4);
    aside_cache *c = open_with(&f, &(cache_options){0});
    CHECK(read_source(c, "idle.bin") == ASIDE_SOURCE_SOR);
    CHECK(op_answers(c, "idle-map", "map_set", "{\"field\": \"a\", \"value\": 1}", "1"));
    CHECK(aside_expire(c, "idle.bin", 50, NULL) == ASIDE_OK);
    CHECK(aside_expire(c, "idle-map", 50, NULL) == ASIDE_OK);
    /* only telemetry is looked at: the removal is the housekeeping's */
    for (int waited = 0; waited < DEADLINE_MS && stats_of(c).expirations < 2; waited += POLL_MS)
        pause_ms(POLL_MS);
    aside_stats s = stats_of(c);
    CHECK(s.expirations == 2 && s.keys == 0);
    CHECK(file_size(f.cache, "idle.bin") == -1);
    aside_cache_close(c);
    fixture_done(&f);
}

/* Records of a collection journaled after its expire_at must not bring it back on a replay
 * that happens after the time ran out (the cache was closed or killed meanwhile). */
static void test_a_collection_that_expired_while_the_cache_was_closed_stays_gone(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_with(&f, &(cache_options){0});
    CHECK(op_answers(c, "brief", "list_push", "{\"value\": \"a\"}", "1"));
    int64_t set_at = now_ms();
    CHECK(aside_expire(c, "brief", 300, NULL) == ASIDE_OK);
    CHECK(op_answers(c, "brief", "list_push", "{\"value\": \"b\"}", "2"));
    CHECK(op_answers(c, "counted", "counter_increment", NULL, "1"));
    CHECK(aside_expire(c, "counted", 300, NULL) == ASIDE_OK);
    CHECK(op_answers(c, "counted", "counter_increment", NULL, "2"));
    aside_cache_close(c);
    while (now_ms() < set_at + 400)
        pause_ms(POLL_MS);
    c = open_with(&f, &(cache_options){0});
    CHECK(!cached(c, "brief"));
    CHECK(op_answers(c, "brief", "list_length", NULL, "0"));
    CHECK(!cached(c, "counted"));
    CHECK(op_answers(c, "counted", "counter_get", NULL, "0"));
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_times_to_live_and_pins_survive_a_restart(void)
{
    fixture f;
    fixture_init(&f);
    sor_files(&f, "keep", 2, 1000);
    aside_cache *c = open_with(&f, &(cache_options){0});
    CHECK(aside_pin(c, "keep0.bin", NULL, NULL) == ASIDE_OK);
    CHECK(aside_expire(c, "keep0.bin", 3600 * 1000, NULL) == ASIDE_OK);
    CHECK(read_source(c, "keep1.bin") == ASIDE_SOURCE_SOR);
    CHECK(aside_expire(c, "keep1.bin", 3600 * 1000, NULL) == ASIDE_OK);
    CHECK(op_answers(c, "m", "map_set", "{\"field\": \"a\", \"value\": 1}", "1"));
    CHECK(aside_expire(c, "m", 3600 * 1000, NULL) == ASIDE_OK);
    CHECK(op_answers(c, "m", "map_set", "{\"field\": \"b\", \"value\": 2}", "1"));
    CHECK(op_answers(c, "forever", "counter_increment", NULL, "1"));
    aside_entry_info before;
    CHECK(aside_entry(c, "keep1.bin", &before, NULL) == ASIDE_OK);
    free(before.key);
    aside_cache_close(c);
    c = open_with(&f, &(cache_options){0});
    int64_t ttl0 = ttl_of(c, "keep0.bin"), ttl1 = ttl_of(c, "keep1.bin"), ttlm = ttl_of(c, "m");
    CHECK(ttl0 > 3500 * 1000 && ttl0 <= 3600 * 1000);
    CHECK(ttl1 > 3500 * 1000 && ttl1 <= 3600 * 1000);
    CHECK(ttlm > 3500 * 1000 && ttlm <= 3600 * 1000);
    CHECK(ttl_of(c, "forever") == -1);
    aside_entry_info after;
    CHECK(aside_entry(c, "keep1.bin", &after, NULL) == ASIDE_OK);
    free(after.key);
    CHECK(after.expires_ms == before.expires_ms);
    CHECK(is_pinned(c, "keep0.bin") && !is_pinned(c, "keep1.bin"));
    CHECK(reads_as(c, "m", ASIDE_TYPE_MAP, "{\"a\": 1, \"b\": 2}"));
    CHECK(read_source(c, "keep0.bin") == ASIDE_SOURCE_DISK);
    CHECK(in_memory(c, "keep0.bin"));
    CHECK(stats_of(c).pinned_bytes >= 1000);
    aside_cache_close(c);
    fixture_done(&f);
}

enum { PIN_FILE_BYTES = 10 * 1024, PIN_MEMORY_BYTES = 40 * 1024 };

static void test_a_pinned_value_stays_in_memory_while_others_are_evicted(void)
{
    fixture f;
    fixture_init(&f);
    sor_files(&f, "p", 10, PIN_FILE_BYTES);
    aside_cache *c = open_with(&f, &(cache_options){.memory = PIN_MEMORY_BYTES});
    CHECK(aside_pin(c, "p0.bin", NULL, NULL) == ASIDE_OK);
    CHECK(is_pinned(c, "p0.bin") && in_memory(c, "p0.bin"));
    CHECK(stats_of(c).pinned_bytes == PIN_FILE_BYTES);
    read_all(c, "p", 10, 3);
    aside_stats s = stats_of(c);
    CHECK(s.evictions_memory > 0);
    CHECK(in_memory(c, "p0.bin"));
    CHECK(read_source(c, "p0.bin") == ASIDE_SOURCE_MEMORY);
    int resident = 0;
    for (int i = 1; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof key, "p%d.bin", i);
        resident += in_memory(c, key);
    }
    CHECK(resident <= 3); /* the budget less the pin holds three more at most */
    CHECK(s.memory_used_bytes <= PIN_MEMORY_BYTES && s.pinned_bytes <= s.memory_used_bytes);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_a_pinned_key_is_never_evicted_from_the_disk_tier(void)
{
    fixture f;
    fixture_init(&f);
    sor_files(&f, "p", 10, PIN_FILE_BYTES);
    cache_options o = {.memory = 1 << 20, .disk = 4 * PIN_FILE_BYTES};
    aside_cache *c = open_with(&f, &o);
    CHECK(aside_pin(c, "p0.bin", NULL, NULL) == ASIDE_OK);
    read_all(c, "p", 10, 2);
    aside_stats s = stats_of(c);
    CHECK(s.evictions_disk > 0);
    CHECK(s.disk_used_bytes + PIN_FILE_BYTES <= 4 * PIN_FILE_BYTES);
    CHECK(cached(c, "p0.bin") && file_size(f.cache, "p0.bin") == PIN_FILE_BYTES);
    CHECK(read_source(c, "p0.bin") == ASIDE_SOURCE_MEMORY);
    int kept = 0;
    for (int i = 1; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof key, "p%d.bin", i);
        kept += file_size(f.cache, key) == PIN_FILE_BYTES;
    }
    CHECK(kept <= 3);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_a_pin_that_does_not_fit_is_full_and_changes_nothing(void)
{
    fixture f;
    fixture_init(&f);
    sor_files(&f, "p", 2, PIN_FILE_BYTES);
    sor_files(&f, "big", 1, 35 * 1024);
    sor_files(&f, "huge", 1, 64 * 1024);
    aside_cache *c = open_with(&f, &(cache_options){.memory = PIN_MEMORY_BYTES});
    CHECK(aside_pin(c, "p0.bin", NULL, NULL) == ASIDE_OK);
    aside_stats before = stats_of(c);
    aside_error err;
    /* fits the memory budget alone, not beside the pin */
    CHECK(aside_pin(c, "big0.bin", NULL, &err) == ASIDE_ERR_FULL);
    CHECK(!is_pinned(c, "big0.bin"));
    /* larger than the budget */
    CHECK(aside_pin(c, "huge0.bin", NULL, &err) == ASIDE_ERR_FULL);
    CHECK(!is_pinned(c, "huge0.bin") && !in_memory(c, "huge0.bin"));
    aside_stats after = stats_of(c);
    CHECK(after.pinned_bytes == before.pinned_bytes);
    CHECK(is_pinned(c, "p0.bin") && in_memory(c, "p0.bin"));
    /* a key the system of record does not have cannot be pinned */
    CHECK(aside_pin(c, "nothing.bin", NULL, &err) == ASIDE_ERR_NOT_FOUND);
    /* pinning twice is fine and counts once; a pin of a collection changes nothing */
    CHECK(aside_pin(c, "p0.bin", NULL, NULL) == ASIDE_OK);
    CHECK(stats_of(c).pinned_bytes == before.pinned_bytes);
    aside_cache_close(c);
    c = open_with(&f, &(cache_options){.memory = PIN_MEMORY_BYTES});
    CHECK(!is_pinned(c, "big0.bin") && !is_pinned(c, "huge0.bin") && is_pinned(c, "p0.bin"));
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_unpin_lets_a_value_be_evicted(void)
{
    fixture f;
    fixture_init(&f);
    sor_files(&f, "p", 10, PIN_FILE_BYTES);
    aside_cache *c = open_with(&f, &(cache_options){.memory = PIN_MEMORY_BYTES});
    CHECK(aside_pin(c, "p0.bin", NULL, NULL) == ASIDE_OK);
    CHECK(aside_unpin(c, "p0.bin", NULL) == ASIDE_OK);
    CHECK(!is_pinned(c, "p0.bin"));
    CHECK(stats_of(c).pinned_bytes == 0);
    CHECK(aside_unpin(c, "p0.bin", NULL) == ASIDE_OK); /* not pinned: nothing to do */
    CHECK(aside_unpin(c, "missing.bin", NULL) == ASIDE_ERR_NOT_FOUND);
    for (int round = 0; round < 3; round++) {
        for (int i = 1; i < 10; i++) {
            char key[16];
            snprintf(key, sizeof key, "p%d.bin", i);
            CHECK(read_source(c, key) != (aside_source)-1);
        }
    }
    CHECK(!in_memory(c, "p0.bin"));
    CHECK(read_source(c, "p0.bin") == ASIDE_SOURCE_DISK);
    aside_cache_close(c);
    /* unpinned for good: the sidecar says so */
    c = open_with(&f, &(cache_options){.memory = PIN_MEMORY_BYTES});
    CHECK(cached(c, "p0.bin") && !is_pinned(c, "p0.bin"));
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_evict_drops_memory_keeps_the_file_and_refuses_collections_and_pins(void)
{
    fixture f;
    fixture_init(&f);
    write_file(f.sor, "e.json", "{\"e\": 1}", 8);
    write_file(f.sor, "pinned.json", "{\"p\": 1}", 8);
    aside_cache *c = open_with(&f, &(cache_options){0});
    CHECK(read_source(c, "e.json") == ASIDE_SOURCE_SOR);
    CHECK(in_memory(c, "e.json"));
    CHECK(aside_evict(c, "e.json", NULL) == ASIDE_OK);
    CHECK(!in_memory(c, "e.json") && cached(c, "e.json"));
    CHECK(file_size(f.cache, "e.json") == 8);
    uint64_t fetches = stats_of(c).sor_fetches;
    CHECK(read_source(c, "e.json") == ASIDE_SOURCE_DISK);
    CHECK(read_source(c, "e.json") == ASIDE_SOURCE_MEMORY);
    CHECK(stats_of(c).sor_fetches == fetches);
    /* evicting what is only on disk already is fine */
    CHECK(aside_evict(c, "e.json", NULL) == ASIDE_OK);
    CHECK(aside_evict(c, "e.json", NULL) == ASIDE_OK);
    aside_error err;
    CHECK(aside_evict(c, "missing.json", &err) == ASIDE_ERR_NOT_FOUND);
    CHECK(aside_pin(c, "pinned.json", NULL, NULL) == ASIDE_OK);
    CHECK(aside_evict(c, "pinned.json", &err) == ASIDE_ERR_CONFLICT);
    CHECK(in_memory(c, "pinned.json"));
    CHECK(op_answers(c, "col", "list_push", "{\"value\": 1}", "1"));
    CHECK(aside_evict(c, "col", &err) == ASIDE_ERR_CONFLICT);
    CHECK(reads_as(c, "col", ASIDE_TYPE_LIST, "[1]"));
    CHECK(aside_evict(c, "col", &err) == ASIDE_ERR_CONFLICT); /* also once it was read */
    CHECK(reads_as(c, "col", ASIDE_TYPE_LIST, "[1]"));
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_an_edit_keeps_the_time_to_live_of_a_json_document(void)
{
    fixture f;
    fixture_init(&f);
    write_file(f.sor, "t.json", "{\"a\": 1}", 8);
    aside_cache *c = open_with(&f, &(cache_options){0});
    CHECK(read_source(c, "t.json") == ASIDE_SOURCE_SOR);
    CHECK(aside_expire(c, "t.json", 3600 * 1000, NULL) == ASIDE_OK);
    CHECK(op_answers(c, "t.json", "json_set", "{\"pointer\": \"/b\", \"value\": 2}",
                     "{\"result\": \"success\"}"));
    int64_t ttl = ttl_of(c, "t.json");
    CHECK(ttl > 3500 * 1000 && ttl <= 3600 * 1000);
    aside_cache_close(c);
    c = open_with(&f, &(cache_options){0});
    CHECK(reads_as(c, "t.json", ASIDE_TYPE_JSON, "{\"a\": 1, \"b\": 2}"));
    ttl = ttl_of(c, "t.json");
    CHECK(ttl > 3500 * 1000 && ttl <= 3600 * 1000);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_the_default_time_to_live_applies_to_every_key_entering_the_cache(void)
{
    fixture f;
    fixture_init(&f);
    write_file(f.sor, "loaded.json", "{}", 2);
    write_file(f.sor, "edited.json", "{}", 2);
    cache_options o = {.default_ttl_ms = 3600 * 1000};
    aside_cache *c = open_with(&f, &o);
    CHECK(read_source(c, "loaded.json") == ASIDE_SOURCE_SOR);
    CHECK(op_answers(c, "made", "set_add", "{\"value\": 1}", "1"));
    CHECK(aside_put(c, "put.bin", NULL, "x", 1, NULL) == ASIDE_OK);
    aside_read_options as_map = {.type = "map"};
    CHECK(aside_put(c, "put-map", &as_map, "{\"a\": 1}", 8, NULL) == ASIDE_OK);
    CHECK(op_answers(c, "doc.json", "json_set", "{\"pointer\": \"\", \"value\": [1]}",
                     "{\"result\": \"success\"}"));
    CHECK(op_answers(c, "edited.json", "json_set", "{\"pointer\": \"/e\", \"value\": 1}",
                     "{\"result\": \"success\"}"));
    const char *keys[] = {"loaded.json", "made", "put.bin", "put-map", "doc.json", "edited.json"};
    for (int i = 0; i < 6; i++) {
        int64_t ttl = ttl_of(c, keys[i]);
        bool right = ttl > 3500 * 1000 && ttl <= 3600 * 1000;
        CHECK(right);
        if (!right)
            fprintf(stderr, "  %s: ttl %lld ms\n", keys[i], (long long)ttl);
    }
    /* a later change of a collection does not push its time back */
    aside_entry_info before, after;
    CHECK(aside_entry(c, "made", &before, NULL) == ASIDE_OK);
    pause_ms(20);
    CHECK(op_answers(c, "made", "set_add", "{\"value\": 2}", "1"));
    CHECK(aside_entry(c, "made", &after, NULL) == ASIDE_OK);
    CHECK(after.expires_ms == before.expires_ms);
    free(before.key);
    free(after.key);
    aside_cache_close(c);
    fixture_done(&f);
}

/* ---- one writer of a key's file and sidecar -------------------------------------------------- */

enum {
    RACE_ROUNDS = 10,       /* each ends with a restart that checks the sidecar */
    RACE_WRITES = 12,       /* commits of the key a round */
    RACER_LOOPS_MAX = 100000
};

typedef struct racer {
    aside_cache *c;
    atomic_bool  done;
    int          loops;
} racer;

/* Pin, give a time to live, unpin and take it away, over and over, until the writer is done. */
static void *pin_and_expire(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < RACER_LOOPS_MAX && !atomic_load(&r->done); i++) {
        aside_pin(r->c, "race.json", NULL, NULL);
        aside_expire(r->c, "race.json", 3600 * 1000, NULL);
        aside_unpin(r->c, "race.json", NULL);
        aside_expire(r->c, "race.json", 0, NULL);
        r->loops++;
    }
    return NULL;
}

/* The n-th content of race.json: its length changes with n, so a sidecar of another content
 * does not match the file. */
static int race_content(int n, char *out, size_t size)
{
    return snprintf(out, size, "{\"n\": %d, \"pad\": \"%.*s\"}", n, (n % 7) * 5,
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

/* Commit RACE_WRITES new contents of race.json (writes and updates in turn) while a thread
 * pins and expires it; the last content is left in data. The count of failed commits. */
static int race_commits(fixture *f, aside_cache *c, int round, char *data, size_t size, int *len)
{
    racer r = {c, false, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, pin_and_expire, &r);
    int failures = 0;
    for (int i = 1; i <= RACE_WRITES; i++) {
        *len = race_content(round * RACE_WRITES + i, data, size);
        if (i % 2) {
            failures += aside_write(c, "race.json", NULL, data, (size_t)*len, NULL, NULL) !=
                        ASIDE_OK;
        } else {
            write_file(f->sor, "race.json", data, (size_t)*len);
            failures += aside_update(c, "race.json", NULL, NULL, NULL, NULL) != ASIDE_OK;
        }
    }
    atomic_store(&r.done, true);
    pthread_join(thread, NULL);
    return failures + (r.loops == 0);
}

static void test_pins_and_times_to_live_never_rewrite_a_sidecar_over_a_new_value(void)
{
    fixture f;
    fixture_init(&f);
    char data[128];
    int len = race_content(0, data, sizeof data);
    write_file(f.sor, "race.json", data, (size_t)len);
    int failures = 0, stale = 0, wrong = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        aside_cache *c = open_with(&f, &(cache_options){0});
        failures += race_commits(&f, c, round, data, sizeof data, &len);
        aside_value *v = NULL;
        wrong += aside_get(c, "race.json", &v, NULL, NULL) != ASIDE_OK ||
                 !value_is(v, data, (size_t)len);
        aside_value_release(v);
        aside_cache_close(c);
        /* after a restart the file is served from the disk tier: its sidecar describes it */
        c = open_with(&f, &(cache_options){0});
        aside_source source = (aside_source)-1;
        v = NULL;
        wrong += aside_get(c, "race.json", &v, &source, NULL) != ASIDE_OK ||
                 !value_is(v, data, (size_t)len);
        stale += source != ASIDE_SOURCE_DISK;
        aside_value_release(v);
        aside_cache_close(c);
    }
    CHECK(failures == 0);
    CHECK(wrong == 0);
    CHECK(stale == 0);
    fixture_done(&f);
}

int main(void)
{
    RUN(test_expire_sets_and_removes_a_time_to_live);
    RUN(test_a_key_whose_time_runs_out_leaves_memory_and_disk);
    RUN(test_housekeeping_removes_expired_keys_nobody_reads);
    RUN(test_a_collection_that_expired_while_the_cache_was_closed_stays_gone);
    RUN(test_times_to_live_and_pins_survive_a_restart);
    RUN(test_a_pinned_value_stays_in_memory_while_others_are_evicted);
    RUN(test_a_pinned_key_is_never_evicted_from_the_disk_tier);
    RUN(test_a_pin_that_does_not_fit_is_full_and_changes_nothing);
    RUN(test_unpin_lets_a_value_be_evicted);
    RUN(test_evict_drops_memory_keeps_the_file_and_refuses_collections_and_pins);
    RUN(test_an_edit_keeps_the_time_to_live_of_a_json_document);
    RUN(test_the_default_time_to_live_applies_to_every_key_entering_the_cache);
    RUN(test_pins_and_times_to_live_never_rewrite_a_sidecar_over_a_new_value);
    return CHECK_DONE();
}
