/* ops.c -- what the cache alone holds: collections, edited JSON documents, times to live, pins.
 *
 * Live entries. A list, set, map, counter or edited JSON document has no system of record and
 * no file: its home is memory (entry->live, the mutable form in value/collection.c), its disk
 * copy the journal (store/journal.c). Live entries sit outside the eviction policies; their
 * bytes are "resident" and count against the memory budget, and a change that would pass the
 * budget is refused (ASIDE_ERR_FULL) rather than evicting data that exists nowhere else.
 * Readers get an immutable JSON snapshot (entry->value), made on the first read after a change.
 *
 * Operations run under the cache lock, one at a time: check the arguments, apply, append the
 * journal record ({"k": key, "o": op, "a": args}), then, after unlocking, wait for the sync the
 * fsync policy asks for. Operations are deterministic, so replaying the records rebuilds the
 * state; a record whose operation fails on replay failed identically when it was first run.
 * Other records: {"k", "o": "del"}, {"k", "o": "expire_at", "a": unix ms}, and snapshots
 * {"k", "t": type, "v": content, "x": expires} that compaction and conversions write.
 *
 * At open the journal is replayed before the disk tier is scanned: the journal's final state of
 * a key wins over a file of the same key. That is right because a change from live to file
 * (put, a load from the system of record) journals "del" before the file lands, and a change
 * from file to live (editing a stored JSON document) journals the snapshot before the file goes.
 *
 * Compaction rewrites the journal as one snapshot per live entry, under the cache lock, when the
 * journal passes both a minimum size and twice its size after the last compaction. The
 * housekeeping thread does it, and once a second also syncs the journal (policy "everysec") and
 * removes entries whose time to live ran out (reads also check, so none is ever served).
 *
 * Pins: a pinned value leaves the memory policy (and its file the disk policy) and counts as
 * resident; a pin that cannot fit in the memory budget is refused with ASIDE_ERR_FULL. Pins and
 * times to live of files are kept in their sidecars, so they survive restarts. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "util/util.h"

enum {
    HOUSEKEEPING_PERIOD_MS = 1000,
    EXPIRE_BATCH = 1024,             /* entries removed per tick at most */
    MEMBER_OVERHEAD_BYTES = 64,
    DEFAULT_COMPACT_MIN_BYTES = 64 << 20
};

/* ---- journal records ---------------------------------------------------------------------- */

static aside_status record_append(aside_cache *c, json_t *record, uint64_t *position,
                                  aside_error *err)
{
    char *text = record ? json_dumps(record, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(record);
    aside_status st = text ? journal_append(c->journal, text, strlen(text), position, err)
                           : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    free(text);
    if (st != ASIDE_OK)
        c->journal_dirty = true; /* memory is ahead of the journal: compact soon */
    return st;
}

static json_t *snapshot_record(const entry *e)
{
    json_t *content = collection_json(e->live);
    if (!content)
        return NULL;
    return json_pack("{s:s, s:s, s:o, s:I}", "k", e->key, "t",
                     aside_value_type_name(e->meta.type), "v", content, "x",
                     (json_int_t)e->meta.expires_ms);
}

/* ---- live entries ------------------------------------------------------------------------- */

bool ops_expired(const entry *e, int64_t now_ms)
{
    return e->meta.expires_ms && e->meta.expires_ms <= now_ms;
}

/* The expiry of a key entering the cache now: the default time to live, or none. */
static int64_t new_expiry(const aside_cache *c)
{
    return c->default_ttl_ms ? clock_unix_ms() + (int64_t)c->default_ttl_ms : 0;
}

void ops_set_expiry(aside_cache *c, entry *e, int64_t expires_ms)
{
    c->expiring += (expires_ms != 0) - (e->meta.expires_ms != 0);
    e->meta.expires_ms = expires_ms;
}

/* After a change of e's live form: a new generation, no snapshot, new byte figures. */
static void live_changed(aside_cache *c, entry *e)
{
    aside_value_release(e->value);
    e->value = NULL;
    e->generation = ++c->generations;
    e->meta.size = collection_memory_bytes(e->live);
    e->last_access_ms = clock_unix_ms();
    entry_set_resident(c, e, collection_memory_bytes(e->live));
    evict_memory_for(c, 0);
}

static entry *live_create(aside_cache *c, const char *key, collection *live)
{
    entry *e = entry_create(c, key);
    if (!e) {
        collection_free(live);
        return NULL;
    }
    e->live = live;
    e->meta.type = collection_type(live);
    e->meta.fetched_ms = clock_unix_ms();
    live_changed(c, e);
    return e;
}

void ops_entry_gone(aside_cache *c, entry *e)
{
    if (!e->live)
        return;
    if (!c->replaying && c->journal) {
        aside_error err;
        if (record_append(c, json_pack("{s:s, s:s}", "k", e->key, "o", "del"), NULL, &err) !=
            ASIDE_OK)
            log_line("error", "journal: %s", err.message);
    }
    collection_free(e->live);
    e->live = NULL;
}

bool ops_snapshot(aside_cache *c, entry *e)
{
    size_t len = 0;
    char *text = collection_dump(e->live, &len);
    aside_value *v = text ? value_from_memory(e->meta.type, text, len) : NULL;
    if (!v)
        return false;
    value_set_generation(v, e->generation);
    e->value = v;
    entry_set_resident(c, e, collection_memory_bytes(e->live) + len);
    return true;
}

/* True for the operations that may make a collection larger. */
static bool grows(const char *op)
{
    static const char *const names[] = {"list_push", "set_add", "map_set", "map_increment",
                                        "json_set", "json_merge", NULL};
    for (size_t i = 0; names[i]; i++) {
        if (strcmp(names[i], op) == 0)
            return true;
    }
    return false;
}

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

/* ---- replay ------------------------------------------------------------------------------- */

static void replay_op(aside_cache *c, const char *key, const char *op, json_t *args)
{
    entry *e = entry_lookup(c, key); /* expiry is judged after replay, by lookups */
    if (strcmp(op, "del") == 0) {
        if (e)
            entry_destroy(c, e, false);
        return;
    }
    if (strcmp(op, "expire_at") == 0) {
        if (e)
            ops_set_expiry(c, e, (int64_t)json_integer_value(args));
        return;
    }
    aside_value_type type;
    bool writes;
    if (!collection_op_info(op, &type, &writes) || !writes)
        return;
    if (!e) {
        collection *fresh = collection_create(type);
        if (!fresh || !(e = live_create(c, key, fresh)))
            return;
    }
    json_t *result = NULL;
    if (e->live && collection_apply(e->live, op, args, &result, NULL) == ASIDE_OK)
        live_changed(c, e);
    json_decref(result);
}

static void replay_snapshot(aside_cache *c, const char *key, const char *type_name,
                            json_t *content, int64_t expires_ms)
{
    aside_value_type type;
    collection *live = NULL;
    if (aside_value_type_parse(type_name, &type) != ASIDE_OK ||
        collection_from_json(type, content, &live, NULL) != ASIDE_OK)
        return;
    entry *e = entry_lookup(c, key);
    if (e)
        entry_destroy(c, e, false);
    if ((e = live_create(c, key, live)))
        ops_set_expiry(c, e, expires_ms);
}

static void replay_record(void *ctx, const char *payload, size_t len)
{
    aside_cache *c = ctx;
    json_t *r = json_loadb(payload, len, 0, NULL);
    const char *key = json_string_value(json_object_get(r, "k"));
    const char *op = json_string_value(json_object_get(r, "o"));
    const char *type = json_string_value(json_object_get(r, "t"));
    if (key && op)
        replay_op(c, key, op, json_object_get(r, "a"));
    else if (key && type)
        replay_snapshot(c, key, type, json_object_get(r, "v"),
                        (int64_t)json_integer_value(json_object_get(r, "x")));
    json_decref(r);
}

/* ---- compaction --------------------------------------------------------------------------- */

static aside_status compact_locked(aside_cache *c, aside_error *err)
{
    journal_rewrite *w = NULL;
    aside_status st = journal_rewrite_begin(c->journal, &w, err);
    size_t cursor = 0;
    for (table_node *n = st == ASIDE_OK ? table_next(c->index, &cursor, NULL) : NULL;
         n && st == ASIDE_OK; n = table_next(c->index, &cursor, n)) {
        entry *e = container_of(n, entry, node);
        if (!e->live)
            continue;
        json_t *record = snapshot_record(e);
        char *text = record ? json_dumps(record, JSON_COMPACT) : NULL;
        st = text ? journal_rewrite_add(w, text, strlen(text), err)
                  : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        free(text);
        json_decref(record);
    }
    if (w && journal_rewrite_end(w, st == ASIDE_OK, err) != ASIDE_OK)
        st = err ? err->status : ASIDE_ERR_IO;
    if (st == ASIDE_OK) {
        uint64_t records = 0;
        journal_stats(c->journal, &c->journal_after_compaction, &records);
        c->journal_dirty = false;
        c->counters.log_compactions++;
    }
    return st;
}

aside_status aside_compact(aside_cache *c, aside_error *err)
{
    pthread_mutex_lock(&c->lock);
    aside_status st = compact_locked(c, err);
    pthread_mutex_unlock(&c->lock);
    return st;
}

static bool compaction_due(aside_cache *c)
{
    uint64_t bytes = 0, records = 0;
    journal_stats(c->journal, &bytes, &records);
    return c->journal_dirty ||
           (bytes > c->compact_min_bytes && bytes > 2 * c->journal_after_compaction);
}

/* ---- housekeeping ------------------------------------------------------------------------- */

/* Remove up to EXPIRE_BATCH entries whose time ran out. */
static void expire_due(aside_cache *c)
{
    char *due[EXPIRE_BATCH];
    size_t count = 0, cursor = 0;
    int64_t now = clock_unix_ms();
    for (table_node *n = table_next(c->index, &cursor, NULL); n && count < EXPIRE_BATCH;
         n = table_next(c->index, &cursor, n)) {
        entry *e = container_of(n, entry, node);
        if (ops_expired(e, now) && (due[count] = strdup(e->key)))
            count++;
    }
    for (size_t i = 0; i < count; i++) {
        entry_find(c, due[i]); /* finds it expired and removes it */
        free(due[i]);
    }
}

static void *housekeeping_run(void *arg)
{
    aside_cache *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        struct timespec until = clock_mono_after_ms(HOUSEKEEPING_PERIOD_MS);
        pthread_cond_timedwait(&c->housekeeping, &c->lock, &until);
        if (c->stopping)
            break;
        if (c->expiring)
            expire_due(c);
        aside_error err;
        if (compaction_due(c) && compact_locked(c, &err) != ASIDE_OK)
            log_line("error", "journal compaction: %s", err.message);
        pthread_mutex_unlock(&c->lock);
        journal_tick(c->journal);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

aside_status ops_open(aside_cache *c, const aside_config *cfg, aside_error *err)
{
    c->fsync = (aside_fsync)cfg->fsync;
    c->default_ttl_ms = cfg->default_ttl_ms;
    c->compact_min_bytes = cfg->journal_compact_bytes ? cfg->journal_compact_bytes
                                                      : DEFAULT_COMPACT_MIN_BYTES;
    cond_init_monotonic(&c->housekeeping);
    c->replaying = true;
    aside_status st = journal_open(store_root(c->store), c->fsync, replay_record, c, &c->journal,
                                   err);
    c->replaying = false;
    if (st != ASIDE_OK)
        return st;
    uint64_t records = 0;
    journal_stats(c->journal, &c->journal_after_compaction, &records);
    if (pthread_create(&c->housekeeper, NULL, housekeeping_run, c) != 0)
        return error_set(err, ASIDE_ERR_NOMEM, "cannot start the housekeeping thread");
    c->housekeeper_running = true;
    return ASIDE_OK;
}

void ops_close(aside_cache *c)
{
    if (c->housekeeper_running) {
        pthread_mutex_lock(&c->lock);
        c->stopping = true;
        pthread_cond_signal(&c->housekeeping);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->housekeeper, NULL);
        c->housekeeper_running = false;
    }
    journal_close(c->journal);
    c->journal = NULL;
    pthread_cond_destroy(&c->housekeeping);
}

/* ---- collection operations ---------------------------------------------------------------- */

static aside_status wrong_type(aside_error *err, const entry *e, const char *op,
                               aside_value_type want)
{
    return error_set(err, ASIDE_ERR_WRONG_TYPE, "%s holds a %s; %s works on a %s", e->key,
                     aside_value_type_name(e->meta.type), op, aside_value_type_name(want));
}

/* Run op on the live entry e (created first when missing and op writes). Lock held. */
static aside_status run_locked(aside_cache *c, const char *key, const char *op,
                               aside_value_type type, bool writes, json_t *args,
                               json_t **result, uint64_t *position, aside_error *err)
{
    entry *e = entry_find(c, key);
    if (e && !e->live)
        return wrong_type(err, e, op, type);
    if (!e && !writes) { /* a read of nothing: the answer of an empty collection */
        collection *empty = collection_create(type);
        aside_status st = empty ? collection_apply(empty, op, args, result, err)
                                : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        collection_free(empty);
        return st;
    }
    aside_status st = writes && grows(op) ? check_room(c, args, err) : ASIDE_OK;
    bool created = false;
    if (st == ASIDE_OK && !e) {
        collection *fresh = collection_create(type);
        if (!fresh || !(e = live_create(c, key, fresh)))
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        created = true;
    }
    if (st == ASIDE_OK)
        st = collection_apply(e->live, op, args, result, err);
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
    st = record_append(c, json_pack("{s:s, s:s, s:O?}", "k", key, "o", op, "a", args), position,
                       err);
    if (st == ASIDE_OK && created && c->default_ttl_ms) {
        ops_set_expiry(c, e, new_expiry(c));
        st = record_append(c, json_pack("{s:s, s:s, s:I}", "k", key, "o", "expire_at", "a",
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
    pthread_mutex_lock(&c->lock);
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
    pthread_mutex_unlock(&c->lock);
    collection_free(empty);
    free(sets);
    return st;
}

/* ---- JSON documents ----------------------------------------------------------------------- */

/* The document at key when it is not live: read through the cache (the system of record on a
 * miss). *doc NULL when there is none. */
static aside_status read_document(aside_cache *c, const char *key, const char *op, json_t **doc,
                                  aside_error *err)
{
    *doc = NULL;
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    aside_status st = e && e->meta.type != ASIDE_TYPE_JSON && !e->live
                          ? wrong_type(err, e, op, ASIDE_TYPE_JSON)
                          : ASIDE_OK;
    pthread_mutex_unlock(&c->lock);
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
    if (aside_value_data(v))
        *doc = json_loadb(aside_value_data(v), aside_value_size(v), JSON_DECODE_ANY, NULL);
    aside_value_release(v);
    return *doc ? ASIDE_OK : error_set(err, ASIDE_ERR_TOO_LARGE, "%s: the document is too large "
                                       "to edit in memory", key);
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
    int64_t expires_ms = e ? e->meta.expires_ms : new_expiry(c);
    if (e) /* the stored file goes after the journal has the document */
        entry_destroy(c, e, false);
    if (!(e = live_create(c, key, live)))
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    ops_set_expiry(c, e, expires_ms); /* the snapshot record carries it */
    st = record_append(c, snapshot_record(e), NULL, err);
    if (st == ASIDE_OK)
        store_remove(c->store, key);
    return st;
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
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    bool live = e && e->live;
    pthread_mutex_unlock(&c->lock);
    json_t *doc = NULL;
    aside_status st = live ? ASIDE_OK : read_document(c, key, op, &doc, err);
    if (st != ASIDE_OK)
        return st;
    if (!live && !doc && (!writes || !creates_document(op, args)))
        return error_set(err, ASIDE_ERR_NOT_FOUND, "no JSON document at %s", key);
    if (!live && !writes) { /* read a stored document where it is */
        collection *view = NULL;
        st = collection_from_json(ASIDE_TYPE_JSON, doc, &view, err);
        if (st == ASIDE_OK)
            st = collection_apply(view, op, args, result, err);
        collection_free(view);
        json_decref(doc);
        return st;
    }
    pthread_mutex_lock(&c->lock);
    if (!live && doc)
        st = make_live(c, key, doc, err);
    if (st == ASIDE_OK)
        st = run_locked(c, key, op, ASIDE_TYPE_JSON, writes, args, result, position, err);
    pthread_mutex_unlock(&c->lock);
    json_decref(doc);
    return st;
}

/* ---- the public operations ---------------------------------------------------------------- */

static aside_status parse_args(const char *args_json, json_t **args, aside_error *err)
{
    *args = NULL;
    if (!args_json)
        return ASIDE_OK;
    json_error_t error;
    *args = json_loads(args_json, 0, &error);
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
    pthread_mutex_lock(&c->lock);
    aside_status st = run_locked(c, key, op, type, writes, args, result, position, err);
    pthread_mutex_unlock(&c->lock);
    return st;
}

aside_status aside_op(aside_cache *c, const char *key, const char *op, const char *args_json,
                      char **result_json, aside_error *err)
{
    aside_status st = key ? aside_key_check(key, strlen(key), err) : ASIDE_OK;
    json_t *args = NULL, *result = NULL;
    if (st == ASIDE_OK && !op)
        st = error_set(err, ASIDE_ERR_INVALID, "no operation named");
    if (st == ASIDE_OK)
        st = parse_args(args_json, &args, err);
    uint64_t position = 0;
    if (st == ASIDE_OK)
        st = dispatch(c, key, op, args, &result, &position, err);
    if (st == ASIDE_OK && position)
        st = journal_wait(c->journal, position, err);
    if (st == ASIDE_OK && !(*result_json = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY)))
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    json_decref(args);
    json_decref(result);
    return st;
}

aside_status ops_put(aside_cache *c, const char *key, aside_value_type type, const void *data,
                     size_t size, aside_error *err)
{
    json_error_t error;
    json_t *content = json_loadb(data, size, JSON_DECODE_ANY, &error);
    if (!content)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "invalid JSON at line %d: %s", error.line,
                         error.text);
    collection *live = NULL;
    aside_status st = collection_from_json(type, content, &live, err);
    json_decref(content);
    if (st != ASIDE_OK)
        return st;
    uint64_t position = 0;
    pthread_mutex_lock(&c->lock);
    if (c->resident_bytes + collection_memory_bytes(live) > c->mem_limit)
        st = error_set(err, ASIDE_ERR_FULL, "%s (%llu bytes) does not fit in the memory budget "
                       "(%llu bytes, %llu of them held by values that cannot be evicted)", key,
                       (unsigned long long)collection_memory_bytes(live),
                       (unsigned long long)c->mem_limit, (unsigned long long)c->resident_bytes);
    entry *e = st == ASIDE_OK ? entry_find(c, key) : NULL;
    int64_t expires_ms = e && !e->live ? e->meta.expires_ms : new_expiry(c);
    if (e)
        entry_destroy(c, e, false);
    if (st == ASIDE_OK && !(e = live_create(c, key, live)))
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    else if (st != ASIDE_OK)
        collection_free(live);
    if (st == ASIDE_OK)
        ops_set_expiry(c, e, expires_ms);
    if (st == ASIDE_OK && (st = record_append(c, snapshot_record(e), &position, err)) == ASIDE_OK)
        store_remove(c->store, key);
    pthread_mutex_unlock(&c->lock);
    return st == ASIDE_OK ? journal_wait(c->journal, position, err) : st;
}

/* ---- times to live ------------------------------------------------------------------------ */

/* Keep e's new time to live or pin on the disk: in the journal or in its sidecar. Lock held;
 * *meta receives what to write to the sidecar after unlocking (when *rewrite). */
static aside_status persist_entry(aside_cache *c, entry *e, uint64_t *position, bool *rewrite,
                                  store_meta *meta, aside_error *err)
{
    *rewrite = !e->live;
    *meta = e->meta;
    if (!e->live)
        return ASIDE_OK;
    return record_append(c, json_pack("{s:s, s:s, s:I}", "k", e->key, "o", "expire_at", "a",
                                      (json_int_t)e->meta.expires_ms), position, err);
}

static aside_status finish_persist(aside_cache *c, const char *key, aside_status st,
                                   uint64_t position, bool rewrite, const store_meta *meta,
                                   aside_error *err)
{
    if (st == ASIDE_OK && rewrite)
        st = store_rewrite_meta(c->store, key, meta, err);
    if (st == ASIDE_OK && position)
        st = journal_wait(c->journal, position, err);
    return st;
}

static aside_status not_cached(aside_error *err, const char *key)
{
    return error_set(err, ASIDE_ERR_NOT_FOUND, "not in the cache: %s", key);
}

aside_status aside_expire(aside_cache *c, const char *key, uint64_t ttl_ms, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    uint64_t position = 0;
    bool rewrite = false;
    store_meta meta;
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    if (!e)
        st = not_cached(err, key);
    else {
        ops_set_expiry(c, e, ttl_ms ? clock_unix_ms() + (int64_t)ttl_ms : 0);
        st = persist_entry(c, e, &position, &rewrite, &meta, err);
    }
    pthread_mutex_unlock(&c->lock);
    return finish_persist(c, key, st, position, rewrite, &meta, err);
}

aside_status aside_ttl(aside_cache *c, const char *key, int64_t *ttl_ms, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    if (e) {
        int64_t left = e->meta.expires_ms - clock_unix_ms();
        *ttl_ms = !e->meta.expires_ms ? -1 : left > 0 ? left : 0;
    }
    pthread_mutex_unlock(&c->lock);
    return e ? ASIDE_OK : not_cached(err, key);
}

/* ---- pins and eviction -------------------------------------------------------------------- */

/* Pin e, whose value is in memory: out of both policies, its bytes resident. Lock held. */
static aside_status pin_locked(aside_cache *c, entry *e, aside_error *err)
{
    if (e->live || e->meta.pinned)
        return ASIDE_OK;
    if (!e->value)
        return error_set(err, ASIDE_ERR_FULL, "%s (%llu bytes) does not fit in the memory "
                         "budget: it cannot be pinned", e->key,
                         (unsigned long long)e->meta.size);
    uint64_t bytes = value_memory_bytes(e->value);
    if (c->resident_bytes + bytes > c->mem_limit)
        return error_set(err, ASIDE_ERR_FULL, "pinning %s needs %llu bytes; the memory budget "
                         "has %llu bytes for pins, %llu of them taken", e->key,
                         (unsigned long long)bytes, (unsigned long long)c->mem_limit,
                         (unsigned long long)c->resident_bytes);
    if (e->in_mem_policy)
        policy_remove(c->mem_policy, &e->mem_node);
    if (e->in_disk_policy)
        policy_remove(c->disk_policy, &e->disk_node);
    e->in_mem_policy = e->in_disk_policy = false;
    e->meta.pinned = true;
    c->disk_pinned_bytes += e->meta.size;
    entry_set_resident(c, e, bytes);
    evict_memory_for(c, 0);
    return ASIDE_OK;
}

aside_status aside_pin(aside_cache *c, const char *key, const aside_read_options *options,
                       aside_error *err)
{
    aside_value *v = NULL;
    aside_status st = aside_read(c, key, options, &v, NULL, err);
    if (st != ASIDE_OK)
        return st;
    bool rewrite = false;
    store_meta meta;
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    if (!e)
        st = not_cached(err, key);
    else if (!e->value && !e->live && aside_value_data(v))
        entry_hold(c, e, v); /* evicted meanwhile: take the value read */
    if (e && (st = pin_locked(c, e, err)) == ASIDE_OK && !e->live) {
        rewrite = true;
        meta = e->meta;
    }
    pthread_mutex_unlock(&c->lock);
    aside_value_release(v);
    return finish_persist(c, key, st, 0, rewrite, &meta, err);
}

aside_status aside_unpin(aside_cache *c, const char *key, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    bool rewrite = false;
    store_meta meta;
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    if (!e)
        st = not_cached(err, key);
    else if (e->meta.pinned && !e->live) {
        e->meta.pinned = false;
        c->disk_pinned_bytes -= e->meta.size;
        policy_insert(c->disk_policy, &e->disk_node);
        e->in_disk_policy = true;
        if (e->value) {
            e->mem_node.bytes = e->resident;
            entry_set_resident(c, e, 0);
            policy_insert(c->mem_policy, &e->mem_node);
            e->in_mem_policy = true;
        }
        rewrite = true;
        meta = e->meta;
    }
    pthread_mutex_unlock(&c->lock);
    return finish_persist(c, key, st, 0, rewrite, &meta, err);
}

aside_status aside_evict(aside_cache *c, const char *key, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    if (!e)
        st = not_cached(err, key);
    else if (e->live)
        st = error_set(err, ASIDE_ERR_CONFLICT, "%s is a %s the cache alone holds: memory is its "
                       "home, it cannot be evicted (delete it instead)", key,
                       aside_value_type_name(e->meta.type));
    else if (e->meta.pinned)
        st = error_set(err, ASIDE_ERR_CONFLICT, "%s is pinned: unpin it first", key);
    else
        entry_drop_memory(c, e);
    pthread_mutex_unlock(&c->lock);
    return st;
}
