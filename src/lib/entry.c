/* entry.c -- the entry layer: one entry per key, and the bytes the tiers hold.
 *
 * The cache keeps one entry per key in its index (core/table.c). Invariant: memory is a subset
 * of disk -- every value in memory also has its file in the disk tier, so evicting from memory
 * is only dropping a reference, and evicting from disk drops the whole entry. Each tier has its
 * own policy instance and byte budget; the bytes a tier holds are its policy's bytes, plus what
 * sits outside the policies: publications in shared memory (shm_bytes), live collections and
 * pinned values (resident_bytes), pinned files (disk_pinned_bytes). Those counters only change
 * here, and debug builds assert they never go below zero. JSON trees being built from text
 * reserve their estimate in resident_bytes meanwhile (entry_reserve_tree; tree_reserved_bytes
 * says how much of it is reservations), so the trees built at once fit the memory budget.
 *
 * Entries of live values (collections, edited documents: live.c) have no file; their end is
 * written to the journal here, by entry_record, so the layers above learn nothing by callback:
 * whoever destroys an entry, for whatever reason (delete, replace, expiry, eviction), the
 * journal hears of it. Expiry is bookkept here too: an entry whose time ran out is removed
 * when it is next looked up (entry_find), or by the housekeeping thread.
 *
 * Everything here runs with the cache lock held (asserted in debug builds), except the key
 * locks, which are taken before it. Nothing here reads, writes or syncs a value's file:
 * entry_destroy unlinks a key's file and sidecar, entry_unpublish a publication, and
 * entry_record appends one journal record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "util/util.h"

#ifndef NDEBUG
_Thread_local char cache_thread_token;
#endif

/* ---- the index ------------------------------------------------------------------------------- */

entry *entry_lookup(aside_cache *c, const char *key)
{
    cache_assert_locked(c);
    size_t len = strlen(key);
    table_node *n = table_find(c->index, key, len, table_hash(key, len));
    return n ? container_of(n, entry, node) : NULL;
}

bool entry_expired(const entry *e, int64_t now_ms)
{
    return e->meta.expires_ms && e->meta.expires_ms <= now_ms;
}

entry *entry_find(aside_cache *c, const char *key)
{
    entry *e = entry_lookup(c, key);
    if (e && e->meta.expires_ms && entry_expired(e, clock_unix_ms())) {
        entry_destroy(c, e, true);
        c->counters.expirations++;
        return NULL;
    }
    return e;
}

entry *entry_create(aside_cache *c, const char *key)
{
    cache_assert_locked(c);
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key = strdup(key);
    if (!e->key) {
        free(e);
        return NULL;
    }
    e->node.key = e->key;
    e->node.key_len = strlen(key);
    e->node.hash = table_hash(key, e->node.key_len);
    e->mem_node.key_hash = e->disk_node.key_hash = e->node.hash;
    table_insert(c->index, &e->node);
    e->counted_type = e->meta.type; /* bytes: zero */
    c->keys_by_type[e->counted_type]++;
    return e;
}

void entry_typed(aside_cache *c, entry *e)
{
    cache_assert_locked(c);
    assert(c->keys_by_type[e->counted_type] > 0);
    c->keys_by_type[e->counted_type]--;
    e->counted_type = e->meta.type;
    c->keys_by_type[e->counted_type]++;
}

/* ---- byte accounting ------------------------------------------------------------------------- */

void entry_unpublish(aside_cache *c, entry *e)
{
    cache_assert_locked(c);
    if (!e->shm_path)
        return;
    unlink(e->shm_path);
    free(e->shm_path);
    e->shm_path = NULL;
    assert(c->shm_bytes >= e->shm_bytes);
    c->shm_bytes -= e->shm_bytes;
    e->shm_bytes = 0;
}

void entry_set_resident(aside_cache *c, entry *e, uint64_t bytes)
{
    cache_assert_locked(c);
    assert(c->resident_bytes >= e->resident);
    c->resident_bytes = c->resident_bytes - e->resident + bytes;
    e->resident = bytes;
}

void entry_set_expiry(aside_cache *c, entry *e, int64_t expires_ms)
{
    cache_assert_locked(c);
    assert(e->meta.expires_ms == 0 || c->expiring > 0);
    c->expiring += (expires_ms != 0) - (e->meta.expires_ms != 0);
    e->meta.expires_ms = expires_ms;
}

int64_t entry_new_expiry(const aside_cache *c)
{
    return c->default_ttl_ms ? clock_unix_ms() + (int64_t)c->default_ttl_ms : 0;
}

void entry_place_on_disk(aside_cache *c, entry *e)
{
    int64_t expires_ms = e->meta.expires_ms;
    e->meta.expires_ms = 0;
    entry_set_expiry(c, e, expires_ms);
    if (e->meta.pinned) {
        c->disk_pinned_bytes += e->meta.size;
        return;
    }
    policy_insert(c->disk_policy, &e->disk_node);
    e->in_disk_policy = true;
}

void entry_drop_memory(aside_cache *c, entry *e)
{
    entry_unpublish(c, e);
    if (!e->value)
        return;
    if (e->in_mem_policy)
        policy_remove(c->mem_policy, &e->mem_node);
    e->in_mem_policy = false;
    if (!e->live)
        entry_set_resident(c, e, 0);
    aside_value_release(e->value);
    e->value = NULL;
}

void entry_retype(aside_cache *c, entry *e, aside_value_type type)
{
    assert(!e->live);
    entry_drop_memory(c, e);
    e->meta.type = type;
    entry_typed(c, e);
}

bool entry_snapshot(aside_cache *c, entry *e)
{
    cache_assert_locked(c);
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

/* ---- the journal ----------------------------------------------------------------------------- */

aside_status entry_record(aside_cache *c, json_t *record, uint64_t *position, aside_error *err)
{
    cache_assert_locked(c); /* records must be in the order of the changes */
    char *text = record ? json_dumps(record, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(record);
    aside_status st = text ? journal_append(c->journal, text, strlen(text), position, err)
                           : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    free(text);
    if (st != ASIDE_OK)
        c->journal_dirty = true; /* memory is ahead of the journal: compact soon */
    return st;
}

/* e leaves (deleted, replaced, expired): journal that a live entry is gone, free its form. */
static void live_gone(aside_cache *c, entry *e)
{
    if (!e->live)
        return;
    if (!c->replaying && c->journal) {
        aside_error err;
        if (entry_record(c, json_pack("{s:s, s:s}", "k", e->key, "o", "del"), NULL, &err) !=
            ASIDE_OK)
            log_line("error", "journal: %s", err.message);
    }
    collection_free(e->live);
    e->live = NULL;
}

/* ---- the end of an entry, eviction ----------------------------------------------------------- */

void entry_destroy(aside_cache *c, entry *e, bool remove_files)
{
    bool has_files = !e->live;
    entry_drop_memory(c, e);
    if (e->in_disk_policy)
        policy_remove(c->disk_policy, &e->disk_node);
    if (e->meta.pinned && !e->live) {
        assert(c->disk_pinned_bytes >= e->meta.size);
        c->disk_pinned_bytes -= e->meta.size;
    }
    live_gone(c, e);
    entry_set_resident(c, e, 0);
    entry_set_expiry(c, e, 0);
    if (remove_files && has_files)
        store_remove(c->store, e->key);
    table_remove(c->index, &e->node);
    assert(c->keys_by_type[e->counted_type] > 0);
    c->keys_by_type[e->counted_type]--;
    free(e->key);
    free(e);
}

void entry_evict_memory_for(aside_cache *c, uint64_t bytes)
{
    cache_assert_locked(c);
    while (policy_bytes(c->mem_policy) + c->shm_bytes + c->resident_bytes + bytes >
           c->mem_limit) {
        policy_node *n = policy_victim(c->mem_policy);
        if (!n)
            return;
        entry *e = container_of(n, entry, mem_node);
        e->in_mem_policy = false;
        entry_drop_memory(c, e);
        c->counters.evictions_memory++;
    }
}

aside_status entry_reserve_tree(aside_cache *c, const char *what, uint64_t bytes,
                                aside_error *err)
{
    cache_assert_locked(c);
    if (c->resident_bytes + bytes <= c->mem_limit) {
        c->resident_bytes += bytes;
        c->tree_reserved_bytes += bytes;
        entry_evict_memory_for(c, 0);
        return ASIDE_OK;
    }
    if (c->resident_bytes - c->tree_reserved_bytes + bytes <= c->mem_limit) {
        aside_status st = error_set(err, ASIDE_ERR_NOMEM, "%s: other JSON documents are being "
                                    "parsed into the memory budget; retry", what);
        if (err)
            snprintf(err->code, sizeof err->code, "busy");
        return st;
    }
    return error_set(err, ASIDE_ERR_FULL, "%s: parsing it needs about %llu bytes of memory; the "
                     "memory budget (%llu bytes) has %llu of them free for values that cannot "
                     "be evicted", what, (unsigned long long)bytes,
                     (unsigned long long)c->mem_limit,
                     (unsigned long long)(c->mem_limit > c->resident_bytes
                                              ? c->mem_limit - c->resident_bytes : 0));
}

void entry_release_tree(aside_cache *c, uint64_t bytes)
{
    cache_assert_locked(c);
    assert(c->tree_reserved_bytes >= bytes && c->resident_bytes >= bytes);
    c->tree_reserved_bytes -= bytes;
    c->resident_bytes -= bytes;
}

void entry_evict_disk_for(aside_cache *c, uint64_t bytes)
{
    cache_assert_locked(c);
    while (policy_bytes(c->disk_policy) + c->disk_pinned_bytes + bytes > c->disk_limit) {
        policy_node *n = policy_victim(c->disk_policy);
        if (!n)
            return;
        entry *e = container_of(n, entry, disk_node);
        e->in_disk_policy = false;
        entry_destroy(c, e, true);
        c->counters.evictions_disk++;
    }
}

/* ---- hits ------------------------------------------------------------------------------------ */

void entry_touch(aside_cache *c, entry *e)
{
    cache_assert_locked(c);
    e->hits++;
    e->last_access_ms = clock_unix_ms();
    if (e->in_disk_policy)
        policy_touch(c->disk_policy, &e->disk_node);
    if (e->in_mem_policy)
        policy_touch(c->mem_policy, &e->mem_node);
}

void entry_hold(aside_cache *c, entry *e, aside_value *v)
{
    cache_assert_locked(c);
    if (!v || e->value || e->live || (!aside_value_data(v) && !value_frame(v)))
        return; /* already held, or a value served from its file */
    uint64_t bytes = value_memory_bytes(v);
    if (e->meta.pinned) {
        if (c->resident_bytes + bytes > c->mem_limit)
            return;
        entry_evict_memory_for(c, 0);
        entry_set_resident(c, e, bytes);
    } else {
        if (bytes + c->resident_bytes > c->mem_limit)
            return;
        entry_evict_memory_for(c, bytes);
        e->mem_node.bytes = bytes;
        policy_insert(c->mem_policy, &e->mem_node);
        e->in_mem_policy = true;
    }
    e->value = aside_value_retain(v);
    value_set_generation(v, e->generation);
}

/* ---- key locks ------------------------------------------------------------------------------- */

static pthread_mutex_t *key_lock_of(aside_cache *c, const char *key)
{
    return &c->key_locks[table_hash(key, strlen(key)) % KEY_LOCKS];
}

void entry_key_lock(aside_cache *c, const char *key)
{
#ifndef NDEBUG
    assert(atomic_load(&c->lock_owner) != &cache_thread_token); /* key lock first */
#endif
    pthread_mutex_lock(key_lock_of(c, key));
}

void entry_key_unlock(aside_cache *c, const char *key)
{
    pthread_mutex_unlock(key_lock_of(c, key));
}
