/* test_store.c -- the disk tier across restarts: what survives, and what is never served.
 *
 * Each test fills the tier through the cache, closes it, damages the files the way a crash or a
 * faulty disk would, opens it again and checks that every read returns the system of record's
 * bytes: from disk when the file is intact, fetched again when it is not. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "aside.h"
#include "check.h"
#include "fixture.h"

static const char DOC[] = "{\"rows\": [1, 2, 3], \"name\": \"restart\"}";

static aside_cache *open_cache(fixture *f)
{
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.data_dir = f->cache;
    cfg.sor_dir = f->sor;
    cfg.memory_limit_bytes = 1 << 20;
    cfg.disk_limit_bytes = 1 << 20;
    aside_cache *c = NULL;
    if (aside_cache_open(&cfg, &c, NULL) != ASIDE_OK)
        exit(1);
    return c;
}

/* Read key, check it equals DOC and report where it came from. */
static aside_source read_doc(aside_cache *c, const char *key, bool *right)
{
    aside_value *v = NULL;
    aside_source src = ASIDE_SOURCE_MEMORY;
    *right = aside_get(c, key, &v, &src, NULL) == ASIDE_OK &&
             aside_value_size(v) == strlen(DOC) &&
             memcmp(aside_value_data(v), DOC, strlen(DOC)) == 0;
    aside_value_release(v);
    return src;
}

/* A fixture with DOC in the system of record and in the disk tier, cache closed. */
static void prepare(fixture *f, const char *key)
{
    fixture_init(f);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sub", f->sor);
    mkdir(path, 0755);
    write_file(f->sor, key, DOC, strlen(DOC));
    aside_cache *c = open_cache(f);
    bool right = false;
    read_doc(c, key, &right);
    CHECK(right);
    aside_cache_close(c);
}

static void test_values_survive_a_restart_and_come_from_disk(void)
{
    fixture f;
    prepare(&f, "sub/doc.json");
    aside_cache *c = open_cache(&f);
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.keys == 1 && stats.disk_used_bytes == strlen(DOC));
    bool right = false;
    CHECK(read_doc(c, "sub/doc.json", &right) == ASIDE_SOURCE_DISK);
    CHECK(right);
    CHECK(read_doc(c, "sub/doc.json", &right) == ASIDE_SOURCE_MEMORY);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_corrupted_file_is_never_served_and_is_fetched_again(void)
{
    fixture f;
    prepare(&f, "doc.json");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/doc.json", f.cache);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, "X", 1, 3) == 1); /* same size, one byte changed */
    close(fd);
    aside_cache *c = open_cache(&f);
    bool right = false;
    CHECK(read_doc(c, "doc.json", &right) == ASIDE_SOURCE_SOR);
    CHECK(right);
    CHECK(file_size(f.cache, "doc.json") == (long)strlen(DOC));
    aside_cache_close(c);
    c = open_cache(&f); /* the refetched copy is good on disk */
    CHECK(read_doc(c, "doc.json", &right) == ASIDE_SOURCE_DISK && right);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_truncated_file_is_removed_at_start(void)
{
    fixture f;
    prepare(&f, "doc.json");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/doc.json", f.cache);
    CHECK(truncate(path, 5) == 0);
    aside_cache *c = open_cache(&f);
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.keys == 0);
    CHECK(file_size(f.cache, "doc.json") == -1);
    CHECK(file_size(f.cache, ".aside/meta/doc.json.meta") == -1);
    bool right = false;
    CHECK(read_doc(c, "doc.json", &right) == ASIDE_SOURCE_SOR && right);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_interrupted_writes_leave_nothing_behind(void)
{
    fixture f;
    prepare(&f, "doc.json");
    /* a file renamed into place whose sidecar was never written, and a temporary file */
    write_file(f.cache, "orphan.json", "{}", 2);
    write_file(f.cache, ".aside/tmp/v.abc123", "partial", 7);
    /* a sidecar whose file is missing, and a sidecar that does not parse */
    write_file(f.cache, ".aside/meta/ghost.json.meta", "aside-meta 1\nsize 2\n", 20);
    write_file(f.cache, "junk.json", "[]", 2);
    write_file(f.cache, ".aside/meta/junk.json.meta", "garbage", 7);
    aside_cache *c = open_cache(&f);
    CHECK(file_size(f.cache, "orphan.json") == -1);
    CHECK(file_size(f.cache, ".aside/tmp/v.abc123") == -1);
    CHECK(file_size(f.cache, ".aside/meta/ghost.json.meta") == -1);
    CHECK(file_size(f.cache, "junk.json") == -1);
    CHECK(file_size(f.cache, ".aside/meta/junk.json.meta") == -1);
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.keys == 1); /* the intact value stays */
    bool right = false;
    CHECK(read_doc(c, "doc.json", &right) == ASIDE_SOURCE_DISK && right);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_file_replaced_behind_the_cache_is_detected(void)
{
    fixture f;
    prepare(&f, "doc.json");
    aside_cache *c = open_cache(&f);
    char other[sizeof DOC];
    memcpy(other, DOC, sizeof DOC);
    other[0] = '[';
    write_file(f.cache, "doc.json", other, strlen(other)); /* same size, other bytes */
    bool right = false;
    CHECK(read_doc(c, "doc.json", &right) == ASIDE_SOURCE_SOR && right);
    aside_cache_close(c);
    fixture_done(&f);
}

/* A system of record that knows no version tags: it copies DOC and says nothing else. */
static aside_status fetch_without_etag(void *ctx, const char *key, int fd,
                                       aside_object_info *info, aside_error *err)
{
    (void)ctx, (void)key, (void)err;
    memset(info, 0, sizeof *info);
    info->size = strlen(DOC);
    return write(fd, DOC, strlen(DOC)) == (ssize_t)strlen(DOC) ? ASIDE_OK : ASIDE_ERR_IO;
}

static void test_a_value_without_a_version_tag_survives_a_restart(void)
{
    fixture f;
    fixture_init(&f);
    aside_sor_callbacks sor = {NULL, fetch_without_etag};
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.data_dir = f.cache;
    cfg.sor = &sor;
    for (int run = 0; run < 2; run++) {
        aside_cache *c = NULL;
        CHECK(aside_cache_open(&cfg, &c, NULL) == ASIDE_OK);
        if (!c)
            break;
        bool right = false;
        CHECK(read_doc(c, "tagless.json", &right) ==
              (run == 0 ? ASIDE_SOURCE_SOR : ASIDE_SOURCE_DISK));
        CHECK(right);
        aside_cache_close(c);
    }
    fixture_done(&f);
}

/* The scan checks every folder of the tier: valid values in nested folders stay, and a value
 * without a sidecar, a sidecar of a size that is not its value's and a sidecar in a folder
 * whose value folder does not exist go, wherever they are. */
static void test_the_scan_keeps_nested_values_and_removes_what_does_not_match(void)
{
    fixture f;
    fixture_init(&f);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sub", f.sor);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/sub/deep", f.sor);
    mkdir(path, 0755);
    const char *keys[] = {"top.json", "sub/a.json", "sub/deep/b.json", "sub/deep/c.json"};
    for (size_t i = 0; i < 4; i++)
        write_file(f.sor, keys[i], DOC, strlen(DOC));
    aside_cache *c = open_cache(&f);
    for (size_t i = 0; i < 4; i++) {
        bool right = false;
        read_doc(c, keys[i], &right);
        CHECK(right);
    }
    aside_cache_close(c);
    write_file(f.cache, "sub/deep/orphan.json", "{}", 2);  /* no sidecar */
    snprintf(path, sizeof path, "%s/lone", f.cache);        /* no sidecar folder either */
    mkdir(path, 0755);
    write_file(f.cache, "lone/x.json", "{}", 2);
    write_file(f.cache, "sub/deep/c.json", "{}", 2);         /* not the size its sidecar says */
    snprintf(path, sizeof path, "%s/.aside/meta/nothere", f.cache);
    mkdir(path, 0755);
    write_file(f.cache, ".aside/meta/nothere/y.json.meta", "aside-meta 1\n", 13);
    c = open_cache(&f);
    CHECK(file_size(f.cache, "sub/deep/orphan.json") == -1);
    CHECK(file_size(f.cache, "lone/x.json") == -1);
    CHECK(file_size(f.cache, "sub/deep/c.json") == -1);
    CHECK(file_size(f.cache, ".aside/meta/sub/deep/c.json.meta") == -1);
    CHECK(file_size(f.cache, ".aside/meta/nothere/y.json.meta") == -1);
    aside_stats stats;
    aside_stats_get(c, &stats);
    CHECK(stats.keys == 3);
    for (size_t i = 0; i < 3; i++) {
        bool right = false;
        CHECK(read_doc(c, keys[i], &right) == ASIDE_SOURCE_DISK && right);
    }
    aside_cache_close(c);
    fixture_done(&f);
}

int main(void)
{
    RUN(test_a_value_without_a_version_tag_survives_a_restart);
    RUN(test_values_survive_a_restart_and_come_from_disk);
    RUN(test_corrupted_file_is_never_served_and_is_fetched_again);
    RUN(test_truncated_file_is_removed_at_start);
    RUN(test_interrupted_writes_leave_nothing_behind);
    RUN(test_the_scan_keeps_nested_values_and_removes_what_does_not_match);
    RUN(test_file_replaced_behind_the_cache_is_detected);
    return CHECK_DONE();
}
