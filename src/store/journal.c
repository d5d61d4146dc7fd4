/* journal.c -- the append-only log of the values the cache alone holds.
 *
 * Collections, edited JSON documents and their times to live have no system of record: the
 * journal is their disk copy. Each change is one record appended to root/.aside/journal:
 *
 *   u32 magic "ASJ1"   u32 payload length   u64 XXH3-64 of the payload   payload (JSON text)
 *
 * little-endian, written with one write(2) before the change is acknowledged, so a killed
 * process loses nothing; what reaches the platter is the fsync policy's business:
 *
 *   always    every append waits until an fdatasync covers it. Appenders share syncs (group
 *             commit): one thread syncs everything written so far while the others wait for it.
 *   everysec  journal_tick, called about once a second, syncs what was written since.
 *   never     the operating system decides.
 *
 * Replay reads records in order and stops at the first one that is short or fails its checksum
 * (a write the crash cut, or damage): the file is truncated there, so a torn record is never
 * applied and the next append starts on a record boundary.
 *
 * Compaction writes the current state as a fresh journal (journal.new), syncs it, renames it
 * over the old one and syncs the folder: a crash leaves either the old journal or the new one.
 * The state written is the state when the rewrite began; appends may go on meanwhile (only
 * the caller's state must not change between journal_rewrite_begin and its last
 * journal_rewrite_add). The end carries them over: under the journal's lock it copies the
 * records appended since the beginning from the old file to the new one, syncs, renames and
 * swaps, so appends wait only for that short step, not for the bulk of the sync. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/util.h"

#define JOURNAL_NAME ".aside/journal"
#define JOURNAL_NEW  ".aside/journal.new"

enum {
    RECORD_MAGIC = 0x314a5341, /* "ASJ1" */
    HEADER_BYTES = 16,
    RECORD_MAX_BYTES = 1 << 30
};

struct journal {
    pthread_mutex_t lock;
    pthread_cond_t  synced_cond;
    int             fd;
    int             dir_fd;
    aside_fsync     policy;
    uint64_t        size;     /* the file's size */
    /* Positions count every byte ever appended, across compactions, so a position handed to
     * journal_wait stays meaningful when a compaction swaps the file. */
    uint64_t        written;  /* bytes appended */
    uint64_t        synced;   /* bytes known to be on the disk */
    bool            syncing;  /* a thread runs fdatasync (on fd) for the others */
    /* A sync failed: what was appended since the last good sync may be lost whatever a later
     * sync answers (the kernel may have dropped the pages it could not write), so nothing
     * after `synced` is durable until a rewrite puts the whole state in a new file. */
    bool            sync_failed;
    int             sync_errno;
    uint64_t        records;
    uint64_t        appends, syncs; /* ever, across compactions (telemetry) */
    char            path[PATH_MAX], new_path[PATH_MAX];
};

/* ---- records ------------------------------------------------------------------------------ */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void header_fill(unsigned char *h, const void *payload, size_t len)
{
    put_u32(h, RECORD_MAGIC);
    put_u32(h + 4, (uint32_t)len);
    put_u64(h + 8, XXH3_64bits(payload, len));
}

static aside_status write_record(int fd, const void *payload, size_t len, aside_error *err)
{
    unsigned char header[HEADER_BYTES];
    header_fill(header, payload, len);
    struct iovec iov[2] = {{header, sizeof header}, {(void *)payload, len}};
    size_t want = sizeof header + len;
    ssize_t n;
    do
        n = writev(fd, iov, 2);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)want)
        return ASIDE_OK;
    return error_set(err, ASIDE_ERR_IO, "append to the journal failed: %s",
                     n < 0 ? strerror(errno) : "short write");
}

/* Write len bytes to fd whole (retrying short writes). */
static aside_status write_all(int fd, const void *data, size_t len, aside_error *err)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return error_set(err, ASIDE_ERR_IO, "write to the journal failed: %s",
                             n < 0 ? strerror(errno) : "short write");
        done += (size_t)n;
    }
    return ASIDE_OK;
}

/* ---- open and replay ---------------------------------------------------------------------- */

static aside_status read_at(int fd, void *data, size_t len, uint64_t offset, bool *short_read)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)data + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ASIDE_ERR_IO;
        if (n == 0) {
            *short_read = true;
            return ASIDE_OK;
        }
        done += (size_t)n;
    }
    *short_read = false;
    return ASIDE_OK;
}

/* Replay reads the file through a buffer of REPLAY_CHUNK_BYTES (grown for a larger record), so
 * a journal of small records costs a read(2) per chunk, not two per record. */
enum { REPLAY_CHUNK_BYTES = 1 << 20 };

typedef struct reader {
    int      fd;
    uint64_t file_bytes; /* the file's size: no record claims more than is left of it */
    char    *buf;
    size_t   capacity, start, end; /* buf[start, end) holds the file from offset `at` */
    uint64_t at;
} reader;

/* Make want bytes from r->at available at r->buf + r->start, plus one spare byte (for a NUL
 * after a payload). The caller checked that the file holds them. */
static aside_status reader_fill(reader *r, size_t want, aside_error *err)
{
    if (r->end - r->start >= want)
        return ASIDE_OK;
    if (r->start && want + 1 > r->capacity - r->start) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (want + 1 > r->capacity) {
        size_t grown_bytes = want + 1 > REPLAY_CHUNK_BYTES ? want + 1 : REPLAY_CHUNK_BYTES;
        char *grown = realloc(r->buf, grown_bytes);
        if (!grown)
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory reading the journal");
        r->buf = grown;
        r->capacity = grown_bytes;
    }
    bool short_read = false;
    size_t room = r->capacity - 1 - r->end;
    uint64_t left = r->file_bytes - (r->at + (r->end - r->start));
    size_t take = left < room ? (size_t)left : room;
    if (read_at(r->fd, r->buf + r->end, take, r->at + (r->end - r->start), &short_read) !=
        ASIDE_OK)
        return error_set(err, ASIDE_ERR_IO, "read of the journal failed: %s", strerror(errno));
    if (short_read) /* the file shrank under us: only a bug or another process does that */
        return error_set(err, ASIDE_ERR_IO, "the journal changed while it was read");
    r->end += take;
    return ASIDE_OK;
}

/* Find the record at r->at: *payload points into the buffer (NUL-terminated until the next
 * call), *len its length. *valid false at the end of the good records: the end of the file, a
 * cut record or a checksum that fails. */
static aside_status read_record(reader *r, char **payload, size_t *len, bool *valid,
                                aside_error *err)
{
    *valid = false;
    if (r->file_bytes - r->at < HEADER_BYTES)
        return ASIDE_OK;
    aside_status st = reader_fill(r, HEADER_BYTES, err);
    if (st != ASIDE_OK)
        return st;
    const unsigned char *h = (const unsigned char *)r->buf + r->start;
    *len = get_u32(h + 4);
    if (get_u32(h) != RECORD_MAGIC || *len > RECORD_MAX_BYTES ||
        *len > r->file_bytes - r->at - HEADER_BYTES)
        return ASIDE_OK;
    if ((st = reader_fill(r, HEADER_BYTES + *len, err)) != ASIDE_OK)
        return st;
    h = (const unsigned char *)r->buf + r->start;
    *payload = r->buf + r->start + HEADER_BYTES;
    if (XXH3_64bits(*payload, *len) != get_u64(h + 8))
        return ASIDE_OK;
    *valid = true;
    return ASIDE_OK;
}

/* Step past the record just read (of len bytes). */
static void reader_next(reader *r, size_t len)
{
    r->start += HEADER_BYTES + len;
    r->at += HEADER_BYTES + len;
}

static aside_status replay(journal *j, journal_visit visit, void *ctx, aside_error *err)
{
    struct stat sb;
    if (fstat(j->fd, &sb) != 0)
        return error_set(err, ASIDE_ERR_IO, "cannot read the journal: %s", strerror(errno));
    reader r = {.fd = j->fd, .file_bytes = (uint64_t)sb.st_size};
    aside_status st = ASIDE_OK;
    for (bool valid = true; st == ASIDE_OK && valid;) {
        char *payload = NULL;
        size_t len = 0;
        st = read_record(&r, &payload, &len, &valid, err);
        if (st == ASIDE_OK && valid) {
            char after = payload[len]; /* the next record's first byte, or the spare byte */
            payload[len] = '\0';
            visit(ctx, payload, len);
            payload[len] = after;
            reader_next(&r, len);
            j->records++;
        }
    }
    free(r.buf);
    if (st != ASIDE_OK)
        return st;
    uint64_t offset = r.at;
    if (r.file_bytes > offset) {
        log_line("warn", "journal: dropping %llu bytes after the last whole record (a write "
                 "cut short)", (unsigned long long)(r.file_bytes - offset));
        if (ftruncate(j->fd, (off_t)offset) != 0 || fdatasync(j->fd) != 0)
            return error_set(err, ASIDE_ERR_IO, "cannot truncate the journal: %s",
                             strerror(errno));
    }
    j->size = j->written = j->synced = offset;
    return ASIDE_OK;
}

static aside_status open_files(journal *j, const char *root, aside_error *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/.aside", root);
    snprintf(j->path, sizeof j->path, "%s/" JOURNAL_NAME, root);
    snprintf(j->new_path, sizeof j->new_path, "%s/" JOURNAL_NEW, root);
    unlink(j->new_path); /* a compaction that did not finish */
    j->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->dir_fd < 0 || j->fd < 0)
        return error_set(err, ASIDE_ERR_IO, "cannot open the journal %s: %s", j->path,
                         strerror(errno));
    return ASIDE_OK;
}

aside_status journal_open(const char *root, aside_fsync policy, journal_visit visit, void *ctx,
                          journal **out, aside_error *err)
{
    journal *j = calloc(1, sizeof *j);
    if (!j)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    j->fd = j->dir_fd = -1;
    j->policy = policy;
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->synced_cond, NULL);
    aside_status st = open_files(j, root, err);
    if (st == ASIDE_OK)
        st = replay(j, visit, ctx, err);
    if (st != ASIDE_OK) {
        journal_close(j);
        return st;
    }
    *out = j;
    return ASIDE_OK;
}

void journal_close(journal *j)
{
    if (!j)
        return;
    if (j->fd >= 0) {
        if (j->policy != ASIDE_FSYNC_NEVER)
            fdatasync(j->fd);
        close(j->fd);
    }
    if (j->dir_fd >= 0)
        close(j->dir_fd);
    pthread_cond_destroy(&j->synced_cond);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

/* ---- appends and syncs -------------------------------------------------------------------- */

aside_status journal_append(journal *j, const char *payload, size_t len, uint64_t *position,
                            aside_error *err)
{
    if (len > RECORD_MAX_BYTES)
        return error_set(err, ASIDE_ERR_TOO_LARGE, "a journal record of %zu bytes is more than "
                         "the limit of %d", len, RECORD_MAX_BYTES);
    pthread_mutex_lock(&j->lock);
    aside_status st = write_record(j->fd, payload, len, err);
    if (st == ASIDE_OK) {
        j->size += HEADER_BYTES + len;
        j->written += HEADER_BYTES + len;
        j->records++;
        j->appends++;
    } else if (ftruncate(j->fd, (off_t)j->size) != 0) { /* undo a partial record */
        log_line("error", "journal: cannot undo a partial append: %s", strerror(errno));
    }
    if (position)
        *position = j->written;
    pthread_mutex_unlock(&j->lock);
    return st;
}

/* The answer to a change whose record is in the journal (and the change in memory) but not
 * known to be on the disk. */
static aside_status not_durable(aside_error *err, int error)
{
    error_set(err, ASIDE_ERR_IO, "the change is applied but not yet durable: fdatasync of the "
              "journal failed (%s); the journal is rewritten from memory by the next "
              "compaction", strerror(error));
    if (err)
        snprintf(err->code, sizeof err->code, "not_durable");
    return ASIDE_ERR_IO;
}

/* Sync everything written so far; called with the lock held, drops it during the sync. It
 * syncs the journal's own descriptor, opening none (a sync must work when the process is out
 * of descriptors); a compaction waits for a sync in progress before it closes that
 * descriptor, and then makes everything durable itself. */
static aside_status sync_locked(journal *j, aside_error *err)
{
    uint64_t target = j->written;
    int fd = j->fd;
    j->syncing = true;
    pthread_mutex_unlock(&j->lock);
    int rc = fdatasync(fd);
    int saved = errno;
    pthread_mutex_lock(&j->lock);
    j->syncing = false;
    j->syncs++;
    if (rc == 0 && target > j->synced)
        j->synced = target;
    if (rc != 0 && !j->sync_failed) {
        j->sync_failed = true;
        j->sync_errno = saved;
        log_line("error", "journal: fdatasync failed: %s; changes since the last good sync are "
                 "not durable until the journal is rewritten", strerror(saved));
    }
    pthread_cond_broadcast(&j->synced_cond);
    return rc == 0 ? ASIDE_OK : not_durable(err, saved);
}

aside_status journal_wait(journal *j, uint64_t position, aside_error *err)
{
    if (j->policy != ASIDE_FSYNC_ALWAYS)
        return ASIDE_OK;
    aside_status st = ASIDE_OK;
    pthread_mutex_lock(&j->lock);
    while (st == ASIDE_OK && j->synced < position) {
        if (j->sync_failed)
            st = not_durable(err, j->sync_errno);
        else if (j->syncing)
            pthread_cond_wait(&j->synced_cond, &j->lock);
        else
            st = sync_locked(j, err);
    }
    pthread_mutex_unlock(&j->lock);
    return st;
}

void journal_tick(journal *j)
{
    if (j->policy != ASIDE_FSYNC_EVERYSEC)
        return;
    pthread_mutex_lock(&j->lock);
    if (j->synced < j->written && !j->syncing && !j->sync_failed) {
        aside_error err;
        if (sync_locked(j, &err) != ASIDE_OK)
            log_line("error", "journal: %s", err.message);
    }
    pthread_mutex_unlock(&j->lock);
}

bool journal_needs_rewrite(journal *j)
{
    pthread_mutex_lock(&j->lock);
    bool failed = j->sync_failed;
    pthread_mutex_unlock(&j->lock);
    return failed;
}

void journal_stats(journal *j, uint64_t *bytes, uint64_t *records)
{
    pthread_mutex_lock(&j->lock);
    *bytes = j->size;
    *records = j->records;
    pthread_mutex_unlock(&j->lock);
}

void journal_counters(journal *j, uint64_t *appends, uint64_t *syncs)
{
    pthread_mutex_lock(&j->lock);
    *appends = j->appends;
    *syncs = j->syncs;
    pthread_mutex_unlock(&j->lock);
}

/* ---- compaction --------------------------------------------------------------------------- */

struct journal_rewrite {
    journal *j;
    int      fd;
    uint64_t bytes, records;
    uint64_t mark, mark_records; /* the old journal's size and records when the rewrite began */
};

aside_status journal_rewrite_begin(journal *j, journal_rewrite **out, aside_error *err)
{
    journal_rewrite *w = calloc(1, sizeof *w);
    if (!w)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    w->j = j;
    /* read and write: once swapped in, a later compaction carries over from it */
    w->fd = open(j->new_path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        free(w);
        return error_set(err, ASIDE_ERR_IO, "cannot create %s: %s", j->new_path,
                         strerror(errno));
    }
    pthread_mutex_lock(&j->lock);
    w->mark = j->size;
    w->mark_records = j->records;
    pthread_mutex_unlock(&j->lock);
    *out = w;
    return ASIDE_OK;
}

aside_status journal_rewrite_add(journal_rewrite *w, const char *payload, size_t len,
                                 aside_error *err)
{
    aside_status st = write_record(w->fd, payload, len, err);
    if (st == ASIDE_OK) {
        w->bytes += HEADER_BYTES + len;
        w->records++;
    }
    return st;
}

static void rewrite_abort(journal_rewrite *w)
{
    close(w->fd);
    unlink(w->j->new_path);
    free(w);
}

/* Copy the old journal's bytes from w->mark to its end (whole records: a failed append is cut
 * off) to the end of the new one. Journal lock held. */
static aside_status carry_over(journal_rewrite *w, uint64_t *copied, aside_error *err)
{
    journal *j = w->j;
    char chunk[1 << 16];
    *copied = 0;
    for (uint64_t at = w->mark; at < j->size;) {
        size_t want = j->size - at < sizeof chunk ? (size_t)(j->size - at) : sizeof chunk;
        bool short_read = false;
        if (read_at(j->fd, chunk, want, at, &short_read) != ASIDE_OK || short_read)
            return error_set(err, ASIDE_ERR_IO, "compaction cannot read the journal's tail");
        aside_status st = write_all(w->fd, chunk, want, err);
        if (st != ASIDE_OK)
            return st;
        at += want;
        *copied += want;
    }
    return ASIDE_OK;
}

/* Swap the new journal in, journal lock held: carry the appends made since the beginning
 * over, sync them, rename the new file over the old, sync the folder. */
static aside_status swap_in(journal_rewrite *w, aside_error *err)
{
    journal *j = w->j;
    while (j->syncing) /* its descriptor is closed below; appends go on meanwhile */
        pthread_cond_wait(&j->synced_cond, &j->lock);
    uint64_t copied = 0;
    aside_status st = carry_over(w, &copied, err);
    if (st != ASIDE_OK)
        return st;
    if ((copied && fdatasync(w->fd) != 0) || rename(j->new_path, j->path) != 0 ||
        fsync(j->dir_fd) != 0)
        return error_set(err, ASIDE_ERR_IO, "compaction of the journal failed: %s",
                         strerror(errno));
    close(j->fd);
    j->fd = w->fd; /* opened with O_APPEND: appends go on where the rewrite ended */
    j->size = w->bytes + copied;
    j->synced = j->written; /* the new file, synced, holds every change so far */
    j->sync_failed = false;
    j->records = w->records + (j->records - w->mark_records);
    free(w);
    return ASIDE_OK;
}

aside_status journal_rewrite_end(journal_rewrite *w, bool commit, aside_error *err)
{
    if (!commit) {
        rewrite_abort(w);
        return ASIDE_OK;
    }
    if (fdatasync(w->fd) != 0) { /* the bulk, while appends go on */
        aside_status st = error_set(err, ASIDE_ERR_IO, "compaction of the journal failed: %s",
                                    strerror(errno));
        rewrite_abort(w);
        return st;
    }
    journal *j = w->j;
    pthread_mutex_lock(&j->lock);
    aside_status st = swap_in(w, err);
    pthread_mutex_unlock(&j->lock);
    if (st != ASIDE_OK)
        rewrite_abort(w);
    return st;
}
