/* collections.c -- the API's operations on what the cache alone holds.
 *
 * Collections (list_*, set_*, map_*, counter_*) and JSON documents (json_*) are one generic
 * function here: the call's parameters become a JSON object of arguments and aside_op runs the
 * operation by name; its answer is the envelope's value. Argument values are JSON: in a POST
 * body they keep their JSON type; in a query string a value is parsed as JSON and taken as a
 * string when it does not parse ("value=abc" is "abc", "value=5" is 5). Names and pointers
 * ("field", "pointer", "end") are always strings, and "keys" may be a comma-separated list.
 *
 * Beside them: expire, persist, ttl, pin, unpin, evict and compact, the operator's commands.
 * Operations that change data run on the blocking pool when the fsync policy makes them wait
 * for the disk; JSON operations may read a document through from the system of record. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "util/util.h"
#include "value/value.h"

/* Parameters of the API itself, never arguments of an operation. */
static bool reserved(const char *name)
{
    static const char *const names[] = {"function", "path", "key", "storage", "type", "return",
                                        "format", "time", "max_age", "stale_if_error", NULL};
    for (size_t i = 0; names[i]; i++) {
        if (strcmp(names[i], name) == 0)
            return true;
    }
    return false;
}

static bool always_text(const char *name)
{
    return strcmp(name, "field") == 0 || strcmp(name, "pointer") == 0 ||
           strcmp(name, "end") == 0;
}

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

/* One query-string parameter as a JSON value. */
static json_t *query_value(const api_param_t *p)
{
    if (always_text(p->name))
        return json_stringn(p->value, p->value_len);
    json_t *v = json_loadb(p->value, p->value_len, JSON_DECODE_ANY, NULL);
    if (!v && strcmp(p->name, "keys") == 0)
        return split_keys(p->value);
    return v ? v : json_stringn(p->value, p->value_len);
}

static json_t *call_arguments(const api_call *c)
{
    json_t *args = json_object();
    for (size_t i = 0; args && i < c->param_count; i++) {
        const api_param_t *p = &c->params[i];
        if (reserved(p->name))
            continue;
        json_t *v = p->json ? json_incref(p->json) : query_value(p);
        if (v && json_is_string(v) && strcmp(p->name, "keys") == 0 && p->json) {
            json_t *keys = split_keys(json_string_value(v));
            json_decref(v);
            v = keys;
        }
        json_object_set_new(args, p->name, v ? v : json_null());
    }
    return args;
}

static void answer_json_text(api_call *c, const char *text)
{
    buf *b = api_envelope_begin(c);
    buf_puts(b, text);
    api_envelope_end(c);
}

static void answer_success(api_call *c)
{
    answer_json_text(c, "{\"result\": \"success\"}");
}

static void fn_operation(api_call *c)
{
    const char *op = api_param(c, "function", NULL);
    json_t *args = call_arguments(c);
    char *args_text = args ? json_dumps(args, JSON_COMPACT) : NULL;
    json_decref(args);
    if (!args_text) {
        api_error(c, 503, "out_of_memory", "out of memory");
        return;
    }
    char *result = NULL;
    aside_error err;
    if (aside_op(c->api->cache, c->path, op, args_text, &result, &err) != ASIDE_OK)
        api_status_error(c, &err);
    else
        answer_json_text(c, result);
    free(args_text);
    free(result);
}

/* ---- times to live, pins, eviction -------------------------------------------------------- */

static void fn_expire(api_call *c)
{
    if (!api_need_path(c))
        return;
    const char *text = api_param(c, "seconds", NULL);
    char *end = NULL;
    double seconds = text ? strtod(text, &end) : 0;
    if (!text || !*text || *end || !(seconds > 0) || !isfinite(seconds) || seconds > 1e10) {
        api_error(c, 400, "bad_request", "expire needs \"seconds\": a number above 0 (persist "
                                         "removes a time to live)");
        return;
    }
    aside_error err;
    uint64_t ms = (uint64_t)(seconds * 1000.0);
    if (aside_expire(c->api->cache, c->path, ms ? ms : 1, &err) != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    buf *b = api_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"expires\": ");
    api_put_time(b, clock_unix_ms() + (int64_t)(ms ? ms : 1));
    buf_putc(b, '}');
    api_envelope_end(c);
}

static void fn_persist(api_call *c)
{
    aside_error err;
    if (!api_need_path(c))
        return;
    if (aside_expire(c->api->cache, c->path, 0, &err) != ASIDE_OK)
        api_status_error(c, &err);
    else
        answer_success(c);
}

static void fn_ttl(api_call *c)
{
    aside_error err;
    int64_t ms = 0;
    if (!api_need_path(c))
        return;
    if (aside_ttl(c->api->cache, c->path, &ms, &err) != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    buf *b = api_envelope_begin(c);
    if (ms < 0)
        buf_puts(b, "null");
    else
        buf_printf(b, "%.3f", (double)ms / 1000.0);
    api_envelope_end(c);
}

typedef aside_status (*key_command)(aside_cache *cache, const char *key, aside_error *err);

static void run_key_command(api_call *c, key_command command)
{
    aside_error err;
    if (!api_need_path(c))
        return;
    if (command(c->api->cache, c->path, &err) != ASIDE_OK)
        api_status_error(c, &err);
    else
        answer_success(c);
}

static void fn_pin(api_call *c)
{
    aside_error err;
    if (!api_need_path(c))
        return;
    if (aside_pin(c->api->cache, c->path, &c->options, &err) != ASIDE_OK)
        api_status_error(c, &err);
    else
        answer_success(c);
}

static void fn_unpin(api_call *c) { run_key_command(c, aside_unpin); }

static void fn_evict(api_call *c) { run_key_command(c, aside_evict); }

static void fn_compact(api_call *c)
{
    aside_error err;
    if (aside_compact(c->api->cache, &err) != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    aside_stats stats;
    aside_stats_get(c->api->cache, &stats);
    buf *b = api_envelope_begin(c);
    buf_printf(b, "{\"result\": \"success\", \"log_bytes\": %llu}",
               (unsigned long long)stats.log_bytes);
    api_envelope_end(c);
}

/* ---- the table ---------------------------------------------------------------------------- */

typedef struct command_row {
    const char *name;
    api_run     run;
    bool        may_block;
} command_row;

static const command_row commands[] = {
    {"expire", fn_expire, true}, {"persist", fn_persist, true}, {"ttl", fn_ttl, false},
    {"pin", fn_pin, true},       {"unpin", fn_unpin, true},     {"evict", fn_evict, false},
    {"free", fn_evict, false},
    {"compact", fn_compact, true},
};

void collections_append_names(buf *b)
{
    for (size_t i = 0; collection_op_name(i); i++)
        buf_printf(b, ", %s", collection_op_name(i));
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        buf_printf(b, ", %s", commands[i].name);
}

api_run collections_function(const char *name, const api_call *c, bool *may_block)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            *may_block = commands[i].may_block;
            return commands[i].run;
        }
    }
    aside_value_type type;
    bool writes = false;
    if (collection_is_set_algebra(name)) {
        *may_block = false;
        return fn_operation;
    }
    if (!collection_op_info(name, &type, &writes))
        return NULL;
    *may_block = type == ASIDE_TYPE_JSON || (writes && c->api->defaults.fsync ==
                                                           ASIDE_FSYNC_ALWAYS);
    return fn_operation;
}
