/* server.h -- what every handler of the API may use: the server's context.
 *
 * main builds one server before the HTTP server starts and frees what it holds after the HTTP
 * server and the spec's threads stopped; the router (routes.h) passes it to each call
 * (call.h), and handlers read it, never change it. Every member but defaults is borrowed:
 *
 *   cache      opened and closed by main (aside_cache_open / aside_cache_close)
 *   functions  users' functions' worker pool, created and destroyed by main
 *   spec       the data spec at work (spec_run.h), or NULL without one; created and destroyed
 *              by main
 *   tokens     the tokens in force (tokens.h), or NULL when the server asks none (or only
 *              defaults.token, as a server built by hand for a test does); created, reloaded
 *              on SIGHUP and destroyed by main
 *   is_own_function  the router's test of a name (routes_has): a user's function may not take
 *              the name of one of the server's own functions. Set by main, so that handlers
 *              need not know the router.
 *
 * Before the cache is open there is no server: the HTTP server starts first (so that /health
 * and /ready answer while the disk tier is scanned and the journal replayed) with a gate as its
 * context. The gate holds the phase /ready reports and, once main has opened the cache and
 * built everything else, the server. The router hands a call the gate's server or answers 503
 * starting: no handler can reach a cache that is not open. */
#ifndef ASIDE_SERVER_SERVER_H
#define ASIDE_SERVER_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "aside.h"
#include "config.h"
#include "function_pool.h"

struct spec_run;
struct tokens;

typedef struct server {
    aside_cache     *cache;
    api_defaults     defaults;
    function_pool   *functions;
    struct spec_run *spec;
    struct tokens   *tokens;
    bool           (*is_own_function)(const char *name);
} server;

/* Where the server stands, as /ready reports it. */
typedef enum server_phase {
    SERVER_OPENING,    /* listening; the cache is being opened (disk tier scan, journal replay) */
    SERVER_PRELOADING, /* the cache is open; the spec's preload runs (ready_after_preload) */
    SERVER_READY,      /* ready to take traffic */
    SERVER_STOPPING    /* SIGTERM came: still serving the drain, no longer ready */
} server_phase;

/* The HTTP server's context (routes_serve): written by main only, read by every request. */
typedef struct server_gate {
    _Atomic(const server *) open; /* NULL until the server is whole, then never changes */
    atomic_int              phase; /* a server_phase */
} server_gate;

/* The server, or NULL while the cache is not open yet. */
static inline const server *server_gate_server(const server_gate *g)
{
    return atomic_load_explicit(&g->open, memory_order_acquire);
}

/* Main: s is whole (its cache open, every member set); from now on calls reach it. */
static inline void server_gate_open(server_gate *g, const server *s)
{
    atomic_store_explicit(&g->open, s, memory_order_release);
}

static inline server_phase server_gate_phase(const server_gate *g)
{
    return (server_phase)atomic_load(&g->phase);
}

static inline void server_gate_set_phase(server_gate *g, server_phase phase)
{
    atomic_store(&g->phase, (int)phase);
}

#endif
