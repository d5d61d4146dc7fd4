/* value.c -- reference-counted immutable values and the registry of value types.
 *
 * The count is atomic because responses on many threads hold the same value; the last release
 * frees the buffer or closes the file. Nothing else in a value ever changes after creation, so
 * reading it needs no lock. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "value.h"

struct aside_value {
    atomic_uint      refs;
    aside_value_type type;
    uint64_t         size;
    void            *data; /* NULL for a file-backed value */
    int              fd;   /* -1 for a value in memory */
    frame           *frame; /* a frame's decoded form (then fd is its file), or NULL */
    _Atomic uint64_t generation; /* the cache entry's content it is (set when cached) */
};

static const value_kind *const kinds[] = {&value_kind_bytes, &value_kind_json,
                                          &value_kind_frame, &value_kind_list,
                                          &value_kind_set, &value_kind_map,
                                          &value_kind_counter};

const value_kind *value_kind_of(aside_value_type type)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (kinds[i]->type == type)
            return kinds[i];
    }
    return &value_kind_bytes;
}

const char *value_kind_name(size_t i)
{
    return i < sizeof kinds / sizeof kinds[0] ? kinds[i]->name : NULL;
}

aside_value_type aside_value_type_for_key(const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (kinds[i]->claims_key(key, len))
            return kinds[i]->type;
    }
    return ASIDE_TYPE_BYTES;
}

const char *aside_value_type_name(aside_value_type type) { return value_kind_of(type)->name; }

aside_status aside_value_type_parse(const char *name, aside_value_type *out)
{
    for (size_t i = 0; name && i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(kinds[i]->name, name) == 0) {
            *out = kinds[i]->type;
            return ASIDE_OK;
        }
    }
    return ASIDE_ERR_INVALID;
}

bool value_key_has_suffix(const char *key, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && strncasecmp(key + len - n, suffix, n) == 0;
}

static aside_value *value_new(aside_value_type type, void *data, int fd, uint64_t size)
{
    aside_value *v = malloc(sizeof *v);
    if (!v)
        return NULL;
    atomic_init(&v->refs, 1);
    v->type = type;
    v->size = size;
    v->data = data;
    v->fd = fd;
    v->frame = NULL;
    atomic_init(&v->generation, 0);
    return v;
}

aside_value *value_from_memory(aside_value_type type, void *data, uint64_t size)
{
    aside_value *v = value_new(type, data, -1, size);
    if (!v)
        free(data);
    return v;
}

aside_value *value_from_file(aside_value_type type, int fd, uint64_t size)
{
    aside_value *v = value_new(type, NULL, fd, size);
    if (!v)
        close(fd);
    return v;
}

aside_value *value_from_frame(frame *f, int fd, uint64_t size)
{
    aside_value *v = value_new(ASIDE_TYPE_FRAME, NULL, fd, size);
    if (!v) {
        frame_release(f);
        close(fd);
        return NULL;
    }
    v->frame = f;
    return v;
}

frame *value_frame(const aside_value *v) { return v->frame; }

void value_set_generation(aside_value *v, uint64_t generation)
{
    atomic_store(&v->generation, generation);
}

uint64_t value_generation(const aside_value *v) { return atomic_load(&v->generation); }

uint64_t value_memory_bytes(const aside_value *v)
{
    return v->frame ? v->frame->memory_bytes : v->data ? v->size : 0;
}

aside_value_type aside_value_type_of(const aside_value *v) { return v->type; }
uint64_t         aside_value_size(const aside_value *v) { return v->size; }
const void      *aside_value_data(const aside_value *v) { return v->data; }
int              aside_value_fd(const aside_value *v) { return v->fd; }

aside_value *aside_value_retain(aside_value *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
    return v;
}

void aside_value_release(aside_value *v)
{
    if (!v || atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(v->data);
    frame_release(v->frame);
    if (v->fd >= 0)
        close(v->fd);
    free(v);
}
