/* frames.c -- the API's frame functions: info, describe, head, tail, shape, columns, dtypes,
 * select and sql.
 *
 * A function names its frame with path (or key); the frame is read through the cache like any
 * value (a miss loads it cache-aside), with type=frame implied for keys whose name does not
 * say frame. Answers are JSON in the envelope (orient=records, split, columns, index, values)
 * or, with format=arrow|parquet|csv|json, the bare body in that format: an Arrow stream goes
 * out as the frame's own buffers with writev, never copied.
 *
 * Results a function computes (head, select, sql) are bounded by the result limit: past it the
 * answer is 413, unless sql stores the result with into=, which is bounded by memory alone. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "arrow/arrow.h"
#include "engine/engine.h"
#include "lib/lib.h"
#include "server.h"
#include "value/value.h"

enum { DEFAULT_HEAD_ROWS = 5 };

/* ---- answering frames ------------------------------------------------------------------- */

typedef struct arrow_body {
    arrow_encoding enc;
    struct iovec  *iov;
} arrow_body;

static void arrow_body_release(void *owner)
{
    arrow_body *a = owner;
    arrow_encoding_free(&a->enc);
    free(a->iov);
    free(a);
}

static void answer_arrow(api_call *c, frame *f, bool pandas_metadata)
{
    aside_error err;
    arrow_body *a = calloc(1, sizeof *a);
    if (!a) {
        api_error(c, 503, "nomem", "out of memory");
        return;
    }
    if (arrow_encode(f, ARROW_STREAM, pandas_metadata, &a->enc, &err) != ASIDE_OK) {
        free(a);
        api_status_error(c, &err);
        return;
    }
    a->iov = calloc(a->enc.count ? a->enc.count : 1, sizeof *a->iov);
    if (!a->iov) {
        arrow_body_release(a);
        api_error(c, 503, "nomem", "out of memory");
        return;
    }
    for (size_t i = 0; i < a->enc.count; i++)
        a->iov[i] = (struct iovec){(void *)a->enc.segments[i].data, a->enc.segments[i].length};
    c->res->status = 200;
    c->res->content_type = ARROW_STREAM_MEDIA_TYPE;
    c->res->segments = (http_segments){a->iov, a->enc.count, a->enc.total_bytes, a,
                                       arrow_body_release};
}

/* A parquet file of f in a temporary file, answered with sendfile. */
static void answer_parquet(api_call *c, frame *f)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/aside-export-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    aside_error err;
    if (fd < 0) {
        api_error(c, 500, "io_error", "cannot create a temporary file");
        return;
    }
    close(fd);
    aside_status st = engine_write_parquet(aside_cache_engine(c->api->cache), f, path, &err);
    fd = st == ASIDE_OK ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    unlink(path);
    if (st != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
    aside_value *v = size >= 0 ? value_from_file(ASIDE_TYPE_BYTES, fd, (uint64_t)size) : NULL;
    if (!v) {
        if (fd >= 0 && size < 0)
            close(fd);
        api_error(c, 500, "io_error", "cannot read the parquet export");
        return;
    }
    c->res->status = 200;
    c->res->content_type = "application/vnd.apache.parquet";
    c->res->value = v;
}

static bool valid_orient(api_call *c, const char **orient)
{
    static const char *const orients[] = {"records", "split", "columns", "index", "values",
                                          NULL};
    return api_choice(c, "orient", orients, orient);
}

/* Answer f: in the envelope as JSON, or bare in the format asked for. */
static void answer_frame(api_call *c, frame *f, const char *default_orient, bool whole)
{
    static const char *const formats[] = {"json", "arrow", "parquet", "csv", NULL};
    const char *format = NULL, *orient = default_orient;
    aside_error err;
    if (!api_choice(c, "format", formats, &format) || !valid_orient(c, &orient))
        return;
    if (!format && api_accepts(c, ARROW_STREAM_MEDIA_TYPE))
        format = "arrow";
    if (format && strcmp(format, "arrow") == 0) {
        answer_arrow(c, f, whole);
        return;
    }
    if (format && strcmp(format, "parquet") == 0) {
        answer_parquet(c, f);
        return;
    }
    if (f->memory_bytes > c->api->defaults.result_limit_bytes) {
        char why[256];
        snprintf(why, sizeof why, "the result holds %llu bytes, more than the limit of %llu; "
                 "ask for format=arrow, or store it with into=",
                 (unsigned long long)f->memory_bytes,
                 (unsigned long long)c->api->defaults.result_limit_bytes);
        api_error(c, 413, "too_large", why);
        return;
    }
    buf *b = &c->res->body;
    aside_status st;
    if (format && strcmp(format, "csv") == 0) {
        c->res->status = 200;
        c->res->content_type = "text/csv";
        st = frame_encode_csv(f, b, &err);
    } else if (format) {
        c->res->status = 200;
        c->res->content_type = "application/json";
        st = frame_encode_json(f, orient, b, &err);
    } else {
        b = api_envelope_begin(c);
        st = frame_encode_json(f, orient, b, &err);
        api_envelope_end(c);
    }
    if (st != ASIDE_OK) {
        buf_reset(&c->res->body);
        api_status_error(c, &err);
    }
}

void frames_answer(api_call *c, frame *f) { answer_frame(c, f, "records", false); }

void frames_answer_read(api_call *c, aside_value *v)
{
    answer_frame(c, value_frame(v), "records", true);
}

/* ---- finding the frame ------------------------------------------------------------------ */

/* The frame named by the call, held through *v; false when answered (or deferred). */
static bool frame_of(api_call *c, aside_value **v, frame **f)
{
    if (!api_need_path(c))
        return false;
    static const char *const types[] = {"frame", "json", "bytes", NULL};
    const char *type = NULL;
    if (!api_choice(c, "type", types, &type))
        return false;
    c->options.type = type;
    if (!type && aside_value_type_for_key(c->path) != ASIDE_TYPE_JSON)
        c->options.type = "frame";
    c->options.memory_only = !c->req->may_block;
    aside_read_info info;
    aside_error err;
    aside_status st = aside_read(c->api->cache, c->path, &c->options, v, &info, &err);
    if (st == ASIDE_ERR_WOULD_BLOCK) {
        c->res->defer = true;
        return false;
    }
    if (st != ASIDE_OK) {
        api_status_error(c, &err);
        return false;
    }
    if (!(*f = value_frame(*v))) {
        char why[ASIDE_KEY_MAX_BYTES + 128];
        snprintf(why, sizeof why, "%s is %s, not a frame; read it as one with type=frame",
                 c->path, aside_value_type_name(aside_value_type_of(*v)));
        aside_value_release(*v);
        api_error(c, 400, "not_a_frame", why);
        return false;
    }
    return true;
}

/* ---- functions -------------------------------------------------------------------------- */

/* Answer what put writes about the call's frame, in the envelope. */
static void answer_about(api_call *c, void (*put)(const frame *f, buf *b))
{
    aside_value *v;
    frame *f;
    if (!frame_of(c, &v, &f))
        return;
    buf *b = api_envelope_begin(c);
    put(f, b);
    api_envelope_end(c);
    aside_value_release(v);
}

static void put_shape(const frame *f, buf *b)
{
    buf_printf(b, "[%" PRId64 ", %zu]", f->rows, f->field_count);
}

static void put_columns(const frame *f, buf *b)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < f->field_count; i++) {
        buf_puts(b, i ? ", " : "");
        buf_put_json_string(b, f->fields[i].name, strlen(f->fields[i].name));
    }
    buf_putc(b, ']');
}

/* Each column's pandas dtype: {name: dtype}, or as a list [{"name", "dtype"}]. */
static void put_column_dtypes(const frame *f, buf *b, bool as_list)
{
    buf_putc(b, as_list ? '[' : '{');
    for (size_t i = 0; i < f->field_count; i++) {
        char dtype[96];
        frame_pandas_dtype(&f->fields[i], dtype, sizeof dtype);
        buf_puts(b, i ? ", " : "");
        buf_puts(b, as_list ? "{\"name\": " : "");
        buf_put_json_string(b, f->fields[i].name, strlen(f->fields[i].name));
        buf_puts(b, as_list ? ", \"dtype\": " : ": ");
        buf_put_json_string(b, dtype, strlen(dtype));
        buf_puts(b, as_list ? "}" : "");
    }
    buf_putc(b, as_list ? ']' : '}');
}

static void put_dtypes(const frame *f, buf *b) { put_column_dtypes(f, b, false); }

static void fn_info(api_call *c) { answer_about(c, frame_pandas_info); }
static void fn_shape(api_call *c) { answer_about(c, put_shape); }
static void fn_columns(api_call *c) { answer_about(c, put_columns); }
static void fn_dtypes(api_call *c) { answer_about(c, put_dtypes); }

/* An integer parameter; false when answered with an error. */
static bool int_param(api_call *c, const char *name, int64_t fallback, int64_t *out)
{
    const char *text = api_param(c, name, NULL);
    *out = fallback;
    if (!text)
        return true;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end) {
        char why[128];
        snprintf(why, sizeof why, "parameter \"%s\" must be a whole number", name);
        api_error(c, 400, "bad_request", why);
        return false;
    }
    *out = v;
    return true;
}

/* head and tail, as pandas counts: n < 0 means all but the last (head) or first (tail) -n. */
static void head_or_tail(api_call *c, bool tail)
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
        answer_frame(c, rows, "records", false);
    else
        api_status_error(c, &err);
    frame_release(rows);
    aside_value_release(v);
}

static void fn_head(api_call *c) { head_or_tail(c, false); }
static void fn_tail(api_call *c) { head_or_tail(c, true); }

static void fn_describe(api_call *c)
{
    static const char *const includes[] = {"all", NULL};
    const char *include = NULL;
    if (!api_choice(c, "include", includes, &include))
        return;
    aside_value *v;
    frame *f;
    if (!frame_of(c, &v, &f))
        return;
    frame *stats = NULL;
    aside_error err;
    if (engine_describe(aside_cache_engine(c->api->cache), f, include != NULL, &stats, &err) ==
        ASIDE_OK)
        answer_frame(c, stats, "columns", false);
    else
        api_status_error(c, &err);
    frame_release(stats);
    aside_value_release(v);
}

/* The columns= list as SQL, each checked to be a column of f; false when answered. */
static bool select_list(api_call *c, const frame *f, buf *sql)
{
    const char *list = api_param(c, "columns", NULL);
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
            api_error(c, 400, "bad_request", why);
            return false;
        }
        buf_puts(sql, at == list ? "" : ", ");
        engine_quote_identifier(sql, name);
        at += len + (comma ? 1 : 0);
    }
    return true;
}

/* The SELECT of the select function over the frame named key. */
static bool select_sql(api_call *c, const frame *f, buf *sql)
{
    int64_t limit, offset;
    if (!int_param(c, "limit", -1, &limit) || !int_param(c, "offset", 0, &offset))
        return false;
    if (offset < 0) {
        api_error(c, 400, "bad_request", "parameter \"offset\" must not be negative");
        return false;
    }
    buf_puts(sql, "SELECT ");
    if (!select_list(c, f, sql))
        return false;
    buf_puts(sql, " FROM ");
    engine_frame_sql(sql, c->path);
    const char *where = api_param(c, "where", NULL);
    const char *order = api_param(c, "order_by", NULL);
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
    api_call *c = ctx;
    aside_read_options options = c->options;
    /* a table is a frame; a JSON document only when it was read as one (type=frame) */
    options.type = aside_value_type_for_key(key) == ASIDE_TYPE_JSON ? NULL : "frame";
    options.memory_only = false;
    aside_value *v = NULL;
    aside_status st = aside_read(c->api->cache, key, &options, &v, NULL, err);
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

static void fn_select(api_call *c)
{
    aside_value *v;
    frame *f;
    if (!frame_of(c, &v, &f))
        return;
    buf sql = {0};
    if (select_sql(c, f, &sql)) {
        engine_query q = {resolve, c, c->api->defaults.result_limit_bytes,
                          c->api->defaults.sql_timeout_ms};
        frame *result = NULL;
        aside_error err;
        if (sql.failed)
            api_error(c, 503, "nomem", "out of memory");
        else if (engine_sql_local(aside_cache_engine(c->api->cache), &q, c->path, f, sql.data,
                                  &result, &err) == ASIDE_OK)
            answer_frame(c, result, "records", false);
        else
            api_status_error(c, &err);
        frame_release(result);
    }
    buf_free(&sql);
    aside_value_release(v);
}

static void answer_stored(api_call *c, const char *into, const frame *result)
{
    buf *b = api_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"path\": ");
    buf_put_json_string(b, into, strlen(into));
    buf_printf(b, ", \"rows\": %" PRId64 ", \"columns\": %zu}", result->rows,
               result->field_count);
    api_envelope_end(c);
}

static void fn_sql(api_call *c)
{
    const char *query = api_param(c, "query", NULL);
    const char *into = api_param(c, "into", NULL);
    aside_error err;
    if (!query || !*query) {
        api_error(c, 400, "bad_request", "missing parameter \"query\"");
        return;
    }
    if (into && aside_key_check(into, strlen(into), &err) != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    engine_query q = {resolve, c, into ? 0 : c->api->defaults.result_limit_bytes,
                      c->api->defaults.sql_timeout_ms};
    frame *result = NULL;
    if (engine_sql(aside_cache_engine(c->api->cache), &q, query, &result, &err) != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    if (!into)
        answer_frame(c, result, "records", false);
    else if (aside_store_frame(c->api->cache, into, result, &err) == ASIDE_OK)
        answer_stored(c, into, result);
    else
        api_status_error(c, &err);
    frame_release(result);
}

/* map: the frame published in shared memory, for a process on this host to map. */
static void fn_map(api_call *c)
{
    if (!api_need_path(c))
        return;
    aside_publication pub;
    aside_value *v = NULL;
    aside_error err;
    if (aside_publish(c->api->cache, c->path, &c->options, &pub, &v, &err) != ASIDE_OK) {
        api_status_error(c, &err);
        return;
    }
    const frame *f = value_frame(v);
    buf *b = api_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"path\": ");
    buf_put_json_string(b, pub.path, strlen(pub.path));
    buf_printf(b, ", \"format\": \"arrow-file\", \"generation\": %llu, \"bytes\": %llu, "
                  "\"rows\": %" PRId64 ", \"columns\": ",
               (unsigned long long)pub.generation, (unsigned long long)pub.bytes, f->rows);
    put_column_dtypes(f, b, true);
    buf_putc(b, '}');
    api_envelope_end(c);
    aside_value_release(v);
}

/* ---- the table -------------------------------------------------------------------------- */

typedef struct frame_function {
    const char *name;
    api_run     run;
    bool        may_block;    /* always runs on the blocking pool */
} frame_function;

static const frame_function functions[] = {
    {"info", fn_info, false},         {"cache_item_stats", fn_info, false},
    {"stats_cache_item", fn_info, false}, {"describe", fn_describe, true},
    {"head", fn_head, false},         {"tail", fn_tail, false},
    {"shape", fn_shape, false},       {"columns", fn_columns, false},
    {"dtypes", fn_dtypes, false},     {"select", fn_select, true},
    {"sql", fn_sql, true},            {"map", fn_map, true},
};

const char *const frames_function_names[] = {"info", "cache_item_stats", "stats_cache_item",
                                             "describe", "tail", "shape", "columns", "dtypes",
                                             "select", "sql", "map", NULL};

api_run frames_function(const char *name, bool *may_block, bool *tries_memory)
{
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        if (strcmp(functions[i].name, name) == 0) {
            *may_block = functions[i].may_block;
            *tries_memory = !functions[i].may_block;
            return functions[i].run;
        }
    }
    return NULL;
}
