/* cache.c -- the cache as a whole: open and close, statistics, listings, names, configuration.
 *
 * libaside's public API (include/aside.h) ties the memory tier, the disk tier and a system of
 * record together: the index and the eviction policies are in core/, the disk tier in store/,
 * systems of record in sor/, value types in value/. Inside lib/ the work is split in layers
 * (cache.h lists them): this file is the top one, which builds the cache from its parts and
 * takes it apart again.
 *
 * Opening: the disk tier, the systems of record, the budgets (a share of the machine's memory
 * and of the disk's free space unless configured), the policies, the frame engine, the
 * shared-memory folder; then the journal is replayed (live.c) before the disk tier is scanned,
 * since the journal's state of a key wins over a file of the same key; then the housekeeping
 * thread starts. Closing waits for background revalidations, stops the thread, and frees
 * every entry. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "housekeeping.h"
#include "lib.h"
#include "live.h"
#include "tier.h"
#include "util/util.h"

#define DEFAULT_SHM_ROOT "/dev/shm"

enum {
    DEFAULT_MEMORY_PERCENT = 25,
    DEFAULT_DISK_PERCENT = 80,
    ENGINE_MEMORY_PERCENT = 25, /* DuckDB's working memory, of the cache's memory budget */
    ENGINE_SPILL_PERCENT = 10,  /* DuckDB's spill folders together, of the disk tier's budget */
    ENGINE_THREADS = 2,         /* DuckDB's threads per database, unless configured */
    GENERATION_SHIFT = 16       /* room for 65536 new contents a millisecond between runs */
};

/* ---- status names and config ----------------------------------------------------------------- */

const char *aside_status_name(aside_status status)
{
    static const char *const names[] = {"ok",       "invalid",  "not_found", "too_large",
                                        "bad_value", "conflict", "access_denied", "sor_error", "timeout",
                                        "io_error", "out_of_memory", "internal", "would_block",
                                        "full", "wrong_type"};
    if ((size_t)status < sizeof names / sizeof names[0])
        return names[status];
    return "unknown";
}

void aside_config_init(aside_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->data_dir = "./data/cache";
    cfg->sor_dir = "./data/sor";
    cfg->policy = "s3fifo";
}

/* ---- telemetry ------------------------------------------------------------------------------- */

/* What each of DuckDB's two databases may spill: half of its share of the disk budget. */
static uint64_t engine_spill_limit(uint64_t disk_limit)
{
    return disk_limit / 100 * ENGINE_SPILL_PERCENT / 2;
}

#ifndef NDEBUG
/* Debug builds: the counts kept as entries are made and typed are what a walk finds. */
static void assert_keys_by_type(aside_cache *c, const uint64_t counts[ASIDE_TYPE_KINDS])
{
    uint64_t walked[ASIDE_TYPE_KINDS] = {0};
    size_t cursor = 0;
    for (table_node *n = table_next(c->index, &cursor, NULL); n;
         n = table_next(c->index, &cursor, n)) {
        const entry *e = container_of(n, entry, node);
        assert(e->counted_type == e->meta.type);
        walked[e->meta.type]++;
    }
    assert(memcmp(walked, counts, sizeof walked) == 0);
}
#endif

void aside_stats_get(aside_cache *c, aside_stats *out)
{
    cache_lock(c);
    *out = c->counters;
    out->keys = table_count(c->index);
    out->memory_used_bytes = policy_bytes(c->mem_policy) + c->shm_bytes + c->resident_bytes;
    out->shm_bytes = c->shm_bytes;
    out->pinned_bytes = c->resident_bytes;
    if (c->journal) {
        journal_stats(c->journal, &out->log_bytes, &(uint64_t){0});
        journal_counters(c->journal, &out->log_appends, &out->log_syncs);
    }
    out->memory_limit_bytes = c->mem_limit;
    out->disk_used_bytes = policy_bytes(c->disk_policy);
    out->disk_limit_bytes = c->disk_limit;
#ifndef NDEBUG
    assert_keys_by_type(c, c->keys_by_type);
#endif
    cache_unlock(c);
    out->sql_spill_bytes = engine_spill_bytes(c->engine);
    out->sql_spill_limit_bytes = engine_spill_limit(c->disk_limit) * 2;
    out->uptime_seconds = (double)(clock_mono_ns() - c->opened_mono_ns) / 1e9;
    out->sor_retries = sor_retries(c->sd) + sor_retries(c->s3);
    out->flight_waiting = atomic_load_explicit(&c->flight_waiting, memory_order_relaxed);
    out->flight_waits = atomic_load_explicit(&c->flight_waits, memory_order_relaxed);
}

void aside_keys_by_type(aside_cache *c, uint64_t counts[ASIDE_TYPE_KINDS])
{
    cache_lock(c);
    memcpy(counts, c->keys_by_type, ASIDE_TYPE_KINDS * sizeof counts[0]);
#ifndef NDEBUG
    assert_keys_by_type(c, counts);
#endif
    cache_unlock(c);
}

static void entry_info(const entry *e, aside_entry_info *info, char *key)
{
    info->key = key;
    info->type = e->meta.type;
    info->bytes = e->meta.size;
    info->in_memory = e->value != NULL || e->live;
    info->hits = e->hits;
    info->last_access_ms = e->last_access_ms;
    info->generation = e->generation;
    info->pinned = e->meta.pinned || e->live;
    info->cache_only = e->live || (!e->meta.etag[0] && !e->meta.sor_mtime_ns);
    info->expires_ms = e->meta.expires_ms;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const aside_entry_info *)a)->key, ((const aside_entry_info *)b)->key);
}

aside_status aside_entries(aside_cache *c, aside_entry_info **out, size_t *count,
                           aside_error *err)
{
    cache_lock(c);
    size_t n = table_count(c->index);
    aside_entry_info *all = calloc(n ? n : 1, sizeof *all);
    size_t i = 0, cursor = 0;
    bool failed = !all;
    int64_t now = clock_unix_ms();
    for (table_node *node = all ? table_next(c->index, &cursor, NULL) : NULL; node && i < n;
         node = table_next(c->index, &cursor, node)) {
        entry *e = container_of(node, entry, node);
        if (entry_expired(e, now)) /* gone, though housekeeping has not removed it yet */
            continue;
        char *key = strdup(e->key);
        if ((failed = !key))
            break;
        entry_info(e, &all[i++], key);
    }
    cache_unlock(c);
    if (failed) {
        aside_entries_free(all, i);
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    qsort(all, i, sizeof *all, by_key);
    *out = all;
    *count = i;
    return ASIDE_OK;
}

void aside_entries_free(aside_entry_info *entries, size_t count)
{
    for (size_t i = 0; entries && i < count; i++)
        free(entries[i].key);
    free(entries);
}

aside_status aside_entry(aside_cache *c, const char *key, aside_entry_info *info,
                         aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    cache_lock(c);
    entry *e = entry_find(c, key);
    char *copy = e ? strdup(key) : NULL;
    if (copy)
        entry_info(e, info, copy);
    cache_unlock(c);
    if (!e)
        return error_set(err, ASIDE_ERR_NOT_FOUND, "not in the cache: %s", key);
    return copy ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}

/* ---- open and close -------------------------------------------------------------------------- */

/* A file the scan of the disk tier found becomes key's entry (lock held). */
static void index_stored_locked(aside_cache *c, const char *key, const store_meta *meta)
{
    if (entry_lookup(c, key)) {
        store_remove(c->store, key); /* the journal's later state wins (see live.c) */
        return;
    }
    entry *e = entry_create(c, key);
    if (!e)
        return;
    e->meta = *meta;
    entry_typed(c, e);
    e->generation = ++c->generations;
    e->last_access_ms = e->validated_ms = meta->fetched_ms;
    e->disk_node.bytes = meta->size;
    entry_place_on_disk(c, e);
}

static void index_stored(void *ctx, const char *key, const store_meta *meta)
{
    aside_cache *c = ctx;
    cache_lock(c); /* nobody else uses the cache yet: taken for the entry layer's checks */
    index_stored_locked(c, key, meta);
    cache_unlock(c);
}

/* Remove the private folders of servers that died without closing (killed): their files would
 * hold shared memory forever. A folder of a live process, or of another user, is left. */
static void remove_dead_folders(void)
{
    DIR *root = opendir(DEFAULT_SHM_ROOT);
    struct dirent *d;
    while (root && (d = readdir(root))) {
        char *end = NULL;
        long pid = strncmp(d->d_name, "aside-", 6) == 0 ? strtol(d->d_name + 6, &end, 10) : 0;
        if (pid <= 0 || *end || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 ||
            errno != ESRCH)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", DEFAULT_SHM_ROOT, d->d_name);
        DIR *folder = opendir(path);
        struct dirent *f;
        while (folder && (f = readdir(folder))) {
            char file[PATH_MAX];
            if (strcmp(f->d_name, ".") && strcmp(f->d_name, "..") &&
                snprintf(file, sizeof file, "%s/%s", path, f->d_name) < (int)sizeof file)
                unlink(file);
        }
        if (folder)
            closedir(folder);
        if (rmdir(path) == 0)
            log_line("info", "shm: removed %s, left by a server that is gone", path);
    }
    if (root)
        closedir(root);
}

/* The folder frames are published in: cfg's (created if missing), else a private one under
 * /dev/shm for this process; "off": none. */
static aside_status open_shm_dir(aside_cache *c, const char *dir, aside_error *err)
{
    char path[PATH_MAX];
    if (dir && strcmp(dir, "off") == 0)
        return ASIDE_OK;
    if (dir && *dir) {
        snprintf(path, sizeof path, "%s", dir);
    } else {
        remove_dead_folders();
        snprintf(path, sizeof path, "%s/aside-%ld", DEFAULT_SHM_ROOT, (long)getpid());
    }
    if (mkdir(path, S_IRWXU) == 0)
        c->shm_dir_ours = true;
    else if (errno != EEXIST)
        return error_set(err, ASIDE_ERR_IO, "cannot create the shared-memory folder %s: %s",
                         path, strerror(errno));
    c->shm_dir = strdup(path);
    return c->shm_dir ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}

static aside_status open_parts(aside_cache *c, const aside_config *cfg, aside_error *err)
{
    aside_status st = store_open(cfg->data_dir, &c->store, err);
    if (st != ASIDE_OK)
        return st;
    c->sd = cfg->sor ? sor_callbacks_create(cfg->sor, err) : sor_local_create(cfg->sor_dir, err);
    if (!c->sd)
        return err ? err->status : ASIDE_ERR_INVALID;
    if (cfg->s3.bucket && *cfg->s3.bucket && !(c->s3 = sor_s3_create(&cfg->s3, err)))
        return err ? err->status : ASIDE_ERR_INVALID;
    c->mem_limit = cfg->memory_limit_bytes
                       ? cfg->memory_limit_bytes
                       : system_memory_bytes() / 100 * DEFAULT_MEMORY_PERCENT;
    c->disk_limit = cfg->disk_limit_bytes ? cfg->disk_limit_bytes
                                          : store_free_bytes(c->store) / 100 * DEFAULT_DISK_PERCENT;
    c->mem_policy = policy_create(cfg->policy, c->mem_limit);
    c->disk_policy = policy_create(cfg->policy, c->disk_limit);
    c->index = table_create();
    c->flights = flight_group_create(tier_value_retain);
    if (!c->mem_policy || !c->disk_policy)
        return error_set(err, ASIDE_ERR_INVALID, "unknown eviction policy \"%s\" (known: s3fifo, "
                         "lru, lfu)", cfg->policy);
    if (!c->index || !c->flights)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if ((st = open_shm_dir(c, cfg->shm_dir, err)) != ASIDE_OK)
        return st;
    if (cfg->json_max_depth > VALUE_JSON_MAX_DEPTH)
        return error_set(err, ASIDE_ERR_INVALID, "json_max_depth is %u, more than %d",
                         cfg->json_max_depth, VALUE_JSON_MAX_DEPTH);
    char spill[PATH_MAX];
    snprintf(spill, sizeof spill, "%s/.aside/duckdb-tmp", store_root(c->store));
    engine_config ec = {.memory_limit_bytes = c->mem_limit / 100 * ENGINE_MEMORY_PERCENT,
                        .threads = cfg->sql_threads ? cfg->sql_threads : ENGINE_THREADS,
                        .spill_dir = spill,
                        .spill_limit_bytes = engine_spill_limit(c->disk_limit)};
    st = engine_open(&ec, &c->engine, err);
    c->decode = (value_context){c->engine, c->mem_limit,
                                cfg->json_max_depth ? cfg->json_max_depth
                                                    : VALUE_JSON_DEFAULT_DEPTH};
    return st;
}

/* The cache's own locks and condition variables. */
static void init_sync(aside_cache *c)
{
    pthread_mutex_init(&c->lock, NULL);
    for (size_t i = 0; i < KEY_LOCKS; i++)
        pthread_mutex_init(&c->key_locks[i], NULL);
    pthread_cond_init(&c->background_done, NULL);
    pthread_cond_init(&c->compacted, NULL);
    cond_init_monotonic(&c->housekeeping);
}

static void destroy_sync(aside_cache *c)
{
    pthread_cond_destroy(&c->housekeeping);
    pthread_cond_destroy(&c->compacted);
    pthread_cond_destroy(&c->background_done);
    for (size_t i = 0; i < KEY_LOCKS; i++)
        pthread_mutex_destroy(&c->key_locks[i]);
    pthread_mutex_destroy(&c->lock);
}

aside_status aside_cache_open(const aside_config *cfg, aside_cache **out, aside_error *err)
{
    aside_config defaults;
    aside_config_init(&defaults);
    cfg = cfg ? cfg : &defaults;
    aside_cache *c = calloc(1, sizeof *c);
    if (!c)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    init_sync(c);
    c->opened_mono_ns = clock_mono_ns();
    /* generations never repeat across runs: they start from the opening time */
    c->generations = (uint64_t)clock_unix_ms() << GENERATION_SHIFT;
    aside_status st = open_parts(c, cfg, err);
    if (st == ASIDE_OK) /* the journal first: its state wins over a file of the same key */
        st = live_open(c, cfg, err);
    if (st == ASIDE_OK)
        st = store_scan(c->store, index_stored, c, err);
    if (st == ASIDE_OK) {
        cache_lock(c);
        entry_evict_disk_for(c, 0); /* the limit may have shrunk since the last run */
        cache_unlock(c);
        st = housekeeping_start(c, err);
    }
    if (st != ASIDE_OK) {
        aside_cache_close(c);
        return st;
    }
    *out = c;
    return ASIDE_OK;
}

/* Free every entry (no other thread runs any more; the lock is taken for the entry layer). */
static void free_entries(aside_cache *c)
{
    size_t cursor = 0;
    cache_lock(c);
    table_node *n = table_next(c->index, &cursor, NULL);
    while (n) {
        entry *e = container_of(n, entry, node);
        n = table_next(c->index, &cursor, n);
        entry_unpublish(c, e);
        aside_value_release(e->value);
        collection_free(e->live);
        free(e->key);
        free(e);
    }
    cache_unlock(c);
}

void aside_cache_close(aside_cache *c)
{
    if (!c)
        return;
    cache_lock(c);
    while (c->background)
        cache_wait(c, &c->background_done, NULL);
    cache_unlock(c);
    housekeeping_stop(c);
    live_close(c);
    if (c->index)
        free_entries(c);
    table_destroy(c->index);
    policy_destroy(c->mem_policy);
    policy_destroy(c->disk_policy);
    flight_group_destroy(c->flights);
    sor_destroy(c->sd);
    sor_destroy(c->s3);
    engine_close(c->engine);
    store_close(c->store);
    if (c->shm_dir && c->shm_dir_ours)
        rmdir(c->shm_dir);
    free(c->shm_dir);
    destroy_sync(c);
    free(c);
}

/* ---- frames for embedders -------------------------------------------------------------------- */

engine *aside_cache_engine(aside_cache *c) { return c->engine; }

static char *take_text(buf *b, bool *failed)
{
    char *out = b->failed ? NULL : buf_take(b);
    buf_free(b);
    *failed = *failed || !out;
    return out;
}

aside_status aside_frame_info(const aside_value *v, char **json, char **text, uint64_t *rows,
                              uint64_t *columns, aside_error *err)
{
    const frame *f = v ? value_frame(v) : NULL;
    if (!f)
        return error_set(err, ASIDE_ERR_INVALID, "the value is not a frame");
    bool failed = false;
    if (json) {
        buf b = {0};
        frame_pandas_info(f, &b);
        *json = take_text(&b, &failed);
    }
    if (text) {
        buf b = {0};
        frame_pandas_info_text(f, &b);
        *text = take_text(&b, &failed);
    }
    if (rows)
        *rows = (uint64_t)f->rows;
    if (columns)
        *columns = f->field_count;
    if (!failed)
        return ASIDE_OK;
    if (json) {
        free(*json);
        *json = NULL;
    }
    if (text) {
        free(*text);
        *text = NULL;
    }
    return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}
