/* spill.c -- the folders DuckDB spills to, under the disk tier.
 *
 * A sort, join or aggregate larger than DuckDB's memory limit writes blocks to its temporary
 * directory. Left to itself DuckDB uses ./.tmp, under whatever folder the process started in;
 * the engine gives each of its databases a folder of its own under the one it is configured
 * with (the cache puts it in LOCAL_DATA_DIR/.aside), emptied at open (a process that was
 * killed leaves its blocks behind), and measures what they hold for telemetry. DuckDB removes
 * a query's blocks when the query ends, interrupted or not. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_internal.h"

static bool make_folder(const char *path)
{
    return mkdir(path, S_IRWXU) == 0 || errno == EEXIST;
}

/* Remove the files in path (DuckDB makes no folders in it). */
static void empty_folder(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *f;
    while (d && (f = readdir(d))) {
        char file[PATH_MAX];
        if (strcmp(f->d_name, ".") && strcmp(f->d_name, "..") &&
            snprintf(file, sizeof file, "%s/%s", path, f->d_name) < (int)sizeof file)
            unlink(file);
    }
    if (d)
        closedir(d);
}

aside_status spill_prepare(const char *root, const char *name, char *path, size_t size,
                           aside_error *err)
{
    if (snprintf(path, size, "%s/%s", root, name) >= (int)size)
        return error_set(err, ASIDE_ERR_INVALID, "the SQL spill folder's path is too long");
    if (!make_folder(root) || !make_folder(path))
        return error_set(err, ASIDE_ERR_IO, "cannot create the SQL spill folder: %s",
                         strerror(errno));
    empty_folder(path);
    return ASIDE_OK;
}

/* Bytes the files in path take on disk (their allocated blocks: DuckDB's files have holes). */
static uint64_t folder_bytes(const char *path)
{
    uint64_t total = 0;
    DIR *d = opendir(path);
    struct dirent *f;
    while (d && (f = readdir(d))) {
        char file[PATH_MAX];
        struct stat st;
        if (strcmp(f->d_name, ".") && strcmp(f->d_name, "..") &&
            snprintf(file, sizeof file, "%s/%s", path, f->d_name) < (int)sizeof file &&
            stat(file, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_blocks * 512;
    }
    if (d)
        closedir(d);
    return total;
}

uint64_t spill_bytes(const char *const *paths, size_t count)
{
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++)
        if (paths[i][0])
            total += folder_bytes(paths[i]);
    return total;
}
