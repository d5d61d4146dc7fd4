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

#include <jansson.h>

#include "aside.h"
#include "engine/engine.h"
#include "frame/frame.h"

/* What checking and decoding a value needs: the engine and the memory a frame may take (0: any),
 * the depth JSON may nest (0: VALUE_JSON_DEFAULT_DEPTH). */
typedef struct value_context {
    engine  *engine;
    uint64_t limit_bytes;
    size_t   json_max_depth;
} value_context;

typedef struct value_kind {
    aside_value_type type;
    const char      *name;
    /* True if a key with this name is of this type by default. */
    bool (*claims_key)(const char *key, size_t len);
    /* Validate content (ctx may be NULL: the defaults); ASIDE_OK, ASIDE_ERR_BAD_VALUE with the
     * parser's reason, or ASIDE_ERR_INVALID with err->code "too_deep" (json_check_depth). */
    aside_status (*check)(const value_context *ctx, const void *data, size_t size,
                          aside_error *err);
    /* The Content-Type to serve key's raw bytes with. */
    const char *(*content_type)(const char *key);
} value_kind;

extern const value_kind value_kind_bytes;
extern const value_kind value_kind_json;
extern const value_kind value_kind_frame;

const value_kind *value_kind_of(aside_value_type type);
/* The i-th value type's name in the registry (bytes, json, frame, list, ...), NULL past the last:
 * for messages that list them. */
const char       *value_kind_name(size_t i);

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

/* Decode the file of key, at path and open as fd, into a frame. ASIDE_ERR_BAD_VALUE when it
 * does not read as a frame, ASIDE_ERR_TOO_LARGE when the frame would pass limit_bytes. */
aside_status value_decode_frame(const value_context *ctx, const char *key, const char *path,
                                int fd, frame **out, aside_error *err);

/* ---- JSON from outside (json.c): the depth limit, UTF-8 ----------------------------------
 *
 * A JSON value's depth is the number of arrays and objects on its deepest path: 0 for a
 * scalar, 1 for [1, 2] or {}, 2 for [[1]]. */
enum {
    VALUE_JSON_DEFAULT_DEPTH = 1000, /* json_max_depth when none is configured */
    VALUE_JSON_MAX_DEPTH = 2000,     /* the most json_max_depth may be */
    /* levels a journal record adds around a value ({"a": {"values": [v]}}) or a collection
     * ({"v": content}): the record of the deepest value stays under jansson's parser limit */
    VALUE_JSON_RECORD_LEVELS = 8
};

/* The depth limit ctx gives (its json_max_depth, or VALUE_JSON_DEFAULT_DEPTH). */
size_t       value_json_max_depth(const value_context *ctx);
/* Fail with ASIDE_ERR_INVALID, err->code "too_deep", naming limit; returns the status. */
aside_status value_too_deep(aside_error *err, size_t limit);
/* ASIDE_OK when v, placed inside `above` arrays or objects, keeps the whole within limit levels
 * (above + depth of v <= limit); else value_too_deep, or ASIDE_ERR_NOMEM. Walks v without
 * recursion, and stops at the first level too deep. */
aside_status value_json_check_depth(const json_t *v, size_t above, size_t limit,
                                    aside_error *err);
/* Parse size bytes of JSON from outside with jansson's flags, refusing a value deeper than
 * limit (also one deeper than jansson's own parser allows) with value_too_deep; any other
 * failure is ASIDE_ERR_BAD_VALUE "invalid JSON at line L, column C: why". *out is the value
 * (new reference), NULL on failure. */
aside_status value_json_parse(const void *data, size_t size, size_t flags, size_t limit,
                              json_t **out, aside_error *err);
/* Check size bytes of JSON from outside as value_json_parse would (the same statuses and
 * message form, any value at the top) without building a tree: memory of one byte per level of
 * nesting, whatever the size. */
aside_status value_json_validate(const void *data, size_t size, size_t limit, aside_error *err);
/* What jansson's tree of a JSON value takes in memory, estimated per node (its struct and
 * malloc's header), per string (its bytes), per array slot and per object member (its slot in
 * the hash table and its name, taken at a typical length): within a few percent of what glibc's
 * malloc hands out for documents of small records. Walks v without recursion. */
enum {
    VALUE_JSON_NODE_BYTES = 48,   /* a node: jansson's struct (24-40 bytes) and malloc's header */
    VALUE_JSON_ALLOC_BYTES = 16,  /* a string's own allocation beside its node */
    VALUE_JSON_SLOT_BYTES = 12,   /* an array's slot, with the array's spare room */
    VALUE_JSON_MEMBER_BYTES = 96, /* an object member: its pair, name and hash-table slots */
    /* The tree of a document of n bytes is estimated at n times this before it is built (a
     * document of small records takes about 15 times its text; an array of small numbers
     * about 20): editing a stored document is refused when the estimate does not fit. */
    VALUE_JSON_TREE_FACTOR = 16
};
uint64_t     value_json_tree_bytes(const json_t *v);
/* True if s[0..len) is well-formed UTF-8 (no overlong form, surrogate or code point past
 * U+10FFFF): what jansson takes as a string. */
bool         value_utf8_valid(const char *s, size_t len);

/* ---- collections (collection.c) ---------------------------------------------------------
 *
 * The mutable memory form of a list, set, map, counter or editable JSON document: what the
 * cache's operations (aside_op) change in place. No locking, no I/O: the cache serialises the
 * operations on one collection and journals them. */
typedef struct collection collection;

extern const value_kind value_kind_list;
extern const value_kind value_kind_set;
extern const value_kind value_kind_map;
extern const value_kind value_kind_counter;

/* An empty collection of type (a list, set, map, counter 0, or a null JSON document). */
collection      *collection_create(aside_value_type type);
/* A collection of type holding value's content (a list's array, a map's object...);
 * ASIDE_ERR_BAD_VALUE when value has another shape, value_too_deep when it nests deeper than
 * VALUE_JSON_MAX_DEPTH (callers hold new input to their own limit first). A list, set, map or
 * counter copies value; a JSON document takes a reference to it (building a large document's
 * tree once, not twice): the caller must not change value afterwards. */
aside_status     collection_from_json(aside_value_type type, json_t *value, collection **out,
                                      aside_error *err);
void             collection_free(collection *c);
aside_value_type collection_type(const collection *c);
/* An estimate of the memory c holds. */
uint64_t         collection_memory_bytes(const collection *c);
/* While defer is true, a JSON document's changes do not measure the whole tree (its byte
 * figure stays as it was, and a merge's answer shares the tree: drop it before the next
 * change); setting it false measures once. Replaying a journal defers: measuring after each
 * edit would make n edits of one document cost n times its size. */
void             collection_defer_measure(collection *c, bool defer);
/* Documents measured whole since the process started (a count of work, for tests). */
uint64_t         collection_measure_count(void);
/* Its content as JSON (a set as an array in the order of its members' text); new reference. */
json_t          *collection_json(const collection *c);
/* Its content as compact JSON text (malloc'd, *len set), NULL when out of memory. */
char            *collection_dump(const collection *c, size_t *len);
/* What operation op needs: the type it works on and whether it changes the collection. False
 * for an unknown operation. */
bool             collection_op_info(const char *op, aside_value_type *type, bool *writes);
/* True if op may make a collection larger (the cache checks its memory budget first). */
bool             collection_op_grows(const char *op);
/* True for the operations over several sets: set_union, set_intersection, set_difference. */
bool             collection_is_set_algebra(const char *op);
/* The i-th operation's name (those of collection_op_info, then the set algebra), NULL past
 * the last. */
const char      *collection_op_name(size_t i);
/* Run op with args (a JSON object, borrowed; NULL: none) on c; *result receives its answer
 * (new reference). ASIDE_ERR_WRONG_TYPE for an operation on another type, ASIDE_ERR_INVALID for
 * bad arguments (err->code "too_deep" for a value that would make c nest deeper than max_depth,
 * "overflow" for arithmetic past 64-bit integers or the largest real), ASIDE_ERR_NOT_FOUND
 * (err->code "empty", "out_of_range", "no_field", "no_such_pointer") for what is not there; on
 * any error c is unchanged. */
aside_status     collection_apply(collection *c, const char *op, json_t *args, size_t max_depth,
                                  json_t **result, aside_error *err);
/* Set algebra over n sets: how is "union", "intersection" (of all) or "difference" (the first
 * minus the others); *result is a sorted array (new reference). */
aside_status     collection_set_algebra(const collection *const *sets, size_t n, const char *how,
                                        json_t **result, aside_error *err);

/* True if key ends with suffix, compared without regard to ASCII case. */
bool value_key_has_suffix(const char *key, size_t len, const char *suffix);

/* ---- JSON Pointer (RFC 6901) and merge patch (RFC 7386) ---- */
/* json_pointer.c: reading and editing a parsed JSON document (a jansson tree) by pointer.
 * Statuses: ASIDE_ERR_INVALID for a malformed pointer (its message starts "bad JSON pointer:"),
 * ASIDE_ERR_NOT_FOUND for a pointer naming nothing in the document, ASIDE_ERR_NOMEM. A failed
 * edit leaves the document as it was. */

/* A parsed pointer: its reference tokens, unescaped ("~1" is "/", "~0" is "~"). */
typedef struct json_pointer json_pointer;

/* Parse pointer (len bytes: "" or "/"-separated tokens, UTF-8, no NUL byte). On success sets
 * *out, which the caller releases with json_pointer_free(); else ASIDE_ERR_INVALID ("~" not
 * followed by 0 or 1, no leading "/") or ASIDE_ERR_NOMEM, and *out is NULL. */
aside_status json_pointer_parse(const char *pointer, size_t len, json_pointer **out,
                                aside_error *err);
void         json_pointer_free(json_pointer *p);
/* The number of tokens (0 for "", the whole document). */
size_t       json_pointer_count(const json_pointer *p);
/* Token i (< count), unescaped and NUL-terminated; *len (if not NULL) gets its length. Valid
 * while p lives. */
const char  *json_pointer_token(const json_pointer *p, size_t i, size_t *len);

/* The value pointer names in doc: *out is borrowed (valid while doc is unchanged). On an array
 * a token must be an index, digits without a leading zero: another token ("01", "x") is
 * ASIDE_ERR_INVALID; an index past the end, "-" (the element after the last), a missing member
 * and a token applied to a scalar are ASIDE_ERR_NOT_FOUND. */
aside_status json_pointer_get(json_t *doc, const char *pointer, json_t **out, aside_error *err);

/* Set the value pointer names to value, whose reference is taken over (released on failure).
 * "" replaces the whole document (*doc is released, and may be NULL: there is no document yet).
 * In an object the last token's member is added or replaced; in an array an index below the
 * size replaces that element, the size or "-" appends, a larger index is ASIDE_ERR_NOT_FOUND.
 * A missing parent, or a parent that is a scalar, is ASIDE_ERR_NOT_FOUND. value must not hold
 * the document. */
aside_status json_pointer_set(json_t **doc, const char *pointer, json_t *value, aside_error *err);

/* Remove the member or element pointer names (later elements move down). "" is
 * ASIDE_ERR_INVALID: a pointer cannot delete the whole document. A missing one is
 * ASIDE_ERR_NOT_FOUND. */
aside_status json_pointer_delete(json_t **doc, const char *pointer, aside_error *err);

/* Apply the merge patch patch (borrowed) to target (its reference taken over; NULL stands for
 * no value), as RFC 7386 defines: an object patch sets its members recursively, a null member
 * removing one; any other patch replaces the target. Returns the result, a new reference: the
 * target itself, changed in place, when target and patch are objects (so target must not be
 * shared with readers), else a copy of the patch. NULL only when out of memory (target is then
 * released, possibly half patched). */
json_t      *json_merge_patch(json_t *target, json_t *patch);

#endif
