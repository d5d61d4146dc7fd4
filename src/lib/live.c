/* live.c -- what the cache alone holds: live entries, the journal's replay, compaction.
 *
 * A list, set, map, counter or edited JSON document has no system of record and no file: its
 * home is memory (entry->live, the mutable form in value/collection.c), its disk copy the
 * journal (store/journal.c). Live entries sit outside the eviction policies; their bytes are
 * "resident" and count against the memory budget, and a change that would pass the budget is
 * refused (ASIDE_ERR_FULL) rather than evicting data that exists nowhere else. Readers get an
 * immutable JSON snapshot (entry->value), made on the first read after a change (entry.c).
 *
 * Journal records, appended under the cache lock in the order of the changes (entry_record):
 * an operation {"k": key, "o": op, "a": args} (op.c), {"k", "o": "del"} when a live entry
 * goes (entry.c), {"k", "o": "expire_at", "a": unix ms} (op.c, retention.c), and snapshots
 * {"k", "t": type, "v": content, "x": expires} that compaction and conversions (put, editing a
 * stored document) write. Operations are deterministic, so replaying the records rebuilds the
 * state; a record whose operation fails on replay failed identically when it was first run.
 *
 * At open the journal is replayed before the disk tier is scanned: the journal's final state of
 * a key wins over a file of the same key. That is right because a change from live to file
 * (put, a load from the system of record) journals "del" before the file lands, and a change
 * from file to live (put of a collection, editing a stored JSON document) journals the snapshot
 * before the file goes.
 *
 * Compaction rewrites the journal as one snapshot per live entry when it passes twice its size
 * after the last compaction and either a minimum size or COMPACT_MIN_RECORDS records (replay's
 * cost is mostly per record), or after a failed append or a failed sync. The snapshots
 * are written under the cache lock (write(2)s, no sync), so they are one consistent state; the
 * sync, the carrying over of records appended meanwhile, and the swap run without it
 * (journal.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"
#include "util/util.h"

enum {
    DEFAULT_COMPACT_MIN_BYTES = 64 << 20,
    /* Replay costs about a microsecond a record whatever its size, so a journal of many small
     * records (a counter incremented a million times is 59 MB) compacts past this many too,
     * keeping the replay at start around a tenth of a second beyond what the state itself
     * costs. */
    COMPACT_MIN_RECORDS = 100000
};

/* ---- live entries ---------------------------------------------------------------------------- */

static json_t *snapshot_record(const entry *e)
{
    json_t *content = collection_json(e->live);
    if (!content)
        return NULL;
    return json_pack("{s:s, s:s, s:o, s:I}", "k", e->key, "t",
                     aside_value_type_name(e->meta.type), "v", content, "x",
                     (json_int_t)e->meta.expires_ms);
}

void live_changed(aside_cache *c, entry *e)
{
    cache_assert_locked(c);
    aside_value_release(e->value);
    e->value = NULL;
    e->generation = ++c->generations;
    e->meta.size = collection_memory_bytes(e->live);
    e->last_access_ms = clock_unix_ms();
    entry_set_resident(c, e, collection_memory_bytes(e->live));
    entry_evict_memory_for(c, 0);
}

entry *live_create(aside_cache *c, const char *key, collection *live)
{
    entry *e = entry_create(c, key);
    if (!e) {
        collection_free(live);
        return NULL;
    }
    e->live = live;
    e->meta.type = collection_type(live);
    entry_typed(c, e);
    e->meta.fetched_ms = clock_unix_ms();
    live_changed(c, e);
    return e;
}

aside_status live_replace(aside_cache *c, entry *old, const char *key, collection *live,
                          int64_t expires_ms, uint64_t *position, aside_error *err)
{
    if (old) /* a stored file goes after the journal has the new value */
        entry_destroy(c, old, false);
    entry *e = live_create(c, key, live);
    if (!e)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    entry_set_expiry(c, e, expires_ms); /* the snapshot record carries it */
    aside_status st = entry_record(c, snapshot_record(e), position, err);
    if (st == ASIDE_OK)
        store_remove(c->store, key);
    return st;
}

/* Refuse live if it does not fit the memory budget beside what cannot be evicted. */
static aside_status check_fits(const aside_cache *c, const char *key, const collection *live,
                               aside_error *err)
{
    if (c->resident_bytes + collection_memory_bytes(live) <= c->mem_limit)
        return ASIDE_OK;
    return error_set(err, ASIDE_ERR_FULL, "%s (%llu bytes) does not fit in the memory budget "
                     "(%llu bytes, %llu of them held by values that cannot be evicted)", key,
                     (unsigned long long)collection_memory_bytes(live),
                     (unsigned long long)c->mem_limit, (unsigned long long)c->resident_bytes);
}

aside_status live_key_check(const char *key, aside_error *err)
{
    if (value_utf8_valid(key, strlen(key)))
        return ASIDE_OK;
    aside_status st = error_set(err, ASIDE_ERR_INVALID, "a collection's key must be UTF-8");
    if (err)
        snprintf(err->code, sizeof err->code, "bad_utf8");
    return st;
}

aside_status live_put(aside_cache *c, const char *key, aside_value_type type, const void *data,
                      size_t size, aside_error *err)
{
    aside_status st = live_key_check(key, err);
    if (st != ASIDE_OK)
        return st;
    /* its tree is reserved before it is built (about VALUE_JSON_TREE_FACTOR times the text) */
    uint64_t estimate = (uint64_t)size * VALUE_JSON_TREE_FACTOR;
    cache_lock(c);
    st = entry_reserve_tree(c, key, estimate, err);
    cache_unlock(c);
    if (st != ASIDE_OK)
        return st;
    json_t *content = NULL;
    collection *live = NULL;
    st = value_json_parse(data, size, JSON_DECODE_ANY, c->decode.json_max_depth, &content, err);
    if (st == ASIDE_OK)
        st = collection_from_json(type, content, &live, err);
    json_decref(content);
    cache_lock(c);
    entry_release_tree(c, estimate); /* the live entry counts the tree from here */
    if (st != ASIDE_OK) {
        cache_unlock(c);
        return st;
    }
    uint64_t position = 0;
    st = check_fits(c, key, live, err);
    entry *e = st == ASIDE_OK ? entry_find(c, key) : NULL;
    int64_t expires_ms = e && !e->live ? e->meta.expires_ms : entry_new_expiry(c);
    if (st == ASIDE_OK)
        st = live_replace(c, e, key, live, expires_ms, &position, err);
    else
        collection_free(live);
    cache_unlock(c);
    return st == ASIDE_OK ? journal_wait(c->journal, position, err) : st;
}

/* ---- replay ---------------------------------------------------------------------------------- */

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
            entry_set_expiry(c, e, (int64_t)json_integer_value(args));
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
    json_t *result = NULL; /* a record was accepted under some limit: replay it under the most */
    if (e->live) { /* measured and counted once, at the end of the replay (replay_settle) */
        collection_defer_measure(e->live, true);
        collection_apply(e->live, op, args, VALUE_JSON_MAX_DEPTH, &result, NULL);
    }
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
        entry_set_expiry(c, e, expires_ms);
}

static void replay_record(void *ctx, const char *payload, size_t len)
{
    aside_cache *c = ctx;
    json_t *r = json_loadb(payload, len, 0, NULL);
    const char *key = json_string_value(json_object_get(r, "k"));
    const char *op = json_string_value(json_object_get(r, "o"));
    const char *type = json_string_value(json_object_get(r, "t"));
    cache_lock(c); /* nobody else uses the cache yet: taken for the entry layer's checks */
    if (key && op)
        replay_op(c, key, op, json_object_get(r, "a"));
    else if (key && type)
        replay_snapshot(c, key, type, json_object_get(r, "v"),
                        (int64_t)json_integer_value(json_object_get(r, "x")));
    cache_unlock(c);
    json_decref(r);
}

/* After the replay: measure each live entry once and count its bytes. Measuring after each
 * replayed edit would cost the document's size per edit, quadratic in the edits of one
 * document. */
static void replay_settle(aside_cache *c)
{
    cache_lock(c);
    size_t cursor = 0;
    for (table_node *n = table_next(c->index, &cursor, NULL); n;
         n = table_next(c->index, &cursor, n)) {
        entry *e = container_of(n, entry, node);
        if (e->live) {
            collection_defer_measure(e->live, false);
            live_changed(c, e);
        }
    }
    cache_unlock(c);
}

aside_status live_open(aside_cache *c, const aside_config *cfg, aside_error *err)
{
    c->fsync = (aside_fsync)cfg->fsync;
    c->default_ttl_ms = cfg->default_ttl_ms;
    c->compact_min_bytes = cfg->journal_compact_bytes ? cfg->journal_compact_bytes
                                                      : DEFAULT_COMPACT_MIN_BYTES;
    c->replaying = true;
    aside_status st = journal_open(store_root(c->store), c->fsync, replay_record, c, &c->journal,
                                   err);
    c->replaying = false;
    if (st != ASIDE_OK)
        return st;
    replay_settle(c);
    uint64_t records = 0;
    journal_stats(c->journal, &c->journal_after_compaction, &records);
    return ASIDE_OK;
}

void live_close(aside_cache *c)
{
    journal_close(c->journal);
    c->journal = NULL;
}

/* ---- compaction ------------------------------------------------------------------------------ */

bool live_compaction_due(aside_cache *c)
{
    cache_assert_locked(c);
    uint64_t bytes = 0, records = 0;
    journal_stats(c->journal, &bytes, &records);
    bool doubled = bytes > 2 * c->journal_after_compaction; /* so compactions cost linear time */
    return c->journal_dirty || journal_needs_rewrite(c->journal) ||
           (doubled && (bytes > c->compact_min_bytes || records > COMPACT_MIN_RECORDS));
}

/* Begin a rewrite of the journal and write one snapshot per live entry to it. Lock held: the
 * snapshots are one state, and no append runs between the beginning and the last of them. */
static aside_status write_snapshots(aside_cache *c, journal_rewrite **w, aside_error *err)
{
    cache_assert_locked(c);
    aside_status st = journal_rewrite_begin(c->journal, w, err);
    size_t cursor = 0;
    for (table_node *n = st == ASIDE_OK ? table_next(c->index, &cursor, NULL) : NULL;
         n && st == ASIDE_OK; n = table_next(c->index, &cursor, n)) {
        entry *e = container_of(n, entry, node);
        if (!e->live)
            continue;
        json_t *record = snapshot_record(e);
        char *text = record ? json_dumps(record, JSON_COMPACT) : NULL;
        st = text ? journal_rewrite_add(*w, text, strlen(text), err)
                  : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        free(text);
        json_decref(record);
    }
    return st;
}

aside_status live_compact(aside_cache *c, aside_error *err)
{
    cache_lock(c);
    while (c->compacting)
        cache_wait(c, &c->compacted, NULL);
    c->compacting = true;
    int64_t started_ns = clock_mono_ns();
    journal_rewrite *w = NULL;
    aside_status st = write_snapshots(c, &w, err);
    bool was_dirty = c->journal_dirty;
    c->journal_dirty = false; /* the snapshots hold memory's state; a later failure marks it */
    cache_unlock(c);
    if (w && journal_rewrite_end(w, st == ASIDE_OK, err) != ASIDE_OK)
        st = err ? err->status : ASIDE_ERR_IO;
    cache_lock(c);
    if (st == ASIDE_OK) {
        uint64_t records = 0;
        journal_stats(c->journal, &c->journal_after_compaction, &records);
        c->counters.log_compactions++;
        c->counters.log_compaction_seconds += (double)(clock_mono_ns() - started_ns) / 1e9;
    } else
        c->journal_dirty = c->journal_dirty || was_dirty;
    c->compacting = false;
    pthread_cond_broadcast(&c->compacted);
    cache_unlock(c);
    return st;
}

aside_status aside_compact(aside_cache *c, aside_error *err)
{
    return live_compact(c, err);
}
