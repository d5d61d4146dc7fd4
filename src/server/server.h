/* server.h -- aside-server: HTTP, the API, configuration.
 *
 *   http    an epoll event loop per worker thread over Debian's http-parser: keep-alive,
 *           pipelining, bodies up to a limit, timeouts for slow and idle clients, zero-copy
 *           responses (writev from a cached value, sendfile from a disk-tier file)
 *   api     the REST API: routing, parameters from the query or a JSON body, the
 *           {"return": ...} envelope, errors, telemetry
 *   config  flags and environment variables, parsed and checked once at start
 *
 * The handler is first called on the event-loop thread that read the request, with may_block
 * false: it answers what it can without blocking (a memory hit, an error) and sets defer for the
 * rest, which is then handed to a pool of blocking threads (loads from disk or S3, writes) and
 * answered from there; the event loops keep serving meanwhile. The handler is called by many
 * threads at once and must be thread-safe (the cache is). */
#ifndef ASIDE_SERVER_H
#define ASIDE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/uio.h>

#include "aside.h"
#include "util/util.h"

/* ---- http --------------------------------------------------------------------------------- */

typedef enum http_method_kind {
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_OTHER
} http_method_kind;

typedef struct http_header {
    const char *name;
    size_t      name_len;
    const char *value;
    size_t      value_len;
} http_header;

/* A request; every pointer is valid only during the handler call. */
typedef struct http_request {
    http_method_kind   method;
    const char        *method_name;
    const char        *target; /* the raw request target: path and query */
    size_t             target_len;
    const http_header *headers;
    size_t             header_count;
    const char        *body;
    size_t             body_len;
    bool               may_block; /* false on an event-loop thread: defer what would block */
} http_request;

/* The value of the first header called name (case-insensitive), or NULL. */
const char *http_request_header(const http_request *req, const char *name, size_t *len);

/* A body made of memory segments, sent in order with writev, without copying; owner keeps them
 * alive until release(owner) is called, after the last byte left (or the response is dropped). */
typedef struct http_segments {
    struct iovec *iov; /* owned by owner */
    size_t        count;
    uint64_t      total_bytes;
    void         *owner;
    void        (*release)(void *owner);
} http_segments;

/* The handler fills a response. The body is body (a buffer), value (a cached value the response
 * holds a reference to, sent without copying) or segments. */
typedef struct http_response {
    int          status;
    const char  *content_type; /* a static string */
    buf          headers;      /* extra header lines, each ending in "\r\n" */
    buf          body;
    aside_value *value;
    http_segments segments;    /* used when count > 0 */
    bool         omit_body;    /* HEAD: send the headers of the body, not the body */
    bool         defer;        /* (when !may_block) call me again on a thread that may block */
} http_response;

typedef void (*http_handler)(void *ctx, const http_request *req, http_response *res);

typedef struct http_config {
    const char *bind;
    int         port;               /* 0: any free port */
    int         threads;
    uint64_t    max_body_bytes;     /* larger bodies get 413 */
    int         idle_timeout_ms;    /* a keep-alive connection idle this long is closed */
    int         request_timeout_ms; /* a request must arrive, and a response leave, this fast */
    int         blocking_threads;   /* the pool for requests that load, fetch or write */
} http_config;

typedef struct http_server http_server;

/* Bind and start the worker threads. The caller stops them with http_server_stop(). */
aside_status http_server_start(const http_config *cfg, http_handler handler, void *ctx,
                               http_server **out, aside_error *err);
/* The port actually bound (useful with port 0). */
int          http_server_port(const http_server *s);
/* Stop accepting, close every connection, join the threads and free the server. */
void         http_server_stop(http_server *s);

/* ---- functions (functions.c) -------------------------------------------------------------- */

/* Users' Python functions run by a pool of worker processes (see functions.c). */
typedef struct function_pool_config {
    const char *python;             /* the interpreter that runs `-m aside.worker` */
    const char *dir;                /* LOCAL_FUNCTION_DIR: NAME.py files */
    const char *remote_dir;         /* AWS_FUNCTION_DIR: where function_register looks */
    const char *token;              /* passed on, for the workers' calls back to the API */
    unsigned    workers;            /* at most this many processes */
    unsigned    max_timeout_ms;     /* a call's limit (timeout= may ask for less) */
    uint64_t    memory_limit_bytes; /* RLIMIT_AS of each worker; 0: none */
} function_pool_config;

typedef struct function_pool_stats {
    uint64_t workers;  /* running now */
    uint64_t started;  /* ever, replacements included */
    uint64_t requests, timeouts, crashes;
} function_pool_stats;

typedef struct function_pool function_pool;

/* A reply: its JSON header (owned) and raw payload (owned, payload_bytes long). */
typedef struct function_reply {
    struct json_t *header;
    void          *payload;
    size_t         payload_bytes;
} function_reply;

function_pool *function_pool_create(const function_pool_config *cfg);
void           function_pool_destroy(function_pool *p);
/* Where workers reach the API (known once the server listens). */
void           function_pool_set_url(function_pool *p, const char *url);
void           function_pool_get_stats(function_pool *p, function_pool_stats *out);
/* Send request (an object; its "id" is set here) to an idle worker and read its reply, within
 * timeout_ms (0: the maximum). ASIDE_ERR_TIMEOUT when the worker had to be stopped (or none was
 * free in time), ASIDE_ERR_INTERNAL when it died (err names how). */
aside_status   function_pool_request(function_pool *p, struct json_t *request,
                                     unsigned timeout_ms, function_reply *out,
                                     aside_error *err);
void           function_reply_clear(function_reply *r);
/* The workers' memoisation figures, summed over the running workers as of their last calls:
 * {"lru": {"module.function": {"hits", "misses", "maxsize", "currsize"}}, "results": {...}}
 * (maxsize and currsize summed too: per worker caches). The caller owns it. */
struct json_t *function_pool_memo_stats(function_pool *p);

/* ---- config ------------------------------------------------------------------------------- */

/* Defaults of per-request parameters. */
typedef struct api_defaults {
    unsigned max_age_s;      /* max_age: revalidate older copies in the background; 0: never */
    bool     stale_if_error; /* stale_if_error: update answers the cached copy if the SOR fails */
    uint64_t result_limit_bytes; /* frame results answered (not stored with into=) up to this */
    unsigned sql_timeout_ms;     /* a query (sql, select, describe) is interrupted past this */
    aside_fsync fsync;           /* the cache's: "always" makes changes wait for the disk */
    const char *token;           /* when set, every request must carry "Authorization: Bearer
                                    <token>" (else 401) */
    function_pool_config functions;
} api_defaults;

typedef struct server_config {
    aside_config cache;
    http_config  http;
    api_defaults api;
    const char  *spec_path; /* ASIDE_SPEC: the data spec file (preload.c), or NULL */
    bool         help;
    bool         version;
} server_config;

/* Parse flags over environment variables over defaults. On error writes the reason. */
aside_status server_config_parse(server_config *cfg, int argc, char **argv, aside_error *err);
void         server_config_print_help(const char *program);

/* ---- api ---------------------------------------------------------------------------------- */

typedef struct api api;

api *api_create(aside_cache *cache, const api_defaults *defaults);
void api_destroy(api *a);
/* The http_handler of the REST API; ctx is the api. */
void api_handle(void *ctx, const http_request *req, http_response *res);

/* ---- api internals: api.c (routing, envelopes, the cache's functions) and frames.c (the
 * frame functions) share the call being answered and these helpers. ---------------------------- */

enum { API_MAX_PARAMS = 64 };

struct api {
    aside_cache   *cache;
    api_defaults   defaults;
    function_pool *functions;
    struct preload *preload; /* the data spec in force (preload.c), or NULL */
};

typedef struct api_param {
    char  *name;
    char  *value; /* NUL-terminated, but may hold NULs: see value_len */
    size_t value_len;
    struct json_t *json; /* from a JSON body: the value itself (its type kept), else NULL */
} api_param_t;

typedef struct api_call {
    const http_request *req;
    http_response      *res;
    api                *api;
    api_param_t         params[API_MAX_PARAMS];
    size_t              param_count;
    int64_t             started_ns;
    const char         *path; /* the key, or NULL */
    size_t              path_len;
    aside_read_options  options; /* storage, type */
    bool                raw_body; /* the body is a value (write), not parameters */
} api_call;

/* Answer an error: status, a code word, a message. */
void        api_error(api_call *c, int status, const char *code, const char *message);
/* Answer err with the HTTP status its status maps to. */
void        api_status_error(api_call *c, const aside_error *err);
/* Start a {"return": {...}} envelope and return the buffer to write its value to. */
buf        *api_envelope_begin(api_call *c);
void        api_envelope_end(api_call *c);
/* A parameter's value (the last given wins), or NULL; *len (may be NULL) its length. */
const char *api_param(const api_call *c, const char *name, size_t *len);
/* A parameter that is one of allowed (case-insensitive; *out keeps its default when absent);
 * false when an error was answered. */
bool        api_choice(api_call *c, const char *name, const char *const *allowed,
                       const char **out);
/* False when the call names no key (an error was answered). */
bool        api_need_path(api_call *c);
/* True when the Accept header names needle. */
bool        api_accepts(const api_call *c, const char *needle);

/* The API's side of users' functions (functions.c): calls and function_create, _register,
 * _delete, functions. True when name was one (and c is answered or deferred). */
bool    functions_dispatch(api_call *c, const char *name);
/* Where workers reach this server's API. */
void    api_set_url(api *a, const char *url);
/* True if name is one of the cache's own functions (read, write, head, ...). */
bool    api_is_builtin(const char *name);

/* The frame functions (frames.c). A run function answers c. */
typedef void (*api_run)(api_call *c);
/* The frame function called name, or NULL; *may_block says it must run on the blocking pool. */
api_run frames_function(const char *name, bool *may_block, bool *tries_memory);
/* The names of the frame functions, NULL-terminated, for the unknown-function message. */
extern const char *const frames_function_names[];
/* Answer a read of a frame value with return=data, in the format the call asks for (arrow,
 * parquet, csv or json). */
void    frames_answer_read(api_call *c, aside_value *v);
/* Answer a frame computed for c, as the frame functions answer theirs. */
struct frame;
void    frames_answer(api_call *c, struct frame *f);

/* The operations on what the cache alone holds (collections.c): collections, JSON documents,
 * times to live, pins, eviction. The function called name, or NULL; *may_block as above. */
api_run collections_function(const char *name, const api_call *c, bool *may_block);
/* Append ", name" for each of these functions to b. */
void    collections_append_names(buf *b);
/* Write unix_ms as a JSON string in ISO 8601 (UTC, milliseconds). */
void    api_put_time(buf *b, int64_t unix_ms);

/* ---- the data spec ----------------------------------------------------------------------------
 *
 * preload.c puts a spec file (src/spec/spec.h, docs/spec.md) to work: it preloads the datasets
 * the spec declares on a small pool of threads, checking frames' columns and applying time to
 * live and pins; registers the spec's functions; materialises its SQL views once the preload is
 * done and refreshes each when one of its inputs gets a new content; revalidates datasets at
 * their intervals. Progress (items, bytes, rate, ETA) goes to the log at most once a second and
 * to telemetry. A reload (SIGHUP, function=reload_spec) reads the file again: a bad file leaves
 * the spec in force untouched; a good one preloads what is new or changed and never drops
 * cached data. */
typedef struct preload preload;

/* Read and check the spec file at path. NULL when it is bad or unreadable, with err saying
 * "path:line:column: what" (err->code "bad_spec"). Nothing runs until preload_start. */
preload       *preload_create(const char *path, aside_error *err);
/* Put the spec to work on cache, registering functions through a's worker pool: starts the
 * preload threads and the background thread (revalidation, views). Call once, after the HTTP
 * server is started and api_set_url was called (function workers need the URL). */
aside_status   preload_start(preload *p, aside_cache *cache, api *a, aside_error *err);
/* Stop the threads (a load in progress finishes first) and free p. NULL is ignored. Call after
 * the HTTP server stopped (requests may read p) and before the cache closes. */
void           preload_destroy(preload *p);
/* Read the spec file again. A bad file: the spec in force stays, err says why. A good one
 * replaces it: new or changed datasets are preloaded, new or changed functions registered,
 * new or changed views materialised; what the old spec loaded stays cached. *summary (may be
 * NULL; the caller owns it) receives {"datasets"|"views"|"functions": {"added", "changed",
 * "removed", "unchanged"}}. Thread-safe; reloads run one at a time. */
aside_status   preload_reload(preload *p, struct json_t **summary, aside_error *err);
/* What main does on SIGHUP: reload and log the outcome. p may be NULL (no spec: logged). */
void           preload_on_sighup(preload *p);
/* The preload's progress for telemetry: {"state", "items", "bytes", "rate_bytes_per_second",
 * "eta_seconds", "errors", ...} (docs/spec.md). The caller owns it; NULL when p is NULL. */
struct json_t *preload_progress_json(preload *p);
/* function=spec: the spec in force, its path and when it was loaded (runs anywhere). */
void           preload_fn_spec(api_call *c);
/* function=reload_spec: preload_reload; a bad file is 400 "bad_spec" (must block). */
void           preload_fn_reload(api_call *c);

/* Defined in functions.c, for the spec: register the function name from the system of
 * record's function folder (AWS_FUNCTION_DIR/NAME.py, read afresh with options' storage), as
 * function_register does: compiled by a worker (never run), then saved in LOCAL_FUNCTION_DIR.
 * ASIDE_ERR_INVALID for a name that is no Python identifier or a source that does not compile
 * (err: the error's type and message), ASIDE_ERR_CONFLICT for one of the server's own
 * functions, the cache's status when the file cannot be read (ASIDE_ERR_NOT_FOUND). Blocks:
 * call it from a thread that may. */
aside_status functions_register(api *a, const char *name, const aside_read_options *options,
                                aside_error *err);

/* ---- end of the data spec -------------------------------------------------------------------- */

#endif
