/* store.c -- the disk tier.
 *
 * Layout under the root (LOCAL_DATA_DIR):
 *
 *   <key>                    the value's bytes, exactly as the system of record had them
 *   .aside/meta/<key>.meta   its sidecar, a few "name value" lines (see meta_format)
 *   .aside/tmp/v.XXXXXX      values being written
 *
 * A commit is: fsync the temporary file; remove the old sidecar; rename the file into place;
 * write the sidecar to a temporary file, fsync, rename; fsync both folders. Whatever the moment
 * of a crash, the tier holds either a value with its matching sidecar, or an orphan file that the
 * next scan removes. A torn or foreign file cannot pass: the sidecar's size is checked at scan,
 * its checksum whenever the value is read.
 *
 * Errors name the key, never a path under the root: they reach clients, and the server's own
 * folders are none of a client's business. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/util.h"

#define META_DIR  ".aside/meta"
#define TMP_DIR   ".aside/tmp"
#define META_EXT  ".meta"
#define META_MAGIC "aside-meta 1"

/* A key's last component gets META_EXT in the meta folder: aside.h's component limit allows
 * for it, so a key accepted always has a sidecar name the file system takes. */
_Static_assert(ASIDE_KEY_COMPONENT_MAX_BYTES + sizeof META_EXT - 1 <= NAME_MAX,
               "a key's sidecar name must fit NAME_MAX");
/* The longest path a key makes below the root: "/.aside/meta/<key>.meta". */
#define KEY_PATH_MAX_BYTES (sizeof "/" META_DIR "/" - 1 + ASIDE_KEY_MAX_BYTES + sizeof META_EXT - 1)

struct store {
    char root[PATH_MAX];
};

uint64_t store_checksum(const void *data, size_t size) { return XXH3_64bits(data, size); }

const char *store_root(const store *s) { return s->root; }

/* ---- paths and folders -------------------------------------------------------------------- */

/* out = root/folder key (folder "" or META_DIR "/"); the message names the key, not the root,
 * which must not reach a client. */
static aside_status key_path(char *out, const store *s, const char *folder, const char *key,
                             aside_error *err)
{
    if (snprintf(out, PATH_MAX, "%s/%s%s", s->root, folder, key) >= PATH_MAX)
        return error_set(err, ASIDE_ERR_INVALID, "the path of %s is too long for the disk tier",
                         key);
    return ASIDE_OK;
}

/* Create every folder above path (not path itself); messages name path from skip on. */
static aside_status make_parents(char *path, size_t skip, aside_error *err)
{
    for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        int rc = mkdir(path, 0755);
        int saved = errno;
        struct stat sb;
        bool is_dir = rc == 0 || (saved == EEXIST && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
        *p = '/';
        if (!is_dir) {
            if (saved == EEXIST || saved == ENOTDIR)
                return error_set(err, ASIDE_ERR_CONFLICT, "a file stands where the folder "
                                 "%s would be", path + skip);
            return error_set(err, ASIDE_ERR_IO, "cannot create the folder %s: %s", path + skip,
                             strerror(saved));
        }
    }
    return ASIDE_OK;
}

static void sync_parent(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return;
    *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void empty_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* ---- open and close ----------------------------------------------------------------------- */

aside_status store_open(const char *root, store **out, aside_error *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s/x", root, TMP_DIR) >= (int)sizeof path)
        return error_set(err, ASIDE_ERR_INVALID, "data directory path too long");
    aside_status st = make_parents(path, 0, err);
    if (st != ASIDE_OK)
        return st;
    snprintf(path, sizeof path, "%s/%s/x", root, META_DIR);
    if ((st = make_parents(path, 0, err)) != ASIDE_OK)
        return st;
    store *s = calloc(1, sizeof *s);
    if (!s)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (!realpath(root, s->root)) {
        free(s);
        return error_set(err, ASIDE_ERR_IO, "data directory %s: %s", root, strerror(errno));
    }
    if (strlen(s->root) + KEY_PATH_MAX_BYTES >= PATH_MAX) {
        free(s);
        return error_set(err, ASIDE_ERR_INVALID, "data directory %s: its path is too long for "
                         "keys of %d bytes", root, ASIDE_KEY_MAX_BYTES);
    }
    snprintf(path, sizeof path, "%s/%s", s->root, TMP_DIR);
    empty_folder(path);
    *out = s;
    return ASIDE_OK;
}

void store_close(store *s) { free(s); }

uint64_t store_free_bytes(const store *s)
{
    struct statvfs vfs;
    if (statvfs(s->root, &vfs) != 0)
        return 0;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

/* ---- sidecars ----------------------------------------------------------------------------- */

static void meta_format(buf *b, const store_meta *m)
{
    buf_printf(b, META_MAGIC "\nsize %" PRIu64 "\nxxh3 %016" PRIx64 "\ntype %s\n"
               "sor_mtime_ns %" PRId64 "\nfetched_ms %" PRId64 "\netag %s\n",
               m->size, m->xxh3, aside_value_type_name(m->type), m->sor_mtime_ns,
               m->fetched_ms, m->etag);
    if (m->expires_ms)
        buf_printf(b, "expires_ms %" PRId64 "\n", m->expires_ms);
    if (m->pinned)
        buf_puts(b, "pinned 1\n");
}

/* The optional lines after the etag: "expires_ms N", "pinned 1". */
static bool meta_parse_optional(const char *text, store_meta *m)
{
    while (*text) {
        int used = 0;
        int pinned = 0;
        if (sscanf(text, "expires_ms %" SCNd64 "\n%n", &m->expires_ms, &used) == 1 && used)
            text += used;
        else if (sscanf(text, "pinned %d\n%n", &pinned, &used) == 1 && used && pinned == 1) {
            m->pinned = true;
            text += used;
        } else
            return false;
    }
    return true;
}

static bool meta_parse(const char *text, store_meta *m)
{
    memset(m, 0, sizeof *m);
    char type[16];
    int etag_at = -1;
    int n = sscanf(text, META_MAGIC "\nsize %" SCNu64 "\nxxh3 %" SCNx64 "\ntype %15s\n"
                   "sor_mtime_ns %" SCNd64 "\nfetched_ms %" SCNd64 "\netag%n",
                   &m->size, &m->xxh3, type, &m->sor_mtime_ns, &m->fetched_ms, &etag_at);
    /* "etag" and one space, then the tag up to the newline: it may be empty, so the space is
     * matched here, not by sscanf (whose space would swallow the newline too) */
    if (n != 5 || etag_at < 0 || text[etag_at] != ' ')
        return false;
    const char *etag = text + etag_at + 1;
    const char *end = strchr(etag, '\n');
    if (!end || (size_t)(end - etag) >= sizeof m->etag || !meta_parse_optional(end + 1, m))
        return false;
    memcpy(m->etag, etag, (size_t)(end - etag));
    return aside_value_type_parse(type, &m->type) == ASIDE_OK;
}

enum { META_MAX_BYTES = 4096 };

static bool meta_read(const char *path, store_meta *m)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char text[META_MAX_BYTES];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return false;
    text[n] = '\0';
    return meta_parse(text, m);
}

static aside_status write_all(int fd, const char *data, size_t len, aside_error *err)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return error_set(err, ASIDE_ERR_IO, "cannot write a sidecar in the disk tier: %s",
                             strerror(errno));
        data += n;
        len -= (size_t)n;
    }
    return ASIDE_OK;
}

static aside_status meta_write(store *s, const char *key, const char *meta_path,
                               const store_meta *m, aside_error *err)
{
    store_tmp tmp;
    aside_status st = store_tmp_create(s, &tmp, err);
    if (st != ASIDE_OK)
        return st;
    buf text;
    buf_init(&text);
    meta_format(&text, m);
    if (text.failed)
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    else
        st = write_all(tmp.fd, text.data, text.len, err);
    buf_free(&text);
    if (st == ASIDE_OK && fsync(tmp.fd) != 0)
        st = error_set(err, ASIDE_ERR_IO, "fsync of the sidecar of %s failed: %s", key,
                       strerror(errno));
    if (st == ASIDE_OK && rename(tmp.path, meta_path) != 0)
        st = error_set(err, ASIDE_ERR_IO, "cannot store the sidecar of %s: %s", key,
                       strerror(errno));
    if (st == ASIDE_OK)
        tmp.path[0] = '\0'; /* consumed */
    store_tmp_discard(&tmp);
    return st;
}

/* ---- writing ------------------------------------------------------------------------------ */

aside_status store_tmp_create(store *s, store_tmp *tmp, aside_error *err)
{
    snprintf(tmp->path, sizeof tmp->path, "%s/%s/v.XXXXXX", s->root, TMP_DIR);
    tmp->fd = mkostemp(tmp->path, O_CLOEXEC);
    if (tmp->fd < 0) {
        tmp->path[0] = '\0';
        return error_set_errno(err, errno, ASIDE_ERR_IO, "cannot create a temporary file in "
                               "the disk tier: %s", strerror(errno));
    }
    return ASIDE_OK;
}

void store_tmp_discard(store_tmp *tmp)
{
    if (tmp->fd >= 0)
        close(tmp->fd);
    tmp->fd = -1;
    if (tmp->path[0])
        unlink(tmp->path);
    tmp->path[0] = '\0';
}

aside_status store_commit(store *s, store_tmp *tmp, const char *key, const store_meta *meta,
                          aside_error *err)
{
    char data_path[PATH_MAX], meta_path[PATH_MAX];
    aside_status st = key_path(data_path, s, "", key, err);
    if (st == ASIDE_OK)
        st = key_path(meta_path, s, META_DIR "/", key, err);
    if (st == ASIDE_OK && strlen(meta_path) + strlen(META_EXT) >= PATH_MAX)
        st = error_set(err, ASIDE_ERR_INVALID, "the path of %s is too long for the disk tier",
                       key);
    if (st != ASIDE_OK)
        return st;
    strcat(meta_path, META_EXT);
    if (fsync(tmp->fd) != 0)
        return error_set(err, ASIDE_ERR_IO, "fsync of %s failed: %s", key, strerror(errno));
    size_t skip = strlen(s->root) + 1;
    if ((st = make_parents(data_path, skip, err)) != ASIDE_OK ||
        (st = make_parents(meta_path, skip, err)) != ASIDE_OK)
        return st;
    unlink(meta_path);
    if (rename(tmp->path, data_path) != 0) {
        int saved = errno;
        return error_set(err, saved == EISDIR || saved == ENOTDIR ? ASIDE_ERR_CONFLICT
                                                                  : ASIDE_ERR_IO,
                         "cannot store %s: %s", key, strerror(saved));
    }
    tmp->path[0] = '\0';
    close(tmp->fd);
    tmp->fd = -1;
    st = meta_write(s, key, meta_path, meta, err);
    if (st != ASIDE_OK) {
        unlink(data_path);
        return st;
    }
    sync_parent(data_path);
    sync_parent(meta_path);
    return ASIDE_OK;
}

aside_status store_rewrite_meta(store *s, const char *key, const store_meta *meta,
                                aside_error *err)
{
    char meta_path[PATH_MAX];
    aside_status st = key_path(meta_path, s, META_DIR "/", key, err);
    if (st == ASIDE_OK && strlen(meta_path) + strlen(META_EXT) >= PATH_MAX)
        st = error_set(err, ASIDE_ERR_INVALID, "the path of %s is too long for the disk tier",
                       key);
    if (st != ASIDE_OK)
        return st;
    strcat(meta_path, META_EXT);
    if ((st = meta_write(s, key, meta_path, meta, err)) == ASIDE_OK)
        sync_parent(meta_path);
    return st;
}

aside_status store_value_path(const store *s, const char *key, char *path, aside_error *err)
{
    return key_path(path, s, "", key, err);
}

aside_status store_open_value(store *s, const char *key, int *fd, aside_error *err)
{
    char path[PATH_MAX];
    aside_status st = key_path(path, s, "", key, err);
    if (st != ASIDE_OK)
        return st;
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0)
        return error_set_errno(err, errno, errno == ENOENT ? ASIDE_ERR_NOT_FOUND : ASIDE_ERR_IO,
                               "cannot open %s in the disk tier: %s", key, strerror(errno));
    return ASIDE_OK;
}

void store_remove(store *s, const char *key)
{
    char path[PATH_MAX];
    if (key_path(path, s, META_DIR "/", key, NULL) == ASIDE_OK &&
        strlen(path) + strlen(META_EXT) < PATH_MAX) {
        strcat(path, META_EXT);
        unlink(path);
    }
    if (key_path(path, s, "", key, NULL) == ASIDE_OK)
        unlink(path);
}

/* ---- scanning ----------------------------------------------------------------------------- */

typedef struct scan {
    store *s;
    void (*visit)(void *ctx, const char *key, const store_meta *meta);
    void  *ctx;
    size_t removed;
} scan;

/* Check one sidecar (rel is its path below the meta folder) and its value. */
static void scan_meta(scan *sc, const char *rel)
{
    size_t len = strlen(rel);
    char key[PATH_MAX], data_path[PATH_MAX], meta_path[PATH_MAX];
    snprintf(meta_path, sizeof meta_path, "%s/%s/%s", sc->s->root, META_DIR, rel);
    store_meta m;
    struct stat sb;
    bool valid = len > strlen(META_EXT) && strcmp(rel + len - strlen(META_EXT), META_EXT) == 0;
    if (valid) {
        snprintf(key, sizeof key, "%.*s", (int)(len - strlen(META_EXT)), rel);
        snprintf(data_path, sizeof data_path, "%s/%s", sc->s->root, key);
        valid = aside_key_check(key, strlen(key), NULL) == ASIDE_OK && meta_read(meta_path, &m)
                && lstat(data_path, &sb) == 0 && S_ISREG(sb.st_mode) &&
                (uint64_t)sb.st_size == m.size;
    }
    if (!valid) {
        log_line("warn", "store: removing %s/%s (no matching value)", META_DIR, rel);
        unlink(meta_path);
        if (len > strlen(META_EXT))
            unlink(data_path);
        sc->removed++;
        return;
    }
    sc->visit(sc->ctx, key, &m);
}

/* Remove a value file (rel below the root) that has no sidecar. */
static void scan_value(scan *sc, const char *rel)
{
    char meta_path[PATH_MAX], data_path[PATH_MAX];
    snprintf(meta_path, sizeof meta_path, "%s/%s/%s%s", sc->s->root, META_DIR, rel, META_EXT);
    if (access(meta_path, F_OK) == 0)
        return;
    snprintf(data_path, sizeof data_path, "%s/%s", sc->s->root, rel);
    log_line("warn", "store: removing %s (no sidecar: an interrupted write)", rel);
    unlink(data_path);
    sc->removed++;
}

/* Walk the folder rel (below base) depth first, calling fn on each regular file. */
static void walk(scan *sc, const char *base, const char *rel, bool skip_reserved,
                 void (*fn)(scan *sc, const char *rel))
{
    char dir_path[PATH_MAX];
    snprintf(dir_path, sizeof dir_path, "%s%s%s", base, rel[0] ? "/" : "", rel);
    DIR *d = opendir(dir_path);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (skip_reserved && !rel[0] && strcmp(e->d_name, ".aside") == 0)
            continue;
        char child[PATH_MAX];
        if (snprintf(child, sizeof child, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >=
            (int)sizeof child)
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            walk(sc, base, child, skip_reserved, fn);
        else if (S_ISREG(sb.st_mode))
            fn(sc, child);
    }
    closedir(d);
}

aside_status store_scan(store *s, void (*visit)(void *ctx, const char *key,
                                                const store_meta *meta),
                        void *ctx, aside_error *err)
{
    (void)err;
    scan sc = {s, visit, ctx, 0};
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s/%s", s->root, TMP_DIR);
    empty_folder(base);
    snprintf(base, sizeof base, "%s/%s", s->root, META_DIR);
    walk(&sc, base, "", false, scan_meta);
    walk(&sc, s->root, "", true, scan_value);
    if (sc.removed)
        log_line("info", "store: scan removed %zu invalid files", sc.removed);
    return ASIDE_OK;
}
