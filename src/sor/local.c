/* local.c -- a directory as system of record (the original's "sd" storage).
 *
 * A key is a path under the root. The file is opened, then its real path is checked to be inside
 * the root's real path, so a symlink that leads out of the root is refused instead of followed
 * (a symlink inside the root is fine: operators use them to assemble data sets). The copy into
 * the disk tier uses copy_file_range, which lets the kernel move the bytes (or share extents on
 * file systems that can), with read/write as the fallback. The version tag is the file's mtime
 * and size, as web servers derive ETags for static files; a conditional fetch compares it.
 *
 * Listing walks the tree (folders that cannot hold the prefix are skipped; symlinks are not
 * followed). Writing goes to a temporary file beside the target, fsync'd and renamed, so
 * readers of the SOR never see half a file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sor.h"
#include "util/util.h"

typedef struct sor_local {
    sor    base;
    char   root[PATH_MAX]; /* real path, no trailing slash */
    mode_t file_mode;      /* of files a write creates: 0666 less the process's umask */
} sor_local;

enum { COPY_CHUNK_BYTES = 1 << 20 };

/* The infix of a file being written; listings skip such files (one a crash left behind too). */
#define WRITE_TMP ".aside-write."
#define WRITE_TMP_SUFFIX WRITE_TMP "XXXXXX"

/* aside.h's component limit leaves room for the temporary file's suffix. */
_Static_assert(ASIDE_KEY_COMPONENT_MAX_BYTES + sizeof WRITE_TMP_SUFFIX - 1 <= NAME_MAX,
               "a key's temporary name in the SOR must fit NAME_MAX");

static aside_status copy_fallback(int in, int out, uint64_t *copied, aside_error *err)
{
    char *chunk = malloc(COPY_CHUNK_BYTES);
    if (!chunk)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    aside_status st = ASIDE_OK;
    for (;;) {
        ssize_t n = read(in, chunk, COPY_CHUNK_BYTES);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            st = error_set(err, ASIDE_ERR_SOR, "read failed: %s", strerror(errno));
            break;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, chunk + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                free(chunk);
                return error_set(err, ASIDE_ERR_IO, "write to disk tier failed: %s",
                                 strerror(errno));
            }
            done += w;
        }
        *copied += (uint64_t)n;
    }
    free(chunk);
    return st;
}

static aside_status copy_file(int in, int out, uint64_t *copied, aside_error *err)
{
    *copied = 0;
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, COPY_CHUNK_BYTES, 0);
        if (n == 0)
            return ASIDE_OK;
        if (n > 0) {
            *copied += (uint64_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
            errno == EBADF)
            return copy_fallback(in, out, copied, err);
        /* a full disk is the disk tier's (the SOR's side only reads) */
        bool full = errno == ENOSPC || errno == EDQUOT;
        return error_set(err, full ? ASIDE_ERR_IO : ASIDE_ERR_SOR,
                         full ? "cannot write to the disk tier: %s" : "copy failed: %s",
                         strerror(errno));
    }
}

static aside_status open_inside_root(const sor_local *s, const char *key, int *fd_out,
                                     aside_error *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", s->root, key) >= (int)sizeof path)
        return error_set(err, ASIDE_ERR_INVALID, "path too long");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ENAMETOOLONG)
            return error_set(err, ASIDE_ERR_NOT_FOUND, "not found in the system of record: %s",
                             key);
        return error_set_errno(err, errno, ASIDE_ERR_SOR, "cannot open %s in the system of "
                               "record: %s", key, strerror(errno));
    }
    char real[PATH_MAX];
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    size_t root_len = strlen(s->root);
    if (n < 0 || (size_t)n <= root_len || memcmp(real, s->root, root_len) != 0 ||
        real[root_len] != '/') {
        close(fd);
        return error_set(err, ASIDE_ERR_INVALID, "path resolves outside the system of record "
                                                 "(through a symlink): %s", key);
    }
    *fd_out = fd;
    return ASIDE_OK;
}

static void describe(const struct stat *sb, aside_object_info *info)
{
    info->size = (uint64_t)sb->st_size;
    info->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
    snprintf(info->etag, sizeof info->etag, "\"%llx-%llx\"", (unsigned long long)info->mtime_ns,
             (unsigned long long)info->size);
}

static aside_status local_fetch(sor *base, const char *key, int out, const char *if_none_match,
                                aside_object_info *info, aside_error *err)
{
    sor_local *s = (sor_local *)base;
    int in = -1;
    aside_status st = open_inside_root(s, key, &in, err);
    if (st != ASIDE_OK)
        return st;
    struct stat sb;
    if (fstat(in, &sb) != 0) {
        st = error_set(err, ASIDE_ERR_SOR, "cannot stat %s: %s", key, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = error_set(err, ASIDE_ERR_NOT_FOUND, "not a file in the system of record: %s", key);
        goto done;
    }
    describe(&sb, info);
    if (if_none_match && strcmp(if_none_match, info->etag) == 0) {
        info->not_modified = true;
        goto done;
    }
    uint64_t copied = 0;
    st = copy_file(in, out, &copied, err);
    if (st != ASIDE_OK)
        goto done;
    if (copied != (uint64_t)sb.st_size) {
        st = error_set(err, ASIDE_ERR_SOR, "%s changed while it was read (%llu of %llu bytes)",
                       key, (unsigned long long)copied, (unsigned long long)sb.st_size);
        goto done;
    }
done:
    close(in);
    return st;
}

/* ---- listing ------------------------------------------------------------------------------ */

/* Add the regular files below dir (rel: its path below the root) whose keys start with prefix. */
static aside_status walk(const char *root, const char *rel, const char *prefix, sor_listing *out,
                         aside_error *err)
{
    char dir_path[PATH_MAX];
    snprintf(dir_path, sizeof dir_path, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(dir_path);
    if (!d)
        return ASIDE_OK;
    aside_status st = ASIDE_OK;
    size_t prefix_len = strlen(prefix);
    for (struct dirent *e; st == ASIDE_OK && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char child[PATH_MAX];
        int n = snprintf(child, sizeof child, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        struct stat sb;
        if (n >= (int)sizeof child || fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW))
            continue;
        /* descend only into folders that can hold keys with the prefix */
        size_t common = (size_t)n < prefix_len ? (size_t)n : prefix_len;
        if (strncmp(child, prefix, common) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            st = walk(root, child, prefix, out, err);
        else if (S_ISREG(sb.st_mode) && (size_t)n >= prefix_len &&
                 !strstr(e->d_name, WRITE_TMP) &&
                 aside_key_check(child, (size_t)n, NULL) == ASIDE_OK &&
                 !sor_listing_add(out, child, (size_t)n, (uint64_t)sb.st_size,
                                  (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec))
            st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    closedir(d);
    return st;
}

static aside_status local_list(sor *base, const char *prefix, sor_listing *out, aside_error *err)
{
    return walk(((sor_local *)base)->root, "", prefix, out, err);
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Create the folders of key below the root, refusing to go through a symlink out of it. */
static aside_status make_folders(const sor_local *s, const char *key, aside_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s->root, key);
    for (char *p = strchr(path + strlen(s->root) + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            int saved = errno;
            return error_set(err, saved == ENOTDIR ? ASIDE_ERR_CONFLICT : ASIDE_ERR_SOR,
                             "cannot create a folder for %s: %s", key, strerror(saved));
        }
        char real[PATH_MAX];
        size_t root_len = strlen(s->root);
        if (!realpath(path, real) || strncmp(real, s->root, root_len) != 0 ||
            real[root_len] != '/')
            return error_set(err, ASIDE_ERR_INVALID, "path resolves outside the system of "
                                                     "record (through a symlink): %s", key);
        *p = '/';
    }
    return ASIDE_OK;
}

/* Write the file next to its final name, fsync, rename: readers see the old or the new. */
static aside_status local_put(sor *base, const char *key, int in, uint64_t size,
                              aside_object_info *info, aside_error *err)
{
    sor_local *s = (sor_local *)base;
    aside_status st = make_folders(s, key, err);
    if (st != ASIDE_OK)
        return st;
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s->root, key);
    snprintf(tmp, sizeof tmp, "%s" WRITE_TMP_SUFFIX, path);
    int out = mkostemp(tmp, O_CLOEXEC);
    if (out < 0) /* ENOTDIR: a file stands where one of key's folders would be */
        return error_set_errno(err, errno, errno == ENOTDIR ? ASIDE_ERR_CONFLICT : ASIDE_ERR_SOR,
                               "cannot write %s: %s", key, strerror(errno));
    uint64_t copied = 0;
    if (lseek(in, 0, SEEK_SET) != 0)
        st = error_set(err, ASIDE_ERR_IO, "cannot rewind the value of %s", key);
    if (st == ASIDE_OK)
        st = copy_file(in, out, &copied, err);
    if (st == ASIDE_OK && copied != size)
        st = error_set(err, ASIDE_ERR_IO, "short copy writing %s", key);
    struct stat sb, old;
    /* the mode a new file would have here, or the one of the file it replaces (mkostemp made
     * the temporary file private) */
    if (st == ASIDE_OK && fchmod(out, stat(path, &old) == 0 ? old.st_mode & 07777
                                                             : s->file_mode) != 0)
        st = error_set(err, ASIDE_ERR_SOR, "cannot write %s: %s", key, strerror(errno));
    if (st == ASIDE_OK && (fsync(out) != 0 || fstat(out, &sb) != 0 || rename(tmp, path) != 0))
        st = error_set(err, errno == EISDIR ? ASIDE_ERR_CONFLICT : ASIDE_ERR_SOR,
                       "cannot write %s: %s", key, strerror(errno));
    close(out);
    if (st != ASIDE_OK) {
        unlink(tmp);
        return st;
    }
    describe(&sb, info);
    return ASIDE_OK;
}

static void local_destroy(sor *s) { free(s); }

static const sor_ops local_ops = {"sd", local_fetch, local_list, local_put, local_destroy};

sor *sor_local_create(const char *root, aside_error *err)
{
    sor_local *s = calloc(1, sizeof *s);
    if (!s) {
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (!realpath(root, s->root)) {
        error_set(err, ASIDE_ERR_INVALID, "system of record directory %s: %s", root,
                  strerror(errno));
        free(s);
        return NULL;
    }
    if (strlen(s->root) + 1 + ASIDE_KEY_MAX_BYTES + sizeof WRITE_TMP_SUFFIX > PATH_MAX) {
        error_set(err, ASIDE_ERR_INVALID, "system of record directory %s: its path is too "
                  "long for keys of %d bytes", root, ASIDE_KEY_MAX_BYTES);
        free(s);
        return NULL;
    }
    struct stat sb;
    if (stat(s->root, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        error_set(err, ASIDE_ERR_INVALID, "system of record %s is not a directory", root);
        free(s);
        return NULL;
    }
    mode_t mask = umask(0); /* read it: at open, before any thread makes files */
    umask(mask);
    s->file_mode = 0666 & ~mask;
    s->base.ops = &local_ops;
    return &s->base;
}
