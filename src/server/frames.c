/* frames.c -- the API's frame functions: info, describe, head, tail, shape, columns, dtypes,
 * select, sql and map.
 *
 * A function names its frame with path (or key); the frame is read through the cache like any
 * value (a miss loads it cache-aside), with type=frame implied for keys whose name does not
 * say frame. Answers are JSON in the envelope (orient=records, split, columns, index, values)
 * or, with format=arrow|parquet|csv|json, the bare body in that format: an Arrow stream goes
 * out as the frame's own buffers with writev, never copied.
 *
 * What pandas says of a frame differs between pandas 2 and 3 (dtypes, memory usage, the class
 * name): info, dtypes and map answer for the major pandas= names, else ASIDE_PANDAS's; the rows
 * and statistics that head, tail, select and describe answer are the same for both in JSON.
 *
 * Results a function computes (head, select, sql) are bounded by the result limit: past it the
 * answer is 413, unless sql stores the result with into=, which is bounded by memory alone.
 * Answering a frame in a format is reply.c's, shared with reads and users' functions. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "lib/lib.h"
#include "frames.h"
#include "reply.h"
#include "value/value.h"

enum { DEFAULT_HEAD_ROWS = 5 };

/* ---- finding the frame ------------------------------------------------------------------ */

/* The frame named by the call, held through *v; false when answered (or deferred). */
static bool frame_of(call *c, aside_value **v, frame **f)
{
    if (!call_need_path(c))
        return false;
    static const char *const types[] = {"frame", "json", "bytes", NULL};
    const char *type = NULL;
    if (!call_choice(c, "type", types, &type))
        return false;
    c->options.type = type;
    if (!type && aside_value_type_for_key(c->path) != ASIDE_TYPE_JSON)
        c->options.type = "frame";
    c->options.memory_only = !c->req->may_block;
    aside_read_info info;
    aside_error err;
    aside_status st = aside_read(c->server->cache, c->path, &c->options, v, &info, &err);
    if (st == ASIDE_ERR_WOULD_BLOCK) {
        c->res->defer = true;
        return false;
    }
    if (st != ASIDE_OK) {
        call_status_error(c, &err);
        return false;
    }
    call_note_source(c, info.source);
    if (!(*f = value_frame(*v))) {
        char why[ASIDE_KEY_MAX_BYTES + 128];
        snprintf(why, sizeof why, "%s is %s, not a frame; read it as one with type=frame",
                 c->path, aside_value_type_name(aside_value_type_of(*v)));
        aside_value_release(*v);
        call_error(c, 400, "not_a_frame", why);
        return false;
    }
    return true;
}

/* The pandas major the call's answer is for: pandas=, else the server's default; false when
 * answered with an error. */
static bool pandas_of(call *c, frame_pandas *major)
{
    const char *text = call_param_value(c, "pandas", NULL);
    *major = c->server->defaults.pandas_major == 2 ? FRAME_PANDAS_2 : FRAME_PANDAS_3;
    if (!text || frame_pandas_parse(text, major))
        return true;
    char why[160];
    snprintf(why, sizeof why, "parameter \"pandas\" must be 2 or 3, the major version of the "
             "pandas the answer is for, not \"%.24s\"", text);
    call_error(c, 400, "bad_request", why);
    return false;
}

/* ---- functions -------------------------------------------------------------------------- */

/* Answer what put writes about the call's frame (as pandas major shows it), in the envelope. */
static void answer_about(call *c, void (*put)(const frame *f, frame_pandas major, buf *b))
{
    frame_pandas major;
    if (!pandas_of(c, &major))
        return;
    aside_value *v;
    frame *f;
    if (!frame_of(c, &v, &f))
        return;
    buf *b = call_envelope_begin(c);
    put(f, major, b);
    call_envelope_end(c);
    aside_value_release(v);
}

static void put_shape(const frame *f, frame_pandas major, buf *b)
{
    (void)major;
    buf_printf(b, "[%" PRId64 ", %zu]", f->rows, f->field_count);
}

static void put_columns(const frame *f, frame_pandas major, buf *b)
{
    (void)major;
    buf_putc(b, '[');
    for (size_t i = 0; i < f->field_count; i++) {
        buf_puts(b, i ? ", " : "");
        buf_put_json_string(b, f->fields[i].name, strlen(f->fields[i].name));
    }
    buf_putc(b, ']');
}

/* Each column's pandas dtype: {name: dtype}, or as a list [{"name", "dtype"}]. */
static void put_column_dtypes(const frame *f, frame_pandas major, buf *b, bool as_list)
{
    buf_putc(b, as_list ? '[' : '{');
    for (size_t i = 0; i < f->field_count; i++) {
        char dtype[96];
        frame_pandas_dtype_as(&f->fields[i], major, dtype, sizeof dtype);
        buf_puts(b, i ? ", " : "");
        buf_puts(b, as_list ? "{\"name\": " : "");
        buf_put_json_string(b, f->fields[i].name, strlen(f->fields[i].name));
        buf_puts(b, as_list ? ", \"dtype\": " : ": ");
        buf_put_json_string(b, dtype, strlen(dtype));
        buf_puts(b, as_list ? "}" : "");
    }
    buf_putc(b, as_list ? ']' : '}');
}

static void put_dtypes(const frame *f, frame_pandas major, buf *b)
{
    put_column_dtypes(f, major, b, false);
}

void frames_info(call *c) { answer_about(c, frame_pandas_info_as); }
void frames_shape(call *c) { answer_about(c, put_shape); }
void frames_columns(call *c) { answer_about(c, put_columns); }
void frames_dtypes(call *c) { answer_about(c, put_dtypes); }

/* An integer parameter; false when answered with an error. */
static bool int_param(call *c, const char *name, int64_t fallback, int64_t *out)
{
    const char *text = call_param_value(c, name, NULL);
    *out = fallback;
    if (!text)
        return true;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end) {
        char why[128];
        snprintf(why, sizeof why, "parameter \"%s\" must be a whole number", name);
        call_error(c, 400, "bad_request", why);
        return false;
    }
    *out = v;
    return true;
}

/* head and tail, as pandas counts: n < 0 means all but the last (head) or first (tail) -n. */
static void head_or_tail(call *c, bool tail)
{
    int64_t n;
    if (!int_param(c, "n", DEFAULT_HEAD_ROWS, &n))
        return;
    aside_value *v;
    frame *f;
    if (!frame_of(c, &v, &f))
        return;
    int64_t count = n >= 0 ? (n < f->rows ? n : f->rows) : (f->rows + n > 0 ? f->rows + n : 0);
    int64_t first = tail ? f->rows - count : 0;
    aside_error err;
    frame *rows = frame_slice_rows(f, first, count, &err);
    if (rows)
        reply_frame(c, rows, "records", false);
    else
        call_status_error(c, &err);
    frame_release(rows);
    aside_value_release(v);
}

void frames_head(call *c) { head_or_tail(c, false); }
void frames_tail(call *c) { head_or_tail(c, true); }

void frames_describe(call *c)
{
    static const char *const includes[] = {"all", NULL};
    const char *include = NULL;
    if (!call_choice(c, "include", includes, &include))
        return;
    aside_value *v;
    frame *f;
    if (!frame_of(c, &v, &f))
        return;
    frame *stats = NULL;
    aside_error err;
    if (engine_describe(aside_cache_engine(c->server->cache), f, include != NULL,
                        c->server->defaults.sql_timeout_ms, &stats, &err) == ASIDE_OK)
        reply_frame(c, stats, "columns", false);
    else
        call_status_error(c, &err);
    frame_release(stats);
    aside_value_release(v);
}

/* The columns= list as SQL, each checked to be a column of f; false when answered. */
static bool select_list(call *c, const frame *f, buf *sql)
{
    const char *list = call_param_value(c, "columns", NULL);
    if (!list || !*list) {
        buf_puts(sql, "*");
        return true;
    }
    for (const char *at = list; *at;) {
        const char *comma = strchr(at, ',');
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        char name[1024];
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), at);
        if (frame_field_find(f, name) < 0) {
            char why[1200];
            snprintf(why, sizeof why, "unknown column \"%s\"", name);
            call_error(c, 400, "bad_request", why);
            return false;
        }
        buf_puts(sql, at == list ? "" : ", ");
        engine_quote_identifier(sql, name);
        at += len + (comma ? 1 : 0);
    }
    return true;
}

/* The SELECT of the select function over the frame named key. */
static bool select_sql(call *c, const frame *f, buf *sql)
{
    int64_t limit, offset;
    if (!int_param(c, "limit", -1, &limit) || !int_param(c, "offset", 0, &offset))
        return false;
    if (offset < 0) {
        call_error(c, 400, "bad_request", "parameter \"offset\" must not be negative");
        return false;
    }
    buf_puts(sql, "SELECT ");
    if (!select_list(c, f, sql))
        return false;
    buf_puts(sql, " FROM ");
    engine_frame_sql(sql, c->path);
    const char *where = call_param_value(c, "where", NULL);
    const char *order = call_param_value(c, "order_by", NULL);
    if (where && *where)
        buf_printf(sql, " WHERE (%s)", where);
    if (order && *order)
        buf_printf(sql, " ORDER BY %s", order);
    if (limit >= 0)
        buf_printf(sql, " LIMIT %" PRId64, limit);
    if (offset > 0)
        buf_printf(sql, " OFFSET %" PRId64, offset);
    return true;
}

/* How a query finds the frames it names: through the cache, as frames. */
static aside_status resolve(void *ctx, const char *key, frame **out, aside_error *err)
{
    call *c = ctx;
    aside_read_options options = c->options;
    /* a table is a frame; a JSON document only when it was read as one (type=frame) */
    options.type = aside_value_type_for_key(key) == ASIDE_TYPE_JSON ? NULL : "frame";
    options.memory_only = false;
    aside_value *v = NULL;
    aside_status st = aside_read(c->server->cache, key, &options, &v, NULL, err);
    if (st != ASIDE_OK)
        return st;
    if (!value_frame(v)) {
        st = error_set(err, ASIDE_ERR_INVALID, "%s is %s, not a frame; read it as one with "
                       "type=frame", key, aside_value_type_name(aside_value_type_of(v)));
        snprintf(err->code, sizeof err->code, "not_a_frame");
        aside_value_release(v);
        return st;
    }
    *out = frame_retain(value_frame(v));
    aside_value_release(v);
    return ASIDE_OK;
}

void frames_select(call *c)
{
    aside_value *v;
    frame *f;
    if (!frame_of(c, &v, &f))
        return;
    buf sql = {0};
    if (select_sql(c, f, &sql)) {
        engine_query q = {resolve, c, c->server->defaults.result_limit_bytes,
                          c->server->defaults.sql_timeout_ms};
        frame *result = NULL;
        aside_error err;
        if (sql.failed)
            call_out_of_memory(c);
        else if (engine_sql_local(aside_cache_engine(c->server->cache), &q, c->path, f, sql.data,
                                  &result, &err) == ASIDE_OK)
            reply_frame(c, result, "records", false);
        else
            call_status_error(c, &err);
        frame_release(result);
    }
    buf_free(&sql);
    aside_value_release(v);
}

static void answer_stored(call *c, const char *into, const frame *result)
{
    buf *b = call_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"path\": ");
    buf_put_json_string(b, into, strlen(into));
    buf_printf(b, ", \"rows\": %" PRId64 ", \"columns\": %zu}", result->rows,
               result->field_count);
    call_envelope_end(c);
}

void frames_sql(call *c)
{
    const char *query = call_param_value(c, "query", NULL);
    const char *into = call_param_value(c, "into", NULL);
    aside_error err;
    if (!query || !*query) {
        call_error(c, 400, "bad_request", "missing parameter \"query\"");
        return;
    }
    if (into && aside_key_check(into, strlen(into), &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    engine_query q = {resolve, c, into ? 0 : c->server->defaults.result_limit_bytes,
                      c->server->defaults.sql_timeout_ms};
    frame *result = NULL;
    if (engine_sql(aside_cache_engine(c->server->cache), &q, query, &result, &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    if (!into)
        reply_frame(c, result, "records", false);
    else if (aside_store_frame(c->server->cache, into, result, &err) == ASIDE_OK)
        answer_stored(c, into, result);
    else
        call_status_error(c, &err);
    frame_release(result);
}

/* map: the frame published in shared memory, for a process on this host to map. */
void frames_map(call *c)
{
    frame_pandas major;
    if (!call_need_path(c) || !pandas_of(c, &major))
        return;
    aside_publication pub;
    aside_value *v = NULL;
    aside_error err;
    if (aside_publish(c->server->cache, c->path, &c->options, &pub, &v, &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    const frame *f = value_frame(v);
    buf *b = call_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"path\": ");
    buf_put_json_string(b, pub.path, strlen(pub.path));
    buf_printf(b, ", \"format\": \"arrow-file\", \"generation\": %llu, \"bytes\": %llu, "
                  "\"rows\": %" PRId64 ", \"columns\": ",
               (unsigned long long)pub.generation, (unsigned long long)pub.bytes, f->rows);
    put_column_dtypes(f, major, b, true);
    buf_putc(b, '}');
    call_envelope_end(c);
    aside_value_release(v);
}
