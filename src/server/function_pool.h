/* function_pool.h -- users' Python functions: the pool of worker processes that runs them and
 * the function folder that holds them (function_pool.c). The server's API to them is
 * functions.h; the protocol is described atop function_pool.c. */
#ifndef ASIDE_SERVER_FUNCTION_POOL_H
#define ASIDE_SERVER_FUNCTION_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"

struct json_t;

typedef struct function_pool_config {
    const char *python;             /* the interpreter that runs `-m aside.worker` */
    const char *dir;                /* LOCAL_FUNCTION_DIR: NAME.py files */
    const char *remote_dir;         /* AWS_FUNCTION_DIR: where function_register looks */
    const char *token;              /* passed on, for the workers' calls back to the API */
    unsigned    workers;            /* at most this many processes */
    unsigned    max_timeout_ms;     /* a call's limit (timeout= may ask for less) */
    uint64_t    memory_limit_bytes; /* RLIMIT_AS of each worker; 0: none */
    uint64_t    file_size_limit_bytes; /* RLIMIT_FSIZE of each worker; 0: none */
    unsigned    max_processes;      /* of each worker: its pids cgroup's pids.max, or RLIMIT_NPROC
                                       above the user's tasks at its start; 0: no bound */
    const char *sandbox;            /* ASIDE_FUNCTION_SANDBOX: auto, on, off (function_sandbox.h) */
    const char *user;               /* ASIDE_FUNCTION_USER, or NULL: the default */
    uint64_t    tmp_bytes;          /* the private /tmp of a sandboxed worker */
    const char *shm_dir;            /* where frames are published, or NULL */
    const char *api_socket;         /* the server's Unix socket, or NULL */
} function_pool_config;

typedef struct function_pool_stats {
    uint64_t workers;  /* running now */
    uint64_t busy;     /* of them, answering a call now */
    uint64_t started;  /* ever, replacements included */
    uint64_t requests, timeouts, crashes;
} function_pool_stats;

typedef struct function_pool function_pool;

/* Why a request got no reply. */
typedef enum function_failure {
    FUNCTION_ANSWERED = 0,
    FUNCTION_TIMEOUT,  /* past its deadline (or no worker free in time): 504 `timeout` */
    FUNCTION_DIED,     /* the worker died or could not start: 500 `worker_died` (one that
                        * died before it served: the message has what it wrote then and
                        * ASIDE_PYTHON) */
    FUNCTION_PROTOCOL  /* the worker broke the protocol: 500 `worker_protocol` */
} function_failure;

/* A reply: its JSON header (owned) and raw payload (owned, payload_bytes long); when there is
 * none, why. */
typedef struct function_reply {
    struct json_t   *header;
    void            *payload;
    size_t           payload_bytes;
    function_failure failure;
} function_reply;

/* A pool configured by cfg (copied; its strings must outlive the pool). No process starts
 * until a request needs one. Finds where workers' pids cgroups can be made (and removes
 * those of servers that are gone), logging how processes are bounded. NULL when out of
 * memory. */
function_pool *function_pool_create(const function_pool_config *cfg);
/* Decide who workers run as and whether in the sandbox (function_sandbox.h): probes it once.
 * Call it once, after function_pool_set_url and before the first request; without it workers
 * run as the server, unsandboxed. ASIDE_ERR_INVALID (err says why) when the server must not
 * start: ASIDE_FUNCTION_SANDBOX=on without a working sandbox, or no such user. */
aside_status   function_pool_start_sandbox(function_pool *p, aside_error *err);
/* Stop every worker and free p. NULL is ignored. */
void           function_pool_destroy(function_pool *p);
/* The configuration p was created with (the function folders). */
const function_pool_config *function_pool_config_of(const function_pool *p);
/* Where workers reach the API (known once the server listens). */
void           function_pool_set_url(function_pool *p, const char *url);
void           function_pool_get_stats(function_pool *p, function_pool_stats *out);
/* Send request (an object; its "id" and "timeout_ms" are set here) to an idle worker and read
 * its reply, within timeout_ms (0: the maximum). The reply must echo the id and be alone on
 * the socket. ASIDE_ERR_TIMEOUT when the worker had to be stopped (or none was free in time),
 * ASIDE_ERR_INTERNAL when it died or broke the protocol (out->failure says which, err how);
 * a worker that failed is killed with its whole process group and replaced on a later call. */
aside_status   function_pool_request(function_pool *p, struct json_t *request,
                                     unsigned timeout_ms, function_reply *out,
                                     aside_error *err);
void           function_reply_clear(function_reply *r);
/* The workers' memoisation figures, summed over the running workers as of their last calls:
 * {"lru": {"module.function": {"hits", "misses", "maxsize", "currsize"}}, "results": {...}}
 * (maxsize and currsize summed too: per worker caches). The caller owns it. */
struct json_t *function_pool_memo_stats(function_pool *p);

/* ---- the function folder ---------------------------------------------------------------- */

/* The file of the function name (LOCAL_FUNCTION_DIR/NAME.py) into path (size bytes). */
void           function_pool_path(const function_pool *p, const char *name, char *path,
                                  size_t size);
/* Write source (len bytes) as the file of the function name, atomically (a temporary file,
 * fsync, rename). ASIDE_ERR_IO when the folder cannot be written. */
aside_status   function_pool_save(function_pool *p, const char *name, const char *source,
                                  size_t len, aside_error *err);
/* NAME.py from the system of record's function folder (AWS_FUNCTION_DIR), read afresh through
 * cache (an update, with options' storage; options may be NULL), into *source (NUL-terminated,
 * *len bytes; the caller frees it). The cache's status when it cannot be read. Blocks. */
aside_status   function_pool_read_remote(function_pool *p, aside_cache *cache,
                                         const char *name, const aside_read_options *options,
                                         char **source, size_t *len, aside_error *err);
/* Register the function name from the system of record's function folder, as
 * function_register does: compiled by a worker (never run), then saved in LOCAL_FUNCTION_DIR.
 * ASIDE_ERR_INVALID for a name that is no Python identifier or a source that does not compile
 * (err: the error's type and message), ASIDE_ERR_CONFLICT when is_reserved(name) (one of the
 * server's own functions; is_reserved may be NULL), the cache's status when the file cannot
 * be read (ASIDE_ERR_NOT_FOUND). Blocks: call it from a thread that may. */
aside_status   function_pool_register(function_pool *p, aside_cache *cache, const char *name,
                                      const aside_read_options *options,
                                      bool (*is_reserved)(const char *name), aside_error *err);

#endif
