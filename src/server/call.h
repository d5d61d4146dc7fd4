/* call.h -- one request to the API being answered (call.c): its parameters (the query string
 * or a JSON body), the {"return": ...} envelope, errors and their HTTP statuses, the bearer
 * token, and the steps that prepare a call before the router picks its handler. The call
 * module calls no handler: the router (routes.h) does.
 *
 * A call lives on the stack of the thread answering the request, for one handler call; every
 * pointer in it is valid only during that call. */
#ifndef ASIDE_SERVER_CALL_H
#define ASIDE_SERVER_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"
#include "http.h"
#include "server.h"
#include "tokens.h"
#include "util/util.h"

#define CALL_API_URI "/cache/api/v1.0/"

enum { CALL_MAX_PARAMS = 64 };

typedef struct call_param {
    char  *name;
    char  *value; /* NUL-terminated, but may hold NULs: see value_len */
    size_t value_len;
    struct json_t *json; /* from a JSON body: the value itself (its type kept), else NULL */
} call_param;

typedef struct call {
    const http_request *req;
    http_response      *res;
    const server       *server;
    const char         *function; /* the function being run (set by the router), or NULL */
    call_param          params[CALL_MAX_PARAMS];
    size_t              param_count;
    int64_t             started_ns;
    const char         *path; /* the key, or NULL */
    size_t              path_len;
    aside_read_options  options; /* storage, type */
    bool                raw_body; /* the body is a value (write, put), not parameters */
    /* The caller's token, once call_prepare accepted it; all NULL and 0 when the server asks
     * for none. token_name names it (in logs; never the secret); token (NULL for a bare
     * defaults.token) gives its prefixes and lives in token_set, held until call_finish. */
    const char         *token_name;
    unsigned            token_scopes; /* TOKENS_READ | ... */
    const tokens_entry *token;
    tokens_set         *token_set;
    /* where the value the call read came from ("memory", "disk", "sor"; static), or NULL:
     * for the request's record (http.h), which call_finish fills */
    const char         *source;
} call;

/* A handler: answers c (or sets c->res->defer when it must block and c->req->may_block is
 * false). */
typedef void (*call_handler)(call *c);

/* ---- a call's life ------------------------------------------------------------------------ */

/* Start a call of req answered into res, for server s. */
void        call_init(call *c, const server *s, const http_request *req, http_response *res);
/* The steps before a handler: the route must be the API's (else 404), the bearer token one of
 * the server's (401, with WWW-Authenticate; scopes are checked later, call_permitted), the verb one of GET, HEAD, POST, PUT, DELETE (405); then the parameters are read from
 * the query string and a JSON body {"data": {...}} (400 when malformed or more than
 * CALL_MAX_PARAMS), and type, max_age, stale_if_error and path checked (400). False when an
 * error was answered. */
bool        call_prepare(call *c);
/* The bearer token alone, for a path outside the API that asks for one (/metrics): one of the
 * server's, else 401 with WWW-Authenticate; then c->token_scopes says what it may do. True
 * without tokens. False when an error was answered. */
bool        call_authorize(call *c);
/* Whether the caller's token may run a function that needs scopes (TOKENS_READ | ...): every
 * scope of it (else 403 forbidden, naming the missing one), and, for a token limited to key
 * prefixes, the keys the call names (path or key, prefix) under one of them, at least one named,
 * and a function that does not reach every key (every_key: sql, a user's function...; else
 * 403). True without tokens. False when an error was answered. */
bool        call_permitted(call *c, unsigned scopes, bool every_key);
/* The function the request names: "head" for the HEAD verb, else function=, else the verb's
 * default (GET read, POST create, PUT update, DELETE delete). */
const char *call_function_name(const call *c);
/* Note where the value the call read came from (the access log's source). */
void        call_note_source(call *c, aside_source source);
/* Tell the request's record (http.h) the call's function, key, token name and source, then
 * free what the call holds; HEAD answers get no body. */
void        call_finish(call *c);

/* ---- parameters --------------------------------------------------------------------------- */

/* A parameter's value (the last given wins), or NULL; *len (may be NULL) its length. */
const char *call_param_value(const call *c, const char *name, size_t *len);
/* How deep JSON in the call, or in what it answers, may nest (ASIDE_JSON_MAX_DEPTH). */
size_t      call_json_max_depth(const call *c);
/* A parameter that is one of allowed (case-insensitive; *out keeps its default when absent);
 * false when an error was answered. */
bool        call_choice(call *c, const char *name, const char *const *allowed,
                        const char **out);
/* False when the call names no key (an error was answered). */
bool        call_need_path(call *c);
/* True when the Accept header names needle (case-insensitive). */
bool        call_accepts(const call *c, const char *needle);

/* The API's own parameters (path, format, timeout, ...), one table in call.c. Their values
 * must be scalars. */
bool        call_is_api_parameter(const char *name);
/* Whether a collection operation receives the parameter name as an argument: every name but
 * the API parameters that choose the key, its reading and its answer. */
bool        call_operation_gets(const char *name);
/* Whether a user's function receives the parameter name as an argument: every name but the
 * API parameters that shape its call and answer (function, timeout, format, return, orient). */
bool        call_function_gets(const char *name);

/* ---- answers ------------------------------------------------------------------------------ */

/* The HTTP status of a library status (docs: README's error table). */
int         call_http_status(aside_status st);
/* The error code word of err: its own code, else bad_request for ASIDE_ERR_INVALID, else
 * aside_status_name. */
const char *call_error_code(const aside_error *err);
/* One row of the API's error table: an HTTP status, the library status it answers (-1: none),
 * the codes answered with it (Markdown) and when. */
typedef struct call_error_row {
    int         status;
    int         library_status; /* an aside_status, or -1 */
    const char *codes;
    const char *when;
} call_error_row;

/* The error table: *count rows, by status. */
const call_error_row *call_error_rows(size_t *count);
/* Append README's error table to b, as Markdown. */
void        call_errors_markdown(buf *b);
/* Answer an error: status, a code word, a message. A 503 (the server is short of something
 * for a moment) also tells the client when to retry (Retry-After). */
void        call_error(call *c, int status, const char *code, const char *message);
/* Answer err with the HTTP status its status maps to. */
void        call_status_error(call *c, const aside_error *err);
/* Answer 503 out_of_memory: a temporary lack of memory. */
void        call_out_of_memory(call *c);
/* Start a {"return": {"uri", "path", "value": ...}} envelope and return the buffer to write
 * its value to; call_envelope_end closes it. */
buf        *call_envelope_begin(call *c);
void        call_envelope_end(call *c);
/* Answer {"return": {..., "value": text}} (text is JSON). */
void        call_answer_json(call *c, const char *text);
/* Answer {"result": "success"}. */
void        call_answer_success(call *c);
/* Write unix_ms as a JSON string in ISO 8601 (UTC, milliseconds). */
void        call_put_time(buf *b, int64_t unix_ms);

#endif
