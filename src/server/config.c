/* config.c -- aside-server's configuration: flags over environment variables over defaults.
 *
 * Every setting is one row of the options table below: its flag, its environment variable, its
 * default and its help text, so --help, the parser and the README cannot drift apart. Values are
 * parsed and checked here, once, with messages that name the setting; nothing else in the
 * server reads the environment. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "server.h"

typedef enum option_kind { OPT_TEXT, OPT_SIZE_MEMORY, OPT_SIZE_DISK, OPT_SIZE, OPT_COUNT,
                           OPT_PORT, OPT_SECONDS } option_kind;

typedef struct option_row {
    const char *flag;
    const char *env;
    const char *fallback;
    option_kind kind;
    const char *help;
} option_row;

static const option_row options[] = {
    {"local-data-dir", "LOCAL_DATA_DIR", "./data/cache", OPT_TEXT,
     "the disk tier: where fetched values are kept across restarts"},
    {"remote-storage", "REMOTE_STORAGE", "./data/sor", OPT_TEXT,
     "a local or network directory used as the system of record"},
    {"bind", "ASIDE_BIND", "127.0.0.1", OPT_TEXT, "address to listen on"},
    {"port", "ASIDE_PORT", "5000", OPT_PORT, "port to listen on (0: any free port)"},
    {"memory-limit", "ASIDE_MEMORY_LIMIT", "25%", OPT_SIZE_MEMORY,
     "bytes of values held in memory (512MiB, 4GiB, or a % of RAM)"},
    {"disk-limit", "ASIDE_DISK_LIMIT", "80%", OPT_SIZE_DISK,
     "bytes of the disk tier (or a % of the free space at start)"},
    {"threads", "ASIDE_THREADS", NULL, OPT_COUNT, "worker threads (default: number of cores)"},
    {"policy", "ASIDE_POLICY", "s3fifo", OPT_TEXT, "eviction policy: s3fifo or lru"},
    {"max-body", "ASIDE_MAX_BODY", "64MiB", OPT_SIZE, "largest request body accepted"},
    {"idle-timeout", "ASIDE_IDLE_TIMEOUT", "60", OPT_SECONDS,
     "seconds an idle keep-alive connection is kept open"},
    {"request-timeout", "ASIDE_REQUEST_TIMEOUT", "30", OPT_SECONDS,
     "seconds a client has to send a request, and to take each part of a response"},
};

enum { OPTION_COUNT = sizeof options / sizeof options[0], MAX_COUNT = 1024,
       MAX_SECONDS = 86400 };

void server_config_print_help(const char *program)
{
    printf("usage: %s [options]\n\n"
           "aside-server: a cache-aside data server. Reads values from a system of record on a\n"
           "miss, keeps them in memory and on local disk, and serves them over HTTP at\n"
           "/cache/api/v1.0/.\n\n"
           "Each option can also be set by the environment variable shown; a flag wins.\n\n",
           program);
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        printf("  --%-18s %-22s %s", options[i].flag, options[i].env, options[i].help);
        if (options[i].fallback)
            printf(" [default: %s]", options[i].fallback);
        printf("\n");
    }
    printf("  --%-18s %-22s %s\n", "help", "", "print this help and exit");
    printf("  --%-18s %-22s %s\n", "version", "", "print the version and exit");
}

static uint64_t ram_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

static uint64_t free_disk_bytes(const char *dir)
{
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0 && statvfs(".", &vfs) != 0)
        return 0;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

static aside_status parse_number(const option_row *o, const char *text, long min, long max,
                                 long *out, aside_error *err)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return error_set(err, ASIDE_ERR_INVALID, "--%s (%s): \"%s\" is not a whole number from "
                         "%ld to %ld", o->flag, o->env, text, min, max);
    *out = v;
    return ASIDE_OK;
}

static aside_status parse_size(const option_row *o, const char *text, uint64_t whole,
                               uint64_t *out, aside_error *err)
{
    aside_error inner;
    if (aside_parse_size(text, whole, out, &inner) != ASIDE_OK)
        return error_set(err, ASIDE_ERR_INVALID, "--%s (%s): %s", o->flag, o->env,
                         inner.message);
    if (*out == 0)
        return error_set(err, ASIDE_ERR_INVALID, "--%s (%s): must be more than 0", o->flag,
                         o->env);
    return ASIDE_OK;
}

/* Store one option's text into cfg. */
static aside_status apply(server_config *cfg, const option_row *o, const char *text,
                          aside_error *err)
{
    long number = 0;
    uint64_t size = 0;
    aside_status st = ASIDE_OK;
    const char *name = o->flag;
    if (strcmp(name, "local-data-dir") == 0)
        cfg->cache.data_dir = text;
    else if (strcmp(name, "remote-storage") == 0)
        cfg->cache.sor_dir = text;
    else if (strcmp(name, "bind") == 0)
        cfg->http.bind = text;
    else if (strcmp(name, "policy") == 0 && strcmp(text, "s3fifo") != 0 && strcmp(text, "lru") != 0)
        st = error_set(err, ASIDE_ERR_INVALID, "--%s (%s): unknown eviction policy \"%s\" "
                       "(known: s3fifo, lru)", o->flag, o->env, text);
    else if (strcmp(name, "policy") == 0)
        cfg->cache.policy = text;
    else if (o->kind == OPT_PORT && (st = parse_number(o, text, 0, 65535, &number, err)) == 0)
        cfg->http.port = (int)number;
    else if (o->kind == OPT_COUNT && (st = parse_number(o, text, 1, MAX_COUNT, &number, err)) == 0)
        cfg->http.threads = (int)number;
    else if (o->kind == OPT_SECONDS &&
             (st = parse_number(o, text, 1, MAX_SECONDS, &number, err)) == 0) {
        if (strcmp(name, "idle-timeout") == 0)
            cfg->http.idle_timeout_ms = (int)number * 1000;
        else
            cfg->http.request_timeout_ms = (int)number * 1000;
    } else if (o->kind == OPT_SIZE_MEMORY &&
               (st = parse_size(o, text, ram_bytes(), &size, err)) == 0) {
        cfg->cache.memory_limit_bytes = size;
        snprintf(cfg->memory_limit_text, sizeof cfg->memory_limit_text, "%s", text);
    } else if (o->kind == OPT_SIZE_DISK &&
               (st = parse_size(o, text, free_disk_bytes(cfg->cache.data_dir), &size, err)) ==
                   0) {
        cfg->cache.disk_limit_bytes = size;
        snprintf(cfg->disk_limit_text, sizeof cfg->disk_limit_text, "%s", text);
    } else if (o->kind == OPT_SIZE && (st = parse_size(o, text, 0, &size, err)) == 0)
        cfg->http.max_body_bytes = (size_t)size;
    return st;
}

static const option_row *find_option(const char *flag)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (strcmp(options[i].flag, flag) == 0)
            return &options[i];
    }
    return NULL;
}

/* Collect each option's text: the flag, else the environment, else the default. */
static aside_status collect(const char **texts, int argc, char **argv, server_config *cfg,
                            aside_error *err)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const char *env = getenv(options[i].env);
        texts[i] = env && *env ? env : options[i].fallback;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cfg->help = true;
            continue;
        }
        if (strcmp(arg, "--version") == 0) {
            cfg->version = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return error_set(err, ASIDE_ERR_INVALID, "unexpected argument \"%s\" (see --help)",
                             arg);
        char flag[64];
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        snprintf(flag, sizeof flag, "%.*s", (int)len, arg + 2);
        const option_row *o = find_option(flag);
        if (!o)
            return error_set(err, ASIDE_ERR_INVALID, "unknown option --%s (see --help)", flag);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return error_set(err, ASIDE_ERR_INVALID, "option --%s needs a value", flag);
        texts[o - options] = value;
    }
    return ASIDE_OK;
}

aside_status server_config_parse(server_config *cfg, int argc, char **argv, aside_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    aside_config_init(&cfg->cache);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->http.threads = cores > 0 ? (int)cores : 1;
    const char *texts[OPTION_COUNT];
    aside_status st = collect(texts, argc, argv, cfg, err);
    /* data_dir first: the disk limit's percentage refers to its file system */
    if (st == ASIDE_OK)
        st = apply(cfg, find_option("local-data-dir"), texts[0], err);
    for (size_t i = 1; st == ASIDE_OK && i < OPTION_COUNT; i++) {
        if (texts[i])
            st = apply(cfg, &options[i], texts[i], err);
    }
    return st;
}
