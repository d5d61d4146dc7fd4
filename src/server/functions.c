/* functions.c -- the API's side of users' Python functions: calls, and function_create,
 * function_register, function_delete, functions and function_stats.
 *
 * A call of a user's function sends the call's parameters (those call_function_gets) to a
 * worker of the pool (function_pool.h) and answers its reply: a JSON value in the envelope,
 * bytes (base64 in the envelope, or bare with return=data), a DataFrame as reply.c answers
 * frames; a failure keeps the status, type, message, traceback and printed output the worker
 * sent (`worker_died` and `worker_protocol` when it says one of its processes died or broke
 * the protocol); a request that got no reply is 504 `timeout` or 500 `worker_died` or
 * `worker_protocol` (function_pool.h says when). A JSON
 * result nested deeper than the depth limit (ASIDE_JSON_MAX_DEPTH) is refused (400 too_deep),
 * as any deep JSON is. Sources are compiled by a worker (never run) before they are saved.
 * Everything here waits on a worker or a file: the router runs it on the blocking pool. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arrow/arrow.h"
#include "frame/frame.h"
#include "functions.h"
#include "reply.h"
#include "value/value.h"

/* The call's arguments: a POST body's "data" members as JSON (text false), else the query's
 * parameters as text (text true). NULL when a parameter is not UTF-8 (answered 400 bad_utf8:
 * the worker is sent JSON) or out of memory (answered). */
static json_t *arguments_of(call *c, bool *text)
{
    for (size_t i = 0; i < c->param_count; i++) {
        const call_param *p = &c->params[i];
        if (!p->json && call_function_gets(p->name) &&
            (!value_utf8_valid(p->name, strlen(p->name)) ||
             !value_utf8_valid(p->value, p->value_len))) {
            call_error(c, 400, "bad_utf8", "a parameter is not UTF-8, as a function's "
                                           "arguments must be");
            return NULL;
        }
    }
    json_t *args = json_object();
    if (!args) {
        call_out_of_memory(c);
        return NULL;
    }
    json_t *doc = c->req->body_len && c->req->method != HTTP_METHOD_GET
                      ? json_loadb(c->req->body, c->req->body_len, 0, NULL) : NULL;
    json_t *data = json_object_get(doc, "data");
    const char *name;
    json_t *v;
    *text = !json_is_object(data);
    if (!*text) {
        json_object_foreach(data, name, v) {
            if (call_function_gets(name))
                json_object_set(args, name, v);
        }
    }
    for (size_t i = 0; *text && i < c->param_count; i++) {
        if (call_function_gets(c->params[i].name))
            json_object_set_new(args, c->params[i].name,
                                json_stringn(c->params[i].value, c->params[i].value_len));
    }
    json_decref(doc);
    return args;
}

static unsigned timeout_ms_of(call *c)
{
    const char *t = call_param_value(c, "timeout", NULL);
    double s = t ? strtod(t, NULL) : 0;
    return s > 0 && s < 1e6 ? (unsigned)(s * 1000) : 0;
}

/* The code of a failed reply: what its worker reported (a function's process that died or
 * broke the protocol), else what its status means. */
static const char *function_error_code(json_t *error, json_int_t status)
{
    const char *reported = json_string_value(json_object_get(error, "code"));
    if (status == 500 && reported &&
        (!strcmp(reported, "worker_died") || !strcmp(reported, "worker_protocol")))
        return reported;
    return status == 404 ? "not_found" : status == 400 ? "bad_request"
           : status == 507 ? "function_out_of_memory" : "function_error";
}

/* Answer a failed reply: its status, type, message, the user's traceback lines and the last
 * lines the call printed. */
static void answer_function_error(call *c, json_t *error)
{
    json_int_t status = json_integer_value(json_object_get(error, "status"));
    if (status < 400 || status > 599)
        status = 500;
    json_t *body = json_pack("{s:{s:s, s:O?, s:O?, s:O?}}", "error", "code",
                             function_error_code(error, status),
                             "message", json_object_get(error, "message"), "type",
                             json_object_get(error, "type"), "traceback",
                             json_object_get(error, "traceback"));
    json_t *output = json_object_get(error, "output");
    if (body && json_is_array(output))
        json_object_set(json_object_get(body, "error"), "output", output);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    c->res->status = (int)status;
    c->res->content_type = "application/json";
    buf_reset(&c->res->body);
    buf_puts(&c->res->body, text ? text : "{\"error\": {\"code\": \"function_error\"}}");
    free(text);
    json_decref(body);
}

/* Answer a request that got no reply: 504 timeout, 500 worker_died or worker_protocol. */
static void answer_failure(call *c, const function_reply *r, const aside_error *err,
                           const char *fallback)
{
    if (r->failure == FUNCTION_TIMEOUT)
        call_error(c, 504, "timeout", err->message);
    else
        call_error(c, 500, r->failure == FUNCTION_PROTOCOL ? "worker_protocol" : "worker_died",
                   err->status != ASIDE_OK ? err->message : fallback);
}

/* A JSON result nested deeper than the depth limit; false when an error was answered. */
static bool result_depth_ok(call *c, function_reply *r)
{
    aside_error err;
    if (value_json_check_depth(json_object_get(r->header, "value"), 0,
                               call_json_max_depth(c), &err) == ASIDE_OK)
        return true;
    char message[ASIDE_ERROR_MESSAGE_MAX + 32];
    snprintf(message, sizeof message, "the function's result: %s", err.message);
    call_error(c, call_http_status(err.status), call_error_code(&err), message);
    return false;
}

static void answer_reply_value(call *c, function_reply *r)
{
    const char *kind = json_string_value(json_object_get(r->header, "kind"));
    aside_error err;
    if (!result_depth_ok(c, r))
        return;
    if (kind && strcmp(kind, "frame") == 0) {
        frame *f = NULL;
        if (arrow_decode(r->payload ? r->payload : "", r->payload_bytes, &f, &err) != ASIDE_OK) {
            call_status_error(c, &err);
            return;
        }
        reply_frame(c, f, "records", false);
        frame_release(f);
        return;
    }
    const char *ret = call_param_value(c, "return", NULL);
    if (kind && strcmp(kind, "bytes") == 0 && ret && strcmp(ret, "data") == 0) {
        c->res->status = 200;
        c->res->content_type = "application/octet-stream";
        buf_append(&c->res->body, r->payload, r->payload_bytes);
        return;
    }
    buf *b = call_envelope_begin(c);
    if (kind && strcmp(kind, "bytes") == 0) {
        buf_putc(b, '"');
        buf_put_base64(b, r->payload, r->payload_bytes);
        buf_putc(b, '"');
    } else {
        char *text = json_dumps(json_object_get(r->header, "value"),
                                JSON_COMPACT | JSON_ENCODE_ANY);
        buf_puts(b, text ? text : "null");
        free(text);
    }
    call_envelope_end(c);
}

/* Send request to a worker and answer its reply with answer (or the error). */
static void run_request(call *c, json_t *request, unsigned timeout_ms,
                        void (*answer)(call *c, function_reply *r))
{
    function_reply r;
    aside_error err;
    aside_status st = function_pool_request(c->server->functions, request, timeout_ms, &r, &err);
    json_decref(request);
    if (st != ASIDE_OK) {
        answer_failure(c, &r, &err, "the function's worker failed");
        return;
    }
    if (json_is_true(json_object_get(r.header, "ok")))
        answer(c, &r);
    else
        answer_function_error(c, json_object_get(r.header, "error"));
    function_reply_clear(&r);
}

void functions_call(call *c)
{
    bool text = true;
    json_t *args = arguments_of(c, &text);
    if (!args)
        return;
    json_t *request = json_pack("{s:s, s:s, s:o, s:b}", "op", "call", "function", c->function, "args",
                                args, "text", text);
    if (!request) {
        call_out_of_memory(c);
        return;
    }
    run_request(c, request, timeout_ms_of(c), answer_reply_value);
}

static void answer_saved(call *c, const char *name)
{
    buf *b = call_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"function\": ");
    buf_put_json_string(b, name, strlen(name));
    buf_putc(b, '}');
    call_envelope_end(c);
}

/* Check source with a worker (compiling only), then save it as name's file. */
static void check_and_save(call *c, const char *name, const char *source, size_t len)
{
    json_t *request = json_pack("{s:s, s:s%}", "op", "check", "source", source, len);
    function_reply r = {0};
    aside_error err = {0};
    if (!request) {
        call_out_of_memory(c);
        return;
    }
    if (function_pool_request(c->server->functions, request, 0, &r, &err) != ASIDE_OK) {
        json_decref(request);
        answer_failure(c, &r, &err, "the function's worker failed");
        return;
    }
    json_decref(request);
    if (!json_is_true(json_object_get(r.header, "ok")))
        answer_function_error(c, json_object_get(r.header, "error"));
    else if (function_pool_save(c->server->functions, name, source, len, &err) != ASIDE_OK)
        call_status_error(c, &err);
    else
        answer_saved(c, name);
    function_reply_clear(&r);
}

static bool valid_new_name(call *c, const char *name)
{
    if (!text_is_identifier(name)) {
        call_error(c, 400, "bad_request", "parameter \"function_name\" must be a Python "
                                         "identifier");
        return false;
    }
    if (c->server->is_own_function && c->server->is_own_function(name)) {
        call_error(c, 409, "conflict", "that name is one of the server's own functions");
        return false;
    }
    return true;
}

/* Whether text is what URL-quoting leaves: only the characters quoting keeps as they are
 * (letters, digits, "_.-~/") and well-formed %XX escapes. Python source always has a space,
 * a newline or a bracket somewhere; quoted, it has none of them. */
static bool looks_quoted(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '%') {
            if (i + 2 >= len || text_hex_digit(text[i + 1]) < 0 || text_hex_digit(text[i + 2]) < 0)
                return false;
            i += 2;
        } else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || strchr("_.-~/", ch))) {
            return false;
        }
    }
    return true;
}

/* Decode text's %XX escapes (no '+': quoting writes a space as %20) into a new string, or NULL
 * when out of memory. text must be one that looks_quoted. */
static char *unquote(const char *text, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; out && i < len; i++) {
        if (text[i] == '%') {
            out[n++] = (char)(text_hex_digit(text[i + 1]) * 16 + text_hex_digit(text[i + 2]));
            i += 2;
        } else {
            out[n++] = text[i];
        }
    }
    if (out)
        out[n] = '\0';
    *out_len = n;
    return out;
}

/* function_create: the source from "function_body". The original client URL-quotes the source
 * itself and then sends it as a query parameter, so it arrives quoted once more than the query
 * string's own encoding: a query's body that looks_quoted is unquoted once more. One with a
 * raw space, newline or bracket was sent once-encoded and is taken as it is, as is a JSON
 * body's string, whatever it holds. */
void functions_create(call *c)
{
    const char *name = call_param_value(c, "function_name", NULL);
    const call_param *body = NULL;
    for (size_t i = c->param_count; i-- > 0 && !body;) { /* the last one given wins */
        if (!strcmp(c->params[i].name, "function_body"))
            body = &c->params[i];
    }
    if (!valid_new_name(c, name))
        return;
    if (!body) {
        call_error(c, 400, "bad_request", "missing parameter \"function_body\"");
        return;
    }
    if (body->json || !looks_quoted(body->value, body->value_len)) {
        check_and_save(c, name, body->value, body->value_len);
        return;
    }
    size_t len = 0;
    char *source = unquote(body->value, body->value_len, &len);
    if (!source)
        call_out_of_memory(c);
    else
        check_and_save(c, name, source, len);
    free(source);
}

/* function_register: NAME.py from the system of record's function folder. */
void functions_register(call *c)
{
    const char *name = call_param_value(c, "function_name", NULL);
    char base[128] = "";
    if (!name && c->path) { /* path=echo.py or path=echo */
        const char *slash = strrchr(c->path, '/');
        snprintf(base, sizeof base, "%s", slash ? slash + 1 : c->path);
        char *dot = strstr(base, ".py");
        if (dot && dot[3] == '\0')
            *dot = '\0';
        name = base;
    }
    if (!valid_new_name(c, name))
        return;
    char *source = NULL;
    size_t len = 0;
    aside_error err;
    if (function_pool_read_remote(c->server->functions, c->server->cache, name, &c->options,
                                  &source, &len, &err) != ASIDE_OK)
        call_status_error(c, &err);
    else
        check_and_save(c, name, source, len);
    free(source);
}

void functions_delete(call *c)
{
    const char *name = call_param_value(c, "function_name", NULL);
    if (!name)
        name = call_param_value(c, "name", NULL);
    char path[4096];
    if (!text_is_identifier(name)) {
        call_error(c, 400, "bad_request", "parameter \"function_name\" must be a Python "
                                         "identifier");
        return;
    }
    function_pool_path(c->server->functions, name, path, sizeof path);
    if (unlink(path) != 0) {
        call_error(c, errno == ENOENT ? 404 : 500, errno == ENOENT ? "not_found" : "io_error",
                  errno == ENOENT ? "no such function" : strerror(errno));
        return;
    }
    answer_saved(c, name);
}

void functions_list(call *c)
{
    json_t *request = json_pack("{s:s}", "op", "describe");
    run_request(c, request, 0, answer_reply_value);
}

void functions_stats(call *c)
{
    json_t *request = json_pack("{s:s}", "op", "stats");
    run_request(c, request, 0, answer_reply_value);
}

bool functions_exists(const call *c, const char *name)
{
    char path[4096];
    if (!text_is_identifier(name))
        return false;
    function_pool_path(c->server->functions, name, path, sizeof path);
    return access(path, R_OK) == 0;
}
