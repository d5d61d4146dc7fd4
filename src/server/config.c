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
                           OPT_COUNT_OR_ZERO, OPT_BOOL, OPT_PORT, OPT_SECONDS } option_kind;

typedef struct option_row {
    const char *flag;
    const char *env;
    const char *env_alias; /* read when env is not set */
    const char *fallback;
    option_kind kind;
    const char *help;
} option_row;

static const option_row options[] = {
    {"local-data-dir", "LOCAL_DATA_DIR", NULL, "./data/cache", OPT_TEXT,
     "the disk tier: where fetched values are kept across restarts"},
    {"remote-storage", "REMOTE_STORAGE", NULL, "./data/sor", OPT_TEXT,
     "a local or network directory used as the system of record"},
    {"bind", "ASIDE_BIND", NULL, "127.0.0.1", OPT_TEXT, "address to listen on"},
    {"port", "ASIDE_PORT", NULL, "5000", OPT_PORT, "port to listen on (0: any free port)"},
    {"memory-limit", "ASIDE_MEMORY_LIMIT", NULL, "25%", OPT_SIZE_MEMORY,
     "bytes of values held in memory (512MiB, 4GiB, or a % of RAM)"},
    {"disk-limit", "ASIDE_DISK_LIMIT", NULL, "80%", OPT_SIZE_DISK,
     "bytes of the disk tier (or a % of the free space at start)"},
    {"threads", "ASIDE_THREADS", NULL, NULL, OPT_COUNT, "worker threads (default: number of cores)"},
    {"load-threads", "ASIDE_LOAD_THREADS", NULL, "16", OPT_COUNT,
     "threads for requests that wait on the disk or the system of record"},
    {"policy", "ASIDE_POLICY", NULL, "s3fifo", OPT_TEXT, "eviction policy: s3fifo or lru"},
    {"max-body", "ASIDE_MAX_BODY", NULL, "64MiB", OPT_SIZE, "largest request body accepted"},
    {"idle-timeout", "ASIDE_IDLE_TIMEOUT", NULL, "60", OPT_SECONDS,
     "seconds an idle keep-alive connection is kept open"},
    {"request-timeout", "ASIDE_REQUEST_TIMEOUT", NULL, "30", OPT_SECONDS,
     "seconds a client has to send a request, and to take each part of a response"},
    {"max-age", "ASIDE_MAX_AGE", NULL, "0", OPT_COUNT_OR_ZERO,
     "seconds after which a read revalidates its copy in the background (0: never); "
     "per request: max_age="},
    {"stale-if-error", "ASIDE_STALE_IF_ERROR", NULL, "false", OPT_BOOL,
     "update answers the cached copy when the system of record fails; per request: "
     "stale_if_error="},
    {"aws-bucket-name", "AWS_BUCKET_NAME", NULL, NULL, OPT_TEXT,
     "S3 bucket of the system of record; when set, S3 is the default storage"},
    {"aws-data-dir", "AWS_DATA_DIR", NULL, NULL, OPT_TEXT, "key prefix of the data in the bucket"},
    {"aws-region", "AWS_REGION", "AWS_DEFAULT_REGION", "us-east-1", OPT_TEXT, "the bucket's region"},
    {"aws-endpoint-url", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", NULL, OPT_TEXT,
     "an S3-compatible endpoint (path-style addressing)"},
    {"s3-part-size", "ASIDE_S3_PART_SIZE", NULL, "8MiB", OPT_SIZE,
     "part size of parallel ranged loads and multipart writes"},
    {"s3-concurrency", "ASIDE_S3_CONCURRENCY", NULL, "8", OPT_COUNT, "parts in flight per load"},
    {"s3-max-attempts", "ASIDE_S3_MAX_ATTEMPTS", NULL, "3", OPT_COUNT,
     "attempts per S3 request, with exponential backoff and full jitter"},
    {"s3-timeout", "ASIDE_S3_TIMEOUT", NULL, "30", OPT_SECONDS,
     "seconds an S3 request may go without progress before it is retried"},
    {"s3-multipart-threshold", "ASIDE_S3_MULTIPART_THRESHOLD", NULL, "16MiB", OPT_SIZE,
     "writes larger than this are multipart uploads"},
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
        printf("  --%-22s %-28s %s", options[i].flag, options[i].env, options[i].help);
        if (options[i].fallback)
            printf(" [default: %s]", options[i].fallback);
        printf("\n");
    }
    printf("  --%-22s %-28s %s\n", "help", "", "print this help and exit");
    printf("  --%-22s %-28s %s\n", "version", "", "print the version and exit");
    printf("\nS3 credentials are found as the AWS SDKs find them: AWS_ACCESS_KEY_ID,\n"
           "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; the shared files AWS_SHARED_CREDENTIALS_FILE\n"
           "and AWS_CONFIG_FILE for the profile AWS_PROFILE; ECS container credentials\n"
           "(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN);\n"
           "EC2 instance metadata (IMDSv2; AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_DISABLED).\n");
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
    else if (strcmp(name, "max-age") == 0 &&
             (st = parse_number(o, text, 0, MAX_SECONDS * 365, &number, err)) == 0)
        cfg->api.max_age_s = (unsigned)number;
    else if (strcmp(name, "stale-if-error") == 0) {
        bool yes = strcmp(text, "true") == 0 || strcmp(text, "1") == 0;
        if (!yes && strcmp(text, "false") != 0 && strcmp(text, "0") != 0)
            st = error_set(err, ASIDE_ERR_INVALID, "--%s (%s): \"%s\" is not true or false",
                           o->flag, o->env, text);
        cfg->api.stale_if_error = yes;
    } else if (strcmp(name, "aws-bucket-name") == 0)
        cfg->cache.s3.bucket = text;
    else if (strcmp(name, "aws-data-dir") == 0)
        cfg->cache.s3.prefix = text;
    else if (strcmp(name, "aws-region") == 0)
        cfg->cache.s3.region = text;
    else if (strcmp(name, "aws-endpoint-url") == 0)
        cfg->cache.s3.endpoint = text;
    else if (strcmp(name, "s3-part-size") == 0 && (st = parse_size(o, text, 0, &size, err)) == 0)
        cfg->cache.s3.part_size_bytes = size;
    else if (strcmp(name, "s3-multipart-threshold") == 0 &&
             (st = parse_size(o, text, 0, &size, err)) == 0)
        cfg->cache.s3.multipart_threshold_bytes = size;
    else if (strcmp(name, "s3-concurrency") == 0 &&
             (st = parse_number(o, text, 1, MAX_COUNT, &number, err)) == 0)
        cfg->cache.s3.concurrency = (unsigned)number;
    else if (strcmp(name, "s3-max-attempts") == 0 &&
             (st = parse_number(o, text, 1, MAX_COUNT, &number, err)) == 0)
        cfg->cache.s3.max_attempts = (unsigned)number;
    else if (strcmp(name, "s3-timeout") == 0 &&
             (st = parse_number(o, text, 1, MAX_SECONDS, &number, err)) == 0)
        cfg->cache.s3.timeout_s = (unsigned)number;
    else if (o->kind == OPT_PORT && (st = parse_number(o, text, 0, 65535, &number, err)) == 0)
        cfg->http.port = (int)number;
    else if (strcmp(name, "load-threads") == 0 &&
             (st = parse_number(o, text, 1, MAX_COUNT, &number, err)) == 0)
        cfg->http.blocking_threads = (int)number;
    else if (strcmp(name, "threads") == 0 &&
             (st = parse_number(o, text, 1, MAX_COUNT, &number, err)) == 0)
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
        if ((!env || !*env) && options[i].env_alias)
            env = getenv(options[i].env_alias);
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
