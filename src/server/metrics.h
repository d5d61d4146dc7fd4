/* metrics.h -- the server's figures for Prometheus: GET /metrics in the text exposition format
 * 0.0.4 (metrics.c), over the counters only the server can keep (metrics_counters.c).
 *
 * Two files, one module. metrics_counters.c sits at the bottom of the server: the router counts
 * every request there when it is answered (metrics_observe_request), a read counts its key's
 * dataset (metrics_observe_read), the spec at work says which datasets have names
 * (metrics_datasets_use); it calls nothing of the server. metrics.c answers /metrics: it reads
 * those counters, the cache's (aside_stats, the keys by type), the function workers' and the
 * spec's preload, and writes every family with its HELP and TYPE lines.
 *
 * Labels are bounded by the program, never by what clients send: a request's function is a
 * row of the route table, "function_call" for every user's function, "unknown" for a name
 * that is neither, "none" when the call never got as far as naming one, or one of the paths
 * outside the API ("health", "ready", "metrics"); a dataset is a name the spec gives. No key
 * and no user's function's name ever appears. Counters are atomics updated without a lock
 * (relaxed: a scrape may see one request's count before its duration, never a torn value). */
#ifndef ASIDE_SERVER_METRICS_H
#define ASIDE_SERVER_METRICS_H

#include <stdint.h>

#include "aside.h"
#include "http.h"
#include "server.h"
#include "spec/spec.h"
#include "util/util.h"

/* The labels of requests that name no function of the route table. */
#define METRICS_USER_FUNCTION "function_call" /* every user's function, whatever its name */
#define METRICS_UNKNOWN "unknown"             /* a name that is no function: 404 */
#define METRICS_NONE "none"                   /* refused before a function was named (401,
                                                 400, 404 route, 503 starting) */

/* ---- metrics_counters.c: what the server counts -------------------------------------------- */

/* A request was answered: function (a string that lives for ever: a route row's name, or one
 * of the labels above), its HTTP status, and how long it took in seconds, from its arrival
 * to its answer (the response then leaves). Lock-free; distinct function names beyond
 * METRICS_FUNCTIONS_MAX are counted under "other". */
void metrics_observe_request(const char *function, int status, double seconds);
/* A read of key was answered from source with bytes: counted for the first named dataset of
 * the spec in force whose keys include key (none: not counted). Cheap when no dataset has a
 * name; otherwise a read lock and the spec's matching, outside every cache lock. */
void metrics_observe_read(const char *key, aside_source source, uint64_t bytes);
/* The spec s is in force (NULL: none): its named datasets are the ones reads are counted
 * under from now on. A name keeps its counters across reloads (counters never go back); names
 * beyond METRICS_DATASETS_MAX in a process's life are not counted. Thread-safe. */
void metrics_datasets_use(const spec *s);

enum {
    METRICS_FUNCTIONS_MAX = 128, /* distinct function labels: the route table has about 70 */
    METRICS_DATASETS_MAX = 256,  /* distinct dataset names over the process's life */
    METRICS_BUCKETS = 16         /* latency histogram buckets, +Inf apart */
};

/* The latency histogram's upper bounds, in seconds (METRICS_BUCKETS of them). */
extern const double metrics_bucket_bounds[METRICS_BUCKETS];

/* A snapshot of one function's requests. */
typedef struct metrics_function {
    const char *name;
    uint64_t    by_status[600];          /* requests by HTTP status (100..599) */
    uint64_t    buckets[METRICS_BUCKETS]; /* requests at most that long (not cumulative) */
    uint64_t    count;                    /* every request, the +Inf bucket */
    uint64_t    sum_ns;                   /* their durations */
} metrics_function;

/* Snapshot function i into out; false past the last one. */
bool metrics_function_get(size_t i, metrics_function *out);

/* A snapshot of one named dataset's reads. */
typedef struct metrics_dataset {
    char     name[SPEC_NAME_MAX_BYTES + 1];
    uint64_t hits_memory, hits_disk, misses, bytes;
} metrics_dataset;

/* Snapshot dataset i into out; false past the last one. */
bool metrics_dataset_get(size_t i, metrics_dataset *out);

/* ---- metrics.c: the page ------------------------------------------------------------------- */

/* GET (or HEAD) /metrics, from the gate: 503 starting until the cache is open; then, unless
 * the server's defaults say metrics_public, the bearer token must be one of the server's (401)
 * with the read scope (403); a token limited to key prefixes may read it too, since no key
 * appears. 200 with Content-Type "text/plain; version=0.0.4; charset=utf-8". */
void metrics_serve(server_gate *g, const http_request *req, http_response *res);
/* Append the exposition of s to b (every family, HELP and TYPE first). */
void metrics_write(const server *s, buf *b);

#endif
