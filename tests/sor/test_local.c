/* test_local.c -- a directory as system of record: fetch, conditional fetch, list, put, and
 * symlinks that lead out of the root refused on every path in. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "sor/sor.h"

static fixture fx;

/* A fresh, empty temporary file to fetch into or put from. */
static int scratch_fd(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/scratch-XXXXXX", fx.cache);
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* The whole content of fd, NUL-terminated, into out (size bytes at most). */
static size_t read_all(int fd, char *out, size_t size)
{
    ssize_t n = pread(fd, out, size - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static sor *open_sor(void)
{
    aside_error err;
    sor *s = sor_local_create(fx.sor, &err);
    CHECK(s != NULL);
    return s;
}

static void test_fetch_copies_the_file_and_describes_it(void)
{
    sor *s = open_sor();
    write_file(fx.sor, "hello.txt", "hello, world", 12);
    int fd = scratch_fd();
    aside_object_info info = {0};
    aside_error err;
    char got[64];
    CHECK(sor_fetch(s, "hello.txt", fd, NULL, &info, &err) == ASIDE_OK);
    CHECK(read_all(fd, got, sizeof got) == 12 && strcmp(got, "hello, world") == 0);
    CHECK(info.size == 12 && info.mtime_ns > 0 && info.etag[0] == '"' && !info.not_modified);
    close(fd);
    sor_destroy(s);
}

static void test_an_unchanged_file_is_not_modified_and_not_copied(void)
{
    sor *s = open_sor();
    write_file(fx.sor, "same.txt", "abc", 3);
    int fd = scratch_fd();
    aside_object_info first = {0}, again = {0};
    aside_error err;
    char got[16];
    CHECK(sor_fetch(s, "same.txt", fd, NULL, &first, &err) == ASIDE_OK);
    int fd2 = scratch_fd();
    CHECK(sor_fetch(s, "same.txt", fd2, first.etag, &again, &err) == ASIDE_OK);
    CHECK(again.not_modified && strcmp(again.etag, first.etag) == 0);
    CHECK(read_all(fd2, got, sizeof got) == 0); /* nothing copied */
    /* another tag: the file is copied */
    aside_object_info other = {0};
    CHECK(sor_fetch(s, "same.txt", fd2, "\"other\"", &other, &err) == ASIDE_OK);
    CHECK(!other.not_modified && read_all(fd2, got, sizeof got) == 3);
    close(fd);
    close(fd2);
    sor_destroy(s);
}

static void test_a_missing_key_or_a_folder_is_not_found(void)
{
    sor *s = open_sor();
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/folder", fx.sor);
    mkdir(dir, 0755);
    int fd = scratch_fd();
    aside_object_info info = {0};
    aside_error err;
    CHECK(sor_fetch(s, "no/such/key", fd, NULL, &info, &err) == ASIDE_ERR_NOT_FOUND);
    CHECK(sor_fetch(s, "folder", fd, NULL, &info, &err) == ASIDE_ERR_NOT_FOUND);
    close(fd);
    sor_destroy(s);
}

static void test_a_symlink_out_of_the_root_is_refused(void)
{
    sor *s = open_sor();
    write_file(fx.root, "secret.txt", "secret", 6);
    char target[PATH_MAX], link_path[PATH_MAX], dir_link[PATH_MAX];
    snprintf(target, sizeof target, "%s/secret.txt", fx.root);
    snprintf(link_path, sizeof link_path, "%s/escape.txt", fx.sor);
    snprintf(dir_link, sizeof dir_link, "%s/outside", fx.sor);
    CHECK(symlink(target, link_path) == 0);
    CHECK(symlink(fx.root, dir_link) == 0);
    int fd = scratch_fd();
    aside_object_info info = {0};
    aside_error err;
    char got[16];
    CHECK(sor_fetch(s, "escape.txt", fd, NULL, &info, &err) == ASIDE_ERR_INVALID);
    CHECK(sor_fetch(s, "outside/secret.txt", fd, NULL, &info, &err) == ASIDE_ERR_INVALID);
    CHECK(read_all(fd, got, sizeof got) == 0);
    /* a put through the folder link is refused and writes nothing outside */
    write_file(fx.cache, "value", "xyz", 3);
    char value_path[PATH_MAX];
    snprintf(value_path, sizeof value_path, "%s/value", fx.cache);
    int in = open(value_path, O_RDONLY);
    CHECK(sor_put(s, "outside/planted.txt", in, 3, &info, &err) == ASIDE_ERR_INVALID);
    CHECK(file_size(fx.root, "planted.txt") == -1);
    /* a symlink that stays inside the root is followed */
    char inner[PATH_MAX];
    snprintf(inner, sizeof inner, "%s/inner.txt", fx.sor);
    write_file(fx.sor, "real.txt", "real", 4);
    CHECK(symlink("real.txt", inner) == 0);
    CHECK(sor_fetch(s, "inner.txt", fd, NULL, &info, &err) == ASIDE_OK);
    CHECK(read_all(fd, got, sizeof got) == 4 && strcmp(got, "real") == 0);
    close(in);
    close(fd);
    sor_destroy(s);
}

static bool listed(const sor_listing *l, const char *key, uint64_t size)
{
    for (size_t i = 0; i < l->count; i++) {
        if (strcmp(l->items[i].key, key) == 0)
            return l->items[i].size == size;
    }
    return false;
}

static void test_list_names_the_files_under_a_prefix(void)
{
    sor *s = open_sor();
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/list", fx.sor);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/list/deep", fx.sor);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/listless", fx.sor);
    mkdir(dir, 0755);
    write_file(fx.sor, "list/a.csv", "1", 1);
    write_file(fx.sor, "list/deep/b.csv", "22", 2);
    write_file(fx.sor, "list/c.csv.aside-write.XYZ", "half", 4); /* a write in progress */
    write_file(fx.sor, "listless/d.csv", "333", 3);
    sor_listing l = {0};
    aside_error err;
    CHECK(sor_list(s, "list/", &l, &err) == ASIDE_OK);
    CHECK(l.count == 2 && listed(&l, "list/a.csv", 1) && listed(&l, "list/deep/b.csv", 2));
    aside_object_entries_free(l.items, l.count);
    sor_listing all = {0};
    CHECK(sor_list(s, "list", &all, &err) == ASIDE_OK);
    CHECK(all.count == 3 && listed(&all, "listless/d.csv", 3));
    aside_object_entries_free(all.items, all.count);
    sor_destroy(s);
}

static void test_put_writes_whole_files_and_their_folders(void)
{
    sor *s = open_sor();
    int in = scratch_fd();
    CHECK(pwrite(in, "new content", 11, 0) == 11);
    aside_object_info info = {0};
    aside_error err;
    CHECK(sor_put(s, "put/into/new.txt", in, 11, &info, &err) == ASIDE_OK);
    CHECK(file_size(fx.sor, "put/into/new.txt") == 11 && info.size == 11 && info.etag[0]);
    /* the described version is the one a fetch sees: not modified */
    int fd = scratch_fd();
    aside_object_info again = {0};
    CHECK(sor_fetch(s, "put/into/new.txt", fd, info.etag, &again, &err) == ASIDE_OK);
    CHECK(again.not_modified);
    /* a put over a folder is a conflict, and leaves no temporary file */
    CHECK(sor_put(s, "put/into", in, 11, &info, &err) == ASIDE_ERR_CONFLICT);
    sor_listing l = {0};
    CHECK(sor_list(s, "put/", &l, &err) == ASIDE_OK && l.count == 1);
    aside_object_entries_free(l.items, l.count);
    close(fd);
    close(in);
    sor_destroy(s);
}

static void test_a_root_that_is_not_a_directory_is_refused(void)
{
    aside_error err;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/hello.txt", fx.sor);
    CHECK(sor_local_create(path, &err) == NULL && err.status == ASIDE_ERR_INVALID);
    snprintf(path, sizeof path, "%s/missing", fx.root);
    CHECK(sor_local_create(path, &err) == NULL && err.status == ASIDE_ERR_INVALID);
}

int main(void)
{
    fixture_init(&fx);
    RUN(test_fetch_copies_the_file_and_describes_it);
    RUN(test_an_unchanged_file_is_not_modified_and_not_copied);
    RUN(test_a_missing_key_or_a_folder_is_not_found);
    RUN(test_a_symlink_out_of_the_root_is_refused);
    RUN(test_list_names_the_files_under_a_prefix);
    RUN(test_put_writes_whole_files_and_their_folders);
    RUN(test_a_root_that_is_not_a_directory_is_refused);
    fixture_done(&fx);
    return CHECK_DONE();
}
