/* collections.c -- the API's operations on what the cache alone holds.
 *
 * Collections (list_*, set_*, map_*, counter_*) and JSON documents (json_*) are one generic
 * function here: the call's parameters become a JSON object of arguments and aside_op runs the
 * operation by name; its answer is the envelope's value. Argument values are JSON: in a POST
 * body they keep their JSON type; in a query string a value is parsed as JSON and taken as a
 * string when it does not parse ("value=abc" is "abc", "value=5" is 5). Names and pointers
 * ("field", "pointer", "end") are always strings, and "keys" may be a comma-separated list.
 * Query text that is not UTF-8 is refused (bad_utf8) rather than taken as something else; how
 * deep a value may nest, the library checks (too_deep).
 *
 * Beside them: expire, persist, ttl, pin, unpin, evict and compact, the operator's commands.
 * Operations that change data run on the blocking pool when the fsync policy makes them wait
 * for the disk; JSON operations may read a document through from the system of record. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collections.h"
#include "util/util.h"
#include "value/value.h"

/* Arguments whose query-string value is always text, never parsed as JSON. */
static const char *const text_arguments[] = {"field", "pointer", "end", NULL};

/* "a,b,c" as ["a", "b", "c"]. */
static json_t *split_keys(const char *text)
{
    json_t *keys = json_array();
    for (const char *at = text; keys && *at;) {
        const char *comma = strchr(at, ',');
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        if (len)
            json_array_append_new(keys, json_stringn(at, len));
        at += len + (comma != NULL);
    }
    return keys;
}

/* A parameter that is not UTF-8 (name NULL: its name is not). */
static aside_status not_utf8(aside_error *err, const char *name)
{
    aside_status st = name ? error_set(err, ASIDE_ERR_INVALID, "parameter \"%.100s\" is not "
                                       "UTF-8, as JSON text must be", name)
                           : error_set(err, ASIDE_ERR_INVALID, "a parameter's name is not "
                                       "UTF-8, as JSON text must be");
    snprintf(err->code, sizeof err->code, "bad_utf8");
    return st;
}

/* One query-string parameter as a JSON value (*out, new reference). Text that is not UTF-8 is
 * bad_utf8: it can be neither JSON nor a JSON string. */
static aside_status query_value(const call *c, const call_param *p, json_t **out,
                                aside_error *err)
{
    if (!value_utf8_valid(p->name, strlen(p->name)))
        return not_utf8(err, NULL);
    if (!value_utf8_valid(p->value, p->value_len))
        return not_utf8(err, p->name);
    json_error_t error;
    json_t *v = text_in_list(p->name, text_arguments)
                    ? NULL
                    : json_loadb(p->value, p->value_len, JSON_DECODE_ANY, &error);
    if (!v && !text_in_list(p->name, text_arguments) &&
        json_error_code(&error) == json_error_stack_overflow)
        return value_too_deep(err, call_json_max_depth(c));
    if (!v && strcmp(p->name, "keys") == 0)
        v = split_keys(p->value);
    *out = v ? v : json_stringn(p->value, p->value_len);
    return *out ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}

/* A POST body's value as it is ("keys" as a comma-separated string becomes a list). */
static json_t *body_value(const call_param *p)
{
    if (!json_is_string(p->json) || strcmp(p->name, "keys") != 0)
        return json_incref(p->json);
    return split_keys(json_string_value(p->json));
}

/* The operation's arguments as JSON text (*text, malloc'd). */
static aside_status call_arguments(const call *c, char **text, aside_error *err)
{
    json_t *args = json_object();
    aside_status st = args ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == ASIDE_OK && i < c->param_count; i++) {
        const call_param *p = &c->params[i];
        if (!call_operation_gets(p->name))
            continue;
        json_t *v = NULL;
        if (p->json && !(v = body_value(p)))
            st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        else if (!p->json)
            st = query_value(c, p, &v, err);
        if (st == ASIDE_OK && json_object_set_new(args, p->name, v) != 0)
            st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    *text = st == ASIDE_OK ? json_dumps(args, JSON_COMPACT) : NULL;
    if (st == ASIDE_OK && !*text)
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    json_decref(args);
    return st;
}

void collections_operation(call *c)
{
    const char *op = c->function;
    char *args_text = NULL;
    aside_error err;
    if (call_arguments(c, &args_text, &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    char *result = NULL;
    if (aside_op(c->server->cache, c->path, op, args_text, &result, &err) != ASIDE_OK)
        call_status_error(c, &err);
    else
        call_answer_json(c, result);
    free(args_text);
    free(result);
}

/* ---- times to live, pins, eviction -------------------------------------------------------- */

void collections_expire(call *c)
{
    if (!call_need_path(c))
        return;
    const char *text = call_param_value(c, "seconds", NULL);
    char *end = NULL;
    double seconds = text ? strtod(text, &end) : 0;
    if (!text || !*text || *end || !(seconds > 0) || !isfinite(seconds) || seconds > 1e10) {
        call_error(c, 400, "bad_request", "expire needs \"seconds\": a number above 0 (persist "
                                         "removes a time to live)");
        return;
    }
    aside_error err;
    uint64_t ms = (uint64_t)(seconds * 1000.0);
    if (aside_expire(c->server->cache, c->path, ms ? ms : 1, &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    buf *b = call_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"expires\": ");
    call_put_time(b, clock_unix_ms() + (int64_t)(ms ? ms : 1));
    buf_putc(b, '}');
    call_envelope_end(c);
}

void collections_persist(call *c)
{
    aside_error err;
    if (!call_need_path(c))
        return;
    if (aside_expire(c->server->cache, c->path, 0, &err) != ASIDE_OK)
        call_status_error(c, &err);
    else
        call_answer_success(c);
}

void collections_ttl(call *c)
{
    aside_error err;
    int64_t ms = 0;
    if (!call_need_path(c))
        return;
    if (aside_ttl(c->server->cache, c->path, &ms, &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    buf *b = call_envelope_begin(c);
    if (ms < 0)
        buf_puts(b, "null");
    else
        buf_printf(b, "%.3f", (double)ms / 1000.0);
    call_envelope_end(c);
}

typedef aside_status (*key_command)(aside_cache *cache, const char *key, aside_error *err);

static void run_key_command(call *c, key_command command)
{
    aside_error err;
    if (!call_need_path(c))
        return;
    if (command(c->server->cache, c->path, &err) != ASIDE_OK)
        call_status_error(c, &err);
    else
        call_answer_success(c);
}

void collections_pin(call *c)
{
    aside_error err;
    if (!call_need_path(c))
        return;
    if (aside_pin(c->server->cache, c->path, &c->options, &err) != ASIDE_OK)
        call_status_error(c, &err);
    else
        call_answer_success(c);
}

void collections_unpin(call *c) { run_key_command(c, aside_unpin); }

void collections_evict(call *c) { run_key_command(c, aside_evict); }

void collections_compact(call *c)
{
    aside_error err;
    if (aside_compact(c->server->cache, &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    aside_stats stats;
    aside_stats_get(c->server->cache, &stats);
    buf *b = call_envelope_begin(c);
    buf_printf(b, "{\"result\": \"success\", \"log_bytes\": %llu}",
               (unsigned long long)stats.log_bytes);
    call_envelope_end(c);
}

/* ---- blocking ----------------------------------------------------------------------------- */

bool collections_operation_blocks(const server *s, const char *op)
{
    aside_value_type type;
    bool writes = false;
    if (collection_is_set_algebra(op) || !collection_op_info(op, &type, &writes))
        return false;
    return type == ASIDE_TYPE_JSON || (writes && s->defaults.fsync == ASIDE_FSYNC_ALWAYS);
}
