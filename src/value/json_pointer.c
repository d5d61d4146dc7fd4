/* json_pointer.c -- editing a JSON document in place: JSON Pointer (RFC 6901) and JSON merge
 * patch (RFC 7386), over jansson trees.
 *
 * A pointer is "" (the whole document) or a sequence of reference tokens, each introduced by
 * "/": "/foo/0" is member "foo", then element 0. In a token "~1" stands for "/" and "~0" for
 * "~"; any other "~" is a syntax error. A pointer is parsed once into a json_pointer: one
 * allocation holding the token array, the unescaped tokens and a copy of the text, so that
 * messages can quote the prefix that failed ("no member \"b\" at /a/b").
 *
 * Reading walks the tokens from the root. Writing (set, delete) walks to the parent of the last
 * token and changes only that parent, in one jansson call, after every check has passed: a
 * failed edit leaves the document exactly as it was.
 *
 * A token applied to an array must be an index: decimal digits without leading zeros ("0",
 * "12"). Anything else there ("01", "x", "-1") is a malformed pointer for that document
 * (ASIDE_ERR_INVALID); a well-formed index past the end, and "-" (the element after the last,
 * which exists only to append to), are ASIDE_ERR_NOT_FOUND. A token applied to a string, a
 * number, true, false or null names nothing: ASIDE_ERR_NOT_FOUND.
 *
 * Merge patch is the recursive function of RFC 7386 section 2: an object patch merges member by
 * member (null removes), anything else replaces the target. The recursion is as deep as the
 * patch, which the caller measured first
 * (collection.c: within the depth limit). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "value.h"

/* Quote at most this many bytes of a pointer in a message, so that it fits the error buffer. */
#define POINTER_QUOTE_MAX 200

typedef struct pointer_token {
    const char *name; /* unescaped, NUL-terminated */
    size_t      len;
    size_t      end;  /* where the token ends in the pointer's text (for messages) */
} pointer_token;

struct json_pointer {
    const char    *text; /* a copy of the pointer, NUL-terminated */
    size_t         text_len;
    size_t         count;
    pointer_token *tokens;
};

/* ---- parsing ----------------------------------------------------------------------------- */

static aside_status bad_pointer(aside_error *err, const char *pointer, size_t len,
                                const char *why)
{
    int shown = len > POINTER_QUOTE_MAX ? POINTER_QUOTE_MAX : (int)len;
    return error_set(err, ASIDE_ERR_INVALID, "bad JSON pointer: \"%.*s%s\": %s", shown, pointer,
                     (size_t)shown < len ? "..." : "", why);
}

/* Unescape the token at text[*at] (just after its "/") into out; advances *at to the next "/"
 * or the end. Returns the token's length, or SIZE_MAX on a bad "~" escape. */
static size_t unescape_token(const char *text, size_t len, size_t *at, char *out)
{
    size_t n = 0;
    size_t i = *at;
    for (; i < len && text[i] != '/'; i++) {
        if (text[i] != '~') {
            out[n++] = text[i];
            continue;
        }
        if (i + 1 == len || (text[i + 1] != '0' && text[i + 1] != '1'))
            return SIZE_MAX;
        out[n++] = text[++i] == '0' ? '~' : '/';
    }
    out[n] = '\0';
    *at = i;
    return n;
}

static size_t count_tokens(const char *pointer, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += pointer[i] == '/';
    return count;
}

static aside_status check_syntax(const char *pointer, size_t len, aside_error *err)
{
    if (len > 0 && pointer[0] != '/')
        return bad_pointer(err, pointer, len, "must be empty or start with \"/\"");
    if (memchr(pointer, '\0', len))
        return bad_pointer(err, pointer, len, "holds a NUL byte");
    if (!value_utf8_valid(pointer, len))
        return bad_pointer(err, pointer, len, "not valid UTF-8");
    return ASIDE_OK;
}

/* Fill p's tokens from its text; ASIDE_ERR_INVALID on a bad escape. */
static aside_status split_tokens(json_pointer *p, char *names, aside_error *err)
{
    size_t at = 0;
    for (size_t t = 0; t < p->count; t++) {
        at++; /* the "/" */
        size_t n = unescape_token(p->text, p->text_len, &at, names);
        if (n == SIZE_MAX)
            return bad_pointer(err, p->text, p->text_len,
                               "\"~\" must be followed by 0 or 1 (\"~0\" is \"~\", \"~1\" "
                               "is \"/\")");
        p->tokens[t] = (pointer_token){names, n, at};
        names += n + 1;
    }
    return ASIDE_OK;
}

aside_status json_pointer_parse(const char *pointer, size_t len, json_pointer **out,
                                aside_error *err)
{
    *out = NULL;
    aside_status status = check_syntax(pointer, len, err);
    if (status != ASIDE_OK)
        return status;
    size_t count = count_tokens(pointer, len);
    /* one block: the handle, the tokens, the text, the unescaped names (never longer) */
    size_t size = sizeof(json_pointer) + count * sizeof(pointer_token) + 2 * (len + 1);
    json_pointer *p = malloc(size);
    if (!p)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory parsing a JSON pointer");
    p->tokens = (pointer_token *)(p + 1);
    char *text = (char *)(p->tokens + count);
    memcpy(text, pointer, len);
    text[len] = '\0';
    p->text = text;
    p->text_len = len;
    p->count = count;
    status = split_tokens(p, text + len + 1, err);
    if (status != ASIDE_OK) {
        free(p);
        return status;
    }
    *out = p;
    return ASIDE_OK;
}

void json_pointer_free(json_pointer *p)
{
    free(p);
}

size_t json_pointer_count(const json_pointer *p)
{
    return p->count;
}

const char *json_pointer_token(const json_pointer *p, size_t i, size_t *len)
{
    if (len)
        *len = p->tokens[i].len;
    return p->tokens[i].name;
}

/* ---- walking ----------------------------------------------------------------------------- */

static const char *kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* The pointer's text up to and including token t, for messages. */
static int prefix_len(const json_pointer *p, size_t t)
{
    size_t end = p->tokens[t].end;
    return (int)(end > POINTER_QUOTE_MAX ? POINTER_QUOTE_MAX : end);
}

typedef enum index_kind { INDEX_NUMBER, INDEX_END, INDEX_MALFORMED } index_kind;

/* Read an array index token: digits without a leading zero, or "-" (one past the end). An
 * index too large for size_t is SIZE_MAX, which no array reaches. */
static index_kind parse_index(const pointer_token *tok, size_t *index)
{
    if (tok->len == 1 && tok->name[0] == '-')
        return INDEX_END;
    if (tok->len == 0 || (tok->len > 1 && tok->name[0] == '0'))
        return INDEX_MALFORMED;
    size_t value = 0;
    for (size_t i = 0; i < tok->len; i++) {
        unsigned digit = (unsigned)(tok->name[i] - '0');
        if (digit > 9)
            return INDEX_MALFORMED;
        value = value > (SIZE_MAX - digit) / 10 ? SIZE_MAX : value * 10 + digit;
    }
    *index = value;
    return INDEX_NUMBER;
}

static aside_status bad_index(const json_pointer *p, size_t t, aside_error *err)
{
    return error_set(err, ASIDE_ERR_INVALID,
                     "bad JSON pointer: \"%s\" at %.*s is not an array index (digits without a "
                     "leading zero)", p->tokens[t].name, prefix_len(p, t), p->text);
}

static aside_status no_element(const json_pointer *p, size_t t, size_t size, aside_error *err)
{
    return error_set(err, ASIDE_ERR_NOT_FOUND, "no element %s at %.*s: the array has %zu element%s",
                     p->tokens[t].name, prefix_len(p, t), p->text, size, size == 1 ? "" : "s");
}

/* Set *index to the element token t names in array a, which must exist. */
static aside_status existing_index(const json_pointer *p, size_t t, const json_t *a,
                                   size_t *index, aside_error *err)
{
    index_kind kind = parse_index(&p->tokens[t], index);
    if (kind == INDEX_MALFORMED)
        return bad_index(p, t, err);
    if (kind == INDEX_END || *index >= json_array_size(a))
        return no_element(p, t, json_array_size(a), err);
    return ASIDE_OK;
}

/* The child of node that token t names (borrowed). */
static aside_status step(const json_pointer *p, size_t t, json_t *node, json_t **child,
                         aside_error *err)
{
    const pointer_token *tok = &p->tokens[t];
    if (json_is_object(node)) {
        *child = json_object_getn(node, tok->name, tok->len);
        if (!*child)
            return error_set(err, ASIDE_ERR_NOT_FOUND, "no member \"%s\" at %.*s", tok->name,
                             prefix_len(p, t), p->text);
        return ASIDE_OK;
    }
    if (json_is_array(node)) {
        size_t index = 0;
        aside_status status = existing_index(p, t, node, &index, err);
        *child = status == ASIDE_OK ? json_array_get(node, index) : NULL;
        return status;
    }
    return error_set(err, ASIDE_ERR_NOT_FOUND, "cannot descend into %s at %.*s",
                     kind_name(node), prefix_len(p, t), p->text);
}

/* Follow the first depth tokens of p from doc; *out is borrowed. */
static aside_status walk(json_t *doc, const json_pointer *p, size_t depth, json_t **out,
                         aside_error *err)
{
    if (!doc)
        return error_set(err, ASIDE_ERR_NOT_FOUND, "no document to point into");
    json_t *node = doc;
    for (size_t t = 0; t < depth; t++) {
        aside_status status = step(p, t, node, &node, err);
        if (status != ASIDE_OK)
            return status;
    }
    *out = node;
    return ASIDE_OK;
}

/* ---- get, set, delete -------------------------------------------------------------------- */

aside_status json_pointer_get(json_t *doc, const char *pointer, json_t **out, aside_error *err)
{
    *out = NULL;
    json_pointer *p = NULL;
    aside_status status = json_pointer_parse(pointer, strlen(pointer), &p, err);
    if (status == ASIDE_OK)
        status = walk(doc, p, p->count, out, err);
    json_pointer_free(p);
    return status;
}

static aside_status set_member(json_t *object, const pointer_token *tok, json_t *value,
                               aside_error *err)
{
    if (json_object_setn_new(object, tok->name, tok->len, value) != 0)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory setting member \"%s\"", tok->name);
    return ASIDE_OK;
}

static aside_status set_element(const json_pointer *p, json_t *array, json_t *value,
                                aside_error *err)
{
    size_t t = p->count - 1;
    size_t index = 0;
    size_t size = json_array_size(array);
    index_kind kind = parse_index(&p->tokens[t], &index);
    if (kind == INDEX_MALFORMED) {
        json_decref(value);
        return bad_index(p, t, err);
    }
    if (kind == INDEX_NUMBER && index > size) {
        json_decref(value);
        return no_element(p, t, size, err);
    }
    int failed = kind == INDEX_END || index == size ? json_array_append_new(array, value)
                                                    : json_array_set_new(array, index, value);
    if (failed)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory setting element %s",
                         p->tokens[t].name);
    return ASIDE_OK;
}

/* Set the last token of p in its parent, which walk found; value is taken over. */
static aside_status set_in_parent(const json_pointer *p, json_t *parent, json_t *value,
                                  aside_error *err)
{
    size_t t = p->count - 1;
    if (json_is_object(parent))
        return set_member(parent, &p->tokens[t], value, err);
    if (json_is_array(parent))
        return set_element(p, parent, value, err);
    json_decref(value);
    return error_set(err, ASIDE_ERR_NOT_FOUND, "cannot set inside %s at %.*s", kind_name(parent),
                     prefix_len(p, t), p->text);
}

aside_status json_pointer_set(json_t **doc, const char *pointer, json_t *value, aside_error *err)
{
    json_pointer *p = NULL;
    aside_status status = json_pointer_parse(pointer, strlen(pointer), &p, err);
    if (status != ASIDE_OK) {
        json_decref(value);
        return status;
    }
    if (p->count == 0) {
        json_decref(*doc);
        *doc = value;
        json_pointer_free(p);
        return ASIDE_OK;
    }
    json_t *parent = NULL;
    status = walk(*doc, p, p->count - 1, &parent, err);
    if (status == ASIDE_OK)
        status = set_in_parent(p, parent, value, err);
    else
        json_decref(value);
    json_pointer_free(p);
    return status;
}

static aside_status delete_in_parent(const json_pointer *p, json_t *parent, aside_error *err)
{
    size_t t = p->count - 1;
    const pointer_token *tok = &p->tokens[t];
    if (json_is_object(parent)) {
        if (json_object_deln(parent, tok->name, tok->len) != 0)
            return error_set(err, ASIDE_ERR_NOT_FOUND, "no member \"%s\" at %.*s", tok->name,
                             prefix_len(p, t), p->text);
        return ASIDE_OK;
    }
    if (json_is_array(parent)) {
        size_t index = 0;
        aside_status status = existing_index(p, t, parent, &index, err);
        if (status == ASIDE_OK && json_array_remove(parent, index) != 0)
            status = error_set(err, ASIDE_ERR_INTERNAL, "cannot remove element %zu", index);
        return status;
    }
    return error_set(err, ASIDE_ERR_NOT_FOUND, "cannot descend into %s at %.*s",
                     kind_name(parent), prefix_len(p, t), p->text);
}

aside_status json_pointer_delete(json_t **doc, const char *pointer, aside_error *err)
{
    json_pointer *p = NULL;
    aside_status status = json_pointer_parse(pointer, strlen(pointer), &p, err);
    if (status != ASIDE_OK)
        return status;
    json_t *parent = NULL;
    if (p->count == 0)
        status = error_set(err, ASIDE_ERR_INVALID,
                           "bad JSON pointer: \"\" is the whole document, which a pointer cannot "
                           "delete (delete the key instead)");
    else
        status = walk(*doc, p, p->count - 1, &parent, err);
    if (status == ASIDE_OK)
        status = delete_in_parent(p, parent, err);
    json_pointer_free(p);
    return status;
}

/* ---- merge patch ------------------------------------------------------------------------- */

/* Merge the object patch into target, an object owned by the caller; false when out of memory. */
static bool merge_members(json_t *target, json_t *patch)
{
    const char *name;
    size_t name_len;
    json_t *value;
    json_object_keylen_foreach(patch, name, name_len, value) {
        if (json_is_null(value)) {
            json_object_deln(target, name, name_len); /* absent is fine */
            continue;
        }
        json_t *old = json_incref(json_object_getn(target, name, name_len));
        json_t *merged = json_merge_patch(old, value);
        if (!merged || json_object_setn_new(target, name, name_len, merged) != 0)
            return false;
    }
    return true;
}

json_t *json_merge_patch(json_t *target, json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (!target)
            return NULL;
    }
    if (!merge_members(target, patch)) {
        json_decref(target);
        return NULL;
    }
    return target;
}
