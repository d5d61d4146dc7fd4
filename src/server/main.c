/* main.c -- aside-server: configure, listen, open the cache, serve, drain on SIGTERM.
 *
 * The lifecycle is nginx's: parse and check the whole configuration first (a bad setting stops
 * the start with a message naming it; --check-config stops there), then bind and listen, so
 * that /health and /ready answer from the first moment, then open the cache (the disk tier
 * scanned, the journal replayed) on a thread of its own. Until it is open every other request
 * is answered 503 starting: the HTTP server's context is a gate (server.h) that holds no server
 * until main has built it whole. Then the function pool and the spec's run start, and the
 * server is ready: at once, or once the spec's preload is over (ready_after_preload), when it
 * tells the service manager READY=1 (notify.h).
 *
 * Signals are blocked in every thread and taken by the main thread with sigtimedwait, so
 * shutdown runs in ordinary code. SIGTERM (or SIGINT): /ready answers 503 at once and the
 * manager hears STOPPING=1; the server keeps serving for ASIDE_DRAIN_SECONDS (the time a load
 * balancer needs to notice), then stops accepting and waits up to ASIDE_SHUTDOWN_TIMEOUT for
 * the requests in flight, stops the HTTP workers, the spec's threads and the function pool,
 * and closes the cache, which syncs the journal: exit 0. A second SIGTERM or SIGINT exits at
 * once (status 1): nothing is torn, since a journal record is one write(2) and a disk-tier
 * commit a rename. SIGHUP reloads the data spec (ASIDE_SPEC, spec_run.h), which is checked
 * before the cache opens like every other setting, and the tokens file (ASIDE_TOKENS_FILE,
 * tokens.h). SIGUSR1 reopens the access log's file (access_log.h: logrotate renames it, then
 * signals). With any token, function workers call the API back with a token of their own
 * made at start (read, write), never the operator's. While waiting, the main thread also sends
 * the watchdog's WATCHDOG=1 when the manager asks for one.
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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access_log.h"
#include "config.h"
#include "function_pool.h"
#include "function_sandbox.h"
#include "http.h"
#include "notify.h"
#include "routes.h"
#include "server.h"
#include "spec_run.h"
#include "tokens.h"

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

/* ASIDE_MAX_CONNECTIONS unless given (given: the operator's): the open-file limit less what is
 * open and the reserve, but never less than a quarter of the limit. Logs the limit and the
 * cap. */
static void cap_connections(server_config *cfg, file_limit limit, bool given)
{
    uint64_t reserve = open_descriptors() + FILES_RESERVED +
                       FILES_PER_LOAD_THREAD * (uint64_t)cfg->http.blocking_threads +
                       FILES_PER_FUNCTION_WORKER * (uint64_t)cfg->api.functions.workers +
                       FILES_PER_EVENT_LOOP * (uint64_t)cfg->http.threads;
    uint64_t files = limit.now > INT_MAX ? INT_MAX : limit.now;
    uint64_t cap = files > reserve ? files - reserve : 0;
    if (cap < files / 4)
        cap = files / 4 ? files / 4 : 1;
    if (!given)
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

/* ---- sizes, the start-up line ----------------------------------------------------------- */

/* bytes as a person reads them: "512 bytes", "5.9 GiB". */
static const char *readable_bytes(uint64_t bytes, char *out, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(out, size, "%llu bytes", (unsigned long long)bytes);
        return out;
    }
    double v = (double)bytes / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    snprintf(out, size, "%.1f %s", v, units[u]);
    return out;
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
    char storage[1024], memory[32], disk[32];
    if (s3->bucket)
        snprintf(storage, sizeof storage, "s3://%s/%s (and sd: %s)", s3->bucket,
                 s3->prefix ? s3->prefix : "", cfg->cache.sor_dir);
    else
        snprintf(storage, sizeof storage, "%s", cfg->cache.sor_dir);
    log_line("info", "listening on http://%s:%d" CALL_API_URI " (%d threads; system of record "
             "%s; disk tier %s with %llu keys; memory limit %s, disk limit %s)",
             cfg->http.bind, port, cfg->http.threads, storage, cfg->cache.data_dir,
             (unsigned long long)stats.keys,
             readable_bytes(stats.memory_limit_bytes, memory, sizeof memory),
             readable_bytes(stats.disk_limit_bytes, disk, sizeof disk));
}

/* ---- the server's life -------------------------------------------------------------------- */

enum {
    STARTING_TICK_MS = 50, /* while not ready: how often the opening and the preload are looked at */
    DRAIN_TICK_MS = 20,    /* while requests finish: how often their count is looked at */
    IDLE_TICK_MS = 60000,  /* ready, without a watchdog: the signals are all there is to wait for */
    FORCED_EXIT_STATUS = 1 /* a second signal: out at once */
};

/* Everything main builds, and the thread that opens the cache. */
typedef struct life {
    server_config *cfg;
    file_limit     files;
    bool           cap_given; /* ASIDE_MAX_CONNECTIONS was set */
    server_gate    gate;
    server         s;
    http_server   *http;
    spec_run      *spec;
    char           worker_token[TOKENS_SECRET_TEXT_BYTES]; /* the function workers' own */
    pthread_t      opener;
    bool           opener_joined;
    atomic_bool    opened;     /* the opener is done (open_status says how) */
    aside_status   open_status;
    aside_error    open_err;
    uint64_t       watchdog_ms; /* 0: no watchdog */
    int64_t        watchdog_due_ms;
    char           api_socket[FUNCTION_SANDBOX_SOCKET_MAX]; /* for sandboxed functions, or "" */
    char           shm_dir[PATH_MAX];                       /* where frames are published */
} life;

static int64_t mono_ms(void) { return clock_mono_ns() / 1000000; }

static void *open_cache(void *arg)
{
    life *l = arg;
    l->open_status = aside_cache_open(&l->cfg->cache, &l->s.cache, &l->open_err);
    atomic_store(&l->opened, true);
    return NULL;
}

/* The next signal of set within timeout_ms (0: none came). */
static int next_signal(int64_t timeout_ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    if (timeout_ms < 0)
        timeout_ms = 0;
    struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000};
    int sig = sigtimedwait(&set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* A second SIGTERM or SIGINT: out now. Journal records are whole (one write each) and disk-tier
 * commits atomic (renames), so nothing is torn; what the kernel holds reaches the disk anyway. */
static _Noreturn void exit_now(int sig)
{
    log_line("warn", "signal %d during the shutdown: exiting at once", sig);
    _exit(FORCED_EXIT_STATUS);
}

static void watchdog(life *l)
{
    if (!l->watchdog_ms || mono_ms() < l->watchdog_due_ms)
        return;
    notify_send("WATCHDOG=1");
    l->watchdog_due_ms = mono_ms() + (int64_t)l->watchdog_ms;
}

/* How long the main thread may sleep before it has something to look at. */
static int64_t tick_ms(const life *l)
{
    int64_t tick = server_gate_phase(&l->gate) == SERVER_READY ? IDLE_TICK_MS
                                                                               : STARTING_TICK_MS;
    if (l->watchdog_ms) {
        int64_t left = l->watchdog_due_ms - mono_ms();
        tick = left < tick ? left : tick;
    }
    return tick;
}

static void become_ready(life *l)
{
    server_gate_set_phase(&l->gate, SERVER_READY);
    notify_send("READY=1");
    log_line("info", "ready");
}

/* The folder the cache publishes frames in, for the functions' sandbox: the configured one, or
 * the private one the library makes for this process (aside.h); NULL: none. */
static const char *frames_folder(const server_config *cfg, char *path, size_t size)
{
    const char *dir = cfg->cache.shm_dir;
    if (dir && strcmp(dir, "off") == 0)
        return NULL;
    if (dir && *dir)
        return dir;
    snprintf(path, size, "/dev/shm/aside-%ld", (long)getpid());
    return path;
}

/* With the functions' sandbox possible, a Unix socket for its API (sandboxed functions have
 * no network), in a private folder: into l->api_socket and both configurations. */
static void plan_api_socket(life *l)
{
    server_config *cfg = l->cfg;
    const char *mode = cfg->api.functions.sandbox;
    if (mode && strcmp(mode, "off") == 0)
        return;
    if (!function_sandbox_socket_path(l->api_socket, sizeof l->api_socket)) {
        log_line("warn", "functions: no private folder for the sandbox's socket: %s",
                 strerror(errno));
        l->api_socket[0] = '\0';
        return;
    }
    cfg->http.unix_path = l->api_socket;
    cfg->api.functions.api_socket = l->api_socket;
}

/* The cache is open: build the rest of the server and open the gate. False when it cannot. */
static bool finish_start(life *l)
{
    server_config *cfg = l->cfg;
    cfg->api.functions.token = l->s.tokens ? l->worker_token : NULL;
    cfg->api.functions.shm_dir = frames_folder(cfg, l->shm_dir, sizeof l->shm_dir);
    l->s.functions = function_pool_create(&cfg->api.functions);
    if (!l->s.functions) {
        log_line("error", "cannot start: out of memory");
        return false;
    }
    l->s.defaults = cfg->api;
    cap_connections(cfg, l->files, l->cap_given);
    http_server_set_max_connections(l->http, cfg->http.max_connections);
    char url[512];
    snprintf(url, sizeof url, "http://%s:%d" CALL_API_URI,
             strcmp(cfg->http.bind, "0.0.0.0") == 0 ? "127.0.0.1" : cfg->http.bind,
             http_server_port(l->http));
    function_pool_set_url(l->s.functions, url);
    aside_error err;
    if (function_pool_start_sandbox(l->s.functions, &err) != ASIDE_OK) {
        log_line("error", "cannot start: %s", err.message);
        return false;
    }
    server_gate_open(&l->gate, &l->s);
    if (l->spec && spec_run_start(l->spec, &l->s, &err) != ASIDE_OK)
        log_line("error", "spec: cannot start preloading: %s", err.message);
    log_listening(cfg, l->s.cache, http_server_port(l->http));
    if (l->spec && !spec_run_ready(l->spec))
        server_gate_set_phase(&l->gate, SERVER_PRELOADING);
    else
        become_ready(l);
    return true;
}

/* Look at what the start is waiting for. False when the start failed. */
static bool step_start(life *l)
{
    server_phase phase = server_gate_phase(&l->gate);
    if (phase == SERVER_OPENING && atomic_load(&l->opened) && !l->opener_joined) {
        pthread_join(l->opener, NULL);
        l->opener_joined = true;
        if (l->open_status != ASIDE_OK) {
            log_line("error", "cannot open the cache: %s", l->open_err.message);
            return false;
        }
        return finish_start(l);
    }
    if (phase == SERVER_PRELOADING && spec_run_ready(l->spec))
        become_ready(l);
    return true;
}

/* Serve until SIGINT or SIGTERM (the signal), or 0 when the start failed. SIGHUP reloads the
 * spec and the tokens file. */
static int run_until_signal(life *l)
{
    for (;;) {
        int sig = next_signal(tick_ms(l));
        if (sig == SIGUSR1) {
            access_log_reopen();
            sig = 0;
        }
        if (sig == SIGHUP)
            tokens_on_sighup(l->s.tokens);
        if (sig == SIGHUP && server_gate_server(&l->gate))
            spec_run_on_sighup(l->spec);
        else if (sig == SIGHUP)
            log_line("warn", "SIGHUP while the cache opens: the spec is read again once it is");
        else if (sig)
            return sig;
        if (!step_start(l))
            return 0;
        watchdog(l);
    }
}

/* Wait until deadline, serving; a second SIGTERM or SIGINT exits at once. done (may be NULL)
 * ends the wait early. */
static void wait_serving(life *l, int64_t deadline_ms, bool (*done)(life *l), int64_t tick)
{
    while (!(done && done(l))) {
        int64_t left = deadline_ms - mono_ms();
        if (left <= 0)
            return;
        int sig = next_signal(left < tick ? left : tick);
        if (sig == SIGTERM || sig == SIGINT)
            exit_now(sig);
        if (sig == SIGUSR1)
            access_log_reopen();
        watchdog(l);
    }
}

static bool cache_opened(life *l) { return atomic_load(&l->opened); }

static bool nothing_in_flight(life *l) { return http_server_connections(l->http) == 0; }

/* The drain, after the first SIGTERM or SIGINT. */
static void drain(life *l, int sig)
{
    server_config *cfg = l->cfg;
    server_gate_set_phase(&l->gate, SERVER_STOPPING);
    notify_send("STOPPING=1");
    if (!server_gate_server(&l->gate)) { /* nothing was served: no drain, the open ends first */
        log_line("info", "stopping on signal %d while the cache opens: waiting for it", sig);
        wait_serving(l, INT64_MAX, cache_opened, STARTING_TICK_MS);
        return;
    }
    log_line("info", "stopping on signal %d: not ready, serving for %d s more "
             "(ASIDE_DRAIN_SECONDS)", sig, cfg->drain_ms / 1000);
    wait_serving(l, mono_ms() + cfg->drain_ms, NULL, IDLE_TICK_MS);
    http_server_drain(l->http);
    log_line("info", "no longer accepting; waiting up to %d s for %d connections with requests "
             "in flight (ASIDE_SHUTDOWN_TIMEOUT)", cfg->shutdown_timeout_ms / 1000,
             http_server_connections(l->http));
    wait_serving(l, mono_ms() + cfg->shutdown_timeout_ms, nothing_in_flight, DRAIN_TICK_MS);
    int left = http_server_connections(l->http);
    if (left && http_server_handlers_running(l->http)) {
        log_line("error", "%d connections still in flight after ASIDE_SHUTDOWN_TIMEOUT, a "
                 "request still being handled: exiting without waiting for it", left);
        _exit(FORCED_EXIT_STATUS);
    }
    if (left)
        log_line("warn", "%d connections still open after ASIDE_SHUTDOWN_TIMEOUT: closing them",
                 left);
}

/* Stop and free everything, in the reverse order of the start. */
static void teardown(life *l)
{
    http_server_stop(l->http);
    access_log_stop();
    if (!l->opener_joined)
        pthread_join(l->opener, NULL);
    spec_run_destroy(l->spec);
    function_pool_destroy(l->s.functions);
    aside_cache_close(l->s.cache);
    tokens_destroy(l->s.tokens);
    function_sandbox_socket_remove(l->api_socket);
}

static int serve(server_config *cfg, spec_run *spec, file_limit files)
{
    static life l; /* one per process; its address is the HTTP server's context */
    l.cfg = cfg;
    l.files = files;
    l.cap_given = cfg->http.max_connections != 0;
    l.spec = spec;
    l.s = (server){.spec = spec, .is_own_function = routes_has};
    server_gate_set_phase(&l.gate, SERVER_OPENING);
    aside_error err;
    bool tokens_failed = false;
    l.s.tokens = open_tokens(cfg, l.worker_token, &tokens_failed);
    if (tokens_failed) {
        spec_run_destroy(spec);
        return 1;
    }
    if (access_log_start(&cfg->access_log, &err) != ASIDE_OK) {
        log_line("error", "cannot start: %s", err.message);
        spec_run_destroy(spec);
        tokens_destroy(l.s.tokens);
        return 1;
    }
    plan_api_socket(&l);
    if (http_server_start(&cfg->http, routes_serve, &l.gate, &l.http, &err) != ASIDE_OK) {
        log_line("error", "cannot start: %s", err.message);
        access_log_stop();
        function_sandbox_socket_remove(l.api_socket);
        spec_run_destroy(spec);
        tokens_destroy(l.s.tokens);
        return 1;
    }
    log_line("info", "port %d open: /health and /ready answer; the API answers 503 starting "
             "until the cache is open", http_server_port(l.http));
    l.watchdog_ms = notify_watchdog_interval_ms();
    l.watchdog_due_ms = mono_ms();
    if (pthread_create(&l.opener, NULL, open_cache, &l) != 0) {
        log_line("error", "cannot start: no thread to open the cache");
        http_server_stop(l.http);
        access_log_stop();
        function_sandbox_socket_remove(l.api_socket);
        spec_run_destroy(spec);
        tokens_destroy(l.s.tokens);
        return 1;
    }
    int sig = run_until_signal(&l);
    if (sig)
        drain(&l, sig);
    teardown(&l);
    log_line("info", sig ? "stopped" : "start failed: stopped");
    return sig ? 0 : 1;
}

/* --check-config: the folders the cache opens must be there (the disk tier's is made, as at
 * start); every other setting was checked as it was parsed. 0 when all is well, else 2. */
static int check_folders(const server_config *cfg)
{
    static const struct {
        const char *env;
        int         mode;
    } folders[] = {{"LOCAL_DATA_DIR", R_OK | W_OK | X_OK}, {"REMOTE_STORAGE", R_OK | X_OK}};
    const char *paths[] = {cfg->cache.data_dir, cfg->cache.sor_dir};
    for (size_t i = 0; i < 2; i++) {
        struct stat sb;
        errno = 0;
        if (stat(paths[i], &sb) != 0 || !S_ISDIR(sb.st_mode) || access(paths[i], folders[i].mode)) {
            fprintf(stderr, "aside-server: %s: %s is not a folder the server can use: %s\n",
                    folders[i].env, paths[i], errno ? strerror(errno) : "not a folder");
            return 2;
        }
    }
    printf("aside-server: the configuration is good\n");
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
    sigaddset(&stop, SIGUSR1);
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
    if (cfg.check_config) {
        spec_run_destroy(spec);
        return check_folders(&cfg);
    }
    return serve(&cfg, spec, files);
}
