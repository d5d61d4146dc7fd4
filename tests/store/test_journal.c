/* test_journal.c -- the append-only journal: what goes in comes back, in order, after a reopen;
 * what a crash or a faulty disk leaves at the end (a cut record, garbage, a header promising
 * more than there is) or in the middle (a flipped byte) is cut, never delivered, and the next
 * append lands on a record boundary; compaction replaces the content atomically, or not at all;
 * appenders on many threads with the "always" policy each find their records exactly once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "store/store.h"

enum {
    HEADER_BYTES = 16, /* magic, length, checksum: what each record adds to its payload */
    MAX_RECORDS = 8192
};

/* What a replay delivered: each payload (copied) and its length, in order. */
typedef struct replayed {
    size_t count;
    char  *payloads[MAX_RECORDS];
    size_t lens[MAX_RECORDS];
    bool   terminated; /* every payload arrived NUL-terminated */
} replayed;

static void collect(void *ctx, const char *payload, size_t len)
{
    replayed *r = ctx;
    if (payload[len] != '\0')
        r->terminated = false;
    if (r->count >= MAX_RECORDS)
        return;
    r->payloads[r->count] = malloc(len + 1);
    memcpy(r->payloads[r->count], payload, len + 1);
    r->lens[r->count++] = len;
}

static void replayed_init(replayed *r)
{
    r->count = 0;
    r->terminated = true;
}

static void replayed_free(replayed *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->payloads[i]);
    r->count = 0;
}

/* Record i of the replay is the text want. */
static bool record_is(const replayed *r, size_t i, const char *want)
{
    return i < r->count && r->lens[i] == strlen(want) && memcmp(r->payloads[i], want, r->lens[i]) == 0;
}

/* The replay delivered exactly the texts of want (n of them), in order. */
static bool replay_is(const replayed *r, const char *const *want, size_t n)
{
    bool same = r->count == n && r->terminated;
    for (size_t i = 0; same && i < n; i++)
        same = record_is(r, i, want[i]);
    if (!same) {
        fprintf(stderr, "  replayed %zu records, wanted %zu:", r->count, n);
        for (size_t i = 0; i < r->count && i < 8; i++)
            fprintf(stderr, " \"%.*s\"", (int)r->lens[i], r->payloads[i]);
        fprintf(stderr, "\n");
    }
    return same;
}

/* A fixture whose cache folder holds the reserved folder the journal lives in. */
static void journal_fixture(fixture *f)
{
    fixture_init(f);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/.aside", f->cache);
    mkdir(dir, 0700);
}

static journal *open_journal(fixture *f, aside_fsync policy, replayed *r)
{
    replayed_init(r);
    journal *j = NULL;
    aside_error err;
    if (journal_open(f->cache, policy, collect, r, &j, &err) != ASIDE_OK) {
        fprintf(stderr, "journal_open failed: %s\n", err.message);
        exit(1);
    }
    return j;
}

static aside_status append_text(journal *j, const char *text, uint64_t *position)
{
    aside_error err;
    return journal_append(j, text, strlen(text), position, &err);
}

static const char JOURNAL_FILE[] = ".aside/journal";
static const char JOURNAL_NEW_FILE[] = ".aside/journal.new";

static void journal_path(const fixture *f, const char *name, char *path)
{
    snprintf(path, PATH_MAX, "%s/%s", f->cache, name);
}

/* Append raw bytes to the end of the journal file, as a crash or damage would leave them. */
static void append_raw(const fixture *f, const void *data, size_t len)
{
    char path[PATH_MAX];
    journal_path(f, JOURNAL_FILE, path);
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static void truncate_journal(const fixture *f, long size)
{
    char path[PATH_MAX];
    journal_path(f, JOURNAL_FILE, path);
    CHECK(truncate(path, size) == 0);
}

/* XOR one byte of the journal file at offset. */
static void flip_byte(const fixture *f, long offset)
{
    char path[PATH_MAX];
    journal_path(f, JOURNAL_FILE, path);
    int fd = open(path, O_RDWR);
    unsigned char b = 0;
    CHECK(fd >= 0 && pread(fd, &b, 1, offset) == 1);
    b ^= 0x20;
    CHECK(pwrite(fd, &b, 1, offset) == 1);
    close(fd);
}

static const char *const ABC[] = {"{\"k\": \"a\", \"n\": 1}", "{\"k\": \"b\", \"n\": 22}",
                                  "{\"k\": \"c\", \"n\": 333}"};

/* A journal holding ABC, closed. */
static void write_abc(fixture *f)
{
    replayed r;
    journal *j = open_journal(f, ASIDE_FSYNC_NEVER, &r);
    for (size_t i = 0; i < 3; i++)
        CHECK(append_text(j, ABC[i], NULL) == ASIDE_OK);
    journal_close(j);
    replayed_free(&r);
}

static long abc_bytes(size_t records)
{
    long bytes = 0;
    for (size_t i = 0; i < records; i++)
        bytes += HEADER_BYTES + (long)strlen(ABC[i]);
    return bytes;
}

/* ---- append and replay -------------------------------------------------------------------- */

static void test_records_replay_in_order_with_their_exact_payloads(void)
{
    fixture f;
    journal_fixture(&f);
    replayed r;
    journal *j = open_journal(&f, ASIDE_FSYNC_NEVER, &r);
    CHECK(r.count == 0);
    char text[64][128];
    uint64_t expected = 0;
    bool positions_right = true;
    for (int i = 0; i < 64; i++) {
        /* payloads of many lengths, the empty one included */
        int n = snprintf(text[i], sizeof text[i], "{\"i\": %d, \"pad\": \"%.*s\"}", i, i,
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        if (i == 10)
            n = 0, text[i][0] = '\0';
        uint64_t position = 0;
        CHECK(journal_append(j, text[i], (size_t)n, &position, NULL) == ASIDE_OK);
        expected += HEADER_BYTES + (uint64_t)n;
        positions_right &= position == expected;
    }
    CHECK(positions_right);
    uint64_t bytes = 0, records = 0;
    journal_stats(j, &bytes, &records);
    CHECK(bytes == expected && records == 64);
    CHECK(file_size(f.cache, JOURNAL_FILE) == (long)expected);
    journal_close(j);
    j = open_journal(&f, ASIDE_FSYNC_NEVER, &r);
    const char *want[64];
    for (int i = 0; i < 64; i++)
        want[i] = text[i];
    CHECK(replay_is(&r, want, 64));
    journal_stats(j, &bytes, &records);
    CHECK(bytes == expected && records == 64);
    journal_close(j);
    replayed_free(&r);
    fixture_done(&f);
}

static void test_a_payload_is_opaque_bytes_even_with_a_nul_inside(void)
{
    fixture f;
    journal_fixture(&f);
    replayed r;
    journal *j = open_journal(&f, ASIDE_FSYNC_NEVER, &r);
    static const char binary[] = {'a', '\0', 'b', '\n', (char)0xff, 'c'};
    CHECK(journal_append(j, binary, sizeof binary, NULL, NULL) == ASIDE_OK);
    CHECK(append_text(j, "after", NULL) == ASIDE_OK);
    journal_close(j);
    j = open_journal(&f, ASIDE_FSYNC_NEVER, &r);
    CHECK(r.count == 2 && r.lens[0] == sizeof binary &&
          memcmp(r.payloads[0], binary, sizeof binary) == 0 && record_is(&r, 1, "after"));
    journal_close(j);
    replayed_free(&r);
    fixture_done(&f);
}

static void test_appends_after_a_reopen_follow_the_old_records(void)
{
    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    replayed r;
    journal *j = open_journal(&f, ASIDE_FSYNC_EVERYSEC, &r);
    CHECK(replay_is(&r, ABC, 3));
    replayed_free(&r);
    CHECK(append_text(j, "d", NULL) == ASIDE_OK);
    journal_close(j);
    j = open_journal(&f, ASIDE_FSYNC_ALWAYS, &r);
    const char *want[] = {ABC[0], ABC[1], ABC[2], "d"};
    CHECK(replay_is(&r, want, 4));
    replayed_free(&r);
    journal_close(j);
    /* a third open finds the same: a replay changes nothing */
    j = open_journal(&f, ASIDE_FSYNC_NEVER, &r);
    CHECK(replay_is(&r, want, 4));
    replayed_free(&r);
    journal_close(j);
    fixture_done(&f);
}

/* ---- damage at the end -------------------------------------------------------------------- */

/* Reopen a damaged journal holding ABC: the first `whole` records come back, the file is cut
 * right after them, and an append after the cut replays after them. */
static void check_cut_after(fixture *f, size_t whole)
{
    replayed r;
    journal *j = open_journal(f, ASIDE_FSYNC_NEVER, &r);
    CHECK(replay_is(&r, ABC, whole));
    replayed_free(&r);
    CHECK(file_size(f->cache, JOURNAL_FILE) == abc_bytes(whole));
    uint64_t bytes = 0, records = 0;
    journal_stats(j, &bytes, &records);
    CHECK(bytes == (uint64_t)abc_bytes(whole) && records == whole);
    CHECK(append_text(j, "next", NULL) == ASIDE_OK);
    journal_close(j);
    j = open_journal(f, ASIDE_FSYNC_NEVER, &r);
    CHECK(r.count == whole + 1 && record_is(&r, whole, "next"));
    for (size_t i = 0; i < whole; i++)
        CHECK(record_is(&r, i, ABC[i]));
    replayed_free(&r);
    journal_close(j);
}

static void test_a_record_cut_in_its_payload_is_dropped_and_earlier_ones_survive(void)
{
    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    truncate_journal(&f, abc_bytes(3) - 5);
    check_cut_after(&f, 2);
    fixture_done(&f);
}

static void test_a_record_cut_in_its_header_is_dropped(void)
{
    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    truncate_journal(&f, abc_bytes(2) + 7);
    check_cut_after(&f, 2);
    fixture_done(&f);
}

static void test_garbage_after_the_last_record_is_cut(void)
{
    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    char garbage[100];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (char)(i * 37 + 11);
    append_raw(&f, garbage, sizeof garbage);
    check_cut_after(&f, 3);
    fixture_done(&f);
}

static void test_a_header_promising_more_bytes_than_the_file_holds_is_cut(void)
{
    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    /* a well-formed header (the right magic) whose payload never made it to the disk */
    unsigned char torn[HEADER_BYTES + 10] = {'A', 'S', 'J', '1', 0xe8, 0x03, 0, 0};
    memset(torn + 8, 0x5a, sizeof torn - 8);
    append_raw(&f, torn, sizeof torn);
    check_cut_after(&f, 3);
    fixture_done(&f);
}

static void test_a_header_promising_a_huge_record_is_cut_without_trouble(void)
{
    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    unsigned char torn[HEADER_BYTES] = {'A', 'S', 'J', '1', 0xff, 0xff, 0xff, 0xff};
    append_raw(&f, torn, sizeof torn);
    check_cut_after(&f, 3);
    fixture_done(&f);
}

/* ---- damage in the middle ----------------------------------------------------------------- */

static void test_a_flipped_payload_byte_stops_the_replay_before_that_record(void)
{
    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    flip_byte(&f, abc_bytes(1) + HEADER_BYTES + 3); /* inside b's payload */
    check_cut_after(&f, 1);
    fixture_done(&f);
}

static void test_a_flipped_length_or_checksum_stops_the_replay_too(void)
{
    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    flip_byte(&f, abc_bytes(1) + 4); /* b's length */
    check_cut_after(&f, 1);
    fixture_done(&f);

    journal_fixture(&f);
    write_abc(&f);
    flip_byte(&f, abc_bytes(1) + 12); /* b's checksum */
    check_cut_after(&f, 1);
    fixture_done(&f);

    journal_fixture(&f);
    write_abc(&f);
    flip_byte(&f, 0); /* a's magic: nothing is whole */
    check_cut_after(&f, 0);
    fixture_done(&f);
}

/* ---- compaction --------------------------------------------------------------------------- */

static void test_a_committed_rewrite_replaces_the_content(void)
{
    fixture f;
    journal_fixture(&f);
    replayed r;
    journal *j = open_journal(&f, ASIDE_FSYNC_EVERYSEC, &r);
    for (int i = 0; i < 50; i++)
        CHECK(append_text(j, "{\"k\": \"counter\", \"o\": \"counter_increment\"}", NULL) ==
              ASIDE_OK);
    journal_rewrite *w = NULL;
    CHECK(journal_rewrite_begin(j, &w, NULL) == ASIDE_OK);
    CHECK(journal_rewrite_add(w, "s0", 2, NULL) == ASIDE_OK);
    CHECK(journal_rewrite_add(w, "snapshot-1", 10, NULL) == ASIDE_OK);
    CHECK(journal_rewrite_end(w, true, NULL) == ASIDE_OK);
    uint64_t bytes = 0, records = 0;
    journal_stats(j, &bytes, &records);
    CHECK(bytes == 2 * HEADER_BYTES + 12 && records == 2);
    CHECK(file_size(f.cache, JOURNAL_FILE) == 2 * HEADER_BYTES + 12);
    CHECK(file_size(f.cache, JOURNAL_NEW_FILE) == -1);
    /* appends go on after the new content */
    CHECK(append_text(j, "after", NULL) == ASIDE_OK);
    journal_close(j);
    j = open_journal(&f, ASIDE_FSYNC_EVERYSEC, &r);
    const char *want[] = {"s0", "snapshot-1", "after"};
    CHECK(replay_is(&r, want, 3));
    replayed_free(&r);
    journal_close(j);
    fixture_done(&f);
}

static void test_an_empty_committed_rewrite_empties_the_journal(void)
{
    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    replayed r;
    journal *j = open_journal(&f, ASIDE_FSYNC_ALWAYS, &r);
    replayed_free(&r);
    journal_rewrite *w = NULL;
    CHECK(journal_rewrite_begin(j, &w, NULL) == ASIDE_OK);
    CHECK(journal_rewrite_end(w, true, NULL) == ASIDE_OK);
    CHECK(file_size(f.cache, JOURNAL_FILE) == 0);
    journal_close(j);
    j = open_journal(&f, ASIDE_FSYNC_NEVER, &r);
    CHECK(r.count == 0);
    journal_close(j);
    fixture_done(&f);
}

static void test_an_abandoned_rewrite_keeps_the_old_content(void)
{
    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    replayed r;
    journal *j = open_journal(&f, ASIDE_FSYNC_EVERYSEC, &r);
    replayed_free(&r);
    journal_rewrite *w = NULL;
    CHECK(journal_rewrite_begin(j, &w, NULL) == ASIDE_OK);
    CHECK(journal_rewrite_add(w, "never", 5, NULL) == ASIDE_OK);
    CHECK(journal_rewrite_end(w, false, NULL) == ASIDE_OK);
    CHECK(file_size(f.cache, JOURNAL_NEW_FILE) == -1);
    uint64_t bytes = 0, records = 0;
    journal_stats(j, &bytes, &records);
    CHECK(bytes == (uint64_t)abc_bytes(3) && records == 3);
    CHECK(append_text(j, "d", NULL) == ASIDE_OK);
    journal_close(j);
    j = open_journal(&f, ASIDE_FSYNC_EVERYSEC, &r);
    const char *want[] = {ABC[0], ABC[1], ABC[2], "d"};
    CHECK(replay_is(&r, want, 4));
    replayed_free(&r);
    journal_close(j);
    fixture_done(&f);
}

static void test_a_rewrite_left_by_a_crash_is_ignored_and_removed(void)
{
    /* a whole, valid journal as the leftover: even that must not be taken */
    fixture other;
    journal_fixture(&other);
    replayed r;
    journal *j = open_journal(&other, ASIDE_FSYNC_NEVER, &r);
    CHECK(append_text(j, "from-an-unfinished-compaction", NULL) == ASIDE_OK);
    journal_close(j);
    char from[PATH_MAX];
    journal_path(&other, JOURNAL_FILE, from);
    FILE *fp = fopen(from, "rb");
    char leftover[256];
    size_t n = fp ? fread(leftover, 1, sizeof leftover, fp) : 0;
    if (fp)
        fclose(fp);
    CHECK(n > HEADER_BYTES);
    fixture_done(&other);

    fixture f;
    journal_fixture(&f);
    write_abc(&f);
    write_file(f.cache, JOURNAL_NEW_FILE, leftover, n);
    j = open_journal(&f, ASIDE_FSYNC_NEVER, &r);
    CHECK(replay_is(&r, ABC, 3));
    replayed_free(&r);
    CHECK(file_size(f.cache, JOURNAL_NEW_FILE) == -1);
    journal_close(j);
    fixture_done(&f);
}

/* ---- syncs -------------------------------------------------------------------------------- */

static void test_wait_returns_ok_with_every_policy(void)
{
    static const aside_fsync policies[] = {ASIDE_FSYNC_ALWAYS, ASIDE_FSYNC_EVERYSEC,
                                           ASIDE_FSYNC_NEVER};
    for (size_t p = 0; p < 3; p++) {
        fixture f;
        journal_fixture(&f);
        replayed r;
        journal *j = open_journal(&f, policies[p], &r);
        for (int i = 0; i < 5; i++) {
            uint64_t position = 0;
            aside_error err;
            CHECK(append_text(j, ABC[i % 3], &position) == ASIDE_OK);
            CHECK(journal_wait(j, position, &err) == ASIDE_OK);
            journal_tick(j);
        }
        CHECK(journal_wait(j, 0, NULL) == ASIDE_OK);
        journal_close(j);
        j = open_journal(&f, policies[p], &r);
        CHECK(r.count == 5);
        replayed_free(&r);
        journal_close(j);
        fixture_done(&f);
    }
}

/* A waiter for a record written before a compaction: the compaction put that record's effect
 * on the disk (the new journal is synced before it is swapped in), so the wait must end. The
 * cache appends under its lock and waits after unlocking, so its housekeeping thread may
 * compact in between; a wait that never ends is a request that is never answered. */
typedef struct waiter {
    journal    *j;
    uint64_t    position;
    aside_status status;
    atomic_bool done;
} waiter;

static void *wait_for_position(void *arg)
{
    waiter *w = arg;
    w->status = journal_wait(w->j, w->position, NULL);
    atomic_store(&w->done, true);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_a_wait_for_a_record_written_before_a_compaction_ends(void)
{
    enum { DEADLINE_MS = 5000, POLL_MS = 10 };
    fixture f;
    journal_fixture(&f);
    replayed r;
    journal *j = open_journal(&f, ASIDE_FSYNC_ALWAYS, &r);
    uint64_t position = 0;
    for (int i = 0; i < 20; i++)
        CHECK(append_text(j, "{\"k\": \"list\", \"o\": \"list_push\", \"a\": {\"value\": 1}}",
                          &position) == ASIDE_OK);
    journal_rewrite *w = NULL;
    CHECK(journal_rewrite_begin(j, &w, NULL) == ASIDE_OK);
    CHECK(journal_rewrite_add(w, "snapshot", 8, NULL) == ASIDE_OK);
    CHECK(journal_rewrite_end(w, true, NULL) == ASIDE_OK);
    waiter wt = {j, position, ASIDE_ERR_INTERNAL, false};
    pthread_t thread;
    pthread_create(&thread, NULL, wait_for_position, &wt);
    for (int waited = 0; waited < DEADLINE_MS && !atomic_load(&wt.done); waited += POLL_MS)
        sleep_ms(POLL_MS);
    bool ended = atomic_load(&wt.done);
    CHECK(ended);
    /* free a waiter that is stuck: appends past its position let it go */
    for (int i = 0; i < 1000 && !atomic_load(&wt.done); i++)
        append_text(j, "{\"k\": \"filler\", \"o\": \"del\", \"pad\": \"............\"}", NULL);
    pthread_join(thread, NULL);
    CHECK(wt.status == ASIDE_OK);
    journal_close(j);
    fixture_done(&f);
}

/* ---- many appenders ----------------------------------------------------------------------- */

enum { APPENDERS = 4, APPENDS_EACH = 250 };

typedef struct appender {
    journal *j;
    int      id;
    int      failures;
} appender;

static void *append_many(void *arg)
{
    appender *a = arg;
    for (int n = 0; n < APPENDS_EACH; n++) {
        char text[64];
        snprintf(text, sizeof text, "{\"t\": %d, \"n\": %d}", a->id, n);
        uint64_t position = 0;
        if (append_text(a->j, text, &position) != ASIDE_OK ||
            journal_wait(a->j, position, NULL) != ASIDE_OK)
            a->failures++;
    }
    return NULL;
}

static void test_concurrent_appenders_with_always_find_each_record_exactly_once(void)
{
    fixture f;
    journal_fixture(&f);
    replayed r;
    journal *j = open_journal(&f, ASIDE_FSYNC_ALWAYS, &r);
    pthread_t threads[APPENDERS];
    appender appenders[APPENDERS];
    for (int t = 0; t < APPENDERS; t++) {
        appenders[t] = (appender){j, t, 0};
        pthread_create(&threads[t], NULL, append_many, &appenders[t]);
    }
    int failures = 0;
    for (int t = 0; t < APPENDERS; t++) {
        pthread_join(threads[t], NULL);
        failures += appenders[t].failures;
    }
    CHECK(failures == 0);
    uint64_t bytes = 0, records = 0;
    journal_stats(j, &bytes, &records);
    CHECK(records == APPENDERS * APPENDS_EACH);
    CHECK(file_size(f.cache, JOURNAL_FILE) == (long)bytes);
    journal_close(j);
    j = open_journal(&f, ASIDE_FSYNC_ALWAYS, &r);
    CHECK(r.count == APPENDERS * APPENDS_EACH);
    /* each thread's records, once each and in the order that thread wrote them */
    int next[APPENDERS] = {0};
    bool in_order = true;
    for (size_t i = 0; i < r.count; i++) {
        int t = -1, n = -1;
        if (sscanf(r.payloads[i], "{\"t\": %d, \"n\": %d}", &t, &n) != 2 || t < 0 ||
            t >= APPENDERS || n != next[t]) {
            in_order = false;
            break;
        }
        next[t]++;
    }
    CHECK(in_order);
    for (int t = 0; t < APPENDERS; t++)
        CHECK(next[t] == APPENDS_EACH);
    replayed_free(&r);
    journal_close(j);
    fixture_done(&f);
}

/* The descriptor the journal holds on its file (found through /proc/self/fd), or -1. */
static int journal_fd(const fixture *f)
{
    char want[PATH_MAX], real[PATH_MAX];
    journal_path(f, JOURNAL_FILE, want);
    if (!realpath(want, real))
        return -1;
    DIR *d = opendir("/proc/self/fd");
    int found = -1;
    for (struct dirent *de; d && found < 0 && (de = readdir(d));) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0 && (target[n] = '\0', strcmp(target, real) == 0))
            found = atoi(de->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

enum { FD_LIMIT_FOR_TEST = 128 }; /* bounds the descriptors the test opens to use them all up */

/* Open /dev/null until the process has no descriptor left (the soft limit lowered to
 * FD_LIMIT_FOR_TEST first); the number opened goes to *count, to give back with fds_release. */
static void fds_exhaust(int *fds, int *count, struct rlimit *saved)
{
    getrlimit(RLIMIT_NOFILE, saved);
    struct rlimit low = *saved;
    if (low.rlim_cur > FD_LIMIT_FOR_TEST)
        low.rlim_cur = FD_LIMIT_FOR_TEST;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    *count = 0;
    while (*count < FD_LIMIT_FOR_TEST && (fds[*count] = open("/dev/null", O_RDONLY)) >= 0)
        (*count)++;
    CHECK(errno == EMFILE);
}

static void fds_release(int *fds, int count, const struct rlimit *saved)
{
    for (int i = 0; i < count; i++)
        close(fds[i]);
    setrlimit(RLIMIT_NOFILE, saved);
}

/* With every descriptor of the process in use, appends and syncs still work, under "always"
 * and "everysec": the journal opens no descriptor per append or per sync. */
static void test_appends_and_syncs_work_with_no_descriptor_left(void)
{
    static const aside_fsync policies[] = {ASIDE_FSYNC_ALWAYS, ASIDE_FSYNC_EVERYSEC};
    for (size_t p = 0; p < 2; p++) {
        fixture f;
        journal_fixture(&f);
        replayed r;
        journal *j = open_journal(&f, policies[p], &r);
        int fds[FD_LIMIT_FOR_TEST], count = 0;
        struct rlimit saved;
        fds_exhaust(fds, &count, &saved);
        aside_error err = {0};
        for (int i = 0; i < 3; i++) {
            uint64_t position = 0;
            CHECK(append_text(j, "{\"n\": 1}", &position) == ASIDE_OK);
            aside_status st = journal_wait(j, position, &err);
            CHECK(st == ASIDE_OK);
            if (st != ASIDE_OK)
                fprintf(stderr, "  %s\n", err.message);
            journal_tick(j);
        }
        CHECK(!journal_needs_rewrite(j));
        fds_release(fds, count, &saved);
        journal_close(j);
        j = open_journal(&f, policies[p], &r);
        CHECK(r.count == 3);
        replayed_free(&r);
        journal_close(j);
        fixture_done(&f);
    }
}

/* A sync that fails leaves the record appended and answers "not_durable" (the change is
 * applied but not yet durable), and so does every wait for a later record until a rewrite:
 * the disk may have lost what the failed sync could not write, whatever later syncs say. The
 * rewrite makes everything durable again. */
static void test_a_failed_sync_answers_not_durable_until_a_rewrite(void)
{
    fixture f;
    journal_fixture(&f);
    replayed r;
    journal *j = open_journal(&f, ASIDE_FSYNC_ALWAYS, &r);
    uint64_t position = 0;
    aside_error err = {0};
    CHECK(append_text(j, "a", &position) == ASIDE_OK && journal_wait(j, position, &err) == 0);
    /* the journal's descriptor now leads where fdatasync fails (EINVAL) */
    int fd = journal_fd(&f), real = fd >= 0 ? dup(fd) : -1, null = open("/dev/null", O_WRONLY);
    CHECK(fd >= 0 && real >= 0 && null >= 0 && dup2(null, fd) == fd);
    close(null);
    CHECK(append_text(j, "b", &position) == ASIDE_OK);
    CHECK(journal_wait(j, position, &err) == ASIDE_ERR_IO);
    CHECK(strcmp(err.code, "not_durable") == 0);
    CHECK(strstr(err.message, "applied but not yet durable") != NULL);
    CHECK(journal_needs_rewrite(j));
    /* the disk is back: a later record is still not vouched for, until a rewrite */
    CHECK(dup2(real, fd) == fd);
    close(real);
    err = (aside_error){0};
    CHECK(append_text(j, "c", &position) == ASIDE_OK);
    CHECK(journal_wait(j, position, &err) == ASIDE_ERR_IO && strcmp(err.code, "not_durable") == 0);
    journal_rewrite *w = NULL;
    CHECK(journal_rewrite_begin(j, &w, &err) == ASIDE_OK);
    const char *state[] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++)
        CHECK(journal_rewrite_add(w, state[i], 1, &err) == ASIDE_OK);
    CHECK(journal_rewrite_end(w, true, &err) == ASIDE_OK);
    CHECK(!journal_needs_rewrite(j));
    CHECK(journal_wait(j, position, &err) == ASIDE_OK);
    CHECK(append_text(j, "d", &position) == ASIDE_OK && journal_wait(j, position, &err) == 0);
    journal_close(j);
    j = open_journal(&f, ASIDE_FSYNC_ALWAYS, &r);
    const char *want[] = {"a", "b", "c", "d"};
    CHECK(replay_is(&r, want, 4));
    replayed_free(&r);
    journal_close(j);
    fixture_done(&f);
}

int main(void)
{
    RUN(test_records_replay_in_order_with_their_exact_payloads);
    RUN(test_a_payload_is_opaque_bytes_even_with_a_nul_inside);
    RUN(test_appends_after_a_reopen_follow_the_old_records);
    RUN(test_a_record_cut_in_its_payload_is_dropped_and_earlier_ones_survive);
    RUN(test_a_record_cut_in_its_header_is_dropped);
    RUN(test_garbage_after_the_last_record_is_cut);
    RUN(test_a_header_promising_more_bytes_than_the_file_holds_is_cut);
    RUN(test_a_header_promising_a_huge_record_is_cut_without_trouble);
    RUN(test_a_flipped_payload_byte_stops_the_replay_before_that_record);
    RUN(test_a_flipped_length_or_checksum_stops_the_replay_too);
    RUN(test_a_committed_rewrite_replaces_the_content);
    RUN(test_an_empty_committed_rewrite_empties_the_journal);
    RUN(test_an_abandoned_rewrite_keeps_the_old_content);
    RUN(test_a_rewrite_left_by_a_crash_is_ignored_and_removed);
    RUN(test_wait_returns_ok_with_every_policy);
    RUN(test_a_wait_for_a_record_written_before_a_compaction_ends);
    RUN(test_concurrent_appenders_with_always_find_each_record_exactly_once);
    RUN(test_appends_and_syncs_work_with_no_descriptor_left);
    RUN(test_a_failed_sync_answers_not_durable_until_a_rewrite);
    return CHECK_DONE();
}
