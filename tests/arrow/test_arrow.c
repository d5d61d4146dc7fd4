/* test_arrow.c -- Arrow IPC: pyarrow reads exactly what we write, we read exactly what pyarrow
 * writes, and malformed input is refused without a crash.
 *
 * pyarrow's side is check_ipc.py (this folder), which dumps a file as pyarrow sees it and writes
 * the files the decoder is tested on; both sides describe a table the same way (check_ipc.py's
 * canonical values), compared here with jansson. The Python with pyarrow and the script are
 * the two arguments, or ASIDE_TEST_PYTHON and ASIDE_TEST_CHECK_IPC in the environment (as
 * tests/CMakeLists.txt sets them); without them the pyarrow tests do not run and the binary
 * exits as skipped (CHECK_SKIP), never as passed. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "check.h"
#include "fixture.h"

static const char *python, *script; /* NULL: no pyarrow */
static fixture fx;
static char pyarrow_dir[PATH_MAX];  /* the files check_ipc.py wrote */

/* ---- frames to test with ---------------------------------------------------------------- */

/* Every column has a null at rows where i % BASE_ROWS == NULL_ROW; values cycle over
 * BASE_ROWS. */
enum { BASE_ROWS = 7, NULL_ROW = 2, FIELD_COUNT = 19 };

static const bool bools[BASE_ROWS] = {1, 0, 0, 1, 0, 1, 1};
static const int64_t ints[BASE_ROWS] = {-128, 127, 0, 0, 1, -1, 5};
static const double floats[BASE_ROWS] = {1.5, -2.25, 0, 0, 1e10, -0.5, 3};
static const char *const strings[BASE_ROWS] = {"a", "", "", "héllo", "日本語", "emoji 😀", "x"};
static const char *const categories[BASE_ROWS] = {"b", "a", "", "c", "a", "b", "a"};
static const char *const bytes[BASE_ROWS] = {"\0\1", "", "", "\xff", "abc", "\x80", "z"};
static const size_t byte_lengths[BASE_ROWS] = {2, 0, 0, 1, 3, 1, 1};
static const int64_t times[BASE_ROWS] = {0, 1700000000123456789, 0, -1, 2, 3, 4};
static const int64_t cents[BASE_ROWS] = {12345, -5, 0, 0, 9999999999, 100, -110};

static const frame_field every_field[FIELD_COUNT] = {
    {.name = "b", .type = FRAME_BOOL},
    {.name = "i8", .type = FRAME_INT8},
    {.name = "i16", .type = FRAME_INT16},
    {.name = "i32", .type = FRAME_INT32},
    {.name = "i64", .type = FRAME_INT64},
    {.name = "u8", .type = FRAME_UINT8},
    {.name = "u16", .type = FRAME_UINT16},
    {.name = "u32", .type = FRAME_UINT32},
    {.name = "u64", .type = FRAME_UINT64},
    {.name = "f32", .type = FRAME_FLOAT32},
    {.name = "f64", .type = FRAME_FLOAT64},
    {.name = "s", .type = FRAME_UTF8},
    {.name = "bin", .type = FRAME_BINARY},
    {.name = "d", .type = FRAME_DATE32},
    {.name = "ts", .type = FRAME_TIMESTAMP, .unit = FRAME_NANO, .timezone = "America/New_York"},
    {.name = "ts_naive", .type = FRAME_TIMESTAMP, .unit = FRAME_MICRO},
    {.name = "dec", .type = FRAME_DECIMAL, .precision = 10, .scale = 2},
    {.name = "cat", .type = FRAME_CATEGORY},
    {.name = "i64 again", .type = FRAME_INT64},
};

static bool is_null_row(int64_t i) { return i % BASE_ROWS == NULL_ROW; }

/* The buffers of one column of rows rows, freed by column_free. */
typedef struct column_data {
    uint8_t *validity, *values;
    int32_t *offsets;
} column_data;

static void set_bit(uint8_t *bits, int64_t i, bool on)
{
    if (on)
        bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

static void fill_strings(column_data *c, int64_t rows, const char *const *src,
                         const size_t *lengths)
{
    size_t total = 0;
    for (int64_t i = 0; i < rows; i++)
        total += is_null_row(i) ? 0 : lengths ? lengths[i % BASE_ROWS] : strlen(src[i % BASE_ROWS]);
    c->offsets = malloc((size_t)(rows + 1) * sizeof *c->offsets);
    c->values = malloc(total + 1);
    c->offsets[0] = 0;
    for (int64_t i = 0; i < rows; i++) {
        size_t n = is_null_row(i) ? 0 : lengths ? lengths[i % BASE_ROWS]
                                                : strlen(src[i % BASE_ROWS]);
        memcpy(c->values + c->offsets[i], src[i % BASE_ROWS], n);
        c->offsets[i + 1] = c->offsets[i] + (int32_t)n;
    }
}

/* Value i of a fixed-width column of the given field. */
static void fill_value(const frame_field *f, uint8_t *at, int64_t i)
{
    int64_t k = i % BASE_ROWS;
    int64_t v = ints[k];
    switch (f->type) {
    case FRAME_INT8: case FRAME_UINT8: { uint8_t x = (uint8_t)v; memcpy(at, &x, 1); break; }
    case FRAME_INT16: case FRAME_UINT16: {
        int16_t x = (int16_t)(k < 2 ? (k ? INT16_MAX : INT16_MIN) : v);
        memcpy(at, &x, sizeof x);
        break;
    }
    case FRAME_DATE32: { int32_t x = (int32_t)(v * 100); memcpy(at, &x, sizeof x); break; }
    case FRAME_INT32: case FRAME_UINT32: {
        int32_t x = (int32_t)(k < 2 ? (k ? INT32_MAX : INT32_MIN) : v);
        memcpy(at, &x, sizeof x);
        break;
    }
    case FRAME_INT64: case FRAME_UINT64: {
        int64_t x = k < 2 ? (k ? INT64_MAX : INT64_MIN) : v;
        memcpy(at, &x, sizeof x);
        break;
    }
    case FRAME_FLOAT32: { float x = (float)floats[k]; memcpy(at, &x, sizeof x); break; }
    case FRAME_FLOAT64: { double x = floats[k] * 3; memcpy(at, &x, sizeof x); break; }
    case FRAME_TIMESTAMP: memcpy(at, &times[k], sizeof times[k]); break;
    case FRAME_DECIMAL: {
        int64_t high = cents[k] < 0 ? -1 : 0;
        memcpy(at, &cents[k], sizeof cents[k]);
        memcpy(at + 8, &high, sizeof high);
        break;
    }
    default: break;
    }
}

static void fill_column(const frame_field *f, int64_t rows, column_data *c, frame_slice *s)
{
    memset(c, 0, sizeof *c);
    c->validity = calloc((size_t)rows / 8 + 1, 1);
    for (int64_t i = 0; i < rows; i++)
        set_bit(c->validity, i, !is_null_row(i));
    *s = (frame_slice){.length = rows, .null_count = -1, .validity = c->validity,
                       .slice_type = f->type, .slice_unit = f->unit};
    if (f->type == FRAME_UTF8)
        fill_strings(c, rows, strings, NULL);
    else if (f->type == FRAME_CATEGORY) {
        fill_strings(c, rows, categories, NULL);
        s->slice_type = FRAME_UTF8;
    } else if (f->type == FRAME_BINARY)
        fill_strings(c, rows, bytes, byte_lengths);
    else if (f->type == FRAME_BOOL) {
        c->values = calloc((size_t)rows / 8 + 1, 1);
        for (int64_t i = 0; i < rows; i++)
            set_bit(c->values, i, bools[i % BASE_ROWS]);
    } else {
        size_t width = frame_type_width(f->type);
        c->values = calloc((size_t)rows + 1, width);
        for (int64_t i = 0; i < rows; i++)
            fill_value(f, c->values + i * width, i);
    }
    s->offsets = c->offsets;
    s->values = c->values;
}

/* A frame of every type, rows rows cut into batches of batch_rows. */
static frame *every_type_frame(int64_t rows, int64_t batch_rows)
{
    aside_error err;
    frame_builder *b = frame_builder_create(every_field, FIELD_COUNT, batch_rows, &err);
    column_data data[FIELD_COUNT];
    frame_slice slices[FIELD_COUNT];
    for (size_t i = 0; i < FIELD_COUNT; i++)
        fill_column(&every_field[i], rows, &data[i], &slices[i]);
    if (!b || (rows > 0 && frame_builder_append(b, slices, &err) != ASIDE_OK)) {
        fprintf(stderr, "building a frame: %s\n", err.message);
        exit(1);
    }
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        free(data[i].validity);
        free(data[i].values);
        free(data[i].offsets);
    }
    frame *f = frame_builder_finish(b, &err);
    if (!f) {
        fprintf(stderr, "building a frame: %s\n", err.message);
        exit(1);
    }
    return f;
}

/* ---- a frame as canonical JSON (check_ipc.py's rules) ------------------------------------ */

static json_t *decimal_json(const uint8_t *at, int scale)
{
    __int128 v;
    memcpy(&v, at, sizeof v);
    bool negative = v < 0;
    unsigned __int128 u = negative ? -(unsigned __int128)v : (unsigned __int128)v;
    char digits[64];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u || n <= scale);
    char out[72];
    int k = 0;
    if (negative)
        out[k++] = '-';
    for (int i = n - 1; i >= 0; i--) {
        out[k++] = digits[i];
        if (i == scale && scale > 0)
            out[k++] = '.';
    }
    out[k] = '\0';
    return json_string(out);
}

static json_t *string_json(const frame_batch *b, size_t column, int64_t row, bool hex)
{
    const int32_t *off = frame_offsets(b, column);
    const char *s = (const char *)frame_values(b, column) + off[row];
    size_t len = (size_t)(off[row + 1] - off[row]);
    if (!hex)
        return json_stringn(s, len);
    char *text = malloc(2 * len + 1);
    for (size_t i = 0; i < len; i++)
        snprintf(text + 2 * i, 3, "%02x", (unsigned char)s[i]);
    text[2 * len] = '\0';
    json_t *j = json_string(text);
    free(text);
    return j;
}

static int64_t code_at(const frame_field *f, const frame_batch *b, size_t column, int64_t row)
{
    const void *v = frame_values(b, column);
    switch (f->index_type) {
    case FRAME_INT8: return ((const int8_t *)v)[row];
    case FRAME_INT16: return ((const int16_t *)v)[row];
    default: return ((const int32_t *)v)[row];
    }
}

static json_t *value_json(const frame_field *f, const frame_batch *b, size_t c, int64_t row)
{
    if (frame_is_null(b, c, row))
        return json_null();
    const void *v = frame_values(b, c);
    char text[32];
    switch (f->type) {
    case FRAME_BOOL: return json_boolean(frame_bit(v, row));
    case FRAME_INT8: return json_integer(((const int8_t *)v)[row]);
    case FRAME_INT16: return json_integer(((const int16_t *)v)[row]);
    case FRAME_INT32: case FRAME_DATE32: return json_integer(((const int32_t *)v)[row]);
    case FRAME_INT64: case FRAME_TIMESTAMP: return json_integer(((const int64_t *)v)[row]);
    case FRAME_UINT8: return json_integer(((const uint8_t *)v)[row]);
    case FRAME_UINT16: return json_integer(((const uint16_t *)v)[row]);
    case FRAME_UINT32: return json_integer(((const uint32_t *)v)[row]);
    case FRAME_UINT64:
        snprintf(text, sizeof text, "%llu", (unsigned long long)((const uint64_t *)v)[row]);
        return json_string(text);
    case FRAME_FLOAT32: return json_real(((const float *)v)[row]);
    case FRAME_FLOAT64: return json_real(((const double *)v)[row]);
    case FRAME_UTF8: return string_json(b, c, row, false);
    case FRAME_BINARY: return string_json(b, c, row, true);
    case FRAME_DECIMAL: return decimal_json((const uint8_t *)v + 16 * row, f->scale);
    case FRAME_CATEGORY: return string_json(f->dictionary, 0, code_at(f, b, c, row), false);
    }
    return json_null();
}

/* {"names": [...], "columns": [[values...]...], "null_counts": [...], "num_rows": n} */
static json_t *frame_json(const frame *f)
{
    json_t *names = json_array(), *columns = json_array(), *nulls = json_array();
    for (size_t c = 0; c < f->field_count; c++) {
        json_array_append_new(names, json_string(f->fields[c].name));
        json_array_append_new(nulls, json_integer(f->fields[c].null_count));
        json_t *values = json_array();
        for (size_t i = 0; i < f->batch_count; i++)
            for (int64_t row = 0; row < f->batches[i].rows; row++)
                json_array_append_new(values, value_json(&f->fields[c], &f->batches[i], c, row));
        json_array_append_new(columns, values);
    }
    return json_pack("{s:o, s:o, s:o, s:I}", "names", names, "columns", columns,
                     "null_counts", nulls, "num_rows", (json_int_t)f->rows);
}

/* True if a and b agree on key; prints both when they do not. */
static bool same(const json_t *a, const json_t *b, const char *key)
{
    json_t *x = json_object_get(a, key), *y = json_object_get(b, key);
    if (x && y && json_equal(x, y))
        return true;
    char *sx = x ? json_dumps(x, JSON_COMPACT) : NULL, *sy = y ? json_dumps(y, JSON_COMPACT) : NULL;
    fprintf(stderr, "%s differs:\n  ours:    %s\n  pyarrow: %s\n", key, sx ? sx : "(none)",
            sy ? sy : "(none)");
    free(sx);
    free(sy);
    return false;
}

/* The type pyarrow prints for a field we write. */
static void pyarrow_type(const frame_field *f, char *out, size_t size)
{
    static const char *const names[] = {
        [FRAME_BOOL] = "bool", [FRAME_INT8] = "int8", [FRAME_INT16] = "int16",
        [FRAME_INT32] = "int32", [FRAME_INT64] = "int64", [FRAME_UINT8] = "uint8",
        [FRAME_UINT16] = "uint16", [FRAME_UINT32] = "uint32", [FRAME_UINT64] = "uint64",
        [FRAME_FLOAT32] = "float", [FRAME_FLOAT64] = "double", [FRAME_UTF8] = "string",
        [FRAME_BINARY] = "binary", [FRAME_DATE32] = "date32[day]"};
    static const char *const units[] = {"s", "ms", "us", "ns"};
    if (f->type == FRAME_TIMESTAMP && f->timezone)
        snprintf(out, size, "timestamp[%s, tz=%s]", units[f->unit], f->timezone);
    else if (f->type == FRAME_TIMESTAMP)
        snprintf(out, size, "timestamp[%s]", units[f->unit]);
    else if (f->type == FRAME_DECIMAL)
        snprintf(out, size, "decimal128(%d, %d)", f->precision, f->scale);
    else if (f->type == FRAME_CATEGORY)
        snprintf(out, size, "dictionary<values=string, indices=%s, ordered=%d>",
                 names[f->index_type], f->ordered);
    else
        snprintf(out, size, "%s", names[f->type]);
}

/* ---- files and pyarrow ------------------------------------------------------------------ */

/* The concatenated segments, malloc'd. */
static uint8_t *flatten(const arrow_encoding *enc)
{
    uint8_t *out = malloc(enc->total_bytes + 1), *at = out;
    for (size_t i = 0; i < enc->count; i++) {
        memcpy(at, enc->segments[i].data, enc->segments[i].length);
        at += enc->segments[i].length;
    }
    return out;
}

static uint8_t *read_whole(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    fseek(fp, 0, SEEK_END);
    *size = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *data = malloc(*size + 1);
    if (fread(data, 1, *size, fp) != *size)
        exit(1);
    fclose(fp);
    return data;
}

static bool run_python(const char *command, const char *a, const char *b)
{
    char line[3 * PATH_MAX + 64];
    snprintf(line, sizeof line, "'%s' '%s' %s '%s' %s%s%s", python, script, command, a,
             b ? "'" : "", b ? b : "", b ? "'" : "");
    return system(line) == 0;
}

/* pyarrow's description of the file at path, or NULL. */
static json_t *pyarrow_dump(const char *path)
{
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s.json", path);
    if (!run_python("dump", path, out))
        return NULL;
    return json_load_file(out, 0, NULL);
}

/* Encode f, have pyarrow read it, check it holds exactly f; pyarrow's description or NULL. */
static json_t *check_pyarrow_reads(frame *f, arrow_format format, bool pandas, const char *name)
{
    arrow_encoding enc;
    aside_error err;
    CHECK(arrow_encode(f, format, pandas, &enc, &err) == ASIDE_OK);
    uint8_t *data = flatten(&enc);
    write_file(fx.root, name, data, enc.total_bytes);
    CHECK(file_size(fx.root, name) == (long)enc.total_bytes);
    free(data);
    arrow_encoding_free(&enc);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", fx.root, name);
    json_t *dump = pyarrow_dump(path);
    CHECK(dump != NULL);
    if (!dump)
        return NULL;
    json_t *ours = frame_json(f);
    CHECK(same(ours, dump, "names"));
    CHECK(same(ours, dump, "columns"));
    CHECK(same(ours, dump, "null_counts"));
    CHECK(same(ours, dump, "num_rows"));
    json_decref(ours);
    CHECK(strcmp(json_string_value(json_object_get(dump, "format")),
                 format == ARROW_FILE ? "file" : "stream") == 0);
    CHECK(json_integer_value(json_object_get(dump, "batches")) == (json_int_t)f->batch_count);
    json_t *types = json_object_get(dump, "types");
    for (size_t i = 0; i < f->field_count; i++) {
        char expected[128];
        pyarrow_type(&f->fields[i], expected, sizeof expected);
        const char *got = json_string_value(json_array_get(types, i));
        CHECK(got && strcmp(got, expected) == 0);
        if (got && strcmp(got, expected) != 0)
            fprintf(stderr, "column %zu: pyarrow type %s, expected %s\n", i, got, expected);
    }
    return dump;
}

/* Decode the encoding of f back and check the frame is the same. */
static void check_round_trip(frame *f, arrow_format format)
{
    arrow_encoding enc;
    aside_error err;
    CHECK(arrow_encode(f, format, true, &enc, &err) == ASIDE_OK);
    uint8_t *data = flatten(&enc);
    frame *back = NULL;
    aside_status st = arrow_decode(data, enc.total_bytes, &back, &err);
    CHECK(st == ASIDE_OK);
    if (st != ASIDE_OK)
        fprintf(stderr, "decode: %s\n", err.message);
    if (back) {
        json_t *a = frame_json(f), *b = frame_json(back);
        CHECK(same(a, b, "names") && same(a, b, "columns") && same(a, b, "null_counts"));
        json_decref(a);
        json_decref(b);
        CHECK(back->field_count == f->field_count);
        for (size_t i = 0; i < f->field_count && i < back->field_count; i++) {
            const frame_field *x = &f->fields[i], *y = &back->fields[i];
            CHECK(x->type == y->type && x->unit == y->unit && x->precision == y->precision &&
                  x->scale == y->scale && x->ordered == y->ordered);
            CHECK((!x->timezone && !y->timezone) ||
                  (x->timezone && y->timezone && strcmp(x->timezone, y->timezone) == 0));
            CHECK(x->type != FRAME_CATEGORY || x->index_type == y->index_type);
        }
        CHECK((!f->pandas_metadata && !back->pandas_metadata) ||
              (f->pandas_metadata && back->pandas_metadata &&
               strcmp(f->pandas_metadata, back->pandas_metadata) == 0));
        frame_release(back);
    }
    free(data);
    arrow_encoding_free(&enc);
}

/* ---- tests: writing --------------------------------------------------------------------- */

static void test_segments_are_metadata_and_the_frames_own_bodies(void)
{
    frame *f = every_type_frame(20, 8);
    arrow_encoding enc;
    CHECK(arrow_encode(f, ARROW_FILE, false, &enc, NULL) == ASIDE_OK);
    CHECK(enc.frame == f && f->refs == 2);
    uint64_t total = 0;
    size_t bodies = 0;
    for (size_t i = 0; i < enc.count; i++) {
        total += enc.segments[i].length;
        for (size_t j = 0; j < f->batch_count; j++)
            bodies += enc.segments[i].data == f->batches[j].body &&
                      enc.segments[i].length == f->batches[j].body_bytes;
    }
    CHECK(total == enc.total_bytes);
    CHECK(bodies == f->batch_count && f->batch_count == 3);
    uint8_t *data = flatten(&enc);
    CHECK(memcmp(data, "ARROW1\0\0", 8) == 0);
    CHECK(memcmp(data + enc.total_bytes - 6, "ARROW1", 6) == 0);
    CHECK(enc.total_bytes % 8 == 2); /* everything 8-aligned but the final int32 and magic */
    free(data);
    arrow_encoding_free(&enc);
    CHECK(f->refs == 1);
    frame_release(f);
}

static void test_pyarrow_reads_every_type_as_stream_and_file(void)
{
    if (!python)
        return;
    frame *f = every_type_frame(BASE_ROWS, 0);
    json_decref(check_pyarrow_reads(f, ARROW_STREAM, false, "every.arrows"));
    json_decref(check_pyarrow_reads(f, ARROW_FILE, false, "every.arrow"));
    frame_release(f);
}

static void test_pyarrow_reads_many_small_batches(void)
{
    if (!python)
        return;
    frame *f = every_type_frame(100, 7);
    CHECK(f->batch_count == 15);
    json_decref(check_pyarrow_reads(f, ARROW_STREAM, false, "many.arrows"));
    json_decref(check_pyarrow_reads(f, ARROW_FILE, false, "many.arrow"));
    frame_release(f);
}

static void test_pyarrow_reads_zero_row_frames(void)
{
    frame *f = every_type_frame(0, 0);
    CHECK(f->batch_count == 0 && f->rows == 0);
    if (python) {
        json_decref(check_pyarrow_reads(f, ARROW_STREAM, false, "empty.arrows"));
        json_decref(check_pyarrow_reads(f, ARROW_FILE, false, "empty.arrow"));
    }
    check_round_trip(f, ARROW_STREAM);
    check_round_trip(f, ARROW_FILE);
    frame_release(f);
}

static void test_own_output_decodes_to_the_same_frame(void)
{
    frame *one = every_type_frame(BASE_ROWS, 0), *many = every_type_frame(100, 7);
    check_round_trip(one, ARROW_STREAM);
    check_round_trip(one, ARROW_FILE);
    check_round_trip(many, ARROW_STREAM);
    check_round_trip(many, ARROW_FILE);
    frame_release(one);
    frame_release(many);
}

/* ---- tests: reading pyarrow's files ----------------------------------------------------- */

static frame *decode_file(const char *name, aside_status expected, aside_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", pyarrow_dir, name);
    size_t size;
    uint8_t *data = read_whole(path, &size);
    frame *f = NULL;
    aside_status st = arrow_decode(data, size, &f, err);
    CHECK(st == expected);
    if (st != expected)
        fprintf(stderr, "%s: status %d: %s\n", name, st, st ? err->message : "");
    free(data);
    return f;
}

static json_t *expected_json(const char *stem)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.json", pyarrow_dir, stem);
    return json_load_file(path, 0, NULL);
}

static const frame_field *field_named(const frame *f, const char *name)
{
    ptrdiff_t i = frame_field_find(f, name);
    return i < 0 ? NULL : &f->fields[i];
}

static void check_every_type_fields(const frame *f)
{
    const frame_field *ls = field_named(f, "ls"), *lbin = field_named(f, "lbin");
    const frame_field *ts = field_named(f, "ts_ns"), *ms = field_named(f, "ts_ms");
    const frame_field *dec = field_named(f, "dec"), *cat = field_named(f, "cat");
    const frame_field *many = field_named(f, "many"), *ucodes = field_named(f, "ucodes");
    const frame_field *lcat = field_named(f, "lcat"), *u64 = field_named(f, "u64");
    CHECK(f->field_count == 25);
    CHECK(ls && ls->type == FRAME_UTF8 && lbin && lbin->type == FRAME_BINARY);
    CHECK(ts && ts->type == FRAME_TIMESTAMP && ts->unit == FRAME_NANO && ts->timezone &&
          strcmp(ts->timezone, "America/New_York") == 0);
    CHECK(ms && ms->unit == FRAME_MILLI && ms->timezone && strcmp(ms->timezone, "UTC") == 0);
    CHECK(dec && dec->type == FRAME_DECIMAL && dec->precision == 10 && dec->scale == 2);
    CHECK(cat && cat->type == FRAME_CATEGORY && cat->index_type == FRAME_INT8 &&
          cat->dictionary && cat->dictionary->rows == 3);
    CHECK(many && many->type == FRAME_CATEGORY && many->index_type == FRAME_INT16 &&
          many->dictionary->rows == 200);
    CHECK(ucodes && ucodes->type == FRAME_CATEGORY && ucodes->index_type == FRAME_INT8);
    CHECK(lcat && lcat->type == FRAME_CATEGORY && lcat->dictionary->rows == 2);
    CHECK(u64 && u64->type == FRAME_UINT64);
}

static void check_decodes_like_pyarrow(const char *name, const char *stem, bool full)
{
    aside_error err;
    frame *f = decode_file(name, ASIDE_OK, &err);
    json_t *expected = expected_json(stem);
    CHECK(expected != NULL);
    if (f && expected) {
        json_t *ours = frame_json(f);
        CHECK(same(ours, expected, "names"));
        CHECK(same(ours, expected, "columns"));
        CHECK(same(ours, expected, "null_counts"));
        CHECK(same(ours, expected, "num_rows"));
        json_decref(ours);
        if (full)
            check_every_type_fields(f);
    }
    json_decref(expected);
    frame_release(f);
}

static void test_pyarrow_streams_and_files_decode(void)
{
    if (!python)
        return;
    check_decodes_like_pyarrow("stream.arrows", "stream", true);
    check_decodes_like_pyarrow("file.arrow", "file", true);
    /* No batch: pyarrow writes no dictionary either, the categories are empty. */
    check_decodes_like_pyarrow("empty.arrow", "empty", false);
    check_decodes_like_pyarrow("empty_stream.arrows", "empty_stream", false);
}

static void test_compressed_pyarrow_files_decode(void)
{
    if (!python)
        return;
    check_decodes_like_pyarrow("feather_uncompressed.feather", "feather_uncompressed", true);
    check_decodes_like_pyarrow("feather_lz4.feather", "feather_lz4", true);
    check_decodes_like_pyarrow("feather_zstd.feather", "feather_zstd", true);
    check_decodes_like_pyarrow("stream_zstd.arrows", "stream_zstd", true);
}

static void test_unaligned_input_decodes_the_same(void)
{
    if (!python)
        return;
    static const char *const names[] = {"file.arrow", "stream.arrows", "feather_lz4.feather"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", pyarrow_dir, names[i]);
        size_t size;
        uint8_t *data = read_whole(path, &size);
        uint8_t *shifted = malloc(size + 1);
        memcpy(shifted + 1, data, size);
        frame *a = NULL, *b = NULL;
        CHECK(arrow_decode(data, size, &a, NULL) == ASIDE_OK);
        CHECK(arrow_decode(shifted + 1, size, &b, NULL) == ASIDE_OK);
        if (a && b) {
            json_t *x = frame_json(a), *y = frame_json(b);
            CHECK(json_equal(x, y));
            json_decref(x);
            json_decref(y);
        }
        frame_release(a);
        frame_release(b);
        free(shifted);
        free(data);
    }
}

static void test_pandas_index_and_dtypes_survive_both_ways(void)
{
    if (!python)
        return;
    aside_error err;
    frame *f = decode_file("pandas.feather", ASIDE_OK, &err);
    if (!f)
        return;
    check_decodes_like_pyarrow("pandas.feather", "pandas", false);
    CHECK(f->index.start == 10 && f->index.step == 2 && f->index.name &&
          strcmp(f->index.name, "row") == 0);
    CHECK(f->pandas_metadata && strstr(f->pandas_metadata, "index_columns"));
    const frame_field *n = field_named(f, "n"), *flag = field_named(f, "flag");
    const frame_field *color = field_named(f, "color"), *when = field_named(f, "when");
    CHECK(n && n->pandas_dtype && strcmp(n->pandas_dtype, "Int64") == 0);
    CHECK(flag && flag->pandas_dtype && strcmp(flag->pandas_dtype, "boolean") == 0);
    CHECK(color && color->type == FRAME_CATEGORY && color->ordered && !color->pandas_dtype);
    CHECK(when && when->unit == FRAME_NANO && !when->pandas_dtype);
    json_t *dump = check_pyarrow_reads(f, ARROW_FILE, true, "pandas_again.arrow");
    if (dump) {
        json_t *index = json_object_get(dump, "index");
        CHECK(json_integer_value(json_object_get(index, "start")) == 10);
        CHECK(json_integer_value(json_object_get(index, "step")) == 2);
        json_t *want = json_pack("[s, s, s, s]", "Int64", "boolean", "category",
                                 "datetime64[ns, America/New_York]");
        CHECK(json_equal(want, json_object_get(dump, "dtypes")));
        json_decref(want);
        json_decref(dump);
    }
    frame_release(f);
}

static void check_schema_fields(const frame_field *fields, size_t count, const char *pandas)
{
    CHECK(count == 4);
    if (count != 4)
        return;
    CHECK(strcmp(fields[0].name, "n") == 0 && fields[0].type == FRAME_INT64 &&
          fields[0].pandas_dtype && strcmp(fields[0].pandas_dtype, "Int64") == 0);
    CHECK(fields[1].type == FRAME_BOOL);
    CHECK(fields[2].type == FRAME_CATEGORY && fields[2].ordered && !fields[2].dictionary &&
          fields[2].index_type == FRAME_INT8);
    CHECK(fields[3].type == FRAME_TIMESTAMP && fields[3].unit == FRAME_NANO &&
          fields[3].timezone && strcmp(fields[3].timezone, "America/New_York") == 0);
    CHECK(pandas && strstr(pandas, "\"range\""));
}

static void test_schema_from_parquet_metadata_decodes(void)
{
    if (!python)
        return;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/schema.bin", pyarrow_dir);
    size_t size;
    uint8_t *data = read_whole(path, &size);
    enum { PREFIX = 8 };
    for (int bare = 0; bare <= 1; bare++) { /* as stored, then without the message prefix */
        frame_field *fields = NULL;
        size_t count = 0;
        char *pandas = NULL;
        aside_error err;
        aside_status st = arrow_decode_schema(data + (bare ? PREFIX : 0),
                                              size - (bare ? PREFIX : 0), &fields, &count,
                                              &pandas, &err);
        CHECK(st == ASIDE_OK);
        if (st == ASIDE_OK)
            check_schema_fields(fields, count, pandas);
        for (size_t i = 0; i < count; i++)
            frame_field_clear(&fields[i]);
        free(fields);
        free(pandas);
    }
    frame_field *fields;
    size_t count;
    CHECK(arrow_decode_schema(data, size / 2, &fields, &count, NULL, NULL) ==
          ASIDE_ERR_BAD_VALUE);
    free(data);
}

static void test_unsupported_types_are_named_in_the_error(void)
{
    if (!python)
        return;
    aside_error err;
    CHECK(decode_file("list.arrow", ASIDE_ERR_BAD_VALUE, &err) == NULL);
    CHECK(strstr(err.message, "\"items\"") && strstr(err.message, "list"));
    CHECK(decode_file("float16.arrow", ASIDE_ERR_BAD_VALUE, &err) == NULL);
    CHECK(strstr(err.message, "\"h\"") && strstr(err.message, "halffloat"));
}

/* ---- tests: malformed input ------------------------------------------------------------- */

/* Decoding must give OK or BAD_VALUE and never touch a byte outside data (ASan watches). */
static bool decodes_safely(const uint8_t *bytes, size_t size, int64_t *rows)
{
    uint8_t *copy = malloc(size ? size : 1); /* exactly size bytes, so ASan sees overreads */
    memcpy(copy, bytes, size);
    frame *f = NULL;
    aside_error err;
    aside_status st = arrow_decode(copy, size, &f, &err);
    *rows = f ? f->rows : -1;
    frame_release(f);
    free(copy);
    return st == ASIDE_OK || st == ASIDE_ERR_BAD_VALUE;
}

static void check_every_truncation(const uint8_t *data, size_t size, int64_t full_rows,
                                   bool stream)
{
    size_t bad = 0;
    for (size_t len = 0; len < size; len++) {
        int64_t rows;
        bool safe = decodes_safely(data, len, &rows);
        bad += !safe || (!stream && rows >= 0) || rows > full_rows;
    }
    CHECK(bad == 0);
}

static void test_every_truncation_is_refused(void)
{
    frame *f = every_type_frame(20, 8);
    for (int format = ARROW_STREAM; format <= ARROW_FILE; format++) {
        arrow_encoding enc;
        CHECK(arrow_encode(f, (arrow_format)format, true, &enc, NULL) == ASIDE_OK);
        uint8_t *data = flatten(&enc);
        check_every_truncation(data, enc.total_bytes, f->rows, format == ARROW_STREAM);
        free(data);
        arrow_encoding_free(&enc);
    }
    frame_release(f);
    if (!python)
        return;
    static const char *const compressed[] = {"feather_lz4.feather", "stream_zstd.arrows"};
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", pyarrow_dir, compressed[i]);
        size_t size;
        uint8_t *data = read_whole(path, &size);
        check_every_truncation(data, size, BASE_ROWS, strstr(path, "stream") != NULL);
        free(data);
    }
}

static void check_every_flip(uint8_t *data, size_t size)
{
    static const uint8_t patterns[] = {0xff, 0x80, 0x01};
    size_t unsafe = 0;
    for (size_t i = 0; i < size; i++) {
        for (size_t p = 0; p < sizeof patterns; p++) {
            int64_t rows;
            data[i] ^= patterns[p];
            unsafe += !decodes_safely(data, size, &rows);
            data[i] ^= patterns[p];
        }
    }
    CHECK(unsafe == 0);
}

static void test_flipped_bytes_never_crash(void)
{
    frame *f = every_type_frame(9, 5);
    for (int format = ARROW_STREAM; format <= ARROW_FILE; format++) {
        arrow_encoding enc;
        CHECK(arrow_encode(f, (arrow_format)format, true, &enc, NULL) == ASIDE_OK);
        uint8_t *data = flatten(&enc);
        check_every_flip(data, enc.total_bytes);
        free(data);
        arrow_encoding_free(&enc);
    }
    frame_release(f);
    if (!python)
        return;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/feather_lz4.feather", pyarrow_dir);
    size_t size;
    uint8_t *data = read_whole(path, &size);
    check_every_flip(data, size);
    free(data);
}

static void test_garbage_is_bad_value(void)
{
    static const uint8_t zeros[64], ones[] = {0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0};
    frame *f = NULL;
    aside_error err;
    CHECK(arrow_decode(zeros, 0, &f, &err) == ASIDE_ERR_BAD_VALUE && !f);
    CHECK(arrow_decode(zeros, sizeof zeros, &f, &err) == ASIDE_ERR_BAD_VALUE && !f);
    CHECK(arrow_decode(ones, sizeof ones, &f, &err) == ASIDE_ERR_BAD_VALUE && !f);
    CHECK(arrow_decode("ARROW1\0\0ARROW1", 14, &f, &err) == ASIDE_ERR_BAD_VALUE && !f);
    CHECK(arrow_decode("{\"not\": \"arrow\"}", 16, &f, &err) == ASIDE_ERR_BAD_VALUE && !f);
}

int main(int argc, char **argv)
{
    fixture_init(&fx);
    const char *py = argc >= 3 ? argv[1] : getenv("ASIDE_TEST_PYTHON");
    const char *helper = argc >= 3 ? argv[2] : getenv("ASIDE_TEST_CHECK_IPC");
    if (py && helper && access(py, X_OK) == 0) {
        python = py;
        script = helper;
        snprintf(pyarrow_dir, sizeof pyarrow_dir, "%s/pyarrow", fx.root);
        mkdir(pyarrow_dir, 0755);
        if (!run_python("write", pyarrow_dir, NULL)) {
            fprintf(stderr, "check_ipc.py write failed\n");
            return EXIT_FAILURE;
        }
    } else {
        CHECK_SKIP("the pyarrow tests (no Python given, or not executable)");
    }
    RUN(test_segments_are_metadata_and_the_frames_own_bodies);
    RUN(test_pyarrow_reads_every_type_as_stream_and_file);
    RUN(test_pyarrow_reads_many_small_batches);
    RUN(test_pyarrow_reads_zero_row_frames);
    RUN(test_own_output_decodes_to_the_same_frame);
    RUN(test_pyarrow_streams_and_files_decode);
    RUN(test_compressed_pyarrow_files_decode);
    RUN(test_unaligned_input_decodes_the_same);
    RUN(test_pandas_index_and_dtypes_survive_both_ways);
    RUN(test_schema_from_parquet_metadata_decodes);
    RUN(test_unsupported_types_are_named_in_the_error);
    RUN(test_every_truncation_is_refused);
    RUN(test_flipped_bytes_never_crash);
    RUN(test_garbage_is_bad_value);
    fixture_done(&fx);
    return CHECK_DONE();
}
