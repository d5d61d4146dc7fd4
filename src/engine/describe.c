/* describe.c -- pandas' df.describe(), computed by DuckDB next to the frame.
 *
 * pandas describes numeric columns with count, mean, std (ddof 1), min, the 25/50/75%
 * quantiles (linear interpolation, DuckDB's quantile_cont) and max; datetimes with the same
 * but std; everything else (strings, booleans, categoricals) with count, unique, top (the most
 * frequent value, the first seen on a tie) and freq. By default it takes the numeric and naive
 * datetime columns (all columns when there are none); include=all takes every column. The rows
 * of the result are the union of the columns' statistics, shortest list first, as pandas
 * orders them.
 *
 * Each described column is one query over the frame, through aside_frame, all of them within
 * one deadline (the time left is each query's timeout). A NaN counts as
 * missing, as in pandas. The result is a frame whose index labels are the statistics: float64
 * columns for numeric ones, and for the others columns of JSON literals (field->json_cells),
 * since a count, a string and a timestamp share them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

static const char LOCAL_NAME[] = "aside:describe";

typedef enum column_kind { KIND_OBJECT = 0, KIND_DATETIME, KIND_NUMERIC } column_kind;

static const char *const stats_of[][9] = {
    [KIND_OBJECT] = {"count", "unique", "top", "freq", NULL},
    [KIND_DATETIME] = {"count", "mean", "min", "25%", "50%", "75%", "max", NULL},
    [KIND_NUMERIC] = {"count", "mean", "std", "min", "25%", "50%", "75%", "max", NULL},
};

enum { MAX_STATS = 11 };

static column_kind kind_of(const frame_field *f)
{
    char dtype[96];
    frame_pandas_dtype(f, dtype, sizeof dtype);
    if (strncmp(dtype, "int", 3) == 0 || strncmp(dtype, "uint", 4) == 0 ||
        strncmp(dtype, "float", 5) == 0 || strncmp(dtype, "Int", 3) == 0 ||
        strncmp(dtype, "UInt", 4) == 0 || strncmp(dtype, "Float", 5) == 0)
        return KIND_NUMERIC;
    if (f->type == FRAME_TIMESTAMP)
        return KIND_DATETIME;
    return KIND_OBJECT;
}

/* The columns described: by default numeric and naive datetime ones, else all. */
static size_t pick_columns(const frame *f, bool include_all, size_t *picked)
{
    size_t n = 0;
    for (size_t i = 0; i < f->field_count && !include_all; i++) {
        column_kind k = kind_of(&f->fields[i]);
        if (k == KIND_NUMERIC || (k == KIND_DATETIME && !f->fields[i].timezone))
            picked[n++] = i;
    }
    if (n == 0) {
        for (size_t i = 0; i < f->field_count; i++)
            picked[n++] = i;
    }
    return n;
}

/* The result's rows: each kind's statistics, shortest list first, without repeats. */
static size_t stat_rows(const bool present[3], const char **rows)
{
    static const column_kind by_length[] = {KIND_OBJECT, KIND_DATETIME, KIND_NUMERIC};
    size_t n = 0;
    for (size_t k = 0; k < 3; k++) {
        if (!present[by_length[k]])
            continue;
        for (const char *const *s = stats_of[by_length[k]]; *s; s++) {
            size_t j = 0;
            while (j < n && strcmp(rows[j], *s) != 0)
                j++;
            if (j == n)
                rows[n++] = *s;
        }
    }
    return n;
}

/* ---- one column's statistics ------------------------------------------------------------ */

typedef struct column_stats {
    double number[MAX_STATS]; /* numeric columns: NaN for none */
    char  *cell[MAX_STATS];   /* other columns: JSON literals, NULL for none */
} column_stats;

/* What is described, by when. */
typedef struct subject {
    engine *e;
    frame  *f;
    int64_t deadline_ms; /* monotonic; 0: none */
} subject;

/* Run sql over the frame (and free sql); the one-row result. */
static aside_status query_row(const subject *on, buf *sql, frame **out, aside_error *err)
{
    /* the frame is local: nothing to resolve, one row, no limit; the time left */
    engine_query q = {0};
    if (on->deadline_ms) {
        int64_t left = on->deadline_ms - clock_mono_ns() / 1000000;
        q.timeout_ms = left > 1 ? (unsigned)left : 1;
    }
    aside_status st = sql->failed ? error_set(err, ASIDE_ERR_NOMEM, "out of memory")
                                  : engine_sql_local(on->e, &q, LOCAL_NAME, on->f, sql->data,
                                                     out, err);
    buf_free(sql);
    return st;
}

static double cell_double(const frame *r, size_t column)
{
    if (r->batch_count == 0 || frame_is_null(&r->batches[0], column, 0))
        return NAN;
    return ((const double *)frame_values(&r->batches[0], column))[0];
}

static void column_expression(buf *b, const frame_field *field)
{
    bool floating = field->type == FRAME_FLOAT32 || field->type == FRAME_FLOAT64;
    if (floating)
        buf_puts(b, "CASE WHEN isnan(");
    engine_quote_identifier(b, field->name);
    if (floating) {
        buf_puts(b, ") THEN NULL ELSE ");
        engine_quote_identifier(b, field->name);
        buf_puts(b, " END");
    }
}

static void from_frame(buf *b, const frame_field *field, const char *value_expression)
{
    buf_puts(b, " FROM (SELECT ");
    buf_puts(b, value_expression);
    buf_puts(b, " AS x FROM (SELECT ");
    column_expression(b, field);
    buf_puts(b, " AS c FROM ");
    engine_frame_sql(b, LOCAL_NAME);
    buf_puts(b, "))");
}

static aside_status numeric_stats(const subject *on, const frame_field *field,
                                  column_stats *s, aside_error *err)
{
    buf sql = {0};
    buf_puts(&sql, "SELECT count(x)::DOUBLE, avg(x)::DOUBLE, stddev_samp(x)::DOUBLE, "
                   "min(x)::DOUBLE, quantile_cont(x, 0.25)::DOUBLE, "
                   "quantile_cont(x, 0.5)::DOUBLE, quantile_cont(x, 0.75)::DOUBLE, "
                   "max(x)::DOUBLE");
    from_frame(&sql, field, "c::DOUBLE");
    frame *r = NULL;
    aside_status st = query_row(on, &sql, &r, err);
    for (size_t i = 0; st == ASIDE_OK && i < 8; i++)
        s->number[i] = cell_double(r, i);
    frame_release(r);
    return st;
}

static char *json_number(double v)
{
    buf b = {0};
    if (isnan(v))
        buf_puts(&b, "null");
    else
        frame_put_double(&b, v);
    return buf_take(&b);
}

static char *json_timestamp(double ns, const frame_field *field)
{
    static const int64_t nanos_per[] = {1000000000, 1000000, 1000, 1};
    if (isnan(ns))
        return strdup("null");
    buf b = {0};
    buf_putc(&b, '"');
    frame_put_timestamp(&b, (int64_t)llround(ns) / nanos_per[field->unit], field->unit,
                        field->timezone != NULL, 'T');
    buf_putc(&b, '"');
    return buf_take(&b);
}

/* An exact BIGINT nanosecond cell of r as a timestamp literal in the field's unit. */
static char *json_timestamp_exact(const frame *r, size_t column, const frame_field *field)
{
    static const int64_t nanos_per[] = {1000000000, 1000000, 1000, 1};
    if (r->batch_count == 0 || frame_is_null(&r->batches[0], column, 0))
        return strdup("null");
    int64_t ns = ((const int64_t *)frame_values(&r->batches[0], column))[0];
    buf b = {0};
    buf_putc(&b, '"');
    frame_put_timestamp(&b, ns / nanos_per[field->unit], field->unit, field->timezone != NULL,
                        'T');
    buf_putc(&b, '"');
    return buf_take(&b);
}

static aside_status datetime_stats(const subject *on, const frame_field *field,
                                   column_stats *s, aside_error *err)
{
    buf sql = {0};
    /* min and max exact; mean and quantiles in float64 nanoseconds, as pandas computes them */
    buf_puts(&sql, "SELECT count(x)::DOUBLE, avg(x)::DOUBLE, min(x), "
                   "quantile_cont(x::DOUBLE, 0.25), quantile_cont(x::DOUBLE, 0.5), "
                   "quantile_cont(x::DOUBLE, 0.75), max(x)");
    from_frame(&sql, field, "epoch_ns(c)");
    frame *r = NULL;
    aside_status st = query_row(on, &sql, &r, err);
    for (size_t i = 0; st == ASIDE_OK && i < 7; i++) {
        bool exact = i == 2 || i == 6;
        s->cell[i] = i == 0 ? json_number(cell_double(r, i))
                     : exact ? json_timestamp_exact(r, i, field)
                             : json_timestamp(cell_double(r, i), field);
        if (!s->cell[i])
            st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    frame_release(r);
    return st;
}

/* The JSON literal of a value DuckDB gave as text, as its column's type writes it. */
static char *json_value(const frame_field *field, const char *text, size_t len)
{
    buf b = {0};
    if (field->type == FRAME_BOOL)
        buf_puts(&b, len && (text[0] == 't' || text[0] == 'T') ? "true" : "false");
    else if (field->type == FRAME_DECIMAL || (field->type >= FRAME_INT8 &&
                                              field->type <= FRAME_FLOAT64))
        buf_append(&b, text, len);
    else
        buf_put_json_string(&b, text, len);
    return buf_take(&b);
}

static aside_status top_value(const subject *on, const frame_field *field, column_stats *s,
                              aside_error *err)
{
    buf sql = {0};
    buf_puts(&sql, "SELECT CAST(v AS VARCHAR), count(*)::DOUBLE AS n, min(r) AS first FROM "
                   "(SELECT ");
    engine_quote_identifier(&sql, field->name);
    buf_puts(&sql, " AS v, row_number() OVER () AS r FROM ");
    engine_frame_sql(&sql, LOCAL_NAME);
    buf_puts(&sql, ") WHERE v IS NOT NULL GROUP BY v ORDER BY n DESC, first LIMIT 1");
    frame *r = NULL;
    aside_status st = query_row(on, &sql, &r, err);
    if (st == ASIDE_OK && r->rows == 1) {
        const frame_batch *b = &r->batches[0];
        const int32_t *off = frame_offsets(b, 0);
        s->cell[2] = json_value(field, (const char *)frame_values(b, 0) + off[0],
                                (size_t)(off[1] - off[0]));
        s->cell[3] = json_number(cell_double(r, 1));
    } else if (st == ASIDE_OK) {
        s->cell[2] = strdup("null");
        s->cell[3] = strdup("null");
    }
    if (st == ASIDE_OK && (!s->cell[2] || !s->cell[3]))
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    frame_release(r);
    return st;
}

static aside_status object_stats(const subject *on, const frame_field *field,
                                 column_stats *s, aside_error *err)
{
    buf sql = {0};
    buf_puts(&sql, "SELECT count(");
    engine_quote_identifier(&sql, field->name);
    buf_puts(&sql, ")::DOUBLE, count(DISTINCT ");
    engine_quote_identifier(&sql, field->name);
    buf_puts(&sql, ")::DOUBLE FROM ");
    engine_frame_sql(&sql, LOCAL_NAME);
    frame *r = NULL;
    aside_status st = query_row(on, &sql, &r, err);
    for (size_t i = 0; st == ASIDE_OK && i < 2; i++) {
        if (!(s->cell[i] = json_number(cell_double(r, i))))
            st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    frame_release(r);
    return st == ASIDE_OK ? top_value(on, field, s, err) : st;
}

/* ---- the result frame ------------------------------------------------------------------- */

typedef struct described {
    size_t        count;
    size_t       *columns;
    column_kind  *kinds;
    column_stats *stats;
} described;

static void described_free(described *d)
{
    for (size_t i = 0; d->stats && i < d->count; i++) {
        for (size_t j = 0; j < MAX_STATS; j++)
            free(d->stats[i].cell[j]);
    }
    free(d->columns);
    free(d->kinds);
    free(d->stats);
}

/* The statistic named row of column i, as a double (numeric) or a JSON literal (other). */
static ptrdiff_t stat_index(column_kind kind, const char *row)
{
    for (size_t i = 0; stats_of[kind][i]; i++) {
        if (strcmp(stats_of[kind][i], row) == 0)
            return (ptrdiff_t)i;
    }
    return -1;
}

static aside_status append_rows(frame_builder *b, const described *d,
                                const char **rows, size_t row_count, aside_error *err)
{
    frame_slice *slices = calloc(d->count ? d->count : 1, sizeof *slices);
    double *numbers = calloc(d->count * row_count + 1, sizeof *numbers);
    int32_t *offsets = calloc(d->count * (row_count + 1) + 1, sizeof *offsets);
    uint8_t *validity = calloc(d->count * ((row_count + 7) / 8) + 1, 1);
    buf text = {0};
    aside_status st = slices && numbers && offsets && validity ? ASIDE_OK
                      : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    for (size_t c = 0; st == ASIDE_OK && c < d->count; c++) {
        uint8_t *valid = validity + c * ((row_count + 7) / 8);
        int32_t *off = offsets + c * (row_count + 1);
        off[0] = (int32_t)text.len;
        for (size_t r = 0; r < row_count; r++) {
            ptrdiff_t k = stat_index(d->kinds[c], rows[r]);
            if (d->kinds[c] == KIND_NUMERIC) {
                numbers[c * row_count + r] = k >= 0 ? d->stats[c].number[k] : NAN;
                if (k >= 0 && !isnan(d->stats[c].number[k]))
                    valid[r / 8] |= (uint8_t)(1u << (r % 8));
            } else {
                buf_puts(&text, k >= 0 && d->stats[c].cell[k] ? d->stats[c].cell[k] : "null");
                valid[r / 8] |= (uint8_t)(1u << (r % 8));
            }
            off[r + 1] = (int32_t)text.len;
        }
    }
    for (size_t c = 0; st == ASIDE_OK && c < d->count; c++) {
        bool numeric = d->kinds[c] == KIND_NUMERIC;
        slices[c] = (frame_slice){
            .length = (int64_t)row_count, .null_count = -1,
            .validity = validity + c * ((row_count + 7) / 8),
            .offsets = offsets + c * (row_count + 1),
            .values = numeric ? (const void *)(numbers + c * row_count)
                              : (const void *)(text.data ? text.data : ""),
            .slice_type = numeric ? FRAME_FLOAT64 : FRAME_UTF8};
    }
    if (st == ASIDE_OK && text.failed)
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (st == ASIDE_OK)
        st = frame_builder_append(b, slices, err);
    free(slices);
    free(numbers);
    free(offsets);
    free(validity);
    buf_free(&text);
    return st;
}

static aside_status build_result(const frame *f, const described *d, frame **out,
                                 aside_error *err)
{
    bool present[3] = {false, false, false};
    for (size_t i = 0; i < d->count; i++)
        present[d->kinds[i]] = true;
    const char *rows[MAX_STATS];
    size_t row_count = stat_rows(present, rows);
    frame_field *fields = calloc(d->count ? d->count : 1, sizeof *fields);
    if (!fields)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < d->count; i++) {
        fields[i].name = f->fields[d->columns[i]].name;
        fields[i].type = d->kinds[i] == KIND_NUMERIC ? FRAME_FLOAT64 : FRAME_UTF8;
        fields[i].json_cells = d->kinds[i] != KIND_NUMERIC;
    }
    frame_builder *b = frame_builder_create(fields, d->count, 0, err);
    free(fields);
    if (!b)
        return err ? err->status : ASIDE_ERR_NOMEM;
    aside_status st = append_rows(b, d, rows, row_count, err);
    if (st != ASIDE_OK) {
        frame_builder_destroy(b);
        return st;
    }
    if (!(*out = frame_builder_finish(b, err)))
        return err ? err->status : ASIDE_ERR_NOMEM;
    (*out)->index.labels = calloc(row_count ? row_count : 1, sizeof(char *));
    for (size_t r = 0; (*out)->index.labels && r < row_count; r++)
        (*out)->index.labels[r] = strdup(rows[r]);
    for (size_t r = 0; (*out)->index.labels && r < row_count; r++) {
        if (!(*out)->index.labels[r]) {
            frame_release(*out);
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        }
    }
    if (!(*out)->index.labels) {
        frame_release(*out);
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    return ASIDE_OK;
}

aside_status engine_describe(engine *e, frame *f, bool include_all, unsigned timeout_ms,
                             frame **out, aside_error *err)
{
    subject on = {e, f, timeout_ms ? clock_mono_ns() / 1000000 + timeout_ms : 0};
    described d = {0};
    size_t n = f->field_count ? f->field_count : 1;
    d.columns = calloc(n, sizeof *d.columns);
    d.kinds = calloc(n, sizeof *d.kinds);
    d.stats = calloc(n, sizeof *d.stats);
    aside_status st = d.columns && d.kinds && d.stats ? ASIDE_OK
                      : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (st == ASIDE_OK)
        d.count = pick_columns(f, include_all, d.columns);
    for (size_t i = 0; st == ASIDE_OK && i < d.count; i++) {
        const frame_field *field = &f->fields[d.columns[i]];
        d.kinds[i] = kind_of(field);
        if (d.kinds[i] == KIND_NUMERIC)
            st = numeric_stats(&on, field, &d.stats[i], err);
        else if (d.kinds[i] == KIND_DATETIME)
            st = datetime_stats(&on, field, &d.stats[i], err);
        else
            st = object_stats(&on, field, &d.stats[i], err);
    }
    if (st == ASIDE_OK)
        st = build_result(f, &d, out, err);
    described_free(&d);
    return st;
}
