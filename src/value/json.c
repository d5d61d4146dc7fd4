/* json.c -- the JSON type, and the limits every JSON text from outside is held to.
 *
 * A ".json" key is checked once, when it enters the cache, by a scan of its text that takes
 * what jansson takes (any JSON text, scalars included, as RFC 8259 allows; duplicate keys are
 * accepted as most parsers do) without building a tree (value_json_validate, below). A document
 * that does not parse is refused with the line, column and reason, and nothing is cached. The
 * cache keeps the bytes, which it serves as they are, or embeds unchanged in a JSON envelope,
 * since they are known to be valid. A tree is built only to edit a document (op.c), and is
 * counted at what it costs (value_json_tree_bytes), 10 to 40 times the text.
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
#include <errno.h>
#include <jansson.h>
#include <math.h>
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

/* ---- what a tree costs ---------------------------------------------------------------------- */

uint64_t value_json_tree_bytes(const json_t *v)
{
    uint64_t bytes = 0;
    size_t cap = 64, depth = 0;
    walk_level *stack = malloc(cap * sizeof *stack);
    const json_t *node = v;
    while (node) {
        bytes += VALUE_JSON_NODE_BYTES;
        if (json_is_string(node))
            bytes += json_string_length(node) + 1 + VALUE_JSON_ALLOC_BYTES;
        else if (json_is_array(node))
            bytes += json_array_size(node) * VALUE_JSON_SLOT_BYTES;
        else if (json_is_object(node))
            bytes += json_object_size(node) * VALUE_JSON_MEMBER_BYTES;
        if (is_container(node) && stack) {
            if (depth == cap) {
                walk_level *more = realloc(stack, 2 * cap * sizeof *stack);
                if (!more)
                    break; /* an estimate: what was counted so far */
                stack = more;
                cap *= 2;
            }
            stack[depth++] = level_of(node);
        }
        node = NULL;
        while (depth > 0 && !(node = next_child(&stack[depth - 1])))
            depth--;
    }
    free(stack);
    return bytes;
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

/* ---- validating text without building it ---------------------------------------------------
 *
 * A put, write or load of a ".json" key only needs to know the text is JSON jansson would take:
 * building jansson's tree for that costs 10 to 40 times the text (a node of 30 to 60 bytes,
 * plus malloc's own, for every number of two bytes), so several large documents arriving at
 * once would take many times the memory budget. The check below walks the text once, keeping
 * only one byte per open array or object, and refuses what jansson refuses: bad syntax, bytes
 * that are not UTF-8, control characters or "\u0000" in strings, lone surrogate escapes,
 * integers past 64 bits, reals that overflow; and, like value_json_parse, nesting past the
 * limit ("too_deep"). tests/value/test_json_validate.c holds it to jansson's answers. */

typedef struct scan {
    const unsigned char *s;
    size_t               len, pos;
} scan;

static aside_status scan_fail(const scan *p, aside_error *err, const char *why)
{
    size_t line = 1, column = 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++, column++)
        if (p->s[i] == '\n') {
            line++;
            column = 0;
        }
    return error_set(err, ASIDE_ERR_BAD_VALUE, "invalid JSON at line %zu, column %zu: %s", line,
                     column, why);
}

static void scan_space(scan *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

/* Four hex digits at p->pos into *u; false when they are not there. */
static bool scan_hex4(scan *p, unsigned *u)
{
    if (p->len - p->pos < 4)
        return false;
    *u = 0;
    for (int i = 0; i < 4; i++) {
        int d = text_hex_digit(p->s[p->pos + i]);
        if (d < 0)
            return false;
        *u = *u << 4 | (unsigned)d;
    }
    p->pos += 4;
    return true;
}

/* A "\u" escape (after the "u"): a code point, or a surrogate pair's two escapes. */
static aside_status scan_unicode(scan *p, aside_error *err)
{
    unsigned u, low;
    if (!scan_hex4(p, &u))
        return scan_fail(p, err, "invalid \\u escape");
    if (u == 0)
        return scan_fail(p, err, "\\u0000 is not allowed");
    if (u >= 0xdc00 && u <= 0xdfff)
        return scan_fail(p, err, "invalid Unicode escape (a lone low surrogate)");
    if (u < 0xd800 || u > 0xdbff)
        return ASIDE_OK;
    if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
        return scan_fail(p, err, "invalid Unicode escape (a lone high surrogate)");
    p->pos += 2;
    if (!scan_hex4(p, &low) || low < 0xdc00 || low > 0xdfff)
        return scan_fail(p, err, "invalid Unicode escape (a lone high surrogate)");
    return ASIDE_OK;
}

static aside_status scan_string(scan *p, aside_error *err)
{
    p->pos++; /* the opening quote */
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            return ASIDE_OK;
        }
        if (c < 0x20)
            return scan_fail(p, err, "control character in a string");
        if (c == '\\') {
            if (++p->pos >= p->len)
                break;
            c = p->s[p->pos++];
            if (c == 'u') {
                aside_status st = scan_unicode(p, err);
                if (st != ASIDE_OK)
                    return st;
            } else if (!strchr("\"\\/bfnrt", c) || c == 0)
                return scan_fail(p, err, "invalid escape");
            continue;
        }
        size_t n = utf8_sequence(p->s + p->pos, p->len - p->pos);
        if (n == 0)
            return scan_fail(p, err, "invalid UTF-8 in a string");
        p->pos += n;
    }
    return scan_fail(p, err, "premature end of input in a string");
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static size_t scan_digits(scan *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && is_digit(p->s[p->pos]))
        p->pos++;
    return p->pos - start;
}

/* True if the number text (len bytes) is as large as jansson takes: an integer within 64 bits,
 * a real that does not overflow. */
static bool number_in_range(const unsigned char *text, size_t len, bool real)
{
    char small[64], *copy = len < sizeof small ? small : malloc(len + 1);
    if (!copy)
        return true; /* cannot tell: the text is well formed, let a later parse judge */
    memcpy(copy, text, len);
    copy[len] = '\0';
    errno = 0;
    char *end;
    bool ok;
    if (real) {
        double d = strtod(copy, &end);
        ok = !(errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL));
    } else {
        (void)strtoll(copy, &end, 10);
        ok = errno != ERANGE;
    }
    if (copy != small)
        free(copy);
    return ok;
}

static aside_status scan_number(scan *p, aside_error *err)
{
    size_t start = p->pos;
    bool real = false;
    if (p->s[p->pos] == '-')
        p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '0')
        p->pos++;
    else if (scan_digits(p) == 0)
        return scan_fail(p, err, "invalid number");
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        real = true;
        if (scan_digits(p) == 0)
            return scan_fail(p, err, "invalid number");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        real = true;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (scan_digits(p) == 0)
            return scan_fail(p, err, "invalid number");
    }
    if (!number_in_range(p->s + start, p->pos - start, real))
        return scan_fail(p, err, real ? "real number overflow" : "too big integer");
    return ASIDE_OK;
}

static aside_status scan_word(scan *p, const char *word, aside_error *err)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return scan_fail(p, err, "invalid token");
    p->pos += n;
    return ASIDE_OK;
}

/* A scalar at p->pos (the caller has skipped space and seen no '[' or '{'). */
static aside_status scan_scalar(scan *p, aside_error *err)
{
    if (p->pos >= p->len)
        return scan_fail(p, err, "premature end of input");
    unsigned char c = p->s[p->pos];
    return c == '"'                ? scan_string(p, err)
         : c == '-' || is_digit(c) ? scan_number(p, err)
         : c == 't'                ? scan_word(p, "true", err)
         : c == 'f'                ? scan_word(p, "false", err)
         : c == 'n'                ? scan_word(p, "null", err)
                                   : scan_fail(p, err, "invalid token");
}

/* After a value inside the innermost open container (open[depth - 1]): a ',' (then another
 * member), or its closing bracket. *more says whether a value follows. */
static aside_status scan_after_value(scan *p, unsigned char *open, size_t *depth, bool *more,
                                     aside_error *err)
{
    for (;;) {
        scan_space(p);
        if (*depth == 0) {
            *more = false;
            return p->pos == p->len ? ASIDE_OK : scan_fail(p, err, "end of input expected");
        }
        if (p->pos >= p->len)
            return scan_fail(p, err, "premature end of input");
        unsigned char c = p->s[p->pos++];
        if (c == ',') {
            *more = true;
            return ASIDE_OK;
        }
        if (c != open[*depth - 1])
            return scan_fail(p, err, open[*depth - 1] == ']' ? "']' or ',' expected"
                                                             : "'}' or ',' expected");
        (*depth)--;
    }
}

/* An object's member name and its ':' (after '{' or ','). */
static aside_status scan_member_name(scan *p, aside_error *err)
{
    scan_space(p);
    if (p->pos >= p->len || p->s[p->pos] != '"')
        return scan_fail(p, err, "string or '}' expected");
    aside_status st = scan_string(p, err);
    scan_space(p);
    if (st == ASIDE_OK && (p->pos >= p->len || p->s[p->pos++] != ':'))
        return scan_fail(p, err, "':' expected");
    return st;
}

aside_status value_json_validate(const void *data, size_t size, size_t limit, aside_error *err)
{
    scan p = {data, size, 0};
    unsigned char *open = malloc(limit ? limit : 1); /* each open container's closing bracket */
    if (!open)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory checking a JSON value");
    size_t depth = 0;
    aside_status st = ASIDE_OK;
    bool more = true, name_next = false;
    while (st == ASIDE_OK && more) {
        if (name_next && (st = scan_member_name(&p, err)) != ASIDE_OK)
            break;
        scan_space(&p);
        unsigned char c = p.pos < p.len ? p.s[p.pos] : 0;
        if (c == '[' || c == '{') {
            if (depth == limit) {
                st = value_too_deep(err, limit);
                break;
            }
            p.pos++;
            open[depth++] = c == '[' ? ']' : '}';
            scan_space(&p);
            bool empty = p.pos < p.len && p.s[p.pos] == open[depth - 1];
            if (!empty) {
                name_next = c == '{';
                continue;
            } /* else scan_after_value closes it */
        } else if ((st = scan_scalar(&p, err)) != ASIDE_OK)
            break;
        st = scan_after_value(&p, open, &depth, &more, err);
        name_next = more && depth > 0 && open[depth - 1] == '}';
    }
    free(open);
    return st;
}

static aside_status json_check(const value_context *ctx, const void *data, size_t size,
                               aside_error *err)
{
    return value_json_validate(data, size, value_json_max_depth(ctx), err);
}

static const char *json_content_type(const char *key)
{
    (void)key;
    return "application/json";
}

const value_kind value_kind_json = {ASIDE_TYPE_JSON, "json", json_claims_key, json_check,
                                    json_content_type};
