/* pandas.c -- a frame as pandas shows it: dtypes, memory usage, df.info(), for pandas 2 or 3.
 *
 * pandas reads a file through pyarrow, and the dtype a column gets follows from its Arrow type:
 * integers with nulls become float64 (NaN marks them), booleans with nulls become object, as do
 * dates, decimals and bytes; timestamps keep their unit and time zone; dictionaries become
 * category. A column the file's pandas metadata says had an extension dtype (Int64, boolean)
 * gets it back. Memory usage follows DataFrame.memory_usage(deep=False): the item size for
 * numpy columns, 8 bytes a row for object columns (a pointer), values plus a mask byte for
 * masked extension arrays, and for categoricals the codes plus the categories' Index.
 *
 * The two majors differ in a few facts only, kept in one table (flavours): the class name,
 * and strings. pandas 2 holds strings as Python objects: dtype object, 8 bytes a row, and a
 * categorical's categories are an object Index whose memory includes the hash table pandas
 * builds when it checks they are unique. pandas 3 holds them in Arrow (large_string): dtype
 * str (also when every value is null), counted exactly as pyarrow's nbytes does: the validity
 * bitmap when there are nulls, 8 offset bytes a row, and the characters; a categorical's
 * categories are a str Index counted the same way, with a hash table only when they are
 * sorted neither way (pandas checks that they are unique through one only then). pyarrow
 * keeps one bitmap per chunk (parquet row group) that has nulls; a frame counts one for all
 * its rows, which is pandas' figure unless a file's row groups differ in having nulls. The text
 * reproduces pandas' DataFrameInfo layout, padding and all; its "+" marks object columns,
 * whose objects are not counted, in both majors. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

enum {
    RANGE_INDEX_BYTES = 132,       /* RangeIndex.memory_usage(): three Python ints, a fixed size */
    OBJECT_POINTER_BYTES = 8,      /* an object column holds one pointer per row */
    ARROW_LARGE_OFFSET_BYTES = 8,  /* pyarrow counts one int64 offset a row of a large_string */
    MAX_INFO_COLUMNS = 100,        /* pandas' display.max_info_columns */
    MAX_INFO_ROWS = 1690785,       /* pandas' display.max_info_rows: above it, no counts */
    DTYPE_MAX = 96
};

/* ---- what differs between pandas majors ------------------------------------------------- */

typedef struct pandas_flavour {
    const char *class_name;    /* the DataFrame class's qualified name */
    const char *string_dtype;  /* the dtype of a string column */
    bool        arrow_strings; /* strings (and categories) held in Arrow, counted exactly */
} pandas_flavour;

static const pandas_flavour flavours[] = {
    [FRAME_PANDAS_2] = {"pandas.core.frame.DataFrame", "object", false},
    [FRAME_PANDAS_3] = {"pandas.DataFrame", "str", true},
};

static const pandas_flavour *flavour_of(frame_pandas major)
{
    return &flavours[major == FRAME_PANDAS_2 ? FRAME_PANDAS_2 : FRAME_PANDAS_3];
}

bool frame_pandas_parse(const char *text, frame_pandas *out)
{
    if (strcmp(text, "2") == 0)
        *out = FRAME_PANDAS_2;
    else if (strcmp(text, "3") == 0)
        *out = FRAME_PANDAS_3;
    else
        return false;
    return true;
}

/* ---- dtypes ----------------------------------------------------------------------------- */

static const char *numeric_dtype(frame_type t)
{
    static const char *const names[] = {
        [FRAME_INT8] = "int8",     [FRAME_INT16] = "int16",   [FRAME_INT32] = "int32",
        [FRAME_INT64] = "int64",   [FRAME_UINT8] = "uint8",   [FRAME_UINT16] = "uint16",
        [FRAME_UINT32] = "uint32", [FRAME_UINT64] = "uint64", [FRAME_FLOAT32] = "float32",
        [FRAME_FLOAT64] = "float64"};
    return names[t];
}

void frame_pandas_dtype_as(const frame_field *f, frame_pandas major, char *out, size_t size)
{
    static const char *const units[] = {"s", "ms", "us", "ns"};
    if (f->pandas_dtype) {
        snprintf(out, size, "%s", f->pandas_dtype);
        return;
    }
    switch (f->type) {
    case FRAME_BOOL:
        snprintf(out, size, "%s", f->null_count ? "object" : "bool");
        break;
    case FRAME_INT8: case FRAME_INT16: case FRAME_INT32: case FRAME_INT64:
    case FRAME_UINT8: case FRAME_UINT16: case FRAME_UINT32: case FRAME_UINT64:
        snprintf(out, size, "%s", f->null_count ? "float64" : numeric_dtype(f->type));
        break;
    case FRAME_FLOAT32: case FRAME_FLOAT64:
        snprintf(out, size, "%s", numeric_dtype(f->type));
        break;
    case FRAME_TIMESTAMP:
        if (f->timezone)
            snprintf(out, size, "datetime64[%s, %s]", units[f->unit], f->timezone);
        else
            snprintf(out, size, "datetime64[%s]", units[f->unit]);
        break;
    case FRAME_CATEGORY:
        snprintf(out, size, "category");
        break;
    case FRAME_UTF8:
        snprintf(out, size, "%s", flavour_of(major)->string_dtype);
        break;
    default: /* bytes, dates, decimals: Python objects */
        snprintf(out, size, "object");
        break;
    }
}

void frame_pandas_dtype(const frame_field *f, char *out, size_t size)
{
    frame_pandas_dtype_as(f, FRAME_PANDAS_2, out, size);
}

/* ---- memory usage ----------------------------------------------------------------------- */

static uint64_t round_up_power_of_two(uint64_t n)
{
    uint64_t p = 1;
    while (p < n)
        p <<= 1;
    return n ? p : 0;
}

/* The bytes of pandas' hash table (khash) over n objects: its buckets, flags and header. */
static uint64_t object_hash_table_bytes(uint64_t n)
{
    const double upper = 0.77; /* khash's load factor */
    const uint64_t header = 4 * 4 + 3 * 8;
    uint64_t buckets = round_up_power_of_two(n);
    if ((uint64_t)(buckets * upper + 0.5) < n)
        buckets *= 2;
    if (buckets < 4)
        buckets = 4;
    uint64_t flags = (buckets >> 5 ? buckets >> 5 : 1) * 4;
    return header + flags + buckets * (8 + 8);
}

/* The bytes of the strings of a column of batch b (UTF-8, so not always one a character). */
static uint64_t string_bytes(const frame_batch *b, size_t column)
{
    const int32_t *offsets = frame_offsets(b, column);
    return b->rows ? (uint64_t)(offsets[b->rows] - offsets[0]) : 0;
}

/* pyarrow's nbytes of a large_string array of rows strings, characters long, with or without
 * a validity bitmap. */
static uint64_t arrow_string_bytes(uint64_t rows, uint64_t characters, bool nulls)
{
    return (nulls ? (rows + 7) / 8 : 0) + rows * ARROW_LARGE_OFFSET_BYTES + characters;
}

/* -1, 0 or 1 as string a of d sorts before, with or after string b (code point order). */
static int compare_categories(const frame_batch *d, int64_t a, int64_t b)
{
    const int32_t *offsets = frame_offsets(d, 0);
    const char *values = frame_values(d, 0);
    size_t la = (size_t)(offsets[a + 1] - offsets[a]), lb = (size_t)(offsets[b + 1] - offsets[b]);
    int c = memcmp(values + offsets[a], values + offsets[b], la < lb ? la : lb);
    return c ? (c < 0 ? -1 : 1) : (la < lb ? -1 : la > lb);
}

/* True if the categories rise or fall throughout: pandas then knows they are unique without
 * building a hash table over them. */
static bool categories_monotonic(const frame_batch *d)
{
    bool rising = true, falling = true;
    for (int64_t i = 1; i < d->rows && (rising || falling); i++) {
        int c = compare_categories(d, i - 1, i);
        rising = rising && c < 0;
        falling = falling && c > 0;
    }
    return rising || falling;
}

/* The memory of a categorical's categories Index: an object Index (pandas 2) always has its
 * hash table, a str Index (pandas 3) only when its values are not in order. */
static uint64_t categories_bytes(const frame_field *f, const pandas_flavour *flavour)
{
    const frame_batch *d = f->dictionary;
    uint64_t count = d ? (uint64_t)d->rows : 0;
    if (!flavour->arrow_strings)
        return count * OBJECT_POINTER_BYTES + object_hash_table_bytes(count);
    uint64_t bytes = arrow_string_bytes(count, d ? string_bytes(d, 0) : 0, false);
    if (d && !categories_monotonic(d))
        bytes += object_hash_table_bytes(count);
    return bytes;
}

static uint64_t column_memory_bytes(const frame *frame, size_t column, frame_pandas major)
{
    const frame_field *f = &frame->fields[column];
    const pandas_flavour *flavour = flavour_of(major);
    char dtype[DTYPE_MAX];
    frame_pandas_dtype_as(f, major, dtype, sizeof dtype);
    uint64_t n = (uint64_t)frame->rows;
    if (f->type == FRAME_CATEGORY) {
        uint64_t categories = f->dictionary ? (uint64_t)f->dictionary->rows : 0;
        uint64_t code_bytes = frame_type_width(frame_category_index_type(categories));
        return n * code_bytes + categories_bytes(f, flavour);
    }
    if (f->type == FRAME_UTF8 && flavour->arrow_strings &&
        (strcmp(dtype, "str") == 0 || strcmp(dtype, "string") == 0)) {
        uint64_t characters = 0;
        for (size_t i = 0; i < frame->batch_count; i++)
            characters += string_bytes(&frame->batches[i], column);
        return arrow_string_bytes(n, characters, f->null_count > 0);
    }
    if (strcmp(dtype, "bool") == 0 || strcmp(dtype, "int8") == 0 || strcmp(dtype, "uint8") == 0)
        return n;
    if (strcmp(dtype, "boolean") == 0)
        return 2 * n;
    if (strcmp(dtype, "Int8") == 0 || strcmp(dtype, "UInt8") == 0)
        return 2 * n;
    if (strcmp(dtype, "int16") == 0 || strcmp(dtype, "uint16") == 0)
        return 2 * n;
    if (strcmp(dtype, "Int16") == 0 || strcmp(dtype, "UInt16") == 0)
        return 3 * n;
    if (strcmp(dtype, "int32") == 0 || strcmp(dtype, "uint32") == 0 ||
        strcmp(dtype, "float32") == 0)
        return 4 * n;
    if (strcmp(dtype, "Int32") == 0 || strcmp(dtype, "UInt32") == 0 ||
        strcmp(dtype, "Float32") == 0)
        return 5 * n;
    if (dtype[0] == 'I' || dtype[0] == 'U' || dtype[0] == 'F') /* Int64, UInt64, Float64 */
        return 9 * n;
    return 8 * n; /* 64-bit numbers, datetimes and object pointers */
}

static uint64_t memory_usage_bytes(const frame *f, frame_pandas major)
{
    uint64_t total = RANGE_INDEX_BYTES;
    for (size_t i = 0; i < f->field_count; i++)
        total += column_memory_bytes(f, i, major);
    return total;
}

/* pandas' _sizeof_fmt: "756.0+ bytes", "1.2 KB". */
static void format_size(double bytes, bool qualified, char *out, size_t size)
{
    static const char *const units[] = {"bytes", "KB", "MB", "GB", "TB"};
    const char *plus = qualified ? "+" : "";
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (bytes < 1024.0) {
            snprintf(out, size, "%3.1f%s %s", bytes, plus, units[i]);
            return;
        }
        bytes /= 1024.0;
    }
    snprintf(out, size, "%3.1f%s PB", bytes, plus);
}

/* ---- info ------------------------------------------------------------------------------- */

typedef struct dtype_count {
    char   name[DTYPE_MAX];
    size_t count;
} dtype_count;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const dtype_count *)a)->name, ((const dtype_count *)b)->name);
}

/* Distinct dtypes with their counts, sorted by name as pandas prints them; their number. */
static size_t count_dtypes(const frame *f, frame_pandas major, dtype_count *counts)
{
    size_t n = 0;
    for (size_t i = 0; i < f->field_count; i++) {
        char dtype[DTYPE_MAX];
        frame_pandas_dtype_as(&f->fields[i], major, dtype, sizeof dtype);
        size_t j = 0;
        while (j < n && strcmp(counts[j].name, dtype) != 0)
            j++;
        if (j == n) {
            snprintf(counts[n].name, sizeof counts[n].name, "%s", dtype);
            counts[n++].count = 0;
        }
        counts[j].count++;
    }
    qsort(counts, n, sizeof *counts, by_name);
    return n;
}

/* Characters (code points) of UTF-8 text, as Python's len() counts them. */
static size_t text_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void put_padded(buf *b, const char *s, size_t width)
{
    buf_puts(b, s);
    for (size_t w = text_width(s); w < width; w++)
        buf_putc(b, ' ');
}

static void index_summary(const frame *f, buf *b)
{
    buf_printf(b, "RangeIndex: %" PRId64 " entries", f->rows);
    if (f->rows > 0)
        buf_printf(b, ", %" PRId64 " to %" PRId64, f->index.start,
                   f->index.start + (f->rows - 1) * f->index.step);
    buf_putc(b, '\n');
}

typedef struct info_table {
    bool   counts;
    size_t width[4]; /* #, Column, Non-Null Count, Dtype */
} info_table;

static void row_cells(const frame *f, frame_pandas major, size_t i,
                      char cells[4][DTYPE_MAX + 8])
{
    snprintf(cells[0], sizeof cells[0], " %zu", i);
    snprintf(cells[2], sizeof cells[2], "%" PRId64 " non-null",
             f->rows - f->fields[i].null_count);
    frame_pandas_dtype_as(&f->fields[i], major, cells[3], sizeof cells[3]);
}

static void verbose_table(const frame *f, frame_pandas major, buf *b)
{
    static const char *const headers[] = {" # ", "Column", "Non-Null Count", "Dtype"};
    bool counts = f->rows <= MAX_INFO_ROWS;
    size_t width[4];
    for (size_t k = 0; k < 4; k++)
        width[k] = strlen(headers[k]);
    char cells[4][DTYPE_MAX + 8];
    for (size_t i = 0; i < f->field_count; i++) {
        row_cells(f, major, i, cells);
        size_t w[4] = {strlen(cells[0]), text_width(f->fields[i].name), strlen(cells[2]),
                       strlen(cells[3])};
        for (size_t k = 0; k < 4; k++)
            width[k] = w[k] > width[k] ? w[k] : width[k];
    }
    buf_printf(b, "Data columns (total %zu columns):\n", f->field_count);
    for (size_t pass = 0; pass < 2; pass++) { /* the header, then its underline */
        for (size_t k = 0, col = 0; k < 4; k++) {
            if (k == 2 && !counts)
                continue;
            if (col++)
                buf_puts(b, "  ");
            char dashes[64];
            size_t n = strlen(headers[k]);
            memset(dashes, '-', n);
            dashes[n] = '\0';
            put_padded(b, pass == 0 ? headers[k] : dashes, width[k]);
        }
        buf_putc(b, '\n');
    }
    for (size_t i = 0; i < f->field_count; i++) {
        row_cells(f, major, i, cells);
        put_padded(b, cells[0], width[0]);
        buf_puts(b, "  ");
        put_padded(b, f->fields[i].name, width[1]);
        buf_puts(b, "  ");
        if (counts) {
            put_padded(b, cells[2], width[2]);
            buf_puts(b, "  ");
        }
        put_padded(b, cells[3], width[3]);
        buf_putc(b, '\n');
    }
}

static void info_text(const frame *f, frame_pandas major, const dtype_count *counts,
                      size_t kinds, buf *b)
{
    buf_printf(b, "<class '%s'>\n", flavour_of(major)->class_name);
    index_summary(f, b);
    if (f->field_count == 0) {
        buf_puts(b, "Empty DataFrame\n");
        return;
    }
    if (f->field_count > MAX_INFO_COLUMNS)
        buf_printf(b, "Columns: %zu entries, %s to %s\n", f->field_count, f->fields[0].name,
                   f->fields[f->field_count - 1].name);
    else
        verbose_table(f, major, b);
    buf_puts(b, "dtypes: ");
    bool object = false;
    for (size_t i = 0; i < kinds; i++) {
        buf_printf(b, "%s%s(%zu)", i ? ", " : "", counts[i].name, counts[i].count);
        object = object || strcmp(counts[i].name, "object") == 0;
    }
    char size[48];
    format_size((double)memory_usage_bytes(f, major), object, size, sizeof size);
    buf_printf(b, "\nmemory usage: %s\n", size);
}

void frame_pandas_info_text_as(const frame *f, frame_pandas major, buf *b)
{
    dtype_count *counts = calloc(f->field_count ? f->field_count : 1, sizeof *counts);
    if (!counts) {
        b->failed = true;
        return;
    }
    info_text(f, major, counts, count_dtypes(f, major, counts), b);
    free(counts);
}

void frame_pandas_info_as(const frame *f, frame_pandas major, buf *b)
{
    dtype_count *counts = calloc(f->field_count ? f->field_count : 1, sizeof *counts);
    if (!counts) {
        b->failed = true;
        return;
    }
    size_t kinds = count_dtypes(f, major, counts);
    bool object = false;
    buf_printf(b, "{\"class\": \"%s\", \"index\": {\"kind\": \"range\", "
                  "\"start\": %" PRId64 ", \"stop\": %" PRId64 ", \"step\": %" PRId64 "}, "
                  "\"entries\": %" PRId64 ", \"columns\": [",
               flavour_of(major)->class_name, f->index.start,
               f->index.start + f->rows * f->index.step, f->index.step, f->rows);
    for (size_t i = 0; i < f->field_count; i++) {
        char dtype[DTYPE_MAX];
        frame_pandas_dtype_as(&f->fields[i], major, dtype, sizeof dtype);
        buf_printf(b, "%s{\"position\": %zu, \"name\": ", i ? ", " : "", i);
        buf_put_json_string(b, f->fields[i].name, strlen(f->fields[i].name));
        buf_printf(b, ", \"non_null\": %" PRId64 ", \"dtype\": ",
                   f->rows - f->fields[i].null_count);
        buf_put_json_string(b, dtype, strlen(dtype));
        buf_putc(b, '}');
    }
    buf_puts(b, "], \"dtypes\": {");
    for (size_t i = 0; i < kinds; i++) {
        buf_puts(b, i ? ", " : "");
        buf_put_json_string(b, counts[i].name, strlen(counts[i].name));
        buf_printf(b, ": %zu", counts[i].count);
        object = object || strcmp(counts[i].name, "object") == 0;
    }
    uint64_t bytes = memory_usage_bytes(f, major);
    char size[48];
    format_size((double)bytes, object, size, sizeof size);
    buf_printf(b, "}, \"memory_usage_bytes\": %llu, \"memory_usage\": \"%s\", \"text\": ",
               (unsigned long long)bytes, size);
    buf text = {0};
    info_text(f, major, counts, kinds, &text);
    buf_put_json_string(b, text.data ? text.data : "", text.len);
    b->failed = b->failed || text.failed;
    buf_free(&text);
    buf_putc(b, '}');
    free(counts);
}

void frame_pandas_info(const frame *f, buf *b) { frame_pandas_info_as(f, FRAME_PANDAS_2, b); }

void frame_pandas_info_text(const frame *f, buf *b)
{
    frame_pandas_info_text_as(f, FRAME_PANDAS_2, b);
}
