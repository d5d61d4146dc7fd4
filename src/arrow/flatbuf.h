/* flatbuf.h -- just enough FlatBuffers to write and read Arrow's IPC metadata.
 *
 * Private to the arrow module. Arrow's metadata (Schema.fbs, Message.fbs, File.fbs) is a handful
 * of small tables; rather than generated code, a builder and a reader that know the binary
 * format and nothing of the schemas: the callers name fields by their position in the .fbs
 * declaration (a union takes two positions: its type, then its value).
 *
 * Builder: the buffer is built back to front, as FlatBuffers' own builders do, so children
 * (strings, vectors, tables) are created before the table that points at them, and every
 * offset points forward. A reference (fb_ref) is a position counted from the end of the buffer,
 * which does not move as the buffer grows. Errors are sticky: an allocation failure sets
 * failed, later calls do nothing, the owner checks once at the end (like util.h's buf).
 *
 * Reader: every access checks that what it reads lies inside the buffer; malformed input sets
 * the reader's bad flag (sticky as well) and yields absent tables, empty vectors and default
 * scalars, so a caller reads a whole message and checks the flag once. Nothing here recurses,
 * so a buffer whose tables point at each other cannot exhaust the stack. */
#ifndef ASIDE_ARROW_FLATBUF_H
#define ASIDE_ARROW_FLATBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- building ------------------------------------------------------------------------- */

/* The most fields a table built here has (Arrow's largest, Field, has 7). */
#define FB_MAX_FIELDS 16

/* A position counted from the end of the buffer being built; 0 is no object. */
typedef uint32_t fb_ref;

typedef struct fb_builder {
    uint8_t *data;      /* the bytes built so far are data[cap - size .. cap) */
    size_t   cap, size;
    size_t   max_align; /* the largest alignment any object asked for */
    bool     failed;    /* out of memory, or a misuse; the result is unusable */
    /* the table being built */
    fb_ref   fields[FB_MAX_FIELDS]; /* where each field was written; 0: not set */
    unsigned field_count;           /* one past the highest field set */
    size_t   table_start;
} fb_builder;

void fb_builder_init(fb_builder *b);
void fb_builder_free(fb_builder *b);
/* Forget the contents, keep the memory. */
void fb_builder_reset(fb_builder *b);

/* A string (len bytes, NUL added). */
fb_ref fb_create_string(fb_builder *b, const char *s, size_t len);
/* A vector of count scalars or structs of elem_bytes each, already little-endian in elems,
 * its first element aligned to align bytes. */
fb_ref fb_create_vector(fb_builder *b, const void *elems, size_t count, size_t elem_bytes,
                        size_t align);
/* A vector of count references to tables or strings. */
fb_ref fb_create_ref_vector(fb_builder *b, const fb_ref *refs, size_t count);

/* A table: fb_table_start, then any fb_add_* (each field once, children created before
 * fb_table_start), then fb_table_end, which returns the table. Fields set are always written,
 * even when equal to the schema's default. */
void   fb_table_start(fb_builder *b);
void   fb_add_u8(fb_builder *b, unsigned field, uint8_t value);
void   fb_add_i16(fb_builder *b, unsigned field, int16_t value);
void   fb_add_i32(fb_builder *b, unsigned field, int32_t value);
void   fb_add_i64(fb_builder *b, unsigned field, int64_t value);
void   fb_add_ref(fb_builder *b, unsigned field, fb_ref ref);
fb_ref fb_table_end(fb_builder *b);

/* Finish with root as the root table: the buffer is then data + cap - size, size bytes, valid
 * until the builder is reset or freed. False if anything failed. */
bool fb_finish(fb_builder *b, fb_ref root, const uint8_t **out, size_t *size);

/* Little-endian stores, for building struct elements of fb_create_vector. */
void fb_store_i32(uint8_t *p, int32_t v);
void fb_store_i64(uint8_t *p, int64_t v);

/* ---- reading -------------------------------------------------------------------------- */

typedef struct fb_reader {
    const uint8_t *data;
    size_t         size;
    bool           bad; /* something read pointed outside data or was malformed */
} fb_reader;

/* A table in a reader's buffer; pos 0 means absent (no table lives at 0: the root offset
 * does). */
typedef struct fb_table {
    fb_reader *r;
    size_t     pos;
    size_t     vtable;
    size_t     vtable_bytes, table_bytes;
} fb_table;

/* A vector: count elements of elem_bytes from pos. */
typedef struct fb_vector {
    fb_reader *r;
    size_t     pos;
    size_t     count;
    size_t     elem_bytes;
} fb_vector;

void fb_reader_init(fb_reader *r, const void *data, size_t size);
/* The root table; absent (and r->bad) if the buffer cannot hold one. */
fb_table fb_root(fb_reader *r);
static inline bool fb_present(const fb_table *t) { return t->pos != 0; }

/* Scalars: the field's value, or def when the field is absent. */
uint8_t fb_u8(const fb_table *t, unsigned field, uint8_t def);
int16_t fb_i16(const fb_table *t, unsigned field, int16_t def);
int32_t fb_i32(const fb_table *t, unsigned field, int32_t def);
int64_t fb_i64(const fb_table *t, unsigned field, int64_t def);
bool    fb_bool(const fb_table *t, unsigned field, bool def);

/* A table field (or union value). */
fb_table fb_table_field(const fb_table *t, unsigned field);
/* A string field: its bytes (not necessarily NUL-terminated) and length; NULL when absent. */
const char *fb_string(const fb_table *t, unsigned field, size_t *len);
/* A vector field of elem_bytes elements (4 for tables and strings); count 0 when absent. */
fb_vector fb_vector_field(const fb_table *t, unsigned field, size_t elem_bytes);
/* True if the field is set at all (to tell an empty vector from a missing one). */
bool fb_has(const fb_table *t, unsigned field);

/* Element i of a vector of tables. */
fb_table fb_vector_table(const fb_vector *v, size_t i);
/* The int32 / int64 at byte offset within struct element i. */
int32_t fb_vector_i32(const fb_vector *v, size_t i, size_t offset);
int64_t fb_vector_i64(const fb_vector *v, size_t i, size_t offset);

#endif
