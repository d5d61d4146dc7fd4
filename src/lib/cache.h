/* cache.h -- the cache's state, its lock, and the entry layer (entry.c).
 *
 * libaside is built in layers; a file calls only the files below it, never one above, so no
 * two files call each other (scripts/check-cycles.sh checks it on the object files):
 *
 *   cache.c         open and close, statistics, entry listings, status names, configuration
 *   housekeeping.c  the thread that removes expired keys, syncs and compacts the journal
 *   write.c         write, put, store a frame, list, delete
 *   publish.c       frames published in shared memory
 *   op.c            aside_op: collection and JSON-document operations
 *   retention.c     times to live, pins, explicit eviction
 *   read.c          read, update (revalidation), stale-while-revalidate, stale-if-error
 *   live.c          live entries (what the cache alone holds), the journal's replay, compaction
 *   tier.c          the steps of every call: a key in the tiers, its single flight, its type
 *   load.c          files of the disk tier: loading, fetching from the system of record, commit
 *   entry.c         entries: the index, byte accounting, eviction, expiry, journal records
 *
 * Each file calls only files below it in this list (and the modules below lib/: core, store,
 * sor, value, frame, arrow, engine, util). Headers: this one for the state and the entry layer,
 * load.h, tier.h, live.h and housekeeping.h for theirs; read.c, op.c, retention.c, publish.c,
 * write.c and cache.c implement the public API (aside.h, lib.h) and need no header of their own.
 *
 * Locking: one mutex (cache->lock) guards the index, the policies, the budgets and every entry
 * field. It is held for lookups and bookkeeping. No file is read, fetched or synced under it,
 * and no value or sidecar is written under it. The file-system calls it does cover: appending a
 * journal record (one write(2), so records are in the order of the changes), creating a
 * compaction's new journal and writing its snapshots into it (no sync: that runs after
 * unlocking), unlinking a key's file and sidecar or its publication, and renaming a publication
 * into place. A journal append may wait for the journal's own lock, which the end of a
 * compaction holds while it carries over, syncs and swaps in the new journal. A thread never
 * keeps an entry pointer across an unlock: it finds the entry again. Functions said to run "lock
 * held" assert it in debug builds (cache_assert_locked).
 *
 * A key's file and sidecar have one writer at a time (store.h asks it): commits, pins, unpins,
 * times to live and deletes of a key hold its key lock (entry_key_lock) around the write, taken
 * before the cache lock and never while holding it. */
#ifndef ASIDE_CACHE_H
#define ASIDE_CACHE_H

#include <assert.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "aside.h"
#include "core/core.h"
#include "sor/sor.h"
#include "store/store.h"
#include "value/value.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

enum {
    KEY_LOCKS = 64 /* key locks, a key's chosen by its hash: writers of two keys rarely meet */
};

typedef struct entry {
    table_node  node;
    char       *key;
    aside_value *value;   /* in memory, or NULL */
    policy_node mem_node; /* in the memory policy while value != NULL */
    policy_node disk_node; /* in the disk policy (always: memory is a subset of disk) */
    store_meta  meta;
    bool        verified; /* the file's checksum was checked since the cache opened */
    bool        revalidating; /* a background revalidation runs */
    int64_t     validated_ms; /* unix ms of the fetch, or of the last "not modified" */
    uint64_t    generation;   /* which content this is: a new one for each install */
    char       *shm_path;     /* the frame published in shared memory, or NULL */
    uint64_t    shm_bytes;
    uint64_t    hits;
    int64_t     last_access_ms;
    collection *live;     /* held by the cache alone (a collection, an edited document): its
                             mutable form; value is then a snapshot of it, or NULL */
    uint64_t    resident; /* bytes kept outside the memory policy: live or pinned */
    bool        in_mem_policy, in_disk_policy;
    aside_value_type counted_type; /* the type keys_by_type counts it under (entry_typed) */
} entry;

struct aside_cache {
    pthread_mutex_t lock;
#ifndef NDEBUG
    _Atomic(const void *) lock_owner; /* the holding thread's token (debug builds) */
#endif
    pthread_mutex_t key_locks[KEY_LOCKS];
    engine         *engine; /* reads frames, runs their SQL */
    value_context   decode; /* what decoding a frame needs */
    table          *index;
    policy         *mem_policy, *disk_policy;
    uint64_t        mem_limit, disk_limit;
    aside_stats     counters; /* hits, misses, evictions, sor_fetches ... (under the lock) */
    atomic_uint_fast64_t flight_waiting, flight_waits; /* followers of flights (tier_follow),
                                                          counted without the lock */
    store          *store;
    sor            *sd; /* the directory, or the program's callbacks */
    sor            *s3; /* NULL without a bucket */
    flight_group   *flights;
    int64_t         opened_mono_ns;
    unsigned        background; /* background revalidations running; close waits for them */
    pthread_cond_t  background_done;
    uint64_t        generations; /* the last generation given to an entry */
    char           *shm_dir;     /* where frames are published, or NULL: not at all */
    bool            shm_dir_ours; /* created at open: removed at close */
    uint64_t        shm_bytes;    /* of all publications, counted in the memory budget */
    /* what the cache alone holds (live.c) */
    journal        *journal;
    aside_fsync     fsync;
    uint64_t        default_ttl_ms;
    uint64_t        resident_bytes;   /* live collections and pinned values, outside the policy */
    uint64_t        tree_reserved_bytes; /* of resident_bytes: trees being built (entry_reserve_tree) */
    uint64_t        disk_pinned_bytes; /* pinned values' files, outside the disk policy */
    uint64_t        expiring;         /* entries with a time to live */
    uint64_t        keys_by_type[ASIDE_TYPE_COUNTER + 1]; /* entries by counted_type */
    uint64_t        compact_min_bytes; /* compaction starts past this journal size ... */
    uint64_t        journal_after_compaction; /* ... and twice the size after the last one */
    bool            journal_dirty;    /* an append failed: the next tick compacts */
    bool            replaying;        /* the journal is being read: changes are not journaled */
    bool            compacting;       /* a compaction runs: another waits for compacted */
    pthread_cond_t  compacted;
    /* the housekeeping thread (housekeeping.c) */
    bool            stopping;
    bool            housekeeper_running;
    pthread_t       housekeeper;
    pthread_cond_t  housekeeping;
};

/* ---- the lock ------------------------------------------------------------------------------
 *
 * Every file takes the cache lock through these, so debug builds know which thread holds it
 * (a token per thread) and can assert it where a function needs it. Release builds (NDEBUG)
 * compile down to the plain mutex calls. */

#ifndef NDEBUG
/* The calling thread's token: its address is unique among the threads alive. */
extern _Thread_local char cache_thread_token;
#endif

static inline void cache_lock(aside_cache *c)
{
    pthread_mutex_lock(&c->lock);
#ifndef NDEBUG
    atomic_store(&c->lock_owner, &cache_thread_token);
#endif
}

static inline void cache_unlock(aside_cache *c)
{
#ifndef NDEBUG
    assert(atomic_load(&c->lock_owner) == &cache_thread_token);
    atomic_store(&c->lock_owner, NULL);
#endif
    pthread_mutex_unlock(&c->lock);
}

/* Assert (debug builds) that the calling thread holds the cache lock. */
static inline void cache_assert_locked(aside_cache *c)
{
#ifndef NDEBUG
    assert(atomic_load(&c->lock_owner) == &cache_thread_token);
#else
    (void)c;
#endif
}

/* Wait on cond, which releases the lock meanwhile (until is NULL: no deadline). */
static inline void cache_wait(aside_cache *c, pthread_cond_t *cond, const struct timespec *until)
{
#ifndef NDEBUG
    assert(atomic_load(&c->lock_owner) == &cache_thread_token);
    atomic_store(&c->lock_owner, NULL);
#endif
    if (until)
        pthread_cond_timedwait(cond, &c->lock, until);
    else
        pthread_cond_wait(cond, &c->lock);
#ifndef NDEBUG
    atomic_store(&c->lock_owner, &cache_thread_token);
#endif
}

/* ---- entries (entry.c); all of them lock held ------------------------------------------------ */

/* The entry of key, or NULL; an entry whose time to live ran out is removed and not found. */
entry   *entry_find(aside_cache *c, const char *key);
/* The entry of key, expired or not. */
entry   *entry_lookup(aside_cache *c, const char *key);
/* A new empty entry for key in the index; NULL when out of memory. */
entry   *entry_create(aside_cache *c, const char *key);
/* Unlink e's publication: readers that mapped it keep their mapping, new ones cannot open it. */
void     entry_unpublish(aside_cache *c, entry *e);
/* Drop e's value (and publication) from memory; its file stays. */
void     entry_drop_memory(aside_cache *c, entry *e);
/* A new file entry (meta set) joins the disk tier's accounting: its policy, or the pinned bytes. */
void     entry_place_on_disk(aside_cache *c, entry *e);
/* e's bytes outside the memory policy (live or pinned) are now bytes. */
void     entry_set_resident(aside_cache *c, entry *e, uint64_t bytes);
/* Remove e from the index and free it; its files too when remove_files. A live entry's end is
 * journaled ("del") unless the journal is being replayed. */
void     entry_destroy(aside_cache *c, entry *e, bool remove_files);
/* A hit on e: its count, its access time, both policies. */
void     entry_touch(aside_cache *c, entry *e);
/* Keep v in memory for e if it is memory-backed and fits the budget: in the memory policy, or
 * outside it for good when e is pinned. */
void     entry_hold(aside_cache *c, entry *e, aside_value *v);
/* Make file entry e of type type: its memory copy of another type is dropped, to be decoded
 * again from the file as type. */
void     entry_retype(aside_cache *c, entry *e, aside_value_type type);
/* e->meta.type was set: count e under it in keys_by_type (every site that sets a type calls
 * it; a new entry counts as bytes until then). Lock held. */
void     entry_typed(aside_cache *c, entry *e);
/* A snapshot value of live entry e for readers (held in e->value); false when out of memory. */
bool     entry_snapshot(aside_cache *c, entry *e);
/* Evict from memory until bytes more fit in its budget (or nothing evictable is left). */
void     entry_evict_memory_for(aside_cache *c, uint64_t bytes);
/* Reserve bytes of the memory budget for a JSON tree about to be built (its estimate, from its
 * text's size), counted as resident until entry_release_tree: evicts what it can, then refuses
 * ASIDE_ERR_FULL when the tree cannot fit beside what cannot be evicted, or ASIDE_ERR_NOMEM
 * with err->code "busy" when it could, once the trees being built now are done (trees built at
 * once are bounded by the budget). Lock held. */
aside_status entry_reserve_tree(aside_cache *c, const char *what, uint64_t bytes,
                                aside_error *err);
/* Give back a reservation of entry_reserve_tree (0: none). Lock held. */
void     entry_release_tree(aside_cache *c, uint64_t bytes);
/* Evict whole entries from the disk tier until bytes more fit in its budget. */
void     entry_evict_disk_for(aside_cache *c, uint64_t bytes);
/* True if e has a time to live that ran out by now_ms. Needs no lock of its own: e's. */
bool     entry_expired(const entry *e, int64_t now_ms);
/* Set e's expiry (unix ms, 0: none), keeping the count of expiring entries. */
void     entry_set_expiry(aside_cache *c, entry *e, int64_t expires_ms);
/* The expiry of a key entering the cache now: the default time to live, or none. No lock. */
int64_t  entry_new_expiry(const aside_cache *c);
/* Append record (taken: freed here) to the journal; *position (may be NULL) receives the
 * position to wait for. A failed append marks the journal dirty (the next tick compacts). */
aside_status entry_record(aside_cache *c, json_t *record, uint64_t *position, aside_error *err);

/* ---- key locks (entry.c); taken before the cache lock, never while holding it ---------------- */

void entry_key_lock(aside_cache *c, const char *key);
void entry_key_unlock(aside_cache *c, const char *key);

#endif
