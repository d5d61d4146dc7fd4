/* routes.c -- the router: the API's functions, one row each, and dispatch.
 *
 * A call is prepared first (call.c: route, token, verb, parameters, path); then the function it
 * names is looked up in the table below, by name or alias. One name has two rows: "head" is the
 * cache's telemetry (and the HEAD verb's), and pandas' first rows of a frame. The head rule
 * picks the frame's when the verb is not HEAD, a path is given, and either n= is given, type=
 * is frame, the key's name says frame, or the cached entry is a frame.
 *
 * A row says the scope its caller's token needs (read, write, admin; call_permitted answers 403
 * forbidden without it): sql needs admin too when into= stores its result, and the rows that
 * reach keys beyond the one they name are marked, since a token limited to key prefixes may not
 * call them. A user's function needs read and reaches every key (it runs with the functions'
 * own token). The check runs once the row is known, before its path is required.
 *
 * A row says how its function may run on an event-loop thread. Those that run anywhere or try
 * memory run at once (a read that misses memory sets defer itself); those that may block are
 * deferred to the blocking pool (http.h), where the same call is routed again and runs. A name
 * no row has is a user's function if the function folder holds NAME.py (always deferred),
 * else 404 unknown_function listing every row.
 *
 * The rows are in the order README lists them; --list-functions prints README's tables from
 * them, and a test compares the two.
 *
 * Before all that, routes_serve, the HTTP server's handler, answers the few paths outside the
 * API (outside_routes below, by exact path: /health and /ready without the token, /metrics
 * with its own check) from the gate (server.h), and every other request 503 starting until
 * the gate holds a server whose cache is open; then it is routes_handle's. Once a request is
 * answered (not deferred), routes_serve counts it for the metrics in one call: its label (a
 * row's name, never a user's function's name nor an unknown one: metrics.h), its status and
 * its duration since it arrived. */
#include <stdlib.h>
#include <string.h>

#include "cache_api.h"
#include "collections.h"
#include "frames.h"
#include "functions.h"
#include "health.h"
#include "metrics.h"
#include "routes.h"
#include "spec_api.h"
#include "telemetry.h"
#include "value/value.h"

static const route routes[] = {
    {"read", {"data_read", "cache_read", NULL}, cache_api_read, ROUTE_TRIES_MEMORY, true, ROUTE_DOC_CACHE, false,
     ROUTE_READ,
     "memory hit → serve; else disk tier → load → serve; else fetch from the SOR → "
     "disk tier → memory → serve. Meta: `{\"result\": \"success\", \"source\": "
     "\"memory\\|disk\\|sor\", \"type\": \"json\\|bytes\", \"bytes\": N}`"},
    {"create", {"cache_create", NULL}, cache_api_read, ROUTE_TRIES_MEMORY, true, ROUTE_DOC_CACHE, false,
     ROUTE_READ, NULL},
    {"update", {NULL}, cache_api_update, ROUTE_MAY_BLOCK, true, ROUTE_DOC_CACHE, false,
     ROUTE_WRITE,
     "revalidate with the SOR (a conditional request on the stored version tag: S3's "
     "ETag, a file's mtime and size): unchanged → the copy is kept and meta says "
     "`\"revalidated\": true`; changed → the new content replaces it; gone from the "
     "SOR → the key leaves the cache (404); the SOR fails → the old copy stays"},
    {"write", {NULL}, cache_api_write, ROUTE_MAY_BLOCK, true, ROUTE_DOC_CACHE, false,
     ROUTE_WRITE,
     "the request body (raw bytes, POST or PUT) becomes the object `path` in the SOR "
     "(S3: multipart above a threshold), then the cached value. Invalid JSON for a "
     "`.json` key → 422 and nothing is written; a failed write changes neither the "
     "SOR nor the cache. Value: `{\"result\": \"success\", \"bytes\": N, \"etag\": "
     "\"...\"}`"},
    {"list", {NULL}, cache_api_list, ROUTE_MAY_BLOCK, false, ROUTE_DOC_CACHE, false,
     ROUTE_READ,
     "the SOR's objects under `prefix` (optional), sorted: `[{\"path\", \"bytes\", "
     "\"last_modified\"}]`"},
    {"delete", {"cache_delete", NULL}, cache_api_delete, ROUTE_RUNS_ANYWHERE, true, ROUTE_DOC_CACHE, false,
     ROUTE_WRITE,
     "remove from memory and disk tier, never from the SOR; a key not cached → 404"},
    {"head", {"cache_head", NULL}, telemetry_head, ROUTE_RUNS_ANYWHERE, false, ROUTE_DOC_CACHE, false,
     ROUTE_READ,
     "telemetry: every key with type, bytes, tier, hits, last access; memory and disk "
     "used/limit; hits, misses, evictions, SOR fetches; uptime. With `path`: that key "
     "only. The HTTP verb HEAD gives the same figures as `X-Aside-*` headers"},
    {"stats_cache", {NULL}, telemetry_stats_cache, ROUTE_RUNS_ANYWHERE, false, ROUTE_DOC_CACHE, false,
     ROUTE_READ | ROUTE_EVERY_KEY,
     "the list of cached keys"},
    {"put", {NULL}, cache_api_put, ROUTE_MAY_BLOCK, true, ROUTE_DOC_CACHE, false,
     ROUTE_WRITE,
     "the request body (raw bytes, POST or PUT) becomes the cached value of `path` "
     "**without touching the SOR**: validated by type like `write` (JSON parsed, a "
     "frame decoded), kept in memory and the disk tier until evicted or deleted. "
     "Value: `{\"result\": \"success\", \"bytes\": N, \"type\": \"...\"}`"},
    {"map", {NULL}, frames_map, ROUTE_MAY_BLOCK, true, ROUTE_DOC_CACHE, false,
     ROUTE_READ,
     "a frame published for processes on the same host: an immutable Arrow IPC file "
     "in the shared-memory folder, named by key and generation. Value: `{\"result\": "
     "\"success\", \"path\", \"format\": \"arrow-file\", \"generation\", \"bytes\", "
     "\"rows\", \"columns\": [{\"name\", \"dtype\"}]}`. Map it with "
     "`pyarrow.memory_map(path)` and `pyarrow.ipc.open_file`: no copy of the data. "
     "The file counts in the memory budget and is unlinked when the frame leaves "
     "memory, changes or is deleted; a process that mapped it keeps a valid mapping"},
    {"info", {"cache_item_stats", "stats_cache_item", NULL}, frames_info, ROUTE_TRIES_MEMORY, true, ROUTE_DOC_FRAMES, false,
     ROUTE_READ,
     "pandas' `df.info()`: per column position, name, non-null count, dtype; dtype "
     "counts; memory usage in bytes and as pandas prints it; the text"},
    {"describe", {NULL}, frames_describe, ROUTE_MAY_BLOCK, true, ROUTE_DOC_FRAMES, false,
     ROUTE_READ,
     "pandas' `df.describe()`: numeric and datetime columns (count, mean, std, min, "
     "25%, 50%, 75%, max, linear interpolation); `include=all` adds count, unique, "
     "top, freq for the others. Default orient `columns`"},
    {"head", {NULL}, frames_head, ROUTE_TRIES_MEMORY, true, ROUTE_DOC_FRAMES, true,
     ROUTE_READ,
     "the first / last `n` rows (default 5; a negative `n` counts as pandas does). "
     "`function=head` without a frame key stays the telemetry call"},
    {"tail", {NULL}, frames_tail, ROUTE_TRIES_MEMORY, true, ROUTE_DOC_FRAMES, false,
     ROUTE_READ, NULL},
    {"shape", {NULL}, frames_shape, ROUTE_TRIES_MEMORY, true, ROUTE_DOC_FRAMES, false,
     ROUTE_READ,
     "as pandas names them"},
    {"columns", {NULL}, frames_columns, ROUTE_TRIES_MEMORY, true, ROUTE_DOC_FRAMES, false,
     ROUTE_READ, NULL},
    {"dtypes", {NULL}, frames_dtypes, ROUTE_TRIES_MEMORY, true, ROUTE_DOC_FRAMES, false,
     ROUTE_READ, NULL},
    {"select", {NULL}, frames_select, ROUTE_MAY_BLOCK, true, ROUTE_DOC_FRAMES, false,
     ROUTE_READ | ROUTE_EVERY_KEY,
     "`columns=a,b`, `where=` (an SQL condition over the frame), `order_by=`, "
     "`limit`, `offset`"},
    {"sql", {NULL}, frames_sql, ROUTE_MAY_BLOCK, false, ROUTE_DOC_FRAMES, false,
     ROUTE_READ | ROUTE_EVERY_KEY | ROUTE_ADMIN_INTO,
     "`query=`: one SQL `SELECT` in which every cached frame is a table named by its "
     "key, quoted: `SELECT g, avg(x) FROM \"sales.parquet\" GROUP BY g`. A frame the "
     "query names that is not cached is loaded first. `into=KEY` keeps the result as "
     "a new cached frame (parquet on disk for a `.parquet` key, else Arrow IPC), "
     "answering `{\"result\": \"success\", \"path\", \"rows\", \"columns\"}`"},
    {"list_push", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`value`, or `values` (an array, pushed in order); `end=back` (default) or "
     "`front` | the new length"},
    {"list_pop", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`end=back` (default) or `front`; `count` (optional) | the value (an empty list: "
     "404 `empty`), or with `count` an array of up to `count` values"},
    {"list_range", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ,
     "`start`, `stop`: Python slice semantics (negatives from the end, `stop` "
     "excluded) | an array"},
    {"list_length", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ,
     "| the length"},
    {"list_index", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ,
     "`index` (negatives from the end) | the value (404 `out_of_range`)"},
    {"list_trim", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`start`, `stop`: keeps `list[start:stop]` | the new length"},
    {"set_add", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`value` or `values` | how many were added / removed"},
    {"set_remove", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE, NULL},
    {"set_members", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ,
     "| the members, ordered by their JSON text"},
    {"set_contains", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ,
     "`value` | `true` or `false`"},
    {"set_size", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ,
     "| the number of members"},
    {"set_union", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ | ROUTE_EVERY_KEY,
     "`keys`; `key`, when given, is the first operand. Missing keys are empty sets | "
     "the members"},
    {"set_intersection", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ | ROUTE_EVERY_KEY, NULL},
    {"set_difference", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ | ROUTE_EVERY_KEY, NULL},
    {"map_set", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`field` and `value`, or `fields` (an object) | how many fields were new"},
    {"map_get", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ,
     "`field` | its value (404 `no_field`)"},
    {"map_delete", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`field`, or `fields` (an array) | how many were removed"},
    {"map_all", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ,
     "| the object; the number of fields"},
    {"map_length", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ, NULL},
    {"map_increment", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`field`, `by` (default 1; integer stays integer, else float) | the new value "
     "(409 for a field that is not a number)"},
    {"counter_increment", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`by` (default 1) | the new value (64-bit; overflow is 400)"},
    {"counter_decrement", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE, NULL},
    {"counter_get", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ,
     "| the value (0 when missing)"},
    {"json_get", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_READ,
     "`pointer` (RFC 6901; empty: the whole document) | the value there (404 "
     "`no_such_pointer`; a malformed pointer is 400 `bad_pointer`)"},
    {"json_set", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`pointer`, `value`; an array index equal to the length, or `-`, appends | "
     "success"},
    {"json_delete", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`pointer` | success"},
    {"json_merge", {NULL}, collections_operation, ROUTE_AS_OPERATION, false, ROUTE_DOC_COLLECTIONS, false,
     ROUTE_WRITE,
     "`patch` (RFC 7386 merge patch) | the new document"},
    {"expire", {NULL}, collections_expire, ROUTE_MAY_BLOCK, true, ROUTE_DOC_OPERATOR, false,
     ROUTE_WRITE,
     "`seconds=N`: the key leaves the cache (memory and disk, never the SOR) N "
     "seconds from now. Answer: `{\"result\": \"success\", \"expires\": \"...\"}`"},
    {"persist", {NULL}, collections_persist, ROUTE_MAY_BLOCK, true, ROUTE_DOC_OPERATOR, false,
     ROUTE_WRITE,
     "removes the key's time to live"},
    {"ttl", {NULL}, collections_ttl, ROUTE_RUNS_ANYWHERE, true, ROUTE_DOC_OPERATOR, false,
     ROUTE_READ,
     "seconds left, or `null` when the key does not expire"},
    {"pin", {NULL}, collections_pin, ROUTE_MAY_BLOCK, true, ROUTE_DOC_OPERATOR, false,
     ROUTE_WRITE,
     "loads the key if need be and keeps it in memory for good: never evicted until "
     "`unpin`. Pins count against the memory budget; one that cannot fit is **507 "
     "`full`**"},
    {"unpin", {NULL}, collections_unpin, ROUTE_MAY_BLOCK, true, ROUTE_DOC_OPERATOR, false,
     ROUTE_WRITE,
     "the key is evictable again"},
    {"load", {NULL}, cache_api_read, ROUTE_TRIES_MEMORY, true, ROUTE_DOC_OPERATOR, false,
     ROUTE_READ,
     "reads the key through (SOR → disk → memory) and answers its meta, like `read`: "
     "the operator's name for warming a key"},
    {"evict", {"free", NULL}, collections_evict, ROUTE_RUNS_ANYWHERE, true, ROUTE_DOC_OPERATOR, false,
     ROUTE_ADMIN,
     "drops the key from memory, keeps it on disk (409 for a collection, whose home "
     "is memory, and for a pinned key)"},
    {"compact", {NULL}, collections_compact, ROUTE_MAY_BLOCK, false, ROUTE_DOC_OPERATOR, false,
     ROUTE_ADMIN,
     "compacts the journal now: `{\"result\": \"success\", \"log_bytes\": N}`"},
    {"function_create", {NULL}, functions_create, ROUTE_MAY_BLOCK, false, ROUTE_DOC_FUNCTIONS, false,
     ROUTE_ADMIN,
     "`function_name` (an identifier) and `function_body` (the source, URL-encoded as "
     "the original sends it): compiled first, never run; a syntax error is 400 with "
     "Python's message and saves nothing; else the file is written atomically"},
    {"function_register", {NULL}, functions_register, ROUTE_MAY_BLOCK, false, ROUTE_DOC_FUNCTIONS, false,
     ROUTE_ADMIN,
     "`path=NAME.py`: fetches the key `AWS_FUNCTION_DIR/NAME.py` (default "
     "`functions/NAME.py`) from the system of record (`storage=` picks it; in S3 the "
     "key is under `AWS_DATA_DIR` like every key), always asking the system of record "
     "for its current version, and installs it like `function_create`"},
    {"function_delete", {NULL}, functions_delete, ROUTE_MAY_BLOCK, false, ROUTE_DOC_FUNCTIONS, false,
     ROUTE_ADMIN,
     "`function_name`: removes it (404 if there is none)"},
    {"functions", {NULL}, functions_list, ROUTE_MAY_BLOCK, false, ROUTE_DOC_FUNCTIONS, false,
     ROUTE_READ,
     "every function with its signature and first docstring line (read from the "
     "source, not run)"},
    {"function_stats", {NULL}, functions_stats, ROUTE_MAY_BLOCK, false, ROUTE_DOC_FUNCTIONS, false,
     ROUTE_READ,
     "a worker's `@lru_cache` statistics"},
    {"spec", {NULL}, spec_api_spec, ROUTE_RUNS_ANYWHERE, false, ROUTE_DOC_SPEC, false,
     ROUTE_READ,
     "the spec in force: its `path`, `loaded_at`, how many `reloads` put a new one in "
     "force, and the `spec` itself as JSON (404 `no_spec` when the server runs "
     "without one)"},
    {"reload_spec", {NULL}, spec_api_reload, ROUTE_MAY_BLOCK, false, ROUTE_DOC_SPEC, false,
     ROUTE_ADMIN,
     "reads the file again, as SIGHUP does: a bad file keeps the spec in force (400 "
     "`bad_spec` with the line); a good one puts what is new or changed to work and "
     "never drops cached data. Value: `datasets`, `views` and `functions`, each with "
     "the counts `added`, `changed`, `removed` and `unchanged`"},
};

enum { ROUTE_COUNT = sizeof routes / sizeof routes[0] };

const route *routes_table(size_t *count)
{
    *count = ROUTE_COUNT;
    return routes;
}

static bool route_named(const route *r, const char *name)
{
    if (strcmp(r->name, name) == 0)
        return true;
    for (size_t i = 0; r->aliases[i]; i++) {
        if (strcmp(r->aliases[i], name) == 0)
            return true;
    }
    return false;
}

const route *routes_find(const char *name, bool frame_call)
{
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        if (routes[i].frame_head == frame_call && route_named(&routes[i], name))
            return &routes[i];
    }
    return NULL;
}

bool routes_has(const char *name)
{
    return routes_find(name, false) || routes_find(name, true);
}

/* ---- messages and docs -------------------------------------------------------------------- */

/* True if name was listed by a row before row i. */
static bool listed_before(size_t i, const char *name)
{
    for (size_t j = 0; j < i; j++) {
        if (route_named(&routes[j], name))
            return true;
    }
    return false;
}

void routes_unknown_message(buf *b, const char *name)
{
    buf_printf(b, "unknown function \"%.100s\"; known:", name);
    const char *sep = " ";
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        if (!listed_before(i, routes[i].name))
            buf_printf(b, "%s%s", sep, routes[i].name);
        sep = ", ";
        for (size_t k = 0; routes[i].aliases[k]; k++)
            buf_printf(b, ", %s", routes[i].aliases[k]);
    }
}

static const char *const doc_headers[ROUTE_DOC_COUNT] = {
    [ROUTE_DOC_CACHE] = "| function | scope | answer |\n|---|---|---|\n",
    [ROUTE_DOC_FRAMES] = "| function | scope | answer |\n|---|---|---|\n",
    [ROUTE_DOC_COLLECTIONS] = "| function | scope | arguments | answer |\n|---|---|---|---|\n",
    [ROUTE_DOC_OPERATOR] = "| function | scope | what it does |\n|---|---|---|\n",
    [ROUTE_DOC_FUNCTIONS] = "| function | scope | answer |\n|---|---|---|\n",
    [ROUTE_DOC_SPEC] = "| function | scope | answer |\n|---|---|---|\n",
};

/* The scope column: "`read`", "`read`, every key; `admin` with `into=`". */
static void markdown_access(buf *b, unsigned access)
{
    static const struct {
        unsigned    bit;
        const char *name;
    } scopes[] = {{ROUTE_READ, "read"}, {ROUTE_WRITE, "write"}, {ROUTE_ADMIN, "admin"}};
    const char *sep = "";
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
        if (access & scopes[i].bit) {
            buf_printf(b, "%s`%s`", sep, scopes[i].name);
            sep = ", ";
        }
    }
    if (access & ROUTE_EVERY_KEY)
        buf_puts(b, ", every key");
    if (access & ROUTE_ADMIN_INTO)
        buf_puts(b, "; `admin` with `into=`");
}

/* One line of a table: row i and the rows after it that join its line. */
static size_t markdown_line(buf *b, size_t i)
{
    size_t end = i + 1;
    while (end < ROUTE_COUNT && !routes[end].help)
        end++;
    size_t aliases = 0;
    for (size_t j = i; j < end; j++) {
        buf_printf(b, "%s`%s`", j == i ? "| " : ", ", routes[j].name);
        for (size_t k = 0; routes[j].aliases[k]; k++)
            aliases++;
    }
    size_t n = 0;
    for (size_t j = i; j < end; j++) {
        for (size_t k = 0; routes[j].aliases[k]; k++, n++)
            buf_printf(b, "%s`%s`", n == 0 ? (aliases > 1 ? " (aliases " : " (alias ") : ", ",
                       routes[j].aliases[k]);
    }
    buf_puts(b, aliases ? ") | " : " | ");
    markdown_access(b, routes[i].access);
    buf_printf(b, " | %s |\n", routes[i].help);
    return end;
}

void routes_markdown(buf *b)
{
    for (int doc = 0; doc < ROUTE_DOC_COUNT; doc++) {
        buf_puts(b, doc_headers[doc]);
        for (size_t i = 0; i < ROUTE_COUNT;) {
            if (routes[i].doc == (route_doc)doc && routes[i].help)
                i = markdown_line(b, i);
            else
                i++;
        }
        buf_putc(b, '\n');
    }
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* The head rule (see the top of this file). */
static bool head_means_rows(const call *c)
{
    if (c->req->method == HTTP_METHOD_HEAD || !c->path)
        return false;
    const char *type = call_param_value(c, "type", NULL);
    if (call_param_value(c, "n", NULL) || (type && strcmp(type, "frame") == 0) ||
        aside_value_type_for_key(c->path) == ASIDE_TYPE_FRAME)
        return true;
    aside_entry_info e;
    if (aside_entry(c->server->cache, c->path, &e, NULL) != ASIDE_OK)
        return false;
    free(e.key);
    return e.type == ASIDE_TYPE_FRAME;
}

static bool route_blocks(const call *c, const route *r)
{
    switch (r->blocking) {
    case ROUTE_MAY_BLOCK: return true;
    case ROUTE_AS_OPERATION: return collections_operation_blocks(c->server, r->name);
    default: return false;
    }
}

static void answer_unknown_function(call *c, const char *name)
{
    buf message = {0};
    routes_unknown_message(&message, name);
    call_error(c, 404, "unknown_function", message.data && !message.failed ? message.data
                                                                             : "unknown function");
    buf_free(&message);
}

/* Run handler now, or defer it when it blocks and this thread may not. */
static void run(call *c, call_handler handler, bool blocks)
{
    if (blocks && !c->req->may_block)
        c->res->defer = true;
    else
        handler(c);
}

unsigned routes_scopes(const route *r, const call *c)
{
    if (!r)
        return TOKENS_READ;
    unsigned scopes = r->access & TOKENS_EVERY_SCOPE;
    if ((r->access & ROUTE_ADMIN_INTO) && call_param_value(c, "into", NULL))
        scopes |= TOKENS_ADMIN;
    return scopes;
}

static bool permitted(call *c, const route *r)
{
    return call_permitted(c, routes_scopes(r, c), !r || (r->access & ROUTE_EVERY_KEY));
}

/* Find the function c names and run it; returns its label for the metrics (metrics.h): the
 * row's name, or one that stands for every user's function, or for an unknown name. */
static const char *dispatch(call *c)
{
    const char *name = call_function_name(c);
    const route *r = routes_find(name, strcmp(name, "head") == 0 && head_means_rows(c));
    c->function = r ? r->name : name;
    if (!r && functions_exists(c, name)) {
        if (permitted(c, NULL))
            run(c, functions_call, true);
        return METRICS_USER_FUNCTION;
    }
    if (!r) {
        answer_unknown_function(c, name);
        return METRICS_UNKNOWN;
    }
    if (permitted(c, r) && (!r->needs_path || call_need_path(c)))
        run(c, r->run, route_blocks(c, r));
    return r->name;
}

/* The paths outside the API, answered from the gate before anything else; name is their label
 * in the metrics. */
static const struct {
    const char *path;
    const char *name;
    void      (*run)(server_gate *g, const http_request *req, http_response *res);
} outside_routes[] = {
    {"/health", "health", health_alive},
    {"/ready", "ready", health_ready},
    {"/metrics", "metrics", metrics_serve},
};

/* Answer a call of the API; returns its label for the metrics. */
static const char *handle(const server *s, const http_request *req, http_response *res)
{
    call c;
    call_init(&c, s, req, res);
    const char *function = call_prepare(&c) ? dispatch(&c) : METRICS_NONE;
    call_finish(&c);
    return function;
}

/* Answer req; returns its label for the metrics. */
static const char *serve(server_gate *gate, const http_request *req, http_response *res)
{
    const char *q = memchr(req->target, '?', req->target_len);
    size_t len = q ? (size_t)(q - req->target) : req->target_len;
    for (size_t i = 0; i < sizeof outside_routes / sizeof outside_routes[0]; i++) {
        if (len == strlen(outside_routes[i].path) &&
            memcmp(req->target, outside_routes[i].path, len) == 0) {
            outside_routes[i].run(gate, req, res);
            return outside_routes[i].name;
        }
    }
    const server *s = server_gate_server(gate);
    if (s)
        return handle(s, req, res);
    health_starting(res);
    res->omit_body = req->method == HTTP_METHOD_HEAD;
    return METRICS_NONE;
}

void routes_serve(void *gate, const http_request *req, http_response *res)
{
    int64_t started_ns = req->received_ns ? req->received_ns : clock_mono_ns();
    const char *function = serve(gate, req, res);
    if (!res->defer) /* answered: the request is finished (a deferred one is called again) */
        metrics_observe_request(function, res->status,
                                (double)(clock_mono_ns() - started_ns) / 1e9);
}

void routes_handle(void *ctx, const http_request *req, http_response *res)
{
    handle(ctx, req, res);
}
