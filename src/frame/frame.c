/* frame.c -- frames: reference counting, fields, and the builder.
 *
 * The builder grows one column builder per field (validity bits, offsets, values) for the
 * batch being filled; when the batch holds batch_rows rows, or a string column would pass
 * what int32 offsets can address, the batch is laid out into one body allocation in Arrow IPC
 * order and the column builders start over, keeping their capacity. So a loader's peak is the
 * frame plus one batch, never two copies of the frame.
 *
 * A categorical field filled from strings (DuckDB has no categorical type) gets its categories
 * collected in a hash table while rows arrive, each row storing a provisional int32 code. At
 * finish the categories are sorted, as pandas sorts the categories it infers, and each batch is
 * laid out again with the final codes, narrowed to the width pandas uses (int8 below 127
 * categories, int16 below 32767, else int32). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "frame.h"

enum {
    DEFAULT_BATCH_ROWS = 128 * 1024,
    /* A batch's string bytes must stay addressable by int32 offsets. */
    MAX_BATCH_STRING_BYTES = INT32_MAX,
    BODY_ALIGN_BYTES = 64 /* what SIMD readers of the buffers like best */
};

/* Append to a buf; false when out of memory. */
static bool put(buf *b, const void *data, size_t len)
{
    buf_append(b, data, len);
    return !b->failed;
}

/* ---- frames ----------------------------------------------------------------------------- */

frame *frame_retain(frame *f)
{
    atomic_fetch_add(&f->refs, 1);
    return f;
}

static void batch_clear(frame_batch *b)
{
    free(b->body);
    free(b->columns);
    memset(b, 0, sizeof *b);
}

void frame_dictionary_free(frame_batch *dictionary)
{
    if (!dictionary)
        return;
    batch_clear(dictionary);
    free(dictionary);
}

void frame_field_clear(frame_field *field)
{
    free(field->name);
    free(field->timezone);
    free(field->pandas_dtype);
    frame_dictionary_free(field->dictionary);
    memset(field, 0, sizeof *field);
}

static void frame_free(frame *f)
{
    for (size_t i = 0; i < f->field_count; i++)
        frame_field_clear(&f->fields[i]);
    for (size_t i = 0; i < f->batch_count; i++) {
        if (f->mapping) /* the body is part of the mapping */
            f->batches[i].body = NULL;
        batch_clear(&f->batches[i]);
    }
    if (f->mapping)
        munmap(f->mapping, f->mapping_bytes);
    free(f->fields);
    free(f->batches);
    for (int64_t i = 0; f->index.labels && i < f->rows; i++)
        free(f->index.labels[i]);
    free(f->index.labels);
    free(f->index.name);
    free(f->pandas_metadata);
    free(f);
}

void frame_release(frame *f)
{
    if (f && atomic_fetch_sub(&f->refs, 1) == 1)
        frame_free(f);
}

size_t frame_type_width(frame_type type)
{
    switch (type) {
    case FRAME_INT8: case FRAME_UINT8: return 1;
    case FRAME_INT16: case FRAME_UINT16: return 2;
    case FRAME_INT32: case FRAME_UINT32: case FRAME_FLOAT32: case FRAME_DATE32: return 4;
    case FRAME_INT64: case FRAME_UINT64: case FRAME_FLOAT64: case FRAME_TIMESTAMP: return 8;
    case FRAME_DECIMAL: return 16;
    default: return 0;
    }
}

size_t frame_field_width(const frame_field *field)
{
    return frame_type_width(field->type == FRAME_CATEGORY ? field->index_type : field->type);
}

ptrdiff_t frame_field_find(const frame *f, const char *name)
{
    for (size_t i = 0; i < f->field_count; i++) {
        if (strcmp(f->fields[i].name, name) == 0)
            return (ptrdiff_t)i;
    }
    return -1;
}

static char *copy_string(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *copy = strdup(s);
    if (!copy)
        *ok = false;
    return copy;
}

static frame_batch *batch_copy(const frame_batch *src, size_t column_count)
{
    frame_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->rows = src->rows;
    b->body_bytes = src->body_bytes;
    b->columns = malloc(column_count * sizeof *b->columns);
    if (posix_memalign((void **)&b->body, BODY_ALIGN_BYTES, src->body_bytes ? src->body_bytes
                                                                             : FRAME_ALIGN))
        b->body = NULL;
    if (!b->columns || !b->body) {
        frame_dictionary_free(b);
        return NULL;
    }
    memcpy(b->columns, src->columns, column_count * sizeof *b->columns);
    memcpy(b->body, src->body, src->body_bytes);
    return b;
}

bool frame_field_copy(frame_field *dst, const frame_field *src)
{
    bool ok = true;
    *dst = *src;
    dst->name = copy_string(src->name ? src->name : "", &ok);
    dst->timezone = copy_string(src->timezone, &ok);
    dst->pandas_dtype = copy_string(src->pandas_dtype, &ok);
    dst->dictionary = NULL;
    if (src->dictionary && !(dst->dictionary = batch_copy(src->dictionary, 1)))
        ok = false;
    if (!ok)
        frame_field_clear(dst);
    return ok;
}

/* ---- laying out a batch ----------------------------------------------------------------- */

static uint64_t align_up(uint64_t n) { return (n + FRAME_ALIGN - 1) & ~(uint64_t)(FRAME_ALIGN - 1); }

/* One column's buffers before layout. */
typedef struct column_parts {
    int64_t     null_count;
    const void *validity;
    uint64_t    validity_bytes;
    const void *offsets;
    uint64_t    offsets_bytes;
    const void *values;
    uint64_t    values_bytes;
} column_parts;

static uint64_t place(frame_span *span, uint64_t at, uint64_t length)
{
    span->offset = length ? at : 0;
    span->length = length;
    return at + align_up(length);
}

/* Lay parts out into b (rows already set): one aligned allocation in IPC order. */
static bool batch_layout(frame_batch *b, const column_parts *parts, size_t column_count)
{
    b->columns = calloc(column_count ? column_count : 1, sizeof *b->columns);
    if (!b->columns)
        return false;
    uint64_t at = 0;
    for (size_t i = 0; i < column_count; i++) {
        frame_column *c = &b->columns[i];
        c->null_count = parts[i].null_count;
        at = place(&c->validity, at, parts[i].null_count ? parts[i].validity_bytes : 0);
        at = place(&c->offsets, at, parts[i].offsets_bytes);
        at = place(&c->values, at, parts[i].values_bytes);
    }
    b->body_bytes = at;
    if (posix_memalign((void **)&b->body, BODY_ALIGN_BYTES, at ? at : FRAME_ALIGN)) {
        b->body = NULL;
        return false;
    }
    memset(b->body, 0, at);
    for (size_t i = 0; i < column_count; i++) {
        const frame_column *c = &b->columns[i];
        if (c->validity.length)
            memcpy(b->body + c->validity.offset, parts[i].validity, c->validity.length);
        if (c->offsets.length)
            memcpy(b->body + c->offsets.offset, parts[i].offsets, c->offsets.length);
        if (c->values.length)
            memcpy(b->body + c->values.offset, parts[i].values, c->values.length);
    }
    return true;
}

frame_batch *frame_dictionary_create(const char *const *values, const size_t *lengths,
                                     size_t count)
{
    frame_batch *d = calloc(1, sizeof *d);
    int32_t *offsets = malloc((count + 1) * sizeof *offsets);
    buf bytes = {0};
    bool ok = d && offsets;
    if (ok)
        offsets[0] = 0;
    for (size_t i = 0; ok && i < count; i++) {
        ok = put(&bytes, values[i], lengths[i]) && bytes.len <= MAX_BATCH_STRING_BYTES;
        offsets[i + 1] = (int32_t)bytes.len;
    }
    column_parts parts = {.offsets = offsets, .offsets_bytes = (count + 1) * sizeof *offsets,
                          .values = bytes.data, .values_bytes = bytes.len};
    if (ok) {
        d->rows = (int64_t)count;
        ok = batch_layout(d, &parts, 1);
    }
    free(offsets);
    buf_free(&bytes);
    if (!ok) {
        frame_dictionary_free(d);
        return NULL;
    }
    return d;
}

/* ---- the builder ------------------------------------------------------------------------ */

/* Categories collected from strings: open addressing over indexes into offsets/bytes. */
typedef struct category_set {
    buf       bytes;
    int64_t  *offsets; /* count + 1 */
    size_t    count, capacity;
    uint32_t *slots;   /* code + 1; 0 empty */
    size_t    slot_count;
} category_set;

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

static bool category_set_grow(category_set *s)
{
    size_t slot_count = s->slot_count ? s->slot_count * 2 : 1024;
    uint32_t *slots = calloc(slot_count, sizeof *slots);
    if (!slots)
        return false;
    for (size_t code = 0; code < s->count; code++) {
        const char *v = s->bytes.data + s->offsets[code];
        size_t len = (size_t)(s->offsets[code + 1] - s->offsets[code]);
        size_t at = XXH3_64bits(v, len) & (slot_count - 1);
        while (slots[at])
            at = (at + 1) & (slot_count - 1);
        slots[at] = (uint32_t)code + 1;
    }
    free(s->slots);
    s->slots = slots;
    s->slot_count = slot_count;
    return true;
}

/* The provisional code of v, adding it if new; -1 when out of memory. */
static int64_t category_code(category_set *s, const char *v, size_t len)
{
    if ((s->count + 1) * 2 > s->slot_count && !category_set_grow(s))
        return -1;
    size_t at = XXH3_64bits(v, len) & (s->slot_count - 1);
    for (; s->slots[at]; at = (at + 1) & (s->slot_count - 1)) {
        size_t code = s->slots[at] - 1;
        int64_t start = s->offsets[code];
        if ((size_t)(s->offsets[code + 1] - start) == len &&
            memcmp(s->bytes.data + start, v, len) == 0)
            return (int64_t)code;
    }
    if (s->count + 2 > s->capacity) {
        size_t capacity = s->capacity ? s->capacity * 2 : 256;
        int64_t *offsets = realloc(s->offsets, capacity * sizeof *offsets);
        if (!offsets)
            return -1;
        s->offsets = offsets;
        s->capacity = capacity;
    }
    if (s->count == 0)
        s->offsets[0] = 0;
    if (!put(&s->bytes, v, len))
        return -1;
    s->offsets[s->count + 1] = (int64_t)s->bytes.len;
    s->slots[at] = (uint32_t)s->count + 1;
    return (int64_t)s->count++;
}

static void category_set_free(category_set *s)
{
    if (!s)
        return;
    buf_free(&s->bytes);
    free(s->offsets);
    free(s->slots);
    free(s);
}

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
        batch_clear(&b->batches[i]);
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
            if (!(b->columns[i].categories = calloc(1, sizeof(category_set))))
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
    column_parts *parts = calloc(b->field_count ? b->field_count : 1, sizeof *parts);
    if (!parts)
        return false;
    for (size_t i = 0; i < b->field_count; i++) {
        column_builder *c = &b->columns[i];
        parts[i] = (column_parts){c->null_count, c->validity.data, c->validity.len,
                                  c->offsets.data, c->offsets.len, c->values.data,
                                  c->values.len};
    }
    frame_batch *batch = &b->batches[b->batch_count];
    memset(batch, 0, sizeof *batch);
    batch->rows = b->rows_in_batch;
    bool ok = batch_layout(batch, parts, b->field_count);
    free(parts);
    if (!ok) {
        batch_clear(batch);
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
        int64_t code = category_code(c->categories, (const char *)s->values + start,
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

static int compare_categories(const void *a, const void *b, void *set)
{
    const category_set *s = set;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    size_t lx = (size_t)(s->offsets[x + 1] - s->offsets[x]);
    size_t ly = (size_t)(s->offsets[y + 1] - s->offsets[y]);
    int c = memcmp(s->bytes.data + s->offsets[x], s->bytes.data + s->offsets[y],
                   lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

/* Sort the categories and set the field's dictionary; *remap receives old code -> new. */
static bool categories_finish(frame_field *f, category_set *s, uint32_t **remap)
{
    uint32_t *order = malloc((s->count ? s->count : 1) * sizeof *order);
    *remap = malloc((s->count ? s->count : 1) * sizeof **remap);
    const char **values = malloc((s->count ? s->count : 1) * sizeof *values);
    size_t *lengths = malloc((s->count ? s->count : 1) * sizeof *lengths);
    bool ok = order && *remap && values && lengths;
    if (ok) {
        for (uint32_t i = 0; i < s->count; i++)
            order[i] = i;
        qsort_r(order, s->count, sizeof *order, compare_categories, s);
        for (size_t i = 0; i < s->count; i++) {
            (*remap)[order[i]] = (uint32_t)i;
            values[i] = s->bytes.data + s->offsets[order[i]];
            lengths[i] = (size_t)(s->offsets[order[i] + 1] - s->offsets[order[i]]);
        }
        f->dictionary = frame_dictionary_create(values, lengths, s->count);
        ok = f->dictionary != NULL;
        f->index_type = s->count < 127 ? FRAME_INT8 : s->count < 32767 ? FRAME_INT16
                                                                        : FRAME_INT32;
    }
    free(order);
    free(values);
    free(lengths);
    return ok;
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
    column_parts *parts = calloc(field_count ? field_count : 1, sizeof *parts);
    void **codes = calloc(field_count ? field_count : 1, sizeof *codes);
    bool ok = parts && codes;
    for (size_t i = 0; ok && i < field_count; i++) {
        const frame_column *c = &batch->columns[i];
        parts[i] = (column_parts){c->null_count, batch->body + c->validity.offset,
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
    ok = ok && batch_layout(&fresh, parts, field_count);
    for (size_t i = 0; codes && i < field_count; i++)
        free(codes[i]);
    free(codes);
    free(parts);
    if (!ok) {
        batch_clear(&fresh);
        return false;
    }
    batch_clear(batch);
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

static uint64_t frame_bytes(const frame *f)
{
    uint64_t bytes = sizeof *f + f->field_count * sizeof *f->fields +
                     f->batch_count * (sizeof *f->batches +
                                       f->field_count * sizeof(frame_column));
    for (size_t i = 0; i < f->batch_count; i++)
        bytes += f->batches[i].body_bytes;
    for (size_t i = 0; i < f->field_count; i++) {
        const frame_field *fd = &f->fields[i];
        bytes += strlen(fd->name) + 1;
        if (fd->dictionary)
            bytes += sizeof *fd->dictionary + sizeof(frame_column) + fd->dictionary->body_bytes;
    }
    if (f->pandas_metadata)
        bytes += strlen(f->pandas_metadata) + 1;
    return bytes;
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
    f->memory_bytes = frame_bytes(f);
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

/* ---- views of a mapped file ------------------------------------------------------------ */

static bool copy_fields(frame *dst, const frame *src)
{
    dst->fields = calloc(src->field_count ? src->field_count : 1, sizeof *dst->fields);
    if (!dst->fields)
        return false;
    for (size_t i = 0; i < src->field_count; i++) {
        if (!frame_field_copy(&dst->fields[i], &src->fields[i]))
            return false;
        dst->field_count = i + 1;
    }
    return true;
}

static bool view_batches(frame *dst, const frame *src, const uint64_t *body_offsets)
{
    dst->batches = calloc(src->batch_count ? src->batch_count : 1, sizeof *dst->batches);
    if (!dst->batches)
        return false;
    for (size_t i = 0; i < src->batch_count; i++) {
        const frame_batch *b = &src->batches[i];
        frame_batch *v = &dst->batches[i];
        v->columns = malloc((src->field_count ? src->field_count : 1) * sizeof *v->columns);
        if (!v->columns)
            return false;
        memcpy(v->columns, b->columns, src->field_count * sizeof *v->columns);
        v->rows = b->rows;
        v->body_bytes = b->body_bytes;
        v->body = (uint8_t *)dst->mapping + body_offsets[i];
        dst->batch_count = i + 1;
    }
    return true;
}

frame *frame_view_mapping(const frame *f, void *mapping, size_t mapping_bytes,
                          const uint64_t *body_offsets)
{
    frame *v = calloc(1, sizeof *v);
    if (!v) {
        munmap(mapping, mapping_bytes);
        return NULL;
    }
    atomic_init(&v->refs, 1);
    v->mapping = mapping;
    v->mapping_bytes = mapping_bytes;
    v->rows = f->rows;
    v->index = f->index;
    v->index.name = NULL;
    v->index.labels = NULL; /* views are of loaded frames, whose index is a range */
    bool ok = (!f->index.name || (v->index.name = strdup(f->index.name))) &&
              (!f->pandas_metadata || (v->pandas_metadata = strdup(f->pandas_metadata))) &&
              copy_fields(v, f) && view_batches(v, f, body_offsets);
    if (!ok) {
        frame_free(v);
        return NULL;
    }
    v->memory_bytes = frame_bytes(v);
    for (size_t i = 0; i < v->batch_count; i++) /* the bodies are the mapping's: not ours */
        v->memory_bytes -= v->batches[i].body_bytes;
    return v;
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
