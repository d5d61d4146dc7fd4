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
 *              need not know the router. */
#ifndef ASIDE_SERVER_SERVER_H
#define ASIDE_SERVER_SERVER_H

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

#endif
