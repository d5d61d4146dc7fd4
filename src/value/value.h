/* value.h -- cached values and the types they come in.
 *
 * An aside_value (declared in aside.h) is immutable and reference counted: the cache holds one
 * reference while the value is in memory, every reader one more while it serves it. Its bytes are
 * in a heap buffer, or, for a value larger than the memory budget, in a read-only file of the
 * disk tier.
 *
 * Each value type is a small module (bytes.c, json.c) described by a value_kind: which keys it
 * claims by name, how it validates content when loaded (a value that fails is never cached) and
 * the Content-Type it is served with. Adding a type means adding one module and one line to the
 * registry in value.c. */
#ifndef ASIDE_VALUE_H
#define ASIDE_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"

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

const value_kind *value_kind_of(aside_value_type type);

/* A value owning data (malloc'd, size bytes); NULL when out of memory (data is then freed). */
aside_value *value_from_memory(aside_value_type type, void *data, uint64_t size);
/* A value owning fd (a read-only file of size bytes); NULL when out of memory (fd is closed). */
aside_value *value_from_file(aside_value_type type, int fd, uint64_t size);

/* True if key ends with suffix, compared without regard to ASCII case. */
bool value_key_has_suffix(const char *key, size_t len, const char *suffix);

#endif
