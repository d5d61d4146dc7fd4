/* locality_inproc.c -- libaside in process, for bench/locality.py: how long a frame takes to
 * reach a program that links the cache instead of asking a server.
 *
 *   locality_inproc --data-dir DIR --sor-dir DIR [--memory-limit SIZE] [--hits N] KEY
 *
 * DIR for --data-dir must be a disk tier of this program's own (an empty folder for a cold
 * read): a server's disk tier belongs to that server. The system of record may be shared.
 *
 *   1. opens a cache (nothing published in shared memory) and reads KEY as a frame: from the
 *      system of record, copied into the disk tier and decoded in this process ("cold");
 *   2. reads it N more times (default 5): answered from memory ("hit");
 *   3. closes the cache, opens it again on the same disk tier and reads KEY once more: decoded
 *      from the disk tier's copy, no system of record ("disk").
 *
 * Prints to stdout one "name value" line per figure (seconds, counts, bytes, the source each
 * read reports), then "info:" and pandas' df.info() text of the frame, for the caller to check
 * against pandas. Exit status 0, or 1 with the reason on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aside.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *source_name(aside_source s)
{
    return s == ASIDE_SOURCE_MEMORY ? "memory" : s == ASIDE_SOURCE_DISK ? "disk" : "sor";
}

static int fail(const char *what, const aside_error *err)
{
    fprintf(stderr, "locality_inproc: %s: %s: %s\n", what, aside_status_name(err->status),
            err->message);
    return 1;
}

/* One timed aside_read of key as a frame: *seconds, *out (release it), *how. */
static aside_status timed_read(aside_cache *cache, const char *key, double *seconds,
                               aside_value **out, aside_read_info *how, aside_error *err)
{
    aside_read_options options = {.type = "frame"};
    double t0 = now();
    aside_status st = aside_read(cache, key, &options, out, how, err);
    *seconds = now() - t0;
    return st;
}

int main(int argc, char **argv)
{
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.shm_dir = "off"; /* this process publishes nothing */
    const char *key = NULL, *data_dir = NULL, *sor_dir = NULL, *limit = NULL;
    long hits = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            data_dir = argv[++i];
        else if (strcmp(argv[i], "--sor-dir") == 0 && i + 1 < argc)
            sor_dir = argv[++i];
        else if (strcmp(argv[i], "--memory-limit") == 0 && i + 1 < argc)
            limit = argv[++i];
        else if (strcmp(argv[i], "--hits") == 0 && i + 1 < argc)
            hits = strtol(argv[++i], NULL, 10);
        else if (!key && argv[i][0] != '-')
            key = argv[i];
        else
            key = NULL, i = argc;
    }
    if (!key || !data_dir || !sor_dir || hits < 1 || hits > 1000) {
        fprintf(stderr, "usage: %s --data-dir DIR --sor-dir DIR [--memory-limit SIZE] "
                        "[--hits N] KEY\n", argv[0]);
        return 2;
    }
    cfg.data_dir = data_dir;
    cfg.sor_dir = sor_dir;
    aside_error err;
    if (limit && aside_parse_size(limit, 0, &cfg.memory_limit_bytes, &err) != ASIDE_OK)
        return fail("--memory-limit", &err);

    aside_cache *cache = NULL;
    double t0 = now();
    if (aside_cache_open(&cfg, &cache, &err) != ASIDE_OK)
        return fail("open", &err);
    printf("open %.9f\n", now() - t0);

    /* 1. cold: system of record -> disk tier -> decoded in this process */
    aside_value *v = NULL;
    aside_read_info how;
    double s;
    if (timed_read(cache, key, &s, &v, &how, &err) != ASIDE_OK) {
        aside_cache_close(cache);
        return fail("cold read", &err);
    }
    printf("cold %.9f\ncold_source %s\n", s, source_name(how.source));
    char *text = NULL;
    uint64_t rows = 0, columns = 0;
    if (aside_frame_info(v, NULL, &text, &rows, &columns, &err) != ASIDE_OK) {
        aside_value_release(v);
        aside_cache_close(cache);
        return fail("frame info", &err);
    }
    printf("rows %llu\ncolumns %llu\nvalue_size %llu\n", (unsigned long long)rows,
           (unsigned long long)columns, (unsigned long long)aside_value_size(v));
    aside_value_release(v);

    /* 2. memory hits */
    for (long i = 0; i < hits; i++) {
        if (timed_read(cache, key, &s, &v, &how, &err) != ASIDE_OK) {
            free(text);
            aside_cache_close(cache);
            return fail("hit", &err);
        }
        printf("hit %.9f\nhit_source %s\n", s, source_name(how.source));
        aside_value_release(v);
    }
    aside_stats st;
    aside_stats_get(cache, &st);
    printf("memory_used %llu\n", (unsigned long long)st.memory_used_bytes);
    aside_cache_close(cache);

    /* 3. reopened: decoded again from the disk tier's copy */
    if (aside_cache_open(&cfg, &cache, &err) != ASIDE_OK) {
        free(text);
        return fail("reopen", &err);
    }
    if (timed_read(cache, key, &s, &v, &how, &err) != ASIDE_OK) {
        free(text);
        aside_cache_close(cache);
        return fail("disk read", &err);
    }
    printf("disk %.9f\ndisk_source %s\n", s, source_name(how.source));
    aside_value_release(v);
    aside_cache_close(cache);

    printf("info:\n%s", text);
    free(text);
    return 0;
}
