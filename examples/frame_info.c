/* frame_info.c -- libaside in process: a DataFrame's info, without any server.
 *
 *   frame_info [--data-dir DIR] [--sor-dir DIR] KEY
 *
 * Opens a cache on the same disk tier and system of record directory a server would use
 * (defaults ./data/cache and ./data/sor), reads KEY as a frame (parquet, CSV, JSON lines, Arrow)
 * -- from the disk tier if a server or an earlier run loaded it, else from the system of
 * record -- and prints what pandas' df.info() would print for it. The frame is decoded in this
 * process; nothing is sent anywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aside.h"

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

static int print_info(aside_cache *cache, const char *key)
{
    aside_read_options options = {.type = "frame"};
    aside_read_info how;
    aside_value *v = NULL;
    aside_error err;
    char *text = NULL;
    uint64_t rows = 0, columns = 0;
    if (aside_read(cache, key, &options, &v, &how, &err) != ASIDE_OK ||
        aside_frame_info(v, NULL, &text, &rows, &columns, &err) != ASIDE_OK) {
        fprintf(stderr, "frame_info: %s: %s\n", aside_status_name(err.status), err.message);
        aside_value_release(v);
        return 1;
    }
    fputs(text, stdout);
    fprintf(stderr, "frame_info: %s: %llu rows, %llu columns, from %s\n", key,
            (unsigned long long)rows, (unsigned long long)columns,
            how.source == ASIDE_SOURCE_MEMORY ? "memory"
            : how.source == ASIDE_SOURCE_DISK ? "disk" : "sor");
    free(text);
    aside_value_release(v);
    return 0;
}

int main(int argc, char **argv)
{
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.shm_dir = "off"; /* this process publishes nothing */
    const char *key = parse_args(argc, argv, &cfg);
    if (!key) {
        fprintf(stderr, "usage: %s [--data-dir DIR] [--sor-dir DIR] KEY\n", argv[0]);
        return 2;
    }
    aside_cache *cache = NULL;
    aside_error err;
    if (aside_cache_open(&cfg, &cache, &err) != ASIDE_OK) {
        fprintf(stderr, "frame_info: %s\n", err.message);
        return 1;
    }
    int rc = print_info(cache, key);
    aside_cache_close(cache);
    return rc;
}
