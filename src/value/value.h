/* value.h -- cached values and the types they come in.
 *
 * An aside_value (declared in aside.h) is immutable and reference counted: the cache holds one
 * reference while the value is in memory, every reader one more while it serves it. Its bytes are
 * in a heap buffer, or, for a value larger than the memory budget, in a read-only file of the
 * disk tier.
 *
 * A frame (frame.c) is the exception: its memory form is the decoded DataFrame, its file stays in
 * the disk tier, where raw reads find it.
 *
 * Each value type is a small module (bytes.c, json.c, frame.c) described by a value_kind: which keys it
 * claims by name, how it validates content when loaded (a value that fails is never cached) and
 * the Content-Type it is served with. Adding a type means adding one module and one line to the
 * registry in value.c. */
#ifndef ASIDE_VALUE_H
#define ASIDE_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"
#include "engine/engine.h"
#include "frame/frame.h"

typedef struct value_kind {
    aside_value_type type;
    const char      *name;
    /* True if a key with this name is of this type by default. */
    bool (*claims_key)(const char *key, size_t len);
    /* Validate content; ASIDE_OK or ASIDE_ERR_BAD_VALUE with the parser's reason. */
    aside_status (*check)(const void *data, size_t size, aside_error *err);
    /* The Content-Type to serve key's raw bytes with. */
    const char *(*content_type)(const char *key);
} value_kind;

extern const value_kind value_kind_bytes;
extern const value_kind value_kind_json;
extern const value_kind value_kind_frame;

const value_kind *value_kind_of(aside_value_type type);

/* A value owning data (malloc'd, size bytes); NULL when out of memory (data is then freed). */
aside_value *value_from_memory(aside_value_type type, void *data, uint64_t size);
/* A value owning fd (a read-only file of size bytes); NULL when out of memory (fd is closed). */
aside_value *value_from_file(aside_value_type type, int fd, uint64_t size);

/* A value holding a decoded frame (reference taken over) whose file, of size bytes, is fd (taken
 * over: raw reads stream it); NULL when out of memory (both are then released). */
aside_value *value_from_frame(frame *f, int fd, uint64_t size);
/* The value's frame, or NULL for other types. Valid while the value is held. */
frame       *value_frame(const aside_value *value);
/* Which content of its cache entry the value is (entries number their contents); 0: none. */
void         value_set_generation(aside_value *value, uint64_t generation);
uint64_t     value_generation(const aside_value *value);
/* Bytes the value holds in memory: its data, or its frame; 0 for a file-backed value. */
uint64_t     value_memory_bytes(const aside_value *value);

/* What decoding a frame needs: the engine, and the memory the frame may take (0: any). */
typedef struct value_context {
    engine  *engine;
    uint64_t limit_bytes;
} value_context;

/* Decode the file of key, at path and open as fd, into a frame. ASIDE_ERR_BAD_VALUE when it
 * does not read as a frame, ASIDE_ERR_TOO_LARGE when the frame would pass limit_bytes. */
aside_status value_decode_frame(const value_context *ctx, const char *key, const char *path,
                                int fd, frame **out, aside_error *err);

/* True if key ends with suffix, compared without regard to ASCII case. */
bool value_key_has_suffix(const char *key, size_t len, const char *suffix);

#endif
