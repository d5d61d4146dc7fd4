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
 * The other choice was a buffer per event loop written out once per loop turn: it saves the
 * mutex, but the write would then run on the loop (a slow disk stalls requests) or still need
 * a writer thread, and it needs a hook in every turn. Measured, the mutex and the copy are a
 * small part of a line's cost (bench/request_instructions.py: the log on adds under 5% to a
 * memory hit's instructions; formatting is most of it, hence no printf below).
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

/* Whether target names a file (not "off" nor "stderr"). */
static bool access_log_is_file(const char *target)
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

/* ---- a line ------------------------------------------------------------------------------- *
 *
 * A line is made on the thread that answered the request, for every request when the log is on,
 * so it is built without allocating or printf: into a fixed buffer large enough for the longest
 * line, field names copied as constants, our own values (the time, the id, the method, numbers,
 * the client) as they are, and only the values from outside (the key, the function's and the
 * token's names) scanned for what JSON must escape. */

enum {
    /* every input byte of an escaped field may take 6 ("\u00XX", or "\ufffd" for invalid
     * UTF-8); the rest is field names, numbers and our own short values */
    LINE_MAX_BYTES = 512 + HTTP_REQUEST_ID_MAX + HTTP_CLIENT_MAX +
                     6 * (2 * HTTP_RECORD_NAME_MAX + HTTP_RECORD_KEY_MAX)
};

/* The helpers below write at p and return where they stopped; line_format checks nothing,
 * since LINE_MAX_BYTES holds the longest line. */
#define PUT_LITERAL(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) + sizeof(s) - 1)

static inline uint64_t load8(const char *s)
{
    uint64_t w;
    memcpy(&w, s, sizeof w);
    return w;
}

static inline uint32_t load4(const char *s)
{
    uint32_t w;
    memcpy(&w, s, sizeof w);
    return w;
}

/* Copy len bytes; the short strings a line is made of in two overlapping moves, no call. */
static inline char *put_bytes(char *p, const char *s, size_t len)
{
    if (len > 16 && len <= 32) {
        uint64_t head[2] = {load8(s), load8(s + 8)};
        uint64_t tail[2] = {load8(s + len - 16), load8(s + len - 8)};
        memcpy(p, head, 16);
        memcpy(p + len - 16, tail, 16);
    } else if (len >= 8 && len <= 16) {
        uint64_t head = load8(s), tail = load8(s + len - 8);
        memcpy(p, &head, 8);
        memcpy(p + len - 8, &tail, 8);
    } else if (len >= 4 && len < 8) {
        uint32_t head = load4(s), tail = load4(s + len - 4);
        memcpy(p, &head, 4);
        memcpy(p + len - 4, &tail, 4);
    } else if (len < 4) {
        for (size_t i = 0; i < len; i++)
            p[i] = s[i];
    } else {
        memcpy(p, s, len);
    }
    return p + len;
}

/* Decimal, two digits at a time. */
static inline char *put_u64(char *p, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "93949596979899";
    char digits[20];
    size_t at = sizeof digits;
    while (v >= 100) {
        at -= 2;
        memcpy(digits + at, pairs + (v % 100) * 2, 2);
        v /= 100;
    }
    if (v >= 10) {
        at -= 2;
        memcpy(digits + at, pairs + v * 2, 2);
    } else {
        digits[--at] = (char)('0' + v);
    }
    while (at < sizeof digits) /* a few digits: a loop costs less than a call */
        *p++ = digits[at++];
    return p;
}

/* "2026-12-07T07:00:00.123Z": the seconds' text is made once per second per thread. */
static inline char *put_time(char *p, int64_t unix_ms)
{
    static _Thread_local struct {
        time_t sec;
        char   text[20]; /* YYYY-MM-DDTHH:MM:SS */
    } cached = {-1, ""};
    time_t sec = (time_t)(unix_ms / 1000);
    if (sec != cached.sec) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(cached.text, sizeof cached.text, "%Y-%m-%dT%H:%M:%S", &tm);
        cached.sec = sec;
    }
    unsigned ms = (unsigned)(unix_ms % 1000);
    *p++ = '"';
    p = put_bytes(p, cached.text, sizeof cached.text - 1);
    p[0] = '.';
    p[1] = (char)('0' + ms / 100);
    p[2] = (char)('0' + ms / 10 % 10);
    p[3] = (char)('0' + ms % 10);
    p[4] = 'Z';
    p[5] = '"';
    return p + 6;
}

/* A short static string of ours (no byte JSON escapes), or null when NULL. */
static inline char *put_word(char *p, const char *s)
{
    if (!s)
        return PUT_LITERAL(p, "null");
    *p++ = '"';
    while (*s)
        *p++ = *s++;
    *p++ = '"';
    return p;
}

/* A string of ours (no byte JSON escapes), or null when empty. */
static inline char *put_ours(char *p, const char *s, size_t len)
{
    if (!s || !len)
        return PUT_LITERAL(p, "null");
    *p++ = '"';
    p = put_bytes(p, s, len);
    *p++ = '"';
    return p;
}

/* Whether every byte of w is printable ASCII but '"' and '\\' (what JSON takes as it is),
 * eight bytes at a time: each test leaves a byte's high bit set when some byte fails it (the
 * classic has-zero, has-less and has-more tricks; exact as to whether any byte fails). */
static inline bool plain8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t below = (w - ones * 0x20) & ~w;      /* a byte under 0x20 */
    uint64_t above = (w + ones) | w;              /* a byte of 0x7f or more */
    uint64_t is_quote = (quote - ones) & ~quote;  /* a byte equal to '"' */
    uint64_t is_backslash = (backslash - ones) & ~backslash;
    return !((below | above | is_quote | is_backslash) & highs);
}

/* Whether s is plain, in words of eight bytes (the last one overlapping the one before). */
static inline bool all_plain(const char *s, size_t len)
{
    if (len >= 8) {
        bool plain = plain8(load8(s + len - 8));
        for (size_t i = 0; i + 8 < len; i += 8)
            plain &= plain8(load8(s + i));
        return plain;
    }
    uint64_t w = 0x2020202020202020ull; /* spaces, which are plain, where s has no byte */
    if (len >= 4)
        w = (uint64_t)load4(s + len - 4) << 32 | load4(s);
    else
        for (size_t i = 0; i < len; i++)
            w = w << 8 | (unsigned char)s[i];
    return plain8(w);
}

/* s escaped by util's escaper (the rare case: put_outside). */
static __attribute__((noinline)) char *put_escaped(char *p, const char *s, size_t len)
{
    buf escaped;
    buf_init(&escaped);
    buf_put_json_string(&escaped, s, len);
    p = !escaped.failed && escaped.len <= 6 * len + 2 ? put_bytes(p, escaped.data, escaped.len)
                                                      : PUT_LITERAL(p, "null");
    buf_free(&escaped);
    return p;
}

/* A string from outside, JSON-escaped (invalid UTF-8 as U+FFFD), or null when empty: copied
 * as it is when every byte is plain, else through util's escaper. */
static inline char *put_outside(char *p, const char *s, size_t len)
{
    if (!len)
        return PUT_LITERAL(p, "null");
    return all_plain(s, len) ? put_ours(p, s, len) : put_escaped(p, s, len);
}

/* An HTTP status: three digits (anything else as a number). */
static inline char *put_status(char *p, int status)
{
    if (status < 100 || status > 999)
        return put_u64(p, status > 0 ? (uint64_t)status : 0);
    p[0] = (char)('0' + status / 100);
    p[1] = (char)('0' + status / 10 % 10);
    p[2] = (char)('0' + status % 10);
    return p + 3;
}

/* Write r's line, newline included, at text (LINE_MAX_BYTES of room); its length. */
static size_t format(const http_record *r, int64_t unix_ms, char *text)
{
    char *p = text;
    p = PUT_LITERAL(p, "{\"time\":");
    p = put_time(p, unix_ms);
    p = PUT_LITERAL(p, ",\"request_id\":");
    p = put_ours(p, r->request_id, r->request_id_len); /* ours, or checked by http.c */
    p = PUT_LITERAL(p, ",\"method\":");
    p = put_word(p, r->method);
    p = PUT_LITERAL(p, ",\"function\":");
    p = put_outside(p, r->function, r->function_len);
    p = PUT_LITERAL(p, ",\"key\":");
    p = put_outside(p, r->key, r->key_len);
    p = PUT_LITERAL(p, ",\"status\":");
    p = put_status(p, r->status);
    p = PUT_LITERAL(p, ",\"bytes\":");
    p = put_u64(p, r->bytes_sent);
    p = PUT_LITERAL(p, ",\"source\":");
    p = put_word(p, r->source);
    p = PUT_LITERAL(p, ",\"duration_us\":");
    p = put_u64(p, r->duration_us > 0 ? (uint64_t)r->duration_us : 0);
    p = PUT_LITERAL(p, ",\"client\":");
    p = put_ours(p, r->client, r->client ? strlen(r->client) : 0);
    p = PUT_LITERAL(p, ",\"token\":");
    p = put_outside(p, r->token_name, r->token_name_len);
    p = PUT_LITERAL(p, "}\n");
    return (size_t)(p - text);
}

/* ---- the queue ---------------------------------------------------------------------------- */

static void queue_line(const char *text, size_t len)
{
    pthread_mutex_lock(&q.lock);
    if (len > QUEUE_BYTES - q.pending_len) {
        q.dropped++;
        pthread_mutex_unlock(&q.lock);
        return;
    }
    size_t before = q.pending_len;
    memcpy(q.pending + before, text, len);
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
    char text[LINE_MAX_BYTES];
    size_t len = format(r, clock_unix_ms(), text);
    if (slow)
        fprintf(stderr, "aside: warn: slow request (over ASIDE_SLOW_MS, %lld ms): %.*s",
                (long long)(q.slow_us / 1000), (int)len, text);
    if (on)
        queue_line(text, len);
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
