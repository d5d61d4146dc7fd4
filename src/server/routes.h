/* routes.h -- the router: one table of the API's functions (routes.c), and the http_handler
 * that answers a request with the row the request names.
 *
 * Every function of the API is one row: its name and aliases, its handler, how it may run on
 * an event-loop thread, whether it needs a path, the scope its caller's token needs, and its
 * line in README's tables. The
 * unknown-function message, the test of a user's function's name and the docs' tables
 * (aside-server --list-functions) come from the table. Adding a function is adding a row and
 * its handler. A name no row has is a user's function when the function folder holds it
 * (functions.h). */
#ifndef ASIDE_SERVER_ROUTES_H
#define ASIDE_SERVER_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "call.h"
#include "http.h"

/* How a function may run on an event-loop thread (http.h: may_block). */
typedef enum route_blocking {
    ROUTE_RUNS_ANYWHERE, /* bookkeeping only: answered on the event loop */
    ROUTE_TRIES_MEMORY,  /* answered on the loop from memory; the handler defers on a miss */
    ROUTE_MAY_BLOCK,     /* always deferred to the blocking pool */
    ROUTE_AS_OPERATION   /* as the operation says (collections_operation_blocks) */
} route_blocking;

/* The table of README a function is listed in. */
typedef enum route_doc {
    ROUTE_DOC_CACHE,       /* the API's functions on cached values */
    ROUTE_DOC_FRAMES,      /* DataFrames */
    ROUTE_DOC_COLLECTIONS, /* collections and JSON documents: "arguments | answer" */
    ROUTE_DOC_OPERATOR,    /* time to live, pins, eviction */
    ROUTE_DOC_FUNCTIONS,   /* users' functions */
    ROUTE_DOC_SPEC,        /* the data spec */
    ROUTE_DOC_COUNT
} route_doc;

/* What a function asks of the caller's token (call_permitted): its scope, and two rules. */
enum {
    ROUTE_READ = TOKENS_READ,
    ROUTE_WRITE = TOKENS_WRITE,
    ROUTE_ADMIN = TOKENS_ADMIN,
    ROUTE_EVERY_KEY = 1u << 4,  /* reaches keys beyond the one it names (sql, select's where=,
                                   set algebra over keys=): not for a token limited to prefixes */
    ROUTE_ADMIN_INTO = 1u << 5  /* admin too when into= stores a result */
};

enum { ROUTE_MAX_ALIASES = 3 };

typedef struct route {
    const char    *name;
    const char    *aliases[ROUTE_MAX_ALIASES]; /* NULL-terminated */
    call_handler   run;
    route_blocking blocking;
    bool           needs_path; /* 400 without path (or key), before the handler runs */
    route_doc      doc;
    bool           frame_head; /* the head rule: this "head" is a frame's first rows */
    unsigned       access;     /* ROUTE_READ, _WRITE or _ADMIN, with the rules above */
    const char    *help;       /* its line in the docs; NULL: listed on the line of the row
                                  before (its names join that line) */
} route;

/* The HTTP server's handler; gate is a server_gate (server.h): /health and /ready from the
 * gate, 503 starting until the gate holds a server, then routes_handle. */
void         routes_serve(void *gate, const http_request *req, http_response *res);
/* The http_handler of the API; ctx is the server (server.h), its cache open. */
void         routes_handle(void *ctx, const http_request *req, http_response *res);
/* True if name (or an alias) is a row of the table: one of the server's own functions. */
bool         routes_has(const char *name);
/* The row called name, or NULL. frame_call chooses between the two rows called "head": the
 * frame's first rows (true) or telemetry (false); the router decides it by the head rule. */
const route *routes_find(const char *name, bool frame_call);
/* The scopes a call of r needs (TOKENS_READ | ...): its row's, and admin for into= on a
 * ROUTE_ADMIN_INTO row. r NULL: a user's function (read, every key). */
unsigned     routes_scopes(const route *r, const call *c);
/* The table: *count rows. */
const route *routes_table(size_t *count);
/* Append to b the message of an unknown function: its name, then every row's name and alias. */
void         routes_unknown_message(buf *b, const char *name);
/* Append to b README's function tables, as Markdown, each followed by a blank line. */
void         routes_markdown(buf *b);

#endif
