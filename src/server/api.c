/* api.c -- the REST API at /cache/api/v1.0/, compatible with the original Flask server.
 *
 * A request names a function and its parameters, in the query string or in a JSON body
 * {"data": {...}} (the body wins); without a function the HTTP verb chooses one (GET read,
 * POST create, PUT update, DELETE delete, HEAD telemetry). Each function is a row of the
 * functions table; adding one is adding a row.
 *
 * Answers are {"return": {"uri", "path", "value"}} envelopes, or {"error": {"code", "message"}}
 * with a fitting status. With format=raw (or an Accept header that does not take JSON) a read
 * answers the value's bytes alone, sent straight from the cache without a copy: the fast path.
 * The envelope is built by hand, not through a JSON library: a cached JSON value is known to be
 * valid and is embedded as it is, and everything else written here is escaped by buf. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "arrow/arrow.h"
#include "server.h"
#include "value/value.h"

#define API_URI "/cache/api/v1.0/"

enum {
    /* A value from a disk-tier file is embedded in an envelope only up to this size; larger
     * ones must be read with format=raw, which streams them. */
    ENVELOPE_VALUE_MAX_BYTES = 64 << 20
};

typedef api_call call;

/* ---- answers ------------------------------------------------------------------------------ */

static int status_for(aside_status st)
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

void api_error(call *c, int status, const char *code, const char *message)
{
    http_response *res = c->res;
    res->status = status;
    res->content_type = "application/json";
    buf_reset(&res->body);
    buf_puts(&res->body, "{\"error\": {\"code\": ");
    buf_put_json_string(&res->body, code, strlen(code));
    buf_puts(&res->body, ", \"message\": ");
    buf_put_json_string(&res->body, message, strlen(message));
    buf_puts(&res->body, "}}");
}

void api_status_error(call *c, const aside_error *err)
{
    const char *code = err->code[0]                    ? err->code
                       : err->status == ASIDE_ERR_INVALID ? "bad_request"
                                                          : aside_status_name(err->status);
    api_error(c, status_for(err->status), code, err->message);
}

/* Start a success envelope; the caller writes the value and calls envelope_end. */
buf *api_envelope_begin(call *c)
{
    buf *b = &c->res->body;
    c->res->status = 200;
    c->res->content_type = "application/json";
    buf_puts(b, "{\"return\": {\"uri\": \"" API_URI "\", \"path\": ");
    if (c->path)
        buf_put_json_string(b, c->path, c->path_len);
    else
        buf_puts(b, "null");
    buf_puts(b, ", \"value\": ");
    return b;
}

void api_envelope_end(call *c) { buf_puts(&c->res->body, "}}"); }

/* ---- parameters --------------------------------------------------------------------------- */

const char *api_param(const call *c, const char *name, size_t *len)
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
    if (c->param_count == API_MAX_PARAMS) {
        free(name);
        free(value);
        return false;
    }
    c->params[c->param_count++] = (api_param_t){name, value, value_len, json_incref(json)};
    return true;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
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
            int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_digit(s[i + 2]) : -1;
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

static bool parse_query(call *c, const char *q, size_t len, char *why, size_t why_len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && q[i] != '&')
            continue;
        if (i > start) {
            const char *pair = q + start;
            size_t pair_len = i - start;
            const char *eq = memchr(pair, '=', pair_len);
            size_t name_len = eq ? (size_t)(eq - pair) : pair_len;
            size_t decoded_name_len = 0, value_len = 0;
            char *name = url_decode(pair, name_len, &decoded_name_len);
            char *value = eq ? url_decode(eq + 1, pair_len - name_len - 1, &value_len)
                             : strdup("");
            if (!name || !value) {
                free(name);
                free(value);
                snprintf(why, why_len, "malformed percent-encoding in the query string");
                return false;
            }
            if (!param_add(c, name, value, value_len, NULL)) {
                snprintf(why, why_len, "more than %d parameters", API_MAX_PARAMS);
                return false;
            }
        }
        start = i + 1;
    }
    return true;
}

/* True if name is a parameter of the API itself (its value must be a scalar). */
static bool api_parameter(const char *name)
{
    static const char *const names[] = {
        "function", "path", "key", "storage", "type", "return", "format", "orient", "time",
        "max_age", "stale_if_error", "prefix", "query", "into", "columns", "where", "order_by",
        "limit", "offset", "n", "include", "timeout", "function_name", "function_body", NULL};
    for (size_t i = 0; names[i]; i++) {
        if (strcmp(names[i], name) == 0)
            return true;
    }
    return false;
}

/* Turn one member of the body's "data" object into a parameter. */
static bool body_param(call *c, const char *name, json_t *v, char *why, size_t why_len)
{
    char *text = NULL;
    size_t len = 0;
    if (json_is_string(v)) {
        len = json_string_length(v);
        text = malloc(len + 1);
        if (text) {
            memcpy(text, json_string_value(v), len);
            text[len] = '\0';
        }
    } else if (json_is_integer(v) || json_is_real(v) || json_is_boolean(v)) {
        text = json_dumps(v, JSON_ENCODE_ANY);
        len = text ? strlen(text) : 0;
    } else if (json_is_null(v) && api_parameter(name)) {
        return true;
    } else if (json_is_null(v)) { /* an argument of an operation: null is a value */
        text = strdup("null");
        len = 4;
    } else if (!api_parameter(name)) { /* an array or object: for a user's function, which
                                          gets the value itself; here, its JSON text */
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
        snprintf(why, why_len, "more than %d parameters", API_MAX_PARAMS);
        return false;
    }
    return true;
}

static bool parse_body(call *c, char *why, size_t why_len)
{
    json_error_t error;
    json_t *doc = json_loadb(c->req->body, c->req->body_len, 0, &error);
    if (!doc) {
        snprintf(why, why_len, "malformed JSON body at line %d, column %d: %s", error.line,
                 error.column, error.text);
        return false;
    }
    json_t *data = json_is_object(doc) ? json_object_get(doc, "data") : NULL;
    bool ok = data && json_is_object(data);
    if (!ok)
        snprintf(why, why_len, "the body must be a JSON object {\"data\": {...}}");
    const char *name;
    json_t *v;
    if (ok) {
        json_object_foreach(data, name, v) {
            if (!(ok = body_param(c, name, v, why, why_len)))
                break;
        }
    }
    json_decref(doc);
    return ok;
}

/* ---- the read family ---------------------------------------------------------------------- */

static const char *source_name(aside_source s)
{
    return s == ASIDE_SOURCE_MEMORY ? "memory" : s == ASIDE_SOURCE_DISK ? "disk" : "sor";
}

/* A choice parameter: one of the allowed words, or the default when absent. */
bool api_choice(call *c, const char *name, const char *const *allowed, const char **out)
{
    const char *v = api_param(c, name, NULL);
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
    api_error(c, 400, "bad_request", message);
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

bool api_accepts(const call *c, const char *needle)
{
    size_t len = 0;
    const char *accept = http_request_header(c->req, "Accept", &len);
    return accept && contains_ci(accept, len, needle);
}

/* True when the client wants bytes, not an envelope. */
static bool wants_raw(call *c, const char *format)
{
    if (format)
        return strcmp(format, "raw") == 0;
    size_t len = 0;
    const char *accept = http_request_header(c->req, "Accept", &len);
    if (!accept || len == 0)
        return false;
    return !contains_ci(accept, len, "application/json") && !contains_ci(accept, len, "*/*") &&
           !contains_ci(accept, len, "application/*");
}

static void put_seconds(call *c, buf *b)
{
    buf_printf(b, ", \"seconds\": %.6f",
               (double)(clock_mono_ns() - c->started_ns) / 1e9);
}

static void answer_meta(call *c, aside_value *v, const aside_read_info *info, bool updated,
                        bool timed)
{
    buf *b = api_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"source\": \"");
    buf_puts(b, source_name(info->source));
    buf_puts(b, "\", \"type\": \"");
    buf_puts(b, aside_value_type_name(aside_value_type_of(v)));
    buf_puts(b, "\", \"bytes\": ");
    buf_put_u64(b, aside_value_size(v));
    if (updated)
        buf_puts(b, info->revalidated ? ", \"revalidated\": true" : ", \"revalidated\": false");
    if (info->stale)
        buf_puts(b, ", \"stale\": true");
    if (timed)
        put_seconds(c, b);
    buf_putc(b, '}');
    api_envelope_end(c);
}

static void answer_data(call *c, aside_value *v)
{
    uint64_t size = aside_value_size(v);
    const char *data = aside_value_data(v);
    char *loaded = NULL;
    if (!data) {
        if (size > ENVELOPE_VALUE_MAX_BYTES) {
            api_error(c, 413, "too_large", "value too large for a JSON envelope; read it "
                                              "with format=raw");
            return;
        }
        loaded = malloc(size ? size : 1);
        if (!loaded || pread(aside_value_fd(v), loaded, size, 0) != (ssize_t)size) {
            free(loaded);
            api_error(c, 500, "io_error", "cannot read the value from the disk tier");
            return;
        }
        data = loaded;
    }
    buf *b = api_envelope_begin(c);
    aside_value_type type = aside_value_type_of(v);
    if (type == ASIDE_TYPE_JSON || type >= ASIDE_TYPE_LIST) /* JSON text */
        buf_append(b, data, size);
    else {
        buf_putc(b, '"');
        buf_put_base64(b, data, size);
        buf_putc(b, '"');
    }
    api_envelope_end(c);
    free(loaded);
}

static void answer_raw(call *c, aside_value *v, aside_source source)
{
    c->res->status = 200;
    c->res->content_type = value_kind_of(aside_value_type_of(v))->content_type(c->path);
    c->res->value = aside_value_retain(v);
    buf_printf(&c->res->headers, "X-Aside-Source: %s\r\nX-Aside-Type: %s\r\n",
               source_name(source), aside_value_type_name(aside_value_type_of(v)));
}

/* Answer a value as the read parameters ask. */
static void answer_value(call *c, aside_value *v, const aside_read_info *info, bool updated)
{
    static const char *const returns[] = {"meta", "data", NULL};
    static const char *const formats[] = {"json", "raw", "arrow", "parquet", "csv", NULL};
    static const char *const booleans[] = {"true", "false", "1", "0", NULL};
    const char *ret = "meta", *format = NULL, *timed = "false";
    if (!api_choice(c, "return", returns, &ret) || !api_choice(c, "format", formats, &format) ||
        !api_choice(c, "time", booleans, &timed))
        return;
    bool frame_format = format && strcmp(format, "json") != 0 && strcmp(format, "raw") != 0;
    if (aside_value_type_of(v) == ASIDE_TYPE_FRAME &&
        (frame_format || (!format && api_accepts(c, ARROW_STREAM_MEDIA_TYPE)) ||
         (strcmp(ret, "data") == 0 && (!format || strcmp(format, "json") == 0))))
        frames_answer_read(c, v);
    else if (frame_format)
        api_error(c, 400, "not_a_frame", "formats arrow, parquet and csv are for frames; read "
                                         "this key with type=frame");
    else if (wants_raw(c, format))
        answer_raw(c, v, info->source);
    else if (strcmp(ret, "data") == 0)
        answer_data(c, v);
    else
        answer_meta(c, v, info, updated, strcmp(timed, "true") == 0 || strcmp(timed, "1") == 0);
}

bool api_need_path(call *c)
{
    if (c->path)
        return true;
    api_error(c, 400, "bad_request", "missing parameter \"path\" (or \"key\")");
    return false;
}

typedef aside_status (*loader)(aside_cache *cache, const char *key,
                              const aside_read_options *options, aside_value **out,
                              aside_read_info *info, aside_error *err);

/* Load the path with read or update, and answer its value. */
static void load_and_answer(call *c, loader load)
{
    if (!api_need_path(c))
        return;
    aside_value *v = NULL;
    aside_read_info info;
    aside_error err;
    c->options.memory_only = !c->req->may_block;
    aside_status st = load(c->api->cache, c->path, &c->options, &v, &info, &err);
    if (st == ASIDE_ERR_WOULD_BLOCK) {
        c->res->defer = true;
        return;
    }
    if (st != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    answer_value(c, v, &info, load == aside_update);
    aside_value_release(v);
}

static void fn_read(call *c) { load_and_answer(c, aside_read); }

static void fn_update(call *c) { load_and_answer(c, aside_update); }

static void fn_write(call *c)
{
    if (!api_need_path(c))
        return;
    aside_object_info info;
    aside_error err;
    if (aside_write(c->api->cache, c->path, &c->options, c->req->body, c->req->body_len, &info,
                    &err) != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    buf *b = api_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"bytes\": ");
    buf_put_u64(b, info.size);
    buf_puts(b, ", \"etag\": ");
    buf_put_json_string(b, info.etag, strlen(info.etag));
    buf_putc(b, '}');
    api_envelope_end(c);
}

static void fn_put(call *c)
{
    if (!api_need_path(c))
        return;
    aside_error err;
    if (aside_put(c->api->cache, c->path, &c->options, c->req->body, c->req->body_len, &err) !=
        ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    aside_entry_info e;
    bool known = aside_entry(c->api->cache, c->path, &e, NULL) == ASIDE_OK;
    buf *b = api_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"bytes\": ");
    buf_put_u64(b, c->req->body_len);
    buf_puts(b, ", \"type\": ");
    const char *type = aside_value_type_name(known ? e.type : ASIDE_TYPE_BYTES);
    buf_put_json_string(b, type, strlen(type));
    buf_putc(b, '}');
    api_envelope_end(c);
    if (known)
        free(e.key);
}

void api_put_time(buf *b, int64_t unix_ms)
{
    time_t sec = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char text[40];
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(b, "\"%s.%03dZ\"", text, (int)(unix_ms % 1000));
}

static void fn_list(call *c)
{
    aside_object_entry *objects = NULL;
    size_t count = 0;
    aside_error err;
    if (aside_list(c->api->cache, &c->options, api_param(c, "prefix", NULL), &objects, &count,
                   &err) != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    buf *b = api_envelope_begin(c);
    buf_putc(b, '[');
    for (size_t i = 0; i < count; i++) {
        buf_puts(b, i ? ", {\"path\": " : "{\"path\": ");
        buf_put_json_string(b, objects[i].key, strlen(objects[i].key));
        buf_puts(b, ", \"bytes\": ");
        buf_put_u64(b, objects[i].size);
        buf_puts(b, ", \"last_modified\": ");
        api_put_time(b, objects[i].mtime_ns / 1000000);
        buf_putc(b, '}');
    }
    buf_putc(b, ']');
    api_envelope_end(c);
    aside_object_entries_free(objects, count);
}

static void fn_delete(call *c)
{
    if (!api_need_path(c))
        return;
    aside_error err;
    if (aside_delete(c->api->cache, c->path, &err) != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    buf *b = api_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\"}");
    api_envelope_end(c);
}

/* ---- telemetry ---------------------------------------------------------------------------- */

static void put_entry(buf *b, const aside_entry_info *e)
{
    buf_puts(b, "{\"path\": ");
    buf_put_json_string(b, e->key, strlen(e->key));
    buf_printf(b, ", \"type\": \"%s\", \"bytes\": %llu, \"tier\": \"%s\", \"hits\": %llu, "
                  "\"generation\": %llu, \"last_access\": ",
               aside_value_type_name(e->type), (unsigned long long)e->bytes,
               e->in_memory ? "memory" : "disk", (unsigned long long)e->hits,
               (unsigned long long)e->generation);
    api_put_time(b, e->last_access_ms);
    buf_printf(b, ", \"pinned\": %s, \"cache_only\": %s, \"expires\": ",
               e->pinned ? "true" : "false", e->cache_only ? "true" : "false");
    if (e->expires_ms)
        api_put_time(b, e->expires_ms);
    else
        buf_puts(b, "null");
    buf_putc(b, '}');
}

static void put_stats(buf *b, const aside_stats *s)
{
    buf_printf(b, "\"uptime_seconds\": %.3f, \"keys\": %llu, "
                  "\"memory\": {\"used_bytes\": %llu, \"limit_bytes\": %llu}, "
                  "\"disk\": {\"used_bytes\": %llu, \"limit_bytes\": %llu}, "
                  "\"hits\": %llu, \"misses\": %llu, "
                  "\"evictions\": {\"memory\": %llu, \"disk\": %llu}, \"sor_fetches\": %llu, "
                  "\"shm\": {\"publications\": %llu, \"maps\": %llu, \"bytes\": %llu}, "
                  "\"pinned_bytes\": %llu, \"expirations\": %llu, "
                  "\"log\": {\"bytes\": %llu, \"compactions\": %llu}",
               s->uptime_seconds, (unsigned long long)s->keys,
               (unsigned long long)s->memory_used_bytes, (unsigned long long)s->memory_limit_bytes,
               (unsigned long long)s->disk_used_bytes, (unsigned long long)s->disk_limit_bytes,
               (unsigned long long)s->hits, (unsigned long long)s->misses,
               (unsigned long long)s->evictions_memory, (unsigned long long)s->evictions_disk,
               (unsigned long long)s->sor_fetches, (unsigned long long)s->shm_publications,
               (unsigned long long)s->shm_maps, (unsigned long long)s->shm_bytes,
               (unsigned long long)s->pinned_bytes, (unsigned long long)s->expirations,
               (unsigned long long)s->log_bytes, (unsigned long long)s->log_compactions);
}

static void fn_head(call *c)
{
    aside_error err;
    aside_entry_info *entries = NULL;
    size_t count = 0;
    aside_entry_info one;
    aside_status st = c->path ? aside_entry(c->api->cache, c->path, &one, &err)
                              : aside_entries(c->api->cache, &entries, &count, &err);
    if (st != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    if (c->path) {
        entries = &one;
        count = 1;
    }
    aside_stats stats;
    aside_stats_get(c->api->cache, &stats);
    function_pool_stats fs;
    function_pool_get_stats(c->api->functions, &fs);
    buf *b = api_envelope_begin(c);
    buf_putc(b, '{');
    put_stats(b, &stats);
    buf_printf(b, ", \"functions\": {\"workers\": %llu, \"started\": %llu, \"calls\": %llu, "
                  "\"timeouts\": %llu, \"crashes\": %llu, \"memo\": ",
               (unsigned long long)fs.workers, (unsigned long long)fs.started,
               (unsigned long long)fs.requests, (unsigned long long)fs.timeouts,
               (unsigned long long)fs.crashes);
    json_t *memo = function_pool_memo_stats(c->api->functions);
    char *memo_text = memo ? json_dumps(memo, JSON_COMPACT) : NULL;
    buf_puts(b, memo_text ? memo_text : "null");
    buf_putc(b, '}');
    free(memo_text);
    json_decref(memo);
    json_t *progress = preload_progress_json(c->api->preload);
    char *progress_text = progress ? json_dumps(progress, JSON_COMPACT) : NULL;
    buf_puts(b, ", \"preload\": ");
    buf_puts(b, progress_text ? progress_text : "null");
    free(progress_text);
    json_decref(progress);
    buf_puts(b, ", \"entries\": [");
    for (size_t i = 0; i < count; i++) {
        if (i)
            buf_puts(b, ", ");
        put_entry(b, &entries[i]);
    }
    buf_puts(b, "]}");
    api_envelope_end(c);
    buf *h = &c->res->headers;
    buf_printf(h, "X-Aside-Keys: %llu\r\nX-Aside-Memory-Used: %llu\r\n"
                  "X-Aside-Memory-Limit: %llu\r\nX-Aside-Disk-Used: %llu\r\n"
                  "X-Aside-Disk-Limit: %llu\r\nX-Aside-Hits: %llu\r\nX-Aside-Misses: %llu\r\n"
                  "X-Aside-Evictions: %llu\r\nX-Aside-Sor-Fetches: %llu\r\n"
                  "X-Aside-Uptime: %.3f\r\n",
               (unsigned long long)stats.keys, (unsigned long long)stats.memory_used_bytes,
               (unsigned long long)stats.memory_limit_bytes,
               (unsigned long long)stats.disk_used_bytes,
               (unsigned long long)stats.disk_limit_bytes, (unsigned long long)stats.hits,
               (unsigned long long)stats.misses,
               (unsigned long long)(stats.evictions_memory + stats.evictions_disk),
               (unsigned long long)stats.sor_fetches, stats.uptime_seconds);
    if (c->path)
        buf_printf(h, "X-Aside-Key-Type: %s\r\nX-Aside-Key-Bytes: %llu\r\nX-Aside-Key-Tier: %s\r\n"
                      "X-Aside-Key-Hits: %llu\r\n",
                   aside_value_type_name(one.type), (unsigned long long)one.bytes,
                   one.in_memory ? "memory" : "disk", (unsigned long long)one.hits);
    if (c->path)
        free(one.key);
    else
        aside_entries_free(entries, count);
}

static void fn_stats_cache(call *c)
{
    aside_error err;
    aside_entry_info *entries = NULL;
    size_t count = 0;
    if (aside_entries(c->api->cache, &entries, &count, &err) != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    buf *b = api_envelope_begin(c);
    buf_putc(b, '[');
    for (size_t i = 0; i < count; i++) {
        if (i)
            buf_puts(b, ", ");
        buf_put_json_string(b, entries[i].key, strlen(entries[i].key));
    }
    buf_putc(b, ']');
    api_envelope_end(c);
    aside_entries_free(entries, count);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* How a function may run on an event-loop thread (see server.h). */
typedef enum function_blocking {
    RUNS_ANYWHERE,  /* bookkeeping only */
    TRIES_MEMORY,   /* a read: answered on the loop when in memory, else deferred */
    MAY_BLOCK       /* always deferred to the pool */
} function_blocking;

typedef struct api_function {
    const char       *name;
    void (*run)(call *c);
    function_blocking blocking;
} api_function;

static const api_function functions[] = {
    {"read", fn_read, TRIES_MEMORY},          {"create", fn_read, TRIES_MEMORY},
    {"data_read", fn_read, TRIES_MEMORY},     {"cache_create", fn_read, TRIES_MEMORY},
    {"update", fn_update, MAY_BLOCK},         {"delete", fn_delete, RUNS_ANYWHERE},
    {"cache_delete", fn_delete, RUNS_ANYWHERE}, {"head", fn_head, RUNS_ANYWHERE},
    {"cache_head", fn_head, RUNS_ANYWHERE},   {"stats_cache", fn_stats_cache, RUNS_ANYWHERE},
    {"list", fn_list, MAY_BLOCK},             {"write", fn_write, MAY_BLOCK},
    {"put", fn_put, MAY_BLOCK},               {"load", fn_read, TRIES_MEMORY},
    {"spec", preload_fn_spec, RUNS_ANYWHERE}, {"reload_spec", preload_fn_reload, MAY_BLOCK},
};

static const api_function *find_function(const char *name)
{
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        if (strcmp(functions[i].name, name) == 0)
            return &functions[i];
    }
    return NULL;
}

static void answer_unknown_function(call *c, const char *name)
{
    buf message;
    buf_init(&message);
    buf_printf(&message, "unknown function \"%.100s\"; known:", name);
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
        buf_printf(&message, "%s %s", i ? "," : "", functions[i].name);
    for (size_t i = 0; frames_function_names[i]; i++)
        buf_printf(&message, ", %s", frames_function_names[i]);
    collections_append_names(&message);
    api_error(c, 404, "unknown_function", message.data ? message.data : "unknown function");
    buf_free(&message);
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

static bool is_api_route(const char *path, size_t len)
{
    static const char *const routes[] = {API_URI, "/cache/api/v1.0", "/cache", "/cache/"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (len == strlen(routes[i]) && memcmp(path, routes[i], len) == 0)
            return true;
    }
    return false;
}

static void answer_error_type(call *c)
{
    api_error(c, 400, "bad_request", "parameter \"type\" must be one of: bytes, json, frame, "
                                     "list, set, map, counter");
}

/* max_age and stale_if_error, from the request or the server's defaults. */
static bool freshness_options(call *c, char *why, size_t why_len)
{
    const char *max_age = api_param(c, "max_age", NULL);
    const char *stale = api_param(c, "stale_if_error", NULL);
    c->options.max_age_s = c->api->defaults.max_age_s;
    c->options.stale_if_error = c->api->defaults.stale_if_error;
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

/* True if name is a frame function for this call. "head" is also the cache's telemetry
 * function (and the HEAD verb's): it means the first rows only for a frame, or when n= is given. */
static bool is_frame_call(call *c, const char *name)
{
    if (strcmp(name, "head") != 0)
        return true;
    if (c->req->method == HTTP_METHOD_HEAD || !c->path)
        return false;
    const char *type = api_param(c, "type", NULL);
    if (api_param(c, "n", NULL) || (type && strcmp(type, "frame") == 0) ||
        aside_value_type_for_key(c->path) == ASIDE_TYPE_FRAME)
        return true;
    aside_entry_info e;
    if (aside_entry(c->api->cache, c->path, &e, NULL) != ASIDE_OK)
        return false;
    free(e.key);
    return e.type == ASIDE_TYPE_FRAME;
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

/* With a token configured, the request must bring it as a bearer token; false when a 401 was
 * answered. */
static bool authorized(call *c)
{
    const char *token = c->api->defaults.token;
    if (!token || !*token)
        return true;
    size_t len = 0;
    const char *auth = http_request_header(c->req, "Authorization", &len);
    static const char scheme[] = "Bearer ";
    size_t n = sizeof scheme - 1;
    if (auth && len > n && strncasecmp(auth, scheme, n) == 0 &&
        same_secret(auth + n, len - n, token))
        return true;
    api_error(c, 401, "unauthorized", auth ? "the bearer token is not the server's"
                                           : "this server asks for \"Authorization: Bearer <token>\"");
    buf_puts(&c->res->headers, "WWW-Authenticate: Bearer realm=\"aside\"\r\n");
    return false;
}

/* Route, collect parameters and check the path; false when an error was answered. */
static bool prepare(call *c)
{
    const http_request *req = c->req;
    const char *q = memchr(req->target, '?', req->target_len);
    size_t path_len = q ? (size_t)(q - req->target) : req->target_len;
    char why[512];
    if (!is_api_route(req->target, path_len)) {
        snprintf(why, sizeof why, "no such route: %.*s (the API is at " API_URI ")",
                 (int)(path_len > 200 ? 200 : path_len), req->target);
        api_error(c, 404, "not_found", why);
        return false;
    }
    if (!authorized(c))
        return false;
    if (req->method == HTTP_METHOD_OTHER) {
        snprintf(why, sizeof why, "method %s is not allowed", req->method_name);
        api_error(c, 405, "method_not_allowed", why);
        buf_puts(&c->res->headers, "Allow: GET, HEAD, POST, PUT, DELETE\r\n");
        return false;
    }
    if (q && !parse_query(c, q + 1, req->target_len - path_len - 1, why, sizeof why)) {
        api_error(c, 400, "bad_request", why);
        return false;
    }
    const char *function = api_param(c, "function", NULL);
    c->raw_body = function && (strcmp(function, "write") == 0 || strcmp(function, "put") == 0);
    if (req->body_len > 0 && req->method != HTTP_METHOD_GET && !c->raw_body &&
        !parse_body(c, why, sizeof why)) {
        api_error(c, 400, "bad_request", why);
        return false;
    }
    c->options.storage = api_param(c, "storage", NULL);
    c->options.type = api_param(c, "type", NULL);
    aside_value_type ignored;
    if (c->options.type && aside_value_type_parse(c->options.type, &ignored) != ASIDE_OK) {
        answer_error_type(c);
        return false;
    }
    if (!freshness_options(c, why, sizeof why)) {
        api_error(c, 400, "bad_request", why);
        return false;
    }
    size_t len = 0;
    c->path = api_param(c, "path", &len);
    if (!c->path)
        c->path = api_param(c, "key", &len);
    c->path_len = len;
    aside_error err;
    if (c->path && aside_key_check(c->path, len, &err) != ASIDE_OK) {
        snprintf(why, sizeof why, "bad path: %s", err.message);
        c->path = NULL;
        api_error(c, 400, "bad_request", why);
        return false;
    }
    return true;
}

void api_handle(void *ctx, const http_request *req, http_response *res)
{
    call on_stack;
    memset(&on_stack, 0, sizeof on_stack);
    call *c = &on_stack;
    c->req = req;
    c->res = res;
    c->api = ctx;
    c->started_ns = clock_mono_ns();
    if (prepare(c)) {
        const char *name = req->method == HTTP_METHOD_HEAD ? "head" : api_param(c, "function", NULL);
        name = name && *name ? name : default_function(req->method);
        bool may_block = false, tries_memory = false;
        api_run frame_run = is_frame_call(c, name) ? frames_function(name, &may_block,
                                                                     &tries_memory) : NULL;
        if (!frame_run)
            frame_run = collections_function(name, c, &may_block);
        const api_function *f = frame_run ? NULL : find_function(name);
        if (frame_run && may_block && !req->may_block)
            res->defer = true;
        else if (frame_run)
            frame_run(c);
        else if (!f && !functions_dispatch(c, name))
            answer_unknown_function(c, name);
        else if (!f)
            ; /* a user's function: answered or deferred */
        else if (f->blocking == MAY_BLOCK && !req->may_block)
            res->defer = true;
        else
            f->run(c);
    }
    res->omit_body = req->method == HTTP_METHOD_HEAD;
    for (size_t i = 0; i < c->param_count; i++) {
        free(c->params[i].name);
        free(c->params[i].value);
        json_decref(c->params[i].json);
    }
}

api *api_create(aside_cache *cache, const api_defaults *defaults)
{
    api *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->cache = cache;
    a->defaults = *defaults;
    a->defaults.functions.token = defaults->token;
    if (!(a->functions = function_pool_create(&a->defaults.functions))) {
        free(a);
        return NULL;
    }
    return a;
}

void api_set_url(api *a, const char *url) { function_pool_set_url(a->functions, url); }

void api_destroy(api *a)
{
    if (!a)
        return;
    function_pool_destroy(a->functions);
    free(a);
}

bool api_is_builtin(const char *name) { return find_function(name) != NULL; }
