/* frame.h -- DataFrames held in memory, in Arrow's columnar layout.
 *
 * A frame is an immutable table: named, typed columns (fields) and its rows cut into record
 * batches. Each batch owns one allocation, its body, holding every buffer of every column of
 * that batch laid out exactly as an Arrow IPC record batch body: for each field in order, its
 * validity bitmap (omitted, length 0, when the column has no nulls), its offsets (strings), its
 * values, each buffer starting at a multiple of FRAME_ALIGN bytes. So
 *   - an Arrow IPC stream of the frame is a small header per batch plus the bodies as they are
 *     (arrow.h), sent without a copy;
 *   - the memory a frame holds is known exactly: the sum of its allocations (memory_bytes);
 *   - a scan (DuckDB's, a JSON encoder's) reads a column of a batch through plain pointers.
 * A categorical field keeps its categories in a dictionary: a one-column UTF8 batch laid out
 * the same way (an Arrow IPC dictionary batch body); its columns hold int8/16/32 codes.
 *
 * Frames are reference counted; every field is read-only after frame_builder_finish(), so any
 * number of threads read a frame without locks. Frames are built by a frame_builder
 * (frame_builder.c, which collects a categorical column's strings in a category_set,
 * category_set.h), which accepts rows in Arrow's layout (frame_slice) from any producer
 * (DuckDB, an IPC file).
 *
 * Where each part lives, all declared here: frames, fields, dictionaries, batch layout and
 * mapped views in frame.c; the builder and row slicing in frame_builder.c; the pandas view of a
 * frame (dtypes, df.info()) in pandas.c; the JSON and CSV encoders in encode.c. The pandas
 * metadata of files has its own module, pandas_meta.h. */
#ifndef ASIDE_FRAME_H
#define ASIDE_FRAME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"
#include "util/util.h"

/* Buffers in a batch body start at multiples of this many bytes (Arrow IPC asks for 8). */
#define FRAME_ALIGN 8

typedef enum frame_type {
    FRAME_BOOL = 0, /* bit-packed, like Arrow */
    FRAME_INT8, FRAME_INT16, FRAME_INT32, FRAME_INT64,
    FRAME_UINT8, FRAME_UINT16, FRAME_UINT32, FRAME_UINT64,
    FRAME_FLOAT32, FRAME_FLOAT64,
    FRAME_UTF8,      /* int32 offsets (rows + 1) and bytes */
    FRAME_BINARY,    /* the same layout, any bytes */
    FRAME_DATE32,    /* int32 days since 1970-01-01 */
    FRAME_TIMESTAMP, /* int64 count of unit since the epoch (UTC when a timezone is set) */
    FRAME_DECIMAL,   /* 16-byte little-endian two's complement, precision and scale */
    FRAME_CATEGORY   /* codes (index_type) into the field's dictionary of UTF8 categories */
} frame_type;

typedef enum frame_unit { FRAME_SECOND = 0, FRAME_MILLI, FRAME_MICRO, FRAME_NANO } frame_unit;

typedef struct frame_batch frame_batch;

typedef struct frame_field {
    char      *name;
    frame_type type;
    frame_unit unit;         /* FRAME_TIMESTAMP */
    char      *timezone;     /* FRAME_TIMESTAMP: an IANA name or offset, NULL when naive */
    int        precision, scale;   /* FRAME_DECIMAL */
    frame_type index_type;   /* FRAME_CATEGORY: FRAME_INT8, FRAME_INT16 or FRAME_INT32 */
    bool       ordered;      /* FRAME_CATEGORY */
    frame_batch *dictionary; /* FRAME_CATEGORY: one UTF8 column of categories, no nulls */
    char      *pandas_dtype; /* a pandas extension dtype the column had ("Int64", "boolean"),
                                from the file's pandas metadata; NULL: implied by type */
    int64_t    null_count;   /* over the whole frame */
    bool       json_cells;   /* FRAME_UTF8 holding JSON literals (describe's mixed columns) */
    bool       large_strings; /* UTF8, BINARY (CATEGORY: its categories): the source gave them
                                 as Arrow large_string/large_binary (int64 offsets), the width
                                 Arrow answers of the frame; the frame itself holds int32 */
} frame_field;

/* A region of a batch body. */
typedef struct frame_span {
    uint64_t offset, length; /* bytes */
} frame_span;

/* One column of one batch. */
typedef struct frame_column {
    int64_t    null_count;
    frame_span validity; /* bit i set: row i is not null; length 0 when null_count is 0 */
    frame_span offsets;  /* UTF8, BINARY: rows + 1 int32 offsets into values; else length 0 */
    frame_span values;   /* BOOL: bits; CATEGORY: codes; UTF8, BINARY: the bytes; else values */
} frame_column;

struct frame_batch {
    int64_t       rows;
    uint8_t      *body;       /* every buffer of every column, in field order */
    uint64_t      body_bytes; /* a multiple of FRAME_ALIGN */
    frame_column *columns;    /* one per field */
};

/* The pandas index a frame is shown with: a RangeIndex, or labels (describe's statistics). */
typedef struct frame_index {
    int64_t start, step; /* RangeIndex(start, start + rows * step, step) */
    char   *name;        /* NULL: unnamed */
    char  **labels;      /* one per row, owned by the frame; NULL for a RangeIndex */
} frame_index;

typedef struct frame {
    atomic_uint  refs;
    size_t       field_count;
    frame_field *fields;
    size_t       batch_count;
    frame_batch *batches;
    int64_t      rows;
    frame_index  index;
    char        *pandas_metadata; /* the file's "pandas" schema metadata (JSON) or NULL */
    uint64_t     memory_bytes;    /* every byte the frame holds: bodies, dictionaries, metadata */
    void        *mapping;         /* when set, the batch bodies live in this read-only mapping of
                                     a file (not counted in memory_bytes): unmapped at the end */
    size_t       mapping_bytes;
} frame;

/* ---- reading ---------------------------------------------------------------------------- */

/* Take another reference; returns f. */
frame *frame_retain(frame *f);
/* Drop a reference; the last one frees the frame. NULL is ignored. */
void   frame_release(frame *f);

/* Bytes per value of a fixed-width type (1 for CATEGORY codes of INT8 ...); 0 for BOOL, UTF8
 * and BINARY, whose values are not fixed-width bytes. */
size_t frame_type_width(frame_type type);
/* Width of a field's values: frame_type_width of its type, or of its index_type for CATEGORY. */
size_t frame_field_width(const frame_field *field);
/* The codes type pandas gives a categorical of count categories: FRAME_INT8 below 127, FRAME_INT16
 * below 32767, else FRAME_INT32. */
frame_type frame_category_index_type(uint64_t count);

/* Pointers to a column's buffers within its batch. */
static inline const uint8_t *frame_validity(const frame_batch *b, size_t column)
{
    const frame_column *c = &b->columns[column];
    return c->validity.length ? b->body + c->validity.offset : NULL;
}
static inline const int32_t *frame_offsets(const frame_batch *b, size_t column)
{
    return (const int32_t *)(b->body + b->columns[column].offsets.offset);
}
static inline const void *frame_values(const frame_batch *b, size_t column)
{
    return b->body + b->columns[column].values.offset;
}
static inline bool frame_bit(const uint8_t *bits, int64_t i)
{
    return (bits[i >> 3] >> (i & 7)) & 1;
}
/* True if row i of column is null. */
static inline bool frame_is_null(const frame_batch *b, size_t column, int64_t i)
{
    const uint8_t *v = frame_validity(b, column);
    return v && !frame_bit(v, i);
}

/* The field index named name, or -1. */
ptrdiff_t frame_field_find(const frame *f, const char *name);

/* Every byte f holds (bodies, field and batch arrays, names, dictionaries, metadata): what
 * memory_bytes is set to when a frame is made. */
uint64_t frame_memory_bytes(const frame *f);

/* ---- laying out batches (frame.c) ------------------------------------------------------- */

/* One column's buffers before layout, borrowed: copied by frame_batch_layout. */
typedef struct frame_column_parts {
    int64_t     null_count;
    const void *validity; /* left out of the body when null_count is 0 */
    uint64_t    validity_bytes;
    const void *offsets;
    uint64_t    offsets_bytes;
    const void *values;
    uint64_t    values_bytes;
} frame_column_parts;

/* Lay parts (one per column) out into b, whose rows are set: b->columns and one aligned body
 * allocation in Arrow IPC order. false when out of memory (b then holds what it got, for
 * frame_batch_clear). */
bool frame_batch_layout(frame_batch *b, const frame_column_parts *parts, size_t column_count);
/* Free b's body and columns and zero it. */
void frame_batch_clear(frame_batch *b);

/* ---- building (frame_builder.c) --------------------------------------------------------- */

/* Rows of one column in Arrow's C data interface layout, borrowed from the producer. A slice's
 * type must be the field's, except: a UTF8 slice may be appended to a CATEGORY field that has
 * no dictionary yet (the builder collects the categories, sorted, as pandas does), and a
 * TIMESTAMP slice may carry another unit (slice_unit), which the builder converts. The builder
 * trusts its producer: string offsets must rise within the values, codes be in range, and
 * buffers be aligned for their type; a producer of untrusted bytes (arrow_decode) checks first. */
typedef struct frame_slice {
    int64_t        length;     /* rows */
    int64_t        offset;     /* the first row's position in the buffers (in rows) */
    int64_t        null_count; /* -1: count it */
    const uint8_t *validity;   /* NULL: no nulls */
    const void    *offsets;    /* UTF8, BINARY: int32, or int64 when large_offsets */
    bool           large_offsets;
    const void    *values;
    frame_type     slice_type; /* the layout of the slice (see above) */
    frame_unit     slice_unit; /* TIMESTAMP */
} frame_slice;

typedef struct frame_builder frame_builder;

/* A builder of a frame with the given fields (copied, a CATEGORY field's dictionary too).
 * batch_rows: rows per batch, 0 for the default. NULL with err set when out of memory or a
 * field is malformed. */
frame_builder *frame_builder_create(const frame_field *fields, size_t field_count,
                                    int64_t batch_rows, aside_error *err);
/* Append rows: slices[i] is field i's; every slice has the same length. */
aside_status frame_builder_append(frame_builder *b, const frame_slice *slices, aside_error *err);
/* The index and pandas metadata the frame will carry (both copied). */
aside_status frame_builder_set_index(frame_builder *b, const frame_index *index, aside_error *err);
aside_status frame_builder_set_pandas_metadata(frame_builder *b, const char *json,
                                               aside_error *err);
/* Bytes the builder holds so far; a loader stops when it would exceed its budget. */
uint64_t frame_builder_bytes(const frame_builder *b);
/* Finish: the frame (reference count 1) and the builder destroyed, or NULL with err set. */
frame *frame_builder_finish(frame_builder *b, aside_error *err);
void   frame_builder_destroy(frame_builder *b);

/* ---- fields and dictionaries (frame.c) ------------------------------------------------- */

/* A dictionary batch (one UTF8 column, no nulls) of count strings; NULL when out of memory.
 * Freed with frame_dictionary_free(). */
frame_batch *frame_dictionary_create(const char *const *values, const size_t *lengths,
                                     size_t count);
void         frame_dictionary_free(frame_batch *dictionary);
/* A fresh copy of field (names, timezone, dictionary copied); false when out of memory. */
bool         frame_field_copy(frame_field *dst, const frame_field *src);
void         frame_field_clear(frame_field *field);

/* A frame like f whose batch bodies are the bytes at body_offsets[i] of mapping (mapping_bytes
 * long, read-only, taken over: unmapped when the frame goes), such as an Arrow IPC file of f:
 * one copy of the data in memory, shared with the processes that map the same file. Fields and
 * dictionaries are copied. NULL when out of memory (the mapping is then unmapped). */
frame *frame_view_mapping(const frame *f, void *mapping, size_t mapping_bytes,
                          const uint64_t *body_offsets);

/* A frame of rows [first, first + count) of f (count clipped to the end), sharing nothing
 * (frame_builder.c). Integer columns with nulls anywhere in f are float64 in the slice, as
 * pandas holds them. */
frame *frame_slice_rows(const frame *f, int64_t first, int64_t count, aside_error *err);

/* ---- the pandas view (pandas.c) --------------------------------------------------------- */

/* The pandas major a frame is shown as: they differ in the class name and in strings (object
 * in 2, Arrow-backed str in 3, which changes dtypes and memory usage). */
typedef enum frame_pandas { FRAME_PANDAS_2 = 2, FRAME_PANDAS_3 = 3 } frame_pandas;

/* "2" or "3" into *out; false for any other text. */
bool frame_pandas_parse(const char *text, frame_pandas *out);

/* The dtype pandas (major) gives a field when it reads the file ("int64", "float64" for an int
 * column with nulls, "object" or "str" for strings, "datetime64[ns, UTC]", "category", ...).
 * Writes at most size bytes. */
void frame_pandas_dtype_as(const frame_field *field, frame_pandas major, char *out, size_t size);

/* df.info() as pandas (major) gives it, as JSON into b: class, index, per column
 * position/name/non-null count/dtype, dtype counts, memory usage in bytes and as pandas prints
 * it, and pandas' text. */
void frame_pandas_info_as(const frame *f, frame_pandas major, buf *b);
/* The text pandas' (major) df.info() prints, alone. */
void frame_pandas_info_text_as(const frame *f, frame_pandas major, buf *b);

/* The three above as pandas 2 shows a frame: the view of the library's aside_frame_info, of
 * describe's choice of columns and of the data spec's declared dtypes. */
void frame_pandas_dtype(const frame_field *field, char *out, size_t size);
void frame_pandas_info(const frame *f, buf *b);
void frame_pandas_info_text(const frame *f, buf *b);

/* ---- encoders (encode.c) ---------------------------------------------------------------- */

/* f as JSON in pandas' orient ("records" when NULL; also split, columns, index, values). */
aside_status frame_encode_json(const frame *f, const char *orient, buf *b, aside_error *err);
/* f as CSV: a header of column names, then the rows (an unnamed label column first when the
 * index has labels). */
aside_status frame_encode_csv(const frame *f, buf *b, aside_error *err);
/* A timestamp of unit as ISO 8601 (separator 'T' or ' '), with "Z" (or "+00:00") when utc. */
void         frame_put_timestamp(buf *b, int64_t v, frame_unit unit, bool utc, char separator);
/* A double as the shortest text that reads back as the same double. */
void         frame_put_double(buf *b, double v);

#endif
