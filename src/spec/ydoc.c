/* ydoc.c -- a YAML file as a tree of nodes, read with precise errors (ydoc.h).
 *
 * Walking a finished tree, rather than libyaml's event stream, lets a check point anywhere (a
 * duplicate names the line of the first one) and keeps every reader free of parser state.
 * Scalars are read by their text whatever their YAML tag: "yes" is a boolean where a boolean
 * is expected and a name where a name is. Aliases share nodes, so an alias bomb costs nothing
 * more than its nodes; the caller bounds the text's size.
 *
 * Untrusted input: the text is an operator's file. libyaml checks its syntax and encoding (a
 * reader error comes as a byte offset, turned into a line and column here). libyaml 0.2.5
 * builds its tree without recursion, but its scanner slows down with every level of nesting
 * (100,000 nested "[" take a minute), so a text nested deeper than YDOC_MAX_DEPTH is refused
 * first, from libyaml's events, which stop there. Every node is checked for its kind before
 * its contents are read, and a scalar holding a NUL is refused, so a value is never cut
 * short. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spec/ydoc.h"
#include "util/util.h"

/* ---- reporting ---------------------------------------------------------------------------- */

/* Report "name:line:column: message" (the first report wins) and mark the read failed. */
void ydoc_fail(ydoc *r, yaml_mark_t mark, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    char message[ASIDE_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    error_set(r->err, ASIDE_ERR_INVALID, "%s:%zu:%zu: %s", r->name, mark.line + 1,
              mark.column + 1, message);
    if (r->err)
        snprintf(r->err->code, sizeof r->err->code, "%s", r->error_code);
}

int ydoc_line(const yaml_node_t *node) { return (int)node->start_mark.line + 1; }

/* ---- scalars ------------------------------------------------------------------------------ */

yaml_node_t *ydoc_node(ydoc *r, int index) { return yaml_document_get_node(&r->doc, index); }

static const char *scalar_text(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

/* True for YAML's null: an empty plain scalar, "~" or "null". */
bool ydoc_is_null(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *t = scalar_text(node);
    return !*t || strcmp(t, "~") == 0 || strcasecmp(t, "null") == 0;
}

/* The text of a scalar field; NULL (reported) for a mapping, a sequence or null. */
const char *ydoc_scalar(ydoc *r, const yaml_node_t *node, const char *field)
{
    if (node->type != YAML_SCALAR_NODE) {
        YDOC_FAIL(r, node, "%s must be a single value, not a %s", field,
                  node->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return NULL;
    }
    if (ydoc_is_null(node)) {
        YDOC_FAIL(r, node, "%s has no value", field);
        return NULL;
    }
    if (strlen(scalar_text(node)) != node->data.scalar.length) {
        YDOC_FAIL(r, node, "%s holds a NUL character", field);
        return NULL;
    }
    return scalar_text(node);
}

/* A copy of a scalar field's text into *out; false when reported. */
bool ydoc_text(ydoc *r, const yaml_node_t *node, const char *field, char **out)
{
    const char *text = ydoc_scalar(r, node, field);
    if (!text)
        return false;
    if (!(*out = strdup(text))) {
        YDOC_FAIL(r, node, "out of memory");
        return false;
    }
    return true;
}

bool ydoc_bool(ydoc *r, const yaml_node_t *node, const char *field, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    const char *text = ydoc_scalar(r, node, field);
    if (!text)
        return false;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *out = strcasecmp(text, yes[i]) == 0;
            return true;
        }
    }
    YDOC_FAIL(r, node, "%s must be true or false, not \"%s\"", field, text);
    return false;
}

bool ydoc_int(ydoc *r, const yaml_node_t *node, const char *field, long min, long max,
              long *out)
{
    const char *text = ydoc_scalar(r, node, field);
    if (!text)
        return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        YDOC_FAIL(r, node, "%s must be a whole number from %ld to %ld, not \"%s\"", field, min, max,
                  text);
        return false;
    }
    *out = v;
    return true;
}

/* Milliseconds per unit of a duration's suffix; 0 for an unknown suffix. */
static uint64_t unit_ms(const char *suffix)
{
    static const struct {
        const char *name;
        uint64_t    ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
                 {"d", 86400000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(suffix, units[i].name) == 0)
            return units[i].ms;
    }
    return 0;
}

/* A duration: a whole number of seconds, or one with a unit (500ms, 30s, 15m, 1h, 2d). 0 is
 * "never". */
bool ydoc_duration(ydoc *r, const yaml_node_t *node, const char *field, uint64_t *out_ms)
{
    const char *text = ydoc_scalar(r, node, field);
    if (!text)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long n = isdigit((unsigned char)text[0]) ? strtoull(text, &end, 10) : 0;
    uint64_t per = end ? unit_ms(end) : 0;
    if (!end || errno || !per || n > YDOC_MAX_DURATION_MS / per) {
        YDOC_FAIL(r, node, "%s: \"%s\" is not a duration (a whole number of seconds, or one with "
                  "a unit: 500ms, 30s, 15m, 1h, 2d; at most 366d)", field, text);
        return false;
    }
    *out_ms = n * per;
    return true;
}

/* A choice among allowed words. */
bool ydoc_choice(ydoc *r, const yaml_node_t *node, const char *field,
                 const char *const *allowed, const char **out)
{
    const char *text = ydoc_scalar(r, node, field);
    if (!text)
        return false;
    for (size_t i = 0; allowed[i]; i++) {
        if (strcmp(text, allowed[i]) == 0) {
            *out = allowed[i];
            return true;
        }
    }
    char list[128] = "";
    for (size_t i = 0; allowed[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 allowed[i]);
    YDOC_FAIL(r, node, "%s must be one of %s, not \"%s\"", field, list, text);
    return false;
}


/* A choice, copied. */
bool ydoc_choice_copy(ydoc *r, const yaml_node_t *node, const char *field,
                      const char *const *allowed, char **out)
{
    const char *word = NULL;
    if (!ydoc_choice(r, node, field, allowed, &word))
        return false;
    free(*out);
    if (!(*out = strdup(word))) {
        YDOC_FAIL(r, node, "out of memory");
        return false;
    }
    return true;
}

/* ---- mappings ----------------------------------------------------------------------------- */

bool ydoc_mapping(ydoc *r, const yaml_node_t *node, const char *what)
{
    if (node->type == YAML_MAPPING_NODE)
        return true;
    YDOC_FAIL(r, node, "%s must be a mapping (field: value)", what);
    return false;
}

static void known_list(const char *const *known, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; known[i]; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? ", " : "", known[i]);
}

/* Sort the fields of a mapping into values[i] for known[i] (NULL when absent): every key must
 * be a known field, given once. */
bool ydoc_fields(ydoc *r, const yaml_node_t *map, const char *what,
                 const char *const *known, yaml_node_t **values)
{
    if (!ydoc_mapping(r, map, what))
        return false;
    size_t n = 0;
    yaml_node_t *keys[YDOC_MAX_FIELDS];
    while (known[n] && n < YDOC_MAX_FIELDS)
        values[n++] = NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *key = ydoc_node(r, p->key);
        const char *name = key && key->type == YAML_SCALAR_NODE ? scalar_text(key) : NULL;
        size_t i = 0;
        while (name && i < n && strcmp(known[i], name) != 0)
            i++;
        if (!name) {
            YDOC_FAIL(r, key, "a field's name in %s must be a single value", what);
            return false;
        }
        if (i == n) {
            char list[256];
            known_list(known, list, sizeof list);
            YDOC_FAIL(r, key, "unknown field \"%s\" in %s (known: %s)", name, what, list);
            return false;
        }
        if (values[i]) {
            YDOC_FAIL(r, key, "duplicate field \"%s\" (first at line %d)", name,
                      ydoc_line(keys[i]));
            return false;
        }
        keys[i] = key;
        values[i] = ydoc_node(r, p->value);
    }
    return true;
}

bool ydoc_sequence(ydoc *r, const yaml_node_t *node, const char *what)
{
    if (node->type == YAML_SEQUENCE_NODE)
        return true;
    YDOC_FAIL(r, node, "%s must be a list (items starting with \"- \")", what);
    return false;
}

size_t ydoc_item_count(const yaml_node_t *list)
{
    return (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
}

void *ydoc_array(ydoc *r, const yaml_node_t *list, size_t size)
{
    size_t n = ydoc_item_count(list);
    void *items = calloc(n ? n : 1, size);
    if (!items)
        YDOC_FAIL(r, list, "out of memory");
    return items;
}

bool ydoc_each(ydoc *r, const yaml_node_t *list, size_t *count, ydoc_item_reader read,
               void *ctx)
{
    size_t n = ydoc_item_count(list);
    for (size_t i = 0; i < n; i++) {
        (*count)++;
        if (!read(r, ydoc_node(r, list->data.sequence.items.start[i]), i, ctx))
            return false;
    }
    return true;
}

/* ---- loading ------------------------------------------------------------------------------ */

/* Line and column of byte offset in text, for errors libyaml gives as an offset. */
static yaml_mark_t mark_of_offset(const char *text, size_t len, size_t offset)
{
    yaml_mark_t mark = {0, 0, 0};
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            mark.line++;
            mark.column = 0;
        } else {
            mark.column++;
        }
    }
    return mark;
}

static void fail_syntax(ydoc *r, const yaml_parser_t *p, const char *text, size_t len)
{
    yaml_mark_t mark = p->error == YAML_READER_ERROR
                           ? mark_of_offset(text, len, p->problem_offset) : p->problem_mark;
    const char *problem = p->problem ? p->problem : "cannot be read";
    if (p->context)
        ydoc_fail(r, mark, "invalid YAML: %s %s (line %zu)", problem, p->context,
                  p->context_mark.line + 1);
    else
        ydoc_fail(r, mark, "invalid YAML: %s", problem);
}

/* The nesting an event opens (+1) or closes (-1). */
static int nesting_step(yaml_event_type_t type)
{
    switch (type) {
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: return 1;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: return -1;
    default: return 0;
    }
}

/* False (reported) when the text nests deeper than YDOC_MAX_DEPTH; read as events, stopping at
 * the first level too deep, before libyaml builds any tree. A syntax error ends the walk
 * quietly: the load reports it. */
static bool depth_ok(ydoc *r, const char *text, size_t len)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return true; /* the load reports it */
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int depth = 0;
    bool ok = true, done = false;
    while (ok && !done) {
        yaml_event_t event;
        if (!yaml_parser_parse(&parser, &event))
            break;
        depth += nesting_step(event.type);
        done = event.type == YAML_STREAM_END_EVENT;
        if (depth > YDOC_MAX_DEPTH) {
            ydoc_fail(r, event.start_mark, "nested more than %d levels deep", YDOC_MAX_DEPTH);
            ok = false;
        }
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    return ok;
}

bool ydoc_load(ydoc *r, const char *text, size_t len, const char *empty_message,
               const char *second_message)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    yaml_mark_t start = {0, 0, 0};
    if (!depth_ok(r, text, len))
        return false;
    if (!yaml_parser_initialize(&parser)) {
        ydoc_fail(r, start, "out of memory");
        return false;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    bool ok = yaml_parser_load(&parser, &r->doc) != 0;
    if (!ok)
        fail_syntax(r, &parser, text, len);
    else if (!yaml_document_get_root_node(&r->doc))
        ydoc_fail(r, start, "%s", empty_message);
    else if (!yaml_parser_load(&parser, &extra))
        fail_syntax(r, &parser, text, len);
    else {
        yaml_node_t *second = yaml_document_get_root_node(&extra);
        if (second)
            ydoc_fail(r, extra.start_mark, "%s", second_message);
        yaml_document_delete(&extra);
    }
    yaml_parser_delete(&parser);
    if (r->failed && ok)
        yaml_document_delete(&r->doc);
    r->loaded = !r->failed;
    return r->loaded;
}

yaml_node_t *ydoc_root(ydoc *r) { return yaml_document_get_root_node(&r->doc); }

void ydoc_close(ydoc *r)
{
    if (r->loaded)
        yaml_document_delete(&r->doc);
    r->loaded = false;
}
