/* retention.c -- how long and where a key is kept: times to live, pins, eviction on demand.
 *
 * A time to live is an expiry time on the entry (entry.c counts the entries that have one and
 * removes an expired entry when it is next looked up; the housekeeping thread removes the
 * others). A pinned value leaves the memory policy (and its file the disk policy) and counts as
 * resident; a pin that cannot fit in the memory budget is refused with ASIDE_ERR_FULL.
 *
 * Both are kept on the disk so they survive restarts: a live entry's time to live in the
 * journal ({"k", "o": "expire_at", "a": unix ms}), a file's time to live and pin in its
 * sidecar. The sidecar is rewritten after the lock is released, from the copy of the entry's
 * description taken under it; the key's key lock, held from before the change until the
 * sidecar is written, keeps a commit of the same key (load.c) from writing the key's file and
 * sidecar in between, so the sidecar written always describes the file that is there. */
#include <string.h>

#include "cache.h"
#include "util/util.h"

/* ---- keeping it on the disk ------------------------------------------------------------------ */

/* Keep e's new time to live or pin on the disk: in the journal or in its sidecar. Lock held;
 * *meta receives what to write to the sidecar after unlocking (when *rewrite). */
static aside_status persist_entry(aside_cache *c, entry *e, uint64_t *position, bool *rewrite,
                                  store_meta *meta, aside_error *err)
{
    *rewrite = !e->live;
    *meta = e->meta;
    if (!e->live)
        return ASIDE_OK;
    return entry_record(c, json_pack("{s:s, s:s, s:I}", "k", e->key, "o", "expire_at", "a",
                                     (json_int_t)e->meta.expires_ms), position, err);
}

/* After unlocking: write the sidecar (when rewrite), release key's key lock, wait for the
 * journal record (at position, when not 0). */
static aside_status finish_persist(aside_cache *c, const char *key, aside_status st,
                                   uint64_t position, bool rewrite, const store_meta *meta,
                                   aside_error *err)
{
    if (st == ASIDE_OK && rewrite)
        st = store_rewrite_meta(c->store, key, meta, err);
    entry_key_unlock(c, key);
    if (st == ASIDE_OK && position)
        st = journal_wait(c->journal, position, err);
    return st;
}

static aside_status not_cached(aside_error *err, const char *key)
{
    return error_set(err, ASIDE_ERR_NOT_FOUND, "not in the cache: %s", key);
}

/* ---- times to live --------------------------------------------------------------------------- */

aside_status aside_expire(aside_cache *c, const char *key, uint64_t ttl_ms, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    uint64_t position = 0;
    bool rewrite = false;
    store_meta meta;
    entry_key_lock(c, key);
    cache_lock(c);
    entry *e = entry_find(c, key);
    if (!e)
        st = not_cached(err, key);
    else {
        entry_set_expiry(c, e, ttl_ms ? clock_unix_ms() + (int64_t)ttl_ms : 0);
        st = persist_entry(c, e, &position, &rewrite, &meta, err);
    }
    cache_unlock(c);
    return finish_persist(c, key, st, position, rewrite, &meta, err);
}

aside_status aside_ttl(aside_cache *c, const char *key, int64_t *ttl_ms, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    cache_lock(c);
    entry *e = entry_find(c, key);
    if (e) {
        int64_t left = e->meta.expires_ms - clock_unix_ms();
        *ttl_ms = !e->meta.expires_ms ? -1 : left > 0 ? left : 0;
    }
    cache_unlock(c);
    return e ? ASIDE_OK : not_cached(err, key);
}

/* ---- pins and eviction ----------------------------------------------------------------------- */

/* Pin e, whose value is in memory: out of both policies, its bytes resident. Lock held. */
static aside_status pin_locked(aside_cache *c, entry *e, aside_error *err)
{
    cache_assert_locked(c);
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
    entry_evict_memory_for(c, 0);
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
    entry_key_lock(c, key);
    cache_lock(c);
    entry *e = entry_find(c, key);
    if (!e)
        st = not_cached(err, key);
    else if (!e->value && !e->live && aside_value_data(v) &&
             value_generation(v) == e->generation)
        entry_hold(c, e, v); /* evicted meanwhile: take the value read, if still the content */
    if (e && (st = pin_locked(c, e, err)) == ASIDE_OK && !e->live) {
        rewrite = true;
        meta = e->meta;
    }
    cache_unlock(c);
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
    entry_key_lock(c, key);
    cache_lock(c);
    entry *e = entry_find(c, key);
    if (!e)
        st = not_cached(err, key);
    else if (e->meta.pinned && !e->live) {
        e->meta.pinned = false;
        assert(c->disk_pinned_bytes >= e->meta.size);
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
    cache_unlock(c);
    return finish_persist(c, key, st, 0, rewrite, &meta, err);
}

aside_status aside_evict(aside_cache *c, const char *key, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    cache_lock(c);
    entry *e = entry_find(c, key);
    if (!e)
        st = not_cached(err, key);
    else if (e->live)
        st = error_set(err, ASIDE_ERR_CONFLICT, "%s is a %s the cache alone holds: memory is its "
                       "home, it cannot be evicted (delete it instead)", key,
                       aside_value_type_name(e->meta.type));
    else if (e->meta.pinned)
        st = error_set(err, ASIDE_ERR_CONFLICT, "%s is pinned: unpin it first", key);
    else {
        c->counters.evictions_explicit += e->value != NULL;
        entry_drop_memory(c, e);
    }
    cache_unlock(c);
    return st;
}
