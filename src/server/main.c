/* main.c -- aside-server: configure, open the cache, serve until SIGINT or SIGTERM.
 *
 * The lifecycle is nginx's: parse and check the whole configuration first (a bad setting stops
 * the start with a message naming it), then open the cache (re-indexing the disk tier), then
 * bind and serve. Signals are blocked in every thread and taken by the main thread with
 * sigwait, so shutdown runs in ordinary code: stop the HTTP workers, then close the cache.
 * SIGHUP reloads the data spec (ASIDE_SPEC, spec_run.h), which is checked before the cache opens
 * like every other setting, and the tokens file (ASIDE_TOKENS_FILE, tokens.h). With any token,
 * function workers call the API back with a token of their own made at start (read, write),
 * never the operator's.
 *
 * File descriptors, as nginx and Redis budget them: the soft RLIMIT_NOFILE is raised to the hard
 * one at start, and connections are capped below it (ASIDE_MAX_CONNECTIONS; by default the limit
 * less what is open once the cache is, less a reserve for the files requests open: the disk
 * tier's and the SOR's, the journal's, function workers' sockets, DuckDB's), so clients alone
 * cannot take the descriptors a read or a write needs.
 *
 * main owns what the API's handlers share (server.h): it opens the cache, creates the function
 * pool and the spec's run, puts them in one server struct that the router hands to every call,
 * and, once the HTTP server stopped, frees them in the reverse order. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "config.h"
#include "function_pool.h"
#include "http.h"
#include "routes.h"
#include "server.h"
#include "spec_run.h"
#include "tokens.h"

#define ASIDE_VERSION "0.1.0"

/* Create dir and its parents if missing: the defaults must work on a fresh checkout. */
static void ensure_dir(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/", dir);
    for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
}

/* The open-file limit: the soft one as found at start, and as raised to the hard one. */
typedef struct file_limit {
    uint64_t found, now;
} file_limit;

static file_limit raise_file_limit(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return (file_limit){INT_MAX, INT_MAX};
    file_limit out = {lim.rlim_cur, lim.rlim_cur};
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) == 0)
            out.now = lim.rlim_max;
    }
    return out;
}

/* Descriptors open now (the folder listing's own not counted). */
static uint64_t open_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n ? n - 1 : 0;
}

/* Descriptors kept for files beside those open at start: a few for the server's own use, and
 * what each thread that opens files may hold at once (a load thread: a value's temporary
 * file, its SOR file, a sidecar, a folder to sync; a function worker: its socket and a shared-
 * memory frame; an event loop: its epoll set, listening socket and two eventfds). */
enum {
    FILES_RESERVED = 32,
    FILES_PER_LOAD_THREAD = 4,
    FILES_PER_FUNCTION_WORKER = 2,
    FILES_PER_EVENT_LOOP = 4
};

/* ASIDE_MAX_CONNECTIONS unless given: the open-file limit less what is open and the reserve,
 * but never less than a quarter of the limit. Logs the limit and the cap. */
static void cap_connections(server_config *cfg, file_limit limit)
{
    uint64_t reserve = open_descriptors() + FILES_RESERVED +
                       FILES_PER_LOAD_THREAD * (uint64_t)cfg->http.blocking_threads +
                       FILES_PER_FUNCTION_WORKER * (uint64_t)cfg->api.functions.workers +
                       FILES_PER_EVENT_LOOP * (uint64_t)cfg->http.threads;
    uint64_t files = limit.now > INT_MAX ? INT_MAX : limit.now;
    uint64_t cap = files > reserve ? files - reserve : 0;
    if (cap < files / 4)
        cap = files / 4 ? files / 4 : 1;
    if (cfg->http.max_connections == 0)
        cfg->http.max_connections = (int)cap;
    else if ((uint64_t)cfg->http.max_connections > cap)
        log_line("warn", "ASIDE_MAX_CONNECTIONS %d is more than the %llu connections the "
                 "open-file limit leaves beside a reserve for files: at the limit, reads and "
                 "writes get 503", cfg->http.max_connections, (unsigned long long)cap);
    char raised[64] = "";
    if (limit.now != limit.found)
        snprintf(raised, sizeof raised, " (raised from %llu)", (unsigned long long)limit.found);
    log_line("info", "file descriptors: limit %llu%s; connections at most %d "
             "(ASIDE_MAX_CONNECTIONS), the rest kept for files",
             (unsigned long long)limit.now, raised, cfg->http.max_connections);
}

/* The function pool, with the token the workers need to call back (NULL: none asked). */
static function_pool *create_function_pool(server_config *cfg, const char *worker_token)
{
    cfg->api.functions.token = worker_token;
    return function_pool_create(&cfg->api.functions);
}

/* The tokens in force: ASIDE_TOKEN with every scope, or ASIDE_TOKENS_FILE's, and the workers'
 * own (its secret into worker_token); NULL without any, or on error (*failed). */
static tokens *open_tokens(const server_config *cfg, char *worker_token, bool *failed)
{
    const char *token = cfg->api.token && *cfg->api.token ? cfg->api.token : NULL;
    const char *file = cfg->api.tokens_file && *cfg->api.tokens_file ? cfg->api.tokens_file
                                                                      : NULL;
    if (cfg->open_door)
        log_line("warn", "serving %s without any token (ASIDE_ALLOW_UNAUTHENTICATED): whoever "
                 "reaches the port can read, change and run everything", cfg->http.bind);
    if (!token && !file)
        return NULL;
    aside_error err;
    tokens *t = tokens_create(file, &err);
    bool ok = t && (!token || tokens_add_fixed(t, "ASIDE_TOKEN", token, TOKENS_EVERY_SCOPE,
                                               &err) == ASIDE_OK);
    ok = ok && tokens_add_random(t, "(functions)", TOKENS_READ | TOKENS_WRITE, worker_token,
                                 &err) == ASIDE_OK;
    if (!ok) {
        log_line("error", "ASIDE_TOKENS_FILE: %s", err.message);
        tokens_destroy(t);
        *failed = true;
        return NULL;
    }
    return t;
}

static void log_listening(const server_config *cfg, aside_cache *cache, int port)
{
    aside_stats stats;
    aside_stats_get(cache, &stats);
    const aside_s3_config *s3 = &cfg->cache.s3;
    char storage[1024];
    if (s3->bucket)
        snprintf(storage, sizeof storage, "s3://%s/%s (and sd: %s)", s3->bucket,
                 s3->prefix ? s3->prefix : "", cfg->cache.sor_dir);
    else
        snprintf(storage, sizeof storage, "%s", cfg->cache.sor_dir);
    log_line("info", "listening on http://%s:%d" CALL_API_URI " (%d threads; system of record "
             "%s; disk tier %s with %llu keys; memory limit %llu bytes, disk limit %llu bytes)",
             cfg->http.bind, port, cfg->http.threads, storage, cfg->cache.data_dir,
             (unsigned long long)stats.keys, (unsigned long long)stats.memory_limit_bytes,
             (unsigned long long)stats.disk_limit_bytes);
}

/* Serve until SIGINT or SIGTERM; SIGHUP reloads the spec and the tokens file. */
static int wait_for_signals(spec_run *spec, tokens *tokens)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    int sig = 0;
    while (sigwait(&stop, &sig) == 0 && sig == SIGHUP) {
        spec_run_on_sighup(spec);
        tokens_on_sighup(tokens);
    }
    return sig;
}

static int serve(server_config *cfg, spec_run *spec, file_limit files)
{
    aside_error err;
    server s = {.spec = spec, .is_own_function = routes_has};
    char worker_token[TOKENS_SECRET_TEXT_BYTES];
    bool tokens_failed = false;
    s.tokens = open_tokens(cfg, worker_token, &tokens_failed);
    if (tokens_failed || aside_cache_open(&cfg->cache, &s.cache, &err) != ASIDE_OK) {
        if (!tokens_failed)
            log_line("error", "cannot open the cache: %s", err.message);
        tokens_destroy(s.tokens);
        spec_run_destroy(spec);
        return 1;
    }
    s.functions = create_function_pool(cfg, s.tokens ? worker_token : NULL);
    s.defaults = cfg->api;
    cap_connections(cfg, files);
    http_server *http = NULL;
    if (!s.functions ||
        http_server_start(&cfg->http, routes_handle, &s, &http, &err) != ASIDE_OK) {
        log_line("error", "cannot start: %s", s.functions ? err.message : "out of memory");
        function_pool_destroy(s.functions);
        spec_run_destroy(spec);
        aside_cache_close(s.cache);
        tokens_destroy(s.tokens);
        return 1;
    }
    char url[512];
    snprintf(url, sizeof url, "http://%s:%d" CALL_API_URI,
             strcmp(cfg->http.bind, "0.0.0.0") == 0 ? "127.0.0.1" : cfg->http.bind,
             http_server_port(http));
    function_pool_set_url(s.functions, url);
    if (spec && spec_run_start(spec, &s, &err) != ASIDE_OK)
        log_line("error", "spec: cannot start preloading: %s", err.message);
    log_listening(cfg, s.cache, http_server_port(http));
    int sig = wait_for_signals(spec, s.tokens);
    log_line("info", "stopping on signal %d", sig);
    http_server_stop(http);
    spec_run_destroy(spec);
    function_pool_destroy(s.functions);
    aside_cache_close(s.cache);
    tokens_destroy(s.tokens);
    return 0;
}

/* --list-functions: README's function tables, from the route table. */
static int list_functions(void)
{
    buf b = {0};
    routes_markdown(&b);
    if (b.failed || fwrite(b.data, 1, b.len, stdout) != b.len) {
        buf_free(&b);
        return 1;
    }
    buf_free(&b);
    return 0;
}

int main(int argc, char **argv)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* inherited by every thread started later */
    server_config cfg;
    aside_error err;
    if (server_config_parse(&cfg, argc, argv, &err) != ASIDE_OK) {
        fprintf(stderr, "aside-server: %s\n", err.message);
        return 2;
    }
    if (cfg.help) {
        server_config_print_help(argv[0]);
        return 0;
    }
    if (cfg.version) {
        printf("aside-server %s\n", ASIDE_VERSION);
        return 0;
    }
    if (cfg.list_functions)
        return list_functions();
    if (cfg.hash_token)
        return tokens_print_hash(stdin, stdout);
    spec_run *spec = NULL;
    if (cfg.spec_path && !(spec = spec_run_create(cfg.spec_path, &err))) {
        fprintf(stderr, "aside-server: bad spec: %s\n", err.message);
        return 2;
    }
    file_limit files = raise_file_limit();
    ensure_dir(cfg.cache.data_dir);
    if (!getenv("REMOTE_STORAGE") && strcmp(cfg.cache.sor_dir, "./data/sor") == 0)
        ensure_dir(cfg.cache.sor_dir); /* the default SOR of a fresh checkout */
    return serve(&cfg, spec, files);
}
