/* write.c -- writes, puts and deletes: aside_write, aside_put, aside_store_frame, aside_list,
 * aside_delete.
 *
 * A write goes through: the bytes are checked (their type's validator; a frame by decoding),
 * written to a temporary file of the disk tier, sent to the system of record, then committed
 * as the cached value (load.c). A put is the same without the system of record; a put of a
 * collection type makes a live value instead (live.c). A frame computed in the cache (SQL
 * "into") is kept as a parquet or Arrow IPC file. Each but a collection's put leads the key's
 * single flight (tier.c), so readers that miss meanwhile wait for the new value rather than
 * load the old one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib.h"
#include "live.h"
#include "load.h"
#include "tier.h"
#include "util/util.h"

/* ---- writes ---------------------------------------------------------------------------------- */

/* Write through to the SOR, then commit the same bytes as the cached value; *out is its memory
 * copy (NULL when larger than the memory budget). */
static aside_status write_through(aside_cache *c, sor *to, const char *key,
                                  aside_value_type type, const void *data, size_t size,
                                  aside_object_info *info, aside_value **out, aside_error *err)
{
    aside_status st = value_kind_of(type)->check(&c->decode, data, size, err);
    if (st == ASIDE_OK && size > c->disk_limit)
        st = error_set(err, ASIDE_ERR_TOO_LARGE, "%s is %zu bytes, more than the disk tier's "
                       "limit", key, size);
    store_tmp tmp = {-1, ""};
    if (st == ASIDE_OK)
        st = store_tmp_create(c->store, &tmp, err);
    if (st == ASIDE_OK)
        st = load_write_all(tmp.fd, data, size, err);
    aside_value *v = NULL;
    if (st == ASIDE_OK && type == ASIDE_TYPE_FRAME) { /* a frame validates by decoding */
        int rd = open(tmp.path, O_RDONLY | O_CLOEXEC);
        st = rd < 0 ? error_set(err, ASIDE_ERR_IO, "cannot reopen a temporary file")
                    : load_decode_frame(c, key, tmp.path, rd, size, &v, err);
    }
    if (st == ASIDE_OK && to) /* put: no system of record */
        st = sor_put(to, key, tmp.fd, size, info, err);
    if (st == ASIDE_OK) {
        store_meta meta;
        load_meta_init(&meta, type, size, info);
        meta.xxh3 = store_checksum(data, size);
        void *copy = !v && size <= c->mem_limit ? malloc(size ? size : 1) : NULL;
        if (copy) {
            memcpy(copy, data, size);
            v = value_from_memory(type, copy, size);
        }
        st = load_commit(c, key, &tmp, &meta, v, err);
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
    aside_status st = tier_prepare_to_lead(c, key, options, &to, &f, err);
    if (st != ASIDE_OK)
        return st;
    aside_value *v = NULL;
    aside_value_type type = ASIDE_TYPE_BYTES;
    st = tier_settle_type(c, key, options, false, &type, err);
    if (st == ASIDE_OK)
        st = write_through(c, to, key, type, data, size, info, &v, err);
    flight_complete(c->flights, f, st, v, ASIDE_SOURCE_SOR, err);
    flight_release(c->flights, f, tier_value_release);
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
    aside_status st = tier_sor(c, options, &from, err);
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


/* ---- values kept in the cache only (put) ----------------------------------------------------- */

aside_status aside_put(aside_cache *c, const char *key, const aside_read_options *options,
                       const void *data, size_t size, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    aside_value_type type = ASIDE_TYPE_BYTES;
    if (st == ASIDE_OK)
        st = tier_settle_type(c, key, options, true, &type, err);
    if (st != ASIDE_OK)
        return st;
    if (type >= ASIDE_TYPE_LIST)
        return live_put(c, key, type, data, size, err);
    flight *f = tier_lead(c, key);
    if (!f)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    aside_object_info info = {0};
    aside_value *v = NULL;
    st = write_through(c, NULL, key, type, data, size, &info, &v, err);
    flight_complete(c->flights, f, st, v, ASIDE_SOURCE_MEMORY, err);
    flight_release(c->flights, f, tier_value_release);
    aside_value_release(v);
    return st;
}

/* ---- frames computed in the cache ------------------------------------------------------------ */

/* Say key where err's message names path (a temporary file of the disk tier): the server's
 * folders are not a client's business. */
static void name_key_not_path(aside_error *err, const char *path, const char *key)
{
    char *at = err ? strstr(err->message, path) : NULL;
    if (!at)
        return;
    char rest[ASIDE_ERROR_MESSAGE_MAX];
    snprintf(rest, sizeof rest, "%s", at + strlen(path));
    *at = '\0';
    size_t used = strlen(err->message);
    snprintf(at, sizeof err->message - used, "%s%s", key, rest);
}

/* f's file into tmp: parquet for a parquet key, else Arrow IPC. */
static aside_status write_frame_file(aside_cache *c, const char *key, frame *f, store_tmp *tmp,
                                     aside_error *err)
{
    if (!value_key_has_suffix(key, strlen(key), ".parquet")) {
        arrow_encoding enc;
        aside_status st = arrow_encode(f, ARROW_FILE, true, &enc, err);
        if (st == ASIDE_OK) {
            st = load_write_encoding(tmp->fd, &enc, err);
            arrow_encoding_free(&enc);
        }
        return st;
    }
    aside_status st = engine_write_parquet(c->engine, f, tmp->path, err);
    if (st != ASIDE_OK) {
        name_key_not_path(err, tmp->path, key);
        return st;
    }
    close(tmp->fd); /* DuckDB wrote a new file at the path */
    tmp->fd = open(tmp->path, O_RDWR | O_CLOEXEC);
    if (tmp->fd < 0)
        return error_set(err, ASIDE_ERR_IO, "cannot reopen the file of %s: %s", key,
                         strerror(errno));
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
        load_meta_init(meta, ASIDE_TYPE_FRAME, (uint64_t)sb.st_size, &none);
        st = load_checksum_file(tmp->fd, meta->size, &meta->xxh3, err);
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
    flight *fl = tier_lead(c, key);
    if (!fl)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    store_tmp tmp = {-1, ""};
    store_meta meta;
    aside_value *v = NULL;
    st = store_tmp_create(c->store, &tmp, err);
    if (st == ASIDE_OK)
        st = store_frame_file(c, key, f, &tmp, &v, &meta, err);
    if (st == ASIDE_OK)
        st = load_commit(c, key, &tmp, &meta, v, err);
    store_tmp_discard(&tmp);
    flight_complete(c->flights, fl, st, v, ASIDE_SOURCE_MEMORY, err);
    flight_release(c->flights, fl, tier_value_release);
    aside_value_release(v);
    return st;
}

/* ---- deletes --------------------------------------------------------------------------------- */

aside_status aside_delete(aside_cache *c, const char *key, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    if (st != ASIDE_OK)
        return st;
    entry_key_lock(c, key); /* no sidecar rewrite of key while its files go */
    cache_lock(c);
    entry *e = entry_find(c, key);
    if (e)
        entry_destroy(c, e, true);
    cache_unlock(c);
    entry_key_unlock(c, key);
    if (!e)
        return error_set(err, ASIDE_ERR_NOT_FOUND, "not in the cache: %s", key);
    return ASIDE_OK;
}
