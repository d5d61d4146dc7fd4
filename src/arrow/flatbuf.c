/* flatbuf.c -- a FlatBuffers builder and a bounds-checked reader (see flatbuf.h).
 *
 * The binary format, as far as it matters here (all integers little-endian):
 *   - the buffer starts with a uoffset (uint32) to the root table;
 *   - a uoffset is relative to where it is stored and points forward;
 *   - a table starts with an soffset (int32): table position minus that value is its vtable;
 *   - a vtable is uint16s: its own size in bytes, the table's size in bytes, then per field
 *     the field's offset from the table start (0: absent, read as the default);
 *   - a string is a uint32 length, the bytes, a NUL; a vector is a uint32 count and the
 *     elements (scalars and structs inline, tables and strings as uoffsets);
 *   - a union is two fields: a uint8 type, and a uoffset to the value table;
 *   - every scalar is aligned to its size, vectors and strings to 4 at least.
 *
 * The builder fills its buffer from the end towards the start. Alignment is reckoned from the
 * end too; fb_finish pads the whole so its size is a multiple of the largest alignment used,
 * so the finished buffer is aligned wherever it is copied to a position with that alignment.
 * Vtables are not shared between tables: Arrow's messages are small and few. */
#include "flatbuf.h"

#include <stdlib.h>
#include <string.h>

/* Size in bytes of a uoffset, an soffset, a vector or string length, and a vtable entry. */
#define UOFFSET_BYTES 4
#define SOFFSET_BYTES 4
#define LENGTH_BYTES  4
#define VOFFSET_BYTES 2
/* A vtable's fixed part: its size and the table's size. */
#define VTABLE_HEADER_BYTES (2 * VOFFSET_BYTES)
/* Buffers start this large, then double. */
#define BUILDER_MIN_CAP 512

/* ---- little-endian access ------------------------------------------------------------- */

static uint64_t load_le(const uint8_t *p, size_t width)
{
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void store_le(uint8_t *p, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void fb_store_i32(uint8_t *p, int32_t v) { store_le(p, (uint32_t)v, sizeof v); }
void fb_store_i64(uint8_t *p, int64_t v) { store_le(p, (uint64_t)v, sizeof v); }

/* ---- building ------------------------------------------------------------------------- */

void fb_builder_init(fb_builder *b)
{
    memset(b, 0, sizeof *b);
    b->max_align = 1;
}

void fb_builder_free(fb_builder *b)
{
    free(b->data);
    fb_builder_init(b);
}

void fb_builder_reset(fb_builder *b)
{
    uint8_t *data = b->data;
    size_t cap = b->cap;
    fb_builder_init(b);
    b->data = data;
    b->cap = cap;
}

/* Room for extra more bytes; the contents stay at the end of the (moved) buffer. */
static bool reserve(fb_builder *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->size + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : BUILDER_MIN_CAP;
    while (cap < b->size + extra) {
        if (cap > UINT32_MAX / 2) { /* offsets are 32 bits */
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *data = malloc(cap);
    if (!data) {
        b->failed = true;
        return false;
    }
    if (b->size)
        memcpy(data + cap - b->size, b->data + b->cap - b->size, b->size);
    free(b->data);
    b->data = data;
    b->cap = cap;
    return true;
}

/* Prepend len bytes (zeros when bytes is NULL). */
static void push(fb_builder *b, const void *bytes, size_t len)
{
    if (len == 0 || !reserve(b, len))
        return;
    b->size += len;
    uint8_t *at = b->data + b->cap - b->size;
    if (bytes)
        memcpy(at, bytes, len);
    else
        memset(at, 0, len);
}

static void push_le(fb_builder *b, uint64_t v, size_t width)
{
    uint8_t bytes[sizeof v];
    store_le(bytes, v, width);
    push(b, bytes, width);
}

/* Pad so that after prepending extra more bytes the size is a multiple of align (a power of
 * two), which puts whatever is prepended last at an align boundary. */
static void prep(fb_builder *b, size_t align, size_t extra)
{
    if (align > b->max_align)
        b->max_align = align;
    size_t pad = (align - ((b->size + extra) & (align - 1))) & (align - 1);
    push(b, NULL, pad);
}

/* The uoffset to store at the position about to be prepended, pointing at ref. */
static uint32_t uoffset_to(const fb_builder *b, fb_ref ref)
{
    return (uint32_t)(b->size + UOFFSET_BYTES - ref);
}

fb_ref fb_create_string(fb_builder *b, const char *s, size_t len)
{
    prep(b, LENGTH_BYTES, len + 1);
    push(b, NULL, 1);
    push(b, s, len);
    push_le(b, len, LENGTH_BYTES);
    return b->failed ? 0 : (fb_ref)b->size;
}

fb_ref fb_create_vector(fb_builder *b, const void *elems, size_t count, size_t elem_bytes,
                        size_t align)
{
    size_t bytes = count * elem_bytes;
    prep(b, align > LENGTH_BYTES ? align : LENGTH_BYTES, bytes);
    push(b, elems, bytes);
    push_le(b, count, LENGTH_BYTES);
    return b->failed ? 0 : (fb_ref)b->size;
}

fb_ref fb_create_ref_vector(fb_builder *b, const fb_ref *refs, size_t count)
{
    prep(b, UOFFSET_BYTES, count * UOFFSET_BYTES);
    for (size_t i = count; i-- > 0;)
        push_le(b, uoffset_to(b, refs[i]), UOFFSET_BYTES);
    push_le(b, count, LENGTH_BYTES);
    return b->failed ? 0 : (fb_ref)b->size;
}

void fb_table_start(fb_builder *b)
{
    memset(b->fields, 0, sizeof b->fields);
    b->field_count = 0;
    b->table_start = b->size;
}

static void add_field(fb_builder *b, unsigned field, uint64_t value, size_t width)
{
    if (field >= FB_MAX_FIELDS) {
        b->failed = true;
        return;
    }
    prep(b, width, width);
    push_le(b, value, width);
    b->fields[field] = (fb_ref)b->size;
    if (field + 1 > b->field_count)
        b->field_count = field + 1;
}

void fb_add_u8(fb_builder *b, unsigned field, uint8_t value) { add_field(b, field, value, 1); }
void fb_add_i16(fb_builder *b, unsigned field, int16_t value)
{
    add_field(b, field, (uint16_t)value, sizeof value);
}
void fb_add_i32(fb_builder *b, unsigned field, int32_t value)
{
    add_field(b, field, (uint32_t)value, sizeof value);
}
void fb_add_i64(fb_builder *b, unsigned field, int64_t value)
{
    add_field(b, field, (uint64_t)value, sizeof value);
}

void fb_add_ref(fb_builder *b, unsigned field, fb_ref ref)
{
    if (!ref) {
        b->failed = true;
        return;
    }
    prep(b, UOFFSET_BYTES, UOFFSET_BYTES);
    add_field(b, field, uoffset_to(b, ref), UOFFSET_BYTES);
}

fb_ref fb_table_end(fb_builder *b)
{
    prep(b, SOFFSET_BYTES, SOFFSET_BYTES);
    push(b, NULL, SOFFSET_BYTES); /* the soffset to the vtable, written below */
    size_t table = b->size;
    for (unsigned i = b->field_count; i-- > 0;)
        push_le(b, b->fields[i] ? table - b->fields[i] : 0, VOFFSET_BYTES);
    push_le(b, table - b->table_start, VOFFSET_BYTES);
    push_le(b, VTABLE_HEADER_BYTES + VOFFSET_BYTES * b->field_count, VOFFSET_BYTES);
    if (b->failed)
        return 0;
    /* The vtable sits just before the table: table - soffset = vtable. */
    store_le(b->data + b->cap - table, (uint32_t)(b->size - table), SOFFSET_BYTES);
    return (fb_ref)table;
}

bool fb_finish(fb_builder *b, fb_ref root, const uint8_t **out, size_t *size)
{
    if (!root)
        b->failed = true;
    prep(b, b->max_align > UOFFSET_BYTES ? b->max_align : UOFFSET_BYTES, UOFFSET_BYTES);
    push_le(b, uoffset_to(b, root), UOFFSET_BYTES);
    if (b->failed)
        return false;
    *out = b->data + b->cap - b->size;
    *size = b->size;
    return true;
}

/* ---- reading -------------------------------------------------------------------------- */

void fb_reader_init(fb_reader *r, const void *data, size_t size)
{
    r->data = data;
    r->size = size;
    r->bad = false;
}

/* True if [pos, pos + len) lies inside the buffer; marks the reader bad otherwise. */
static bool inside(fb_reader *r, size_t pos, size_t len)
{
    if (pos <= r->size && len <= r->size - pos)
        return true;
    r->bad = true;
    return false;
}

static const fb_table absent_table;

/* The table at pos, its vtable checked. */
static fb_table table_at(fb_reader *r, size_t pos)
{
    fb_table t = absent_table;
    if (pos == 0 || !inside(r, pos, SOFFSET_BYTES))
        goto bad;
    int64_t soffset = (int32_t)(uint32_t)load_le(r->data + pos, SOFFSET_BYTES);
    int64_t vtable = (int64_t)pos - soffset;
    if (vtable < 0 || !inside(r, (size_t)vtable, VTABLE_HEADER_BYTES))
        goto bad;
    t.vtable = (size_t)vtable;
    t.vtable_bytes = load_le(r->data + t.vtable, VOFFSET_BYTES);
    t.table_bytes = load_le(r->data + t.vtable + VOFFSET_BYTES, VOFFSET_BYTES);
    if (t.vtable_bytes < VTABLE_HEADER_BYTES || t.table_bytes < SOFFSET_BYTES ||
        !inside(r, t.vtable, t.vtable_bytes) || !inside(r, pos, t.table_bytes))
        goto bad;
    t.r = r;
    t.pos = pos;
    return t;
bad:
    r->bad = true;
    return absent_table;
}

fb_table fb_root(fb_reader *r)
{
    if (!inside(r, 0, UOFFSET_BYTES))
        return absent_table;
    return table_at(r, load_le(r->data, UOFFSET_BYTES));
}

/* Where field's width bytes are, or 0 when the field is absent (or malformed: then bad). */
static size_t field_pos(const fb_table *t, unsigned field, size_t width)
{
    if (!fb_present(t))
        return 0;
    size_t entry = VTABLE_HEADER_BYTES + (size_t)field * VOFFSET_BYTES;
    if (entry + VOFFSET_BYTES > t->vtable_bytes)
        return 0;
    size_t offset = load_le(t->r->data + t->vtable + entry, VOFFSET_BYTES);
    if (offset == 0)
        return 0;
    if (offset < SOFFSET_BYTES || offset + width > t->table_bytes) {
        t->r->bad = true;
        return 0;
    }
    return t->pos + offset;
}

bool fb_has(const fb_table *t, unsigned field) { return field_pos(t, field, 1) != 0; }

static uint64_t scalar(const fb_table *t, unsigned field, size_t width, uint64_t def)
{
    size_t pos = field_pos(t, field, width);
    return pos ? load_le(t->r->data + pos, width) : def;
}

uint8_t fb_u8(const fb_table *t, unsigned field, uint8_t def)
{
    return (uint8_t)scalar(t, field, sizeof def, def);
}
int16_t fb_i16(const fb_table *t, unsigned field, int16_t def)
{
    return (int16_t)(uint16_t)scalar(t, field, sizeof def, (uint16_t)def);
}
int32_t fb_i32(const fb_table *t, unsigned field, int32_t def)
{
    return (int32_t)(uint32_t)scalar(t, field, sizeof def, (uint32_t)def);
}
int64_t fb_i64(const fb_table *t, unsigned field, int64_t def)
{
    return (int64_t)scalar(t, field, sizeof def, (uint64_t)def);
}
bool fb_bool(const fb_table *t, unsigned field, bool def)
{
    return scalar(t, field, 1, def) != 0;
}

/* Follow the uoffset stored at pos; 0 (and bad) if it leads outside the buffer. */
static size_t follow(fb_reader *r, size_t pos)
{
    size_t target = pos + load_le(r->data + pos, UOFFSET_BYTES);
    if (target == pos || !inside(r, target, 1)) {
        r->bad = true;
        return 0;
    }
    return target;
}

fb_table fb_table_field(const fb_table *t, unsigned field)
{
    size_t pos = field_pos(t, field, UOFFSET_BYTES);
    if (!pos)
        return absent_table;
    size_t target = follow(t->r, pos);
    return target ? table_at(t->r, target) : absent_table;
}

/* The vector or string whose length word a uoffset at pos points to. */
static fb_vector vector_at(fb_reader *r, size_t pos, size_t elem_bytes)
{
    fb_vector v = {0};
    size_t target = follow(r, pos);
    if (!target || !inside(r, target, LENGTH_BYTES))
        return v;
    size_t count = load_le(r->data + target, LENGTH_BYTES);
    size_t start = target + LENGTH_BYTES;
    if (elem_bytes && count > (r->size - start) / elem_bytes) {
        r->bad = true;
        return v;
    }
    v.r = r;
    v.pos = start;
    v.count = count;
    v.elem_bytes = elem_bytes;
    return v;
}

const char *fb_string(const fb_table *t, unsigned field, size_t *len)
{
    *len = 0;
    size_t pos = field_pos(t, field, UOFFSET_BYTES);
    if (!pos)
        return NULL;
    fb_vector v = vector_at(t->r, pos, 1);
    if (!v.r)
        return NULL;
    *len = v.count;
    return (const char *)t->r->data + v.pos;
}

fb_vector fb_vector_field(const fb_table *t, unsigned field, size_t elem_bytes)
{
    fb_vector none = {0};
    size_t pos = field_pos(t, field, UOFFSET_BYTES);
    return pos ? vector_at(t->r, pos, elem_bytes) : none;
}

fb_table fb_vector_table(const fb_vector *v, size_t i)
{
    if (i >= v->count || v->elem_bytes != UOFFSET_BYTES) {
        if (v->r)
            v->r->bad = true;
        return absent_table;
    }
    size_t target = follow(v->r, v->pos + i * UOFFSET_BYTES);
    return target ? table_at(v->r, target) : absent_table;
}

static uint64_t vector_scalar(const fb_vector *v, size_t i, size_t offset, size_t width)
{
    if (i >= v->count || offset + width > v->elem_bytes) {
        if (v->r)
            v->r->bad = true;
        return 0;
    }
    return load_le(v->r->data + v->pos + i * v->elem_bytes + offset, width);
}

int32_t fb_vector_i32(const fb_vector *v, size_t i, size_t offset)
{
    return (int32_t)(uint32_t)vector_scalar(v, i, offset, sizeof(int32_t));
}

int64_t fb_vector_i64(const fb_vector *v, size_t i, size_t offset)
{
    return (int64_t)vector_scalar(v, i, offset, sizeof(int64_t));
}
