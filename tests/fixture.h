/* fixture.h -- temporary directories and files for tests that touch the disk. */
#ifndef ASIDE_FIXTURE_H
#define ASIDE_FIXTURE_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fixture {
    char root[PATH_MAX];
    char sor[PATH_MAX];
    char cache[PATH_MAX];
} fixture;

static void fixture_init(fixture *f)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(f->root, sizeof f->root, "%s/aside-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->root)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(f->sor, sizeof f->sor, "%s/sor", f->root);
    snprintf(f->cache, sizeof f->cache, "%s/cache", f->root);
    mkdir(f->sor, 0755);
    mkdir(f->cache, 0755);
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fixture_done(fixture *f) { nftw(f->root, remove_one, 16, FTW_DEPTH | FTW_PHYS); }

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, len, fp) != len) {
        perror(path);
        exit(1);
    }
    fclose(fp);
}

/* The size of dir/name, or -1 if it does not exist. */
static long file_size(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

#endif
