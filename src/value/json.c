/* json.c -- the JSON type, and the limits every JSON text from outside is held to.
 *
 * A ".json" key is parsed once, when it enters the cache, with jansson (any JSON text, scalars
 * included, as RFC 8259 allows; duplicate keys are accepted as most parsers do). A document that
 * does not parse is refused with the parser's line, column and reason, and nothing is cached.
 * The parsed tree is thrown away: the cache keeps the bytes, which it serves as they are, or
 * embeds unchanged in a JSON envelope, since they are known to be valid.
 *
 * Depth. jansson's parser, serialiser, copy, comparison and free are recursive: one C stack
 * frame (or a few) per level of nesting, so a document nested deep enough overflows a thread's
 * stack and kills the process. Its parser stops at JSON_PARSER_MAX_DEPTH (2048 in jansson
 * 2.14, "maximum parsing depth reached"); nothing stops a tree built by edits (json_set one
 * level deeper at a time). So nothing the cache takes may nest deeper than a limit
 * (value_context.json_max_depth, default VALUE_JSON_DEFAULT_DEPTH): every text from outside is
 * parsed by value_json_parse, every value an edit adds is measured by value_json_check_depth,
 * without recursion, before it is added. A refusal is ASIDE_ERR_INVALID with err->code
 * "too_deep", also for a text deeper than jansson's own limit, and nothing changes.
 *
 * The limit may be raised to VALUE_JSON_MAX_DEPTH at most, which leaves room under jansson's
 * parser limit for the journal's record around a value (a record must parse back on replay),
 * and whose recursive walks need under 1 MiB of stack, about 350 bytes a level
 * (tests/value/test_json_depth.c runs each of them at that depth on a thread with a 1 MiB
 * stack); the server's threads have glibc's default stack (RLIMIT_STACK, 8 MiB). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "value.h"

_Static_assert(VALUE_JSON_MAX_DEPTH + VALUE_JSON_RECORD_LEVELS <= JSON_PARSER_MAX_DEPTH,
               "a journal record of the deepest value must parse back");

static bool json_claims_key(const char *key, size_t len)
{
    return value_key_has_suffix(key, len, ".json");
}

size_t value_json_max_depth(const value_context *ctx)
{
    return ctx && ctx->json_max_depth ? ctx->json_max_depth : VALUE_JSON_DEFAULT_DEPTH;
}

aside_status value_too_deep(aside_error *err, size_t limit)
{
    aside_status st = error_set(err, ASIDE_ERR_INVALID, "JSON nested more than %zu levels deep "
                                "(the JSON depth limit)", limit);
    if (err)
        snprintf(err->code, sizeof err->code, "too_deep");
    return st;
}

/* ---- measuring depth without recursion ------------------------------------------------------ */

/* A container being walked, and where its walk is. */
typedef struct walk_level {
    const json_t *node;
    size_t        index; /* an array's next element */
    void         *iter;  /* an object's next member (NULL: done) */
} walk_level;

static bool is_container(const json_t *v) { return json_is_array(v) || json_is_object(v); }

static walk_level level_of(const json_t *node)
{
    return (walk_level){node, 0, json_is_object(node) ? json_object_iter((json_t *)node) : NULL};
}

/* The next child of the level's container, NULL when there is none left. */
static const json_t *next_child(walk_level *l)
{
    if (json_is_array(l->node))
        return l->index < json_array_size(l->node) ? json_array_get(l->node, l->index++) : NULL;
    if (!l->iter)
        return NULL;
    const json_t *child = json_object_iter_value(l->iter);
    l->iter = json_object_iter_next((json_t *)l->node, l->iter);
    return child;
}

aside_status value_json_check_depth(const json_t *v, size_t above, size_t limit,
                                    aside_error *err)
{
    if (above > limit || (above == limit && is_container(v)))
        return value_too_deep(err, limit);
    if (!is_container(v))
        return ASIDE_OK;
    size_t room = limit - above; /* containers v may nest, itself included: at least 1 */
    walk_level *stack = malloc(room * sizeof *stack);
    if (!stack)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory measuring a JSON value");
    size_t depth = 1;
    stack[0] = level_of(v);
    aside_status st = ASIDE_OK;
    while (depth > 0) {
        const json_t *child = next_child(&stack[depth - 1]);
        if (!child)
            depth--;
        else if (is_container(child) && depth == room) {
            st = value_too_deep(err, limit);
            break;
        } else if (is_container(child))
            stack[depth++] = level_of(child);
    }
    free(stack);
    return st;
}

/* ---- UTF-8 ---------------------------------------------------------------------------------- */

/* Length of the UTF-8 sequence starting at s (at most left bytes), or 0 if it is malformed. */
static size_t utf8_sequence(const unsigned char *s, size_t left)
{
    size_t n = s[0] < 0x80 ? 1 : (s[0] >> 5) == 0x6 ? 2 : (s[0] >> 4) == 0xe ? 3
             : (s[0] >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || n > left)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    uint32_t c = n == 1 ? s[0] : n == 2 ? s[0] & 0x1fu : n == 3 ? s[0] & 0x0fu : s[0] & 0x07u;
    for (size_t i = 1; i < n; i++)
        c = (c << 6) | (s[i] & 0x3fu);
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < least[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0; /* overlong, past Unicode, or a surrogate */
    return n;
}

bool value_utf8_valid(const char *s, size_t len)
{
    for (size_t i = 0, n; i < len; i += n)
        if ((n = utf8_sequence((const unsigned char *)s + i, len - i)) == 0)
            return false;
    return true;
}

/* ---- parsing text from outside -------------------------------------------------------------- */

aside_status value_json_parse(const void *data, size_t size, size_t flags, size_t limit,
                              json_t **out, aside_error *err)
{
    json_error_t parse_error;
    *out = json_loadb(data, size, flags, &parse_error);
    if (!*out && json_error_code(&parse_error) == json_error_stack_overflow)
        return value_too_deep(err, limit);
    if (!*out)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "invalid JSON at line %d, column %d: %s",
                         parse_error.line, parse_error.column, parse_error.text);
    aside_status st = value_json_check_depth(*out, 0, limit, err);
    if (st != ASIDE_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return st;
}

static aside_status json_check(const value_context *ctx, const void *data, size_t size,
                               aside_error *err)
{
    json_t *doc = NULL;
    aside_status st = value_json_parse(data, size, JSON_DECODE_ANY, value_json_max_depth(ctx),
                                       &doc, err);
    json_decref(doc);
    return st;
}

static const char *json_content_type(const char *key)
{
    (void)key;
    return "application/json";
}

const value_kind value_kind_json = {ASIDE_TYPE_JSON, "json", json_claims_key, json_check,
                                    json_content_type};
