/* config.c -- aside-server's configuration: flags over environment variables over defaults.
 *
 * Every setting is one row of the options table below: its flag, its environment variable, its
 * default and its help text, so --help, the parser and the README cannot drift apart. Values are
 * parsed and checked here, once, with messages that name the setting; nothing else in the
 * server reads the environment. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "config.h"
#include "tokens.h"
#include "value/value.h"

typedef enum option_kind {
    OPT_TEXT,       /* const char * */
    OPT_POLICY,     /* const char *, one of the eviction policies */
    OPT_BYTES,      /* uint64_t, a size */
    OPT_BYTES_RAM,  /* uint64_t, a size or a percentage of RAM */
    OPT_BYTES_DISK, /* uint64_t, a size or a percentage of the disk tier's free space */
    OPT_INT,        /* int, from min to max, times scale */
    OPT_UINT,       /* unsigned, from min to max */
    OPT_BOOL,       /* bool: true, false, 1, 0 */
    OPT_FSYNC,      /* aside_fsync: always, everysec, never */
    OPT_SECONDS_MS  /* uint64_t milliseconds, from whole seconds from min to max */
} option_kind;

typedef struct option_row {
    const char *flag;
    const char *env;
    const char *env_alias; /* read when env is not set */
    const char *fallback;
    option_kind kind;
    size_t      offset;    /* of the field in server_config */
    long        min, max, scale;
    const char *help;
} option_row;

/* A check of a value beyond its kind (a folder that can be used, a bucket name...). */
typedef aside_status (*option_check)(const option_row *o, const char *text, aside_error *err);

static aside_status check_folder(const option_row *o, const char *text, aside_error *err);
static aside_status check_existing_folder(const option_row *o, const char *text,
                                          aside_error *err);
static aside_status check_shm_folder(const option_row *o, const char *text, aside_error *err);
static aside_status check_spec_file(const option_row *o, const char *text, aside_error *err);
static aside_status check_program(const option_row *o, const char *text, aside_error *err);
static aside_status check_address(const option_row *o, const char *text, aside_error *err);
static aside_status check_key_prefix(const option_row *o, const char *text, aside_error *err);
static aside_status check_token(const option_row *o, const char *text, aside_error *err);
static aside_status check_tokens_file(const option_row *o, const char *text, aside_error *err);
static aside_status check_token_file(const option_row *o, const char *text, aside_error *err);
static aside_status check_bucket(const option_row *o, const char *text, aside_error *err);
static aside_status check_region(const option_row *o, const char *text, aside_error *err);
static aside_status check_url(const option_row *o, const char *text, aside_error *err);
static aside_status check_part_size(const option_row *o, const char *text, aside_error *err);
static aside_status check_access_log(const option_row *o, const char *text, aside_error *err);
static aside_status check_user(const option_row *o, const char *text, aside_error *err);
static aside_status check_sandbox_mode(const option_row *o, const char *text, aside_error *err);

#define AT(field) offsetof(server_config, field)

enum {
    MAX_COUNT = 1024,
    MAX_PROCESSES = 1 << 22, /* Linux's highest pid_max */
    MAX_SECONDS = 86400,
    MAX_AGE_SECONDS = 366 * 86400,
    MS = 1000,
    MAX_CONNECTIONS = 1 << 24 /* above any open-file limit Linux allows (nr_open: 2^20 by
                                 default, at most about 2^30) would be pointless */
};

static const option_row options[] = {
    {"local-data-dir", "LOCAL_DATA_DIR", NULL, "./data/cache", OPT_TEXT, AT(cache.data_dir), 0, 0,
     0, "the disk tier: where fetched values are kept across restarts"},
    {"remote-storage", "REMOTE_STORAGE", NULL, "./data/sor", OPT_TEXT, AT(cache.sor_dir), 0, 0, 0,
     "a local or network directory used as the system of record"},
    {"bind", "ASIDE_BIND", NULL, "127.0.0.1", OPT_TEXT, AT(http.bind), 0, 0, 0,
     "address to listen on"},
    {"port", "ASIDE_PORT", NULL, "5000", OPT_INT, AT(http.port), 0, 65535, 1,
     "port to listen on (0: any free port)"},
    {"memory-limit", "ASIDE_MEMORY_LIMIT", NULL, "25%", OPT_BYTES_RAM,
     AT(cache.memory_limit_bytes), 0, 0, 0,
     "bytes of values held in memory (512MiB, 4GiB, or a % of RAM or of the container's limit)"},
    {"disk-limit", "ASIDE_DISK_LIMIT", NULL, "80%", OPT_BYTES_DISK, AT(cache.disk_limit_bytes),
     0, 0, 0, "bytes of the disk tier (or a % of the free space at start)"},
    {"threads", "ASIDE_THREADS", NULL, NULL, OPT_INT, AT(http.threads), 1, MAX_COUNT, 1,
     "event-loop threads (default: number of cores)"},
    {"load-threads", "ASIDE_LOAD_THREADS", NULL, "16", OPT_INT, AT(http.blocking_threads), 1,
     MAX_COUNT, 1, "threads for requests that wait on the disk or the system of record"},
    {"policy", "ASIDE_POLICY", NULL, "s3fifo", OPT_POLICY, AT(cache.policy), 0, 0, 0,
     "eviction policy of memory and disk: s3fifo, lru or lfu"},
    {"fsync", "ASIDE_FSYNC", NULL, "everysec", OPT_FSYNC, AT(cache.fsync), 0, 0, 0,
     "when changes to what only the cache holds (collections, edited JSON) reach the disk: "
     "always (before each answer), everysec, never (left to the system)"},
    {"default-ttl", "ASIDE_DEFAULT_TTL", NULL, "0", OPT_SECONDS_MS, AT(cache.default_ttl_ms), 0,
     MAX_AGE_SECONDS * 10L, 1, "seconds a key lives after it enters the cache (0: for ever); "
     "per key: function=expire"},
    {"journal-compact", "ASIDE_JOURNAL_COMPACT", NULL, "64MiB", OPT_BYTES,
     AT(cache.journal_compact_bytes), 0, 0, 0,
     "the journal of collections is compacted past this size and twice its last compacted size"},
    {"json-max-depth", "ASIDE_JSON_MAX_DEPTH", NULL, "1000", OPT_UINT, AT(cache.json_max_depth),
     1, VALUE_JSON_MAX_DEPTH, 1, "how deep JSON may nest (arrays and objects inside one another) "
     "in a request, a document or a function's result; deeper is refused with 400 too_deep"},
    {"max-body", "ASIDE_MAX_BODY", NULL, "64MiB", OPT_BYTES, AT(http.max_body_bytes), 0, 0, 0,
     "largest request body accepted"},
    {"max-bodies-in-flight", "ASIDE_MAX_BODIES_IN_FLIGHT", NULL, "256MiB", OPT_BYTES,
     AT(http.max_bodies_in_flight_bytes), 0, 0, 0,
     "bytes of request bodies being received at once, all connections together; a body past "
     "it gets 503 with Retry-After before it is read (413 when larger than this alone)"},
    {"max-connections", "ASIDE_MAX_CONNECTIONS", NULL, NULL, OPT_INT, AT(http.max_connections),
     1, MAX_CONNECTIONS, 1, "open connections at most; past it new clients wait in the kernel's "
     "queue until one closes (default: the open-file limit, raised to the hard one at start, "
     "less the descriptors open at start and a reserve for files)"},
    {"idle-timeout", "ASIDE_IDLE_TIMEOUT", NULL, "60", OPT_INT, AT(http.idle_timeout_ms), 1,
     MAX_SECONDS, MS, "seconds an idle keep-alive connection is kept open"},
    {"request-timeout", "ASIDE_REQUEST_TIMEOUT", NULL, "30", OPT_INT,
     AT(http.request_timeout_ms), 1, MAX_SECONDS, MS,
     "seconds a client has to send a request, and to take each part of a response"},
    {"max-age", "ASIDE_MAX_AGE", NULL, "0", OPT_UINT, AT(api.max_age_s), 0, MAX_AGE_SECONDS, 1,
     "seconds after which a read revalidates its copy in the background (0: never); "
     "per request: max_age="},
    {"stale-if-error", "ASIDE_STALE_IF_ERROR", NULL, "false", OPT_BOOL, AT(api.stale_if_error),
     0, 0, 0, "update answers the cached copy when the system of record fails; per request: "
     "stale_if_error="},
    {"local-function-dir", "LOCAL_FUNCTION_DIR", NULL, "./functions", OPT_TEXT,
     AT(api.functions.dir), 0, 0, 0, "folder of users' functions: NAME.py files with "
     "def main(cache, **kwargs)"},
    {"aws-function-dir", "AWS_FUNCTION_DIR", NULL, "functions", OPT_TEXT,
     AT(api.functions.remote_dir), 0, 0, 0,
     "folder of the system of record where function_register finds NAME.py"},
    {"python", "ASIDE_PYTHON", NULL, "python3", OPT_TEXT, AT(api.functions.python), 0, 0, 0,
     "the Python that runs function workers (it needs the aside package)"},
    {"function-workers", "ASIDE_FUNCTION_WORKERS", NULL, NULL, OPT_UINT, AT(api.functions.workers),
     1, MAX_COUNT, 1, "worker processes for users' functions (default: number of cores)"},
    {"function-timeout", "ASIDE_FUNCTION_TIMEOUT", NULL, "60", OPT_UINT,
     AT(api.functions.max_timeout_ms), 1, MAX_SECONDS, MS,
     "seconds a function may run (timeout= may ask for less); past it, its worker is stopped"},
    {"function-memory", "ASIDE_FUNCTION_MEMORY", NULL, "4GiB", OPT_BYTES,
     AT(api.functions.memory_limit_bytes), 0, 0, 0,
     "address space of each function worker (RLIMIT_AS; 0: none)"},
    {"function-file-size", "ASIDE_FUNCTION_FILE_SIZE", NULL, "1GiB", OPT_BYTES,
     AT(api.functions.file_size_limit_bytes), 0, 0, 0,
     "largest file a function's process may write (RLIMIT_FSIZE; 0: none)"},
    {"function-processes", "ASIDE_FUNCTION_PROCESSES", NULL, "1024", OPT_UINT,
     AT(api.functions.max_processes), 0, MAX_PROCESSES, 1,
     "processes and threads each function worker may run (a pids cgroup per worker when the "
     "server may make one, else RLIMIT_NPROC above the user's count; 0: no bound)"},
    {"function-user", "ASIDE_FUNCTION_USER", NULL, NULL, OPT_TEXT, AT(api.functions.user), 0,
     0, 0, "the user function workers run as (default: nobody when the server runs as root, "
     "else the server's own user; another user needs a server that runs as root)"},
    {"function-sandbox", "ASIDE_FUNCTION_SANDBOX", NULL, "auto", OPT_TEXT,
     AT(api.functions.sandbox), 0, 0, 0,
     "run function workers in a sandbox (bwrap): no network but the API, read-only "
     "installation and function folder, private /tmp and /proc; auto: when it works, else a "
     "warning at start; on: refuse to start without it; off: no sandbox (unsafe)"},
    {"function-tmp-size", "ASIDE_FUNCTION_TMP_SIZE", NULL, "256MiB", OPT_BYTES,
     AT(api.functions.tmp_bytes), 0, 0, 0,
     "size of a sandboxed worker's private /tmp, in memory (0: tmpfs's default, half the RAM)"},
    {"token", "ASIDE_TOKEN", NULL, NULL, OPT_TEXT, AT(api.token), 0, 0, 0,
     "a secret every request must present as \"Authorization: Bearer <token>\" (else 401), "
     "with every scope; default: none asked"},
    {"tokens-file", "ASIDE_TOKENS_FILE", NULL, NULL, OPT_TEXT, AT(api.tokens_file), 0, 0, 0,
     "a file of tokens, one a line: name, sha256:<hash of the secret> (--hash-token), scopes "
     "read,write,admin, key prefixes if any; reloaded on SIGHUP; not with ASIDE_TOKEN"},
    {"allow-unauthenticated", "ASIDE_ALLOW_UNAUTHENTICATED", NULL, "false", OPT_BOOL,
     AT(allow_unauthenticated), 0, 0, 0,
     "serve an address other than loopback without any token (a warning is logged); without "
     "it such a start is refused"},
    {"metrics-public", "ASIDE_METRICS_PUBLIC", NULL, "false", OPT_BOOL, AT(api.metrics_public),
     0, 0, 0, "GET /metrics answers without a token (it holds figures, never a key); by default "
     "it asks for a token with the read scope, like the API"},
    {"token-file", "ASIDE_TOKEN_FILE", NULL, NULL, OPT_TEXT, AT(token_file), 0, 0, 0,
     "a file holding ASIDE_TOKEN (a secret mounted as a file; one trailing newline is "
     "dropped); not both"},
    {"drain-seconds", "ASIDE_DRAIN_SECONDS", NULL, "5", OPT_INT, AT(drain_ms), 0, MAX_SECONDS,
     MS, "after SIGTERM: seconds the server keeps serving while /ready answers 503, so load "
     "balancers stop sending before it stops accepting"},
    {"shutdown-timeout", "ASIDE_SHUTDOWN_TIMEOUT", NULL, "30", OPT_INT,
     AT(shutdown_timeout_ms), 1, MAX_SECONDS, MS,
     "after the drain: seconds requests in flight have to finish before the server exits"},
    {"access-log", "ASIDE_ACCESS_LOG", NULL, "off", OPT_TEXT, AT(access_log.target), 0, 0, 0,
     "one JSON line per request: off, stderr, or a file (appended to, created 0640, reopened "
     "on SIGUSR1)"},
    {"slow-ms", "ASIDE_SLOW_MS", NULL, "1000", OPT_INT, AT(access_log.slow_ms), 0,
     MAX_SECONDS * MS, 1, "a request that takes at least this many milliseconds is logged as a "
     "warning in the server's log, access log or not (0: never)"},
    {"shm-dir", "ASIDE_SHM_DIR", NULL, NULL, OPT_TEXT, AT(cache.shm_dir), 0, 0, 0,
     "folder where frames are published for processes on this host (function=map); default a "
     "private folder under /dev/shm; off: never"},
    {"result-limit", "ASIDE_RESULT_LIMIT", NULL, "256MiB", OPT_BYTES,
     AT(api.result_limit_bytes), 0, 0, 0,
     "largest frame result answered as JSON or CSV (head, select, sql); larger ones get 413 "
     "unless stored with into= or read as Arrow"},
    {"sql-timeout", "ASIDE_SQL_TIMEOUT", NULL, "60", OPT_UINT, AT(api.sql_timeout_ms), 1,
     MAX_SECONDS, MS, "seconds a query (sql, select, describe) may run before it is interrupted"},
    {"pandas", "ASIDE_PANDAS", NULL, "3", OPT_UINT, AT(api.pandas_major), 2, 3, 1,
     "the pandas major version (2 or 3) whose answers info, dtypes and map give: dtypes, "
     "memory usage, the class name; per request: pandas="},
    {"sql-threads", "ASIDE_SQL_THREADS", NULL, "2", OPT_UINT, AT(cache.sql_threads), 1, MAX_COUNT,
     1, "threads a query (sql, select, describe) runs on"},
    {"spec", "ASIDE_SPEC", NULL, NULL, OPT_TEXT, AT(spec_path), 0, 0, 0,
     "a YAML file declaring datasets to preload, SQL views and functions to register "
     "(docs/spec.md); checked at start, reloaded on SIGHUP or function=reload_spec"},
    {"aws-bucket-name", "AWS_BUCKET_NAME", NULL, NULL, OPT_TEXT, AT(cache.s3.bucket), 0, 0, 0,
     "S3 bucket of the system of record; when set, S3 is the default storage"},
    {"aws-data-dir", "AWS_DATA_DIR", NULL, NULL, OPT_TEXT, AT(cache.s3.prefix), 0, 0, 0,
     "key prefix of the data in the bucket"},
    {"aws-region", "AWS_REGION", "AWS_DEFAULT_REGION", "us-east-1", OPT_TEXT,
     AT(cache.s3.region), 0, 0, 0, "the bucket's region"},
    {"aws-endpoint-url", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", NULL, OPT_TEXT,
     AT(cache.s3.endpoint), 0, 0, 0, "an S3-compatible endpoint (path-style addressing)"},
    {"s3-part-size", "ASIDE_S3_PART_SIZE", NULL, "8MiB", OPT_BYTES, AT(cache.s3.part_size_bytes),
     0, 0, 0, "part size of parallel ranged loads and multipart writes"},
    {"s3-concurrency", "ASIDE_S3_CONCURRENCY", NULL, "8", OPT_UINT, AT(cache.s3.concurrency), 1,
     MAX_COUNT, 1, "parts in flight per load"},
    {"s3-max-attempts", "ASIDE_S3_MAX_ATTEMPTS", NULL, "3", OPT_UINT, AT(cache.s3.max_attempts),
     1, MAX_COUNT, 1, "attempts per S3 request, with exponential backoff and full jitter"},
    {"s3-timeout", "ASIDE_S3_TIMEOUT", NULL, "30", OPT_UINT, AT(cache.s3.timeout_s), 1,
     MAX_SECONDS, 1, "seconds an S3 request may go without progress before it is retried"},
    {"s3-multipart-threshold", "ASIDE_S3_MULTIPART_THRESHOLD", NULL, "16MiB", OPT_BYTES,
     AT(cache.s3.multipart_threshold_bytes), 0, 0, 0,
     "writes larger than this are multipart uploads"},
};

enum { OPTION_COUNT = sizeof options / sizeof options[0] };

/* The settings whose values are checked beyond their kind, by flag: a value given (not a
 * default) must pass its check at start. */
static const struct {
    const char  *flag;
    option_check check;
} value_checks[] = {
    {"local-data-dir", check_folder},
    {"remote-storage", check_existing_folder},
    {"bind", check_address},
    {"local-function-dir", check_folder},
    {"aws-function-dir", check_key_prefix},
    {"python", check_program},
    {"function-user", check_user},
    {"function-sandbox", check_sandbox_mode},
    {"token", check_token},
    {"tokens-file", check_tokens_file},
    {"token-file", check_token_file},
    {"shm-dir", check_shm_folder},
    {"spec", check_spec_file},
    {"aws-bucket-name", check_bucket},
    {"aws-data-dir", check_key_prefix},
    {"aws-region", check_region},
    {"aws-endpoint-url", check_url},
    {"s3-part-size", check_part_size},
    {"access-log", check_access_log},
};


void server_config_print_help(const char *program)
{
    printf("usage: %s [options]\n\n"
           "aside-server: a cache-aside data server. Reads values from a system of record on a\n"
           "miss, keeps them in memory and on local disk, and serves them over HTTP at\n"
           "/cache/api/v1.0/.\n\n"
           "Each option can also be set by the environment variable shown; a flag wins.\n\n",
           program);
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const option_row *o = &options[i];
        printf("  --%-22s %-28s %s", o->flag, o->env, o->help);
        if (o->env_alias)
            printf(" (or %s)", o->env_alias);
        if (o->fallback)
            printf(" [default: %s]", o->fallback);
        printf("\n");
    }
    printf("  --%-22s %-28s %s\n", "help", "", "print this help and exit");
    printf("  --%-22s %-28s %s\n", "version", "", "print the version and exit");
    printf("  --%-22s %-28s %s\n", "list-functions", "",
           "print the API's functions as Markdown tables and exit");
    printf("  --%-22s %-28s %s\n", "hash-token", "",
           "read a secret on standard input, print its line's hash for ASIDE_TOKENS_FILE, exit");
    printf("  --%-22s %-28s %s\n", "check-config", "",
           "check the flags, the environment, the spec and the folders, then exit (0: good, "
           "2: a bad setting, named)");
    printf("\nS3 credentials are found as the AWS SDKs find them: AWS_ACCESS_KEY_ID,\n"
           "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; the shared files AWS_SHARED_CREDENTIALS_FILE\n"
           "and AWS_CONFIG_FILE for the profile AWS_PROFILE; ECS container credentials\n"
           "(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN);\n"
           "EC2 instance metadata (IMDSv2; AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_DISABLED).\n");
}

static uint64_t free_disk_bytes(const char *dir)
{
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0 && statvfs(".", &vfs) != 0)
        return 0;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

static aside_status parse_number(const option_row *o, const char *text, long *out,
                                 aside_error *err)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < o->min || v > o->max)
        return error_set(err, ASIDE_ERR_INVALID, "--%s (%s): \"%s\" is not a whole number from "
                         "%ld to %ld", o->flag, o->env, text, o->min, o->max);
    *out = v * o->scale;
    return ASIDE_OK;
}

static aside_status parse_bytes(const option_row *o, const char *text, uint64_t whole,
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

static aside_status parse_bool(const option_row *o, const char *text, bool *out,
                               aside_error *err)
{
    *out = strcmp(text, "true") == 0 || strcmp(text, "1") == 0;
    if (!*out && strcmp(text, "false") != 0 && strcmp(text, "0") != 0)
        return error_set(err, ASIDE_ERR_INVALID, "--%s (%s): \"%s\" is not true or false",
                         o->flag, o->env, text);
    return ASIDE_OK;
}

static aside_status parse_policy(const option_row *o, const char *text, aside_error *err)
{
    if (strcmp(text, "s3fifo") != 0 && strcmp(text, "lru") != 0 && strcmp(text, "lfu") != 0)
        return error_set(err, ASIDE_ERR_INVALID, "--%s (%s): unknown eviction policy \"%s\" "
                         "(known: s3fifo, lru, lfu)", o->flag, o->env, text);
    return ASIDE_OK;
}

static aside_status parse_fsync(const option_row *o, const char *text, aside_fsync *out,
                                aside_error *err)
{
    static const char *const names[] = {"everysec", "always", "never"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = i; /* the order of aside_fsync */
            return ASIDE_OK;
        }
    }
    return error_set(err, ASIDE_ERR_INVALID, "--%s (%s): \"%s\" is not always, everysec or "
                     "never", o->flag, o->env, text);
}

/* ---- checks of values beyond their kind ----------------------------------------------------
 *
 * A value the operator gave is checked here, at start, so that a typo stops the server with a
 * message naming the setting instead of failing later (or never) with one that does not. */

#define REFUSE(o, ...) refuse(o, err, __VA_ARGS__)

static aside_status refuse(const option_row *o, aside_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static aside_status refuse(const option_row *o, aside_error *err, const char *fmt, ...)
{
    char why[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return error_set(err, ASIDE_ERR_INVALID, "--%s (%s): %s", o->flag, o->env, why);
}

static bool is_folder(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A folder the server may use: made (with its parents) when missing, as it would be at start. */
static aside_status check_folder(const option_row *o, const char *text, aside_error *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", text) >= (int)sizeof path)
        return REFUSE(o, "the path is too long");
    for (char *p = strchr(path + 1, '/');; p = strchr(p + 1, '/')) {
        if (p)
            *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return REFUSE(o, "cannot create the folder %s: %s", path, strerror(errno));
        if (!is_folder(path))
            return REFUSE(o, "%s is not a folder", path);
        if (!p)
            break;
        *p = '/';
    }
    if (access(text, R_OK | W_OK | X_OK) != 0)
        return REFUSE(o, "the folder %s cannot be written: %s", text, strerror(errno));
    return ASIDE_OK;
}

static aside_status check_existing_folder(const option_row *o, const char *text,
                                          aside_error *err)
{
    if (!is_folder(text))
        return REFUSE(o, "%s is not a folder: %s", text, errno ? strerror(errno) : "a file");
    if (access(text, R_OK | X_OK) != 0)
        return REFUSE(o, "the folder %s cannot be read: %s", text, strerror(errno));
    return ASIDE_OK;
}

static aside_status check_shm_folder(const option_row *o, const char *text, aside_error *err)
{
    return strcmp(text, "off") == 0 ? ASIDE_OK : check_folder(o, text, err);
}

static aside_status check_user(const option_row *o, const char *text, aside_error *err)
{
    struct passwd *pw = getpwnam(text);
    if (!pw)
        return REFUSE(o, "no user %s on this host", text);
    if (pw->pw_uid != geteuid() && geteuid() != 0)
        return REFUSE(o, "only a server that runs as root can run functions as %s", text);
    return ASIDE_OK;
}

static aside_status check_sandbox_mode(const option_row *o, const char *text, aside_error *err)
{
    if (strcmp(text, "auto") && strcmp(text, "on") && strcmp(text, "off"))
        return REFUSE(o, "%s is not auto, on or off", text);
    return ASIDE_OK;
}

static aside_status check_spec_file(const option_row *o, const char *text, aside_error *err)
{
    struct stat sb;
    if (stat(text, &sb) != 0)
        return REFUSE(o, "%s: cannot open the spec: %s", text, strerror(errno));
    if (!S_ISREG(sb.st_mode) || access(text, R_OK) != 0)
        return REFUSE(o, "%s: cannot open the spec: not a readable file", text);
    return ASIDE_OK;
}

static aside_status check_access_log(const option_row *o, const char *text, aside_error *err)
{
    aside_error why;
    if (access_log_check(text, &why) != ASIDE_OK)
        return REFUSE(o, "%s (off, stderr, or a file the server can append to)", why.message);
    return ASIDE_OK;
}

static bool is_executable_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

/* A program: a path to an executable file, or a name found on PATH. */
static aside_status check_program(const option_row *o, const char *text, aside_error *err)
{
    if (strchr(text, '/')) {
        if (!is_executable_file(text))
            return REFUSE(o, "%s is not an executable file", text);
        return ASIDE_OK;
    }
    const char *path = getenv("PATH");
    char candidate[PATH_MAX];
    for (const char *dir = path; dir && *dir;) {
        size_t len = strcspn(dir, ":");
        if (snprintf(candidate, sizeof candidate, "%.*s/%s", (int)len, len ? dir : ".", text) <
                (int)sizeof candidate && is_executable_file(candidate))
            return ASIDE_OK;
        dir += len + (dir[len] == ':');
    }
    return REFUSE(o, "no program %s on PATH", text);
}

/* An address to listen on: an IPv4 or IPv6 address, or a name. A value made of digits and dots
 * (or holding a colon) is an address and must parse as one; a name is resolved when the server
 * binds. */
static aside_status check_address(const option_row *o, const char *text, aside_error *err)
{
    unsigned char addr[sizeof(struct in6_addr)];
    bool numeric = text[strspn(text, "0123456789.")] == '\0' || strchr(text, ':');
    if (!*text)
        return REFUSE(o, "an address is needed");
    if (numeric && inet_pton(AF_INET, text, addr) != 1 && inet_pton(AF_INET6, text, addr) != 1)
        return REFUSE(o, "\"%s\" is not an IPv4 or IPv6 address", text);
    for (const char *p = text; !numeric && *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return REFUSE(o, "\"%s\" is not an address or a host name", text);
    }
    return ASIDE_OK;
}

/* A folder of the system of record: a relative key prefix, inside it. */
static aside_status check_key_prefix(const option_row *o, const char *text, aside_error *err)
{
    if (text[0] == '/')
        return REFUSE(o, "\"%s\" must be relative to the system of record, not absolute", text);
    for (const char *p = text; *p; p += strcspn(p, "/"), p += *p == '/') {
        size_t len = strcspn(p, "/");
        if ((len == 2 && strncmp(p, "..", 2) == 0) || (len == 1 && *p == '.'))
            return REFUSE(o, "\"%s\" must stay inside the system of record (no . or .. "
                          "parts)", text);
        if (len == 0 && p[0] == '/')
            return REFUSE(o, "\"%s\" has an empty part", text);
    }
    for (const char *p = text; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return REFUSE(o, "\"%s\" holds a control character or a backslash", text);
    }
    return ASIDE_OK;
}

/* A bearer token (RFC 6750's b64token): letters, digits and -._~+/ then any = signs. */
static aside_status check_token(const option_row *o, const char *text, aside_error *err)
{
    size_t n = strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                            "0123456789-._~+/");
    if (n == 0 || text[n + strspn(text + n, "=")] != '\0')
        return REFUSE(o, "a token is letters, digits and -._~+/ (then = signs), as a bearer "
                      "token must be");
    return ASIDE_OK;
}

/* A tokens file that parses (tokens.h); the server reads it again when it starts serving. */
static aside_status check_tokens_file(const option_row *o, const char *text, aside_error *err)
{
    aside_error inner;
    tokens_set *s = tokens_set_load(text, &inner);
    if (!s)
        return REFUSE(o, "%s", inner.message);
    tokens_set_release(s);
    return ASIDE_OK;
}

enum { TOKEN_FILE_MAX_BYTES = 4096 }; /* far more than any bearer token */

/* The token read from ASIDE_TOKEN_FILE: the configuration's strings are static or the
 * environment's, and the file is read once, at start. */
static char token_from_file[TOKEN_FILE_MAX_BYTES + 1];

/* A readable file holding one token (a trailing newline, or CR LF, dropped), kept in
 * token_from_file. */
static aside_status check_token_file(const option_row *o, const char *text, aside_error *err)
{
    FILE *fp = fopen(text, "rb");
    if (!fp)
        return REFUSE(o, "cannot read %s: %s", text, strerror(errno));
    size_t n = fread(token_from_file, 1, sizeof token_from_file, fp);
    bool failed = ferror(fp);
    fclose(fp);
    if (failed)
        return REFUSE(o, "cannot read %s", text);
    if (n > TOKEN_FILE_MAX_BYTES)
        return REFUSE(o, "%s is larger than %d bytes: not a token", text, TOKEN_FILE_MAX_BYTES);
    if (n && token_from_file[n - 1] == '\n')
        n--;
    if (n && token_from_file[n - 1] == '\r')
        n--;
    token_from_file[n] = '\0';
    if (n == 0)
        return REFUSE(o, "%s is empty: it must hold the token", text);
    if (strlen(token_from_file) != n || check_token(o, token_from_file, err) != ASIDE_OK)
        return REFUSE(o, "%s must hold one token: letters, digits and -._~+/ (then = signs), "
                      "as a bearer token must be", text);
    return ASIDE_OK;
}

/* S3's rules for bucket names: 3 to 63 lowercase letters, digits, dots and hyphens, beginning
 * and ending with a letter or digit. */
static aside_status check_bucket(const option_row *o, const char *text, aside_error *err)
{
    size_t len = strlen(text);
    bool ok = len >= 3 && len <= 63 && strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789.-") ==
                                           len;
    ok = ok && isalnum((unsigned char)text[0]) && isalnum((unsigned char)text[len - 1]);
    if (!ok)
        return REFUSE(o, "\"%s\" is not a bucket name (3 to 63 lowercase letters, digits, dots "
                      "and hyphens, beginning and ending with a letter or digit)", text);
    return ASIDE_OK;
}

/* A region: lowercase letters, digits and hyphens (us-east-1, and the names S3-compatible
 * stores use, such as auto). */
static aside_status check_region(const option_row *o, const char *text, aside_error *err)
{
    size_t len = strlen(text);
    if (len == 0 || len > 64 || strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789-") != len)
        return REFUSE(o, "\"%s\" is not a region (lowercase letters, digits and hyphens)", text);
    return ASIDE_OK;
}

/* An endpoint: http:// or https:// and a host. */
static aside_status check_url(const option_row *o, const char *text, aside_error *err)
{
    const char *host = strncmp(text, "http://", 7) == 0    ? text + 7
                       : strncmp(text, "https://", 8) == 0 ? text + 8
                                                           : NULL;
    if (!host || !*host || *host == '/' || strpbrk(text, " \t\r\n"))
        return REFUSE(o, "\"%s\" is not an http:// or https:// URL", text);
    return ASIDE_OK;
}

enum { MIN_PART_BYTES = 1024 }; /* smaller parts would be a request per few bytes */

static aside_status check_part_size(const option_row *o, const char *text, aside_error *err)
{
    uint64_t bytes = 0;
    aside_error inner;
    if (aside_parse_size(text, 0, &bytes, &inner) == ASIDE_OK && bytes < MIN_PART_BYTES)
        return REFUSE(o, "a part is at least 1KiB");
    return ASIDE_OK;
}

/* Parse one option's text into its field of cfg. */
static aside_status apply(server_config *cfg, const option_row *o, const char *text,
                          aside_error *err)
{
    void *field = (char *)cfg + o->offset;
    long number = 0;
    aside_status st = ASIDE_OK;
    switch (o->kind) {
    case OPT_POLICY:
        if ((st = parse_policy(o, text, err)) != ASIDE_OK)
            return st;
        /* fall through */
    case OPT_TEXT:
        *(const char **)field = text;
        return ASIDE_OK;
    case OPT_BYTES:
        return parse_bytes(o, text, 0, field, err);
    case OPT_BYTES_RAM:
        return parse_bytes(o, text, system_memory_bytes(), field, err);
    case OPT_BYTES_DISK:
        return parse_bytes(o, text, free_disk_bytes(cfg->cache.data_dir), field, err);
    case OPT_INT:
        if ((st = parse_number(o, text, &number, err)) == ASIDE_OK)
            *(int *)field = (int)number;
        return st;
    case OPT_UINT:
        if ((st = parse_number(o, text, &number, err)) == ASIDE_OK)
            *(unsigned *)field = (unsigned)number;
        return st;
    case OPT_BOOL:
        return parse_bool(o, text, field, err);
    case OPT_FSYNC:
        return parse_fsync(o, text, field, err);
    case OPT_SECONDS_MS:
        if ((st = parse_number(o, text, &number, err)) == ASIDE_OK)
            *(uint64_t *)field = (uint64_t)number * 1000;
        return st;
    }
    return ASIDE_OK;
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
        if (strcmp(arg, "--list-functions") == 0) {
            cfg->list_functions = true;
            continue;
        }
        if (strcmp(arg, "--hash-token") == 0) {
            cfg->hash_token = true;
            continue;
        }
        if (strcmp(arg, "--check-config") == 0) {
            cfg->check_config = true;
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
        if (o->kind == OPT_BOOL && !eq && (!value || strncmp(value, "--", 2) == 0)) {
            i -= value != NULL; /* a switch alone: --allow-unauthenticated */
            value = "true";
        }
        if (!value)
            return error_set(err, ASIDE_ERR_INVALID, "option --%s needs a value", flag);
        texts[o - options] = value;
    }
    return ASIDE_OK;
}

/* ---- settings that mean something together ------------------------------------------------ */

/* True if bind names the loopback interface only: 127.0.0.0/8, ::1, ::ffff:127.x.y.z or
 * "localhost". Any other name counts as reachable from outside: it is not resolved here. */
static bool is_loopback(const char *bind)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, bind, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, bind, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6) ||
               (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
    return strcasecmp(bind, "localhost") == 0;
}

/* One token setting or the other, and no open door: a bind address others can reach needs a
 * token, unless the operator says otherwise (main then logs a warning). */
static aside_status check_together(server_config *cfg, aside_error *err)
{
    bool token = cfg->api.token && *cfg->api.token;
    bool file = cfg->api.tokens_file && *cfg->api.tokens_file;
    if (token && file)
        return error_set(err, ASIDE_ERR_INVALID, "ASIDE_TOKEN (--token) and ASIDE_TOKENS_FILE "
                         "(--tokens-file) are both set: give the token a line of the file "
                         "(scopes read,write,admin for the same rights) and unset ASIDE_TOKEN");
    if (!token && !file && !cfg->allow_unauthenticated && !is_loopback(cfg->http.bind))
        return error_set(err, ASIDE_ERR_INVALID, "ASIDE_BIND (--bind) %s is not a loopback "
                         "address and no token is set (ASIDE_TOKEN or ASIDE_TOKENS_FILE): "
                         "whoever reaches the port could read, change and run everything. Set "
                         "a token, or ASIDE_ALLOW_UNAUTHENTICATED=true (--allow-unauthenticated) "
                         "to serve without one", cfg->http.bind);
    cfg->open_door = !token && !file && !is_loopback(cfg->http.bind);
    return ASIDE_OK;
}

aside_status server_config_parse(server_config *cfg, int argc, char **argv, aside_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    aside_config_init(&cfg->cache);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->http.threads = cores > 0 ? (int)cores : 1;
    cfg->api.functions.workers = cores > 0 ? (unsigned)cores : 1;
    const char *texts[OPTION_COUNT];
    aside_status st = collect(texts, argc, argv, cfg, err);
    /* data_dir first: the disk limit's percentage refers to its file system */
    if (st == ASIDE_OK)
        st = apply(cfg, find_option("local-data-dir"), texts[0], err);
    for (size_t i = 1; st == ASIDE_OK && i < OPTION_COUNT; i++) {
        if (texts[i])
            st = apply(cfg, &options[i], texts[i], err);
    }
    for (size_t i = 0; st == ASIDE_OK && i < sizeof value_checks / sizeof value_checks[0]; i++) {
        const option_row *o = find_option(value_checks[i].flag);
        const char *text = texts[o - options];
        if (text && text != o->fallback)
            st = value_checks[i].check(o, text, err);
    }
    if (st == ASIDE_OK && cfg->token_file) {
        if (cfg->api.token)
            st = error_set(err, ASIDE_ERR_INVALID, "--token-file (ASIDE_TOKEN_FILE): ASIDE_TOKEN "
                           "is set too; set one of them");
        else
            cfg->api.token = token_from_file;
    }
    cfg->api.fsync = (aside_fsync)cfg->cache.fsync;
    cfg->api.json_max_depth = cfg->cache.json_max_depth;
    bool serves = !cfg->help && !cfg->version && !cfg->list_functions && !cfg->hash_token;
    return st == ASIDE_OK && serves ? check_together(cfg, err) : st;
}
