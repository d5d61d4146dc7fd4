/* publish.c -- frames published in shared memory: aside_publish.
 *
 * A frame in memory can be published as an immutable Arrow IPC file in the cache's
 * shared-memory folder (/dev/shm/aside-<pid> by default), which any process on the host may
 * map: readers then share the cache's copy instead of receiving one over a socket. The file is
 * named after a hash of the key, its last component and the content's generation, so a new
 * value of the key is a new file; it counts in the memory budget; it is unlinked when the frame
 * leaves memory, is replaced or deleted (entry_unpublish), and readers that mapped it keep
 * their mapping.
 *
 * The file is written without the lock under a temporary name, then adopted under the lock:
 * renamed into place only if the key still holds that content in memory and the budget has
 * room, so only an adopted file ever has a publication's name. After publishing, the cache
 * keeps one copy: the entry's frame reads its bodies from the published file. Strings are
 * published as Arrow large_string (arrow_encode_large: each batch body is the frame's, then
 * its offsets widened to int64), pandas 3's own layout, so its readers copy nothing; each
 * string column's own width (string or large_string) is named in its field metadata, so a
 * reader can answer the frame's own types. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib.h"
#include "load.h"
#include "util/util.h"

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
        return error_set(err, ASIDE_ERR_IO, "cannot create a file in the shared-memory folder: "
                         "%s", strerror(errno));
    arrow_encoding enc;
    aside_status st = arrow_encode_large(f, ARROW_FILE, true, &enc, err);
    if (st == ASIDE_OK) {
        st = load_write_encoding(fd, &enc, err);
        *bytes = enc.total_bytes;
        offsets = body_offsets(f, &enc);
        arrow_encoding_free(&enc);
    }
    /* readable by the folder's group: in our own folder (mode 0700) nobody's unless the server
     * gives the folder to its functions' group; in a configured one, the operator's group */
    if (st == ASIDE_OK && fchmod(fd, S_IRUSR | S_IRGRP) != 0)
        st = error_set(err, ASIDE_ERR_IO, "cannot set the mode of a file in the shared-memory "
                       "folder: %s", strerror(errno));
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
    cache_assert_locked(c);
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
    cache_assert_locked(c);
    entry *e = entry_find(c, key);
    if (holds(e, generation) && e->shm_path) { /* another request published it meanwhile */
        unlink(tmp);
        publication_of(e, out);
        return ASIDE_OK;
    }
    if (holds(e, generation)) { /* room for the file, less the copy it replaces */
        uint64_t freed = view && e->value == v ? value_memory_bytes(v) - view->memory_bytes : 0;
        entry_evict_memory_for(c, bytes > freed ? bytes - freed : 0);
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
        aside_status st = error_set(err, ASIDE_ERR_IO, "cannot publish %s: %s", key,
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
    cache_lock(c);
    entry *e = entry_find(c, key);
    bool published = holds(e, generation) && e->shm_path;
    if (published)
        publication_of(e, out);
    cache_unlock(c);
    if (!published) {
        char path[PATH_MAX], tmp[PATH_MAX];
        uint64_t bytes = 0;
        frame *view = NULL;
        publication_path(c, key, generation, path, sizeof path);
        st = publish_file(c, value_frame(v), tmp, &bytes, &view, err);
        cache_lock(c);
        if (st == ASIDE_OK)
            st = adopt_publication(c, key, v, generation, tmp, path, bytes, view, out, err);
        cache_unlock(c);
        frame_release(view);
    }
    if (st == ASIDE_OK) {
        cache_lock(c);
        c->counters.shm_maps++;
        cache_unlock(c);
    }
    if (st == ASIDE_OK && held)
        *held = v;
    else
        aside_value_release(v);
    return st;
}
