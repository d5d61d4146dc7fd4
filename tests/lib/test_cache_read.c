/* test_cache_read.c -- reads through the cache (read.c, tier.c, load.c): single flight, the
 * memory and disk budgets, values larger than memory or disk, validation, update. The system of
 * record is a real directory, or, for the single-flight test, callbacks that are slow and count
 * their calls. */
#include <pthread.h>
#include <stdatomic.h>

#include "cache_test.h"

enum { READERS = 32, VALUE_BYTES = 300 };

/* ---- single flight with a slow, counting system of record ------------------------------------ */

typedef struct slow_sor {
    atomic_int fetches;
    int        delay_ms;
} slow_sor;

static aside_status slow_fetch(void *ctx, const char *key, int fd, aside_object_info *info,
                               aside_error *err)
{
    slow_sor *s = ctx;
    (void)err;
    atomic_fetch_add(&s->fetches, 1);
    usleep((useconds_t)s->delay_ms * 1000);
    char body[64];
    int n = snprintf(body, sizeof body, "{\"key\": \"%s\"}", key);
    if (write(fd, body, (size_t)n) != n)
        return ASIDE_ERR_IO;
    memset(info, 0, sizeof *info);
    info->size = (uint64_t)n;
    return ASIDE_OK;
}

typedef struct reader {
    aside_cache     *cache;
    pthread_barrier_t *start;
    aside_status     status;
    bool             right;
} reader;

static void *read_once(void *arg)
{
    reader *r = arg;
    pthread_barrier_wait(r->start);
    aside_value *v = NULL;
    r->status = aside_get(r->cache, "slow.json", &v, NULL, NULL);
    if (r->status == ASIDE_OK) {
        const char *want = "{\"key\": \"slow.json\"}";
        r->right = value_is(v, want, strlen(want));
        aside_value_release(v);
    }
    return NULL;
}

static void test_concurrent_reads_of_a_missing_key_fetch_once(void)
{
    fixture f;
    fixture_init(&f);
    slow_sor sor = {0, 300};
    aside_sor_callbacks callbacks = {&sor, slow_fetch};
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.data_dir = f.cache;
    cfg.sor = &callbacks;
    cfg.memory_limit_bytes = 1 << 20;
    cfg.disk_limit_bytes = 1 << 20;
    aside_cache *c = NULL;
    CHECK(aside_cache_open(&cfg, &c, NULL) == ASIDE_OK);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, READERS);
    pthread_t threads[READERS];
    reader readers[READERS];
    for (int i = 0; i < READERS; i++) {
        readers[i] = (reader){c, &start, ASIDE_ERR_INTERNAL, false};
        pthread_create(&threads[i], NULL, read_once, &readers[i]);
    }
    int ok = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(threads[i], NULL);
        ok += readers[i].status == ASIDE_OK && readers[i].right;
    }
    CHECK(ok == READERS);
    CHECK(atomic_load(&sor.fetches) == 1);
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.sor_fetches == 1);
    CHECK(stats.keys == 1);
    /* the others waited for the leader's load, or came late enough to find it in memory */
    CHECK(stats.flight_waiting == 0);
    CHECK(stats.flight_waits + stats.hits_memory == READERS - 1);
    CHECK(stats.hits == stats.hits_memory + stats.hits_disk && stats.hits_disk == 0);
    CHECK(stats.sor_fetches_dir == 1 && stats.sor_fetches_s3 == 0); /* callbacks count as dir */
    CHECK(stats.sor_bytes_dir == strlen("{\"key\": \"slow.json\"}"));
    pthread_barrier_destroy(&start);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_memory_budget_is_kept_and_evicted_values_come_from_disk(void)
{
    fixture f;
    fixture_init(&f);
    char data[10][VALUE_BYTES];
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "v%d.bin", i);
        fill(data[i], VALUE_BYTES, i);
        write_file(f.sor, name, data[i], VALUE_BYTES);
    }
    aside_cache *c = open_cache(&f, 1000, 1 << 20);
    int right = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 10; i++) {
            char name[16];
            snprintf(name, sizeof name, "v%d.bin", i);
            aside_value *v = NULL;
            aside_source src;
            if (aside_get(c, name, &v, &src, NULL) == ASIDE_OK) {
                right += value_is(v, data[i], VALUE_BYTES) &&
                         src == (round == 0 ? ASIDE_SOURCE_SOR : src);
                aside_value_release(v);
            }
        }
    }
    CHECK(right == 20);
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.memory_used_bytes <= 1000);
    CHECK(stats.evictions_memory > 0);
    CHECK(stats.sor_fetches == 10); /* the second round came from memory or disk */
    CHECK(stats.hits == 10 && stats.hits_memory + stats.hits_disk == 10 && stats.hits_disk > 0);
    CHECK(stats.sor_bytes_dir == 10 * VALUE_BYTES && stats.sor_errors_other == 0);
    CHECK(stats.disk_used_bytes == 10 * VALUE_BYTES);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_disk_budget_is_kept_and_evicted_keys_are_refetched(void)
{
    fixture f;
    fixture_init(&f);
    char data[VALUE_BYTES];
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "d%d.bin", i);
        fill(data, VALUE_BYTES, i);
        write_file(f.sor, name, data, VALUE_BYTES);
    }
    aside_cache *c = open_cache(&f, 1 << 20, 1000);
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "d%d.bin", i);
        aside_value *v = NULL;
        CHECK(aside_get(c, name, &v, NULL, NULL) == ASIDE_OK);
        aside_value_release(v);
    }
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.disk_used_bytes <= 1000);
    CHECK(stats.keys == 3);
    CHECK(stats.evictions_disk == 7);
    int files = 0;
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "d%d.bin", i);
        files += file_size(f.cache, name) == VALUE_BYTES;
    }
    CHECK(files == 3); /* evicted files are gone from the disk tier */
    aside_value *v = NULL;
    aside_source src = ASIDE_SOURCE_MEMORY;
    CHECK(aside_get(c, "d0.bin", &v, &src, NULL) == ASIDE_OK);
    CHECK(src == ASIDE_SOURCE_SOR);
    aside_value_release(v);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_value_larger_than_memory_is_served_from_its_file(void)
{
    fixture f;
    fixture_init(&f);
    enum { BIG = 256 * 1024 };
    char *data = malloc(BIG);
    fill(data, BIG, 3);
    write_file(f.sor, "big.bin", data, BIG);
    aside_cache *c = open_cache(&f, 64 * 1024, 1 << 24);
    for (int round = 0; round < 2; round++) {
        aside_value *v = NULL;
        aside_source src;
        CHECK(aside_get(c, "big.bin", &v, &src, NULL) == ASIDE_OK);
        CHECK(src == (round == 0 ? ASIDE_SOURCE_SOR : ASIDE_SOURCE_DISK));
        CHECK(aside_value_data(v) == NULL && aside_value_fd(v) >= 0);
        CHECK(value_is(v, data, BIG));
        aside_value_release(v);
    }
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.memory_used_bytes == 0);
    aside_cache_close(c);
    free(data);
    fixture_done(&f);
}

static void test_value_larger_than_disk_is_refused_and_nothing_stays(void)
{
    fixture f;
    fixture_init(&f);
    char data[4096];
    fill(data, sizeof data, 1);
    write_file(f.sor, "huge.bin", data, sizeof data);
    aside_cache *c = open_cache(&f, 1 << 20, 1024);
    aside_value *v = NULL;
    aside_error err;
    CHECK(aside_get(c, "huge.bin", &v, NULL, &err) == ASIDE_ERR_TOO_LARGE);
    CHECK(file_size(f.cache, "huge.bin") == -1);
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.keys == 0 && stats.disk_used_bytes == 0);
    aside_cache_close(c);
    fixture_done(&f);
}

/* ---- values and update ----------------------------------------------------------------------- */

static void test_invalid_json_is_refused_and_not_cached(void)
{
    fixture f;
    fixture_init(&f);
    write_file(f.sor, "bad.json", "{\"a\": ", 6);
    aside_cache *c = open_cache(&f, 1 << 20, 1 << 20);
    aside_value *v = NULL;
    aside_error err;
    CHECK(aside_get(c, "bad.json", &v, NULL, &err) == ASIDE_ERR_BAD_VALUE);
    CHECK(strstr(err.message, "invalid JSON") != NULL);
    CHECK(file_size(f.cache, "bad.json") == -1);
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.keys == 0);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_update_replaces_the_value_and_follows_removal(void)
{
    fixture f;
    fixture_init(&f);
    write_file(f.sor, "doc.json", "[1]", 3);
    aside_cache *c = open_cache(&f, 1 << 20, 1 << 20);
    aside_value *v = NULL;
    CHECK(aside_get(c, "doc.json", &v, NULL, NULL) == ASIDE_OK);
    aside_value_release(v);
    write_file(f.sor, "doc.json", "[1, 2]", 6);
    CHECK(aside_get(c, "doc.json", &v, NULL, NULL) == ASIDE_OK);
    CHECK(value_is(v, "[1]", 3)); /* cache-aside: the cached copy until updated */
    aside_value_release(v);
    aside_read_info info;
    CHECK(aside_update(c, "doc.json", NULL, &v, &info, NULL) == ASIDE_OK);
    CHECK(info.source == ASIDE_SOURCE_SOR && !info.revalidated && value_is(v, "[1, 2]", 6));
    aside_value_release(v);
    /* unchanged in the system of record: revalidated, the copy kept */
    CHECK(aside_update(c, "doc.json", NULL, &v, &info, NULL) == ASIDE_OK);
    CHECK(info.revalidated && value_is(v, "[1, 2]", 6));
    aside_value_release(v);
    aside_source src;
    CHECK(aside_get(c, "doc.json", &v, &src, NULL) == ASIDE_OK);
    CHECK(src == ASIDE_SOURCE_MEMORY && value_is(v, "[1, 2]", 6));
    aside_value_release(v);
    CHECK(file_size(f.cache, "doc.json") == 6);
    /* an update that fails to parse keeps the old copy */
    write_file(f.sor, "doc.json", "[1, ", 4);
    CHECK(aside_update(c, "doc.json", NULL, NULL, NULL, NULL) == ASIDE_ERR_BAD_VALUE);
    CHECK(aside_get(c, "doc.json", &v, NULL, NULL) == ASIDE_OK && value_is(v, "[1, 2]", 6));
    aside_value_release(v);
    /* gone from the system of record: gone from the cache */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/doc.json", f.sor);
    unlink(path);
    CHECK(aside_update(c, "doc.json", NULL, NULL, NULL, NULL) == ASIDE_ERR_NOT_FOUND);
    CHECK(file_size(f.cache, "doc.json") == -1);
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.keys == 0);
    aside_cache_close(c);
    fixture_done(&f);
}

int main(void)
{
    RUN(test_concurrent_reads_of_a_missing_key_fetch_once);
    RUN(test_memory_budget_is_kept_and_evicted_values_come_from_disk);
    RUN(test_disk_budget_is_kept_and_evicted_keys_are_refetched);
    RUN(test_value_larger_than_memory_is_served_from_its_file);
    RUN(test_value_larger_than_disk_is_refused_and_nothing_stays);
    RUN(test_invalid_json_is_refused_and_not_cached);
    RUN(test_update_replaces_the_value_and_follows_removal);
    return CHECK_DONE();
}
