/* op.c -- aside_op: operations on the values the cache alone holds.
 *
 * Lists, sets, maps and counters are changed in place by the operations of value/collection.c
 * (its table says which type each works on, whether it writes, whether it may grow the value).
 * A JSON document is edited the same way; a stored document (a file from the system of record)
 * becomes live on its first edit: its content is journaled whole, then its file goes. Its tree
 * (10 to 40 times its text) is reserved in the memory budget before it is built
 * (entry_reserve_tree: 507 full, or 503 busy while other trees are built) and counted once
 * built; one that cannot fit leaves the document as it was.
 *
 * An operation runs under the cache lock, one at a time: find the entry (creating it when the
 * operation writes), check the memory budget for one that may grow, apply, append the journal
 * record ({"k": key, "o": op, "a": args}: live.c explains the journal), then, after unlocking,
 * wait for the sync the fsync policy asks for. A read of a missing key answers as an empty
 * collection would. Set algebra reads several sets under one lock. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"
#include "util/util.h"

enum {
    MEMBER_OVERHEAD_BYTES = 64 /* what a member costs beyond its text, for the budget check */
};

static aside_status wrong_type(aside_error *err, const entry *e, const char *op,
                               aside_value_type want)
{
    return error_set(err, ASIDE_ERR_WRONG_TYPE, "%s holds a %s; %s works on a %s", e->key,
                     aside_value_type_name(e->meta.type), op, aside_value_type_name(want));
}

/* ---- the memory budget ----------------------------------------------------------------------- */

/* What args may add: their text, and a member's overhead for each value they hold. */
static uint64_t growth_of(json_t *args)
{
    json_t *values = json_object_get(args, "values"), *fields = json_object_get(args, "fields");
    size_t members = 1 + json_array_size(values) + json_object_size(fields);
    return (args ? json_dumpb(args, NULL, 0, JSON_COMPACT) : 0) +
           members * MEMBER_OVERHEAD_BYTES;
}

/* Refuse a change that would need more than the memory budget for what cannot be evicted. */
static aside_status check_room(aside_cache *c, json_t *args, aside_error *err)
{
    uint64_t growth = growth_of(args);
    if (c->resident_bytes + growth <= c->mem_limit)
        return ASIDE_OK;
    return error_set(err, ASIDE_ERR_FULL, "the memory budget (%llu bytes) is full of values "
                     "that cannot be evicted (collections, pins): %llu bytes",
                     (unsigned long long)c->mem_limit, (unsigned long long)c->resident_bytes);
}

/* ---- collection operations ------------------------------------------------------------------- */

/* Run op on the live entry e (created first when missing and op writes). Lock held. */
static aside_status run_locked(aside_cache *c, const char *key, const char *op,
                               aside_value_type type, bool writes, json_t *args,
                               json_t **result, uint64_t *position, aside_error *err)
{
    cache_assert_locked(c);
    entry *e = entry_find(c, key);
    if (e && !e->live)
        return wrong_type(err, e, op, type);
    if (!e && !writes) { /* a read of nothing: the answer of an empty collection */
        collection *empty = collection_create(type);
        aside_status st = empty ? collection_apply(empty, op, args, c->decode.json_max_depth,
                                                   result, err)
                                : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        collection_free(empty);
        return st;
    }
    aside_status st = writes && collection_op_grows(op) ? check_room(c, args, err) : ASIDE_OK;
    bool created = false;
    if (st == ASIDE_OK && !e) {
        collection *fresh = collection_create(type);
        if (!fresh || !(e = live_create(c, key, fresh)))
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        created = true;
    }
    if (st == ASIDE_OK)
        st = collection_apply(e->live, op, args, c->decode.json_max_depth, result, err);
    if (st != ASIDE_OK && created) { /* nothing was journaled: leave no trace */
        collection_free(e->live);
        e->live = NULL;
        entry_destroy(c, e, false);
        return st;
    }
    if (st != ASIDE_OK)
        return st;
    if (!writes) {
        entry_touch(c, e);
        return ASIDE_OK;
    }
    live_changed(c, e);
    st = entry_record(c, json_pack("{s:s, s:s, s:O?}", "k", key, "o", op, "a", args), position,
                       err);
    if (st == ASIDE_OK && created && c->default_ttl_ms) {
        entry_set_expiry(c, e, entry_new_expiry(c));
        st = entry_record(c, json_pack("{s:s, s:s, s:I}", "k", key, "o", "expire_at", "a",
                                        (json_int_t)e->meta.expires_ms), position, err);
    }
    return st;
}

/* Set algebra over the set at key (if any) and the sets named by args "keys". */
static aside_status set_algebra(aside_cache *c, const char *key, const char *op, json_t *args,
                                json_t **result, aside_error *err)
{
    json_t *keys = json_object_get(args, "keys");
    if (keys && !json_is_array(keys))
        return error_set(err, ASIDE_ERR_INVALID, "%s: \"keys\" must be an array of keys", op);
    size_t n = (key ? 1 : 0) + json_array_size(keys);
    const collection **sets = calloc(n ? n : 1, sizeof *sets);
    if (!sets)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    collection *empty = collection_create(ASIDE_TYPE_SET);
    aside_status st = empty ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    cache_lock(c);
    for (size_t i = 0; st == ASIDE_OK && i < n; i++) {
        const char *name = key && i == 0 ? key
                                         : json_string_value(json_array_get(keys, i - !!key));
        entry *e = name ? entry_find(c, name) : NULL;
        if (!name)
            st = error_set(err, ASIDE_ERR_INVALID, "%s: \"keys\" must hold strings", op);
        else if (e && (!e->live || e->meta.type != ASIDE_TYPE_SET))
            st = wrong_type(err, e, op, ASIDE_TYPE_SET);
        else
            sets[i] = e ? e->live : empty;
    }
    if (st == ASIDE_OK)
        st = collection_set_algebra(sets, n, op + strlen("set_"), result, err);
    cache_unlock(c);
    collection_free(empty);
    free(sets);
    return st;
}

/* ---- JSON documents -------------------------------------------------------------------------- */

/* The document at key when it is not live: read through the cache (the system of record on a
 * miss). *doc NULL when there is none; *reserved the memory reserved for its tree
 * (entry_reserve_tree), which the caller gives back once the tree is counted or freed. */
static aside_status read_document(aside_cache *c, const char *key, const char *op, json_t **doc,
                                  uint64_t *reserved, aside_error *err)
{
    *doc = NULL;
    *reserved = 0;
    cache_lock(c);
    entry *e = entry_find(c, key);
    aside_status st = e && e->meta.type != ASIDE_TYPE_JSON && !e->live
                          ? wrong_type(err, e, op, ASIDE_TYPE_JSON)
                          : ASIDE_OK;
    cache_unlock(c);
    if (st != ASIDE_OK)
        return st;
    aside_read_options options = {.type = "json"};
    aside_value *v = NULL;
    aside_error read_err;
    st = aside_read(c, key, &options, &v, NULL, &read_err);
    if (st == ASIDE_ERR_NOT_FOUND)
        return ASIDE_OK;
    if (st != ASIDE_OK)
        return error_copy(err, &read_err);
    if (!aside_value_data(v)) {
        aside_value_release(v);
        return error_set(err, ASIDE_ERR_TOO_LARGE, "%s: the document is too large to edit in "
                         "memory", key);
    }
    /* its tree, about VALUE_JSON_TREE_FACTOR times its text, is reserved before it is built:
     * it will be a live entry, which is never evicted */
    uint64_t estimate = aside_value_size(v) * VALUE_JSON_TREE_FACTOR;
    cache_lock(c);
    st = entry_reserve_tree(c, key, estimate, err);
    cache_unlock(c);
    *reserved = st == ASIDE_OK ? estimate : 0;
    /* held to the most any limit allows: it was checked against the limit when it was loaded */
    if (st == ASIDE_OK)
        st = value_json_parse(aside_value_data(v), aside_value_size(v), JSON_DECODE_ANY,
                          VALUE_JSON_MAX_DEPTH, doc, err);
    aside_value_release(v);
    return st;
}

/* Make key's document live (journaling it whole) unless it already is. Lock held. */
static aside_status make_live(aside_cache *c, const char *key, json_t *doc, aside_error *err)
{
    entry *e = entry_find(c, key);
    if (e && e->live)
        return e->meta.type == ASIDE_TYPE_JSON ? ASIDE_OK
                                               : wrong_type(err, e, "json", ASIDE_TYPE_JSON);
    collection *live = NULL;
    aside_status st = collection_from_json(ASIDE_TYPE_JSON, doc, &live, err);
    if (st != ASIDE_OK)
        return st;
    uint64_t cost = collection_memory_bytes(live); /* the tree's own figure, not the estimate */
    if (c->resident_bytes + cost > c->mem_limit) {
        collection_free(live);
        return error_set(err, ASIDE_ERR_FULL, "%s: editing the document needs %llu bytes of "
                         "memory; the memory budget (%llu bytes) has %llu of them free for "
                         "values that cannot be evicted", key, (unsigned long long)cost,
                         (unsigned long long)c->mem_limit,
                         (unsigned long long)(c->mem_limit > c->resident_bytes
                                                  ? c->mem_limit - c->resident_bytes : 0));
    }
    int64_t expires_ms = e ? e->meta.expires_ms : entry_new_expiry(c);
    return live_replace(c, e, key, live, expires_ms, NULL, err);
}

/* True if op may make a document where there is none: a merge, or a set of the whole. */
static bool creates_document(const char *op, json_t *args)
{
    const char *pointer = json_string_value(json_object_get(args, "pointer"));
    return strcmp(op, "json_merge") == 0 ||
           (strcmp(op, "json_set") == 0 && (!pointer || !*pointer));
}

static aside_status document_op(aside_cache *c, const char *key, const char *op, bool writes,
                                json_t *args, json_t **result, uint64_t *position,
                                aside_error *err)
{
    cache_lock(c);
    entry *e = entry_find(c, key);
    bool live = e && e->live;
    cache_unlock(c);
    json_t *doc = NULL;
    uint64_t reserved = 0;
    aside_status st = live ? ASIDE_OK : read_document(c, key, op, &doc, &reserved, err);
    if (st == ASIDE_OK && !live && !doc && (!writes || !creates_document(op, args)))
        st = error_set(err, ASIDE_ERR_NOT_FOUND, "no JSON document at %s", key);
    if (st == ASIDE_OK && !live && !writes) { /* read a stored document where it is */
        collection *view = NULL;
        st = collection_from_json(ASIDE_TYPE_JSON, doc, &view, err);
        if (st == ASIDE_OK)
            st = collection_apply(view, op, args, c->decode.json_max_depth, result, err);
        collection_free(view);
        cache_lock(c);
        entry_release_tree(c, reserved);
        cache_unlock(c);
        json_decref(doc);
        return st;
    }
    cache_lock(c);
    entry_release_tree(c, reserved); /* the live entry counts the tree from here */
    if (st == ASIDE_OK && !live && doc)
        st = make_live(c, key, doc, err);
    if (st == ASIDE_OK)
        st = run_locked(c, key, op, ASIDE_TYPE_JSON, writes, args, result, position, err);
    cache_unlock(c);
    json_decref(doc);
    return st;
}

/* ---- the public operations ------------------------------------------------------------------- */

/* Levels arguments put above a value they hold: {"values": [value]}. Deeper arguments hold a
 * value no operation could take. */
enum {
    ARGUMENT_LEVELS = 2,
    /* arguments of this many bytes or more reserve their tree's estimate in the memory budget
     * while they are parsed and used (smaller ones are bounded by the request's own limits) */
    ARGUMENTS_RESERVED_FROM = 1 << 20
};

static aside_status parse_args(aside_cache *c, const char *args_json, json_t **args,
                               aside_error *err)
{
    *args = NULL;
    if (!args_json)
        return ASIDE_OK;
    size_t limit = c->decode.json_max_depth;
    aside_status st = value_json_parse(args_json, strlen(args_json), 0, limit + ARGUMENT_LEVELS,
                                       args, err);
    if (st == ASIDE_ERR_INVALID) /* too deep: name the limit values are held to */
        return value_too_deep(err, limit);
    if (st == ASIDE_ERR_NOMEM)
        return st;
    if (*args && json_is_object(*args))
        return ASIDE_OK;
    json_decref(*args);
    *args = NULL;
    return error_set(err, ASIDE_ERR_INVALID, "the arguments must be a JSON object");
}

static aside_status dispatch(aside_cache *c, const char *key, const char *op, json_t *args,
                             json_t **result, uint64_t *position, aside_error *err)
{
    if (collection_is_set_algebra(op))
        return set_algebra(c, key, op, args, result, err);
    aside_value_type type;
    bool writes;
    if (!collection_op_info(op, &type, &writes))
        return error_set(err, ASIDE_ERR_INVALID, "unknown operation \"%.100s\"", op);
    if (!key)
        return error_set(err, ASIDE_ERR_INVALID, "%s needs a key", op);
    if (type == ASIDE_TYPE_JSON)
        return document_op(c, key, op, writes, args, result, position, err);
    cache_lock(c);
    aside_status st = run_locked(c, key, op, type, writes, args, result, position, err);
    cache_unlock(c);
    return st;
}

aside_status aside_op(aside_cache *c, const char *key, const char *op, const char *args_json,
                      char **result_json, aside_error *err)
{
    aside_status st = key ? aside_key_check(key, strlen(key), err) : ASIDE_OK;
    json_t *args = NULL, *result = NULL;
    if (st == ASIDE_OK && key)
        st = live_key_check(key, err);
    if (st == ASIDE_OK && !op)
        st = error_set(err, ASIDE_ERR_INVALID, "no operation named");
    /* large arguments' tree is reserved in the memory budget until it is freed */
    size_t args_len = args_json ? strlen(args_json) : 0;
    uint64_t reserved = 0;
    if (st == ASIDE_OK && args_len >= ARGUMENTS_RESERVED_FROM) {
        cache_lock(c);
        st = entry_reserve_tree(c, "the arguments", args_len * VALUE_JSON_TREE_FACTOR, err);
        cache_unlock(c);
        reserved = st == ASIDE_OK ? args_len * VALUE_JSON_TREE_FACTOR : 0;
    }
    if (st == ASIDE_OK)
        st = parse_args(c, args_json, &args, err);
    uint64_t position = 0;
    if (st == ASIDE_OK)
        st = dispatch(c, key, op, args, &result, &position, err);
    json_decref(args); /* before its reservation goes */
    args = NULL;
    if (reserved) {
        cache_lock(c);
        entry_release_tree(c, reserved);
        cache_unlock(c);
    }
    if (st == ASIDE_OK && position)
        st = journal_wait(c->journal, position, err);
    if (st == ASIDE_OK && !(*result_json = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY)))
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    json_decref(args);
    json_decref(result);
    return st;
}

