/* arrow_write.c -- a frame as an Arrow IPC stream or file, without copying its data.
 *
 * A frame's batch bodies are Arrow record batch bodies already (frame.h), so the encoding is
 * the metadata around them:
 *
 *   stream: Schema, DictionaryBatch per categorical field, RecordBatch per batch, EOS
 *   file:   "ARROW1\0\0", the stream, Footer, int32 footer length, "ARROW1"
 *
 * where every message is the continuation marker, the int32 length of its Message flatbuffer
 * padded to 8 bytes, that flatbuffer, then its body. A dictionary's id is its field's position;
 * a record batch's buffers are the frame's spans, which are offsets from the body's start.
 *
 * Every metadata byte is written into one growable buffer while a list of pieces records
 * what comes in order: a run of that buffer, or a body. Only when everything is written (and
 * the buffer will not move again) are the pieces turned into segments, so a segment never
 * points into memory that a later realloc freed. Body segments point into the frame, which
 * the encoding holds a reference to. The footer's blocks need each message's file offset,
 * which is the running total of the pieces before it.
 *
 * Large strings (arrow_encode_large): pandas 3 holds strings as Arrow large_string (int64
 * offsets), and pyarrow converts a string column to it with a copy of its offsets. So that a
 * reader of a shared-memory publication copies nothing, each record batch message's body is
 * then the frame's body as it is, followed by the batch's string and bytes offsets widened to
 * int64 (written here); the record batch's offsets buffers point at those, its validity and
 * values buffers into the frame's body. The frame's own int32 offsets stay in the body, unused
 * by Arrow readers, so the body is still byte for byte the frame's (what a publication's view
 * maps). Buffers of a body may come in any order: IPC readers locate each by its offset.
 *
 * Widths: a field whose source gave its strings as large_string (frame_field.large_strings)
 * is written as large_string (or large_binary) by either encoder, its offsets widened the same
 * way after the body; so is a categorical's dictionary of large_string categories. So an Arrow
 * reader gets what it reads of the source file. A large encoding (a publication) also names
 * each string and bytes column's own type in the field's custom metadata (WIDTH_METADATA_KEY:
 * "string", "large_string", "binary" or "large_binary"), so its reader can give a column
 * widened only for the encoding back its own width. */
#include <stdlib.h>
#include <string.h>

#include "arrow.h"
#include "flatbuf.h"
#include "ipc_format.h"

/* The custom metadata key pyarrow reads the pandas metadata from. */
#define PANDAS_METADATA_KEY "pandas"
/* The field metadata key of a column's own type in a large encoding. */
#define WIDTH_METADATA_KEY "aside:width"
#define BITS_PER_BYTE 8

/* One piece of output: a run of the metadata buffer (body NULL), or a body. */
typedef struct piece {
    const uint8_t *body;
    size_t         meta_offset;
    size_t         length;
} piece;

/* Where a message is in a file, for the footer. */
typedef struct block {
    int64_t offset;
    int32_t metadata_length; /* prefix and padding included */
    int64_t body_length;
} block;

typedef struct blocks {
    block *items;
    size_t count, cap;
} blocks;

typedef struct writer {
    frame     *f;
    bool       pandas;   /* write the pandas metadata */
    bool       large;    /* strings and bytes as large_string, large_binary (int64 offsets) */
    fb_builder fb;
    buf        meta;     /* every metadata byte */
    piece     *pieces;
    size_t     piece_count, piece_cap;
    uint64_t   position; /* bytes written so far, metadata and bodies */
    blocks     dictionaries, batches;
    bool       failed;   /* out of memory */
} writer;

/* ---- pieces --------------------------------------------------------------------------- */

static void add_piece(writer *w, const uint8_t *body, size_t meta_offset, size_t length)
{
    if (w->failed || length == 0)
        return;
    piece *last = w->piece_count ? &w->pieces[w->piece_count - 1] : NULL;
    if (!body && last && !last->body && last->meta_offset + last->length == meta_offset) {
        last->length += length; /* consecutive metadata: one segment */
        w->position += length;
        return;
    }
    if (w->piece_count == w->piece_cap) {
        size_t cap = w->piece_cap ? 2 * w->piece_cap : 16;
        piece *p = realloc(w->pieces, cap * sizeof *p);
        if (!p) {
            w->failed = true;
            return;
        }
        w->pieces = p;
        w->piece_cap = cap;
    }
    w->pieces[w->piece_count++] = (piece){body, meta_offset, length};
    w->position += length;
}

/* Append metadata bytes to the output. */
static void put_meta(writer *w, const void *data, size_t length)
{
    size_t at = w->meta.len;
    buf_append(&w->meta, data, length);
    if (w->meta.failed)
        w->failed = true;
    add_piece(w, NULL, at, length);
}

static void put_i32(writer *w, int32_t v)
{
    uint8_t bytes[sizeof v];
    fb_store_i32(bytes, v);
    put_meta(w, bytes, sizeof bytes);
}

static void add_block(writer *w, blocks *list, block b)
{
    if (w->failed)
        return;
    if (list->count == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 16;
        block *items = realloc(list->items, cap * sizeof *items);
        if (!items) {
            w->failed = true;
            return;
        }
        list->items = items;
        list->cap = cap;
    }
    list->items[list->count++] = b;
}

/* ---- the schema ------------------------------------------------------------------------ */

static bool has_offsets(frame_type type) { return type == FRAME_UTF8 || type == FRAME_BINARY; }

/* True when field's values (a categorical's: its categories) are written with int64 offsets. */
static bool widened(const writer *w, const frame_field *field)
{
    if (field->type == FRAME_CATEGORY)
        return field->large_strings;
    return has_offsets(field->type) && (w->large || field->large_strings);
}

/* The Arrow name of field's own type (strings and bytes only). */
static const char *own_width(const frame_field *field)
{
    if (field->type == FRAME_BINARY)
        return field->large_strings ? "large_binary" : "binary";
    return field->large_strings ? "large_string" : "string";
}

static fb_ref int_type(fb_builder *fb, int bit_width, bool is_signed)
{
    fb_table_start(fb);
    fb_add_i32(fb, INT_BIT_WIDTH, bit_width);
    fb_add_u8(fb, INT_IS_SIGNED, is_signed);
    return fb_table_end(fb);
}

static fb_ref empty_table(fb_builder *fb)
{
    fb_table_start(fb);
    return fb_table_end(fb);
}

static fb_ref timestamp_type(fb_builder *fb, const frame_field *field)
{
    static const int16_t units[] = {
        [FRAME_SECOND] = TIME_UNIT_SECOND, [FRAME_MILLI] = TIME_UNIT_MILLISECOND,
        [FRAME_MICRO] = TIME_UNIT_MICROSECOND, [FRAME_NANO] = TIME_UNIT_NANOSECOND};
    if ((size_t)field->unit >= sizeof units / sizeof *units) {
        fb->failed = true;
        return 0;
    }
    fb_ref tz = field->timezone ? fb_create_string(fb, field->timezone, strlen(field->timezone))
                                : 0;
    fb_table_start(fb);
    fb_add_i16(fb, TIMESTAMP_UNIT, units[field->unit]);
    if (tz)
        fb_add_ref(fb, TIMESTAMP_TIMEZONE, tz);
    return fb_table_end(fb);
}

/* The Arrow type table of field (a categorical's: of its categories), with int64 offsets when
 * large; *type_id its union tag. */
static fb_ref field_type(fb_builder *fb, const frame_field *field, bool large,
                         uint8_t *type_id)
{
    switch (field->type) {
    case FRAME_INT8: case FRAME_INT16: case FRAME_INT32: case FRAME_INT64:
        *type_id = TYPE_INT;
        return int_type(fb, (int)frame_type_width(field->type) * BITS_PER_BYTE, true);
    case FRAME_UINT8: case FRAME_UINT16: case FRAME_UINT32: case FRAME_UINT64:
        *type_id = TYPE_INT;
        return int_type(fb, (int)frame_type_width(field->type) * BITS_PER_BYTE, false);
    case FRAME_FLOAT32: case FRAME_FLOAT64:
        *type_id = TYPE_FLOATING_POINT;
        fb_table_start(fb);
        fb_add_i16(fb, FLOATING_POINT_PRECISION,
                   field->type == FRAME_FLOAT32 ? PRECISION_SINGLE : PRECISION_DOUBLE);
        return fb_table_end(fb);
    case FRAME_DATE32:
        *type_id = TYPE_DATE;
        fb_table_start(fb);
        fb_add_i16(fb, DATE_UNIT, DATE_UNIT_DAY);
        return fb_table_end(fb);
    case FRAME_TIMESTAMP:
        *type_id = TYPE_TIMESTAMP;
        return timestamp_type(fb, field);
    case FRAME_DECIMAL:
        *type_id = TYPE_DECIMAL;
        fb_table_start(fb);
        fb_add_i32(fb, DECIMAL_PRECISION, field->precision);
        fb_add_i32(fb, DECIMAL_SCALE, field->scale);
        fb_add_i32(fb, DECIMAL_BIT_WIDTH, IPC_DECIMAL_BIT_WIDTH);
        return fb_table_end(fb);
    case FRAME_BOOL:
        *type_id = TYPE_BOOL;
        return empty_table(fb);
    case FRAME_BINARY:
        *type_id = large ? TYPE_LARGE_BINARY : TYPE_BINARY;
        return empty_table(fb);
    case FRAME_UTF8:
        *type_id = large ? TYPE_LARGE_UTF8 : TYPE_UTF8;
        return empty_table(fb);
    case FRAME_CATEGORY: /* the categories: a dictionary batch of strings */
        *type_id = large ? TYPE_LARGE_UTF8 : TYPE_UTF8;
        return empty_table(fb);
    }
    *type_id = TYPE_NONE;
    fb->failed = true;
    return 0;
}

static fb_ref dictionary_encoding(fb_builder *fb, const frame_field *field, size_t position)
{
    fb_ref index = int_type(fb, (int)frame_type_width(field->index_type) * BITS_PER_BYTE, true);
    fb_table_start(fb);
    fb_add_i64(fb, DICT_ENCODING_ID, (int64_t)position);
    fb_add_ref(fb, DICT_ENCODING_INDEX_TYPE, index);
    fb_add_u8(fb, DICT_ENCODING_IS_ORDERED, field->ordered);
    return fb_table_end(fb);
}

/* A custom metadata vector of one pair. */
static fb_ref one_pair(fb_builder *fb, const char *key, const char *value)
{
    fb_ref k = fb_create_string(fb, key, strlen(key));
    fb_ref v = fb_create_string(fb, value, strlen(value));
    fb_table_start(fb);
    fb_add_ref(fb, KEY_VALUE_KEY, k);
    fb_add_ref(fb, KEY_VALUE_VALUE, v);
    fb_ref pair = fb_table_end(fb);
    return fb_create_ref_vector(fb, &pair, 1);
}

static fb_ref schema_field(writer *w, const frame_field *field, size_t position)
{
    fb_builder *fb = &w->fb;
    uint8_t type_id;
    fb_ref name = fb_create_string(fb, field->name, strlen(field->name));
    fb_ref type = field_type(fb, field, widened(w, field), &type_id);
    fb_ref width = w->large && has_offsets(field->type)
                       ? one_pair(fb, WIDTH_METADATA_KEY, own_width(field))
                       : 0;
    fb_ref dictionary = field->type == FRAME_CATEGORY ? dictionary_encoding(fb, field, position)
                                                      : 0;
    fb_ref children = fb_create_ref_vector(fb, NULL, 0); /* readers insist on the vector */
    fb_table_start(fb);
    fb_add_ref(fb, FIELD_NAME, name);
    fb_add_u8(fb, FIELD_NULLABLE, true);
    fb_add_u8(fb, FIELD_TYPE_TYPE, type_id);
    fb_add_ref(fb, FIELD_TYPE, type);
    if (dictionary)
        fb_add_ref(fb, FIELD_DICTIONARY, dictionary);
    fb_add_ref(fb, FIELD_CHILDREN, children);
    if (width)
        fb_add_ref(fb, FIELD_CUSTOM_METADATA, width);
    return fb_table_end(fb);
}

/* The custom metadata vector holding the pandas metadata, or 0 when there is none to write. */
static fb_ref pandas_metadata(fb_builder *fb, const writer *w)
{
    const char *json = w->f->pandas_metadata;
    if (!w->pandas || !json)
        return 0;
    return one_pair(fb, PANDAS_METADATA_KEY, json);
}

static fb_ref schema_table(writer *w)
{
    fb_builder *fb = &w->fb;
    const frame *f = w->f;
    fb_ref *fields = calloc(f->field_count ? f->field_count : 1, sizeof *fields);
    if (!fields) {
        fb->failed = true;
        return 0;
    }
    for (size_t i = 0; i < f->field_count; i++)
        fields[i] = schema_field(w, &f->fields[i], i);
    fb_ref field_vector = fb_create_ref_vector(fb, fields, f->field_count);
    free(fields);
    fb_ref metadata = pandas_metadata(fb, w);
    fb_table_start(fb);
    fb_add_i16(fb, SCHEMA_ENDIANNESS, ENDIANNESS_LITTLE);
    fb_add_ref(fb, SCHEMA_FIELDS, field_vector);
    if (metadata)
        fb_add_ref(fb, SCHEMA_CUSTOM_METADATA, metadata);
    return fb_table_end(fb);
}

/* ---- record batches ------------------------------------------------------------------- */

/* The buffers of a column in IPC order: validity, offsets (strings only), values. */
static size_t column_buffers(frame_type type, const frame_column *c, frame_span out[3])
{
    size_t n = 0;
    out[n++] = c->null_count ? c->validity : (frame_span){c->validity.offset, 0};
    if (type == FRAME_UTF8 || type == FRAME_BINARY)
        out[n++] = c->offsets;
    out[n++] = c->values;
    return n;
}

/* The RecordBatch table of rows rows of columns (of the given types). */
static fb_ref record_batch_table(fb_builder *fb, int64_t rows, const frame_column *columns,
                                 const frame_type *types, size_t count)
{
    enum { MAX_BUFFERS_PER_COLUMN = 3 };
    uint8_t *nodes = malloc(count * FIELD_NODE_BYTES + 1);
    uint8_t *buffers = malloc(count * MAX_BUFFERS_PER_COLUMN * BUFFER_BYTES + 1);
    fb_ref table = 0;
    if (!nodes || !buffers) {
        fb->failed = true;
        goto done;
    }
    size_t buffer_count = 0;
    for (size_t i = 0; i < count; i++) {
        fb_store_i64(nodes + i * FIELD_NODE_BYTES + FIELD_NODE_LENGTH, rows);
        fb_store_i64(nodes + i * FIELD_NODE_BYTES + FIELD_NODE_NULL_COUNT,
                     columns[i].null_count);
        frame_span spans[MAX_BUFFERS_PER_COLUMN];
        size_t n = column_buffers(types[i], &columns[i], spans);
        for (size_t j = 0; j < n; j++, buffer_count++) {
            uint8_t *at = buffers + buffer_count * BUFFER_BYTES;
            fb_store_i64(at + BUFFER_OFFSET, (int64_t)spans[j].offset);
            fb_store_i64(at + BUFFER_LENGTH, (int64_t)spans[j].length);
        }
    }
    fb_ref node_vector = fb_create_vector(fb, nodes, count, FIELD_NODE_BYTES, IPC_STRUCT_ALIGN);
    fb_ref buffer_vector = fb_create_vector(fb, buffers, buffer_count, BUFFER_BYTES,
                                            IPC_STRUCT_ALIGN);
    fb_table_start(fb);
    fb_add_i64(fb, RECORD_BATCH_LENGTH, rows);
    fb_add_ref(fb, RECORD_BATCH_NODES, node_vector);
    fb_add_ref(fb, RECORD_BATCH_BUFFERS, buffer_vector);
    table = fb_table_end(fb);
done:
    free(nodes);
    free(buffers);
    return table;
}

/* Column's offsets in batch widened to int64: rows + 1 of them into out. */
static void widen_column(const frame_batch *batch, size_t column, int64_t *out)
{
    const int32_t *narrow = frame_offsets(batch, column);
    bool empty = batch->columns[column].offsets.length == 0; /* no rows: the one offset 0 */
    for (int64_t r = 0; r <= batch->rows; r++)
        out[r] = empty ? 0 : narrow[r];
}

/* The offsets of batch's widened string and bytes columns as int64, one run of rows + 1 per
 * such column in field order, to follow the body (*bytes long: 0, and NULL returned, when the
 * batch has none). NULL with *bytes set when out of memory. */
static int64_t *wide_offsets(const writer *w, const frame_batch *batch, uint64_t *bytes)
{
    const frame *f = w->f;
    size_t runs = 0;
    for (size_t i = 0; i < f->field_count; i++)
        runs += has_offsets(f->fields[i].type) && widened(w, &f->fields[i]);
    *bytes = (uint64_t)runs * (uint64_t)(batch->rows + 1) * sizeof(int64_t);
    int64_t *wide = runs ? malloc(*bytes) : NULL;
    for (size_t i = 0, run = 0; wide && i < f->field_count; i++) {
        if (has_offsets(f->fields[i].type) && widened(w, &f->fields[i]))
            widen_column(batch, i, wide + run++ * (size_t)(batch->rows + 1));
    }
    return wide;
}

/* The RecordBatch table of batch; its widened string and bytes columns' offsets are the int64
 * runs wide_offsets lays out after the body (body_bytes on), their values and validity the
 * body's own. */
static fb_ref batch_table(writer *w, const frame_batch *batch)
{
    const frame *f = w->f;
    size_t n = f->field_count ? f->field_count : 1;
    frame_type *types = malloc(n * sizeof *types);
    frame_column *columns = malloc(n * sizeof *columns);
    fb_ref table = 0;
    if (!types || !columns) {
        w->fb.failed = true;
        goto done;
    }
    uint64_t tail_at = batch->body_bytes, run_bytes = (uint64_t)(batch->rows + 1) * sizeof(int64_t);
    for (size_t i = 0; i < f->field_count; i++) {
        types[i] = f->fields[i].type;
        columns[i] = batch->columns[i];
        if (has_offsets(types[i]) && widened(w, &f->fields[i])) {
            columns[i].offsets = (frame_span){tail_at, run_bytes};
            tail_at += run_bytes;
        }
    }
    table = record_batch_table(&w->fb, batch->rows, columns, types, f->field_count);
done:
    free(types);
    free(columns);
    return table;
}

/* The DictionaryBatch table of dictionary; wide: its offsets are the int64 run that follows
 * its body. */
static fb_ref dictionary_batch_table(writer *w, const frame_batch *dictionary, size_t id,
                                     bool wide)
{
    const frame_type utf8 = FRAME_UTF8;
    frame_column column = dictionary->columns[0];
    if (wide)
        column.offsets = (frame_span){dictionary->body_bytes,
                                      (uint64_t)(dictionary->rows + 1) * sizeof(int64_t)};
    fb_ref data = record_batch_table(&w->fb, dictionary->rows, &column, &utf8, 1);
    fb_table_start(&w->fb);
    fb_add_i64(&w->fb, DICT_BATCH_ID, (int64_t)id);
    fb_add_ref(&w->fb, DICT_BATCH_DATA, data);
    fb_add_u8(&w->fb, DICT_BATCH_IS_DELTA, false);
    return fb_table_end(&w->fb);
}

/* ---- messages ------------------------------------------------------------------------- */

/* Finish the Message around header (built in w->fb) and write it with its body: body_bytes
 * at body, then tail_bytes copied from tail (written by us, after the frame's own bytes); its
 * block goes to list when list is not NULL. */
static void put_message(writer *w, uint8_t header_type, fb_ref header, const uint8_t *body,
                        uint64_t body_bytes, const void *tail, uint64_t tail_bytes,
                        blocks *list)
{
    fb_builder *fb = &w->fb;
    fb_table_start(fb);
    fb_add_i16(fb, MESSAGE_VERSION, METADATA_V5);
    fb_add_u8(fb, MESSAGE_HEADER_TYPE, header_type);
    fb_add_ref(fb, MESSAGE_HEADER, header);
    fb_add_i64(fb, MESSAGE_BODY_LENGTH, (int64_t)(body_bytes + tail_bytes));
    fb_ref message = fb_table_end(fb);
    const uint8_t *bytes;
    size_t size;
    if (!fb_finish(fb, message, &bytes, &size)) {
        w->failed = true;
        return;
    }
    static const uint8_t zeros[IPC_ALIGN];
    size_t padded = (size + IPC_ALIGN - 1) / IPC_ALIGN * IPC_ALIGN;
    int64_t offset = (int64_t)w->position;
    put_i32(w, (int32_t)IPC_CONTINUATION);
    put_i32(w, (int32_t)padded);
    put_meta(w, bytes, size);
    put_meta(w, zeros, padded - size);
    add_piece(w, body, 0, body_bytes);
    if (tail_bytes)
        put_meta(w, tail, tail_bytes);
    if (list)
        add_block(w, list, (block){offset, (int32_t)(IPC_PREFIX_BYTES + padded),
                                   (int64_t)(body_bytes + tail_bytes)});
    fb_builder_reset(fb);
}

static void put_schema(writer *w)
{
    fb_ref schema = schema_table(w);
    put_message(w, HEADER_SCHEMA, schema, NULL, 0, NULL, 0, NULL);
}

static aside_status put_dictionaries(writer *w, aside_error *err)
{
    for (size_t i = 0; i < w->f->field_count; i++) {
        const frame_field *field = &w->f->fields[i];
        if (field->type != FRAME_CATEGORY)
            continue;
        if (!field->dictionary)
            return error_set(err, ASIDE_ERR_INTERNAL, "column \"%s\": categorical without "
                             "categories", field->name);
        const frame_batch *dictionary = field->dictionary;
        bool wide = widened(w, field);
        uint64_t tail_bytes = wide ? (uint64_t)(dictionary->rows + 1) * sizeof(int64_t) : 0;
        int64_t *tail = wide ? malloc(tail_bytes) : NULL;
        if (wide && !tail) {
            w->failed = true;
            break;
        }
        if (tail)
            widen_column(dictionary, 0, tail);
        fb_ref header = dictionary_batch_table(w, dictionary, i, wide);
        put_message(w, HEADER_DICTIONARY_BATCH, header, dictionary->body,
                    dictionary->body_bytes, tail, tail_bytes, &w->dictionaries);
        free(tail);
    }
    return ASIDE_OK;
}

static void put_batches(writer *w)
{
    for (size_t i = 0; i < w->f->batch_count && !w->failed; i++) {
        const frame_batch *batch = &w->f->batches[i];
        uint64_t tail_bytes = 0;
        int64_t *tail = wide_offsets(w, batch, &tail_bytes);
        if (tail_bytes && !tail) {
            w->failed = true;
            break;
        }
        fb_ref header = batch_table(w, batch);
        put_message(w, HEADER_RECORD_BATCH, header, batch->body, batch->body_bytes, tail,
                    tail_bytes, &w->batches);
        free(tail);
    }
}

static void put_end_of_stream(writer *w)
{
    put_i32(w, (int32_t)IPC_CONTINUATION);
    put_i32(w, 0);
}

/* ---- the file format ------------------------------------------------------------------ */

static fb_ref block_vector(writer *w, const blocks *list)
{
    uint8_t *bytes = calloc(list->count ? list->count : 1, BLOCK_BYTES);
    if (!bytes) {
        w->fb.failed = true;
        return 0;
    }
    for (size_t i = 0; i < list->count; i++) {
        uint8_t *at = bytes + i * BLOCK_BYTES;
        fb_store_i64(at + BLOCK_OFFSET, list->items[i].offset);
        fb_store_i32(at + BLOCK_METADATA_LENGTH, list->items[i].metadata_length);
        fb_store_i64(at + BLOCK_BODY_LENGTH, list->items[i].body_length);
    }
    fb_ref v = fb_create_vector(&w->fb, bytes, list->count, BLOCK_BYTES, IPC_STRUCT_ALIGN);
    free(bytes);
    return v;
}

static void put_footer(writer *w)
{
    fb_builder *fb = &w->fb;
    fb_ref schema = schema_table(w);
    fb_ref dictionaries = block_vector(w, &w->dictionaries);
    fb_ref batches = block_vector(w, &w->batches);
    fb_table_start(fb);
    fb_add_i16(fb, FOOTER_VERSION, METADATA_V5);
    fb_add_ref(fb, FOOTER_SCHEMA, schema);
    fb_add_ref(fb, FOOTER_DICTIONARIES, dictionaries);
    fb_add_ref(fb, FOOTER_RECORD_BATCHES, batches);
    fb_ref footer = fb_table_end(fb);
    const uint8_t *bytes;
    size_t size;
    if (!fb_finish(fb, footer, &bytes, &size)) {
        w->failed = true;
        return;
    }
    put_meta(w, bytes, size);
    put_i32(w, (int32_t)size);
    put_meta(w, IPC_MAGIC, IPC_MAGIC_BYTES);
}

static void put_file_magic(writer *w)
{
    static const uint8_t magic[IPC_MAGIC_PADDED] = IPC_MAGIC;
    put_meta(w, magic, sizeof magic);
}

/* ---- the encoding --------------------------------------------------------------------- */

/* Turn the pieces into segments, now that the metadata buffer is final. */
static bool make_segments(writer *w, arrow_encoding *out)
{
    out->segments = malloc((w->piece_count ? w->piece_count : 1) * sizeof *out->segments);
    if (!out->segments)
        return false;
    out->metadata = (uint8_t *)buf_take(&w->meta);
    if (!out->metadata) {
        free(out->segments);
        out->segments = NULL;
        return false;
    }
    for (size_t i = 0; i < w->piece_count; i++) {
        const piece *p = &w->pieces[i];
        out->segments[i].data = p->body ? p->body : out->metadata + p->meta_offset;
        out->segments[i].length = p->length;
    }
    out->count = w->piece_count;
    out->total_bytes = w->position;
    out->frame = frame_retain(w->f);
    return true;
}

static void writer_free(writer *w)
{
    fb_builder_free(&w->fb);
    buf_free(&w->meta);
    free(w->pieces);
    free(w->dictionaries.items);
    free(w->batches.items);
}

static aside_status encode(frame *f, arrow_format format, bool pandas_metadata, bool large,
                           arrow_encoding *out, aside_error *err)
{
    memset(out, 0, sizeof *out);
    writer w = {.f = f, .pandas = pandas_metadata, .large = large};
    fb_builder_init(&w.fb);
    buf_init(&w.meta);
    aside_status status = ASIDE_OK;
    if (format == ARROW_FILE)
        put_file_magic(&w);
    put_schema(&w);
    if ((status = put_dictionaries(&w, err)) != ASIDE_OK)
        goto done;
    put_batches(&w);
    put_end_of_stream(&w);
    if (format == ARROW_FILE)
        put_footer(&w);
    if (w.failed || !make_segments(&w, out))
        status = error_set(err, ASIDE_ERR_NOMEM, "out of memory encoding an Arrow %s",
                           format == ARROW_FILE ? "file" : "stream");
done:
    writer_free(&w);
    return status;
}

aside_status arrow_encode(frame *f, arrow_format format, bool pandas_metadata,
                          arrow_encoding *out, aside_error *err)
{
    return encode(f, format, pandas_metadata, false, out, err);
}

aside_status arrow_encode_large(frame *f, arrow_format format, bool pandas_metadata,
                                arrow_encoding *out, aside_error *err)
{
    return encode(f, format, pandas_metadata, true, out, err);
}

void arrow_encoding_free(arrow_encoding *enc)
{
    if (!enc)
        return;
    free(enc->segments);
    free(enc->metadata);
    frame_release(enc->frame);
    memset(enc, 0, sizeof *enc);
}
