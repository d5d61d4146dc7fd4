/* convert.c -- between DuckDB vectors and frame columns, both ways.
 *
 * Out of DuckDB (results, loaded files): a chunk's vectors become frame_slices. Fixed-width
 * values and validity masks are used in place (DuckDB's validity words have Arrow's bit order);
 * booleans are packed to bits, strings gathered into offsets and bytes, decimals widened to 16
 * bytes and enum codes narrowed to pandas' width, in per-column scratch buffers reused chunk
 * after chunk.
 *
 * Into DuckDB (the aside_frame scan): a batch's rows are copied into the output vectors,
 * strings through DuckDB's own string heap. The mapping of types is one table each way: a
 * DuckDB type without a frame type is cast to VARCHAR by the query that reads it. */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* ---- types ------------------------------------------------------------------------------ */

bool convert_supported(duckdb_logical_type type)
{
    switch (duckdb_get_type_id(type)) {
    case DUCKDB_TYPE_BOOLEAN: case DUCKDB_TYPE_TINYINT: case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER: case DUCKDB_TYPE_BIGINT: case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT: case DUCKDB_TYPE_UINTEGER: case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_FLOAT: case DUCKDB_TYPE_DOUBLE: case DUCKDB_TYPE_VARCHAR:
    case DUCKDB_TYPE_BLOB: case DUCKDB_TYPE_DATE: case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_S: case DUCKDB_TYPE_TIMESTAMP_MS: case DUCKDB_TYPE_TIMESTAMP_NS:
    case DUCKDB_TYPE_TIMESTAMP_TZ: case DUCKDB_TYPE_DECIMAL: case DUCKDB_TYPE_ENUM:
        return true;
    default:
        return false;
    }
}

static frame_type integer_type(duckdb_type id)
{
    switch (id) {
    case DUCKDB_TYPE_TINYINT: return FRAME_INT8;
    case DUCKDB_TYPE_SMALLINT: return FRAME_INT16;
    case DUCKDB_TYPE_INTEGER: return FRAME_INT32;
    case DUCKDB_TYPE_BIGINT: return FRAME_INT64;
    case DUCKDB_TYPE_UTINYINT: return FRAME_UINT8;
    case DUCKDB_TYPE_USMALLINT: return FRAME_UINT16;
    case DUCKDB_TYPE_UINTEGER: return FRAME_UINT32;
    default: return FRAME_UINT64;
    }
}

/* The unit of a DuckDB timestamp type. */
static frame_unit timestamp_unit(duckdb_type id)
{
    switch (id) {
    case DUCKDB_TYPE_TIMESTAMP_S: return FRAME_SECOND;
    case DUCKDB_TYPE_TIMESTAMP_MS: return FRAME_MILLI;
    case DUCKDB_TYPE_TIMESTAMP_NS: return FRAME_NANO;
    default: return FRAME_MICRO; /* TIMESTAMP and TIMESTAMP WITH TIME ZONE */
    }
}

static frame_batch *enum_dictionary(duckdb_logical_type type)
{
    uint32_t count = duckdb_enum_dictionary_size(type);
    char **values = calloc(count ? count : 1, sizeof *values);
    size_t *lengths = calloc(count ? count : 1, sizeof *lengths);
    frame_batch *d = NULL;
    bool ok = values && lengths;
    for (uint32_t i = 0; ok && i < count; i++) {
        ok = (values[i] = duckdb_enum_dictionary_value(type, i)) != NULL;
        if (ok)
            lengths[i] = strlen(values[i]);
    }
    if (ok)
        d = frame_dictionary_create((const char *const *)values, lengths, count);
    for (uint32_t i = 0; values && i < count; i++)
        duckdb_free(values[i]);
    free(values);
    free(lengths);
    return d;
}

/* A column DuckDB read from JSON whose values are of mixed types (type JSON, each value a JSON
 * literal) is an object column to every pandas, never a string one: pandas 3 shows str only
 * for strings. false when out of memory. */
static bool mark_json_column(duckdb_logical_type type, frame_field *out)
{
    char *alias = duckdb_logical_type_get_alias(type);
    bool json = alias && strcmp(alias, "JSON") == 0;
    duckdb_free(alias);
    return !json || (out->pandas_dtype = strdup("object")) != NULL;
}

bool convert_field(duckdb_logical_type type, const char *name, frame_field *out)
{
    memset(out, 0, sizeof *out);
    duckdb_type id = duckdb_get_type_id(type);
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN: out->type = FRAME_BOOL; break;
    case DUCKDB_TYPE_FLOAT: out->type = FRAME_FLOAT32; break;
    case DUCKDB_TYPE_DOUBLE: out->type = FRAME_FLOAT64; break;
    case DUCKDB_TYPE_VARCHAR:
        out->type = FRAME_UTF8;
        if (!mark_json_column(type, out))
            return false;
        break;
    case DUCKDB_TYPE_BLOB: out->type = FRAME_BINARY; break;
    case DUCKDB_TYPE_DATE: out->type = FRAME_DATE32; break;
    case DUCKDB_TYPE_TIMESTAMP_S: case DUCKDB_TYPE_TIMESTAMP_MS: case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_NS:
        out->type = FRAME_TIMESTAMP;
        out->unit = timestamp_unit(id);
        break;
    case DUCKDB_TYPE_TIMESTAMP_TZ: /* microseconds, in UTC */
        out->type = FRAME_TIMESTAMP;
        out->unit = timestamp_unit(id);
        if (!(out->timezone = strdup("UTC")))
            return false;
        break;
    case DUCKDB_TYPE_DECIMAL:
        out->type = FRAME_DECIMAL;
        out->precision = duckdb_decimal_width(type);
        out->scale = duckdb_decimal_scale(type);
        break;
    case DUCKDB_TYPE_ENUM:
        out->type = FRAME_CATEGORY;
        out->index_type = frame_category_index_type(duckdb_enum_dictionary_size(type));
        if (!(out->dictionary = enum_dictionary(type)))
            return false;
        break;
    default: out->type = integer_type(id); break;
    }
    if (!(out->name = strdup(name))) {
        frame_field_clear(out);
        return false;
    }
    return true;
}

/* ---- out of DuckDB ---------------------------------------------------------------------- */

/* DuckDB leaves the byte of a null row as it was, any value: read as bytes, not bools (whose
 * other values are undefined), so such a byte sets no other row's bit. */
static bool pack_bools(const uint8_t *in, idx_t n, buf *scratch)
{
    buf_reset(scratch);
    if (!buf_reserve(scratch, n / 8 + 1))
        return false;
    uint8_t *bits = (uint8_t *)scratch->data;
    memset(bits, 0, n / 8 + 1);
    for (idx_t i = 0; i < n; i++)
        bits[i >> 3] |= (uint8_t)((in[i] != 0) << (i & 7));
    return true;
}

static bool gather_strings(duckdb_string_t *in, const uint64_t *validity, idx_t n, buf *offsets,
                           buf *bytes)
{
    buf_reset(offsets);
    buf_reset(bytes);
    if (!buf_reserve(offsets, (n + 1) * sizeof(int32_t)))
        return false;
    int32_t *out = (int32_t *)offsets->data;
    out[0] = 0;
    for (idx_t i = 0; i < n; i++) {
        if (!validity || (validity[i / 64] >> (i % 64)) & 1)
            buf_append(bytes, duckdb_string_t_data(&in[i]), duckdb_string_t_length(in[i]));
        if (bytes->failed || bytes->len > INT32_MAX)
            return false;
        out[i + 1] = (int32_t)bytes->len;
    }
    offsets->len = (n + 1) * sizeof(int32_t);
    return true;
}

static bool widen_decimals(duckdb_logical_type type, const void *in, idx_t n, buf *scratch)
{
    buf_reset(scratch);
    if (!buf_reserve(scratch, n * 16))
        return false;
    int64_t *out = (int64_t *)scratch->data;
    duckdb_type internal = duckdb_decimal_internal_type(type);
    for (idx_t i = 0; i < n; i++) {
        int64_t v;
        switch (internal) {
        case DUCKDB_TYPE_SMALLINT: v = ((const int16_t *)in)[i]; break;
        case DUCKDB_TYPE_INTEGER: v = ((const int32_t *)in)[i]; break;
        case DUCKDB_TYPE_BIGINT: v = ((const int64_t *)in)[i]; break;
        default: /* HUGEINT: already 16 bytes, low word first */
            memcpy(&out[2 * i], (const char *)in + 16 * i, 16);
            continue;
        }
        out[2 * i] = v;
        out[2 * i + 1] = v < 0 ? -1 : 0;
    }
    return true;
}

static bool narrow_enum_codes(duckdb_logical_type type, frame_type to, const void *in, idx_t n,
                              buf *scratch)
{
    buf_reset(scratch);
    size_t width = frame_type_width(to);
    if (!buf_reserve(scratch, n * width))
        return false;
    duckdb_type internal = duckdb_enum_internal_type(type);
    for (idx_t i = 0; i < n; i++) {
        uint32_t code = internal == DUCKDB_TYPE_UTINYINT    ? ((const uint8_t *)in)[i]
                        : internal == DUCKDB_TYPE_USMALLINT ? ((const uint16_t *)in)[i]
                                                            : ((const uint32_t *)in)[i];
        if (width == 1)
            ((int8_t *)scratch->data)[i] = (int8_t)code;
        else if (width == 2)
            ((int16_t *)scratch->data)[i] = (int16_t)code;
        else
            ((int32_t *)scratch->data)[i] = (int32_t)code;
    }
    return true;
}

bool convert_vector(duckdb_vector v, duckdb_logical_type type, const frame_field *field, idx_t n,
                    convert_scratch *scratch, frame_slice *out)
{
    memset(out, 0, sizeof *out);
    out->length = (int64_t)n;
    out->null_count = -1;
    uint64_t *validity = duckdb_vector_get_validity(v);
    out->validity = (const uint8_t *)validity;
    void *data = duckdb_vector_get_data(v);
    duckdb_type id = duckdb_get_type_id(type);
    /* The slice's layout is the DuckDB type's; the builder converts to the field's. */
    bool integer = (id >= DUCKDB_TYPE_TINYINT && id <= DUCKDB_TYPE_UBIGINT);
    out->slice_type = id == DUCKDB_TYPE_ENUM ? field->index_type
                      : id == DUCKDB_TYPE_VARCHAR ? FRAME_UTF8
                      : id == DUCKDB_TYPE_BLOB ? FRAME_BINARY
                      : integer ? integer_type(id) : field->type;
    out->slice_unit = field->unit;
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN:
        return pack_bools(data, n, &scratch->values) && (out->values = scratch->values.data);
    case DUCKDB_TYPE_VARCHAR:
    case DUCKDB_TYPE_BLOB:
        if (!gather_strings(data, validity, n, &scratch->offsets, &scratch->values))
            return false;
        out->offsets = scratch->offsets.data;
        out->values = scratch->values.len ? scratch->values.data : "";
        return true;
    case DUCKDB_TYPE_DECIMAL:
        return widen_decimals(type, data, n, &scratch->values) &&
               (out->values = scratch->values.data);
    case DUCKDB_TYPE_ENUM:
        return narrow_enum_codes(type, field->index_type, data, n, &scratch->values) &&
               (out->values = scratch->values.data);
    case DUCKDB_TYPE_TIMESTAMP_S: case DUCKDB_TYPE_TIMESTAMP_MS: case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_NS: case DUCKDB_TYPE_TIMESTAMP_TZ:
        out->slice_unit = timestamp_unit(id);
        out->values = data;
        return true;
    default:
        out->values = data;
        return true;
    }
}

void convert_scratch_free(convert_scratch *s)
{
    buf_free(&s->offsets);
    buf_free(&s->values);
}

/* ---- into DuckDB ------------------------------------------------------------------------ */

duckdb_logical_type convert_logical_type(const frame_field *f)
{
    static const duckdb_type simple[] = {
        [FRAME_BOOL] = DUCKDB_TYPE_BOOLEAN,     [FRAME_INT8] = DUCKDB_TYPE_TINYINT,
        [FRAME_INT16] = DUCKDB_TYPE_SMALLINT,   [FRAME_INT32] = DUCKDB_TYPE_INTEGER,
        [FRAME_INT64] = DUCKDB_TYPE_BIGINT,     [FRAME_UINT8] = DUCKDB_TYPE_UTINYINT,
        [FRAME_UINT16] = DUCKDB_TYPE_USMALLINT, [FRAME_UINT32] = DUCKDB_TYPE_UINTEGER,
        [FRAME_UINT64] = DUCKDB_TYPE_UBIGINT,   [FRAME_FLOAT32] = DUCKDB_TYPE_FLOAT,
        [FRAME_FLOAT64] = DUCKDB_TYPE_DOUBLE,   [FRAME_UTF8] = DUCKDB_TYPE_VARCHAR,
        [FRAME_BINARY] = DUCKDB_TYPE_BLOB,      [FRAME_DATE32] = DUCKDB_TYPE_DATE};
    static const duckdb_type stamps[] = {DUCKDB_TYPE_TIMESTAMP_S, DUCKDB_TYPE_TIMESTAMP_MS,
                                         DUCKDB_TYPE_TIMESTAMP, DUCKDB_TYPE_TIMESTAMP_NS};
    switch (f->type) {
    case FRAME_TIMESTAMP:
        return duckdb_create_logical_type(f->timezone ? DUCKDB_TYPE_TIMESTAMP_TZ
                                                      : stamps[f->unit]);
    case FRAME_DECIMAL:
        return duckdb_create_decimal_type((uint8_t)f->precision, (uint8_t)f->scale);
    case FRAME_CATEGORY: {
        int64_t count = f->dictionary ? f->dictionary->rows : 0;
        if (count == 0)
            return duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
        const char **names = malloc((size_t)count * sizeof *names);
        char *text = malloc(f->dictionary->body_bytes + (size_t)count);
        duckdb_logical_type t = NULL;
        if (names && text) {
            const int32_t *off = frame_offsets(f->dictionary, 0);
            const char *bytes = frame_values(f->dictionary, 0);
            char *at = text;
            for (int64_t i = 0; i < count; i++) {
                size_t len = (size_t)(off[i + 1] - off[i]);
                memcpy(at, bytes + off[i], len);
                at[len] = '\0';
                names[i] = at;
                at += len + 1;
            }
            t = duckdb_create_enum_type(names, (idx_t)count);
        }
        free(names);
        free(text);
        return t;
    }
    default:
        return duckdb_create_logical_type(simple[f->type]);
    }
}

static void copy_validity(duckdb_vector v, const frame_batch *b, size_t column, int64_t row,
                          idx_t n)
{
    const uint8_t *bits = frame_validity(b, column);
    if (!bits)
        return;
    duckdb_vector_ensure_validity_writable(v);
    uint64_t *mask = duckdb_vector_get_validity(v);
    if ((row & 7) == 0) {
        memcpy(mask, bits + row / 8, (n + 7) / 8);
        return;
    }
    for (idx_t i = 0; i < n; i++) {
        if (frame_bit(bits, row + (int64_t)i))
            mask[i / 64] |= (uint64_t)1 << (i % 64);
        else
            mask[i / 64] &= ~((uint64_t)1 << (i % 64));
    }
}

static void put_strings(duckdb_vector v, const frame_batch *b, size_t column, int64_t row,
                        idx_t n)
{
    const int32_t *off = frame_offsets(b, column);
    const char *bytes = frame_values(b, column);
    for (idx_t i = 0; i < n; i++) {
        int64_t r = row + (int64_t)i;
        if (!frame_is_null(b, column, r))
            duckdb_vector_assign_string_element_len(v, i, bytes + off[r],
                                                    (idx_t)(off[r + 1] - off[r]));
    }
}

static void put_category(duckdb_vector v, const frame_field *f, const frame_batch *b,
                         size_t column, int64_t row, idx_t n)
{
    const void *codes = frame_values(b, column);
    size_t width = frame_field_width(f);
    if (!f->dictionary || f->dictionary->rows == 0)
        return; /* every row is null: a VARCHAR vector of nulls */
    duckdb_logical_type type = duckdb_vector_get_column_type(v);
    duckdb_type internal = duckdb_enum_internal_type(type);
    duckdb_destroy_logical_type(&type);
    void *out = duckdb_vector_get_data(v);
    for (idx_t i = 0; i < n; i++) {
        int64_t r = row + (int64_t)i;
        int32_t code = width == 1 ? ((const int8_t *)codes)[r]
                       : width == 2 ? ((const int16_t *)codes)[r] : ((const int32_t *)codes)[r];
        if (code < 0)
            code = 0;
        if (internal == DUCKDB_TYPE_UTINYINT)
            ((uint8_t *)out)[i] = (uint8_t)code;
        else if (internal == DUCKDB_TYPE_USMALLINT)
            ((uint16_t *)out)[i] = (uint16_t)code;
        else
            ((uint32_t *)out)[i] = (uint32_t)code;
    }
}

static void put_decimals(duckdb_vector v, const frame_field *f, const frame_batch *b,
                         size_t column, int64_t row, idx_t n)
{
    const int64_t *in = (const int64_t *)frame_values(b, column) + 2 * row;
    void *out = duckdb_vector_get_data(v);
    if (f->precision > 18) {
        memcpy(out, in, n * 16);
        return;
    }
    for (idx_t i = 0; i < n; i++) {
        int64_t x = in[2 * i];
        if (f->precision <= 4)
            ((int16_t *)out)[i] = (int16_t)x;
        else if (f->precision <= 9)
            ((int32_t *)out)[i] = (int32_t)x;
        else
            ((int64_t *)out)[i] = x;
    }
}

static void put_bools(duckdb_vector v, const frame_batch *b, size_t column, int64_t row, idx_t n)
{
    const uint8_t *bits = frame_values(b, column);
    bool *out = duckdb_vector_get_data(v);
    for (idx_t i = 0; i < n; i++)
        out[i] = frame_bit(bits, row + (int64_t)i);
}

static void put_timestamps(duckdb_vector v, const frame_field *f, const frame_batch *b,
                           size_t column, int64_t row, idx_t n)
{
    static const int64_t micros_per_unit[] = {1000000, 1000, 1, 1};
    const int64_t nanos_per_micro = 1000;
    const int64_t *in = (const int64_t *)frame_values(b, column) + row;
    int64_t *out = duckdb_vector_get_data(v);
    if (!f->timezone || f->unit == FRAME_MICRO) {
        memcpy(out, in, n * sizeof *out);
        return;
    }
    for (idx_t i = 0; i < n; i++) /* TIMESTAMP WITH TIME ZONE is microseconds */
        out[i] = f->unit == FRAME_NANO ? in[i] / nanos_per_micro : in[i] * micros_per_unit[f->unit];
}

void convert_fill(duckdb_vector v, const frame_field *f, const frame_batch *b, size_t column,
                  int64_t row, idx_t n)
{
    copy_validity(v, b, column, row, n);
    switch (f->type) {
    case FRAME_BOOL: put_bools(v, b, column, row, n); break;
    case FRAME_UTF8: case FRAME_BINARY: put_strings(v, b, column, row, n); break;
    case FRAME_CATEGORY: put_category(v, f, b, column, row, n); break;
    case FRAME_DECIMAL: put_decimals(v, f, b, column, row, n); break;
    case FRAME_TIMESTAMP: put_timestamps(v, f, b, column, row, n); break;
    default: {
        size_t width = frame_type_width(f->type);
        memcpy(duckdb_vector_get_data(v), (const char *)frame_values(b, column) + row * width,
               n * width);
    }
    }
}
