/* read_key.c -- libaside in process: read one key through the cache, without any server.
 *
 *   read_key [--data-dir DIR] [--sor-dir DIR] KEY
 *
 * Opens a cache on the same disk tier and system of record directory a server would use
 * (defaults ./data/cache and ./data/sor), reads KEY -- from memory, the disk tier, or the system
 * of record, which also fills the disk tier for the next reader -- writes its bytes to standard
 * output and where they came from to standard error. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aside.h"

static const char *source_name(aside_source s)
{
    return s == ASIDE_SOURCE_MEMORY ? "memory" : s == ASIDE_SOURCE_DISK ? "disk" : "sor";
}

static int print_value(aside_value *v)
{
    const char *data = aside_value_data(v);
    uint64_t size = aside_value_size(v);
    if (data)
        return fwrite(data, 1, size, stdout) == size ? 0 : 1;
    char chunk[1 << 16];
    for (uint64_t done = 0; done < size;) { /* larger than memory: read its file */
        ssize_t n = pread(aside_value_fd(v), chunk, sizeof chunk, (off_t)done);
        if (n <= 0 || fwrite(chunk, 1, (size_t)n, stdout) != (size_t)n)
            return 1;
        done += (uint64_t)n;
    }
    return 0;
}

/* The key named on the command line, with the directories set in cfg; NULL if the line is bad. */
static const char *parse_args(int argc, char **argv, aside_config *cfg)
{
    const char *key = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            cfg->data_dir = argv[++i];
        else if (strcmp(argv[i], "--sor-dir") == 0 && i + 1 < argc)
            cfg->sor_dir = argv[++i];
        else if (!key && argv[i][0] != '-')
            key = argv[i];
        else
            return NULL;
    }
    return key;
}

int main(int argc, char **argv)
{
    aside_config cfg;
    aside_config_init(&cfg);
    const char *key = parse_args(argc, argv, &cfg);
    if (!key) {
        fprintf(stderr, "usage: %s [--data-dir DIR] [--sor-dir DIR] KEY\n", argv[0]);
        return 2;
    }
    aside_cache *cache = NULL;
    aside_error err;
    if (aside_cache_open(&cfg, &cache, &err) != ASIDE_OK) {
        fprintf(stderr, "read_key: %s\n", err.message);
        return 1;
    }
    aside_value *v = NULL;
    aside_source source;
    int rc = 1;
    if (aside_get(cache, key, &v, &source, &err) != ASIDE_OK) {
        fprintf(stderr, "read_key: %s: %s\n", aside_status_name(err.status), err.message);
    } else {
        fprintf(stderr, "read_key: %s: %llu bytes from %s\n", key,
                (unsigned long long)aside_value_size(v), source_name(source));
        rc = print_value(v);
        aside_value_release(v);
    }
    aside_cache_close(cache);
    return rc;
}
