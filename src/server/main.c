/* main.c -- aside-server: configure, open the cache, serve until SIGINT or SIGTERM.
 *
 * The lifecycle is nginx's: parse and check the whole configuration first (a bad setting stops
 * the start with a message naming it), then open the cache (re-indexing the disk tier), then
 * bind and serve. Signals are blocked in every thread and taken by the main thread with
 * sigwait, so shutdown runs in ordinary code: stop the HTTP workers, then close the cache.
 * SIGHUP reloads the data spec (ASIDE_SPEC, preload.c), which is checked before the cache opens
 * like every other setting. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "server.h"

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

static void raise_file_limit(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
}

static int serve(server_config *cfg, preload *spec)
{
    aside_error err;
    aside_cache *cache = NULL;
    if (aside_cache_open(&cfg->cache, &cache, &err) != ASIDE_OK) {
        log_line("error", "cannot open the cache: %s", err.message);
        preload_destroy(spec);
        return 1;
    }
    api *a = api_create(cache, &cfg->api);
    if (a)
        a->preload = spec;
    http_server *server = NULL;
    if (!a || http_server_start(&cfg->http, api_handle, a, &server, &err) != ASIDE_OK) {
        log_line("error", "cannot start: %s", a ? err.message : "out of memory");
        api_destroy(a);
        preload_destroy(spec);
        aside_cache_close(cache);
        return 1;
    }
    char url[512];
    snprintf(url, sizeof url, "http://%s:%d/cache/api/v1.0/",
             strcmp(cfg->http.bind, "0.0.0.0") == 0 ? "127.0.0.1" : cfg->http.bind,
             http_server_port(server));
    api_set_url(a, url);
    if (spec && preload_start(spec, cache, a, &err) != ASIDE_OK)
        log_line("error", "spec: cannot start preloading: %s", err.message);
    aside_stats stats;
    aside_stats_get(cache, &stats);
    const aside_s3_config *s3 = &cfg->cache.s3;
    char storage[1024];
    if (s3->bucket)
        snprintf(storage, sizeof storage, "s3://%s/%s (and sd: %s)", s3->bucket,
                 s3->prefix ? s3->prefix : "", cfg->cache.sor_dir);
    else
        snprintf(storage, sizeof storage, "%s", cfg->cache.sor_dir);
    log_line("info", "listening on http://%s:%d" "/cache/api/v1.0/ (%d threads; system of record "
             "%s; disk tier %s with %llu keys; memory limit %llu bytes, disk limit %llu bytes)",
             cfg->http.bind, http_server_port(server), cfg->http.threads, storage,
             cfg->cache.data_dir, (unsigned long long)stats.keys,
             (unsigned long long)stats.memory_limit_bytes,
             (unsigned long long)stats.disk_limit_bytes);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    int sig = 0;
    while (sigwait(&stop, &sig) == 0 && sig == SIGHUP)
        preload_on_sighup(spec);
    log_line("info", "stopping on signal %d", sig);
    http_server_stop(server);
    preload_destroy(spec);
    api_destroy(a);
    aside_cache_close(cache);
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
    preload *spec = NULL;
    if (cfg.spec_path && !(spec = preload_create(cfg.spec_path, &err))) {
        fprintf(stderr, "aside-server: bad spec: %s\n", err.message);
        return 2;
    }
    raise_file_limit();
    ensure_dir(cfg.cache.data_dir);
    if (!getenv("REMOTE_STORAGE") && strcmp(cfg.cache.sor_dir, "./data/sor") == 0)
        ensure_dir(cfg.cache.sor_dir); /* the default SOR of a fresh checkout */
    return serve(&cfg, spec);
}
