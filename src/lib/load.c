/* load.c -- files of the disk tier: loading, fetching from the system of record, committing.
 *
 * A key's value reaches the cache in one of two ways. From the disk tier: its file is opened,
 * checked against its sidecar (size, and the XXH3 checksum once per run), and either read into
 * memory, decoded (a frame), or, larger than the memory budget, served from the open file. From
 * the system of record: the object is fetched into a temporary file of the disk tier, checked
 * (its type's validator, a frame by decoding it), checksummed, copied to memory when it fits,
 * then committed: renamed into place with its sidecar, and installed as the key's entry.
 *
 * When the disk tier cannot keep a fetched value (writing or committing its file fails: a full
 * disk, a quota, a read-only or failing disk), the value is still served, as a cache should
 * when its disk is full: the caller gets the fetched bytes, nothing is kept (no file, no entry,
 * the key's older copy dropped), and the next read fetches again. Only a value that fits the
 * memory budget is served so: it is held in memory (fetched again into an anonymous memory
 * file when the disk tier could not even take it whole) until its last reader lets go.
 *
 * All the I/O runs without the cache lock; the lock is taken only to count a fetch, to make
 * room in the disk tier before a commit and to install the entry after it. A commit holds the
 * key's key lock (cache.h), so no pin or time to live rewrites the key's sidecar meanwhile. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <xxhash.h>

#include "load.h"
#include "util/util.h"

enum { VERIFY_CHUNK_BYTES = 1 << 20 };

/* ---- writing files --------------------------------------------------------------------------- */

aside_status load_write_all(int fd, const void *data, size_t size, aside_error *err)
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

aside_status load_write_encoding(int fd, const arrow_encoding *enc, aside_error *err)
{
    aside_status st = ASIDE_OK;
    for (size_t i = 0; st == ASIDE_OK && i < enc->count; i++)
        st = load_write_all(fd, enc->segments[i].data, enc->segments[i].length, err);
    return st;
}

/* ---- loading from the disk tier -------------------------------------------------------------- */

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

aside_status load_checksum_file(int fd, uint64_t size, uint64_t *sum, aside_error *err)
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

aside_status load_decode_frame(aside_cache *c, const char *key, const char *path, int fd,
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
    aside_status st = *verified ? ASIDE_OK : load_checksum_file(fd, meta->size, &sum, err);
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
    return load_decode_frame(c, key, path, fd, meta->size, out, err);
}

aside_status load_file(aside_cache *c, const char *key, const store_meta *meta,
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

/* ---- loading from the system of record ------------------------------------------------------- */

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
    aside_status st = value_kind_of(meta->type)->check(&c->decode, data, meta->size, err);
    if (st == ASIDE_OK) {
        meta->xxh3 = store_checksum(data, meta->size);
        if (meta->type == ASIDE_TYPE_FRAME) {
            int rd = open(tmp->path, O_RDONLY | O_CLOEXEC);
            st = rd < 0 ? error_set_errno(err, errno, ASIDE_ERR_IO, "cannot reopen a temporary "
                                          "file")
                        : load_decode_frame(c, key, tmp->path, rd, meta->size, in_memory, err);
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

void load_meta_init(store_meta *meta, aside_value_type type, uint64_t size,
                    const aside_object_info *info)
{
    memset(meta, 0, sizeof *meta);
    meta->size = size;
    meta->type = type;
    meta->sor_mtime_ns = info->mtime_ns;
    meta->fetched_ms = clock_unix_ms();
    snprintf(meta->etag, sizeof meta->etag, "%s", info->etag);
}

/* Count a fetch from the system of record: by storage, its bytes, or its failure's kind. */
static void count_fetch(aside_cache *c, bool s3, aside_status st, const aside_object_info *info)
{
    aside_stats *n = &c->counters;
    cache_lock(c);
    n->sor_fetches++;
    *(s3 ? &n->sor_fetches_s3 : &n->sor_fetches_dir) += 1;
    if (st == ASIDE_OK && !info->not_modified)
        *(s3 ? &n->sor_bytes_s3 : &n->sor_bytes_dir) += info->size;
    else if (st == ASIDE_ERR_NOT_FOUND)
        n->sor_errors_not_found++;
    else if (st == ASIDE_ERR_DENIED)
        n->sor_errors_denied++;
    else if (st == ASIDE_ERR_TIMEOUT)
        n->sor_errors_timeout++;
    else if (st != ASIDE_OK)
        n->sor_errors_other++;
    cache_unlock(c);
}

/* Fetch key into a temporary file of the disk tier and check it. With if_none_match, an
 * unchanged object sets *not_modified and nothing else. */
static aside_status fetch_to_tmp(aside_cache *c, sor *from, const char *key, aside_value_type type,
                                 const char *if_none_match, store_tmp *tmp, store_meta *meta,
                                 aside_value **in_memory, aside_object_info *info,
                                 aside_error *err)
{
    memset(info, 0, sizeof *info);
    aside_status st = store_tmp_create(c->store, tmp, err);
    if (st != ASIDE_OK)
        return st;
    st = sor_fetch(from, key, tmp->fd, if_none_match, info, err);
    count_fetch(c, from == c->s3 && c->s3, st, info);
    if (st != ASIDE_OK)
        return st;
    if (info->not_modified)
        return ASIDE_OK;
    struct stat sb;
    if (fstat(tmp->fd, &sb) != 0)
        return error_set(err, ASIDE_ERR_IO, "stat of a temporary file failed");
    load_meta_init(meta, type, (uint64_t)sb.st_size, info);
    if (info->size != meta->size)
        return error_set(err, ASIDE_ERR_SOR, "%s: the system of record sent %llu bytes of %llu",
                         key, (unsigned long long)meta->size, (unsigned long long)info->size);
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
    cache_lock(c);
    entry *e = entry_find(c, key);
    if (e) /* the files were replaced by the commit: forget the old ones, keep the new */
        entry_destroy(c, e, false);
    entry_evict_disk_for(c, meta->size);
    e = entry_create(c, key);
    if (!e) {
        cache_unlock(c);
        store_remove(c->store, key);
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    e->meta = *meta;
    entry_typed(c, e);
    e->verified = true;
    e->generation = ++c->generations;
    e->last_access_ms = e->validated_ms = meta->fetched_ms;
    e->disk_node.bytes = meta->size;
    entry_place_on_disk(c, e);
    entry_hold(c, e, v);
    cache_unlock(c);
    return ASIDE_OK;
}

aside_status load_commit(aside_cache *c, const char *key, store_tmp *tmp,
                         const store_meta *fetched, aside_value *v, aside_error *err)
{
    store_meta meta = *fetched;
    entry_key_lock(c, key); /* from here until installed, the only writer of key's files */
    cache_lock(c);          /* make room before the file lands */
    entry *old = entry_find(c, key);
    if (old && !old->live) { /* a pin and a time to live stay with the key */
        meta.pinned = old->meta.pinned;
        meta.expires_ms = old->meta.expires_ms;
    } else
        meta.expires_ms = entry_new_expiry(c);
    entry_evict_disk_for(c, meta.size);
    cache_unlock(c);
    aside_status st = store_commit(c->store, tmp, key, &meta, err);
    if (st == ASIDE_OK)
        st = install(c, key, &meta, v, err);
    entry_key_unlock(c, key);
    return st;
}

/* ---- serving a value the disk tier cannot keep ------------------------------------------------ */

/* Fetch key again into an anonymous memory file (the disk tier had no room for it) and check it
 * as a fetch into the disk tier is checked; *out is its memory copy. size is what the first
 * attempt was told the object's size is: it must be known and fit the memory budget. */
static aside_status fetch_to_memory(aside_cache *c, sor *from, const char *key,
                                    aside_value_type type, uint64_t size, aside_value **out,
                                    aside_error *err)
{
    if (size == 0) /* the fetch failed before the SOR said: it could be any size */
        return error_set(err, ASIDE_ERR_TOO_LARGE, "the size of %s is unknown", key);
    if (size > c->mem_limit)
        return error_set(err, ASIDE_ERR_TOO_LARGE, "%s (%llu bytes) does not fit the memory "
                         "budget", key, (unsigned long long)size);
    store_tmp tmp = {memfd_create("aside-uncached", MFD_CLOEXEC), ""};
    if (tmp.fd < 0)
        return error_set(err, ASIDE_ERR_NOMEM, "cannot hold %s in memory: %s", key,
                         strerror(errno));
    snprintf(tmp.path, sizeof tmp.path, "/proc/self/fd/%d", tmp.fd); /* for a frame's reader */
    aside_object_info info;
    store_meta meta;
    struct stat sb;
    aside_status st = sor_fetch(from, key, tmp.fd, NULL, &info, err);
    if (st == ASIDE_OK && fstat(tmp.fd, &sb) != 0)
        st = error_set(err, ASIDE_ERR_NOMEM, "cannot hold %s in memory", key);
    if (st == ASIDE_OK && ((uint64_t)sb.st_size != info.size || info.size > c->mem_limit))
        st = error_set(err, ASIDE_ERR_SOR, "%s changed while it was read", key);
    if (st == ASIDE_OK) {
        load_meta_init(&meta, type, info.size, &info);
        st = inspect_fetched(c, key, &tmp, &meta, out, err);
    }
    close(tmp.fd);
    return st;
}

/* Drop key's cached copy, if it has one from the system of record: a newer content was just
 * fetched and could not be kept. */
static void forget_older_copy(aside_cache *c, const char *key)
{
    cache_lock(c);
    entry *e = entry_find(c, key);
    if (e && !e->live)
        entry_destroy(c, e, true);
    cache_unlock(c);
}

/* The disk tier failed to keep key (cause): serve the fetched value without keeping it. v is
 * its memory copy if the fetch had one, size what the system of record said the object is. */
static aside_status serve_uncached(aside_cache *c, sor *from, const char *key,
                                   aside_value_type type, uint64_t size, aside_value **v,
                                   const aside_error *cause, aside_error *err)
{
    aside_error again;
    aside_status st = *v ? ASIDE_OK : fetch_to_memory(c, from, key, type, size, v, &again);
    if (st != ASIDE_OK) {
        log_line("warn", "load: %s cannot be kept (%s) nor served from memory: %s", key,
                 cause->message, again.message);
        return error_copy(err, cause);
    }
    log_line("warn", "load: %s served without being kept: %s", key, cause->message);
    forget_older_copy(c, key);
    return ASIDE_OK;
}

aside_status load_from_sor(aside_cache *c, sor *from, const char *key, aside_value_type type,
                           const char *if_none_match, aside_value **out, bool *not_modified,
                           bool *uncached, aside_error *err)
{
    store_tmp tmp = {-1, ""};
    store_meta meta;
    aside_object_info info;
    aside_value *v = NULL;
    aside_error cause;
    *not_modified = *uncached = false;
    aside_status st = fetch_to_tmp(c, from, key, type, if_none_match, &tmp, &meta, &v, &info,
                                   &cause);
    if (st == ASIDE_OK && info.not_modified) {
        store_tmp_discard(&tmp);
        *not_modified = true;
        return ASIDE_OK;
    }
    if (st == ASIDE_OK)
        st = load_commit(c, key, &tmp, &meta, v, &cause);
    store_tmp_discard(&tmp);
    if (st == ASIDE_ERR_IO) { /* the disk tier could not keep it */
        st = serve_uncached(c, from, key, type, info.size, &v, &cause, &cause);
        *uncached = st == ASIDE_OK;
    } else if (st == ASIDE_OK && !v) { /* larger than memory: serve the file */
        bool verified = true;
        st = load_file(c, key, &meta, &verified, &v, &cause);
    }
    if (st != ASIDE_OK) {
        aside_value_release(v);
        return error_copy(err, &cause);
    }
    *out = v;
    return ASIDE_OK;
}
