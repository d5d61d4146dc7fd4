/* cache_test.h -- what the tests of the cache (test_cache_*.c) share: opening a cache on a
 * fixture, comparing values, reading entries, waiting. The functions are static inline so a
 * test file that does not use one does not warn. */
#ifndef ASIDE_CACHE_TEST_H
#define ASIDE_CACHE_TEST_H

#include <jansson.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aside.h"
#include "check.h"
#include "fixture.h"

static inline aside_cache *open_cache(fixture *f, uint64_t memory, uint64_t disk)
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
static inline bool value_is(aside_value *v, const void *data, size_t len)
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

/* Fill data with a pattern of letters that seed makes different. */
static inline void fill(char *data, size_t len, int seed)
{
    for (size_t i = 0; i < len; i++)
        data[i] = (char)('a' + (seed * 7 + (int)i) % 26);
}

/* Options of a cache for the tests below. */
typedef struct cache_options {
    uint64_t    memory, disk;
    aside_fsync fsync;
    uint64_t    default_ttl_ms;
    uint64_t    journal_compact_bytes;
} cache_options;

static inline aside_cache *open_with(fixture *f, const cache_options *o)
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
static inline bool same_json(const char *a, const char *b)
{
    json_t *x = json_loads(a, JSON_DECODE_ANY, NULL), *y = json_loads(b, JSON_DECODE_ANY, NULL);
    bool same = x && y && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

/* aside_op succeeds and answers the JSON text want. */
static inline bool op_answers(aside_cache *c, const char *key, const char *op, const char *args,
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
static inline aside_status op_status(aside_cache *c, const char *key, const char *op,
                                     const char *args, aside_error *err)
{
    char *result = NULL;
    aside_error ignored;
    aside_status st = aside_op(c, key, op, args, &result, err ? err : &ignored);
    free(result);
    return st;
}

/* key reads (aside_get) as a value of type holding the JSON text want. */
static inline bool reads_as(aside_cache *c, const char *key, aside_value_type type,
                            const char *want)
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

static inline bool in_memory(aside_cache *c, const char *key)
{
    aside_entry_info info;
    if (aside_entry(c, key, &info, NULL) != ASIDE_OK)
        return false;
    free(info.key);
    return info.in_memory;
}

static inline bool is_pinned(aside_cache *c, const char *key)
{
    aside_entry_info info;
    if (aside_entry(c, key, &info, NULL) != ASIDE_OK)
        return false;
    free(info.key);
    return info.pinned;
}

static inline bool cached(aside_cache *c, const char *key)
{
    aside_entry_info info;
    if (aside_entry(c, key, &info, NULL) != ASIDE_OK)
        return false;
    free(info.key);
    return true;
}

static inline aside_source read_source(aside_cache *c, const char *key)
{
    aside_value *v = NULL;
    aside_source src = (aside_source)-1;
    if (aside_get(c, key, &v, &src, NULL) != ASIDE_OK)
        return (aside_source)-1;
    aside_value_release(v);
    return src;
}

static inline aside_stats stats_of(aside_cache *c)
{
    aside_stats s;
    aside_stats_get(c, &s);
    return s;
}

static inline int64_t ttl_of(aside_cache *c, const char *key)
{
    int64_t ttl = -2;
    if (aside_ttl(c, key, &ttl, NULL) != ASIDE_OK)
        return -2;
    return ttl;
}

static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

enum { POLL_MS = 10, DEADLINE_MS = 5000 };

/* Wait (bounded) until key is no longer cached; true if it left. Looking it up removes a key
 * whose time ran out, so this also checks that an expired key is never found. */
static inline bool gone_in_time(aside_cache *c, const char *key)
{
    for (int waited = 0; waited < DEADLINE_MS; waited += POLL_MS) {
        if (!cached(c, key))
            return true;
        pause_ms(POLL_MS);
    }
    return false;
}

/* Files of n bytes named name0.bin... in the system of record, each a different filling. */
static inline void sor_files(fixture *f, const char *name, int count, size_t bytes)
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
static inline void read_all(aside_cache *c, const char *name, int count, int rounds)
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

#endif
