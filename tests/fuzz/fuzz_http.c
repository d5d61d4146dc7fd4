/* fuzz_http.c -- the HTTP request parser and the router: what a client sends on a connection.
 *
 * The input is every byte one client sent on one connection before closing its side: request
 * lines, headers, bodies (chunked or not), pipelined requests, garbage. It goes through the
 * worker's own code (http_serve_bytes, http.h) into the router (routes_handle) of a server
 * whose cache lives in a temporary folder: small memory and disk budgets, a journal compacted
 * early, a system of record holding a few files. The cache keeps its state from one input to
 * the next, as a server does between clients.
 *
 * The functions that run DuckDB queries (sql, select, describe, map) or users' Python
 * functions are answered 403 here without running: an input could otherwise make the fuzzer
 * wait on a query or a process, which is not what this harness looks for. Everything else runs
 * as the server runs it. */
#include "fuzz.h"
#include "server/call.h"
#include "server/config.h"
#include "server/function_pool.h"
#include "server/routes.h"
#include "server/server.h"

static server         srv;
static server_config  cfg;

static const char *const not_run[] = {"sql",       "select",          "describe",
                                      "map",       "function_create", "function_register",
                                      "function_delete", "functions", "function_stats", NULL};

static bool is_not_run(const char *name)
{
    for (size_t i = 0; not_run[i]; i++) {
        if (strcmp(name, not_run[i]) == 0)
            return true;
    }
    return false;
}

static void handle(void *ctx, const http_request *req, http_response *res)
{
    call c;
    call_init(&c, ctx, req, res);
    bool prepared = call_prepare(&c);
    bool skip = prepared && is_not_run(call_function_name(&c));
    if (skip)
        call_error(&c, 403, "not_fuzzed", "this function is not run by the fuzzer");
    call_finish(&c);
    if (prepared && !skip)
        routes_handle(ctx, req, res);
}

static void write_seed(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0)
        fuzz_die(path);
}

static void close_server(void)
{
    function_pool_destroy(srv.functions);
    aside_cache_close(srv.cache);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static char sor[PATH_MAX], data[PATH_MAX], functions[PATH_MAX];
    fuzz_temp_root();
    fuzz_make_dir("sor", sor, sizeof sor);
    fuzz_make_dir("cache", data, sizeof data);
    fuzz_make_dir("functions", functions, sizeof functions);
    write_seed(sor, "a.json", "{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}");
    write_seed(sor, "b.txt", "bytes");
    write_seed(sor, "list.json", "[1, 2, 3]");
    char *args[] = {"aside-server",  "--remote-storage", sor,      "--local-data-dir", data,
                    "--local-function-dir", functions, "--memory-limit", "32MiB",
                    "--disk-limit", "64MiB",       "--journal-compact", "1MiB", "--fsync",
                    "never",        "--max-body",  "256KiB",   "--shm-dir",    "off",
                    "--python",     "/bin/false",  NULL};
    aside_error err;
    if (server_config_parse(&cfg, (int)(sizeof args / sizeof args[0]) - 1, args, &err) !=
        ASIDE_OK)
        fuzz_die(err.message);
    if (aside_cache_open(&cfg.cache, &srv.cache, &err) != ASIDE_OK)
        fuzz_die(err.message);
    cfg.api.functions.token = cfg.api.token;
    srv.functions = function_pool_create(&cfg.api.functions);
    if (!srv.functions)
        fuzz_die("function pool");
    srv.defaults = cfg.api;
    srv.is_own_function = routes_has;
    atexit(close_server);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_serve_bytes(&cfg.http, handle, &srv, data, size);
    return 0;
}
