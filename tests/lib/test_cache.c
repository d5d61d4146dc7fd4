/* test_cache.c -- the cache through its public API: single flight, budgets, values larger than
 * memory, validation, update and delete; collections and JSON edits (aside_op) and their life
 * across restarts, times to live, pins, explicit eviction and compaction of the journal. The
 * system of record is a real directory, or, for the single-flight test, callbacks that are slow
 * and count their calls. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aside.h"
#include "check.h"
#include "fixture.h"

enum { READERS = 32, VALUE_BYTES = 300 };

static aside_cache *open_cache(fixture *f, uint64_t memory, uint64_t disk)
{
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.data_dir = f->cache;
    cfg.sor_dir = f->sor;
    cfg.memory_limit_bytes = memory;
    cfg.disk_limit_bytes = disk;
    aside_cache *c = NULL;
    aside_error err;
    if (aside_cache_open(&cfg, &c, &err) != ASIDE_OK) {
        fprintf(stderr, "open failed: %s\n", err.message);
        exit(1);
    }
    return c;
}

/* The value's bytes equal data. */
static bool value_is(aside_value *v, const void *data, size_t len)
{
    if (aside_value_size(v) != len)
        return false;
    if (aside_value_data(v))
        return memcmp(aside_value_data(v), data, len) == 0;
    char *copy = malloc(len ? len : 1);
    bool same = pread(aside_value_fd(v), copy, len, 0) == (ssize_t)len &&
                memcmp(copy, data, len) == 0;
    free(copy);
    return same;
}

/* ---- single flight with a slow, counting system of record --------------------------------- */

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
    pthread_barrier_destroy(&start);
    aside_cache_close(c);
    fixture_done(&f);
}

/* ---- budgets ------------------------------------------------------------------------------ */

static void fill(char *data, size_t len, int seed)
{
    for (size_t i = 0; i < len; i++)
        data[i] = (char)('a' + (seed * 7 + (int)i) % 26);
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

/* ---- values, update, delete --------------------------------------------------------------- */

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

static void test_second_delete_of_same_key_is_not_found(void)
{
    fixture f;
    fixture_init(&f);
    write_file(f.sor, "a.json", "{}", 2);
    aside_cache *c = open_cache(&f, 1 << 20, 1 << 20);
    aside_value *v = NULL;
    CHECK(aside_get(c, "a.json", &v, NULL, NULL) == ASIDE_OK);
    CHECK(aside_delete(c, "a.json", NULL) == ASIDE_OK);
    CHECK(aside_delete(c, "a.json", NULL) == ASIDE_ERR_NOT_FOUND);
    CHECK(file_size(f.cache, "a.json") == -1);
    CHECK(file_size(f.sor, "a.json") == 2); /* never touches the system of record */
    CHECK(value_is(v, "{}", 2)); /* a value held by a reader outlives its deletion */
    aside_value_release(v);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_write_goes_through_to_the_directory_and_into_the_cache(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_cache(&f, 1 << 20, 1 << 20);
    aside_object_info info;
    aside_error err;
    CHECK(aside_write(c, "new/doc.json", NULL, "{\"a\": 1}", 8, &info, &err) == ASIDE_OK);
    CHECK(info.size == 8 && info.etag[0]);
    CHECK(file_size(f.sor, "new/doc.json") == 8);
    aside_value *v = NULL;
    aside_source src = ASIDE_SOURCE_SOR;
    CHECK(aside_get(c, "new/doc.json", &v, &src, NULL) == ASIDE_OK);
    CHECK(src == ASIDE_SOURCE_MEMORY && value_is(v, "{\"a\": 1}", 8));
    aside_value_release(v);
    /* invalid JSON is refused before anything is written */
    CHECK(aside_write(c, "new/doc.json", NULL, "{", 1, &info, &err) == ASIDE_ERR_BAD_VALUE);
    CHECK(file_size(f.sor, "new/doc.json") == 8);
    CHECK(aside_get(c, "new/doc.json", &v, NULL, NULL) == ASIDE_OK && value_is(v, "{\"a\": 1}", 8));
    aside_value_release(v);
    aside_read_options s3 = {.storage = "s3"};
    CHECK(aside_write(c, "x.json", &s3, "{}", 2, &info, &err) == ASIDE_ERR_INVALID);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_list_names_the_directory_files_under_a_prefix_sorted(void)
{
    fixture f;
    fixture_init(&f);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/b", f.sor);
    mkdir(dir, 0755);
    write_file(f.sor, "b/2.json", "[]", 2);
    write_file(f.sor, "b/1.json", "[1]", 3);
    write_file(f.sor, "a.json", "{}", 2);
    write_file(f.sor, "b/3.json.aside-write.x1y2z3", "[", 1); /* a write a crash cut short */
    aside_cache *c = open_cache(&f, 1 << 20, 1 << 20);
    aside_object_entry *objects = NULL;
    size_t count = 0;
    CHECK(aside_list(c, NULL, "b/", &objects, &count, NULL) == ASIDE_OK);
    CHECK(count == 2 && strcmp(objects[0].key, "b/1.json") == 0 && objects[0].size == 3 &&
          strcmp(objects[1].key, "b/2.json") == 0);
    aside_object_entries_free(objects, count);
    CHECK(aside_list(c, NULL, NULL, &objects, &count, NULL) == ASIDE_OK);
    CHECK(count == 3 && strcmp(objects[0].key, "a.json") == 0);
    aside_object_entries_free(objects, count);
    aside_cache_close(c);
    fixture_done(&f);
}

/* ---- collections, JSON edits, times to live, pins, eviction, compaction ------------------- */

/* Options of a cache for the tests below. */
typedef struct cache_options {
    uint64_t    memory, disk;
    aside_fsync fsync;
    uint64_t    default_ttl_ms;
    uint64_t    journal_compact_bytes;
} cache_options;

static aside_cache *open_with(fixture *f, const cache_options *o)
{
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.data_dir = f->cache;
    cfg.sor_dir = f->sor;
    cfg.memory_limit_bytes = o->memory ? o->memory : 1 << 20;
    cfg.disk_limit_bytes = o->disk ? o->disk : 1 << 24;
    cfg.fsync = (int)o->fsync;
    cfg.default_ttl_ms = o->default_ttl_ms;
    cfg.journal_compact_bytes = o->journal_compact_bytes;
    aside_cache *c = NULL;
    aside_error err;
    if (aside_cache_open(&cfg, &c, &err) != ASIDE_OK) {
        fprintf(stderr, "open failed: %s\n", err.message);
        exit(1);
    }
    return c;
}

/* True if the JSON texts a and b are the same JSON value. */
static bool same_json(const char *a, const char *b)
{
    json_t *x = json_loads(a, JSON_DECODE_ANY, NULL), *y = json_loads(b, JSON_DECODE_ANY, NULL);
    bool same = x && y && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

/* aside_op succeeds and answers the JSON text want. */
static bool op_answers(aside_cache *c, const char *key, const char *op, const char *args,
                       const char *want)
{
    char *result = NULL;
    aside_error err;
    aside_status st = aside_op(c, key, op, args, &result, &err);
    bool right = st == ASIDE_OK && result && same_json(result, want);
    if (!right)
        fprintf(stderr, "  %s %s %s: %s, %s (wanted %s)\n", key, op, args ? args : "",
                aside_status_name(st), st == ASIDE_OK ? result : err.message, want);
    free(result);
    return right;
}

/* aside_op's status (its answer dropped); err (may be NULL) receives the failure. */
static aside_status op_status(aside_cache *c, const char *key, const char *op, const char *args,
                              aside_error *err)
{
    char *result = NULL;
    aside_error ignored;
    aside_status st = aside_op(c, key, op, args, &result, err ? err : &ignored);
    free(result);
    return st;
}

/* key reads (aside_get) as a value of type holding the JSON text want. */
static bool reads_as(aside_cache *c, const char *key, aside_value_type type, const char *want)
{
    aside_value *v = NULL;
    bool right = aside_get(c, key, &v, NULL, NULL) == ASIDE_OK && aside_value_type_of(v) == type;
    if (right) {
        char *text = strndup(aside_value_data(v), aside_value_size(v));
        right = text && same_json(text, want);
        if (!right)
            fprintf(stderr, "  %s reads %s, wanted %s\n", key, text ? text : "?", want);
        free(text);
    }
    aside_value_release(v);
    return right;
}

static bool in_memory(aside_cache *c, const char *key)
{
    aside_entry_info info;
    if (aside_entry(c, key, &info, NULL) != ASIDE_OK)
        return false;
    free(info.key);
    return info.in_memory;
}

static bool is_pinned(aside_cache *c, const char *key)
{
    aside_entry_info info;
    if (aside_entry(c, key, &info, NULL) != ASIDE_OK)
        return false;
    free(info.key);
    return info.pinned;
}

static bool cached(aside_cache *c, const char *key)
{
    aside_entry_info info;
    if (aside_entry(c, key, &info, NULL) != ASIDE_OK)
        return false;
    free(info.key);
    return true;
}

static aside_source read_source(aside_cache *c, const char *key)
{
    aside_value *v = NULL;
    aside_source src = (aside_source)-1;
    if (aside_get(c, key, &v, &src, NULL) != ASIDE_OK)
        return (aside_source)-1;
    aside_value_release(v);
    return src;
}

static aside_stats stats_of(aside_cache *c)
{
    aside_stats s;
    aside_stats_get(c, &s);
    return s;
}

static int64_t ttl_of(aside_cache *c, const char *key)
{
    int64_t ttl = -2;
    if (aside_ttl(c, key, &ttl, NULL) != ASIDE_OK)
        return -2;
    return ttl;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

enum { POLL_MS = 10, DEADLINE_MS = 5000 };

/* Wait (bounded) until key is no longer cached; true if it left. Looking it up removes a key
 * whose time ran out, so this also checks that an expired key is never found. */
static bool gone_in_time(aside_cache *c, const char *key)
{
    for (int waited = 0; waited < DEADLINE_MS; waited += POLL_MS) {
        if (!cached(c, key))
            return true;
        pause_ms(POLL_MS);
    }
    return false;
}

/* Files of n bytes named name0.bin... in the system of record, each a different filling. */
static void sor_files(fixture *f, const char *name, int count, size_t bytes)
{
    char *data = malloc(bytes);
    for (int i = 0; i < count; i++) {
        char file[64];
        snprintf(file, sizeof file, "%s%d.bin", name, i);
        fill(data, bytes, i + 1);
        write_file(f->sor, file, data, bytes);
    }
    free(data);
}

/* Read name0.bin ... name<count-1>.bin, rounds times. */
static void read_all(aside_cache *c, const char *name, int count, int rounds)
{
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < count; i++) {
            char key[64];
            snprintf(key, sizeof key, "%s%d.bin", name, i);
            aside_value *v = NULL;
            CHECK(aside_get(c, key, &v, NULL, NULL) == ASIDE_OK);
            aside_value_release(v);
        }
    }
}

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

/* ---- collections under concurrency -------------------------------------------------------- */

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

int main(void)
{
    RUN(test_concurrent_reads_of_a_missing_key_fetch_once);
    RUN(test_memory_budget_is_kept_and_evicted_values_come_from_disk);
    RUN(test_disk_budget_is_kept_and_evicted_keys_are_refetched);
    RUN(test_value_larger_than_memory_is_served_from_its_file);
    RUN(test_value_larger_than_disk_is_refused_and_nothing_stays);
    RUN(test_invalid_json_is_refused_and_not_cached);
    RUN(test_update_replaces_the_value_and_follows_removal);
    RUN(test_second_delete_of_same_key_is_not_found);
    RUN(test_write_goes_through_to_the_directory_and_into_the_cache);
    RUN(test_list_names_the_directory_files_under_a_prefix_sorted);
    RUN(test_collection_operations_create_change_and_read_a_key);
    RUN(test_collections_and_json_edits_survive_a_restart);
    RUN(test_a_collection_operation_on_a_put_value_is_wrong_type_and_changes_nothing);
    RUN(test_put_over_a_collection_replaces_it_for_good);
    RUN(test_a_deleted_collection_stays_deleted_after_a_restart);
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
    RUN(test_compact_keeps_the_content_and_shrinks_the_journal);
    RUN(test_the_journal_compacts_itself_past_its_threshold);
    RUN(test_a_collection_that_would_pass_the_memory_budget_is_full_and_changes_nothing);
    RUN(test_a_push_of_many_values_cannot_pass_the_memory_budget);
    RUN(test_a_full_budget_still_lets_a_collection_shrink);
    RUN(test_a_collection_is_reported_in_memory);
    RUN(test_an_edit_keeps_the_time_to_live_of_a_json_document);
    RUN(test_the_default_time_to_live_applies_to_every_key_entering_the_cache);
    RUN(test_operations_waiting_for_the_disk_return_across_compactions);
    RUN(test_concurrent_reads_and_edits_of_collections_are_whole_and_exact);
    return CHECK_DONE();
}
