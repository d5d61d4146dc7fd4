/* cache.h -- the cache's own structures, shared by the files of lib/.
 *
 *   aside.c  reads, loads, writes, the disk tier and shared memory (the public API's core)
 *   ops.c    what the cache alone holds: collection operations and their journal, times to
 *            live, pins, explicit eviction, and the housekeeping thread
 *
 * Everything here is used with the cache's lock held unless said otherwise. */
#ifndef ASIDE_CACHE_H
#define ASIDE_CACHE_H

#include <pthread.h>
#include <stddef.h>

#include "aside.h"
#include "core/core.h"
#include "sor/sor.h"
#include "store/store.h"
#include "value/value.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

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
} entry;

struct aside_cache {
    pthread_mutex_t lock;
    engine         *engine; /* reads frames, runs their SQL */
    value_context   decode; /* what decoding a frame needs */
    table          *index;
    policy         *mem_policy, *disk_policy;
    uint64_t        mem_limit, disk_limit;
    aside_stats     counters; /* hits, misses, evictions, sor_fetches */
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
    /* what the cache alone holds (ops.c) */
    journal        *journal;
    aside_fsync     fsync;
    uint64_t        default_ttl_ms;
    uint64_t        resident_bytes;   /* live collections and pinned values, outside the policy */
    uint64_t        disk_pinned_bytes; /* pinned values' files, outside the disk policy */
    uint64_t        expiring;         /* entries with a time to live */
    uint64_t        compact_min_bytes; /* compaction starts past this journal size ... */
    uint64_t        journal_after_compaction; /* ... and twice the size after the last one */
    bool            journal_dirty;    /* an append failed: the next tick compacts */
    bool            replaying;        /* the journal is being read: changes are not journaled */
    bool            stopping;
    bool            housekeeper_running;
    pthread_t       housekeeper;
    pthread_cond_t  housekeeping;
};


/* ---- entries (aside.c) ------------------------------------------------------------------- */

/* The entry of key, or NULL; an entry whose time to live ran out is removed and not found. */
entry *entry_find(aside_cache *c, const char *key);
/* The entry of key, expired or not. */
entry *entry_lookup(aside_cache *c, const char *key);
entry *entry_create(aside_cache *c, const char *key);
void   entry_unpublish(aside_cache *c, entry *e);
void   entry_drop_memory(aside_cache *c, entry *e);
/* A new file entry (meta set) joins the disk tier's accounting: its policy, or the pinned bytes. */
void   entry_place_on_disk(aside_cache *c, entry *e);
/* e's bytes outside the memory policy (live or pinned) are now bytes. */
void   entry_set_resident(aside_cache *c, entry *e, uint64_t bytes);
/* Remove e from the index and free it; its files too when remove_files. */
void   entry_destroy(aside_cache *c, entry *e, bool remove_files);
void   entry_touch(aside_cache *c, entry *e);
void   entry_hold(aside_cache *c, entry *e, aside_value *v);
void   evict_memory_for(aside_cache *c, uint64_t bytes);
void   evict_disk_for(aside_cache *c, uint64_t bytes);

/* ---- what the cache alone holds (ops.c) --------------------------------------------------- */

/* Open the journal and replay it into live entries; start the housekeeping thread. */
aside_status ops_open(aside_cache *c, const aside_config *cfg, aside_error *err);
/* Stop the housekeeping thread and close the journal. */
void         ops_close(aside_cache *c);
/* e leaves (deleted, replaced, expired): journal that a live entry is gone, free its form. */
void         ops_entry_gone(aside_cache *c, entry *e);
/* A snapshot value of a live entry for readers (held in e->value); false when out of memory. */
bool         ops_snapshot(aside_cache *c, entry *e);
/* Keep data (of collection type) as key's live value, replacing what key held. */
aside_status ops_put(aside_cache *c, const char *key, aside_value_type type, const void *data,
                     size_t size, aside_error *err);
/* Set e's expiry (unix ms, 0: none), keeping the count of expiring entries. */
void         ops_set_expiry(aside_cache *c, entry *e, int64_t expires_ms);
bool         ops_expired(const entry *e, int64_t now_ms);

#endif
