/* arrow_read.c -- an Arrow IPC file or stream in memory, as a frame.
 *
 * A stream is a sequence of messages: the Schema, then DictionaryBatches and RecordBatches,
 * then the end-of-stream marker (or simply the end of the data). A file is "ARROW1\0\0", a
 * stream, and a Footer naming the schema and where each dictionary and record batch message
 * is; the file is read through its footer. Both come down to the same steps:
 *
 *   1. the schema becomes frame fields (Arrow types frames do not hold are refused by name);
 *   2. each dictionary batch becomes the categories of the fields that use its id; the codes
 *      width is then chosen as pandas chooses it (frame_category_index_type);
 *   3. each record batch's buffers are found in its body, checked, decompressed when the
 *      batch is compressed (LZ4 frame or ZSTD, per buffer, each prefixed by its uncompressed
 *      length) and handed to a frame_builder, which copies them into the frame's layout.
 *
 * Nothing in the input is trusted: every message, buffer and offset is checked to lie inside
 * the data before it is read, string offsets must rise and stay inside their values, codes
 * must name a category, and a buffer's claimed uncompressed size may not exceed what its codec
 * could produce from its compressed bytes. Buffers at addresses not aligned for their values
 * (possible when data itself is not aligned) are copied first, so that the builder's typed
 * reads are aligned. Dictionary replacement and delta dictionaries (streams whose categories
 * change between batches) are refused: a frame's categories are fixed.
 *
 * The "pandas" schema metadata is kept on the frame, and two things are taken from it, read by
 * the parser every file reader shares (frame/pandas_meta.h): a RangeIndex (start, step, name)
 * and the pandas extension dtypes ("Int64", "boolean") the columns had. */
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "arrow.h"
#include "flatbuf.h"
#include "frame/pandas_meta.h"
#include "ipc_format.h"

#define PANDAS_METADATA_KEY "pandas"
#define BITS_PER_BYTE 8
/* No claimed uncompressed length may exceed the compressed length times this: LZ4 spends at
 * least one byte per 255 bytes of a match; ZSTD's best case is an RLE block, 3 bytes of
 * header and 1 of content for a block of at most 128 KiB. */
#define LZ4_MAX_EXPANSION  256
#define ZSTD_MAX_EXPANSION 32768
/* No codec: the batch is not compressed. */
#define NO_CODEC (-1)

/* What a field needs beyond frame_field to read its buffers. */
typedef struct field_info {
    int64_t dictionary_id; /* -1: not dictionary-encoded */
    bool    large_offsets; /* LargeUtf8/LargeBinary, or a dictionary of LargeUtf8 */
    int     index_bits;    /* dictionary indices as stored */
    bool    index_signed;
} field_info;

typedef struct schema_info {
    frame_field *fields;
    field_info  *info;
    size_t       count;
    char        *pandas; /* the "pandas" custom metadata, or NULL */
} schema_info;

/* An encapsulated message: its metadata read through reader, its body located. */
typedef struct message {
    fb_reader      reader;
    uint8_t        header_type; /* HEADER_NONE: the end-of-stream marker */
    fb_table       header;
    const uint8_t *body;
    uint64_t       body_bytes;
    size_t         end; /* just past the body, in the data */
} message;

/* The state of reading one record batch's body. */
typedef struct body_reader {
    const message *m;
    int64_t        length; /* rows */
    fb_vector      nodes, buffers;
    size_t         next_node, next_buffer;
    int            codec;
    void         **temps; /* decompressed or realigned buffers, freed after the batch */
    size_t         temp_count, temp_cap;
} body_reader;

typedef struct decoder {
    const uint8_t *data;
    size_t         size;
    schema_info    schema;
    frame_builder *builder; /* created at the first record batch */
    frame_index    index;
    bool           has_index;
} decoder;

/* Zero-length buffers read as this (aligned, and a zero offset for empty string columns). */
static const int64_t empty_buffer[1];

static aside_status malformed(aside_error *err, const char *what)
{
    return error_set(err, ASIDE_ERR_BAD_VALUE, "malformed Arrow data: %s", what);
}

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t load_i64(const uint8_t *p)
{
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof v; i++)
        v |= (uint64_t)p[i] << (BITS_PER_BYTE * i);
    return (int64_t)v;
}

static char *copy_bytes(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

/* ---- types ---------------------------------------------------------------------------- */

/* pyarrow's names of Arrow types, for messages. */
static const char *const type_names[] = {
    [TYPE_NONE] = "none", [TYPE_NULL] = "null", [TYPE_INT] = "int",
    [TYPE_FLOATING_POINT] = "float", [TYPE_BINARY] = "binary", [TYPE_UTF8] = "string",
    [TYPE_BOOL] = "bool", [TYPE_DECIMAL] = "decimal", [TYPE_DATE] = "date",
    [TYPE_TIME] = "time", [TYPE_TIMESTAMP] = "timestamp", [TYPE_INTERVAL] = "interval",
    [TYPE_LIST] = "list", [TYPE_STRUCT] = "struct", [TYPE_UNION] = "union",
    [TYPE_FIXED_SIZE_BINARY] = "fixed_size_binary", [TYPE_FIXED_SIZE_LIST] = "fixed_size_list",
    [TYPE_MAP] = "map", [TYPE_DURATION] = "duration", [TYPE_LARGE_BINARY] = "large_binary",
    [TYPE_LARGE_UTF8] = "large_string", [TYPE_LARGE_LIST] = "large_list",
    [TYPE_RUN_END_ENCODED] = "run_end_encoded", [TYPE_BINARY_VIEW] = "binary_view",
    [TYPE_UTF8_VIEW] = "string_view", [TYPE_LIST_VIEW] = "list_view",
    [TYPE_LARGE_LIST_VIEW] = "large_list_view"};

static aside_status unsupported(const char *column, const char *type, aside_error *err)
{
    return error_set(err, ASIDE_ERR_BAD_VALUE, "column \"%s\": Arrow type %s is not supported",
                     column, type);
}

static aside_status unsupported_id(const char *column, uint8_t type_id, aside_error *err)
{
    if (type_id < sizeof type_names / sizeof *type_names)
        return unsupported(column, type_names[type_id], err);
    char name[32];
    snprintf(name, sizeof name, "with union tag %u", type_id);
    return unsupported(column, name, err);
}

static aside_status int_type(const fb_table *t, frame_field *f, aside_error *err)
{
    static const frame_type signed_types[] = {FRAME_INT8, FRAME_INT16, FRAME_INT32, FRAME_INT64};
    static const frame_type unsigned_types[] = {FRAME_UINT8, FRAME_UINT16, FRAME_UINT32,
                                                FRAME_UINT64};
    int32_t bits = fb_i32(t, INT_BIT_WIDTH, 0);
    bool is_signed = fb_bool(t, INT_IS_SIGNED, false);
    for (size_t i = 0; i < sizeof signed_types / sizeof *signed_types; i++) {
        if ((size_t)bits == frame_type_width(signed_types[i]) * BITS_PER_BYTE) {
            f->type = is_signed ? signed_types[i] : unsigned_types[i];
            return ASIDE_OK;
        }
    }
    char name[32];
    snprintf(name, sizeof name, "%sint%d", is_signed ? "" : "u", (int)bits);
    return unsupported(f->name, name, err);
}

static aside_status float_type(const fb_table *t, frame_field *f, aside_error *err)
{
    switch (fb_i16(t, FLOATING_POINT_PRECISION, PRECISION_HALF)) {
    case PRECISION_SINGLE: f->type = FRAME_FLOAT32; return ASIDE_OK;
    case PRECISION_DOUBLE: f->type = FRAME_FLOAT64; return ASIDE_OK;
    default: return unsupported(f->name, "halffloat", err);
    }
}

static aside_status timestamp_type(const fb_table *t, frame_field *f, aside_error *err)
{
    static const frame_unit units[] = {
        [TIME_UNIT_SECOND] = FRAME_SECOND, [TIME_UNIT_MILLISECOND] = FRAME_MILLI,
        [TIME_UNIT_MICROSECOND] = FRAME_MICRO, [TIME_UNIT_NANOSECOND] = FRAME_NANO};
    int16_t unit = fb_i16(t, TIMESTAMP_UNIT, TIME_UNIT_SECOND);
    if (unit < 0 || (size_t)unit >= sizeof units / sizeof *units)
        return malformed(err, "timestamp unit");
    f->type = FRAME_TIMESTAMP;
    f->unit = units[unit];
    size_t len;
    const char *tz = fb_string(t, TIMESTAMP_TIMEZONE, &len);
    if (tz && len > 0 && !(f->timezone = copy_bytes(tz, len)))
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    return ASIDE_OK;
}

static aside_status decimal_type(const fb_table *t, frame_field *f, aside_error *err)
{
    enum { MAX_DECIMAL128_PRECISION = 38 };
    int32_t bits = fb_i32(t, DECIMAL_BIT_WIDTH, IPC_DECIMAL_BIT_WIDTH);
    f->precision = fb_i32(t, DECIMAL_PRECISION, 0);
    f->scale = fb_i32(t, DECIMAL_SCALE, 0);
    char name[48];
    if (bits != IPC_DECIMAL_BIT_WIDTH) {
        snprintf(name, sizeof name, "decimal%d", (int)bits);
        return unsupported(f->name, name, err);
    }
    if (f->precision < 1 || f->precision > MAX_DECIMAL128_PRECISION || f->scale < 0 ||
        f->scale > f->precision) {
        snprintf(name, sizeof name, "decimal128(%d, %d)", f->precision, f->scale);
        return unsupported(f->name, name, err);
    }
    f->type = FRAME_DECIMAL;
    return ASIDE_OK;
}

/* The value type of a field (for a dictionary-encoded field, of its dictionary). */
static aside_status value_type(const fb_table *field_table, frame_field *f, field_info *info,
                               aside_error *err)
{
    uint8_t type_id = fb_u8(field_table, FIELD_TYPE_TYPE, TYPE_NONE);
    fb_table t = fb_table_field(field_table, FIELD_TYPE);
    switch (type_id) {
    case TYPE_INT: return int_type(&t, f, err);
    case TYPE_FLOATING_POINT: return float_type(&t, f, err);
    case TYPE_BOOL: f->type = FRAME_BOOL; return ASIDE_OK;
    case TYPE_UTF8: f->type = FRAME_UTF8; return ASIDE_OK;
    case TYPE_BINARY: f->type = FRAME_BINARY; return ASIDE_OK;
    case TYPE_LARGE_UTF8:
        f->type = FRAME_UTF8;
        info->large_offsets = f->large_strings = true;
        return ASIDE_OK;
    case TYPE_LARGE_BINARY:
        f->type = FRAME_BINARY;
        info->large_offsets = f->large_strings = true;
        return ASIDE_OK;
    case TYPE_DATE:
        if (fb_i16(&t, DATE_UNIT, DATE_UNIT_MILLISECOND) != DATE_UNIT_DAY)
            return unsupported(f->name, "date64", err);
        f->type = FRAME_DATE32;
        return ASIDE_OK;
    case TYPE_TIMESTAMP: return timestamp_type(&t, f, err);
    case TYPE_DECIMAL: return decimal_type(&t, f, err);
    default: return unsupported_id(f->name, type_id, err);
    }
}

/* True for the bit widths of Arrow's integer types. */
static bool is_int_width(int32_t bits)
{
    return bits == 8 || bits == 16 || bits == 32 || bits == 64;
}

/* A dictionary-encoded field: categories of strings, codes of any integer type. */
static aside_status dictionary_type(const fb_table *encoding, frame_field *f, field_info *info,
                                    aside_error *err)
{
    enum { DEFAULT_INDEX_BITS = 32, INT16_BITS = 16 };
    if (f->type != FRAME_UTF8) {
        char name[64];
        snprintf(name, sizeof name, "dictionary<values=%s>",
                 f->type == FRAME_BINARY ? "binary" : "non-string");
        return unsupported(f->name, name, err);
    }
    info->dictionary_id = fb_i64(encoding, DICT_ENCODING_ID, 0);
    info->index_bits = DEFAULT_INDEX_BITS; /* the spec's default when indexType is absent */
    info->index_signed = true;
    fb_table index = fb_table_field(encoding, DICT_ENCODING_INDEX_TYPE);
    if (fb_present(&index)) {
        info->index_bits = fb_i32(&index, INT_BIT_WIDTH, 0);
        info->index_signed = fb_bool(&index, INT_IS_SIGNED, false);
    }
    if (!is_int_width(info->index_bits))
        return unsupported(f->name, "dictionary with this index type", err);
    f->type = FRAME_CATEGORY;
    f->ordered = fb_bool(encoding, DICT_ENCODING_IS_ORDERED, false);
    /* Provisional: chosen again from the number of categories once they are known. */
    f->index_type = info->index_bits <= BITS_PER_BYTE ? FRAME_INT8
                    : info->index_bits <= INT16_BITS  ? FRAME_INT16
                                                      : FRAME_INT32;
    return ASIDE_OK;
}

static aside_status read_field(const fb_table *t, frame_field *f, field_info *info,
                               aside_error *err)
{
    size_t len;
    const char *name = fb_string(t, FIELD_NAME, &len);
    if (!(f->name = copy_bytes(name ? name : "", name ? len : 0)))
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (info) {
        memset(info, 0, sizeof *info);
        info->dictionary_id = -1;
    }
    field_info scratch = {.dictionary_id = -1};
    aside_status st = value_type(t, f, info ? info : &scratch, err);
    if (st != ASIDE_OK)
        return st;
    fb_table encoding = fb_table_field(t, FIELD_DICTIONARY);
    if (fb_present(&encoding))
        return dictionary_type(&encoding, f, info ? info : &scratch, err);
    return ASIDE_OK;
}

/* ---- pandas metadata ------------------------------------------------------------------ */

/* Take what frames keep from the pandas metadata (pandas_meta.h): extension dtypes onto the
 * fields, and, when index is given, the RangeIndex. */
static aside_status apply_pandas_metadata(const char *json, frame_field *fields, size_t count,
                                          frame_index *index, bool *has_index, aside_error *err)
{
    pandas_meta meta;
    aside_status st = pandas_meta_parse(json, &meta, err);
    if (st == ASIDE_OK)
        st = pandas_meta_apply_dtypes(&meta, fields, count, err);
    if (st == ASIDE_OK && index && meta.has_range_index) {
        *index = meta.range_index;
        meta.range_index.name = NULL; /* now the index's */
        *has_index = true;
    }
    pandas_meta_free(&meta);
    return st;
}

/* ---- the schema ----------------------------------------------------------------------- */

static void schema_info_free(schema_info *s)
{
    for (size_t i = 0; s->fields && i < s->count; i++)
        frame_field_clear(&s->fields[i]);
    free(s->fields);
    free(s->info);
    free(s->pandas);
    memset(s, 0, sizeof *s);
}

static aside_status read_pandas_metadata(const fb_table *schema, char **out, aside_error *err)
{
    fb_vector pairs = fb_vector_field(schema, SCHEMA_CUSTOM_METADATA, sizeof(uint32_t));
    for (size_t i = 0; i < pairs.count; i++) {
        fb_table pair = fb_vector_table(&pairs, i);
        size_t key_len, value_len;
        const char *key = fb_string(&pair, KEY_VALUE_KEY, &key_len);
        const char *value = fb_string(&pair, KEY_VALUE_VALUE, &value_len);
        if (!key || !value || key_len != strlen(PANDAS_METADATA_KEY) ||
            memcmp(key, PANDAS_METADATA_KEY, key_len) != 0)
            continue;
        free(*out);
        if (!(*out = copy_bytes(value, value_len)))
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    return ASIDE_OK;
}

/* Read a Schema table into s; with_info: also what reading batches needs. */
static aside_status read_schema(const fb_table *schema, schema_info *s, bool with_info,
                                aside_error *err)
{
    aside_status st;
    if (!fb_present(schema))
        return malformed(err, "no schema");
    if (fb_i16(schema, SCHEMA_ENDIANNESS, ENDIANNESS_LITTLE) != ENDIANNESS_LITTLE)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "big-endian Arrow data is not supported");
    fb_vector fields = fb_vector_field(schema, SCHEMA_FIELDS, sizeof(uint32_t));
    s->fields = calloc(fields.count ? fields.count : 1, sizeof *s->fields);
    s->info = with_info ? calloc(fields.count ? fields.count : 1, sizeof *s->info) : NULL;
    if (!s->fields || (with_info && !s->info))
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < fields.count; i++) {
        fb_table field = fb_vector_table(&fields, i);
        s->count = i + 1;
        if (!fb_present(&field))
            return malformed(err, "schema field");
        if ((st = read_field(&field, &s->fields[i], with_info ? &s->info[i] : NULL, err)))
            return st;
    }
    if ((st = read_pandas_metadata(schema, &s->pandas, err)) != ASIDE_OK)
        return st;
    if (schema->r->bad)
        return malformed(err, "schema");
    return ASIDE_OK;
}

/* ---- messages ------------------------------------------------------------------------- */

/* Read the Message flatbuffer of len bytes at meta into m (body not located). */
static aside_status read_message_metadata(const uint8_t *meta, size_t len, message *m,
                                          aside_error *err)
{
    fb_reader_init(&m->reader, meta, len);
    fb_table root = fb_root(&m->reader);
    int16_t version = fb_i16(&root, MESSAGE_VERSION, 0);
    m->header_type = fb_u8(&root, MESSAGE_HEADER_TYPE, HEADER_NONE);
    m->header = fb_table_field(&root, MESSAGE_HEADER);
    int64_t body = fb_i64(&root, MESSAGE_BODY_LENGTH, 0);
    if (m->reader.bad || !fb_present(&m->header) || m->header_type == HEADER_NONE || body < 0)
        return malformed(err, "message");
    if (version < METADATA_V4)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "Arrow metadata version V%d is not "
                         "supported (written before Arrow 1.0)", version + 1);
    m->body_bytes = (uint64_t)body;
    return ASIDE_OK;
}

/* Read the encapsulated message at offset at; header_type HEADER_NONE for end of stream. */
static aside_status read_message(const uint8_t *data, size_t size, size_t at, message *m,
                                 aside_error *err)
{
    memset(m, 0, sizeof *m);
    if (at > size || size - at < IPC_LENGTH_BYTES)
        return malformed(err, "truncated message");
    uint32_t length = load_u32(data + at);
    at += IPC_LENGTH_BYTES;
    if (length == IPC_CONTINUATION) {
        if (size - at < IPC_LENGTH_BYTES)
            return malformed(err, "truncated message");
        length = load_u32(data + at);
        at += IPC_LENGTH_BYTES;
    } /* else: the format before Arrow 0.15, a bare length */
    if (length == 0) {
        m->end = at;
        return ASIDE_OK;
    }
    if (length > size - at)
        return malformed(err, "truncated message");
    aside_status st = read_message_metadata(data + at, length, m, err);
    if (st != ASIDE_OK)
        return st;
    at += length;
    if (m->body_bytes > size - at)
        return malformed(err, "truncated message body");
    m->body = data + at;
    m->end = at + (size_t)m->body_bytes;
    return ASIDE_OK;
}

/* ---- buffers -------------------------------------------------------------------------- */

static void *temp_alloc(body_reader *br, size_t bytes)
{
    if (br->temp_count == br->temp_cap) {
        size_t cap = br->temp_cap ? 2 * br->temp_cap : 16;
        void **temps = realloc(br->temps, cap * sizeof *temps);
        if (!temps)
            return NULL;
        br->temps = temps;
        br->temp_cap = cap;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (p)
        br->temps[br->temp_count++] = p;
    return p;
}

static void body_reader_free(body_reader *br)
{
    for (size_t i = 0; i < br->temp_count; i++)
        free(br->temps[i]);
    free(br->temps);
    memset(br, 0, sizeof *br);
}

static bool lz4_decompress(uint8_t *dst, size_t dst_len, const uint8_t *src, size_t src_len)
{
    LZ4F_dctx *ctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)))
        return false;
    size_t in = 0, out = 0, hint = 1;
    while (in < src_len && hint != 0) {
        size_t in_n = src_len - in, out_n = dst_len - out;
        hint = LZ4F_decompress(ctx, dst + out, &out_n, src + in, &in_n, NULL);
        if (LZ4F_isError(hint) || (in_n == 0 && out_n == 0))
            break;
        in += in_n;
        out += out_n;
    }
    LZ4F_freeDecompressionContext(ctx);
    return hint == 0 && out == dst_len;
}

/* Decompress a buffer (its length prefix included) into a temporary allocation. */
static aside_status decompress(body_reader *br, const uint8_t **p, uint64_t *len,
                               aside_error *err)
{
    if (*len < IPC_UNCOMPRESSED_LENGTH_BYTES)
        return malformed(err, "compressed buffer");
    int64_t raw = load_i64(*p);
    const uint8_t *src = *p + IPC_UNCOMPRESSED_LENGTH_BYTES;
    size_t src_len = (size_t)(*len - IPC_UNCOMPRESSED_LENGTH_BYTES);
    if (raw == IPC_NOT_COMPRESSED) {
        *p = src;
        *len = src_len;
        return ASIDE_OK;
    }
    uint64_t expansion = br->codec == CODEC_LZ4_FRAME ? LZ4_MAX_EXPANSION : ZSTD_MAX_EXPANSION;
    if (raw < 0 || (uint64_t)raw / expansion > src_len)
        return malformed(err, "compressed buffer length");
    uint8_t *dst = temp_alloc(br, (size_t)raw);
    if (!dst)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory decompressing Arrow data");
    bool ok = br->codec == CODEC_LZ4_FRAME
                  ? lz4_decompress(dst, (size_t)raw, src, src_len)
                  : ZSTD_decompress(dst, (size_t)raw, src, src_len) == (size_t)raw;
    if (!ok)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "malformed Arrow data: a %s buffer does "
                         "not decompress", br->codec == CODEC_LZ4_FRAME ? "LZ4" : "ZSTD");
    *p = dst;
    *len = (uint64_t)raw;
    return ASIDE_OK;
}

/* The next buffer of the batch: inside the body, decompressed, aligned. */
static aside_status next_buffer(body_reader *br, const uint8_t **p, uint64_t *len,
                                aside_error *err)
{
    const fb_vector *v = &br->buffers;
    if (br->next_buffer >= v->count)
        return malformed(err, "missing buffers");
    int64_t offset = fb_vector_i64(v, br->next_buffer, BUFFER_OFFSET);
    int64_t length = fb_vector_i64(v, br->next_buffer, BUFFER_LENGTH);
    br->next_buffer++;
    uint64_t body = br->m->body_bytes;
    if (offset < 0 || length < 0 || (uint64_t)offset > body ||
        (uint64_t)length > body - (uint64_t)offset)
        return malformed(err, "a buffer lies outside its message body");
    *p = br->m->body + offset;
    *len = (uint64_t)length;
    if (br->codec != NO_CODEC && *len > 0) {
        aside_status st = decompress(br, p, len, err);
        if (st != ASIDE_OK)
            return st;
    }
    if (*len == 0) {
        *p = (const uint8_t *)empty_buffer;
    } else if ((uintptr_t)*p % FRAME_ALIGN) {
        uint8_t *copy = temp_alloc(br, (size_t)*len);
        if (!copy)
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory reading Arrow data");
        memcpy(copy, *p, (size_t)*len);
        *p = copy;
    }
    return ASIDE_OK;
}

static aside_status body_reader_init(body_reader *br, const message *m, const fb_table *batch,
                                     aside_error *err)
{
    memset(br, 0, sizeof *br);
    br->m = m;
    br->length = fb_i64(batch, RECORD_BATCH_LENGTH, 0);
    br->nodes = fb_vector_field(batch, RECORD_BATCH_NODES, FIELD_NODE_BYTES);
    br->buffers = fb_vector_field(batch, RECORD_BATCH_BUFFERS, BUFFER_BYTES);
    br->codec = NO_CODEC;
    fb_table compression = fb_table_field(batch, RECORD_BATCH_COMPRESSION);
    if (fb_present(&compression)) {
        br->codec = fb_u8(&compression, COMPRESSION_CODEC, CODEC_LZ4_FRAME);
        if ((br->codec != CODEC_LZ4_FRAME && br->codec != CODEC_ZSTD) ||
            fb_u8(&compression, COMPRESSION_METHOD, COMPRESSION_METHOD_BUFFER) !=
                COMPRESSION_METHOD_BUFFER)
            return error_set(err, ASIDE_ERR_BAD_VALUE, "Arrow body compression %d is not "
                             "supported", br->codec);
    }
    if (!fb_present(batch) || m->reader.bad || br->length < 0)
        return malformed(err, "record batch");
    return ASIDE_OK;
}

/* ---- columns -------------------------------------------------------------------------- */

static uint64_t bitmap_bytes(int64_t rows)
{
    return ((uint64_t)rows + BITS_PER_BYTE - 1) / BITS_PER_BYTE;
}

/* The next field node and validity buffer, into s. */
static aside_status read_validity(body_reader *br, const char *column, frame_slice *s,
                                  aside_error *err)
{
    if (br->next_node >= br->nodes.count)
        return malformed(err, "missing field nodes");
    int64_t length = fb_vector_i64(&br->nodes, br->next_node, FIELD_NODE_LENGTH);
    int64_t nulls = fb_vector_i64(&br->nodes, br->next_node, FIELD_NODE_NULL_COUNT);
    br->next_node++;
    if (length != br->length || nulls < 0 || nulls > length)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "malformed Arrow data: column \"%s\": "
                         "field node", column);
    const uint8_t *bits;
    uint64_t bytes;
    aside_status st = next_buffer(br, &bits, &bytes, err);
    if (st != ASIDE_OK)
        return st;
    if (bytes == 0 && nulls > 0)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "malformed Arrow data: column \"%s\": "
                         "nulls without a validity bitmap", column);
    if (bytes > 0 && bytes < bitmap_bytes(length))
        return error_set(err, ASIDE_ERR_BAD_VALUE, "malformed Arrow data: column \"%s\": "
                         "short validity bitmap", column);
    s->length = length;
    s->offset = 0;
    s->null_count = -1; /* the builder counts: a wrong null_count cannot mislead it */
    s->validity = bytes ? bits : NULL;
    return ASIDE_OK;
}

/* Offsets of rows strings into values_bytes: rising from 0 or more, ending inside. */
static bool offsets_valid(const void *offsets, bool large, int64_t rows, uint64_t values_bytes)
{
    int64_t previous = 0;
    for (int64_t i = 0; i <= rows; i++) {
        int64_t o = large ? ((const int64_t *)offsets)[i] : ((const int32_t *)offsets)[i];
        if (o < previous)
            return false;
        previous = o;
    }
    return (uint64_t)previous <= values_bytes;
}

static aside_status read_strings(body_reader *br, const frame_field *f, bool large,
                                 frame_slice *s, aside_error *err)
{
    const uint8_t *offsets, *values;
    uint64_t offsets_bytes, values_bytes;
    aside_status st = next_buffer(br, &offsets, &offsets_bytes, err);
    if (st == ASIDE_OK)
        st = next_buffer(br, &values, &values_bytes, err);
    if (st != ASIDE_OK)
        return st;
    uint64_t width = large ? sizeof(int64_t) : sizeof(int32_t);
    /* An empty column may omit its offsets; empty_buffer then stands for the one zero. */
    bool fits = (s->length == 0 && offsets_bytes == 0) ||
                (uint64_t)s->length < offsets_bytes / width;
    if (!fits || !offsets_valid(offsets, large, s->length, values_bytes))
        return error_set(err, ASIDE_ERR_BAD_VALUE, "malformed Arrow data: column \"%s\": "
                         "string offsets", f->name);
    s->offsets = offsets;
    s->large_offsets = large;
    s->values = values;
    return ASIDE_OK;
}

static int64_t load_code(const uint8_t *codes, int64_t i, int bits, bool is_signed)
{
    switch (bits) {
    case 8:
        return is_signed ? (int64_t)((const int8_t *)codes)[i] : ((const uint8_t *)codes)[i];
    case 16:
        return is_signed ? (int64_t)((const int16_t *)codes)[i] : ((const uint16_t *)codes)[i];
    case 32:
        return is_signed ? (int64_t)((const int32_t *)codes)[i] : ((const uint32_t *)codes)[i];
    default: {
        int64_t v = ((const int64_t *)codes)[i];
        return is_signed || v >= 0 ? v : -1; /* a uint64 past INT64_MAX is out of range */
    }
    }
}

static void store_code(uint8_t *out, int64_t i, frame_type type, int64_t code)
{
    switch (type) {
    case FRAME_INT8: ((int8_t *)out)[i] = (int8_t)code; break;
    case FRAME_INT16: ((int16_t *)out)[i] = (int16_t)code; break;
    default: ((int32_t *)out)[i] = (int32_t)code; break;
    }
}

/* Codes as stored, checked against the categories and narrowed to the field's width. */
static aside_status read_codes(body_reader *br, const frame_field *f, const field_info *info,
                               frame_slice *s, aside_error *err)
{
    const uint8_t *codes;
    uint64_t bytes;
    aside_status st = next_buffer(br, &codes, &bytes, err);
    if (st != ASIDE_OK)
        return st;
    uint64_t width = (uint64_t)info->index_bits / BITS_PER_BYTE;
    if ((uint64_t)s->length > bytes / width)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "malformed Arrow data: column \"%s\": "
                         "short dictionary indices", f->name);
    uint8_t *out = temp_alloc(br, (size_t)s->length * frame_type_width(f->index_type));
    if (!out)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory reading Arrow data");
    int64_t categories = f->dictionary->rows;
    for (int64_t i = 0; i < s->length; i++) {
        bool valid = !s->validity || frame_bit(s->validity, i);
        int64_t code = valid ? load_code(codes, i, info->index_bits, info->index_signed) : 0;
        if (valid && (code < 0 || code >= categories))
            return error_set(err, ASIDE_ERR_BAD_VALUE, "malformed Arrow data: column \"%s\": "
                             "dictionary index %lld out of range", f->name, (long long)code);
        store_code(out, i, f->index_type, code);
    }
    s->values = out;
    return ASIDE_OK;
}

/* Field i of a record batch as a slice for the builder. */
static aside_status read_column(decoder *d, body_reader *br, size_t i, frame_slice *s,
                                aside_error *err)
{
    const frame_field *f = &d->schema.fields[i];
    const field_info *info = &d->schema.info[i];
    memset(s, 0, sizeof *s);
    aside_status st = read_validity(br, f->name, s, err);
    if (st != ASIDE_OK)
        return st;
    s->slice_type = f->type == FRAME_CATEGORY ? f->index_type : f->type;
    s->slice_unit = f->unit;
    if (f->type == FRAME_UTF8 || f->type == FRAME_BINARY)
        return read_strings(br, f, info->large_offsets, s, err);
    if (f->type == FRAME_CATEGORY)
        return read_codes(br, f, info, s, err);
    const uint8_t *values;
    uint64_t bytes;
    if ((st = next_buffer(br, &values, &bytes, err)) != ASIDE_OK)
        return st;
    bool fits = f->type == FRAME_BOOL ? bytes >= bitmap_bytes(s->length)
                                      : (uint64_t)s->length <= bytes / frame_type_width(f->type);
    if (!fits)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "malformed Arrow data: column \"%s\": "
                         "short values buffer", f->name);
    s->values = values;
    return ASIDE_OK;
}

/* ---- dictionaries --------------------------------------------------------------------- */

/* The categories in a dictionary batch of a field whose strings are large or not. */
static aside_status read_categories(const message *m, const fb_table *data, bool large,
                                    frame_batch **out, aside_error *err)
{
    body_reader br;
    frame_slice s;
    const char **values = NULL;
    size_t *lengths = NULL;
    frame_field utf8 = {.name = "dictionary", .type = FRAME_UTF8};
    aside_status st = body_reader_init(&br, m, data, err);
    if (st == ASIDE_OK)
        st = read_validity(&br, utf8.name, &s, err);
    if (st == ASIDE_OK && s.validity)
        st = error_set(err, ASIDE_ERR_BAD_VALUE, "Arrow dictionaries with nulls are not "
                       "supported");
    if (st == ASIDE_OK)
        st = read_strings(&br, &utf8, large, &s, err);
    if (st == ASIDE_OK && (uint64_t)s.length >= INT32_MAX)
        st = error_set(err, ASIDE_ERR_TOO_LARGE, "too many categories");
    if (st != ASIDE_OK)
        goto done;
    size_t count = (size_t)s.length;
    values = malloc((count ? count : 1) * sizeof *values);
    lengths = malloc((count ? count : 1) * sizeof *lengths);
    if (!values || !lengths)
        goto nomem;
    for (size_t i = 0; i < count; i++) {
        int64_t start = large ? ((const int64_t *)s.offsets)[i]
                              : ((const int32_t *)s.offsets)[i];
        int64_t end = large ? ((const int64_t *)s.offsets)[i + 1]
                            : ((const int32_t *)s.offsets)[i + 1];
        values[i] = (const char *)s.values + start;
        lengths[i] = (size_t)(end - start);
    }
    if (!(*out = frame_dictionary_create(values, lengths, count)))
        goto nomem;
    goto done;
nomem:
    st = error_set(err, ASIDE_ERR_NOMEM, "out of memory reading Arrow categories");
done:
    free(values);
    free(lengths);
    body_reader_free(&br);
    return st;
}

static aside_status read_dictionary_batch(decoder *d, const message *m, aside_error *err)
{
    if (d->builder)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "Arrow dictionary replacement (categories "
                         "changing between batches) is not supported");
    const fb_table *header = &m->header;
    int64_t id = fb_i64(header, DICT_BATCH_ID, 0);
    fb_table data = fb_table_field(header, DICT_BATCH_DATA);
    if (fb_bool(header, DICT_BATCH_IS_DELTA, false))
        return error_set(err, ASIDE_ERR_BAD_VALUE, "Arrow delta dictionaries are not "
                         "supported");
    bool used = false;
    for (size_t i = 0; i < d->schema.count; i++) {
        if (d->schema.info[i].dictionary_id != id)
            continue;
        frame_batch *categories = NULL;
        aside_status st = read_categories(m, &data, d->schema.info[i].large_offsets,
                                          &categories, err);
        if (st != ASIDE_OK)
            return st;
        frame_dictionary_free(d->schema.fields[i].dictionary);
        d->schema.fields[i].dictionary = categories;
        used = true;
    }
    if (!used)
        return malformed(err, "a dictionary batch no field uses");
    return ASIDE_OK;
}

/* ---- record batches ------------------------------------------------------------------- */

/* The builder, once every dictionary is known (missing ones are empty). */
static aside_status start_builder(decoder *d, aside_error *err)
{
    if (d->builder)
        return ASIDE_OK;
    for (size_t i = 0; i < d->schema.count; i++) {
        frame_field *f = &d->schema.fields[i];
        if (f->type != FRAME_CATEGORY)
            continue;
        if (!f->dictionary && !(f->dictionary = frame_dictionary_create(NULL, NULL, 0)))
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        f->index_type = frame_category_index_type((uint64_t)f->dictionary->rows);
    }
    aside_status st = ASIDE_OK;
    if (d->schema.pandas)
        st = apply_pandas_metadata(d->schema.pandas, d->schema.fields, d->schema.count,
                                   &d->index, &d->has_index, err);
    if (st != ASIDE_OK)
        return st;
    d->builder = frame_builder_create(d->schema.fields, d->schema.count, 0, err);
    if (!d->builder)
        return err ? err->status : ASIDE_ERR_NOMEM;
    if (d->has_index && (st = frame_builder_set_index(d->builder, &d->index, err)) != ASIDE_OK)
        return st;
    return frame_builder_set_pandas_metadata(d->builder, d->schema.pandas, err);
}

static aside_status read_record_batch(decoder *d, const message *m, aside_error *err)
{
    body_reader br;
    aside_status st = start_builder(d, err);
    if (st != ASIDE_OK)
        return st;
    frame_slice *slices = calloc(d->schema.count ? d->schema.count : 1, sizeof *slices);
    if (!slices)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if ((st = body_reader_init(&br, m, &m->header, err)) != ASIDE_OK)
        goto done;
    for (size_t i = 0; i < d->schema.count && st == ASIDE_OK; i++)
        st = read_column(d, &br, i, &slices[i], err);
    if (st == ASIDE_OK && m->reader.bad)
        st = malformed(err, "record batch");
    if (st == ASIDE_OK)
        st = frame_builder_append(d->builder, slices, err);
done:
    body_reader_free(&br);
    free(slices);
    return st;
}

/* ---- streams and files ---------------------------------------------------------------- */

static aside_status read_schema_message(decoder *d, const message *m, aside_error *err)
{
    if (m->header_type != HEADER_SCHEMA)
        return malformed(err, "an Arrow stream starts with its schema");
    return read_schema(&m->header, &d->schema, true, err);
}

static aside_status read_stream(decoder *d, aside_error *err)
{
    message m;
    aside_status st = read_message(d->data, d->size, 0, &m, err);
    if (st == ASIDE_OK)
        st = read_schema_message(d, &m, err);
    for (size_t at = m.end; st == ASIDE_OK && at < d->size; at = m.end) {
        if ((st = read_message(d->data, d->size, at, &m, err)) != ASIDE_OK)
            break;
        if (m.header_type == HEADER_NONE) /* end of stream */
            break;
        if (m.header_type == HEADER_DICTIONARY_BATCH)
            st = read_dictionary_batch(d, &m, err);
        else if (m.header_type == HEADER_RECORD_BATCH)
            st = read_record_batch(d, &m, err);
        else
            st = malformed(err, "unexpected message in a stream");
    }
    return st;
}

/* The message a footer block points to, which must have the given header type. */
static aside_status read_block(decoder *d, const fb_vector *blocks, size_t i, uint8_t type,
                               message *m, aside_error *err)
{
    int64_t offset = fb_vector_i64(blocks, i, BLOCK_OFFSET);
    if (offset < 0 || (uint64_t)offset >= d->size)
        return malformed(err, "footer block");
    aside_status st = read_message(d->data, d->size, (size_t)offset, m, err);
    if (st == ASIDE_OK && m->header_type != type)
        st = malformed(err, "footer block");
    return st;
}

static aside_status read_file(decoder *d, aside_error *err)
{
    const size_t trailer = IPC_LENGTH_BYTES + IPC_MAGIC_BYTES;
    if (d->size < IPC_MAGIC_PADDED + trailer ||
        memcmp(d->data + d->size - IPC_MAGIC_BYTES, IPC_MAGIC, IPC_MAGIC_BYTES) != 0)
        return malformed(err, "truncated file (no footer)");
    uint32_t footer_bytes = load_u32(d->data + d->size - trailer);
    if (footer_bytes == 0 || footer_bytes > d->size - trailer - IPC_MAGIC_PADDED)
        return malformed(err, "footer length");
    fb_reader reader;
    fb_reader_init(&reader, d->data + d->size - trailer - footer_bytes, footer_bytes);
    fb_table footer = fb_root(&reader);
    fb_table schema = fb_table_field(&footer, FOOTER_SCHEMA);
    fb_vector dictionaries = fb_vector_field(&footer, FOOTER_DICTIONARIES, BLOCK_BYTES);
    fb_vector batches = fb_vector_field(&footer, FOOTER_RECORD_BATCHES, BLOCK_BYTES);
    if (reader.bad)
        return malformed(err, "footer");
    aside_status st = read_schema(&schema, &d->schema, true, err);
    message m;
    for (size_t i = 0; st == ASIDE_OK && i < dictionaries.count; i++) {
        st = read_block(d, &dictionaries, i, HEADER_DICTIONARY_BATCH, &m, err);
        if (st == ASIDE_OK)
            st = read_dictionary_batch(d, &m, err);
    }
    for (size_t i = 0; st == ASIDE_OK && i < batches.count; i++) {
        st = read_block(d, &batches, i, HEADER_RECORD_BATCH, &m, err);
        if (st == ASIDE_OK)
            st = read_record_batch(d, &m, err);
    }
    if (st == ASIDE_OK && reader.bad)
        st = malformed(err, "footer");
    return st;
}

aside_status arrow_decode(const void *data, size_t size, frame **out, aside_error *err)
{
    decoder d = {.data = data, .size = size, .index = {.start = 0, .step = 1}};
    *out = NULL;
    bool file = size >= IPC_MAGIC_BYTES && memcmp(data, IPC_MAGIC, IPC_MAGIC_BYTES) == 0;
    aside_status st = file ? read_file(&d, err) : read_stream(&d, err);
    if (st == ASIDE_OK)
        st = start_builder(&d, err);
    if (st == ASIDE_OK) {
        *out = frame_builder_finish(d.builder, err);
        d.builder = NULL;
        if (!*out)
            st = err ? err->status : ASIDE_ERR_NOMEM;
    }
    frame_builder_destroy(d.builder);
    schema_info_free(&d.schema);
    free(d.index.name);
    return st;
}

/* ---- a schema alone ------------------------------------------------------------------- */

aside_status arrow_decode_schema(const void *data, size_t size, frame_field **fields,
                                 size_t *count, char **pandas, aside_error *err)
{
    *fields = NULL;
    *count = 0;
    if (pandas)
        *pandas = NULL;
    message m;
    schema_info s = {0};
    aside_status st;
    if (size >= IPC_LENGTH_BYTES && load_u32(data) == IPC_CONTINUATION) {
        st = read_message(data, size, 0, &m, err);
    } else {
        memset(&m, 0, sizeof m);
        st = read_message_metadata(data, size, &m, err);
    }
    if (st == ASIDE_OK && m.header_type != HEADER_SCHEMA)
        st = malformed(err, "not a schema message");
    if (st == ASIDE_OK)
        st = read_schema(&m.header, &s, false, err);
    if (st == ASIDE_OK && s.pandas)
        st = apply_pandas_metadata(s.pandas, s.fields, s.count, NULL, NULL, err);
    if (st != ASIDE_OK) {
        schema_info_free(&s);
        return st;
    }
    *fields = s.fields;
    *count = s.count;
    if (pandas)
        *pandas = s.pandas;
    else
        free(s.pandas);
    free(s.info);
    return ASIDE_OK;
}
