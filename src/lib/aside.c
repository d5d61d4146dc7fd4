/* aside.c -- the cache: memory tier, disk tier and system of record tied together.
 *
 * This is libaside's public API (include/aside.h). The pieces are elsewhere: the index and the
 * eviction policies in core/, the disk tier in store/, systems of record in sor/, value types in
 * value/. This file decides where a value lives and moves it.
 *
 * One entry per key. Invariant: memory is a subset of disk -- every value in memory also has its
 * file in the disk tier, so evicting from memory is only dropping a reference, and evicting from
 * disk drops the whole entry. Each tier has its own policy instance and byte budget; the bytes a
 * tier holds are its policy's bytes.
 *
 * Locking: one mutex guards the index, the policies, the budgets and every entry field. It is
 * held only for lookups and bookkeeping, never during I/O; so a thread never keeps an entry
 * pointer across an unlock, but finds the entry again. Loads run outside it, one per key at a
 * time through single flight (core/flight.c): the leader reads the disk tier or fetches from the
 * system of record while followers wait for its value. A hit costs one lock, a hash lookup and an
 * atomic increment of the value's reference count. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "aside.h"
#include "arrow/arrow.h"
#include "core/core.h"
#include "cache.h"
#include "lib.h"
#include "sor/sor.h"
#include "store/store.h"
#include "util/util.h"
#include "value/value.h"

#define DEFAULT_SHM_ROOT "/dev/shm"

enum {
    DEFAULT_MEMORY_PERCENT = 25,
    DEFAULT_DISK_PERCENT = 80,
    ENGINE_MEMORY_PERCENT = 25, /* DuckDB's working memory, of the cache's memory budget */
    GENERATION_SHIFT = 16,      /* room for 65536 new contents a millisecond between runs */
    VERIFY_CHUNK_BYTES = 1 << 20
};

/* ---- status names and config -------------------------------------------------------------- */

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

/* ---- entries (all under the lock) --------------------------------------------------------- */

entry *entry_lookup(aside_cache *c, const char *key)
{
    size_t len = strlen(key);
    table_node *n = table_find(c->index, key, len, table_hash(key, len));
    return n ? container_of(n, entry, node) : NULL;
}

entry *entry_find(aside_cache *c, const char *key)
{
    entry *e = entry_lookup(c, key);
    if (e && e->meta.expires_ms && ops_expired(e, clock_unix_ms())) {
        entry_destroy(c, e, true);
        c->counters.expirations++;
        return NULL;
    }
    return e;
}

entry *entry_create(aside_cache *c, const char *key)
{
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
    return e;
}

/* Unlink e's publication: readers that mapped it keep their mapping, new ones cannot open it. */
void entry_unpublish(aside_cache *c, entry *e)
{
    if (!e->shm_path)
        return;
    unlink(e->shm_path);
    free(e->shm_path);
    e->shm_path = NULL;
    c->shm_bytes -= e->shm_bytes;
    e->shm_bytes = 0;
}

void entry_set_resident(aside_cache *c, entry *e, uint64_t bytes)
{
    c->resident_bytes = c->resident_bytes - e->resident + bytes;
    e->resident = bytes;
}

void entry_place_on_disk(aside_cache *c, entry *e)
{
    int64_t expires_ms = e->meta.expires_ms;
    e->meta.expires_ms = 0;
    ops_set_expiry(c, e, expires_ms);
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

void entry_destroy(aside_cache *c, entry *e, bool remove_files)
{
    bool has_files = !e->live;
    entry_drop_memory(c, e);
    if (e->in_disk_policy)
        policy_remove(c->disk_policy, &e->disk_node);
    if (e->meta.pinned && !e->live)
        c->disk_pinned_bytes -= e->meta.size;
    ops_entry_gone(c, e);
    entry_set_resident(c, e, 0);
    ops_set_expiry(c, e, 0);
    if (remove_files && has_files)
        store_remove(c->store, e->key);
    table_remove(c->index, &e->node);
    free(e->key);
    free(e);
}

void evict_memory_for(aside_cache *c, uint64_t bytes)
{
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

void evict_disk_for(aside_cache *c, uint64_t bytes)
{
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

void entry_touch(aside_cache *c, entry *e)
{
    e->hits++;
    e->last_access_ms = clock_unix_ms();
    if (e->in_disk_policy)
        policy_touch(c->disk_policy, &e->disk_node);
    if (e->in_mem_policy)
        policy_touch(c->mem_policy, &e->mem_node);
}

/* Keep v in memory for e if it is memory-backed and fits the budget: in the memory policy, or
 * outside it for good when e is pinned. */
void entry_hold(aside_cache *c, entry *e, aside_value *v)
{
    if (!v || e->value || e->live || (!aside_value_data(v) && !value_frame(v)))
        return; /* already held, or a value served from its file */
    uint64_t bytes = value_memory_bytes(v);
    if (e->meta.pinned) {
        if (c->resident_bytes + bytes > c->mem_limit)
            return;
        evict_memory_for(c, 0);
        entry_set_resident(c, e, bytes);
    } else {
        if (bytes + c->resident_bytes > c->mem_limit)
            return;
        evict_memory_for(c, bytes);
        e->mem_node.bytes = bytes;
        policy_insert(c->mem_policy, &e->mem_node);
        e->in_mem_policy = true;
    }
    e->value = aside_value_retain(v);
    value_set_generation(v, e->generation);
}

/* ---- loading from the disk tier ----------------------------------------------------------- */

static aside_status read_exact(int fd, void *data, uint64_t size, aside_error *err)
{
    for (uint64_t done = 0; done < size;) {
        ssize_t n = pread(fd, (char *)data + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return error_set(err, ASIDE_ERR_IO, "read of the disk tier failed: %s",
                             n < 0 ? strerror(errno) : "file shrank");
        done += (uint64_t)n;
    }
    return ASIDE_OK;
}

static aside_status checksum_file(int fd, uint64_t size, uint64_t *sum, aside_error *err)
{
    XXH3_state_t *state = XXH3_createState();
    char *chunk = malloc(VERIFY_CHUNK_BYTES);
    aside_status st = state && chunk ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "no memory");
    if (st == ASIDE_OK)
        XXH3_64bits_reset(state);
    for (uint64_t done = 0; st == ASIDE_OK && done < size;) {
        uint64_t want = size - done < VERIFY_CHUNK_BYTES ? size - done : VERIFY_CHUNK_BYTES;
        ssize_t n = pread(fd, chunk, want, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            st = error_set(err, ASIDE_ERR_IO, "read of the disk tier failed");
        else {
            XXH3_64bits_update(state, chunk, (size_t)n);
            done += (uint64_t)n;
        }
    }
    if (st == ASIDE_OK)
        *sum = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    free(chunk);
    return st;
}

/* Decode the frame in the file at path (open as fd, which the value takes over). */
static aside_status decode_frame(aside_cache *c, const char *key, const char *path, int fd,
                                 uint64_t size, aside_value **out, aside_error *err)
{
    frame *f = NULL;
    aside_status st = value_decode_frame(&c->decode, key, path, fd, &f, err);
    if (st != ASIDE_OK) {
        close(fd);
        return st;
    }
    *out = value_from_frame(f, fd, size);
    return *out ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}

/* Check the checksum of key's file (open as fd) unless *verified says it was; sets it. */
static aside_status verify_once(int fd, const char *key, const store_meta *meta, bool *verified,
                                aside_error *err)
{
    uint64_t sum = 0;
    aside_status st = *verified ? ASIDE_OK : checksum_file(fd, meta->size, &sum, err);
    if (st == ASIDE_OK && !*verified && sum != meta->xxh3)
        st = error_set(err, ASIDE_ERR_BAD_VALUE, "%s: checksum mismatch", key);
    *verified = st == ASIDE_OK;
    return st;
}

/* load_file for a frame: check the file's checksum once, then decode it. */
static aside_status load_frame_file(aside_cache *c, const char *key, int fd,
                                    const store_meta *meta, bool *verified, aside_value **out,
                                    aside_error *err)
{
    char path[PATH_MAX];
    aside_status st = store_value_path(c->store, key, path, err);
    if (st == ASIDE_OK)
        st = verify_once(fd, key, meta, verified, err);
    if (st != ASIDE_OK) {
        close(fd);
        return st;
    }
    return decode_frame(c, key, path, fd, meta->size, out, err);
}

/* Load key's file as described by meta. ASIDE_ERR_BAD_VALUE when the file does not match its
 * sidecar (then it must be removed and fetched again). *verified says whether the checksum was
 * already checked; it is set when this load checked it. */
static aside_status load_file(aside_cache *c, const char *key, const store_meta *meta,
                              bool *verified, aside_value **out, aside_error *err)
{
    int fd = -1;
    aside_status st = store_open_value(c->store, key, &fd, err);
    if (st == ASIDE_ERR_NOT_FOUND)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "%s vanished from the disk tier", key);
    if (st != ASIDE_OK)
        return st;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != meta->size) {
        close(fd);
        return error_set(err, ASIDE_ERR_BAD_VALUE, "%s: size differs from its sidecar", key);
    }
    uint64_t sum = 0;
    if (meta->type == ASIDE_TYPE_FRAME)
        return load_frame_file(c, key, fd, meta, verified, out, err);
    if (meta->size <= c->mem_limit) {
        void *data = malloc(meta->size ? meta->size : 1);
        if (!data) {
            close(fd);
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory loading %s", key);
        }
        st = read_exact(fd, data, meta->size, err);
        close(fd);
        if (st == ASIDE_OK && (sum = store_checksum(data, meta->size)) != meta->xxh3)
            st = error_set(err, ASIDE_ERR_BAD_VALUE, "%s: checksum mismatch", key);
        if (st != ASIDE_OK) {
            free(data);
            return st;
        }
        *verified = true;
        *out = value_from_memory(meta->type, data, meta->size);
    } else {
        if ((st = verify_once(fd, key, meta, verified, err)) != ASIDE_OK) {
            close(fd);
            return st;
        }
        *out = value_from_file(meta->type, fd, meta->size);
    }
    return *out ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}

/* ---- loading from the system of record ---------------------------------------------------- */

/* Validate the fetched file, checksum it and, if it fits the memory budget, copy it to memory. */
static aside_status inspect_fetched(aside_cache *c, const char *key, const store_tmp *tmp,
                                    store_meta *meta, aside_value **in_memory, aside_error *err)
{
    int fd = tmp->fd;
    *in_memory = NULL;
    void *map = NULL;
    if (meta->size) {
        map = mmap(NULL, meta->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
            return error_set(err, ASIDE_ERR_IO, "cannot map %s: %s", key, strerror(errno));
    }
    const char *data = map ? map : "";
    aside_status st = value_kind_of(meta->type)->check(data, meta->size, err);
    if (st == ASIDE_OK) {
        meta->xxh3 = store_checksum(data, meta->size);
        if (meta->type == ASIDE_TYPE_FRAME) {
            int rd = open(tmp->path, O_RDONLY | O_CLOEXEC);
            st = rd < 0 ? error_set(err, ASIDE_ERR_IO, "cannot reopen a temporary file")
                        : decode_frame(c, key, tmp->path, rd, meta->size, in_memory, err);
        } else if (meta->size <= c->mem_limit) {
            void *copy = malloc(meta->size ? meta->size : 1);
            if (copy) {
                memcpy(copy, data, meta->size);
                *in_memory = value_from_memory(meta->type, copy, meta->size);
            }
            if (!*in_memory)
                st = error_set(err, ASIDE_ERR_NOMEM, "out of memory loading %s", key);
        }
    }
    if (map)
        munmap(map, meta->size);
    return st;
}

/* Describe a value about to enter the disk tier. */
static void meta_init(store_meta *meta, aside_value_type type, uint64_t size,
                      const aside_object_info *info)
{
    memset(meta, 0, sizeof *meta);
    meta->size = size;
    meta->type = type;
    meta->sor_mtime_ns = info->mtime_ns;
    meta->fetched_ms = clock_unix_ms();
    snprintf(meta->etag, sizeof meta->etag, "%s", info->etag);
}

/* Fetch key into a temporary file of the disk tier and check it. With if_none_match, an
 * unchanged object sets *not_modified and nothing else. */
static aside_status fetch_to_tmp(aside_cache *c, sor *from, const char *key, aside_value_type type,
                                 const char *if_none_match, store_tmp *tmp, store_meta *meta,
                                 aside_value **in_memory, bool *not_modified, aside_error *err)
{
    aside_status st = store_tmp_create(c->store, tmp, err);
    if (st != ASIDE_OK)
        return st;
    aside_object_info info;
    pthread_mutex_lock(&c->lock);
    c->counters.sor_fetches++;
    pthread_mutex_unlock(&c->lock);
    if ((st = sor_fetch(from, key, tmp->fd, if_none_match, &info, err)) != ASIDE_OK)
        return st;
    *not_modified = info.not_modified;
    if (info.not_modified)
        return ASIDE_OK;
    struct stat sb;
    if (fstat(tmp->fd, &sb) != 0)
        return error_set(err, ASIDE_ERR_IO, "stat of a temporary file failed");
    meta_init(meta, type, (uint64_t)sb.st_size, &info);
    if (info.size != meta->size)
        return error_set(err, ASIDE_ERR_SOR, "%s: the system of record sent %llu bytes of %llu",
                         key, (unsigned long long)meta->size, (unsigned long long)info.size);
    if (meta->size > c->disk_limit)
        return error_set(err, ASIDE_ERR_TOO_LARGE, "%s is %llu bytes, more than the disk tier's "
                         "limit of %llu", key, (unsigned long long)meta->size,
                         (unsigned long long)c->disk_limit);
    return inspect_fetched(c, key, tmp, meta, in_memory, err);
}

/* Make the committed file key's entry (replacing an older one) and hold v in memory. */
static aside_status install(aside_cache *c, const char *key, const store_meta *meta,
                            aside_value *v, aside_error *err)
{
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    if (e) /* the files were replaced by the commit: forget the old ones, keep the new */
        entry_destroy(c, e, false);
    evict_disk_for(c, meta->size);
    e = entry_create(c, key);
    if (!e) {
        pthread_mutex_unlock(&c->lock);
        store_remove(c->store, key);
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    e->meta = *meta;
    e->verified = true;
    e->generation = ++c->generations;
    e->last_access_ms = e->validated_ms = meta->fetched_ms;
    e->disk_node.bytes = meta->size;
    entry_place_on_disk(c, e);
    entry_hold(c, e, v);
    pthread_mutex_unlock(&c->lock);
    return ASIDE_OK;
}

/* Commit the checked temporary file as key's value and install it (v: its memory copy, if any). */
static aside_status commit(aside_cache *c, const char *key, store_tmp *tmp,
                           const store_meta *fetched, aside_value *v, aside_error *err)
{
    store_meta with_ttl = *fetched;
    const store_meta *meta = &with_ttl;
    pthread_mutex_lock(&c->lock); /* make room before the file lands */
    entry *old = entry_find(c, key);
    if (old && !old->live) { /* a pin and a time to live stay with the key */
        with_ttl.pinned = old->meta.pinned;
        with_ttl.expires_ms = old->meta.expires_ms;
    } else if (c->default_ttl_ms)
        with_ttl.expires_ms = clock_unix_ms() + (int64_t)c->default_ttl_ms;
    evict_disk_for(c, meta->size);
    pthread_mutex_unlock(&c->lock);
    aside_status st = store_commit(c->store, tmp, key, meta, err);
    if (st == ASIDE_OK)
        st = install(c, key, meta, v, err);
    return st;
}

/* Fetch key from the SOR `from` and make it the cached value. With if_none_match, an unchanged
 * object sets *not_modified and returns no value. */
static aside_status load_from_sor(aside_cache *c, sor *from, const char *key,
                                  aside_value_type type, const char *if_none_match,
                                  aside_value **out,
                                  bool *not_modified, aside_error *err)
{
    store_tmp tmp = {-1, ""};
    store_meta meta;
    aside_value *v = NULL;
    *not_modified = false;
    aside_status st = fetch_to_tmp(c, from, key, type, if_none_match, &tmp, &meta, &v,
                                   not_modified, err);
    if (st == ASIDE_OK && *not_modified) {
        store_tmp_discard(&tmp);
        return ASIDE_OK;
    }
    if (st == ASIDE_OK)
        st = commit(c, key, &tmp, &meta, v, err);
    store_tmp_discard(&tmp);
    if (st == ASIDE_OK && !v) { /* larger than memory: serve the file */
        bool verified = true;
        st = load_file(c, key, &meta, &verified, &v, err);
    }
    if (st != ASIDE_OK) {
        aside_value_release(v);
        return st;
    }
    *out = v;
    return ASIDE_OK;
}

/* ---- reads -------------------------------------------------------------------------------- */

/* Serve key from memory if it is there. */
static bool memory_hit(aside_cache *c, const char *key, aside_value **out)
{
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    bool hit = e && (e->value || (e->live && ops_snapshot(c, e)));
    if (hit) {
        *out = aside_value_retain(e->value);
        entry_touch(c, e);
        c->counters.hits++;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

/* Try the disk tier. ASIDE_ERR_NOT_FOUND means: not there (or removed as invalid), go to SOR. */
static aside_status disk_hit(aside_cache *c, const char *key, aside_value **out,
                             aside_error *err)
{
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    store_meta meta;
    bool verified = false;
    if (e) {
        meta = e->meta;
        verified = e->verified;
    }
    pthread_mutex_unlock(&c->lock);
    if (!e)
        return ASIDE_ERR_NOT_FOUND;
    aside_error load_err;
    aside_status st = load_file(c, key, &meta, &verified, out, &load_err);
    pthread_mutex_lock(&c->lock);
    e = entry_find(c, key);
    bool same = e && e->meta.xxh3 == meta.xxh3 && e->meta.size == meta.size;
    if (st == ASIDE_OK && same) {
        e->verified = verified;
        entry_touch(c, e);
        entry_hold(c, e, *out);
    }
    if (st == ASIDE_OK)
        c->counters.hits++;
    if (st == ASIDE_ERR_BAD_VALUE && same)
        entry_destroy(c, e, true);
    pthread_mutex_unlock(&c->lock);
    if (st == ASIDE_ERR_BAD_VALUE) {
        log_line("warn", "store: %s; removed, fetching it again", load_err.message);
        return ASIDE_ERR_NOT_FOUND;
    }
    if (st != ASIDE_OK)
        return error_copy(err, &load_err);
    return ASIDE_OK;
}

/* The leader's load: memory (someone may have finished a load since we looked), disk, SOR. */
static aside_status load(aside_cache *c, sor *from, const char *key, aside_value_type type,
                         aside_value **out, aside_source *source, aside_error *err)
{
    if (memory_hit(c, key, out)) {
        *source = ASIDE_SOURCE_MEMORY;
        return ASIDE_OK;
    }
    aside_status st = disk_hit(c, key, out, err);
    if (st != ASIDE_ERR_NOT_FOUND) {
        *source = ASIDE_SOURCE_DISK;
        return st;
    }
    *source = ASIDE_SOURCE_SOR;
    bool not_modified = false;
    st = load_from_sor(c, from, key, type, NULL, out, &not_modified, err);
    pthread_mutex_lock(&c->lock);
    c->counters.misses++;
    pthread_mutex_unlock(&c->lock);
    return st;
}

static void *value_retain_any(void *v) { return aside_value_retain(v); }
static void  value_release_any(void *v) { aside_value_release(v); }

static aside_status follow(aside_cache *c, const char *key, flight *f, aside_value **out,
                           aside_source *source, aside_error *err)
{
    void *result = NULL;
    int tag = 0;
    aside_status st = flight_wait(c->flights, f, &result, &tag, err);
    flight_release(c->flights, f, value_release_any);
    if (st == ASIDE_OK && !result) /* a value too large for memory: read its file */
        st = disk_hit(c, key, (aside_value **)&result, err);
    if (st == ASIDE_ERR_NOT_FOUND && !result)
        error_set(err, st, "%s left the cache while it was read; read it again", key);
    if (st != ASIDE_OK)
        return st;
    *out = result;
    *source = (aside_source)tag;
    pthread_mutex_lock(&c->lock);
    if (*source == ASIDE_SOURCE_SOR)
        c->counters.misses++;
    else
        c->counters.hits++;
    pthread_mutex_unlock(&c->lock);
    return ASIDE_OK;
}

/* The SOR a call's options name. */
static aside_status pick_sor(aside_cache *c, const aside_read_options *options, sor **out,
                             aside_error *err)
{
    const char *storage = options ? options->storage : NULL;
    if (!storage || !*storage)
        *out = c->s3 ? c->s3 : c->sd;
    else if (strcmp(storage, "s3") == 0)
        *out = c->s3;
    else if (strcmp(storage, "sd") == 0)
        *out = c->sd;
    else
        return error_set(err, ASIDE_ERR_INVALID, "unknown storage \"%s\" (known: s3, sd)",
                         storage);
    if (!*out)
        return error_set(err, ASIDE_ERR_INVALID, "storage s3 needs a bucket (AWS_BUCKET_NAME)");
    return ASIDE_OK;
}

/* Check the key and pick the SOR: what every call starts with. */
static aside_status prepare(aside_cache *c, const char *key, const aside_read_options *options,
                            sor **from, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    return st == ASIDE_OK ? pick_sor(c, options, from, err) : st;
}

/* ---- stale-while-revalidate ---------------------------------------------------------------- */

typedef struct refresh_job {
    aside_cache *cache;
    char        *key;
    char        *storage;
} refresh_job;

static void *refresh_run(void *arg)
{
    refresh_job *job = arg;
    aside_cache *c = job->cache;
    aside_read_options options = {.storage = job->storage};
    aside_error err;
    if (aside_update(c, job->key, &options, NULL, NULL, &err) != ASIDE_OK)
        log_line("warn", "background revalidation of %s: %s", job->key, err.message);
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, job->key);
    if (e)
        e->revalidating = false;
    c->background--;
    pthread_cond_broadcast(&c->background_done);
    pthread_mutex_unlock(&c->lock);
    free(job->key);
    free(job->storage);
    free(job);
    return NULL;
}

static bool start_refresh(aside_cache *c, const char *key, const char *storage)
{
    refresh_job *job = calloc(1, sizeof *job);
    if (!job)
        return false;
    job->cache = c;
    job->key = strdup(key);
    job->storage = storage ? strdup(storage) : NULL;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    bool ok = job->key && (!storage || job->storage) &&
              pthread_create(&thread, &attr, refresh_run, job) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        free(job->key);
        free(job->storage);
        free(job);
    }
    return ok;
}

/* After a hit: is the copy older than max_age? Then say so, and revalidate it in the
 * background unless that already runs. */
static void check_age(aside_cache *c, const char *key, const aside_read_options *options,
                      aside_read_info *info)
{
    if (!options || !options->max_age_s)
        return;
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    info->stale = e && clock_unix_ms() - e->validated_ms > (int64_t)options->max_age_s * 1000;
    bool start = info->stale && !e->revalidating;
    if (start) {
        e->revalidating = true;
        c->background++;
    }
    pthread_mutex_unlock(&c->lock);
    if (start && !start_refresh(c, key, options->storage)) {
        pthread_mutex_lock(&c->lock);
        if ((e = entry_find(c, key)))
            e->revalidating = false;
        c->background--;
        pthread_mutex_unlock(&c->lock);
    }
}

/* The type a read of key asks for: options->type, else the cached entry's, else the key's.
 * A cached entry of another type is decoded again as the asked type. A collection type is
 * only for put (collections_ok): a file is never read or written as a collection. */
static aside_status requested_type(aside_cache *c, const char *key,
                                   const aside_read_options *options, bool collections_ok,
                                   aside_value_type *type, aside_error *err)
{
    bool asked = options && options->type;
    if (asked && aside_value_type_parse(options->type, type) != ASIDE_OK)
        return error_set(err, ASIDE_ERR_INVALID, "unknown type \"%s\" (known: bytes, json, "
                         "frame, list, set, map, counter)", options->type);
    aside_status st = ASIDE_OK;
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    if (e && e->live) /* a live value is replaced, never decoded again */
        *type = asked ? *type : aside_value_type_for_key(key);
    else if (!asked)
        *type = e ? e->meta.type : aside_value_type_for_key(key);
    else if (*type >= ASIDE_TYPE_LIST && !collections_ok)
        st = error_set(err, ASIDE_ERR_INVALID, "type %s is for collections, which the cache "
                       "alone holds: create one with put or its operations", options->type);
    else if (e && e->meta.type != *type) {
        entry_drop_memory(c, e);
        e->meta.type = *type;
    }
    pthread_mutex_unlock(&c->lock);
    return st;
}

aside_status aside_get(aside_cache *c, const char *key, aside_value **out,
                       aside_source *source, aside_error *err)
{
    aside_read_info info;
    aside_status st = aside_read(c, key, NULL, out, &info, err);
    if (source)
        *source = info.source;
    return st;
}

aside_status aside_read(aside_cache *c, const char *key, const aside_read_options *options,
                        aside_value **out, aside_read_info *info, aside_error *err)
{
    aside_read_info ignored;
    info = info ? info : &ignored;
    memset(info, 0, sizeof *info);
    aside_source *source = &info->source;
    sor *from = NULL;
    aside_value_type type = ASIDE_TYPE_BYTES;
    aside_status st = prepare(c, key, options, &from, err);
    /* a type asked for may decode the copy again, so it is settled before the memory is
     * looked at; otherwise a memory hit needs no type, and only a miss asks for it */
    bool asked = options && options->type;
    if (st == ASIDE_OK && asked)
        st = requested_type(c, key, options, false, &type, err);
    if (st != ASIDE_OK)
        return st;
    if (memory_hit(c, key, out)) {
        *source = ASIDE_SOURCE_MEMORY;
        check_age(c, key, options, info);
        return ASIDE_OK;
    }
    if (options && options->memory_only)
        return error_set(err, ASIDE_ERR_WOULD_BLOCK, "%s is not in memory", key);
    if (!asked && (st = requested_type(c, key, options, false, &type, err)) != ASIDE_OK)
        return st;
    bool leader = false;
    flight *f = flight_join(c->flights, key, &leader);
    if (!f)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (!leader)
        return follow(c, key, f, out, source, err);
    aside_value *v = NULL;
    st = load(c, from, key, type, &v, source, err);
    flight_complete(c->flights, f, st, v, (int)*source, err);
    flight_release(c->flights, f, value_release_any);
    if (st == ASIDE_OK) {
        *out = v;
        if (*source != ASIDE_SOURCE_SOR)
            check_age(c, key, options, info);
    }
    return st;
}

/* ---- updates and deletes ------------------------------------------------------------------ */

/* Become the leader of key's flight, waiting for loads in progress to finish first. */
static flight *lead(aside_cache *c, const char *key)
{
    for (;;) {
        bool leader = false;
        flight *f = flight_join(c->flights, key, &leader);
        if (!f || leader)
            return f;
        void *result = NULL;
        int tag = 0;
        if (flight_wait(c->flights, f, &result, &tag, NULL) == ASIDE_OK)
            aside_value_release(result);
        flight_release(c->flights, f, value_release_any);
    }
}

/* What an update or a write starts with: check the key, pick the SOR, lead key's flight. */
static aside_status prepare_to_lead(aside_cache *c, const char *key,
                                    const aside_read_options *options, sor **to, flight **f,
                                    aside_error *err)
{
    aside_status st = prepare(c, key, options, to, err);
    if (st != ASIDE_OK)
        return st;
    *f = lead(c, key);
    return *f ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}

/* The version tag of key's cached copy, or "" if none; returns the copy's type (or the key's). */
static aside_value_type cached_etag(aside_cache *c, const char *key, char *etag, size_t size)
{
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    snprintf(etag, size, "%s", e ? e->meta.etag : "");
    aside_value_type type = e ? e->meta.type : aside_value_type_for_key(key);
    pthread_mutex_unlock(&c->lock);
    return type;
}

/* The update itself, as the leader of key's flight. */
static aside_status revalidate(aside_cache *c, sor *from, const char *key, aside_value **out,
                               aside_read_info *info, aside_error *err)
{
    char etag[sizeof((store_meta *)0)->etag];
    aside_value_type type = cached_etag(c, key, etag, sizeof etag);
    bool not_modified = false;
    info->source = ASIDE_SOURCE_SOR;
    aside_status st = load_from_sor(c, from, key, type, etag[0] ? etag : NULL, out,
                                    &not_modified, err);
    if (st == ASIDE_OK && not_modified) {
        info->revalidated = true;
        pthread_mutex_lock(&c->lock);
        entry *e = entry_find(c, key);
        if (e)
            e->validated_ms = clock_unix_ms();
        pthread_mutex_unlock(&c->lock);
        if (memory_hit(c, key, out))
            return ASIDE_OK;
        st = disk_hit(c, key, out, err);
        if (st != ASIDE_ERR_NOT_FOUND) /* else the copy went bad: fetch it whole */
            return st;
        info->revalidated = false;
        st = load_from_sor(c, from, key, type, NULL, out, &not_modified, err);
    }
    if (st == ASIDE_ERR_NOT_FOUND) {
        pthread_mutex_lock(&c->lock);
        entry *e = entry_find(c, key);
        if (e)
            entry_destroy(c, e, true);
        pthread_mutex_unlock(&c->lock);
    }
    return st;
}

/* After an update whose SOR failed (status st): the last good copy, if there is one. */
static aside_status stale_if_error(aside_cache *c, const char *key, aside_status st,
                                   aside_value **v, aside_read_info *info, aside_error *err)
{
    if (st != ASIDE_ERR_SOR && st != ASIDE_ERR_TIMEOUT && st != ASIDE_ERR_DENIED)
        return st;
    aside_error ignored;
    bool in_memory = memory_hit(c, key, v);
    if (!in_memory && disk_hit(c, key, v, &ignored) != ASIDE_OK)
        return st;
    log_line("warn", "%s: serving the cached copy: %s", key, err ? err->message : "");
    info->stale = true;
    info->source = in_memory ? ASIDE_SOURCE_MEMORY : ASIDE_SOURCE_DISK;
    return ASIDE_OK;
}

aside_status aside_update(aside_cache *c, const char *key, const aside_read_options *options,
                          aside_value **out, aside_read_info *info, aside_error *err)
{
    aside_read_info ignored;
    info = info ? info : &ignored;
    memset(info, 0, sizeof *info);
    sor *from = NULL;
    flight *f = NULL;
    aside_status st = prepare_to_lead(c, key, options, &from, &f, err);
    if (st != ASIDE_OK)
        return st;
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    if (e && e->live)
        st = error_set(err, ASIDE_ERR_CONFLICT, "%s is a %s the cache alone holds: no system of "
                       "record has it to update from", key, aside_value_type_name(e->meta.type));
    pthread_mutex_unlock(&c->lock);
    aside_value *v = NULL;
    if (st == ASIDE_OK)
        st = revalidate(c, from, key, &v, info, err);
    if (options && options->stale_if_error)
        st = stale_if_error(c, key, st, &v, info, err);
    flight_complete(c->flights, f, st, v, (int)info->source, err);
    flight_release(c->flights, f, value_release_any);
    if (st == ASIDE_OK && out)
        *out = v;
    else
        aside_value_release(v);
    return st;
}

/* ---- writes and listings ------------------------------------------------------------------ */

static aside_status write_tmp(int fd, const void *data, size_t size, aside_error *err)
{
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, (const char *)data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return error_set(err, ASIDE_ERR_IO, "cannot write to the disk tier: %s",
                             strerror(errno));
        done += (size_t)n;
    }
    return ASIDE_OK;
}

/* Write through to the SOR, then commit the same bytes as the cached value; *out is its memory
 * copy (NULL when larger than the memory budget). */
static aside_status write_through(aside_cache *c, sor *to, const char *key,
                                  aside_value_type type, const void *data, size_t size,
                                  aside_object_info *info, aside_value **out, aside_error *err)
{
    aside_status st = value_kind_of(type)->check(data, size, err);
    if (st == ASIDE_OK && size > c->disk_limit)
        st = error_set(err, ASIDE_ERR_TOO_LARGE, "%s is %zu bytes, more than the disk tier's "
                       "limit", key, size);
    store_tmp tmp = {-1, ""};
    if (st == ASIDE_OK)
        st = store_tmp_create(c->store, &tmp, err);
    if (st == ASIDE_OK)
        st = write_tmp(tmp.fd, data, size, err);
    aside_value *v = NULL;
    if (st == ASIDE_OK && type == ASIDE_TYPE_FRAME) { /* a frame validates by decoding */
        int rd = open(tmp.path, O_RDONLY | O_CLOEXEC);
        st = rd < 0 ? error_set(err, ASIDE_ERR_IO, "cannot reopen a temporary file")
                    : decode_frame(c, key, tmp.path, rd, size, &v, err);
    }
    if (st == ASIDE_OK && to) /* put: no system of record */
        st = sor_put(to, key, tmp.fd, size, info, err);
    if (st == ASIDE_OK) {
        store_meta meta;
        meta_init(&meta, type, size, info);
        meta.xxh3 = store_checksum(data, size);
        void *copy = !v && size <= c->mem_limit ? malloc(size ? size : 1) : NULL;
        if (copy) {
            memcpy(copy, data, size);
            v = value_from_memory(type, copy, size);
        }
        st = commit(c, key, &tmp, &meta, v, err);
    }
    store_tmp_discard(&tmp);
    if (st == ASIDE_OK)
        *out = v;
    else
        aside_value_release(v);
    return st;
}

aside_status aside_write(aside_cache *c, const char *key, const aside_read_options *options,
                         const void *data, size_t size, aside_object_info *info,
                         aside_error *err)
{
    aside_object_info ignored;
    info = info ? info : &ignored;
    memset(info, 0, sizeof *info);
    sor *to = NULL;
    flight *f = NULL;
    aside_status st = prepare_to_lead(c, key, options, &to, &f, err);
    if (st != ASIDE_OK)
        return st;
    aside_value *v = NULL;
    aside_value_type type = ASIDE_TYPE_BYTES;
    st = requested_type(c, key, options, false, &type, err);
    if (st == ASIDE_OK)
        st = write_through(c, to, key, type, data, size, info, &v, err);
    flight_complete(c->flights, f, st, v, ASIDE_SOURCE_SOR, err);
    flight_release(c->flights, f, value_release_any);
    aside_value_release(v);
    return st;
}

static int by_object_key(const void *a, const void *b)
{
    return strcmp(((const aside_object_entry *)a)->key, ((const aside_object_entry *)b)->key);
}

aside_status aside_list(aside_cache *c, const aside_read_options *options, const char *prefix,
                        aside_object_entry **out, size_t *count, aside_error *err)
{
    sor *from = NULL;
    aside_status st = pick_sor(c, options, &from, err);
    sor_listing listing = {NULL, 0, 0};
    if (st == ASIDE_OK)
        st = sor_list(from, prefix, &listing, err);
    if (st != ASIDE_OK) {
        aside_object_entries_free(listing.items, listing.count);
        return st;
    }
    if (listing.count)
        qsort(listing.items, listing.count, sizeof *listing.items, by_object_key);
    *out = listing.items;
    *count = listing.count;
    return ASIDE_OK;
}

aside_status aside_delete(aside_cache *c, const char *key, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    if (e)
        entry_destroy(c, e, true);
    pthread_mutex_unlock(&c->lock);
    if (!e)
        return error_set(err, ASIDE_ERR_NOT_FOUND, "not in the cache: %s", key);
    return ASIDE_OK;
}

/* ---- telemetry ---------------------------------------------------------------------------- */

void aside_stats_get(aside_cache *c, aside_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->counters;
    out->keys = table_count(c->index);
    out->memory_used_bytes = policy_bytes(c->mem_policy) + c->shm_bytes + c->resident_bytes;
    out->shm_bytes = c->shm_bytes;
    out->pinned_bytes = c->resident_bytes;
    if (c->journal)
        journal_stats(c->journal, &out->log_bytes, &(uint64_t){0});
    out->memory_limit_bytes = c->mem_limit;
    out->disk_used_bytes = policy_bytes(c->disk_policy);
    out->disk_limit_bytes = c->disk_limit;
    pthread_mutex_unlock(&c->lock);
    out->uptime_seconds = (double)(clock_mono_ns() - c->opened_mono_ns) / 1e9;
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
    pthread_mutex_lock(&c->lock);
    size_t n = table_count(c->index);
    aside_entry_info *all = calloc(n ? n : 1, sizeof *all);
    size_t i = 0, cursor = 0;
    bool failed = !all;
    int64_t now = clock_unix_ms();
    for (table_node *node = all ? table_next(c->index, &cursor, NULL) : NULL; node && i < n;
         node = table_next(c->index, &cursor, node)) {
        entry *e = container_of(node, entry, node);
        if (ops_expired(e, now)) /* gone, though housekeeping has not removed it yet */
            continue;
        char *key = strdup(e->key);
        if ((failed = !key))
            break;
        entry_info(e, &all[i++], key);
    }
    pthread_mutex_unlock(&c->lock);
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
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    char *copy = e ? strdup(key) : NULL;
    if (copy)
        entry_info(e, info, copy);
    pthread_mutex_unlock(&c->lock);
    if (!e)
        return error_set(err, ASIDE_ERR_NOT_FOUND, "not in the cache: %s", key);
    return copy ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}

/* ---- open and close ----------------------------------------------------------------------- */

static void index_stored(void *ctx, const char *key, const store_meta *meta)
{
    aside_cache *c = ctx;
    if (entry_lookup(c, key)) {
        store_remove(c->store, key); /* the journal's later state wins (see ops.c) */
        return;
    }
    entry *e = entry_create(c, key);
    if (!e)
        return;
    e->meta = *meta;
    e->generation = ++c->generations;
    e->last_access_ms = e->validated_ms = meta->fetched_ms;
    e->disk_node.bytes = meta->size;
    entry_place_on_disk(c, e);
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
    c->flights = flight_group_create(value_retain_any);
    if (!c->mem_policy || !c->disk_policy)
        return error_set(err, ASIDE_ERR_INVALID, "unknown eviction policy \"%s\" (known: s3fifo, "
                         "lru, lfu)", cfg->policy);
    if (!c->index || !c->flights)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if ((st = open_shm_dir(c, cfg->shm_dir, err)) != ASIDE_OK)
        return st;
    engine_config ec = {.memory_limit_bytes = c->mem_limit / 100 * ENGINE_MEMORY_PERCENT};
    st = engine_open(&ec, &c->engine, err);
    c->decode = (value_context){c->engine, c->mem_limit};
    return st;
}

aside_status aside_cache_open(const aside_config *cfg, aside_cache **out, aside_error *err)
{
    aside_config defaults;
    aside_config_init(&defaults);
    cfg = cfg ? cfg : &defaults;
    aside_cache *c = calloc(1, sizeof *c);
    if (!c)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->background_done, NULL);
    c->opened_mono_ns = clock_mono_ns();
    /* generations never repeat across runs: they start from the opening time */
    c->generations = (uint64_t)clock_unix_ms() << GENERATION_SHIFT;
    aside_status st = open_parts(c, cfg, err);
    if (st == ASIDE_OK) /* the journal first: its state wins over a file of the same key */
        st = ops_open(c, cfg, err);
    if (st == ASIDE_OK)
        st = store_scan(c->store, index_stored, c, err);
    if (st != ASIDE_OK) {
        aside_cache_close(c);
        return st;
    }
    evict_disk_for(c, 0); /* the limit may have shrunk since the last run */
    *out = c;
    return ASIDE_OK;
}

void aside_cache_close(aside_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    while (c->background)
        pthread_cond_wait(&c->background_done, &c->lock);
    pthread_mutex_unlock(&c->lock);
    ops_close(c);
    if (c->index) {
        size_t cursor = 0;
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
    }
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
    pthread_cond_destroy(&c->background_done);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ---- frames computed in the cache --------------------------------------------------------- */

engine *aside_cache_engine(aside_cache *c) { return c->engine; }

/* Write the segments of an encoding to fd. */
static aside_status write_encoding(int fd, const arrow_encoding *enc, aside_error *err)
{
    aside_status st = ASIDE_OK;
    for (size_t i = 0; st == ASIDE_OK && i < enc->count; i++)
        st = write_tmp(fd, enc->segments[i].data, enc->segments[i].length, err);
    return st;
}

/* f's file into tmp: parquet for a parquet key, else Arrow IPC. */
static aside_status write_frame_file(aside_cache *c, const char *key, frame *f, store_tmp *tmp,
                                     aside_error *err)
{
    if (!value_key_has_suffix(key, strlen(key), ".parquet")) {
        arrow_encoding enc;
        aside_status st = arrow_encode(f, ARROW_FILE, true, &enc, err);
        if (st == ASIDE_OK) {
            st = write_encoding(tmp->fd, &enc, err);
            arrow_encoding_free(&enc);
        }
        return st;
    }
    aside_status st = engine_write_parquet(c->engine, f, tmp->path, err);
    if (st != ASIDE_OK)
        return st;
    close(tmp->fd); /* DuckDB wrote a new file at the path */
    tmp->fd = open(tmp->path, O_RDWR | O_CLOEXEC);
    if (tmp->fd < 0)
        return error_set(err, ASIDE_ERR_IO, "cannot reopen %s", tmp->path);
    fchmod(tmp->fd, S_IRUSR | S_IWUSR); /* private, like every file of the disk tier */
    return ASIDE_OK;
}

static aside_status store_frame_file(aside_cache *c, const char *key, frame *f, store_tmp *tmp,
                                     aside_value **v, store_meta *meta, aside_error *err)
{
    aside_status st = write_frame_file(c, key, f, tmp, err);
    struct stat sb;
    if (st == ASIDE_OK && fstat(tmp->fd, &sb) != 0)
        st = error_set(err, ASIDE_ERR_IO, "cannot stat a temporary file");
    aside_object_info none = {0};
    if (st == ASIDE_OK) {
        meta_init(meta, ASIDE_TYPE_FRAME, (uint64_t)sb.st_size, &none);
        st = checksum_file(tmp->fd, meta->size, &meta->xxh3, err);
    }
    if (st == ASIDE_OK && meta->size > c->disk_limit)
        st = error_set(err, ASIDE_ERR_TOO_LARGE, "%s is %llu bytes, more than the disk tier's "
                       "limit", key, (unsigned long long)meta->size);
    int rd = st == ASIDE_OK ? open(tmp->path, O_RDONLY | O_CLOEXEC) : -1;
    if (st == ASIDE_OK && rd < 0)
        st = error_set(err, ASIDE_ERR_IO, "cannot reopen a temporary file");
    if (st == ASIDE_OK && !(*v = value_from_frame(frame_retain(f), rd, meta->size)))
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    return st;
}

aside_status aside_store_frame(aside_cache *c, const char *key, frame *f, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    if (f->memory_bytes > c->mem_limit)
        return error_set(err, ASIDE_ERR_TOO_LARGE, "the frame needs %llu bytes, more than the "
                         "memory limit of %llu", (unsigned long long)f->memory_bytes,
                         (unsigned long long)c->mem_limit);
    flight *fl = lead(c, key);
    if (!fl)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    store_tmp tmp = {-1, ""};
    store_meta meta;
    aside_value *v = NULL;
    st = store_tmp_create(c->store, &tmp, err);
    if (st == ASIDE_OK)
        st = store_frame_file(c, key, f, &tmp, &v, &meta, err);
    if (st == ASIDE_OK)
        st = commit(c, key, &tmp, &meta, v, err);
    store_tmp_discard(&tmp);
    flight_complete(c->flights, fl, st, v, ASIDE_SOURCE_MEMORY, err);
    flight_release(c->flights, fl, value_release_any);
    aside_value_release(v);
    return st;
}

/* ---- values kept in the cache only (put) -------------------------------------------------- */

aside_status aside_put(aside_cache *c, const char *key, const aside_read_options *options,
                       const void *data, size_t size, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    aside_value_type type = ASIDE_TYPE_BYTES;
    if (st == ASIDE_OK)
        st = requested_type(c, key, options, true, &type, err);
    if (st != ASIDE_OK)
        return st;
    if (type >= ASIDE_TYPE_LIST)
        return ops_put(c, key, type, data, size, err);
    flight *f = lead(c, key);
    if (!f)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    aside_object_info info = {0};
    aside_value *v = NULL;
    st = write_through(c, NULL, key, type, data, size, &info, &v, err);
    flight_complete(c->flights, f, st, v, ASIDE_SOURCE_MEMORY, err);
    flight_release(c->flights, f, value_release_any);
    aside_value_release(v);
    return st;
}

/* ---- shared-memory publications ----------------------------------------------------------- */

/* The file name of key's publication: a hash of the key (names have a length limit keys do
 * not), its last component for the reader's eye, and the generation. */
static void publication_path(const aside_cache *c, const char *key, uint64_t generation,
                             char *path, size_t size)
{
    const char *base = strrchr(key, '/');
    base = base ? base + 1 : key;
    char owner[32] = ""; /* a folder shared by several servers: their names must not meet */
    if (!c->shm_dir_ours)
        snprintf(owner, sizeof owner, "%ld.", (long)getpid());
    snprintf(path, size, "%s/%016llx-%.80s.%s%llu.arrow", c->shm_dir,
             (unsigned long long)XXH3_64bits(key, strlen(key)), base, owner,
             (unsigned long long)generation);
}

/* Where each batch body of f sits in its encoding (the segments point at the bodies). */
static uint64_t *body_offsets(const frame *f, const arrow_encoding *enc)
{
    uint64_t *offsets = calloc(f->batch_count ? f->batch_count : 1, sizeof *offsets);
    uint64_t at = 0;
    size_t next = 0;
    for (size_t i = 0; offsets && i < enc->count; i++) {
        if (next < f->batch_count && enc->segments[i].data == f->batches[next].body)
            offsets[next++] = at;
        at += enc->segments[i].length;
    }
    if (offsets && next != f->batch_count) { /* an encoding that does not hold the bodies */
        free(offsets);
        offsets = NULL;
    }
    return offsets;
}

/* A frame like f reading its bodies from the published file at path (see frame_view_mapping):
 * after publishing, the cache keeps this one copy. NULL when it cannot be had (then the
 * cache keeps f: two copies, both counted). */
static frame *view_publication(frame *f, const char *path, uint64_t bytes,
                               const uint64_t *offsets)
{
    int fd = offsets ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return NULL;
    void *map = bytes ? mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    close(fd);
    return map == MAP_FAILED ? NULL : frame_view_mapping(f, map, bytes, offsets);
}

/* Write f as an Arrow IPC file under a temporary name (PATH_MAX bytes at tmp), renamed into
 * place by adopt_publication; *view receives a frame reading its bodies from that file, or
 * NULL. */
static aside_status publish_file(const aside_cache *c, frame *f, char *tmp, uint64_t *bytes,
                                 frame **view, aside_error *err)
{
    uint64_t *offsets = NULL;
    *view = NULL;
    snprintf(tmp, PATH_MAX, "%s/.publishing.XXXXXX", c->shm_dir);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return error_set(err, ASIDE_ERR_IO, "cannot create a file in %s: %s", c->shm_dir,
                         strerror(errno));
    arrow_encoding enc;
    aside_status st = arrow_encode(f, ARROW_FILE, true, &enc, err);
    if (st == ASIDE_OK) {
        st = write_encoding(fd, &enc, err);
        *bytes = enc.total_bytes;
        offsets = body_offsets(f, &enc);
        arrow_encoding_free(&enc);
    }
    /* private in our own folder; in a configured one, readable by the folder's group */
    if (st == ASIDE_OK && fchmod(fd, c->shm_dir_ours ? S_IRUSR : S_IRUSR | S_IRGRP) != 0)
        st = error_set(err, ASIDE_ERR_IO, "cannot set the mode of %s: %s", tmp, strerror(errno));
    close(fd);
    if (st != ASIDE_OK)
        unlink(tmp);
    else
        *view = view_publication(f, tmp, *bytes, offsets);
    free(offsets);
    return st;
}

/* Make the entry's value read the published file instead of its own copy (under the lock). */
static void keep_one_copy(aside_cache *c, entry *e, frame *view)
{
    aside_value *old = e->value;
    int fd = dup(aside_value_fd(old));
    aside_value *fresh = fd >= 0 ? value_from_frame(frame_retain(view), fd,
                                                    aside_value_size(old)) : NULL;
    if (!fresh)
        return; /* keep both copies: they are counted */
    value_set_generation(fresh, e->generation);
    e->value = fresh;
    if (e->in_mem_policy) {
        policy_remove(c->mem_policy, &e->mem_node);
        e->mem_node.bytes = value_memory_bytes(fresh);
        policy_insert(c->mem_policy, &e->mem_node);
    } else
        entry_set_resident(c, e, value_memory_bytes(fresh));
    aside_value_release(old); /* freed when the last reader of the old copy lets go */
}

static void publication_of(const entry *e, aside_publication *out)
{
    snprintf(out->path, sizeof out->path, "%s", e->shm_path);
    out->generation = e->generation;
    out->bytes = e->shm_bytes;
}

/* True if e holds, in memory, the content numbered generation. */
static bool holds(const entry *e, uint64_t generation)
{
    return e && e->value && e->generation == generation;
}

/* Make the file at tmp (bytes long, holding content generation) key's publication at path, if
 * key still has that content in memory and the budget has room; with a view of it, the entry
 * keeps that one copy. The rename happens here, under the lock, so only the adopted file ever
 * has the publication's name. */
static aside_status adopt_publication(aside_cache *c, const char *key, aside_value *v,
                                      uint64_t generation, const char *tmp, const char *path,
                                      uint64_t bytes, frame *view, aside_publication *out,
                                      aside_error *err)
{
    entry *e = entry_find(c, key);
    if (holds(e, generation) && e->shm_path) { /* another request published it meanwhile */
        unlink(tmp);
        publication_of(e, out);
        return ASIDE_OK;
    }
    if (holds(e, generation)) { /* room for the file, less the copy it replaces */
        uint64_t freed = view && e->value == v ? value_memory_bytes(v) - view->memory_bytes : 0;
        evict_memory_for(c, bytes > freed ? bytes - freed : 0);
    }
    e = entry_find(c, key);
    if (!holds(e, generation)) { /* a new content, or evicted to make room: publish again */
        unlink(tmp);
        return error_set(err, ASIDE_ERR_CONFLICT, "%s changed or left memory while it was "
                         "published", key);
    }
    if (!(e->shm_path = strdup(path))) {
        unlink(tmp);
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    if (rename(tmp, path) != 0) {
        aside_status st = error_set(err, ASIDE_ERR_IO, "cannot publish %s: %s", path,
                                    strerror(errno));
        unlink(tmp);
        free(e->shm_path);
        e->shm_path = NULL;
        return st;
    }
    e->shm_bytes = bytes;
    c->shm_bytes += bytes;
    c->counters.shm_publications++;
    if (view && e->value == v)
        keep_one_copy(c, e, view);
    publication_of(e, out);
    return ASIDE_OK;
}

enum { PUBLISH_ATTEMPTS = 3 }; /* a key rewritten while it is published is published again */

static aside_status publish_once(aside_cache *c, const char *key,
                                 const aside_read_options *options, aside_publication *out,
                                 aside_value **held, aside_error *err);

aside_status aside_publish(aside_cache *c, const char *key, const aside_read_options *options,
                           aside_publication *out, aside_value **held, aside_error *err)
{
    if (!c->shm_dir)
        return error_set(err, ASIDE_ERR_CONFLICT, "shared memory is off");
    aside_status st = ASIDE_ERR_CONFLICT;
    for (int i = 0; i < PUBLISH_ATTEMPTS && st == ASIDE_ERR_CONFLICT; i++)
        st = publish_once(c, key, options, out, held, err);
    return st;
}

static aside_status publish_once(aside_cache *c, const char *key,
                                 const aside_read_options *options, aside_publication *out,
                                 aside_value **held, aside_error *err)
{
    aside_read_options o = options ? *options : (aside_read_options){0};
    if (!o.type && aside_value_type_for_key(key) != ASIDE_TYPE_JSON)
        o.type = "frame";
    aside_value *v = NULL;
    aside_status st = aside_read(c, key, &o, &v, NULL, err);
    if (st != ASIDE_OK)
        return st;
    if (!value_frame(v)) {
        aside_value_release(v);
        st = error_set(err, ASIDE_ERR_INVALID, "%s is not a frame; only frames are published",
                       key);
        snprintf(err->code, sizeof err->code, "not_a_frame");
        return st;
    }
    uint64_t generation = value_generation(v);
    pthread_mutex_lock(&c->lock);
    entry *e = entry_find(c, key);
    bool published = holds(e, generation) && e->shm_path;
    if (published)
        publication_of(e, out);
    pthread_mutex_unlock(&c->lock);
    if (!published) {
        char path[PATH_MAX], tmp[PATH_MAX];
        uint64_t bytes = 0;
        frame *view = NULL;
        publication_path(c, key, generation, path, sizeof path);
        st = publish_file(c, value_frame(v), tmp, &bytes, &view, err);
        pthread_mutex_lock(&c->lock);
        if (st == ASIDE_OK)
            st = adopt_publication(c, key, v, generation, tmp, path, bytes, view, out, err);
        pthread_mutex_unlock(&c->lock);
        frame_release(view);
    }
    if (st == ASIDE_OK) {
        pthread_mutex_lock(&c->lock);
        c->counters.shm_maps++;
        pthread_mutex_unlock(&c->lock);
    }
    if (st == ASIDE_OK && held)
        *held = v;
    else
        aside_value_release(v);
    return st;
}

/* ---- frames for embedders ----------------------------------------------------------------- */

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
