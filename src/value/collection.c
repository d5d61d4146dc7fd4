/* collection.c -- lists, sets, maps, counters and editable JSON documents.
 *
 * A collection is the mutable memory form of a value the cache alone holds: a jansson tree the
 * operations change in place. It knows nothing of keys, locks or disks; the cache runs one
 * operation at a time on it and journals the operation, which replays to the same state
 * because every operation is deterministic.
 *
 *   list     a JSON array; pushes and pops at both ends, Python slice semantics for ranges
 *   set      a JSON object from each member's canonical text (compact, sorted keys) to the
 *            member, so membership is one hash lookup; listed in the order of that text
 *   map      a JSON object
 *   counter  a JSON integer (64 bits; an increment that would overflow is refused)
 *   json     any JSON document, edited at JSON Pointers (json_pointer.c)
 *
 * Every operation checks its arguments before it changes anything, so a refused operation
 * leaves the collection as it was. Arithmetic that would pass 64-bit integers, or reach an
 * infinite real, is refused (err->code "overflow"). Nothing an operation adds may make the
 * collection, as JSON, nest deeper than the depth limit collection_apply is given (json.c
 * says why): a list's member sits one level down, a value set at a JSON Pointer of n tokens n
 * levels down, and a merge patch never makes a document deeper than the deeper of the
 * document and the patch, so measuring what is added is enough. The byte figure is an
 * estimate of the memory held: the members' JSON text plus a fixed cost per member, kept up to
 * date by each change; a document's is its tree's cost (value_json_tree_bytes: per node,
 * string, slot and member), measured after each change.
 *
 * One file of about a thousand lines on purpose: the operation table and every operation share
 * the private struct collection and the one rule that a refused operation changes nothing;
 * the operations of one type are a few dozen lines each, and JSON Pointer and merge patch
 * already live in json_pointer.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "value.h"

enum {
    MEMBER_OVERHEAD_BYTES = 64, /* a jansson node and its slot, roughly */
    COLLECTION_BASE_BYTES = 96
};

struct collection {
    aside_value_type type;
    json_t          *root;
    uint64_t         bytes;
    size_t           max_depth; /* the depth limit of the operation running (collection_apply) */
    bool             deferred; /* a document's measure waits for collection_defer_measure */
};

/* Documents measured whole (serialised to count their bytes), for tests of replay's work. */
static _Atomic uint64_t measurements;

/* ---- values and arguments ----------------------------------------------------------------- */

static uint64_t text_bytes(const json_t *v)
{
    return (uint64_t)json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

static uint64_t member_bytes(const json_t *v) { return text_bytes(v) + MEMBER_OVERHEAD_BYTES; }

/* The canonical text of a set member (NULL when out of memory). */
static char *canonical(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static aside_status bad_request(aside_error *err, const char *op, const char *why)
{
    return error_set(err, ASIDE_ERR_INVALID, "%s: %s", op, why);
}

static aside_status not_found(aside_error *err, const char *code, const char *fmt, const char *a)
{
    aside_status st = error_set(err, ASIDE_ERR_NOT_FOUND, fmt, a);
    if (err)
        snprintf(err->code, sizeof err->code, "%s", code);
    return st;
}

static aside_status no_memory(aside_error *err) { return error_set(err, ASIDE_ERR_NOMEM, "out of memory"); }

static aside_status overflow(aside_error *err, const char *op, const char *what)
{
    aside_status st = error_set(err, ASIDE_ERR_INVALID, "%s: %s", op, what);
    if (err)
        snprintf(err->code, sizeof err->code, "overflow");
    return st;
}

/* Each of values (an array) may become a member of c, one level below its root. */
static aside_status check_members_depth(const collection *c, json_t *values, aside_error *err)
{
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v) {
        aside_status st = value_json_check_depth(v, 1, c->max_depth, err);
        if (st != ASIDE_OK)
            return st;
    }
    return ASIDE_OK;
}

/* The values an operation adds: "value" (one) or "values" (an array of them), borrowed. */
static aside_status arg_values(const char *op, json_t *args, json_t **values, aside_error *err)
{
    json_t *one = json_object_get(args, "value"), *many = json_object_get(args, "values");
    if (one && many)
        return bad_request(err, op, "give \"value\" or \"values\", not both");
    if (many && !json_is_array(many))
        return bad_request(err, op, "\"values\" must be a JSON array");
    if (!one && !many)
        return bad_request(err, op, "missing argument \"value\" (or \"values\": an array)");
    *values = many ? json_incref(many) : json_pack("[O]", one);
    return *values ? ASIDE_OK : no_memory(err);
}

static aside_status arg_int(const char *op, json_t *args, const char *name, json_int_t fallback,
                            json_int_t *out, aside_error *err)
{
    json_t *v = json_object_get(args, name);
    if (!v || json_is_null(v)) {
        *out = fallback;
        return ASIDE_OK;
    }
    if (!json_is_integer(v)) {
        char why[96];
        snprintf(why, sizeof why, "\"%s\" must be an integer", name);
        return bad_request(err, op, why);
    }
    *out = json_integer_value(v);
    return ASIDE_OK;
}

static aside_status arg_string(const char *op, json_t *args, const char *name, const char **out,
                               aside_error *err)
{
    json_t *v = json_object_get(args, name);
    if (json_is_string(v)) {
        *out = json_string_value(v);
        return ASIDE_OK;
    }
    char why[96];
    snprintf(why, sizeof why, v ? "\"%s\" must be a string" : "missing argument \"%s\"", name);
    return bad_request(err, op, why);
}

/* "end": "back" (default) or "front". */
static aside_status arg_front(const char *op, json_t *args, bool *front, aside_error *err)
{
    json_t *v = json_object_get(args, "end");
    const char *end = json_is_string(v) ? json_string_value(v) : v ? "" : "back";
    *front = strcmp(end, "front") == 0;
    if (*front || strcmp(end, "back") == 0)
        return ASIDE_OK;
    return bad_request(err, op, "\"end\" must be \"back\" or \"front\"");
}

/* Python's slice bounds: negatives count from the end, both clamped to [0, len]. */
static size_t slice_bound(json_int_t at, size_t len)
{
    if (at < 0)
        at += (json_int_t)len;
    if (at < 0)
        return 0;
    return (size_t)at > len ? len : (size_t)at;
}

static aside_status arg_slice(const char *op, json_t *args, size_t len, size_t *start,
                              size_t *stop, aside_error *err)
{
    json_int_t a = 0, b = (json_int_t)len;
    aside_status st = arg_int(op, args, "start", 0, &a, err);
    if (st == ASIDE_OK)
        st = arg_int(op, args, "stop", (json_int_t)len, &b, err);
    *start = slice_bound(a, len);
    *stop = slice_bound(b, len);
    if (*stop < *start)
        *stop = *start;
    return st;
}

/* ---- lists -------------------------------------------------------------------------------- */

static aside_status list_push(collection *c, const char *op, json_t *args, json_t **result,
                              aside_error *err)
{
    bool front = false;
    json_t *values = NULL;
    aside_status st = arg_front(op, args, &front, err);
    if (st == ASIDE_OK)
        st = arg_values(op, args, &values, err);
    if (st == ASIDE_OK && (st = check_members_depth(c, values, err)) != ASIDE_OK)
        json_decref(values);
    if (st != ASIDE_OK)
        return st;
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v) {
        if ((front ? json_array_insert(c->root, 0, v) : json_array_append(c->root, v)) != 0) {
            json_decref(values);
            return no_memory(err);
        }
        c->bytes += member_bytes(v);
    }
    json_decref(values);
    *result = json_integer((json_int_t)json_array_size(c->root));
    return ASIDE_OK;
}

static json_t *list_take(collection *c, bool front)
{
    size_t at = front ? 0 : json_array_size(c->root) - 1;
    json_t *v = json_incref(json_array_get(c->root, at));
    c->bytes -= member_bytes(v);
    json_array_remove(c->root, at);
    return v;
}

static aside_status list_pop(collection *c, const char *op, json_t *args, json_t **result,
                             aside_error *err)
{
    bool front = false;
    json_int_t count = 0;
    aside_status st = arg_front(op, args, &front, err);
    if (st == ASIDE_OK)
        st = arg_int(op, args, "count", 0, &count, err);
    if (st == ASIDE_OK && json_object_get(args, "count") && count < 1)
        st = bad_request(err, op, "\"count\" must be at least 1");
    if (st != ASIDE_OK)
        return st;
    if (!json_object_get(args, "count")) {
        if (json_array_size(c->root) == 0)
            return not_found(err, "empty", "%s: the list is empty", op);
        *result = list_take(c, front);
        return ASIDE_OK;
    }
    if (!(*result = json_array()))
        return no_memory(err);
    for (json_int_t i = 0; i < count && json_array_size(c->root) > 0; i++)
        json_array_append_new(*result, list_take(c, front));
    return ASIDE_OK;
}

static aside_status list_range(collection *c, const char *op, json_t *args, json_t **result,
                               aside_error *err)
{
    size_t start, stop;
    aside_status st = arg_slice(op, args, json_array_size(c->root), &start, &stop, err);
    if (st != ASIDE_OK)
        return st;
    if (!(*result = json_array()))
        return no_memory(err);
    for (size_t i = start; i < stop; i++)
        json_array_append(*result, json_array_get(c->root, i));
    return ASIDE_OK;
}

static aside_status list_length(collection *c, const char *op, json_t *args, json_t **result,
                                aside_error *err)
{
    (void)op, (void)args, (void)err;
    *result = json_integer((json_int_t)json_array_size(c->root));
    return ASIDE_OK;
}

static aside_status list_index(collection *c, const char *op, json_t *args, json_t **result,
                               aside_error *err)
{
    json_int_t at = 0;
    if (!json_object_get(args, "index"))
        return bad_request(err, op, "missing argument \"index\"");
    aside_status st = arg_int(op, args, "index", 0, &at, err);
    if (st != ASIDE_OK)
        return st;
    json_int_t len = (json_int_t)json_array_size(c->root);
    if (at < 0)
        at += len;
    if (at < 0 || at >= len)
        return not_found(err, "out_of_range", "%s: the index is out of range", op);
    *result = json_incref(json_array_get(c->root, (size_t)at));
    return ASIDE_OK;
}

static aside_status list_trim(collection *c, const char *op, json_t *args, json_t **result,
                              aside_error *err)
{
    size_t start, stop;
    aside_status st = arg_slice(op, args, json_array_size(c->root), &start, &stop, err);
    if (st != ASIDE_OK)
        return st;
    while (json_array_size(c->root) > stop)
        json_decref(list_take(c, false));
    for (size_t i = 0; i < start; i++)
        json_decref(list_take(c, true));
    *result = json_integer((json_int_t)json_array_size(c->root));
    return ASIDE_OK;
}

/* ---- sets --------------------------------------------------------------------------------- */

static aside_status set_change(collection *c, const char *op, json_t *args, json_t **result,
                               bool add, aside_error *err)
{
    json_t *values = NULL;
    aside_status st = arg_values(op, args, &values, err);
    if (st == ASIDE_OK && add && (st = check_members_depth(c, values, err)) != ASIDE_OK)
        json_decref(values);
    if (st != ASIDE_OK)
        return st;
    json_int_t changed = 0;
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v) {
        char *text = canonical(v);
        if (!text) {
            st = no_memory(err);
            break;
        }
        bool present = json_object_get(c->root, text) != NULL;
        if (add && !present && json_object_set(c->root, text, v) == 0) {
            c->bytes += member_bytes(v);
            changed++;
        } else if (!add && present) {
            c->bytes -= member_bytes(v);
            json_object_del(c->root, text);
            changed++;
        }
        free(text);
    }
    json_decref(values);
    if (st == ASIDE_OK)
        *result = json_integer(changed);
    return st;
}

static aside_status set_add(collection *c, const char *op, json_t *args, json_t **result,
                            aside_error *err)
{
    return set_change(c, op, args, result, true, err);
}

static aside_status set_remove(collection *c, const char *op, json_t *args, json_t **result,
                               aside_error *err)
{
    return set_change(c, op, args, result, false, err);
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The members of c in the order of their text, those also in every set of others (n of them)
 * when intersect, else those in none of them. */
static json_t *members_where(const collection *c, const collection *const *others, size_t n,
                             bool intersect)
{
    size_t size = json_object_size(c->root), i = 0;
    const char **texts = malloc((size ? size : 1) * sizeof *texts);
    json_t *out = json_array();
    if (!texts || !out) {
        free(texts);
        json_decref(out);
        return NULL;
    }
    const char *text;
    json_t *v;
    json_object_foreach(c->root, text, v) {
        bool keep = true;
        for (size_t k = 0; k < n && keep; k++)
            keep = (json_object_get(others[k]->root, text) != NULL) == intersect;
        if (keep)
            texts[i++] = text;
    }
    qsort(texts, i, sizeof *texts, by_text);
    for (size_t k = 0; k < i; k++)
        json_array_append(out, json_object_get(c->root, texts[k]));
    free(texts);
    return out;
}

static aside_status set_members(collection *c, const char *op, json_t *args, json_t **result,
                                aside_error *err)
{
    (void)op, (void)args;
    *result = members_where(c, NULL, 0, true);
    return *result ? ASIDE_OK : no_memory(err);
}

static aside_status set_contains(collection *c, const char *op, json_t *args, json_t **result,
                                 aside_error *err)
{
    json_t *v = json_object_get(args, "value");
    if (!v)
        return bad_request(err, op, "missing argument \"value\"");
    char *text = canonical(v);
    if (!text)
        return no_memory(err);
    *result = json_boolean(json_object_get(c->root, text) != NULL);
    free(text);
    return ASIDE_OK;
}

static aside_status set_size(collection *c, const char *op, json_t *args, json_t **result,
                             aside_error *err)
{
    (void)op, (void)args, (void)err;
    *result = json_integer((json_int_t)json_object_size(c->root));
    return ASIDE_OK;
}

aside_status collection_set_algebra(const collection *const *sets, size_t n, const char *how,
                                   json_t **result, aside_error *err)
{
    if (n == 0) {
        *result = json_array();
        return *result ? ASIDE_OK : no_memory(err);
    }
    if (strcmp(how, "intersection") == 0 || strcmp(how, "difference") == 0) {
        *result = members_where(sets[0], sets + 1, n - 1, how[0] == 'i');
        return *result ? ASIDE_OK : no_memory(err);
    }
    collection *all = collection_create(ASIDE_TYPE_SET);
    aside_status st = all ? ASIDE_OK : no_memory(err);
    for (size_t k = 0; st == ASIDE_OK && k < n; k++) {
        const char *text;
        json_t *v;
        json_object_foreach(sets[k]->root, text, v) {
            if (json_object_set(all->root, text, v) != 0)
                st = no_memory(err);
        }
    }
    if (st == ASIDE_OK && !(*result = members_where(all, NULL, 0, true)))
        st = no_memory(err);
    collection_free(all);
    return st;
}

/* ---- maps --------------------------------------------------------------------------------- */

static void map_put(collection *c, const char *field, json_t *value)
{
    json_t *old = json_object_get(c->root, field);
    if (old)
        c->bytes -= member_bytes(old) + strlen(field);
    if (json_object_set(c->root, field, value) == 0)
        c->bytes += member_bytes(value) + strlen(field);
}

static aside_status map_set(collection *c, const char *op, json_t *args, json_t **result,
                            aside_error *err)
{
    json_t *fields = json_object_get(args, "fields");
    json_t *field = json_object_get(args, "field"), *value = json_object_get(args, "value");
    if (fields && !json_is_object(fields))
        return bad_request(err, op, "\"fields\" must be a JSON object");
    if (!fields && (!json_is_string(field) || !value))
        return bad_request(err, op, "give \"field\" (a string) and \"value\", or \"fields\" "
                                    "(an object)");
    /* a field's value sits one level below the map, as a member of fields does below it */
    aside_status st = fields ? value_json_check_depth(fields, 0, c->max_depth, err)
                             : value_json_check_depth(value, 1, c->max_depth, err);
    if (st != ASIDE_OK)
        return st;
    json_int_t added = 0;
    if (!fields) {
        added = json_object_get(c->root, json_string_value(field)) == NULL;
        map_put(c, json_string_value(field), value);
    } else {
        const char *name;
        json_t *v;
        json_object_foreach(fields, name, v) {
            added += json_object_get(c->root, name) == NULL;
            map_put(c, name, v);
        }
    }
    *result = json_integer(added);
    return ASIDE_OK;
}

static aside_status map_get(collection *c, const char *op, json_t *args, json_t **result,
                            aside_error *err)
{
    const char *field = NULL;
    aside_status st = arg_string(op, args, "field", &field, err);
    if (st != ASIDE_OK)
        return st;
    json_t *v = json_object_get(c->root, field);
    if (!v)
        return not_found(err, "no_field", "no field \"%.200s\" in the map", field);
    *result = json_incref(v);
    return ASIDE_OK;
}

static aside_status map_delete(collection *c, const char *op, json_t *args, json_t **result,
                               aside_error *err)
{
    json_t *fields = json_object_get(args, "fields"), *field = json_object_get(args, "field");
    json_t *names = fields ? json_incref(fields) : json_is_string(field) ? json_pack("[O]", field)
                                                                          : NULL;
    if (!names || !json_is_array(names)) {
        json_decref(names);
        return bad_request(err, op, "give \"field\" (a string) or \"fields\" (an array of them)");
    }
    json_int_t removed = 0;
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name) {
        json_t *old = json_is_string(name) ? json_object_get(c->root, json_string_value(name))
                                           : NULL;
        if (old) {
            c->bytes -= member_bytes(old) + json_string_length(name);
            json_object_del(c->root, json_string_value(name));
            removed++;
        }
    }
    json_decref(names);
    *result = json_integer(removed);
    return ASIDE_OK;
}

static aside_status map_all(collection *c, const char *op, json_t *args, json_t **result,
                            aside_error *err)
{
    (void)op, (void)args;
    *result = json_copy(c->root);
    return *result ? ASIDE_OK : no_memory(err);
}

static aside_status map_length(collection *c, const char *op, json_t *args, json_t **result,
                               aside_error *err)
{
    (void)op, (void)args, (void)err;
    *result = json_integer((json_int_t)json_object_size(c->root));
    return ASIDE_OK;
}

static aside_status wrong_type(aside_error *err, const char *fmt, const char *a)
{
    return error_set(err, ASIDE_ERR_WRONG_TYPE, fmt, a);
}

/* n + by, as an integer when both are integers (refusing overflow), else a real. */
static aside_status add_number(json_t *n, json_t *by, json_t **sum, aside_error *err)
{
    if (json_is_integer(n) && json_is_integer(by)) {
        json_int_t out;
        if (__builtin_add_overflow(json_integer_value(n), json_integer_value(by), &out))
            return overflow(err, "map_increment", "the sum would pass 64-bit integers");
        *sum = json_integer(out);
        return *sum ? ASIDE_OK : no_memory(err);
    }
    double real = json_number_value(n) + json_number_value(by);
    if (!isfinite(real)) /* JSON has no infinity */
        return overflow(err, "map_increment", "the sum would pass the largest real number");
    *sum = json_real(real);
    return *sum ? ASIDE_OK : no_memory(err);
}

static aside_status map_increment(collection *c, const char *op, json_t *args, json_t **result,
                                  aside_error *err)
{
    const char *field = NULL;
    aside_status st = arg_string(op, args, "field", &field, err);
    json_t *by = json_object_get(args, "by");
    if (st == ASIDE_OK && by && !json_is_number(by))
        st = bad_request(err, op, "\"by\" must be a number");
    if (st != ASIDE_OK)
        return st;
    json_t *one = json_integer(1), *zero = json_integer(0);
    json_t *old = json_object_get(c->root, field);
    if (old && !json_is_number(old))
        st = wrong_type(err, "field \"%.200s\" is not a number", field);
    json_t *sum = NULL;
    if (st == ASIDE_OK)
        st = add_number(old ? old : zero, by ? by : one, &sum, err);
    json_decref(one);
    json_decref(zero);
    if (st != ASIDE_OK)
        return st;
    map_put(c, field, sum);
    *result = sum;
    return ASIDE_OK;
}

/* ---- counters ----------------------------------------------------------------------------- */

static aside_status counter_add(collection *c, const char *op, json_t *args, json_t **result,
                                bool down, aside_error *err)
{
    json_int_t by = 1;
    aside_status st = arg_int(op, args, "by", 1, &by, err);
    if (st != ASIDE_OK)
        return st;
    json_int_t now = json_integer_value(c->root), out;
    bool overflowed = down ? __builtin_sub_overflow(now, by, &out)
                         : __builtin_add_overflow(now, by, &out);
    if (overflowed)
        return overflow(err, op, "the counter would pass 64-bit integers");
    json_integer_set(c->root, out);
    *result = json_integer(out);
    return ASIDE_OK;
}

static aside_status counter_increment(collection *c, const char *op, json_t *args,
                                      json_t **result, aside_error *err)
{
    return counter_add(c, op, args, result, false, err);
}

static aside_status counter_decrement(collection *c, const char *op, json_t *args,
                                      json_t **result, aside_error *err)
{
    return counter_add(c, op, args, result, true, err);
}

static aside_status counter_get(collection *c, const char *op, json_t *args, json_t **result,
                                aside_error *err)
{
    (void)op, (void)args, (void)err;
    *result = json_integer(json_integer_value(c->root)); /* the root changes in place */
    return ASIDE_OK;
}

/* ---- JSON documents ----------------------------------------------------------------------- */

static const char *arg_pointer(json_t *args)
{
    json_t *p = json_object_get(args, "pointer");
    return json_is_string(p) ? json_string_value(p) : p ? NULL : "";
}

/* How many levels down a pointer sets its value: one per token. */
static size_t pointer_levels(const char *pointer)
{
    size_t n = 0;
    for (; *pointer; pointer++)
        n += *pointer == '/';
    return n;
}

/* Give pointer errors the codes of the API: bad syntax "bad_pointer", absent "no_such_pointer". */
static aside_status pointer_error(aside_status st, aside_error *err)
{
    if (err && st == ASIDE_ERR_INVALID)
        snprintf(err->code, sizeof err->code, "bad_pointer");
    else if (err && st == ASIDE_ERR_NOT_FOUND)
        snprintf(err->code, sizeof err->code, "no_such_pointer");
    return st;
}

/* Measure a document after a change: its whole tree, so not while deferred (replay). */
static void document_changed(collection *c)
{
    if (c->deferred)
        return;
    c->bytes = value_json_tree_bytes(c->root);
    measurements++;
}

static aside_status json_get_op(collection *c, const char *op, json_t *args, json_t **result,
                                aside_error *err)
{
    const char *pointer = arg_pointer(args);
    if (!pointer)
        return bad_request(err, op, "\"pointer\" must be a string");
    json_t *found = NULL;
    aside_status st = json_pointer_get(c->root, pointer, &found, err);
    if (st != ASIDE_OK)
        return pointer_error(st, err);
    *result = json_deep_copy(found); /* documents change in place: answer a copy */
    return ASIDE_OK;
}

static json_t *success(void) { return json_pack("{s:s}", "result", "success"); }

static aside_status json_set_op(collection *c, const char *op, json_t *args, json_t **result,
                                aside_error *err)
{
    const char *pointer = arg_pointer(args);
    json_t *value = json_object_get(args, "value");
    if (!pointer || !value)
        return bad_request(err, op, "give \"pointer\" (a string) and \"value\"");
    aside_status st = value_json_check_depth(value, pointer_levels(pointer), c->max_depth, err);
    if (st != ASIDE_OK)
        return st;
    st = json_pointer_set(&c->root, pointer, json_incref(value), err);
    if (st != ASIDE_OK)
        return pointer_error(st, err);
    document_changed(c);
    *result = success();
    return ASIDE_OK;
}

static aside_status json_delete_op(collection *c, const char *op, json_t *args, json_t **result,
                                   aside_error *err)
{
    const char *pointer = arg_pointer(args);
    if (!pointer || !json_object_get(args, "pointer"))
        return bad_request(err, op, "missing argument \"pointer\" (a string)");
    aside_status st = json_pointer_delete(&c->root, pointer, err);
    if (st != ASIDE_OK)
        return pointer_error(st, err);
    document_changed(c);
    *result = success();
    return ASIDE_OK;
}

static aside_status json_merge_op(collection *c, const char *op, json_t *args, json_t **result,
                                  aside_error *err)
{
    json_t *patch = json_object_get(args, "patch");
    if (!patch)
        patch = json_object_get(args, "value");
    if (!patch)
        return bad_request(err, op, "missing argument \"patch\" (an RFC 7386 merge patch)");
    aside_status st = value_json_check_depth(patch, 0, c->max_depth, err);
    if (st != ASIDE_OK)
        return st;
    json_t *merged = json_merge_patch(c->root, patch);
    if (!merged) {
        c->root = json_null(); /* the old tree was given away */
        return no_memory(err);
    }
    c->root = merged;
    document_changed(c);
    *result = c->deferred ? json_incref(merged) : json_deep_copy(merged);
    return ASIDE_OK;
}

/* ---- the operations table ----------------------------------------------------------------- */

typedef aside_status (*op_fn)(collection *c, const char *op, json_t *args, json_t **result,
                              aside_error *err);

typedef struct op_row {
    const char      *name;
    aside_value_type type;
    bool             writes;
    bool             grows; /* may make the collection larger: its room is checked first */
    op_fn            run;
} op_row;

static const op_row ops[] = {
    {"list_push", ASIDE_TYPE_LIST, true, true, list_push},
    {"list_pop", ASIDE_TYPE_LIST, true, false, list_pop},
    {"list_range", ASIDE_TYPE_LIST, false, false, list_range},
    {"list_length", ASIDE_TYPE_LIST, false, false, list_length},
    {"list_index", ASIDE_TYPE_LIST, false, false, list_index},
    {"list_trim", ASIDE_TYPE_LIST, true, false, list_trim},
    {"set_add", ASIDE_TYPE_SET, true, true, set_add},
    {"set_remove", ASIDE_TYPE_SET, true, false, set_remove},
    {"set_members", ASIDE_TYPE_SET, false, false, set_members},
    {"set_contains", ASIDE_TYPE_SET, false, false, set_contains},
    {"set_size", ASIDE_TYPE_SET, false, false, set_size},
    {"map_set", ASIDE_TYPE_MAP, true, true, map_set},
    {"map_get", ASIDE_TYPE_MAP, false, false, map_get},
    {"map_delete", ASIDE_TYPE_MAP, true, false, map_delete},
    {"map_all", ASIDE_TYPE_MAP, false, false, map_all},
    {"map_length", ASIDE_TYPE_MAP, false, false, map_length},
    {"map_increment", ASIDE_TYPE_MAP, true, true, map_increment},
    {"counter_increment", ASIDE_TYPE_COUNTER, true, false, counter_increment},
    {"counter_decrement", ASIDE_TYPE_COUNTER, true, false, counter_decrement},
    {"counter_get", ASIDE_TYPE_COUNTER, false, false, counter_get},
    {"json_get", ASIDE_TYPE_JSON, false, false, json_get_op},
    {"json_set", ASIDE_TYPE_JSON, true, true, json_set_op},
    {"json_delete", ASIDE_TYPE_JSON, true, false, json_delete_op},
    {"json_merge", ASIDE_TYPE_JSON, true, true, json_merge_op},
};

static const op_row *find_op(const char *name)
{
    for (size_t i = 0; name && i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].name, name) == 0)
            return &ops[i];
    }
    return NULL;
}

bool collection_op_info(const char *op, aside_value_type *type, bool *writes)
{
    const op_row *row = find_op(op);
    if (row) {
        *type = row->type;
        *writes = row->writes;
    }
    return row != NULL;
}

bool collection_op_grows(const char *op)
{
    const op_row *row = find_op(op);
    return row && row->grows;
}

/* The operations over several sets (collection_set_algebra), named as aside_op knows them. */
static const char *const set_algebra_ops[] = {"set_union", "set_intersection", "set_difference"};

enum {
    OP_COUNT = sizeof ops / sizeof ops[0],
    SET_ALGEBRA_COUNT = sizeof set_algebra_ops / sizeof set_algebra_ops[0]
};

bool collection_is_set_algebra(const char *op)
{
    for (size_t i = 0; op && i < SET_ALGEBRA_COUNT; i++) {
        if (strcmp(set_algebra_ops[i], op) == 0)
            return true;
    }
    return false;
}

const char *collection_op_name(size_t i)
{
    if (i < OP_COUNT)
        return ops[i].name;
    return i < OP_COUNT + SET_ALGEBRA_COUNT ? set_algebra_ops[i - OP_COUNT] : NULL;
}

aside_status collection_apply(collection *c, const char *op, json_t *args, size_t max_depth,
                              json_t **result, aside_error *err)
{
    const op_row *row = find_op(op);
    if (!row)
        return error_set(err, ASIDE_ERR_INVALID, "unknown operation \"%.100s\"", op);
    if (row->type != c->type)
        return error_set(err, ASIDE_ERR_WRONG_TYPE, "%s is an operation on a %s; this key holds "
                         "a %s", op, aside_value_type_name(row->type),
                         aside_value_type_name(c->type));
    json_t *empty = args ? NULL : json_object();
    *result = NULL;
    c->max_depth = max_depth;
    aside_status st = row->run(c, op, args ? args : empty, result, err);
    json_decref(empty);
    if (st == ASIDE_OK && !*result)
        st = no_memory(err);
    return st;
}

/* ---- life ----------------------------------------------------------------------------------- */

static json_t *empty_root(aside_value_type type)
{
    switch (type) {
    case ASIDE_TYPE_LIST: return json_array();
    case ASIDE_TYPE_SET:
    case ASIDE_TYPE_MAP: return json_object();
    case ASIDE_TYPE_COUNTER: return json_integer(0);
    default: return json_null();
    }
}

collection *collection_create(aside_value_type type)
{
    collection *c = calloc(1, sizeof *c);
    if (!c || !(c->root = empty_root(type))) {
        free(c);
        return NULL;
    }
    c->type = type;
    c->bytes = member_bytes(c->root);
    return c;
}

static aside_status shape_error(aside_error *err, aside_value_type type, const char *want)
{
    return error_set(err, ASIDE_ERR_BAD_VALUE, "a %s must be %s", aside_value_type_name(type),
                     want);
}

/* Fill c (empty, of its type) from the JSON value that lists its content. */
static aside_status fill(collection *c, json_t *value, aside_error *err)
{
    json_t *args = json_pack("{s:O}", "values", value);
    json_t *result = NULL;
    aside_status st = args ? ASIDE_OK : no_memory(err);
    if (st == ASIDE_OK && c->type == ASIDE_TYPE_LIST)
        st = list_push(c, "list", args, &result, err);
    else if (st == ASIDE_OK && c->type == ASIDE_TYPE_SET)
        st = set_add(c, "set", args, &result, err);
    json_decref(result);
    json_decref(args);
    return st;
}

aside_status collection_from_json(aside_value_type type, json_t *value, collection **out,
                                  aside_error *err)
{
    bool ok = type == ASIDE_TYPE_JSON || (type == ASIDE_TYPE_LIST && json_is_array(value)) ||
              (type == ASIDE_TYPE_SET && json_is_array(value)) ||
              (type == ASIDE_TYPE_MAP && json_is_object(value)) ||
              (type == ASIDE_TYPE_COUNTER && json_is_integer(value));
    if (!ok)
        return shape_error(err, type, type == ASIDE_TYPE_MAP       ? "a JSON object"
                                      : type == ASIDE_TYPE_COUNTER ? "a JSON integer"
                                                                   : "a JSON array");
    aside_status st = value_json_check_depth(value, 0, VALUE_JSON_MAX_DEPTH, err);
    if (st != ASIDE_OK)
        return st;
    collection *c = collection_create(type);
    if (!c)
        return no_memory(err);
    c->max_depth = VALUE_JSON_MAX_DEPTH;
    if (type == ASIDE_TYPE_LIST || type == ASIDE_TYPE_SET)
        st = fill(c, value, err);
    else {
        uint64_t empty_bytes = c->bytes;
        json_decref(c->root);
        /* a document takes the caller's tree, which it must neither use nor change after */
        c->root = type == ASIDE_TYPE_JSON ? json_incref(value) : json_copy(value);
        if (!c->root)
            st = no_memory(err);
        else if (type == ASIDE_TYPE_MAP) {
            c->bytes = empty_bytes;
            const char *name;
            json_t *v;
            json_object_foreach(c->root, name, v)
                c->bytes += member_bytes(v) + strlen(name);
        } else
            c->bytes = type == ASIDE_TYPE_JSON ? value_json_tree_bytes(c->root)
                                               : member_bytes(c->root);
    }
    if (st != ASIDE_OK) {
        collection_free(c);
        return st;
    }
    *out = c;
    return ASIDE_OK;
}

void collection_free(collection *c)
{
    if (!c)
        return;
    json_decref(c->root);
    free(c);
}

aside_value_type collection_type(const collection *c) { return c->type; }

uint64_t collection_memory_bytes(const collection *c) { return COLLECTION_BASE_BYTES + c->bytes; }

void collection_defer_measure(collection *c, bool defer)
{
    bool was = c->deferred;
    c->deferred = defer;
    if (was && !defer && c->type == ASIDE_TYPE_JSON)
        document_changed(c);
}

uint64_t collection_measure_count(void) { return measurements; }

json_t *collection_json(const collection *c)
{
    return c->type == ASIDE_TYPE_SET ? members_where(c, NULL, 0, true) : json_incref(c->root);
}

char *collection_dump(const collection *c, size_t *len)
{
    json_t *v = collection_json(c);
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (text)
        *len = strlen(text);
    return text;
}

/* ---- value kinds: how the cache names and checks these types -------------------------------- */

static bool claims_nothing(const char *key, size_t len)
{
    (void)key, (void)len;
    return false;
}

static const char *json_content_type(const char *key)
{
    (void)key;
    return "application/json";
}

static aside_status check_shape(const value_context *ctx, aside_value_type type,
                                const void *data, size_t size, aside_error *err)
{
    json_t *v = NULL;
    aside_status st = value_json_parse(data, size, JSON_DECODE_ANY, value_json_max_depth(ctx),
                                       &v, err);
    if (st != ASIDE_OK)
        return st;
    collection *c = NULL;
    st = collection_from_json(type, v, &c, err);
    collection_free(c);
    json_decref(v);
    return st;
}

#define COLLECTION_KIND(lower, upper)                                                          \
    static aside_status check_##lower(const value_context *ctx, const void *data, size_t size, \
                                      aside_error *err)                                        \
    {                                                                                          \
        return check_shape(ctx, upper, data, size, err);                                       \
    }                                                                                          \
    const value_kind value_kind_##lower = {upper, #lower, claims_nothing, check_##lower,       \
                                           json_content_type};

COLLECTION_KIND(list, ASIDE_TYPE_LIST)
COLLECTION_KIND(set, ASIDE_TYPE_SET)
COLLECTION_KIND(map, ASIDE_TYPE_MAP)
COLLECTION_KIND(counter, ASIDE_TYPE_COUNTER)
