/* access_log.c -- the access log: one JSON line per request, and the slow-request warning.
 *
 * The threads that answer requests (the event loops) must never wait for the log's disk, and
 * the log must never hold more memory than it was given. So the writing is a thread of its
 * own behind a bounded queue, and the decision is this:
 *
 *   - access_log_request formats the line on the answering thread (into a buffer of its own:
 *     no lock held) and copies it into the queue, a buffer of QUEUE_BYTES, under a mutex held
 *     only for that copy. A line that does not fit is dropped and counted: the request path
 *     never blocks and the queue never grows.
 *   - The writer sleeps until the queue has a line, then waits up to FLUSH_INTERVAL_MS more
 *     for others to join it (or until the queue is half full), swaps the queue with a second
 *     buffer of the same size, and writes that with write(2), outside the lock. So a line
 *     reaches the file within about FLUSH_INTERVAL_MS, the writer wakes at most a few times a
 *     second under load, and a slow or full disk only ever delays the writer.
 *   - A write that fails (a full disk, a quota, a broken pipe) loses its batch: the lines are
 *     counted, never retried, and the server goes on serving.
 *   - Drops and losses are reported in the server's log as warnings, at most once every
 *     REPORT_INTERVAL_MS (and once more at stop), with their counts.
 *
 * Reopening (SIGUSR1, for logrotate's rename-then-signal) is the writer's too, between two
 * batches: what was queued before goes to the old file, whole lines only, then the file is
 * opened again at its path and the old one closed. A file that cannot be opened keeps the old
 * one in use. To stderr, batches are cut at line ends into writes of at most PIPE_BUF bytes,
 * so that lines of the server's own log never land inside one.
 *
 * The slow-request warning does not use the queue: it is rare by design, goes to the server's
 * log (stderr) like every other warning, and is written even when the access log is off.
 *
 * Nothing in a line is trusted to be printable: the key, the function's and the token's names
 * are JSON-escaped (invalid UTF-8 as U+FFFD) and bounded by http.h (HTTP_RECORD_*_MAX); the
 * request id is either ours or passed the HTTP layer's check (token characters only). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"

enum {
    QUEUE_BYTES = 2 << 20,     /* lines waiting for the writer; one as large is being written */
    FLUSH_INTERVAL_MS = 100,   /* a line waits this long at most for others to join its write */
    REPORT_INTERVAL_MS = 10000, /* drops and write failures are reported at most this often */
    LINE_INITIAL_BYTES = 512,  /* a typical line fits: one allocation */
    FILE_MODE = 0640
};

static struct {
    atomic_bool     on;      /* lines are queued */
    int64_t         slow_us; /* 0: no slow-request warning */
    const char     *path;    /* NULL: stderr */
    int             fd;      /* the writer's, once started */
    pthread_t       writer;
    pthread_mutex_t lock;
    pthread_cond_t  wake;
    /* under lock */
    char           *pending;
    size_t          pending_len;
    uint64_t        dropped; /* lines that did not fit in the queue since the last report */
    bool            reopen, stopping;
    /* the writer's own */
    char           *spare;
    uint64_t        lost;    /* lines in writes that failed since the last report */
    int             write_errno;
    int64_t         reported_ms;
} q = {.fd = -1};

bool access_log_is_file(const char *target)
{
    return target && strcmp(target, "off") != 0 && strcmp(target, "stderr") != 0;
}

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, FILE_MODE);
}

aside_status access_log_check(const char *target, aside_error *err)
{
    if (!access_log_is_file(target))
        return ASIDE_OK;
    int fd = open_file(target);
    if (fd < 0)
        return error_set(err, ASIDE_ERR_INVALID, "cannot open %s for appending: %s", target,
                         strerror(errno));
    close(fd);
    return ASIDE_OK;
}

/* ---- a line ------------------------------------------------------------------------------- */

/* "2026-12-07T07:00:00.123Z": the seconds' text is made once per second per thread. */
static void put_time(buf *b, int64_t unix_ms)
{
    static _Thread_local struct {
        time_t sec;
        char   text[32];
    } cached = {-1, ""};
    time_t sec = (time_t)(unix_ms / 1000);
    if (sec != cached.sec) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(cached.text, sizeof cached.text, "%Y-%m-%dT%H:%M:%S", &tm);
        cached.sec = sec;
    }
    int ms = (int)(unix_ms % 1000);
    char frac[8] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10),
                    (char)('0' + ms % 10), 'Z', '"', '\0'};
    buf_putc(b, '"');
    buf_puts(b, cached.text);
    buf_puts(b, frac);
}

/* A JSON string, or null when text is NULL or empty. */
static void put_text(buf *b, const char *text, size_t len)
{
    if (text && len)
        buf_put_json_string(b, text, len);
    else
        buf_puts(b, "null");
}

static void put_name(buf *b, const char *field, const char *text)
{
    buf_puts(b, field);
    put_text(b, text, text ? strlen(text) : 0);
}

void access_log_format(const http_record *r, int64_t unix_ms, buf *b)
{
    buf_puts(b, "{\"time\":");
    put_time(b, unix_ms);
    put_name(b, ",\"request_id\":", r->request_id);
    put_name(b, ",\"method\":", r->method);
    put_name(b, ",\"function\":", r->function);
    buf_puts(b, ",\"key\":");
    put_text(b, r->key, r->key_len);
    buf_puts(b, ",\"status\":");
    buf_put_u64(b, r->status > 0 ? (uint64_t)r->status : 0);
    buf_puts(b, ",\"bytes\":");
    buf_put_u64(b, r->bytes_sent);
    put_name(b, ",\"source\":", r->source);
    buf_puts(b, ",\"duration_us\":");
    buf_put_u64(b, r->duration_us > 0 ? (uint64_t)r->duration_us : 0);
    put_name(b, ",\"client\":", r->client);
    put_name(b, ",\"token\":", r->token_name);
    buf_putc(b, '}');
}

/* ---- the queue ---------------------------------------------------------------------------- */

static void queue_line(const char *line, size_t len)
{
    pthread_mutex_lock(&q.lock);
    if (len > QUEUE_BYTES - q.pending_len) {
        q.dropped++;
        pthread_mutex_unlock(&q.lock);
        return;
    }
    size_t before = q.pending_len;
    memcpy(q.pending + before, line, len);
    q.pending_len += len;
    /* the writer sleeps until a first line, then naps; half full, it must not nap */
    bool wake = before == 0 || (before < QUEUE_BYTES / 2 && q.pending_len >= QUEUE_BYTES / 2);
    pthread_mutex_unlock(&q.lock);
    if (wake)
        pthread_cond_signal(&q.wake);
}

void access_log_request(const http_record *r)
{
    bool slow = q.slow_us && r->duration_us >= q.slow_us;
    bool on = atomic_load_explicit(&q.on, memory_order_relaxed);
    if (!on && !slow)
        return;
    buf line;
    buf_init(&line);
    buf_reserve(&line, LINE_INITIAL_BYTES);
    access_log_format(r, clock_unix_ms(), &line);
    if (slow && !line.failed)
        fprintf(stderr, "aside: warn: slow request (over ASIDE_SLOW_MS, %lld ms): %s\n",
                (long long)(q.slow_us / 1000), line.data);
    buf_putc(&line, '\n');
    if (on && !line.failed)
        queue_line(line.data, line.len);
    else if (on) { /* out of memory for the line: counted as a drop */
        pthread_mutex_lock(&q.lock);
        q.dropped++;
        pthread_mutex_unlock(&q.lock);
    }
    buf_free(&line);
}

/* ---- the writer --------------------------------------------------------------------------- */

static uint64_t count_lines(const char *data, size_t len)
{
    uint64_t n = 0;
    for (const char *p = data; (p = memchr(p, '\n', len - (size_t)(p - data))); p++)
        n++;
    return n;
}

/* Write a batch of whole lines; to stderr in writes of whole lines up to PIPE_BUF bytes. */
static void write_batch(const char *data, size_t len)
{
    size_t most = q.path ? len : PIPE_BUF;
    while (len) {
        size_t n = len;
        if (n > most) {
            const char *end = memrchr(data, '\n', most);
            n = end ? (size_t)(end - data) + 1 : most;
        }
        ssize_t w = write(q.fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            q.write_errno = w < 0 ? errno : EIO;
            q.lost += count_lines(data, len) + (data[len - 1] != '\n');
            return;
        }
        data += w;
        len -= (size_t)w;
    }
}

/* Report drops and losses, at most every REPORT_INTERVAL_MS unless final. */
static void report(uint64_t dropped, bool final)
{
    static uint64_t dropped_total;
    dropped_total += dropped;
    int64_t now = clock_mono_ns() / 1000000;
    if ((!dropped_total && !q.lost) || (!final && now - q.reported_ms < REPORT_INTERVAL_MS))
        return;
    q.reported_ms = now;
    if (dropped_total)
        log_line("warn", "access log: %llu lines dropped: the queue (%d MiB) was full, the "
                 "log's file is slower than the requests", (unsigned long long)dropped_total,
                 QUEUE_BYTES >> 20);
    if (q.lost)
        log_line("warn", "access log: cannot write to %s: %s; %llu lines lost",
                 q.path ? q.path : "stderr", strerror(q.write_errno),
                 (unsigned long long)q.lost);
    dropped_total = 0;
    q.lost = 0;
}

static void reopen_file(void)
{
    int fd = open_file(q.path);
    if (fd < 0) {
        log_line("error", "access log: cannot reopen %s: %s; still writing to the file open "
                 "before", q.path, strerror(errno));
        return;
    }
    close(q.fd);
    q.fd = fd;
    log_line("info", "access log: reopened %s", q.path);
}

static void *writer_run(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&q.lock);
    for (;;) {
        while (!q.pending_len && !q.reopen && !q.stopping)
            pthread_cond_wait(&q.wake, &q.lock);
        if (!q.reopen && !q.stopping && q.pending_len < QUEUE_BYTES / 2) {
            struct timespec until = clock_mono_after_ms(FLUSH_INTERVAL_MS);
            pthread_cond_timedwait(&q.wake, &q.lock, &until);
        }
        char *batch = q.pending;
        size_t len = q.pending_len;
        q.pending = q.spare;
        q.pending_len = 0;
        q.spare = batch;
        uint64_t dropped = q.dropped;
        q.dropped = 0;
        bool reopen = q.reopen, stop = q.stopping;
        q.reopen = false;
        pthread_mutex_unlock(&q.lock);
        if (len)
            write_batch(batch, len);
        report(dropped, stop);
        if (reopen && q.path)
            reopen_file();
        pthread_mutex_lock(&q.lock);
        if (stop && !q.pending_len)
            break;
    }
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

aside_status access_log_start(const access_log_config *cfg, aside_error *err)
{
    q.slow_us = cfg->slow_ms > 0 ? (int64_t)cfg->slow_ms * 1000 : 0;
    if (!cfg->target || strcmp(cfg->target, "off") == 0)
        return ASIDE_OK;
    q.path = access_log_is_file(cfg->target) ? cfg->target : NULL;
    q.fd = q.path ? open_file(q.path) : STDERR_FILENO;
    if (q.fd < 0)
        return error_set(err, ASIDE_ERR_IO, "ASIDE_ACCESS_LOG: cannot open %s for appending: %s",
                         q.path, strerror(errno));
    q.pending = malloc(QUEUE_BYTES);
    q.spare = malloc(QUEUE_BYTES);
    pthread_mutex_init(&q.lock, NULL);
    cond_init_monotonic(&q.wake);
    if (!q.pending || !q.spare || pthread_create(&q.writer, NULL, writer_run, NULL) != 0) {
        free(q.pending);
        free(q.spare);
        q.pending = q.spare = NULL;
        if (q.path)
            close(q.fd);
        q.fd = -1;
        pthread_cond_destroy(&q.wake);
        pthread_mutex_destroy(&q.lock);
        return error_set(err, ASIDE_ERR_NOMEM, "ASIDE_ACCESS_LOG: cannot start its writer");
    }
    atomic_store(&q.on, true);
    return ASIDE_OK;
}

void access_log_reopen(void)
{
    if (!atomic_load(&q.on) || !q.path)
        return;
    pthread_mutex_lock(&q.lock);
    q.reopen = true;
    pthread_mutex_unlock(&q.lock);
    pthread_cond_signal(&q.wake);
}

void access_log_stop(void)
{
    if (!atomic_exchange(&q.on, false))
        return;
    pthread_mutex_lock(&q.lock);
    q.stopping = true;
    pthread_mutex_unlock(&q.lock);
    pthread_cond_signal(&q.wake);
    pthread_join(q.writer, NULL);
    if (q.path)
        close(q.fd);
    q.fd = -1;
    free(q.pending);
    free(q.spare);
    q.pending = q.spare = NULL;
    q.pending_len = 0;
    q.stopping = false;
    pthread_cond_destroy(&q.wake);
    pthread_mutex_destroy(&q.lock);
}
