/* engine.c -- the two DuckDB databases, loading files, running queries.
 *
 * Every query here goes the same way: prepare, look at the result's column types (a type
 * frames do not hold is cast to VARCHAR by wrapping the query), stream the result, convert
 * each chunk into frame slices and append them to a builder that enforces the byte bound. User
 * SQL must be a single SELECT: it is prepared from an extracted statement and its statement
 * type checked, so no DDL, SET, ATTACH, COPY or PRAGMA runs, even before the locked
 * configuration would refuse it.
 *
 * CSV columns are inferred as pandas' read_csv infers them: booleans, integers, floats, else
 * strings (DuckDB would also find dates and times, which pandas leaves as strings).
 *
 * A parquet file written by pandas carries its dtypes in the "pandas" metadata; DuckDB reads
 * such a file faithfully except for what it has no type for: categoricals (read as strings) and
 * nanosecond time zones (read as microseconds in UTC). The loader reads that metadata first
 * (through the parser the Arrow reader uses too, frame/pandas_meta.h) and asks the builder for
 * the pandas types, so a frame shows the dtypes pandas would. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "engine_internal.h"
#include "frame/pandas_meta.h"

enum {
    MIN_DUCKDB_MEMORY_MIB = 128 /* DuckDB needs room for its buffers even on a tiny budget */
};

enum { DB_LOADER, DB_QUERY, DB_COUNT };

struct engine {
    duckdb_database loader; /* reads the disk tier's files with queries built here only */
    duckdb_database query;  /* users' SQL: no external access, configuration locked */
    watchdog       *watchdog;
    char            spill[DB_COUNT][PATH_MAX]; /* each database's spill folder ("": none) */
};

static const char *const db_names[DB_COUNT] = {[DB_LOADER] = "loader", [DB_QUERY] = "query"};

/* ---- quoting ---------------------------------------------------------------------------- */

static void quote(buf *b, const char *text, char mark)
{
    buf_putc(b, mark);
    for (const char *p = text; *p; p++) {
        if (*p == mark)
            buf_putc(b, mark);
        buf_putc(b, *p);
    }
    buf_putc(b, mark);
}

void engine_quote_identifier(buf *b, const char *name) { quote(b, name, '"'); }

void engine_frame_sql(buf *b, const char *key)
{
    buf_puts(b, "aside_frame(");
    quote(b, key, '\'');
    buf_putc(b, ')');
}

/* ---- opening ---------------------------------------------------------------------------- */

/* The configuration a database opens with: its memory, threads and spill folder (or none:
 * DuckDB's default is ./.tmp), no extension loaded behind our back, and for users' SQL no
 * file, URL or extension reachable at all. */
static bool configure(duckdb_config cfg, const engine_config *ec, bool locked, const char *spill)
{
    char text[32];
    bool ok = duckdb_set_config(cfg, "temp_directory", spill) == DuckDBSuccess;
    if (ec->memory_limit_bytes) {
        uint64_t mib = ec->memory_limit_bytes >> 20;
        snprintf(text, sizeof text, "%lluMiB",
                 (unsigned long long)(mib < MIN_DUCKDB_MEMORY_MIB ? MIN_DUCKDB_MEMORY_MIB : mib));
        ok = ok && duckdb_set_config(cfg, "memory_limit", text) == DuckDBSuccess;
    }
    if (ec->threads) {
        snprintf(text, sizeof text, "%u", ec->threads);
        ok = ok && duckdb_set_config(cfg, "threads", text) == DuckDBSuccess;
    }
    ok = ok && duckdb_set_config(cfg, "autoinstall_known_extensions", "false") == DuckDBSuccess;
    ok = ok && duckdb_set_config(cfg, "autoload_known_extensions", "false") == DuckDBSuccess;
    if (locked)
        ok = ok && duckdb_set_config(cfg, "enable_external_access", "false") == DuckDBSuccess;
    return ok;
}

static bool run_statement(duckdb_connection conn, const char *sql)
{
    duckdb_result res;
    memset(&res, 0, sizeof res);
    bool ok = duckdb_query(conn, sql, &res) == DuckDBSuccess;
    duckdb_destroy_result(&res);
    return ok;
}

/* What must be set on the open database, then its configuration locked. The spill limit is
 * one: DuckDB 1.4 keeps a max_temp_directory_size given at open in its configuration (which
 * then shows it) without handing it to the buffer manager that enforces it; a SET does. */
static bool settle(duckdb_connection conn, const engine_config *ec, const char *spill)
{
    char sql[96];
    bool ok = true;
    if (spill[0] && ec->spill_limit_bytes) {
        snprintf(sql, sizeof sql, "SET max_temp_directory_size = '%lluKiB'",
                 (unsigned long long)(ec->spill_limit_bytes >> 10));
        ok = run_statement(conn, sql);
    }
    return ok && run_statement(conn, "SET lock_configuration = true");
}

static aside_status open_database(const engine_config *ec, bool locked, const char *spill,
                                  duckdb_database *out, aside_error *err)
{
    duckdb_config cfg;
    char *why = NULL;
    if (duckdb_create_config(&cfg) == DuckDBError)
        return error_set(err, ASIDE_ERR_NOMEM, "cannot configure DuckDB");
    aside_status st = ASIDE_OK;
    if (!configure(cfg, ec, locked, spill))
        st = error_set(err, ASIDE_ERR_INTERNAL, "DuckDB refused its configuration");
    else if (duckdb_open_ext(":memory:", out, cfg, &why) == DuckDBError)
        st = error_set(err, ASIDE_ERR_INTERNAL, "cannot open DuckDB: %s", why ? why : "");
    duckdb_free(why);
    duckdb_destroy_config(&cfg);
    if (st != ASIDE_OK)
        return st;
    duckdb_connection conn;
    if (duckdb_connect(*out, &conn) == DuckDBError) {
        duckdb_close(out);
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot connect to DuckDB");
    }
    bool ok = scan_register(conn, err);
    if (ok && !settle(conn, ec, spill))
        ok = error_set(err, ASIDE_ERR_INTERNAL, "DuckDB refused its configuration") == ASIDE_OK;
    duckdb_disconnect(&conn);
    if (!ok) {
        duckdb_close(out);
        return err ? err->status : ASIDE_ERR_INTERNAL;
    }
    if (locked)
        duckdb_add_replacement_scan(*out, scan_replacement, NULL, NULL);
    return ASIDE_OK;
}

/* Each database's spill folder under cfg's, emptied; none without one. */
static aside_status prepare_spill(engine *e, const engine_config *cfg, aside_error *err)
{
    aside_status st = ASIDE_OK;
    for (int i = 0; i < DB_COUNT && st == ASIDE_OK && cfg->spill_dir; i++)
        st = spill_prepare(cfg->spill_dir, db_names[i], e->spill[i], sizeof e->spill[i], err);
    return st;
}

aside_status engine_open(const engine_config *cfg, engine **out, aside_error *err)
{
    engine *e = calloc(1, sizeof *e);
    if (!e)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    aside_status st = prepare_spill(e, cfg, err);
    if (st == ASIDE_OK)
        st = watchdog_start(&e->watchdog, err);
    if (st == ASIDE_OK &&
        (st = open_database(cfg, false, e->spill[DB_LOADER], &e->loader, err)) == ASIDE_OK &&
        (st = open_database(cfg, true, e->spill[DB_QUERY], &e->query, err)) != ASIDE_OK)
        duckdb_close(&e->loader);
    if (st != ASIDE_OK) {
        watchdog_stop(e->watchdog);
        free(e);
        return st;
    }
    *out = e;
    return ASIDE_OK;
}

void engine_close(engine *e)
{
    if (!e)
        return;
    duckdb_close(&e->query);
    duckdb_close(&e->loader);
    watchdog_stop(e->watchdog);
    free(e);
}

uint64_t engine_spill_bytes(engine *e)
{
    if (!e)
        return 0;
    const char *paths[DB_COUNT] = {e->spill[DB_LOADER], e->spill[DB_QUERY]};
    return spill_bytes(paths, DB_COUNT);
}

/* ---- results into frames ---------------------------------------------------------------- */

/* What the loader learned from a file's metadata about the types pandas gave its columns. */
typedef struct column_hint {
    char      *name;
    bool       category, ordered;
    bool       timestamp;
    frame_unit unit;
    char      *timezone;
    char      *pandas_dtype;
    bool       as_float; /* an integer column pandas holds as float64 (it has nulls) */
    bool       large_strings; /* strings (or categories) stored as Arrow large_string */
} column_hint;

typedef struct hints {
    column_hint *columns;
    size_t       count;
    frame_index  index;
    char        *pandas_metadata;
} hints;

static void hints_free(hints *h)
{
    for (size_t i = 0; i < h->count; i++) {
        free(h->columns[i].name);
        free(h->columns[i].timezone);
        free(h->columns[i].pandas_dtype);
    }
    free(h->columns);
    free(h->index.name);
    free(h->pandas_metadata);
    memset(h, 0, sizeof *h);
}

static bool apply_hint(frame_field *f, const column_hint *hint)
{
    if (hint->as_float && f->type >= FRAME_INT8 && f->type <= FRAME_UINT64)
        f->type = FRAME_FLOAT64;
    if (hint->category && (f->type == FRAME_UTF8 || f->type == FRAME_CATEGORY)) {
        frame_dictionary_free(f->dictionary);
        f->dictionary = NULL;
        f->type = FRAME_CATEGORY;
        f->ordered = hint->ordered;
    }
    if (hint->large_strings &&
        (f->type == FRAME_UTF8 || f->type == FRAME_BINARY || f->type == FRAME_CATEGORY))
        f->large_strings = true;
    if (hint->timestamp && f->type == FRAME_TIMESTAMP) {
        f->unit = hint->unit;
        free(f->timezone);
        f->timezone = hint->timezone ? strdup(hint->timezone) : NULL;
        if (hint->timezone && !f->timezone)
            return false;
    }
    if (hint->pandas_dtype) {
        free(f->pandas_dtype);
        if (!(f->pandas_dtype = strdup(hint->pandas_dtype)))
            return false;
    }
    return true;
}

typedef struct result_reader {
    size_t              count;
    duckdb_logical_type *types;
    frame_field        *fields;
    convert_scratch    *scratch;
    frame_slice        *slices;
} result_reader;

static void reader_free(result_reader *r)
{
    for (size_t i = 0; i < r->count; i++) {
        if (r->types)
            duckdb_destroy_logical_type(&r->types[i]);
        if (r->fields)
            frame_field_clear(&r->fields[i]);
        if (r->scratch)
            convert_scratch_free(&r->scratch[i]);
    }
    free(r->types);
    free(r->fields);
    free(r->scratch);
    free(r->slices);
}

static bool reader_init(result_reader *r, duckdb_result *res, const hints *h)
{
    size_t n = r->count = duckdb_column_count(res);
    r->types = calloc(n ? n : 1, sizeof *r->types);
    r->fields = calloc(n ? n : 1, sizeof *r->fields);
    r->scratch = calloc(n ? n : 1, sizeof *r->scratch);
    r->slices = calloc(n ? n : 1, sizeof *r->slices);
    if (!r->types || !r->fields || !r->scratch || !r->slices)
        return false;
    for (size_t i = 0; i < n; i++) {
        r->types[i] = duckdb_column_logical_type(res, i);
        if (!convert_field(r->types[i], duckdb_column_name(res, i), &r->fields[i]))
            return false;
        for (size_t j = 0; h && j < h->count; j++) {
            if (strcmp(h->columns[j].name, r->fields[i].name) == 0 &&
                !apply_hint(&r->fields[i], &h->columns[j]))
                return false;
        }
    }
    return true;
}

static aside_status append_chunk(result_reader *r, frame_builder *b, duckdb_data_chunk chunk,
                                 aside_error *err)
{
    idx_t n = duckdb_data_chunk_get_size(chunk);
    for (size_t i = 0; i < r->count; i++) {
        if (!convert_vector(duckdb_data_chunk_get_vector(chunk, i), r->types[i], &r->fields[i],
                            n, &r->scratch[i], &r->slices[i]))
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory reading a result");
    }
    return frame_builder_append(b, r->slices, err);
}

/* What bounds a query: its result's bytes and its time. */
typedef struct run_bounds {
    uint64_t          limit_bytes; /* 0: none */
    int64_t           deadline_ms; /* monotonic; 0: none */
    duckdb_connection conn;        /* interrupted at the deadline */
    bool              timed_out;
} run_bounds;

static bool past_deadline(run_bounds *b)
{
    if (!b->deadline_ms || b->timed_out || clock_mono_ns() / 1000000 < b->deadline_ms)
        return b->timed_out;
    b->timed_out = true;
    duckdb_interrupt(b->conn);
    return true;
}

/* Why DuckDB failed a query, as a status: the deadline, a limit of memory or of spill space
 * (DuckDB calls both "Out of Memory"), or status with DuckDB's message. */
static aside_status query_error(const char *why, aside_status status, run_bounds *bounds,
                                aside_error *err)
{
    if (past_deadline(bounds))
        return error_set(err, ASIDE_ERR_TIMEOUT, "the query ran past its time limit");
    if (why && strstr(why, "Out of Memory Error")) /* its first line: the rest is advice */
        return error_set(err, ASIDE_ERR_TOO_LARGE, "the query needs more %s than SQL may use: %.*s",
                         strstr(why, "max_temp_directory_size") ? "spill space" : "memory",
                         (int)strcspn(why, "\n"), why);
    return error_set(err, status, "%s", why ? why : "the query failed");
}

/* Stream res into a new frame, stopping past the bounds. */
static aside_status result_to_frame(duckdb_result *res, const hints *h, run_bounds *bounds,
                                    frame **out, aside_error *err)
{
    uint64_t limit_bytes = bounds->limit_bytes;
    result_reader r = {0};
    frame_builder *b = NULL;
    aside_status st = ASIDE_OK;
    if (!reader_init(&r, res, h)) {
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory reading a result");
        goto done;
    }
    if (!(b = frame_builder_create(r.fields, r.count, 0, err))) {
        st = err ? err->status : ASIDE_ERR_NOMEM;
        goto done;
    }
    if (h && ((st = frame_builder_set_index(b, &h->index, err)) != ASIDE_OK ||
              (st = frame_builder_set_pandas_metadata(b, h->pandas_metadata, err)) != ASIDE_OK))
        goto done;
    for (;;) {
        duckdb_data_chunk chunk = past_deadline(bounds) ? NULL : duckdb_fetch_chunk(*res);
        if (!chunk)
            break;
        st = append_chunk(&r, b, chunk, err);
        duckdb_destroy_data_chunk(&chunk);
        if (st != ASIDE_OK)
            goto done;
        if (limit_bytes && frame_builder_bytes(b) > limit_bytes) {
            st = error_set(err, ASIDE_ERR_TOO_LARGE, "the result passed its limit of %llu bytes",
                           (unsigned long long)limit_bytes);
            goto done;
        }
    }
    if (duckdb_result_error(res) || past_deadline(bounds)) {
        st = query_error(duckdb_result_error(res), ASIDE_ERR_INVALID, bounds, err);
        goto done;
    }
    *out = frame_builder_finish(b, err);
    b = NULL;
    if (!*out)
        st = err ? err->status : ASIDE_ERR_NOMEM;
done:
    frame_builder_destroy(b);
    reader_free(&r);
    return st;
}

/* What a column of a type frames do not hold becomes: 128-bit integers (sums of integers) the
 * 64-bit ones pandas has (a sum past them fails with DuckDB's message), everything else text. */
static const char *cast_target(duckdb_type type)
{
    return type == DUCKDB_TYPE_HUGEINT ? "BIGINT" : type == DUCKDB_TYPE_UHUGEINT ? "UBIGINT"
                                                                                 : "VARCHAR";
}

/* The query, wrapped to cast the columns frames have no type for to VARCHAR, or NULL when it
 * needs no wrapping (or out of memory: *failed). */
static char *cast_unsupported(duckdb_prepared_statement prep, const char *sql, bool *failed)
{
    idx_t n = duckdb_prepared_statement_column_count(prep);
    buf b = {0};
    size_t casts = 0;
    for (idx_t i = 0; i < n; i++) {
        duckdb_logical_type t = duckdb_prepared_statement_column_logical_type(prep, i);
        bool ok = convert_supported(t);
        duckdb_destroy_logical_type(&t);
        if (ok)
            continue;
        buf_puts(&b, casts++ ? ", CAST(" : "SELECT * REPLACE (CAST(");
        char *name = (char *)duckdb_prepared_statement_column_name(prep, i); /* ours to free */
        engine_quote_identifier(&b, name ? name : "");
        buf_printf(&b, " AS %s) AS ", cast_target(duckdb_prepared_statement_column_type(prep, i)));
        engine_quote_identifier(&b, name ? name : "");
        duckdb_free(name);
    }
    if (!casts)
        return NULL;
    buf_puts(&b, ") FROM (");
    buf_puts(&b, sql);
    buf_puts(&b, ")");
    *failed = b.failed;
    return buf_take(&b);
}

typedef enum query_kind { QUERY_OURS, QUERY_USERS } query_kind;

static aside_status prepare_error(duckdb_prepared_statement prep, query_kind kind,
                                  aside_error *err)
{
    const char *why = prep ? duckdb_prepare_error(prep) : NULL;
    aside_status st = error_set(err, kind == QUERY_USERS ? ASIDE_ERR_INVALID : ASIDE_ERR_BAD_VALUE,
                                "%s", why ? why : "the query could not be prepared");
    if (err && kind == QUERY_USERS)
        snprintf(err->code, sizeof err->code, "bad_query");
    return st;
}

/* Prepare sql (one statement), with casts added where needed. */
static aside_status prepare(duckdb_connection conn, const char *sql, query_kind kind,
                            duckdb_prepared_statement *out, aside_error *err)
{
    duckdb_extracted_statements stmts = NULL;
    idx_t count = duckdb_extract_statements(conn, sql, &stmts);
    aside_status st = ASIDE_OK;
    *out = NULL;
    if (count != 1) {
        const char *why = count ? "give exactly one statement" :
                                  duckdb_extract_statements_error(stmts);
        st = error_set(err, ASIDE_ERR_INVALID, "%s", why ? why : "give exactly one statement");
        if (err)
            snprintf(err->code, sizeof err->code, "bad_query");
    } else if (duckdb_prepare_extracted_statement(conn, stmts, 0, out) == DuckDBError) {
        st = prepare_error(*out, kind, err);
    } else if (kind == QUERY_USERS &&
               duckdb_prepared_statement_type(*out) != DUCKDB_STATEMENT_TYPE_SELECT) {
        st = error_set(err, ASIDE_ERR_INVALID, "only SELECT statements may run");
        snprintf(err->code, sizeof err->code, "bad_query");
    }
    duckdb_destroy_extracted(&stmts);
    if (st != ASIDE_OK)
        goto fail;
    bool failed = false;
    char *wrapped = cast_unsupported(*out, sql, &failed);
    if (failed)
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (wrapped) {
        duckdb_destroy_prepare(out);
        if (duckdb_prepare(conn, wrapped, out) == DuckDBError)
            st = prepare_error(*out, kind, err);
        free(wrapped);
    }
    if (st == ASIDE_OK)
        return ASIDE_OK;
fail:
    duckdb_destroy_prepare(out);
    return st;
}

/* Run the pending query's tasks until its first chunk is ready, interrupting it at the
 * deadline; then take its streaming result. On failure *why is DuckDB's reason (the pending
 * result's: taking the result would replace it with a message of its own). */
static duckdb_state execute(duckdb_pending_result pending, run_bounds *bounds,
                            duckdb_result *res, const char **why)
{
    for (;;) {
        duckdb_pending_state state = duckdb_pending_execute_task(pending);
        if (state == DUCKDB_PENDING_ERROR) {
            *why = duckdb_pending_error(pending);
            return DuckDBError;
        }
        if (state == DUCKDB_PENDING_RESULT_READY)
            break;
        past_deadline(bounds); /* an interrupted query ends in an error state */
    }
    duckdb_state st = duckdb_execute_pending(pending, res);
    if (st == DuckDBError)
        *why = duckdb_result_error(res);
    return st;
}

/* Run sql on conn into a frame. */
static aside_status run(duckdb_connection conn, const char *sql, query_kind kind, const hints *h,
                        run_bounds *bounds, frame **out, aside_error *err)
{
    duckdb_prepared_statement prep = NULL;
    duckdb_pending_result pending = NULL;
    duckdb_result res;
    memset(&res, 0, sizeof res);
    bounds->conn = conn;
    aside_status st = prepare(conn, sql, kind, &prep, err);
    if (st != ASIDE_OK)
        return st;
    const char *why = NULL;
    if (duckdb_pending_prepared_streaming(prep, &pending) == DuckDBError ||
        execute(pending, bounds, &res, &why) == DuckDBError) {
        if (!why && pending)
            why = duckdb_pending_error(pending);
        st = query_error(why, kind == QUERY_USERS ? ASIDE_ERR_INVALID : ASIDE_ERR_BAD_VALUE,
                         bounds, err);
        if (err && st == ASIDE_ERR_INVALID)
            snprintf(err->code, sizeof err->code, "bad_query");
        duckdb_destroy_result(&res);
    } else {
        st = result_to_frame(&res, h, bounds, out, err);
        if (st == ASIDE_ERR_INVALID && kind == QUERY_OURS)
            err->status = st = ASIDE_ERR_BAD_VALUE;
        else if (st == ASIDE_ERR_INVALID && err)
            snprintf(err->code, sizeof err->code, "bad_query");
        duckdb_destroy_result(&res);
    }
    duckdb_destroy_pending(&pending);
    duckdb_destroy_prepare(&prep);
    return st;
}

/* ---- loading files ---------------------------------------------------------------------- */

static bool add_hint(hints *h, const column_hint *hint)
{
    column_hint *grown = realloc(h->columns, (h->count + 1) * sizeof *grown);
    if (!grown)
        return false;
    h->columns = grown;
    h->columns[h->count++] = *hint;
    return true;
}

/* A hint from what the pandas metadata says of a column; false when out of memory. */
static bool hint_from_column(const pandas_meta_column *c, hints *h)
{
    column_hint hint = {.category = c->category, .ordered = c->ordered,
                        .timestamp = c->timestamp, .unit = c->unit,
                        .name = strdup(c->name),
                        .timezone = c->timezone ? strdup(c->timezone) : NULL,
                        .pandas_dtype = c->extension_dtype ? strdup(c->extension_dtype) : NULL};
    if (hint.name && (!c->timezone || hint.timezone) &&
        (!c->extension_dtype || hint.pandas_dtype) && add_hint(h, &hint))
        return true;
    free(hint.name);
    free(hint.timezone);
    free(hint.pandas_dtype);
    return false;
}

/* Hints from the pandas metadata JSON (parsed as every file reader parses it, pandas_meta.h):
 * the columns' types and the RangeIndex; the text is kept for the frame. */
static bool hints_from_pandas(const char *text, hints *h)
{
    pandas_meta meta;
    bool ok = pandas_meta_parse(text, &meta, NULL) == ASIDE_OK;
    for (size_t i = 0; ok && i < meta.column_count; i++)
        ok = hint_from_column(&meta.columns[i], h);
    if (ok && meta.has_range_index) {
        free(h->index.name);
        h->index = meta.range_index;
        meta.range_index.name = NULL; /* now the hints' */
    }
    pandas_meta_free(&meta);
    return ok && (h->pandas_metadata = strdup(text)) != NULL;
}

/* The parquet file's "pandas" and "ARROW:schema" metadata, malloc'd and NUL-terminated (NULL
 * when absent), read in one pass over the file's footer. */
static aside_status kv_values(duckdb_connection conn, const char *path, char **pandas,
                              char **arrow, size_t *arrow_len, aside_error *err)
{
    buf sql = {0};
    buf_puts(&sql, "SELECT key = 'pandas', value FROM parquet_kv_metadata(");
    quote(&sql, path, '\'');
    buf_puts(&sql, ") WHERE key IN ('pandas', 'ARROW:schema')");
    *pandas = *arrow = NULL;
    if (sql.failed)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    duckdb_result res;
    aside_status st = ASIDE_OK;
    if (duckdb_query(conn, sql.data, &res) == DuckDBError)
        st = error_set(err, ASIDE_ERR_BAD_VALUE, "%s", duckdb_result_error(&res));
    for (idx_t row = 0; st == ASIDE_OK && row < duckdb_row_count(&res); row++) {
        char **out = duckdb_value_boolean(&res, 0, row) ? pandas : arrow;
        duckdb_blob blob = duckdb_value_blob(&res, 1, row);
        free(*out);
        if ((*out = malloc(blob.size + 1))) {
            memcpy(*out, blob.data, blob.size);
            (*out)[blob.size] = '\0';
            if (out == arrow)
                *arrow_len = blob.size;
        } else {
            st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        }
        duckdb_free(blob.data);
    }
    duckdb_destroy_result(&res);
    buf_free(&sql);
    return st;
}

/* Hints from the Arrow schema pyarrow stores (base64 in "ARROW:schema"): the exact time zones,
 * units, categoricals and string widths, for files written without pandas too. A schema that does not decode
 * gives no hints: DuckDB's reading stands. */
static bool hints_from_arrow(const char *base64, size_t len, hints *h)
{
    buf raw = {0};
    frame_field *fields = NULL;
    size_t count = 0;
    bool ok = true;
    if (buf_put_base64_decoded(&raw, base64, len) &&
        arrow_decode_schema(raw.data, raw.len, &fields, &count, NULL, NULL) == ASIDE_OK) {
        for (size_t i = 0; ok && i < count; i++) {
            frame_field *f = &fields[i];
            column_hint hint = {.category = f->type == FRAME_CATEGORY, .ordered = f->ordered,
                                .timestamp = f->type == FRAME_TIMESTAMP, .unit = f->unit,
                                /* pyarrow reads a parquet file's categories as string,
                                   whatever width the stored schema gives them */
                                .large_strings = f->large_strings &&
                                                 f->type != FRAME_CATEGORY};
            if (!hint.category && !hint.timestamp && !hint.large_strings)
                continue;
            hint.name = strdup(f->name);
            hint.timezone = f->timezone ? strdup(f->timezone) : NULL;
            ok = hint.name && (!f->timezone || hint.timezone) && add_hint(h, &hint);
            if (!ok) {
                free(hint.name);
                free(hint.timezone);
            }
        }
    }
    for (size_t i = 0; i < count; i++)
        frame_field_clear(&fields[i]);
    free(fields);
    buf_free(&raw);
    return ok;
}

/* What the parquet file's writer said of its types: the Arrow schema, the pandas metadata. */
static aside_status parquet_hints(duckdb_connection conn, const char *path, hints *h,
                                  aside_error *err)
{
    char *pandas = NULL, *arrow = NULL;
    size_t arrow_len = 0;
    h->index.step = 1;
    aside_status st = kv_values(conn, path, &pandas, &arrow, &arrow_len, err);
    /* pandas' hints first: the Arrow schema's, applied after, are exact where both speak */
    if (st == ASIDE_OK && ((pandas && !hints_from_pandas(pandas, h)) ||
                           (arrow && !hints_from_arrow(arrow, arrow_len, h))))
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    free(pandas);
    free(arrow);
    return st;
}

/* pandas' read_csv defaults: a header, commas, double quotes, and its type inference. */
#define PANDAS_CSV                                                                              \
    "header = true, delim = ',', quote = '\"', escape = '\"', strict_mode = true, "             \
    "auto_type_candidates = ['BOOLEAN', 'BIGINT', 'DOUBLE', 'VARCHAR']"

static void reader_sql(buf *b, const char *path, engine_format format)
{
    static const char *const readers[] = {
        [ENGINE_PARQUET] = "read_parquet(",
        [ENGINE_CSV] = "read_csv(",
        [ENGINE_CSV_GZIP] = "read_csv(",
        [ENGINE_JSON_ARRAY] = "read_json(",
        [ENGINE_JSONL] = "read_json("};
    static const char *const options[] = {
        [ENGINE_PARQUET] = ")",
        [ENGINE_CSV] = ", compression = 'none', " PANDAS_CSV ")",
        [ENGINE_CSV_GZIP] = ", compression = 'gzip', " PANDAS_CSV ")",
        [ENGINE_JSON_ARRAY] = ", format = 'array', records = true)",
        [ENGINE_JSONL] = ", format = 'newline_delimited', records = true)"};
    buf_puts(b, "SELECT * FROM ");
    buf_puts(b, readers[format]);
    quote(b, path, '\'');
    buf_puts(b, options[format]);
}

/* False for what DuckDB makes of a CSV without even a header line (an empty file, a gzip
 * stream cut short): no columns, or one it named "column0" and no rows. pandas refuses those. */
static bool has_header(const frame *f)
{
    return f->field_count > 0 &&
           !(f->field_count == 1 && f->rows == 0 && strcmp(f->fields[0].name, "column0") == 0);
}

aside_status engine_load(engine *e, const char *path, engine_format format,
                         uint64_t limit_bytes, frame **out, aside_error *err)
{
    duckdb_connection conn;
    if (duckdb_connect(e->loader, &conn) == DuckDBError)
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot connect to DuckDB");
    hints h = {.index.step = 1};
    buf sql = {0};
    aside_status st = format == ENGINE_PARQUET ? parquet_hints(conn, path, &h, err) : ASIDE_OK;
    reader_sql(&sql, path, format);
    if (st == ASIDE_OK && sql.failed)
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    run_bounds bounds = {.limit_bytes = limit_bytes};
    if (st == ASIDE_OK)
        st = run(conn, sql.data, QUERY_OURS, &h, &bounds, out, err);
    if (st == ASIDE_OK && (format == ENGINE_CSV || format == ENGINE_CSV_GZIP) &&
        !has_header(*out)) {
        frame_release(*out);
        st = error_set(err, ASIDE_ERR_BAD_VALUE, "no columns to parse from the file");
    }
    buf_free(&sql);
    hints_free(&h);
    duckdb_disconnect(&conn);
    return st;
}

/* ---- users' queries --------------------------------------------------------------------- */

/* Make the table name a view of aside_frame(name) on this connection, so "sales.parquet" means
 * the cached frame, not DuckDB's reading of a file by that name. Views are temporary: they go
 * with the connection. False when name is no key, or the view cannot be made (it exists, or
 * its frame cannot be had: the scope then says why). */
static bool create_frame_view(duckdb_connection conn, const char *name)
{
    if (aside_key_check(name, strlen(name), NULL) != ASIDE_OK)
        return false;
    buf view = {0};
    buf_puts(&view, "CREATE TEMP VIEW ");
    quote(&view, name, '"');
    buf_puts(&view, " AS SELECT * FROM ");
    engine_frame_sql(&view, name);
    duckdb_result res;
    memset(&res, 0, sizeof res);
    bool ok = !view.failed && duckdb_query(conn, view.data, &res) == DuckDBSuccess;
    duckdb_destroy_result(&res);
    buf_free(&view);
    return ok;
}

/* Views for the tables the query names, as far as DuckDB's parser lists them (it gives up on
 * some queries, such as joins with USING: missing_table catches those). A name that is no cache
 * key (a CTE's) gets no view. */
static void create_frame_views(duckdb_connection conn, const char *sql)
{
    duckdb_value names = duckdb_get_table_names(conn, sql, false);
    idx_t count = names ? duckdb_get_list_size(names) : 0;
    for (idx_t i = 0; i < count; i++) {
        duckdb_value item = duckdb_get_list_child(names, i);
        char *name = item ? duckdb_get_varchar(item) : NULL;
        if (name)
            create_frame_view(conn, name);
        duckdb_free(name);
        duckdb_destroy_value(&item);
    }
    duckdb_destroy_value(&names);
}

/* The table a failed query could not find, from DuckDB's message: a name it took for a file
 * ('Cannot access file "x"') or did not know ('Table with name x does not exist'). */
static bool missing_table(const char *message, char *name, size_t size)
{
    static const struct {
        const char *before, *after;
    } forms[] = {{"Cannot access file \"", "\""}, {"Table with name ", " does not exist"}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        const char *start = strstr(message, forms[i].before);
        if (!start)
            continue;
        start += strlen(forms[i].before);
        const char *end = strstr(start, forms[i].after);
        if (!end || (size_t)(end - start) >= size || end == start)
            continue;
        memcpy(name, start, (size_t)(end - start));
        name[end - start] = '\0';
        return true;
    }
    return false;
}

enum { MAX_TABLES_FOUND_LATE = 32 }; /* retries for tables the parser did not list */

/* Hints that give a query's columns named like the local frame's what pandas would keep: the
 * unit and zone of time-zoned timestamps (DuckDB's are microseconds in UTC), float64 for
 * integer columns with nulls (whether or not the selected rows have one). */
static bool hints_from_frame(const frame *f, hints *h)
{
    for (size_t i = 0; f && i < f->field_count; i++) {
        const frame_field *fd = &f->fields[i];
        if (fd->type >= FRAME_INT8 && fd->type <= FRAME_UINT64 && fd->null_count > 0 &&
            !fd->pandas_dtype) {
            column_hint hint = {.as_float = true, .name = strdup(fd->name)};
            if (!hint.name || !add_hint(h, &hint)) {
                free(hint.name);
                return false;
            }
            continue;
        }
        if (fd->type != FRAME_TIMESTAMP || !fd->timezone)
            continue;
        column_hint hint = {.timestamp = true, .unit = fd->unit, .name = strdup(fd->name),
                            .timezone = strdup(fd->timezone)};
        if (!hint.name || !hint.timezone || !add_hint(h, &hint)) {
            free(hint.name);
            free(hint.timezone);
            return false;
        }
    }
    return true;
}

/* Run sql on a new connection of the query database, watched by the watchdog when the query
 * has a deadline. */
static aside_status run_scoped(engine *e, engine_scope *scope, const char *sql, query_kind kind,
                               frame **out, aside_error *err)
{
    const engine_query *q = scope->query;
    run_bounds bounds = {.limit_bytes = q->result_limit_bytes,
                         .deadline_ms = q->timeout_ms ? clock_mono_ns() / 1000000 + q->timeout_ms
                                                      : 0};
    hints h = {.index.step = 1};
    duckdb_connection conn;
    if (!hints_from_frame(scope->local, &h)) {
        hints_free(&h);
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    if (duckdb_connect(e->query, &conn) == DuckDBError) {
        hints_free(&h);
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot connect to DuckDB");
    }
    engine_watch watch = {.conn = conn, .deadline_ms = bounds.deadline_ms};
    if (watch.deadline_ms)
        watchdog_add(e->watchdog, &watch);
    engine_scope_enter(scope);
    if (q->resolve)
        create_frame_views(conn, sql);
    aside_status st = run(conn, sql, kind, &h, &bounds, out, err);
    char name[ASIDE_KEY_MAX_BYTES + 1];
    for (int i = 0; i < MAX_TABLES_FOUND_LATE && st == ASIDE_ERR_INVALID && q->resolve &&
                    scope->failure.status == ASIDE_OK && err &&
                    missing_table(err->message, name, sizeof name) &&
                    create_frame_view(conn, name);
         i++)
        st = run(conn, sql, kind, &h, &bounds, out, err);
    engine_scope_enter(NULL);
    if (watch.deadline_ms)
        watchdog_remove(e->watchdog, &watch);
    duckdb_disconnect(&conn);
    hints_free(&h);
    if (st != ASIDE_OK && scope->failure.status != ASIDE_OK)
        st = error_copy(err, &scope->failure); /* a frame the query named could not be had */
    return st;
}

aside_status engine_sql(engine *e, const engine_query *q, const char *sql, frame **out,
                        aside_error *err)
{
    engine_scope scope = {.query = q};
    return run_scoped(e, &scope, sql, QUERY_USERS, out, err);
}

aside_status engine_sql_local(engine *e, const engine_query *q, const char *name, frame *local,
                              const char *sql, frame **out, aside_error *err)
{
    engine_scope scope = {.query = q, .local_name = name, .local = local};
    return run_scoped(e, &scope, sql, QUERY_USERS, out, err);
}

aside_status engine_write_parquet(engine *e, frame *f, const char *path, aside_error *err)
{
    static const char local_name[] = "aside:export";
    duckdb_connection conn;
    if (duckdb_connect(e->loader, &conn) == DuckDBError)
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot connect to DuckDB");
    buf sql = {0};
    buf_puts(&sql, "COPY (SELECT * FROM ");
    engine_frame_sql(&sql, local_name);
    buf_puts(&sql, ") TO ");
    quote(&sql, path, '\'');
    buf_puts(&sql, " (FORMAT parquet, COMPRESSION snappy)");
    engine_scope scope = {.local_name = local_name, .local = f};
    engine_scope_enter(&scope);
    duckdb_result res;
    aside_status st = ASIDE_OK;
    if (sql.failed)
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    else if (duckdb_query(conn, sql.data, &res) == DuckDBError)
        st = error_set(err, ASIDE_ERR_IO, "writing parquet failed: %s", duckdb_result_error(&res));
    if (!sql.failed)
        duckdb_destroy_result(&res);
    engine_scope_enter(NULL);
    buf_free(&sql);
    duckdb_disconnect(&conn);
    return st;
}
