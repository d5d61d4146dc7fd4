/* frame.c -- frames: reference counting, fields, dictionaries, batch layout, mapped views.
 *
 * A batch body is laid out in one aligned allocation (frame_batch_layout): for each column in
 * order its validity bitmap (left out when it has no nulls), offsets and values, each starting
 * at a multiple of FRAME_ALIGN, the whole allocation aligned for SIMD readers. Producers of
 * batches (the builder, frame_builder.c; dictionaries, here) hand their buffers over as
 * frame_column_parts and the layout copies them in. A frame's memory_bytes counts every
 * allocation it holds (frame_memory_bytes). Views of a mapped file share the file's bytes as
 * their bodies and own only their metadata. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "frame.h"

enum {
    /* A dictionary's string bytes must stay addressable by int32 offsets. */
    MAX_DICTIONARY_STRING_BYTES = INT32_MAX,
    BODY_ALIGN_BYTES = 64, /* what SIMD readers of the buffers like best */
    /* pandas' choice of codes width: int8 while categories < 127, int16 while < 32767 */
    PANDAS_INT8_CATEGORIES = 127,
    PANDAS_INT16_CATEGORIES = 32767
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

void frame_batch_clear(frame_batch *b)
{
    free(b->body);
    free(b->columns);
    memset(b, 0, sizeof *b);
}

void frame_dictionary_free(frame_batch *dictionary)
{
    if (!dictionary)
        return;
    frame_batch_clear(dictionary);
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
        frame_batch_clear(&f->batches[i]);
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

frame_type frame_category_index_type(uint64_t count)
{
    return count < PANDAS_INT8_CATEGORIES    ? FRAME_INT8
           : count < PANDAS_INT16_CATEGORIES ? FRAME_INT16
                                             : FRAME_INT32;
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

static uint64_t align_up(uint64_t n)
{
    return (n + FRAME_ALIGN - 1) & ~(uint64_t)(FRAME_ALIGN - 1);
}

/* One column's buffers before layout. */
static uint64_t place(frame_span *span, uint64_t at, uint64_t length)
{
    span->offset = length ? at : 0;
    span->length = length;
    return at + align_up(length);
}

/* Lay parts out into b (rows already set): one aligned allocation in IPC order. */
bool frame_batch_layout(frame_batch *b, const frame_column_parts *parts, size_t column_count)
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
        ok = put(&bytes, values[i], lengths[i]) && bytes.len <= MAX_DICTIONARY_STRING_BYTES;
        offsets[i + 1] = (int32_t)bytes.len;
    }
    frame_column_parts parts = {.offsets = offsets, .offsets_bytes = (count + 1) * sizeof *offsets,
                          .values = bytes.data, .values_bytes = bytes.len};
    if (ok) {
        d->rows = (int64_t)count;
        ok = frame_batch_layout(d, &parts, 1);
    }
    free(offsets);
    buf_free(&bytes);
    if (!ok) {
        frame_dictionary_free(d);
        return NULL;
    }
    return d;
}

uint64_t frame_memory_bytes(const frame *f)
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
    v->memory_bytes = frame_memory_bytes(v);
    for (size_t i = 0; i < v->batch_count; i++) /* the bodies are the mapping's: not ours */
        v->memory_bytes -= v->batches[i].body_bytes;
    return v;
}
