/* embed.c -- a program outside the project, built against an installed libaside.
 *
 *   embed DIR
 *
 * Opens a cache whose system of record is DIR/sor and whose disk tier is DIR/cache, reads the
 * key doc.json through it and checks that the bytes are the system of record's; then adds to a
 * counter with aside_op. Exits 0 when all of it worked, and prints what failed otherwise. Its
 * own names (buf_init, table_create, log_line, entry_find) are those of libaside's internal
 * modules: linking succeeds only if the library keeps them to itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aside.h>

/* Internal names of libaside, defined here too: a library that exported them would collide. */
int buf_init(void) { return 1; }
int table_create(void) { return 2; }
int log_line(void) { return 3; }
int entry_find(void) { return 4; }

static const char expected[] = "{\"embedded\": true}";

static int read_doc(aside_cache *cache)
{
    aside_value *v = NULL;
    aside_source source;
    aside_error err;
    if (aside_get(cache, "doc.json", &v, &source, &err) != ASIDE_OK) {
        fprintf(stderr, "embed: aside_get: %s\n", err.message);
        return 1;
    }
    int bad = aside_value_size(v) != strlen(expected) || !aside_value_data(v) ||
              memcmp(aside_value_data(v), expected, strlen(expected)) != 0 ||
              source != ASIDE_SOURCE_SOR;
    if (bad)
        fprintf(stderr, "embed: doc.json is not what the system of record holds\n");
    aside_value_release(v);
    return bad;
}

static int count(aside_cache *cache)
{
    char *result = NULL;
    aside_error err;
    if (aside_op(cache, "hits", "counter_increment", "{\"by\": 2}", &result, &err) != ASIDE_OK) {
        fprintf(stderr, "embed: aside_op: %s\n", err.message);
        return 1;
    }
    int bad = strcmp(result, "2") != 0;
    if (bad)
        fprintf(stderr, "embed: counter_increment answered %s, not 2\n", result);
    free(result);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: embed DIR\n");
        return 2;
    }
    char data_dir[4096], sor_dir[4096];
    snprintf(data_dir, sizeof data_dir, "%s/cache", argv[1]);
    snprintf(sor_dir, sizeof sor_dir, "%s/sor", argv[1]);
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.data_dir = data_dir;
    cfg.sor_dir = sor_dir;
    cfg.shm_dir = "off";
    cfg.fsync = ASIDE_FSYNC_NEVER;
    aside_cache *cache = NULL;
    aside_error err;
    if (aside_cache_open(&cfg, &cache, &err) != ASIDE_OK) {
        fprintf(stderr, "embed: aside_cache_open: %s\n", err.message);
        return 1;
    }
    int failed = read_doc(cache) + count(cache);
    aside_cache_close(cache);
    failed += buf_init() + table_create() + log_line() + entry_find() != 10;
    if (!failed)
        printf("embed: ok\n");
    return failed ? 1 : 0;
}
