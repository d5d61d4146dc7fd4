/* call.c -- one request to the API: parameters, the envelope, errors, the bearer token.
 *
 * A request names a function and its parameters, in the query string or in a JSON body
 * {"data": {...}} (the body wins: its members come later, and the last one given wins); without
 * a function the HTTP verb chooses one. Nothing in the request is trusted: the target is
 * percent-decoded strictly (a malformed escape is 400), at most CALL_MAX_PARAMS parameters are
 * kept, the body must be a JSON object of the right shape (so in UTF-8), each of its
 * members nested no deeper than ASIDE_JSON_MAX_DEPTH (too_deep: jansson's parser itself stops at
 * 2048 levels), the API's own parameters must be scalars, and the path is checked by the
 * library (aside_key_check) before any handler sees it.
 *
 * The bearer token is checked here (401 when it is none of the server's); which scopes a
 * function needs is a column of the route table, which the router asks call_permitted about
 * once it knows the function (403 forbidden). A secret is never kept in the call, only the
 * token's name, scopes and prefixes (tokens.h).
 *
 * Answers are {"return": {"uri", "path", "value"}} envelopes, or {"error": {"code", "message"}}
 * with the status the library's status maps to (call_http_status, README's error table). The
 * envelope is built by hand, not through a JSON library: a cached JSON value is known to be
 * valid and is embedded as it is, and everything else written here is escaped by buf.
 *
 * Steps that need to know which handler runs (which function, whether it blocks) are the
 * router's (routes.c); this module calls no handler. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "call.h"
#include "value/value.h"

/* ---- the API's own parameters ------------------------------------------------------------- */

/* One row per parameter of the API itself: a value for it must be a scalar. Beside them, a
 * call's parameters are the arguments of a collection operation or of a user's function; these
 * two columns say which of the API's own ones they receive too. */
typedef struct api_parameter {
    const char *name;
    bool        to_operation; /* a collection operation gets it as an argument */
    bool        to_function;  /* a user's function gets it as an argument */
} api_parameter;

static const api_parameter parameters[] = {
    {"function", false, false},      {"path", false, true},           {"key", false, true},
    {"storage", false, true},        {"type", false, true},           {"return", false, false},
    {"format", false, false},        {"orient", true, false},         {"time", false, true},
    {"max_age", false, true},        {"stale_if_error", false, true}, {"prefix", true, true},
    {"query", true, true},           {"into", true, true},            {"columns", true, true},
    {"where", true, true},           {"order_by", true, true},        {"limit", true, true},
    {"offset", true, true},          {"n", true, true},               {"include", true, true},
    {"timeout", true, false},        {"function_name", true, true},
    {"function_body", true, true},   {"pandas", false, false},
};

static const api_parameter *find_parameter(const char *name)
{
    for (size_t i = 0; i < sizeof parameters / sizeof parameters[0]; i++) {
        if (strcmp(parameters[i].name, name) == 0)
            return &parameters[i];
    }
    return NULL;
}

bool call_is_api_parameter(const char *name) { return find_parameter(name) != NULL; }

bool call_operation_gets(const char *name)
{
    const api_parameter *p = find_parameter(name);
    return !p || p->to_operation;
}

bool call_function_gets(const char *name)
{
    const api_parameter *p = find_parameter(name);
    return !p || p->to_function;
}

/* ---- answers ------------------------------------------------------------------------------ */

int call_http_status(aside_status st)
{
    switch (st) {
    case ASIDE_ERR_INVALID: return 400;
    case ASIDE_ERR_NOT_FOUND: return 404;
    case ASIDE_ERR_TOO_LARGE: return 413;
    case ASIDE_ERR_BAD_VALUE: return 422;
    case ASIDE_ERR_CONFLICT: return 409;
    case ASIDE_ERR_DENIED: return 403;
    case ASIDE_ERR_SOR: return 502;
    case ASIDE_ERR_TIMEOUT: return 504;
    case ASIDE_ERR_NOMEM: return 503;
    case ASIDE_ERR_FULL: return 507;
    case ASIDE_ERR_WRONG_TYPE: return 409;
    default: return 500;
    }
}

const char *call_error_code(const aside_error *err)
{
    return err->code[0]                       ? err->code
           : err->status == ASIDE_ERR_INVALID ? "bad_request"
                                              : aside_status_name(err->status);
}

/* The API's errors, one row per HTTP status: the codes answered with it and when. README's
 * error table is printed from these rows (call_errors_markdown), and call_http_status is
 * checked against them by tests/server/test_call.c. */
static const call_error_row error_rows[] = {
    {400, ASIDE_ERR_INVALID, "`bad_request`, `bad_query`, `bad_pointer`, `not_a_frame`, "
     "`bad_spec`, `too_deep`, `bad_utf8`, `overflow`",
     "a bad parameter, body or path (absolute, `..`, control characters, over 1024 bytes, a "
     "part over 236 bytes, a symlink leading out of the SOR); SQL that DuckDB refuses; a "
     "malformed JSON pointer; a frame function or format for a value that is not a frame; a "
     "spec file that does not load; JSON nested deeper than `ASIDE_JSON_MAX_DEPTH` in a request, "
     "in what an operation would make, in a function's result, or in a `.json` file a read "
     "loads from the SOR (which is then not cached); a parameter or a collection's key that is "
     "not UTF-8; an increment past 64-bit integers or the largest real (nothing changed)"},
    {401, -1, "`unauthorized`",
     "a missing or wrong bearer token (when `ASIDE_TOKEN` or `ASIDE_TOKENS_FILE` is set), with "
     "`WWW-Authenticate`"},
    {403, ASIDE_ERR_DENIED, "`forbidden`, `access_denied`, or S3's own code (e.g. "
     "`AccessDenied`)",
     "`forbidden`: the token lacks the scope the function needs, or is limited to key prefixes "
     "and the call names another key, no key, or reaches every key; else the SOR refused "
     "access"},
    {404, ASIDE_ERR_NOT_FOUND, "`not_found`, `unknown_function`, `no_spec`, `empty`, "
     "`out_of_range`, `no_field`, `no_such_pointer`",
     "an unknown key, function or route; a spec function without a spec; what a collection "
     "operation looked for is not there"},
    {405, -1, "`method_not_allowed`", "a verb other than GET, HEAD, POST, PUT, DELETE"},
    {409, ASIDE_ERR_CONFLICT, "`conflict`, `wrong_type`",
     "a key clashing with a folder, a name that is one of the server's own functions; an "
     "operation for another type"},
    {413, ASIDE_ERR_TOO_LARGE, "`too_large`", "a body, value or result over a limit"},
    {422, ASIDE_ERR_BAD_VALUE, "`bad_value`", "an invalid value (a `.json` key that is not JSON)"},
    {431, -1, "`bad_request`", "request headers over the HTTP layer's limit"},
    {500, ASIDE_ERR_INTERNAL, "`internal`, `io_error`, `worker_died`, `worker_protocol`, "
     "`function_error`, `not_durable`",
     "the server failed: a disk error, a function worker that died, a user's function that "
     "raised; `worker_protocol`: a function's process answered out of turn (a reply to "
     "another request, bytes outside a reply) and was replaced; `not_durable`: under `ASIDE_FSYNC=always` the journal's sync failed, so the "
     "change is applied (reads see it) but not yet durable, until the journal is rewritten"},
    {502, ASIDE_ERR_SOR, "`sor_error`, or S3's own code", "the SOR failed"},
    {503, ASIDE_ERR_NOMEM, "`out_of_memory`, `too_many_open_files`, `busy`, `starting`",
     "the server is short of memory or of file descriptors for a moment, or is receiving "
     "`ASIDE_MAX_BODIES_IN_FLIGHT` bytes of request bodies already, or is still opening its "
     "cache (`starting`); the request changed nothing and may be retried after the "
     "`Retry-After` header's seconds"},
    {504, ASIDE_ERR_TIMEOUT, "`timeout`",
     "the SOR timed out, a query ran past `ASIDE_SQL_TIMEOUT`, a function past its deadline"},
    {507, ASIDE_ERR_FULL, "`full`, `function_out_of_memory`",
     "memory that cannot be evicted (pins, collections) is full; a function's worker ran out "
     "of `ASIDE_FUNCTION_MEMORY` (Python's `MemoryError`)"},
};

const call_error_row *call_error_rows(size_t *count)
{
    *count = sizeof error_rows / sizeof error_rows[0];
    return error_rows;
}

void call_errors_markdown(buf *b)
{
    buf_puts(b, "| status | code | when |\n|---|---|---|\n");
    for (size_t i = 0; i < sizeof error_rows / sizeof error_rows[0]; i++)
        buf_printf(b, "| %d | %s | %s |\n", error_rows[i].status, error_rows[i].codes,
                   error_rows[i].when);
}

void call_error(call *c, int status, const char *code, const char *message)
{
    http_response *res = c->res;
    if (status == HTTP_UNAVAILABLE && res->status != HTTP_UNAVAILABLE)
        buf_puts(&res->headers, HTTP_RETRY_AFTER);
    res->status = status;
    res->content_type = "application/json";
    buf_reset(&res->body);
    buf_puts(&res->body, "{\"error\": {\"code\": ");
    buf_put_json_string(&res->body, code, strlen(code));
    buf_puts(&res->body, ", \"message\": ");
    buf_put_json_string(&res->body, message, strlen(message));
    buf_puts(&res->body, "}}");
}

void call_status_error(call *c, const aside_error *err)
{
    call_error(c, call_http_status(err->status), call_error_code(err), err->message);
}

void call_out_of_memory(call *c)
{
    call_error(c, call_http_status(ASIDE_ERR_NOMEM), aside_status_name(ASIDE_ERR_NOMEM),
               "out of memory");
}

buf *call_envelope_begin(call *c)
{
    buf *b = &c->res->body;
    c->res->status = 200;
    c->res->content_type = "application/json";
    buf_puts(b, "{\"return\": {\"uri\": \"" CALL_API_URI "\", \"path\": ");
    if (c->path)
        buf_put_json_string(b, c->path, c->path_len);
    else
        buf_puts(b, "null");
    buf_puts(b, ", \"value\": ");
    return b;
}

void call_envelope_end(call *c) { buf_puts(&c->res->body, "}}"); }

void call_answer_json(call *c, const char *text)
{
    buf *b = call_envelope_begin(c);
    buf_puts(b, text);
    call_envelope_end(c);
}

void call_answer_success(call *c) { call_answer_json(c, "{\"result\": \"success\"}"); }

void call_put_time(buf *b, int64_t unix_ms)
{
    time_t sec = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char text[40];
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(b, "\"%s.%03dZ\"", text, (int)(unix_ms % 1000));
}

/* ---- parameters --------------------------------------------------------------------------- */

size_t call_json_max_depth(const call *c)
{
    unsigned configured = c->server->defaults.json_max_depth;
    return configured ? configured : VALUE_JSON_DEFAULT_DEPTH;
}

const char *call_param_value(const call *c, const char *name, size_t *len)
{
    for (size_t i = c->param_count; i-- > 0;) { /* the last one given wins */
        if (strcmp(c->params[i].name, name) == 0) {
            if (len)
                *len = c->params[i].value_len;
            return c->params[i].value;
        }
    }
    return NULL;
}

static bool param_add(call *c, char *name, char *value, size_t value_len, json_t *json)
{
    if (c->param_count == CALL_MAX_PARAMS) {
        free(name);
        free(value);
        return false;
    }
    c->params[c->param_count++] = (call_param){name, value, value_len, json_incref(json)};
    return true;
}

/* Percent-decode s[0..len) ('+' is a space) into a new string; NULL if malformed. */
static char *url_decode(const char *s, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[n++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < len ? text_hex_digit(s[i + 1]) : -1;
            int lo = i + 2 < len ? text_hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* One name=value pair of the query string. */
static bool query_pair(call *c, const char *pair, size_t pair_len, char *why, size_t why_len)
{
    const char *eq = memchr(pair, '=', pair_len);
    size_t name_len = eq ? (size_t)(eq - pair) : pair_len;
    size_t decoded_name_len = 0, value_len = 0;
    char *name = url_decode(pair, name_len, &decoded_name_len);
    char *value = eq ? url_decode(eq + 1, pair_len - name_len - 1, &value_len) : strdup("");
    if (!name || !value) {
        free(name);
        free(value);
        snprintf(why, why_len, "malformed percent-encoding in the query string");
        return false;
    }
    if (!param_add(c, name, value, value_len, NULL)) {
        snprintf(why, why_len, "more than %d parameters", CALL_MAX_PARAMS);
        return false;
    }
    return true;
}

static bool parse_query(call *c, const char *q, size_t len, char *why, size_t why_len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && q[i] != '&')
            continue;
        if (i > start && !query_pair(c, q + start, i - start, why, why_len))
            return false;
        start = i + 1;
    }
    return true;
}

/* A body member's text: a string as it is, a number or boolean as JSON; NULL when out of
 * memory. */
static char *scalar_text(json_t *v, size_t *len)
{
    char *text;
    if (json_is_string(v)) {
        *len = json_string_length(v);
        text = malloc(*len + 1);
        if (text) {
            memcpy(text, json_string_value(v), *len);
            text[*len] = '\0';
        }
        return text;
    }
    text = json_dumps(v, JSON_ENCODE_ANY);
    *len = text ? strlen(text) : 0;
    return text;
}

/* Turn one member of the body's "data" object into a parameter. */
static bool body_param(call *c, const char *name, json_t *v, char *why, size_t why_len)
{
    char *text = NULL;
    size_t len = 0;
    if (json_is_string(v) || json_is_integer(v) || json_is_real(v) || json_is_boolean(v)) {
        text = scalar_text(v, &len);
    } else if (json_is_null(v) && call_is_api_parameter(name)) {
        return true;
    } else if (json_is_null(v)) { /* an argument of an operation: null is a value */
        text = strdup("null");
        len = 4;
    } else if (!call_is_api_parameter(name)) { /* an array or object: for a user's function,
                                                  which gets the value itself; here, its text */
        text = json_dumps(v, JSON_COMPACT);
        len = text ? strlen(text) : 0;
    } else {
        snprintf(why, why_len, "parameter \"%s\" must be a string, number or boolean", name);
        return false;
    }
    char *name_copy = strdup(name);
    if (!text || !name_copy) {
        free(text);
        free(name_copy);
        snprintf(why, why_len, "out of memory");
        return false;
    }
    if (!param_add(c, name_copy, text, len, v)) {
        snprintf(why, why_len, "more than %d parameters", CALL_MAX_PARAMS);
        return false;
    }
    return true;
}

/* A member of "data" nested deeper than the depth limit; false when an error was answered. */
static bool body_depth_ok(call *c, json_t *v)
{
    aside_error err;
    if (value_json_check_depth(v, 0, call_json_max_depth(c), &err) == ASIDE_OK)
        return true;
    call_status_error(c, &err);
    return false;
}

/* The body's "data" members as parameters; false when an error was answered. */
static bool parse_body(call *c)
{
    char why[512];
    json_error_t error;
    json_t *doc = json_loadb(c->req->body, c->req->body_len, 0, &error);
    if (!doc && json_error_code(&error) == json_error_stack_overflow) {
        aside_error err;
        value_too_deep(&err, call_json_max_depth(c));
        call_status_error(c, &err);
        return false;
    }
    if (!doc) {
        snprintf(why, sizeof why, "malformed JSON body at line %d, column %d: %s", error.line,
                 error.column, error.text);
        call_error(c, 400, "bad_request", why);
        return false;
    }
    json_t *data = json_is_object(doc) ? json_object_get(doc, "data") : NULL;
    bool ok = data && json_is_object(data);
    if (!ok)
        call_error(c, 400, "bad_request", "the body must be a JSON object {\"data\": {...}}");
    const char *name;
    json_t *v;
    if (ok) {
        json_object_foreach(data, name, v) {
            if (!(ok = body_depth_ok(c, v)))
                break;
            if (!(ok = body_param(c, name, v, why, sizeof why))) {
                call_error(c, 400, "bad_request", why);
                break;
            }
        }
    }
    json_decref(doc);
    return ok;
}

bool call_choice(call *c, const char *name, const char *const *allowed, const char **out)
{
    const char *v = call_param_value(c, name, NULL);
    if (!v)
        return true;
    for (size_t i = 0; allowed[i]; i++) {
        if (strcasecmp(v, allowed[i]) == 0) {
            *out = allowed[i];
            return true;
        }
    }
    char message[256];
    snprintf(message, sizeof message, "parameter \"%s\" must be one of:", name);
    for (size_t i = 0; allowed[i]; i++) {
        strncat(message, " ", sizeof message - strlen(message) - 1);
        strncat(message, allowed[i], sizeof message - strlen(message) - 1);
    }
    call_error(c, 400, "bad_request", message);
    return false;
}

/* True if needle occurs in s[0..len), ignoring ASCII case. */
static bool contains_ci(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        if (strncasecmp(s + i, needle, n) == 0)
            return true;
    }
    return false;
}

bool call_accepts(const call *c, const char *needle)
{
    size_t len = 0;
    const char *accept = http_request_header(c->req, "Accept", &len);
    return accept && contains_ci(accept, len, needle);
}

bool call_need_path(call *c)
{
    if (c->path)
        return true;
    call_error(c, 400, "bad_request", "missing parameter \"path\" (or \"key\")");
    return false;
}

/* ---- preparing a call --------------------------------------------------------------------- */

static bool is_api_route(const char *path, size_t len)
{
    static const char *const routes[] = {CALL_API_URI, "/cache/api/v1.0", "/cache", "/cache/"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (len == strlen(routes[i]) && memcmp(path, routes[i], len) == 0)
            return true;
    }
    return false;
}

/* True if a and b are equal, in a time that does not depend on where they differ. */
static bool same_secret(const char *a, size_t a_len, const char *b)
{
    size_t b_len = strlen(b);
    unsigned char diff = (unsigned char)(a_len != b_len);
    for (size_t i = 0; i < a_len; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (b_len ? b_len : 1)]);
    return diff == 0;
}

/* The secret of "Authorization: Bearer <secret>", or NULL. */
static const char *bearer_secret(const call *c, size_t *len, bool *has_header)
{
    size_t header_len = 0;
    const char *auth = http_request_header(c->req, "Authorization", &header_len);
    static const char scheme[] = "Bearer ";
    size_t n = sizeof scheme - 1;
    *has_header = auth != NULL;
    if (!auth || header_len <= n || strncasecmp(auth, scheme, n) != 0)
        return NULL;
    *len = header_len - n;
    return auth + n;
}

/* Which token the secret is: from the tokens in force, else the bare defaults.token (a server
 * built by hand); false when it is none. */
static bool identify(call *c, const char *secret, size_t len)
{
    if (c->server->tokens) {
        c->token_set = tokens_acquire(c->server->tokens);
        c->token = tokens_set_match(c->token_set, secret, len);
        c->token_name = c->token ? c->token->name : NULL;
        c->token_scopes = c->token ? c->token->scopes : 0;
        return c->token != NULL;
    }
    if (!same_secret(secret, len, c->server->defaults.token))
        return false;
    c->token_name = "ASIDE_TOKEN";
    c->token_scopes = TOKENS_EVERY_SCOPE;
    return true;
}

/* With tokens configured, the request must bring one as a bearer token; false when a 401 was
 * answered. Scopes are the router's to ask (call_permitted). */
static bool authorized(call *c)
{
    const char *token = c->server->defaults.token;
    if (!c->server->tokens && (!token || !*token))
        return true;
    size_t len = 0;
    bool has_header = false;
    const char *secret = bearer_secret(c, &len, &has_header);
    if (secret && identify(c, secret, len))
        return true;
    call_error(c, 401, "unauthorized", has_header ? "the bearer token is not the server's"
                                                  : "this server asks for \"Authorization: "
                                                    "Bearer <token>\"");
    buf_puts(&c->res->headers, "WWW-Authenticate: Bearer realm=\"aside\"\r\n");
    return false;
}

bool call_authorize(call *c) { return authorized(c); }

static void answer_forbidden(call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void answer_forbidden(call *c, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    call_error(c, 403, "forbidden", why);
}

/* The token's prefixes as text: "a/, b/". */
static void prefixes_text(const tokens_entry *t, char *out, size_t out_len)
{
    out[0] = '\0';
    for (size_t i = 0; i < t->prefix_count; i++) {
        strncat(out, i ? ", " : "", out_len - strlen(out) - 1);
        strncat(out, t->prefixes[i], out_len - strlen(out) - 1);
    }
}

/* A token limited to prefixes: the call names keys under them only, and at least one. */
static bool keys_permitted(call *c, bool every_key)
{
    const tokens_entry *t = c->token;
    char prefixes[256];
    prefixes_text(t, prefixes, sizeof prefixes);
    const char *function = c->function ? c->function : call_function_name(c);
    if (every_key) {
        answer_forbidden(c, "the token \"%s\" is limited to keys under %s, and %s reaches "
                         "every key", t->name, prefixes, function);
        return false;
    }
    size_t prefix_len = 0;
    const char *prefix = call_param_value(c, "prefix", &prefix_len);
    bool named = c->path || prefix;
    if (named && (!c->path || tokens_entry_allows_key(t, c->path, c->path_len)) &&
        (!prefix || tokens_entry_allows_key(t, prefix, prefix_len)))
        return true;
    answer_forbidden(c, named ? "the token \"%s\" is limited to keys under %s"
                              : "the token \"%s\" is limited to keys under %s: name one",
                     t->name, prefixes);
    return false;
}

bool call_permitted(call *c, unsigned scopes, bool every_key)
{
    if (!c->token_name)
        return true;
    unsigned missing = scopes & ~c->token_scopes;
    if (missing) {
        const char *function = c->function ? c->function : call_function_name(c);
        answer_forbidden(c, "%s needs the scope %s, which the token \"%s\" lacks (it has %s)",
                         function, tokens_scopes_text(missing), c->token_name,
                         tokens_scopes_text(c->token_scopes));
        return false;
    }
    return !c->token || c->token->prefix_count == 0 || keys_permitted(c, every_key);
}

/* "parameter "type" must be one of: bytes, json, ...", from the registry of value types. */
static void answer_bad_type(call *c)
{
    buf message = {0};
    buf_puts(&message, "parameter \"type\" must be one of:");
    for (size_t i = 0; value_kind_name(i); i++)
        buf_printf(&message, "%s %s", i ? "," : "", value_kind_name(i));
    if (message.failed)
        call_out_of_memory(c);
    else
        call_error(c, 400, "bad_request", message.data);
    buf_free(&message);
}

/* max_age and stale_if_error, from the request or the server's defaults. */
static bool freshness_options(call *c, char *why, size_t why_len)
{
    const char *max_age = call_param_value(c, "max_age", NULL);
    const char *stale = call_param_value(c, "stale_if_error", NULL);
    c->options.max_age_s = c->server->defaults.max_age_s;
    c->options.stale_if_error = c->server->defaults.stale_if_error;
    if (max_age) {
        char *end = NULL;
        unsigned long v = strtoul(max_age, &end, 10);
        if (!*max_age || *end || v > UINT32_MAX || max_age[0] == '-') {
            snprintf(why, why_len, "parameter \"max_age\" must be a whole number of seconds");
            return false;
        }
        c->options.max_age_s = (unsigned)v;
    }
    if (stale) {
        bool yes = strcasecmp(stale, "true") == 0 || strcmp(stale, "1") == 0;
        if (!yes && strcasecmp(stale, "false") != 0 && strcmp(stale, "0") != 0) {
            snprintf(why, why_len, "parameter \"stale_if_error\" must be true or false");
            return false;
        }
        c->options.stale_if_error = yes;
    }
    return true;
}

/* The route, the token and the verb; false when an error was answered. */
static bool check_request(call *c, size_t path_len)
{
    const http_request *req = c->req;
    char why[512];
    if (!is_api_route(req->target, path_len)) {
        snprintf(why, sizeof why, "no such route: %.*s (the API is at " CALL_API_URI ")",
                 (int)(path_len > 200 ? 200 : path_len), req->target);
        call_error(c, 404, "not_found", why);
        return false;
    }
    if (!authorized(c))
        return false;
    if (req->method == HTTP_METHOD_OTHER) {
        snprintf(why, sizeof why, "method %s is not allowed", req->method_name);
        call_error(c, 405, "method_not_allowed", why);
        buf_puts(&c->res->headers, "Allow: GET, HEAD, POST, PUT, DELETE\r\n");
        return false;
    }
    return true;
}

/* The functions whose body is the value they store, not parameters. */
static const char *const raw_body_functions[] = {"write", "put", NULL};

/* The query's and the body's parameters; false when an error was answered. */
static bool read_parameters(call *c, const char *query, size_t query_len)
{
    const http_request *req = c->req;
    char why[512];
    if (query && !parse_query(c, query, query_len, why, sizeof why)) {
        call_error(c, 400, "bad_request", why);
        return false;
    }
    const char *function = call_param_value(c, "function", NULL);
    c->raw_body = function && text_in_list(function, raw_body_functions);
    return req->body_len == 0 || req->method == HTTP_METHOD_GET || c->raw_body ||
           parse_body(c);
}

/* storage, type, max_age, stale_if_error and the path; false when an error was answered. */
static bool read_options(call *c)
{
    char why[512];
    c->options.storage = call_param_value(c, "storage", NULL);
    c->options.type = call_param_value(c, "type", NULL);
    aside_value_type ignored;
    if (c->options.type && aside_value_type_parse(c->options.type, &ignored) != ASIDE_OK) {
        answer_bad_type(c);
        return false;
    }
    if (!freshness_options(c, why, sizeof why)) {
        call_error(c, 400, "bad_request", why);
        return false;
    }
    size_t len = 0;
    c->path = call_param_value(c, "path", &len);
    if (!c->path)
        c->path = call_param_value(c, "key", &len);
    c->path_len = len;
    aside_error err;
    if (c->path && aside_key_check(c->path, len, &err) != ASIDE_OK) {
        snprintf(why, sizeof why, "bad path: %s", err.message);
        c->path = NULL;
        call_error(c, 400, "bad_request", why);
        return false;
    }
    return true;
}

void call_init(call *c, const server *s, const http_request *req, http_response *res)
{
    memset(c, 0, sizeof *c);
    c->req = req;
    c->res = res;
    c->server = s;
    c->started_ns = clock_mono_ns();
}

bool call_prepare(call *c)
{
    const http_request *req = c->req;
    const char *q = memchr(req->target, '?', req->target_len);
    size_t path_len = q ? (size_t)(q - req->target) : req->target_len;
    return check_request(c, path_len) &&
           read_parameters(c, q ? q + 1 : NULL, q ? req->target_len - path_len - 1 : 0) &&
           read_options(c);
}

static const char *default_function(http_method_kind method)
{
    switch (method) {
    case HTTP_METHOD_POST: return "create";
    case HTTP_METHOD_PUT: return "update";
    case HTTP_METHOD_DELETE: return "delete";
    case HTTP_METHOD_HEAD: return "head";
    default: return "read";
    }
}

const char *call_function_name(const call *c)
{
    const char *name = c->req->method == HTTP_METHOD_HEAD ? "head"
                                                          : call_param_value(c, "function", NULL);
    return name && *name ? name : default_function(c->req->method);
}

void call_note_source(call *c, aside_source source)
{
    c->source = source == ASIDE_SOURCE_MEMORY ? "memory"
                : source == ASIDE_SOURCE_DISK ? "disk" : "sor";
}

void call_finish(call *c)
{
    http_record_note(c->res->record, c->function, c->path, c->path ? c->path_len : 0,
                     c->token_name, c->source);
    c->res->omit_body = c->req->method == HTTP_METHOD_HEAD;
    for (size_t i = 0; i < c->param_count; i++) {
        free(c->params[i].name);
        free(c->params[i].value);
        json_decref(c->params[i].json);
    }
    c->param_count = 0;
    tokens_set_release(c->token_set);
    c->token_set = NULL;
    c->token = NULL;
}
