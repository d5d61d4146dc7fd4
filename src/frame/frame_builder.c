/* frame_builder.c -- building frames from rows in Arrow's layout, and slicing rows of one.
 *
 * The builder grows one column builder per field (validity bits, offsets, values) for the
 * batch being filled; when the batch holds batch_rows rows, or a string column would pass
 * what int32 offsets can address, the batch is laid out into one body allocation in Arrow IPC
 * order (frame_batch_layout) and the column builders start over, keeping their capacity. So a
 * loader's peak is the frame plus one batch, never two copies of the frame.
 *
 * A validity bitmap is only kept once a column has a null: until then the column has none.
 * Timestamps of another unit are converted as they arrive; integers appended to a float64
 * field (an integer column pandas holds as float64 because it has nulls) become doubles, NaN
 * where null.
 *
 * A categorical field filled from strings (DuckDB has no categorical type) gets its categories
 * collected in a category_set while rows arrive, each row storing a provisional int32 code. At
 * finish the categories are sorted, as pandas sorts the categories it infers, and each batch is
 * laid out again with the final codes, narrowed to the width pandas uses
 * (frame_category_index_type).
 *
 * frame_slice_rows is a builder fed with views of another frame's batches. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "category_set.h"
#include "frame.h"

enum {
    DEFAULT_BATCH_ROWS = 128 * 1024,
    /* A batch's string bytes must stay addressable by int32 offsets. */
    MAX_BATCH_STRING_BYTES = INT32_MAX
};

/* Append to a buf; false when out of memory. */
static bool put(buf *b, const void *data, size_t len)
{
    buf_append(b, data, len);
    return !b->failed;
}

/* ---- the builder ------------------------------------------------------------------------ */

typedef struct column_builder {
    buf           validity; /* bits; empty until the first null */
    int64_t       null_count;
    buf           offsets;  /* int32, rows + 1 */
    buf           values;
    category_set *categories; /* a CATEGORY field being filled from strings */
} column_builder;

struct frame_builder {
    frame_field    *fields;
    size_t          field_count;
    column_builder *columns;
    int64_t         batch_rows, rows_in_batch, rows;
    frame_batch    *batches;
    size_t          batch_count, batch_capacity;
    uint64_t        batch_bytes;
    frame_index     index;
    char           *pandas_metadata;
};

static void column_builder_reset(column_builder *c)
{
    c->validity.len = 0;
    c->offsets.len = 0;
    c->values.len = 0;
    c->null_count = 0;
}

void frame_builder_destroy(frame_builder *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->field_count; i++) {
        frame_field_clear(&b->fields[i]);
        buf_free(&b->columns[i].validity);
        buf_free(&b->columns[i].offsets);
        buf_free(&b->columns[i].values);
        category_set_free(b->columns[i].categories);
    }
    for (size_t i = 0; i < b->batch_count; i++)
        frame_batch_clear(&b->batches[i]);
    free(b->batches);
    free(b->fields);
    free(b->columns);
    free(b->index.name);
    free(b->pandas_metadata);
    free(b);
}

static bool field_is_valid(const frame_field *f)
{
    if (f->type > FRAME_CATEGORY || f->unit > FRAME_NANO)
        return false;
    if (f->type == FRAME_CATEGORY)
        return f->index_type == FRAME_INT8 || f->index_type == FRAME_INT16 ||
               f->index_type == FRAME_INT32 || !f->dictionary;
    if (f->type == FRAME_DECIMAL)
        return f->precision >= 1 && f->precision <= 38 && f->scale >= 0 &&
               f->scale <= f->precision;
    return true;
}

frame_builder *frame_builder_create(const frame_field *fields, size_t field_count,
                                    int64_t batch_rows, aside_error *err)
{
    frame_builder *b = calloc(1, sizeof *b);
    if (!b)
        goto nomem;
    b->batch_rows = batch_rows > 0 ? batch_rows : DEFAULT_BATCH_ROWS;
    b->index.step = 1;
    b->fields = calloc(field_count ? field_count : 1, sizeof *b->fields);
    b->columns = calloc(field_count ? field_count : 1, sizeof *b->columns);
    if (!b->fields || !b->columns)
        goto nomem;
    for (size_t i = 0; i < field_count; i++) {
        if (!field_is_valid(&fields[i])) {
            error_set(err, ASIDE_ERR_INVALID, "column \"%s\": malformed type",
                      fields[i].name ? fields[i].name : "");
            frame_builder_destroy(b);
            return NULL;
        }
        if (!frame_field_copy(&b->fields[i], &fields[i]))
            goto nomem;
        b->field_count = i + 1;
        b->fields[i].null_count = 0;
        if (fields[i].type == FRAME_CATEGORY && !fields[i].dictionary) {
            b->fields[i].index_type = FRAME_INT32; /* provisional codes, narrowed at finish */
            if (!(b->columns[i].categories = category_set_create()))
                goto nomem;
        }
    }
    return b;
nomem:
    frame_builder_destroy(b);
    error_set(err, ASIDE_ERR_NOMEM, "out of memory building a frame");
    return NULL;
}

uint64_t frame_builder_bytes(const frame_builder *b)
{
    uint64_t bytes = b->batch_bytes;
    for (size_t i = 0; i < b->field_count; i++)
        bytes += b->columns[i].validity.cap + b->columns[i].offsets.cap +
                 b->columns[i].values.cap;
    return bytes;
}

/* Lay out the batch being filled and start the next. */
static bool flush_batch(frame_builder *b)
{
    if (b->rows_in_batch == 0)
        return true;
    if (b->batch_count == b->batch_capacity) {
        size_t capacity = b->batch_capacity ? b->batch_capacity * 2 : 16;
        frame_batch *batches = realloc(b->batches, capacity * sizeof *batches);
        if (!batches)
            return false;
        b->batches = batches;
        b->batch_capacity = capacity;
    }
    frame_column_parts *parts = calloc(b->field_count ? b->field_count : 1, sizeof *parts);
    if (!parts)
        return false;
    for (size_t i = 0; i < b->field_count; i++) {
        column_builder *c = &b->columns[i];
        parts[i] = (frame_column_parts){c->null_count, c->validity.data, c->validity.len,
                                  c->offsets.data, c->offsets.len, c->values.data,
                                  c->values.len};
    }
    frame_batch *batch = &b->batches[b->batch_count];
    memset(batch, 0, sizeof *batch);
    batch->rows = b->rows_in_batch;
    bool ok = frame_batch_layout(batch, parts, b->field_count);
    free(parts);
    if (!ok) {
        frame_batch_clear(batch);
        return false;
    }
    b->batch_count++;
    b->batch_bytes += batch->body_bytes;
    for (size_t i = 0; i < b->field_count; i++)
        column_builder_reset(&b->columns[i]);
    b->rows_in_batch = 0;
    return true;
}

static bool bits_reserve(buf *bits, int64_t rows)
{
    size_t need = (size_t)((rows + 7) / 8);
    if (bits->len >= need)
        return true;
    if (!buf_reserve(bits, need - bits->len))
        return false;
    memset(bits->data + bits->len, 0, need - bits->len);
    bits->len = need;
    return true;
}

static void bit_put(uint8_t *bits, int64_t i, bool on)
{
    if (on)
        bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    else
        bits[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

/* Append count bits from src (starting at bit first, NULL meaning all set) at bit at. */
static bool bits_append(buf *bits, int64_t at, const uint8_t *src, int64_t first, int64_t count)
{
    if (!bits_reserve(bits, at + count))
        return false;
    uint8_t *dst = (uint8_t *)bits->data;
    if (src && (at & 7) == 0 && (first & 7) == 0) {
        memcpy(dst + at / 8, src + first / 8, (size_t)(count / 8));
        for (int64_t i = count & ~(int64_t)7; i < count; i++)
            bit_put(dst, at + i, frame_bit(src, first + i));
        return true;
    }
    for (int64_t i = 0; i < count; i++)
        bit_put(dst, at + i, !src || frame_bit(src, first + i));
    return true;
}

static int64_t count_nulls(const uint8_t *validity, int64_t first, int64_t count)
{
    if (!validity)
        return 0;
    int64_t nulls = 0;
    for (int64_t i = 0; i < count; i++)
        nulls += !frame_bit(validity, first + i);
    return nulls;
}

static aside_status append_validity(frame_builder *b, size_t column, const frame_slice *s,
                                    int64_t first, int64_t count, aside_error *err)
{
    column_builder *c = &b->columns[column];
    int64_t nulls = count_nulls(s->validity, s->offset + first, count);
    if (nulls && c->validity.len == 0 && b->rows_in_batch > 0 &&
        !bits_append(&c->validity, 0, NULL, 0, b->rows_in_batch))
        goto nomem;
    if ((nulls || c->validity.len) &&
        !bits_append(&c->validity, b->rows_in_batch, nulls ? s->validity : NULL,
                     s->offset + first, count))
        goto nomem;
    c->null_count += nulls;
    b->fields[column].null_count += nulls;
    return ASIDE_OK;
nomem:
    return error_set(err, ASIDE_ERR_NOMEM, "out of memory building a frame");
}

static int64_t string_offset(const frame_slice *s, int64_t row)
{
    return s->large_offsets ? ((const int64_t *)s->offsets)[row]
                            : ((const int32_t *)s->offsets)[row];
}

static bool append_strings(column_builder *c, const frame_slice *s, int64_t first, int64_t count)
{
    if (c->offsets.len == 0) {
        int32_t zero = 0;
        if (!put(&c->offsets, &zero, sizeof zero))
            return false;
    }
    int64_t start = string_offset(s, s->offset + first);
    int64_t end = string_offset(s, s->offset + first + count);
    int32_t base = (int32_t)c->values.len;
    if (!buf_reserve(&c->offsets, (size_t)count * sizeof(int32_t)) ||
        !put(&c->values, (const char *)s->values + start, (size_t)(end - start)))
        return false;
    int32_t *out = (int32_t *)(c->offsets.data + c->offsets.len);
    for (int64_t i = 1; i <= count; i++)
        out[i - 1] = base + (int32_t)(string_offset(s, s->offset + first + i) - start);
    c->offsets.len += (size_t)count * sizeof(int32_t);
    return true;
}

static bool append_category_strings(column_builder *c, const frame_slice *s, int64_t first,
                                    int64_t count)
{
    if (!buf_reserve(&c->values, (size_t)count * sizeof(int32_t)))
        return false;
    int32_t *out = (int32_t *)(c->values.data + c->values.len);
    for (int64_t i = 0; i < count; i++) {
        int64_t row = s->offset + first + i;
        out[i] = 0;
        if (s->validity && !frame_bit(s->validity, row))
            continue;
        int64_t start = string_offset(s, row);
        int64_t code = category_set_code(c->categories, (const char *)s->values + start,
                                     (size_t)(string_offset(s, row + 1) - start));
        if (code < 0)
            return false;
        out[i] = (int32_t)code;
    }
    c->values.len += (size_t)count * sizeof(int32_t);
    return true;
}

static int64_t unit_scale(frame_unit unit)
{
    static const int64_t per_second[] = {1, 1000, 1000000, 1000000000};
    return per_second[unit];
}

static bool append_timestamps(column_builder *c, const frame_field *f, const frame_slice *s,
                              int64_t first, int64_t count)
{
    if (!buf_reserve(&c->values, (size_t)count * sizeof(int64_t)))
        return false;
    const int64_t *in = (const int64_t *)s->values + s->offset + first;
    int64_t *out = (int64_t *)(c->values.data + c->values.len);
    int64_t from = unit_scale(s->slice_unit), to = unit_scale(f->unit);
    for (int64_t i = 0; i < count; i++)
        out[i] = to >= from ? in[i] * (to / from) : in[i] / (from / to);
    c->values.len += (size_t)count * sizeof(int64_t);
    return true;
}

static bool is_integer(frame_type t) { return t >= FRAME_INT8 && t <= FRAME_UINT64; }

static bool slice_fits_field(const frame_field *f, const column_builder *c, const frame_slice *s)
{
    if (f->type == FRAME_CATEGORY)
        return c->categories ? s->slice_type == FRAME_UTF8 : s->slice_type == f->index_type;
    if (f->type == FRAME_FLOAT64 && is_integer(s->slice_type))
        return true; /* an integer column pandas holds as float64 (it has nulls) */
    return s->slice_type == f->type;
}

static double integer_at(const frame_slice *s, int64_t row)
{
    const void *v = s->values;
    switch (s->slice_type) {
    case FRAME_INT8: return ((const int8_t *)v)[row];
    case FRAME_INT16: return ((const int16_t *)v)[row];
    case FRAME_INT32: return ((const int32_t *)v)[row];
    case FRAME_INT64: return (double)((const int64_t *)v)[row];
    case FRAME_UINT8: return ((const uint8_t *)v)[row];
    case FRAME_UINT16: return ((const uint16_t *)v)[row];
    case FRAME_UINT32: return ((const uint32_t *)v)[row];
    default: return (double)((const uint64_t *)v)[row];
    }
}

/* Integers into a float64 column: NaN where null, as pandas has them. */
static bool append_as_floats(column_builder *c, const frame_slice *s, int64_t first,
                             int64_t count)
{
    if (!buf_reserve(&c->values, (size_t)count * sizeof(double)))
        return false;
    double *out = (double *)(c->values.data + c->values.len);
    for (int64_t i = 0; i < count; i++) {
        int64_t row = s->offset + first + i;
        out[i] = s->validity && !frame_bit(s->validity, row) ? NAN : integer_at(s, row);
    }
    c->values.len += (size_t)count * sizeof(double);
    return true;
}

static aside_status append_values(frame_builder *b, size_t column, const frame_slice *s,
                                  int64_t first, int64_t count, aside_error *err)
{
    const frame_field *f = &b->fields[column];
    column_builder *c = &b->columns[column];
    bool ok;
    if (c->categories)
        ok = append_category_strings(c, s, first, count);
    else if (f->type == FRAME_UTF8 || f->type == FRAME_BINARY)
        ok = append_strings(c, s, first, count);
    else if (f->type == FRAME_BOOL)
        ok = bits_append(&c->values, b->rows_in_batch, s->values, s->offset + first, count);
    else if (f->type == FRAME_TIMESTAMP && s->slice_unit != f->unit)
        ok = append_timestamps(c, f, s, first, count);
    else if (f->type == FRAME_FLOAT64 && is_integer(s->slice_type))
        ok = append_as_floats(c, s, first, count);
    else {
        size_t width = frame_field_width(f);
        ok = put(&c->values, (const char *)s->values + (s->offset + first) * width,
                        (size_t)count * width);
    }
    return ok ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory building a frame");
}

/* Rows of the slices that fit in the batch being filled, string bytes included. */
static int64_t rows_that_fit(const frame_builder *b, const frame_slice *slices, int64_t first,
                             int64_t rows)
{
    int64_t count = b->batch_rows - b->rows_in_batch;
    if (count > rows)
        count = rows;
    for (size_t i = 0; i < b->field_count; i++) {
        const frame_slice *s = &slices[i];
        if (s->slice_type != FRAME_UTF8 && s->slice_type != FRAME_BINARY)
            continue;
        if (b->columns[i].categories)
            continue;
        uint64_t room = MAX_BATCH_STRING_BYTES - b->columns[i].values.len;
        while (count > 0 && (uint64_t)(string_offset(s, s->offset + first + count) -
                                       string_offset(s, s->offset + first)) > room)
            count /= 2;
    }
    return count;
}

static aside_status append_rows(frame_builder *b, const frame_slice *slices, int64_t first,
                                int64_t count, aside_error *err)
{
    for (size_t i = 0; i < b->field_count; i++) {
        aside_status st = append_validity(b, i, &slices[i], first, count, err);
        if (st == ASIDE_OK)
            st = append_values(b, i, &slices[i], first, count, err);
        if (st != ASIDE_OK)
            return st;
    }
    b->rows_in_batch += count;
    b->rows += count;
    return ASIDE_OK;
}

aside_status frame_builder_append(frame_builder *b, const frame_slice *slices, aside_error *err)
{
    int64_t rows = b->field_count ? slices[0].length : 0;
    for (size_t i = 0; i < b->field_count; i++) {
        if (slices[i].length != rows || !slice_fits_field(&b->fields[i], &b->columns[i],
                                                          &slices[i]))
            return error_set(err, ASIDE_ERR_INTERNAL, "column \"%s\": slice does not match",
                             b->fields[i].name);
    }
    for (int64_t first = 0; first < rows;) {
        int64_t count = rows_that_fit(b, slices, first, rows - first);
        if (count == 0) {
            if (b->rows_in_batch == 0)
                return error_set(err, ASIDE_ERR_TOO_LARGE,
                                 "a single string is larger than 2 GiB");
            if (!flush_batch(b))
                return error_set(err, ASIDE_ERR_NOMEM, "out of memory building a frame");
            continue;
        }
        aside_status st = append_rows(b, slices, first, count, err);
        if (st != ASIDE_OK)
            return st;
        first += count;
        if (b->rows_in_batch == b->batch_rows && !flush_batch(b))
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory building a frame");
    }
    return ASIDE_OK;
}

aside_status frame_builder_set_index(frame_builder *b, const frame_index *index,
                                     aside_error *err)
{
    char *name = index->name ? strdup(index->name) : NULL;
    if (index->name && !name)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    free(b->index.name);
    b->index = *index;
    b->index.name = name;
    b->index.labels = NULL; /* labels are set on a finished frame by its maker */
    return ASIDE_OK;
}

aside_status frame_builder_set_pandas_metadata(frame_builder *b, const char *json,
                                               aside_error *err)
{
    char *copy = json ? strdup(json) : NULL;
    if (json && !copy)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    free(b->pandas_metadata);
    b->pandas_metadata = copy;
    return ASIDE_OK;
}

/* ---- finishing categories --------------------------------------------------------------- */

/* Sort the categories and set the field's dictionary; *remap receives old code -> new. */
static bool categories_finish(frame_field *f, const category_set *s, uint32_t **remap)
{
    if (!(f->dictionary = category_set_sorted(s, remap)))
        return false;
    f->index_type = frame_category_index_type(category_set_count(s));
    return true;
}


static void narrow_codes(const int32_t *codes, int64_t rows, const uint32_t *remap,
                         frame_type width, void *out)
{
    for (int64_t i = 0; i < rows; i++) {
        uint32_t code = remap[codes[i]];
        if (width == FRAME_INT8)
            ((int8_t *)out)[i] = (int8_t)code;
        else if (width == FRAME_INT16)
            ((int16_t *)out)[i] = (int16_t)code;
        else
            ((int32_t *)out)[i] = (int32_t)code;
    }
}

/* Lay batch out again with the final codes of the categorical columns. */
static bool batch_recode(frame_batch *batch, const frame_field *fields, size_t field_count,
                         uint32_t *const *remaps)
{
    frame_column_parts *parts = calloc(field_count ? field_count : 1, sizeof *parts);
    void **codes = calloc(field_count ? field_count : 1, sizeof *codes);
    bool ok = parts && codes;
    for (size_t i = 0; ok && i < field_count; i++) {
        const frame_column *c = &batch->columns[i];
        parts[i] = (frame_column_parts){c->null_count, batch->body + c->validity.offset,
                                  c->validity.length, batch->body + c->offsets.offset,
                                  c->offsets.length, batch->body + c->values.offset,
                                  c->values.length};
        if (!remaps[i])
            continue;
        size_t width = frame_field_width(&fields[i]);
        ok = (codes[i] = malloc((size_t)batch->rows * width + 1)) != NULL;
        if (ok) {
            narrow_codes((const int32_t *)parts[i].values, batch->rows, remaps[i],
                         fields[i].index_type, codes[i]);
            parts[i].values = codes[i];
            parts[i].values_bytes = (uint64_t)batch->rows * width;
        }
    }
    frame_batch fresh = {.rows = batch->rows};
    ok = ok && frame_batch_layout(&fresh, parts, field_count);
    for (size_t i = 0; codes && i < field_count; i++)
        free(codes[i]);
    free(codes);
    free(parts);
    if (!ok) {
        frame_batch_clear(&fresh);
        return false;
    }
    frame_batch_clear(batch);
    *batch = fresh;
    return true;
}

static bool finish_categories(frame_builder *b)
{
    uint32_t **remaps = calloc(b->field_count ? b->field_count : 1, sizeof *remaps);
    bool any = false, ok = remaps != NULL;
    for (size_t i = 0; ok && i < b->field_count; i++) {
        if (b->columns[i].categories) {
            any = true;
            ok = categories_finish(&b->fields[i], b->columns[i].categories, &remaps[i]);
        }
    }
    for (size_t i = 0; ok && any && i < b->batch_count; i++)
        ok = batch_recode(&b->batches[i], b->fields, b->field_count, remaps);
    for (size_t i = 0; remaps && i < b->field_count; i++)
        free(remaps[i]);
    free(remaps);
    return ok;
}

frame *frame_builder_finish(frame_builder *b, aside_error *err)
{
    frame *f = NULL;
    if (!flush_batch(b) || !finish_categories(b) || !(f = calloc(1, sizeof *f))) {
        frame_builder_destroy(b);
        error_set(err, ASIDE_ERR_NOMEM, "out of memory building a frame");
        return NULL;
    }
    atomic_init(&f->refs, 1);
    f->field_count = b->field_count;
    f->fields = b->fields;
    f->batch_count = b->batch_count;
    f->batches = b->batches;
    f->rows = b->rows;
    f->index = b->index;
    f->pandas_metadata = b->pandas_metadata;
    f->memory_bytes = frame_memory_bytes(f);
    b->fields = NULL;
    b->batches = NULL;
    b->batch_count = 0;
    b->index.name = NULL;
    b->pandas_metadata = NULL;
    size_t n = b->field_count;
    b->field_count = 0;
    for (size_t i = 0; i < n; i++) {
        buf_free(&b->columns[i].validity);
        buf_free(&b->columns[i].offsets);
        buf_free(&b->columns[i].values);
        category_set_free(b->columns[i].categories);
    }
    frame_builder_destroy(b);
    return f;
}

/* ---- slicing rows ----------------------------------------------------------------------- */

/* Slices viewing rows [first, first + count) of batch. */
static void batch_slices(const frame *f, const frame_batch *batch, int64_t first, int64_t count,
                         frame_slice *slices)
{
    for (size_t i = 0; i < f->field_count; i++) {
        const frame_field *fd = &f->fields[i];
        frame_slice *s = &slices[i];
        memset(s, 0, sizeof *s);
        s->length = count;
        s->offset = first;
        s->null_count = -1;
        s->validity = frame_validity(batch, i);
        s->offsets = frame_offsets(batch, i);
        s->values = frame_values(batch, i);
        s->slice_type = fd->type == FRAME_CATEGORY ? fd->index_type : fd->type;
        s->slice_unit = fd->unit;
    }
}

/* A builder for rows of f whose integer columns with nulls are float64, as pandas holds them:
 * a slice keeps its dtype whether or not its own rows have a null. */
static frame_builder *builder_as_pandas_has_it(const frame *f, aside_error *err)
{
    frame_field *fields = calloc(f->field_count ? f->field_count : 1, sizeof *fields);
    if (!fields) {
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(fields, f->fields, f->field_count * sizeof *fields);
    for (size_t i = 0; i < f->field_count; i++) {
        if (is_integer(fields[i].type) && fields[i].null_count > 0 && !fields[i].pandas_dtype)
            fields[i].type = FRAME_FLOAT64;
    }
    frame_builder *b = frame_builder_create(fields, f->field_count, 0, err);
    free(fields);
    return b;
}

frame *frame_slice_rows(const frame *f, int64_t first, int64_t count, aside_error *err)
{
    if (first < 0)
        first = 0;
    if (count < 0 || first > f->rows)
        count = 0;
    if (count > f->rows - first)
        count = f->rows - first;
    frame_builder *b = builder_as_pandas_has_it(f, err);
    frame_slice *slices = calloc(f->field_count ? f->field_count : 1, sizeof *slices);
    if (!b || !slices)
        goto fail;
    frame_index index = f->index;
    index.start = f->index.start + first * f->index.step;
    if (frame_builder_set_index(b, &index, err) != ASIDE_OK)
        goto fail;
    int64_t at = 0; /* first row of the batch being looked at */
    for (size_t i = 0; i < f->batch_count && count > 0; i++) {
        const frame_batch *batch = &f->batches[i];
        if (first < at + batch->rows) {
            int64_t from = first - at, n = batch->rows - from;
            if (n > count)
                n = count;
            batch_slices(f, batch, from, n, slices);
            if (frame_builder_append(b, slices, err) != ASIDE_OK)
                goto fail;
            first += n;
            count -= n;
        }
        at += batch->rows;
    }
    free(slices);
    return frame_builder_finish(b, err);
fail:
    if (!slices)
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    free(slices);
    frame_builder_destroy(b);
    return NULL;
}
