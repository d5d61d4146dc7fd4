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

/* ---- scanning -----------------------------------------------------------------------------
 *
 * The scan is what a start costs per key, so it makes few system calls, each on a short path:
 * it walks folders by descriptor (openat, fstatat and unlinkat relative to a folder, never a
 * path from the root), takes each entry's type from readdir, and holds each folder of one tree
 * open beside its twin in the other (meta/<rel> beside <rel>). A key costs one read of its
 * sidecar (open, read, close) and one fstatat of its value. Values without a sidecar (a commit
 * a crash cut) are found by counting: the value tree's regular files are counted first (readdir
 * only); when every one of them proved to have a sidecar, no second look is needed, else a
 * second walk asks, file by file, whether its sidecar exists. */

typedef struct scan {
    store *s;
    void (*visit)(void *ctx, const char *key, const store_meta *meta);
    void  *ctx;
    size_t removed;
    size_t values;   /* regular files of the value tree, counted before the sidecars are read */
    size_t claimed;  /* of those, the ones a sidecar named: valid, or removed with it */
} scan;

/* A folder being walked: its path below the tree's base ("" for the base), its descriptor,
 * and its twin in the other tree (-1 when the twin does not exist). */
typedef struct folder {
    const char *rel;
    int         fd, twin_fd;
} folder;

typedef void (*scan_fn)(scan *sc, const folder *f, const char *name);

static bool meta_read_at(int dir_fd, const char *name, store_meta *m)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
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

/* Remove a sidecar that does not describe its value, and the value (a regular file removed
 * is one the count of values claimed). */
static void remove_unmatched(scan *sc, const folder *f, const char *name, const char *stem)
{
    log_line("warn", "store: removing %s/%s%s%s (no matching value)", META_DIR, f->rel,
             f->rel[0] ? "/" : "", name);
    unlinkat(f->fd, name, 0);
    struct stat sb;
    bool regular = stem[0] && f->twin_fd >= 0 &&
                   fstatat(f->twin_fd, stem, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
                   S_ISREG(sb.st_mode);
    if (stem[0] && f->twin_fd >= 0 && unlinkat(f->twin_fd, stem, 0) == 0 && regular)
        sc->claimed++;
    sc->removed++;
}

/* Check one sidecar (name in the meta folder f, whose twin holds the values) and its value. */
static void scan_meta(scan *sc, const folder *f, const char *name)
{
    size_t len = strlen(name), ext = strlen(META_EXT);
    char stem[NAME_MAX + 1] = "", key[PATH_MAX];
    bool valid = len > ext && strcmp(name + len - ext, META_EXT) == 0;
    if (valid) {
        snprintf(stem, sizeof stem, "%.*s", (int)(len - ext), name);
        valid = snprintf(key, sizeof key, "%s%s%s", f->rel, f->rel[0] ? "/" : "", stem) <
                (int)sizeof key;
    }
    store_meta m;
    struct stat sb;
    valid = valid && f->twin_fd >= 0 && aside_key_check(key, strlen(key), NULL) == ASIDE_OK &&
            meta_read_at(f->fd, name, &m) &&
            fstatat(f->twin_fd, stem, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
            (uint64_t)sb.st_size == m.size;
    if (!valid) {
        remove_unmatched(sc, f, name, stem);
        return;
    }
    sc->claimed++;
    sc->visit(sc->ctx, key, &m);
}

static void count_value(scan *sc, const folder *f, const char *name)
{
    (void)f;
    (void)name;
    sc->values++;
}

/* Remove a value file (name in the value folder f, whose twin holds the sidecars) that has no
 * sidecar. */
static void scan_value(scan *sc, const folder *f, const char *name)
{
    char meta_name[NAME_MAX + 1];
    if (snprintf(meta_name, sizeof meta_name, "%s%s", name, META_EXT) >= (int)sizeof meta_name)
        return; /* no key has such a name: not ours to remove */
    if (f->twin_fd >= 0 && faccessat(f->twin_fd, meta_name, F_OK, 0) == 0)
        return;
    log_line("warn", "store: removing %s%s%s (no sidecar: an interrupted write)", f->rel,
             f->rel[0] ? "/" : "", name);
    unlinkat(f->fd, name, 0);
    sc->removed++;
}

/* Open the folder name below parent_fd; -1 with *missing set when it does not exist. */
static int open_folder(int parent_fd, const char *name, bool *missing)
{
    int fd = parent_fd >= 0 ? openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    *missing = fd < 0 && (parent_fd < 0 || errno == ENOENT || errno == ENOTDIR);
    return fd;
}

/* The type of entry e of the folder dir_fd, from readdir, or from fstatat when the file
 * system does not say. */
static unsigned char entry_type(int dir_fd, const struct dirent *e)
{
    if (e->d_type != DT_UNKNOWN)
        return e->d_type;
    struct stat sb;
    if (fstatat(dir_fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return DT_UNKNOWN;
    return S_ISDIR(sb.st_mode) ? DT_DIR : S_ISREG(sb.st_mode) ? DT_REG : DT_UNKNOWN;
}

static void walk_folder(scan *sc, const folder *f, bool skip_reserved, scan_fn fn);

/* Walk the subfolder name of f. A subfolder or twin that cannot be opened for another reason
 * than not existing (no descriptor left) is left alone, never taken for missing. */
static void walk_child(scan *sc, const folder *f, const char *name, bool skip_reserved,
                       scan_fn fn)
{
    char rel[PATH_MAX];
    if (snprintf(rel, sizeof rel, "%s%s%s", f->rel, f->rel[0] ? "/" : "", name) >=
        (int)sizeof rel)
        return;
    bool missing = false, twin_missing = false;
    folder child = {rel, open_folder(f->fd, name, &missing), -1};
    if (child.fd >= 0)
        child.twin_fd = open_folder(f->twin_fd, name, &twin_missing);
    if (child.fd >= 0 && (child.twin_fd >= 0 || twin_missing))
        walk_folder(sc, &child, skip_reserved, fn);
    else if (!missing)
        log_line("warn", "store: cannot scan %s: %s", rel, strerror(errno));
    if (child.twin_fd >= 0)
        close(child.twin_fd);
    if (child.fd >= 0)
        close(child.fd);
}

/* Walk f depth first, calling fn on each regular file; f's descriptor stays f's. */
static void walk_folder(scan *sc, const folder *f, bool skip_reserved, scan_fn fn)
{
    int fd = dup(f->fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        log_line("warn", "store: cannot scan %s: %s", f->rel[0] ? f->rel : ".",
                 strerror(errno));
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (skip_reserved && !f->rel[0] && strcmp(e->d_name, ".aside") == 0)
            continue;
        unsigned char type = entry_type(f->fd, e);
        if (type == DT_DIR)
            walk_child(sc, f, e->d_name, skip_reserved, fn);
        else if (type == DT_REG)
            fn(sc, f, e->d_name);
    }
    closedir(d);
}

/* Walk the tree at path, whose twin tree is at twin_path. */
static void walk_tree(scan *sc, const char *path, const char *twin_path, bool skip_reserved,
                      scan_fn fn)
{
    folder f = {"", open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
                open(twin_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (f.fd >= 0 && f.twin_fd >= 0)
        walk_folder(sc, &f, skip_reserved, fn);
    else
        log_line("warn", "store: cannot scan %s: %s", path, strerror(errno));
    if (f.twin_fd >= 0)
        close(f.twin_fd);
    if (f.fd >= 0)
        close(f.fd);
}

aside_status store_scan(store *s, void (*visit)(void *ctx, const char *key,
                                                const store_meta *meta),
                        void *ctx, aside_error *err)
{
    (void)err;
    scan sc = {s, visit, ctx, 0, 0, 0};
    char tmp[PATH_MAX], meta[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/%s", s->root, TMP_DIR);
    empty_folder(tmp);
    snprintf(meta, sizeof meta, "%s/%s", s->root, META_DIR);
    walk_tree(&sc, s->root, meta, true, count_value);
    walk_tree(&sc, meta, s->root, false, scan_meta);
    if (sc.values > sc.claimed) /* some values have no sidecar: find them */
        walk_tree(&sc, s->root, meta, true, scan_value);
    if (sc.removed)
        log_line("info", "store: scan removed %zu invalid files", sc.removed);
    return ASIDE_OK;
}
