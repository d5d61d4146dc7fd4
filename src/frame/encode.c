/* encode.c -- frames as JSON (pandas' orients) and CSV.
 *
 * One cell writer serves both: a value becomes its JSON literal or its CSV field. Numbers are
 * written so they read back exactly (the shortest of %.15g, %.16g, %.17g that round-trips);
 * NaN and nulls are null in JSON and empty in CSV; timestamps are ISO 8601 with as many
 * fraction digits as their unit has, those with a time zone in UTC with a "Z" (as pandas'
 * to_json does); dates are YYYY-MM-DD; decimals are exact; categoricals are their category;
 * bytes are base64.
 *
 * Orients, as pandas' to_json names them: records [{col: v}], split {"columns", "index",
 * "data"}, columns {col: {label: v}}, index {label: {col: v}}, values [[v]]. Labels come from the
 * frame's index: its range, or its labels (describe). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

typedef enum cell_mode { CELL_JSON, CELL_CSV } cell_mode;

/* ---- numbers and times ------------------------------------------------------------------ */

void frame_put_double(buf *b, double v)
{
    char text[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    buf_puts(b, text);
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian). */
static void civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put_date(buf *b, int64_t days)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    buf_printf(b, "%04" PRId64 "-%02u-%02u", y, m, d);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void frame_put_timestamp(buf *b, int64_t v, frame_unit unit, bool utc, char separator)
{
    static const int64_t per_second[] = {1, 1000, 1000000, 1000000000};
    static const int digits[] = {0, 3, 6, 9};
    int64_t seconds = floor_div(v, per_second[unit]);
    /* the fraction from the remainder: v - seconds * per_second overflows near INT64_MIN */
    int64_t fraction = v % per_second[unit];
    if (fraction < 0)
        fraction += per_second[unit];
    int64_t days = floor_div(seconds, 86400);
    int64_t in_day = seconds - days * 86400;
    put_date(b, days);
    buf_printf(b, "%c%02d:%02d:%02d", separator, (int)(in_day / 3600), (int)(in_day / 60 % 60),
               (int)(in_day % 60));
    if (digits[unit])
        buf_printf(b, ".%0*" PRId64, digits[unit], fraction);
    if (utc)
        buf_puts(b, separator == 'T' ? "Z" : "+00:00");
}

/* A 128-bit decimal (low word first) with scale digits after the point. */
static void put_decimal(buf *b, const int64_t *words, int scale)
{
    unsigned __int128 magnitude;
    __int128 v = (__int128)(((unsigned __int128)(uint64_t)words[1] << 64) | (uint64_t)words[0]);
    bool negative = v < 0;
    magnitude = negative ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
    char digits[48];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(magnitude % 10));
        magnitude /= 10;
    } while (magnitude);
    while (n <= scale)
        digits[n++] = '0';
    if (negative)
        buf_putc(b, '-');
    for (int i = n - 1; i >= 0; i--) {
        buf_putc(b, digits[i]);
        if (i == scale && scale > 0)
            buf_putc(b, '.');
    }
}

/* ---- cells ------------------------------------------------------------------------------ */

static void put_text(buf *b, const char *s, size_t len, cell_mode mode)
{
    if (mode == CELL_JSON) {
        buf_put_json_string(b, s, len);
        return;
    }
    bool quote = len == 0 ? false : memchr(s, ',', len) || memchr(s, '"', len) ||
                                    memchr(s, '\n', len) || memchr(s, '\r', len);
    if (!quote) {
        buf_append(b, s, len);
        return;
    }
    buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            buf_putc(b, '"');
        buf_putc(b, s[i]);
    }
    buf_putc(b, '"');
}

/* A JSON literal cell: as it is in JSON; in CSV, a string without its quotes, null empty. */
static void put_literal(buf *b, const char *s, size_t len, cell_mode mode)
{
    if (mode == CELL_JSON)
        buf_append(b, s, len);
    else if (len >= 2 && s[0] == '"')
        put_text(b, s + 1, len - 2, mode);
    else if (!(len == 4 && memcmp(s, "null", 4) == 0))
        buf_append(b, s, len);
}

static void put_null(buf *b, cell_mode mode)
{
    if (mode == CELL_JSON)
        buf_puts(b, "null");
}

static void put_integer(buf *b, const frame_field *f, const void *values, int64_t i)
{
    switch (f->type) {
    case FRAME_INT8: buf_printf(b, "%d", ((const int8_t *)values)[i]); break;
    case FRAME_INT16: buf_printf(b, "%d", ((const int16_t *)values)[i]); break;
    case FRAME_INT32: buf_printf(b, "%" PRId32, ((const int32_t *)values)[i]); break;
    case FRAME_INT64: buf_printf(b, "%" PRId64, ((const int64_t *)values)[i]); break;
    case FRAME_UINT8: buf_printf(b, "%u", ((const uint8_t *)values)[i]); break;
    case FRAME_UINT16: buf_printf(b, "%u", ((const uint16_t *)values)[i]); break;
    case FRAME_UINT32: buf_printf(b, "%" PRIu32, ((const uint32_t *)values)[i]); break;
    default: buf_printf(b, "%" PRIu64, ((const uint64_t *)values)[i]); break;
    }
}

static void put_float(buf *b, double v, cell_mode mode)
{
    if (isnan(v) || isinf(v)) {
        if (mode == CELL_JSON)
            buf_puts(b, "null");
        else if (!isnan(v))
            buf_puts(b, v > 0 ? "inf" : "-inf");
        return;
    }
    frame_put_double(b, v);
}

static int64_t category_code(const frame_field *f, const void *codes, int64_t i)
{
    switch (f->index_type) {
    case FRAME_INT8: return ((const int8_t *)codes)[i];
    case FRAME_INT16: return ((const int16_t *)codes)[i];
    default: return ((const int32_t *)codes)[i];
    }
}

static void put_cell(buf *b, const frame_field *f, const frame_batch *batch, size_t column,
                     int64_t i, cell_mode mode)
{
    if (frame_is_null(batch, column, i)) {
        put_null(b, mode);
        return;
    }
    const void *values = frame_values(batch, column);
    switch (f->type) {
    case FRAME_BOOL:
        if (mode == CELL_JSON)
            buf_puts(b, frame_bit(values, i) ? "true" : "false");
        else
            buf_puts(b, frame_bit(values, i) ? "True" : "False");
        break;
    case FRAME_FLOAT32: put_float(b, ((const float *)values)[i], mode); break;
    case FRAME_FLOAT64: put_float(b, ((const double *)values)[i], mode); break;
    case FRAME_UTF8: {
        const int32_t *off = frame_offsets(batch, column);
        const char *s = (const char *)values + off[i];
        size_t len = (size_t)(off[i + 1] - off[i]);
        if (f->json_cells)
            put_literal(b, s, len, mode);
        else
            put_text(b, s, len, mode);
        break;
    }
    case FRAME_BINARY: {
        const int32_t *off = frame_offsets(batch, column);
        if (mode == CELL_JSON)
            buf_putc(b, '"');
        buf_put_base64(b, (const char *)values + off[i], (size_t)(off[i + 1] - off[i]));
        if (mode == CELL_JSON)
            buf_putc(b, '"');
        break;
    }
    case FRAME_DATE32:
        if (mode == CELL_JSON)
            buf_putc(b, '"');
        put_date(b, ((const int32_t *)values)[i]);
        if (mode == CELL_JSON)
            buf_putc(b, '"');
        break;
    case FRAME_TIMESTAMP:
        if (mode == CELL_JSON)
            buf_putc(b, '"');
        frame_put_timestamp(b, ((const int64_t *)values)[i], f->unit, f->timezone != NULL,
                      mode == CELL_JSON ? 'T' : ' ');
        if (mode == CELL_JSON)
            buf_putc(b, '"');
        break;
    case FRAME_DECIMAL:
        put_decimal(b, (const int64_t *)values + 2 * i, f->scale);
        break;
    case FRAME_CATEGORY: {
        int64_t code = category_code(f, values, i);
        const int32_t *off = frame_offsets(f->dictionary, 0);
        const char *text = frame_values(f->dictionary, 0);
        put_text(b, text + off[code], (size_t)(off[code + 1] - off[code]), mode);
        break;
    }
    default: put_integer(b, f, values, i); break;
    }
}

/* ---- walking rows ----------------------------------------------------------------------- */

typedef struct row_cursor {
    bool    started;
    size_t  batch;
    int64_t row;   /* within the batch */
    int64_t index; /* within the frame */
} row_cursor;

static bool next_row(const frame *f, row_cursor *c)
{
    if (c->started) {
        c->row++;
        c->index++;
    }
    c->started = true;
    while (c->batch < f->batch_count && c->row >= f->batches[c->batch].rows) {
        c->batch++;
        c->row = 0;
    }
    return c->batch < f->batch_count;
}

static void put_label(buf *b, const frame *f, int64_t index, bool as_key)
{
    if (f->index.labels) {
        buf_put_json_string(b, f->index.labels[index], strlen(f->index.labels[index]));
        return;
    }
    int64_t label = f->index.start + index * f->index.step;
    buf_printf(b, as_key ? "\"%" PRId64 "\"" : "%" PRId64, label);
}

static void put_name(buf *b, const frame *f, size_t column)
{
    buf_put_json_string(b, f->fields[column].name, strlen(f->fields[column].name));
}

static void json_row_object(buf *b, const frame *f, const row_cursor *c)
{
    const frame_batch *batch = &f->batches[c->batch];
    buf_putc(b, '{');
    for (size_t j = 0; j < f->field_count; j++) {
        if (j)
            buf_puts(b, ", ");
        put_name(b, f, j);
        buf_puts(b, ": ");
        put_cell(b, &f->fields[j], batch, j, c->row, CELL_JSON);
    }
    buf_putc(b, '}');
}

static void json_row_array(buf *b, const frame *f, const row_cursor *c)
{
    const frame_batch *batch = &f->batches[c->batch];
    buf_putc(b, '[');
    for (size_t j = 0; j < f->field_count; j++) {
        if (j)
            buf_puts(b, ", ");
        put_cell(b, &f->fields[j], batch, j, c->row, CELL_JSON);
    }
    buf_putc(b, ']');
}

static void json_records(const frame *f, buf *b, bool by_index)
{
    row_cursor c = {0};
    buf_putc(b, by_index ? '{' : '[');
    for (bool first = true; next_row(f, &c); first = false) {
        if (!first)
            buf_puts(b, ", ");
        if (by_index) {
            put_label(b, f, c.index, true);
            buf_puts(b, ": ");
        }
        json_row_object(b, f, &c);
    }
    buf_putc(b, by_index ? '}' : ']');
}

static void json_values(const frame *f, buf *b)
{
    row_cursor c = {0};
    buf_putc(b, '[');
    for (bool first = true; next_row(f, &c); first = false) {
        if (!first)
            buf_puts(b, ", ");
        json_row_array(b, f, &c);
    }
    buf_putc(b, ']');
}

static void json_split(const frame *f, buf *b)
{
    buf_puts(b, "{\"columns\": [");
    for (size_t j = 0; j < f->field_count; j++) {
        if (j)
            buf_puts(b, ", ");
        put_name(b, f, j);
    }
    buf_puts(b, "], \"index\": [");
    for (int64_t i = 0; i < f->rows; i++) {
        if (i)
            buf_puts(b, ", ");
        put_label(b, f, i, false);
    }
    buf_puts(b, "], \"data\": ");
    json_values(f, b);
    buf_putc(b, '}');
}

static void json_columns(const frame *f, buf *b)
{
    buf_putc(b, '{');
    for (size_t j = 0; j < f->field_count; j++) {
        if (j)
            buf_puts(b, ", ");
        put_name(b, f, j);
        buf_puts(b, ": {");
        row_cursor c = {0};
        for (bool first = true; next_row(f, &c); first = false) {
            if (!first)
                buf_puts(b, ", ");
            put_label(b, f, c.index, true);
            buf_puts(b, ": ");
            put_cell(b, &f->fields[j], &f->batches[c.batch], j, c.row, CELL_JSON);
        }
        buf_putc(b, '}');
    }
    buf_putc(b, '}');
}

aside_status frame_encode_json(const frame *f, const char *orient, buf *b, aside_error *err)
{
    if (!orient || strcmp(orient, "records") == 0)
        json_records(f, b, false);
    else if (strcmp(orient, "split") == 0)
        json_split(f, b);
    else if (strcmp(orient, "columns") == 0)
        json_columns(f, b);
    else if (strcmp(orient, "index") == 0)
        json_records(f, b, true);
    else if (strcmp(orient, "values") == 0)
        json_values(f, b);
    else
        return error_set(err, ASIDE_ERR_INVALID, "orient must be one of: records, split, "
                         "columns, index, values");
    return b->failed ? error_set(err, ASIDE_ERR_NOMEM, "out of memory") : ASIDE_OK;
}

aside_status frame_encode_csv(const frame *f, buf *b, aside_error *err)
{
    bool labels = f->index.labels != NULL; /* describe: its statistics name the rows */
    if (labels)
        buf_putc(b, ',');
    for (size_t j = 0; j < f->field_count; j++) {
        if (j)
            buf_putc(b, ',');
        put_text(b, f->fields[j].name, strlen(f->fields[j].name), CELL_CSV);
    }
    buf_putc(b, '\n');
    row_cursor c = {0};
    while (next_row(f, &c)) {
        if (labels) {
            const char *l = f->index.labels[c.index];
            put_text(b, l, strlen(l), CELL_CSV);
            buf_putc(b, ',');
        }
        for (size_t j = 0; j < f->field_count; j++) {
            if (j)
                buf_putc(b, ',');
            put_cell(b, &f->fields[j], &f->batches[c.batch], j, c.row, CELL_CSV);
        }
        buf_putc(b, '\n');
    }
    return b->failed ? error_set(err, ASIDE_ERR_NOMEM, "out of memory") : ASIDE_OK;
}
