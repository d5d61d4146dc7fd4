/* function_pool.c -- users' Python functions: the worker processes that run them and the
 * folder that holds them (the API's side, calls and function_create & co., is functions.c).
 *
 * aside never runs user code in its own process. A function is a file NAME.py in the function
 * folder holding `def main(cache, **kwargs)`; a call goes to one of a pool of Python worker
 * processes (`python -m aside.worker`, from the aside package), each serving one call at a
 * time over a socket pair, and sees the cache only through the HTTP API, as any client does
 * (frames by shared memory). Workers are started on the first call that needs one, up to the
 * configured number, with RLIMIT_AS set before exec.
 *
 * The protocol (framing.md in the package documents the Python side): every message is a
 * 4-byte big-endian length, that many bytes of a JSON header, then, if the header says
 * "payload_bytes": n, n raw bytes. Requests: {"op": "call", "id", "function", "args", "text"},
 * {"op": "check", "id", "source"}, {"op": "describe", "id"}, {"op": "stats", "id"}. Replies
 * echo the id: {"ok": true, "kind": "json"|"frame"|"bytes", "value" | "payload_bytes"} or
 * {"ok": false, "error": {"status", "type", "message", "traceback"}}.
 *
 * Supervision: a call has a deadline. A worker that does not answer in time is killed (SIGKILL)
 * and its slot refilled on the next call; the caller gets 504. A worker that dies (a crash, a
 * segfaulting extension, os.abort) is reaped and replaced; the caller gets 500 naming the
 * signal. Other calls never notice: each worker serves one caller, and the server's threads
 * only ever wait on a socket with a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "function_pool.h"
#include "util/util.h"

extern char **environ;

enum {
    WORKER_FD = 3,                       /* where a worker finds its socket */
    MAX_HEADER_BYTES = 64 << 20,         /* a reply's JSON header */
    MAX_PAYLOAD_BYTES = 1 << 30,         /* a reply's frame or bytes */
    HEADER_LENGTH_BYTES = 4
};

typedef struct worker {
    pid_t   pid; /* 0: the slot is empty */
    int     fd;
    bool    busy;
    json_t *stats; /* its memoisation figures as of its last call, or NULL */
} worker;

struct function_pool {
    pthread_mutex_t      lock;
    pthread_cond_t       freed;
    worker              *workers;
    function_pool_config cfg;
    char                 url[512];
    uint64_t             next_id;
    function_pool_stats  stats;
};

/* ---- the pool --------------------------------------------------------------------------- */

function_pool *function_pool_create(const function_pool_config *cfg)
{
    function_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfg = *cfg;
    p->workers = calloc(cfg->workers ? cfg->workers : 1, sizeof *p->workers);
    if (!p->workers) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    return p;
}

void function_pool_set_url(function_pool *p, const char *url)
{
    pthread_mutex_lock(&p->lock);
    snprintf(p->url, sizeof p->url, "%s", url);
    pthread_mutex_unlock(&p->lock);
}

static void worker_stop(worker *w)
{
    json_decref(w->stats);
    w->stats = NULL;
    if (!w->pid)
        return;
    close(w->fd);
    kill(w->pid, SIGKILL);
    waitpid(w->pid, NULL, 0);
    w->pid = 0;
}

void function_pool_destroy(function_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        if (p->workers[i].pid) { /* EOF on its socket ends a worker; then make sure */
            close(p->workers[i].fd);
            p->workers[i].fd = -1;
            kill(p->workers[i].pid, SIGTERM);
            waitpid(p->workers[i].pid, NULL, 0);
        }
        json_decref(p->workers[i].stats);
    }
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p->workers);
    free(p);
}

void function_pool_get_stats(function_pool *p, function_pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    out->workers = 0;
    for (unsigned i = 0; i < p->cfg.workers; i++)
        out->workers += p->workers[i].pid != 0;
    pthread_mutex_unlock(&p->lock);
}

/* The environment of a worker: ours, and where the cache and the functions are. */
static char **worker_env(const function_pool *p, buf *storage)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 4, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "ASIDE_URL=", 10) && strncmp(environ[i], "ASIDE_TOKEN=", 12) &&
            strncmp(environ[i], "ASIDE_FUNCTION_DIR=", 19))
            env[k++] = environ[i];
    }
    size_t at[3];
    at[0] = storage->len;
    buf_printf(storage, "ASIDE_URL=%s%c", p->url, '\0');
    at[1] = storage->len;
    buf_printf(storage, "ASIDE_FUNCTION_DIR=%s%c", p->cfg.dir, '\0');
    at[2] = storage->len;
    if (p->cfg.token)
        buf_printf(storage, "ASIDE_TOKEN=%s%c", p->cfg.token, '\0');
    if (storage->failed) {
        free(env);
        return NULL;
    }
    env[k++] = storage->data + at[0];
    env[k++] = storage->data + at[1];
    if (p->cfg.token)
        env[k++] = storage->data + at[2];
    return env;
}

/* Start a worker in slot w (under the lock). Between fork and exec the child only calls
 * async-signal-safe functions. */
static aside_status worker_start(function_pool *p, worker *w, aside_error *err)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot make a socket pair: %s",
                         strerror(errno));
    buf storage = {0};
    char **env = worker_env(p, &storage);
    char *const argv[] = {(char *)p->cfg.python, "-m", "aside.worker", NULL};
    struct rlimit memory = {p->cfg.memory_limit_bytes, p->cfg.memory_limit_bytes};
    pid_t pid = env ? fork() : -1;
    if (pid == 0) {
        if (dup2(pair[1], WORKER_FD) < 0)
            _exit(127);
        if (p->cfg.memory_limit_bytes)
            setrlimit(RLIMIT_AS, &memory);
        setpgid(0, 0); /* signals to the server's group do not reach workers */
        execve(p->cfg.python, argv, env);
        execvpe(p->cfg.python, argv, env);
        _exit(127);
    }
    free(env);
    buf_free(&storage);
    close(pair[1]);
    if (pid < 0) {
        close(pair[0]);
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot start a function worker: %s",
                         strerror(errno));
    }
    w->pid = pid;
    w->fd = pair[0];
    w->busy = false;
    p->stats.started++;
    return ASIDE_OK;
}

static int64_t now_ms(void) { return clock_mono_ns() / 1000000; }

/* An idle worker, marked busy, waiting until deadline_ms for one. */
static worker *acquire(function_pool *p, int64_t deadline_ms, aside_error *err)
{
    pthread_mutex_lock(&p->lock);
    worker *got = NULL;
    while (!got) {
        for (unsigned i = 0; i < p->cfg.workers && !got; i++) {
            worker *w = &p->workers[i];
            if (!w->busy && (w->pid || worker_start(p, w, err) == ASIDE_OK))
                got = w;
            else if (!w->busy && !w->pid)
                break; /* cannot start one: err says why */
        }
        if (got || (err && err->status != ASIDE_OK))
            break;
        int64_t left = deadline_ms - now_ms();
        if (left <= 0) {
            error_set(err, ASIDE_ERR_TIMEOUT, "every function worker stayed busy");
            break;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += left / 1000;
        until.tv_nsec += (left % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->freed, &p->lock, &until);
    }
    if (got)
        got->busy = true;
    pthread_mutex_unlock(&p->lock);
    return got;
}

static void release(function_pool *p, worker *w)
{
    pthread_mutex_lock(&p->lock);
    w->busy = false;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

/* ---- talking to a worker ---------------------------------------------------------------- */

typedef enum io_result { IO_OK, IO_TIMEOUT, IO_CLOSED } io_result;

static io_result wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - now_ms();
        if (left <= 0)
            return IO_TIMEOUT;
        struct pollfd pfd = {fd, events, 0};
        int n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n > 0)
            return (pfd.revents & (events | POLLHUP)) ? IO_OK : IO_CLOSED;
        if (n < 0 && errno != EINTR)
            return IO_CLOSED;
    }
}

static io_result send_all(int fd, const void *data, size_t len, int64_t deadline_ms)
{
    const char *at = data;
    while (len) {
        ssize_t n = send(fd, at, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            at += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            io_result r = wait_fd(fd, POLLOUT, deadline_ms);
            if (r != IO_OK)
                return r;
        } else {
            return IO_CLOSED;
        }
    }
    return IO_OK;
}

static io_result recv_all(int fd, void *data, size_t len, int64_t deadline_ms)
{
    char *at = data;
    while (len) {
        ssize_t n = recv(fd, at, len, MSG_DONTWAIT);
        if (n > 0) {
            at += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            io_result r = wait_fd(fd, POLLIN, deadline_ms);
            if (r != IO_OK)
                return r;
        } else {
            return IO_CLOSED;
        }
    }
    return IO_OK;
}

static io_result send_message(int fd, json_t *header, int64_t deadline_ms)
{
    char *text = json_dumps(header, JSON_COMPACT);
    if (!text)
        return IO_CLOSED;
    size_t len = strlen(text);
    unsigned char prefix[HEADER_LENGTH_BYTES] = {(unsigned char)(len >> 24),
                                                 (unsigned char)(len >> 16),
                                                 (unsigned char)(len >> 8), (unsigned char)len};
    io_result r = send_all(fd, prefix, sizeof prefix, deadline_ms);
    if (r == IO_OK)
        r = send_all(fd, text, len, deadline_ms);
    free(text);
    return r;
}

/* Read one reply: its header and payload. IO_CLOSED also for a malformed reply. */
static io_result recv_message(int fd, function_reply *out, int64_t deadline_ms)
{
    unsigned char prefix[HEADER_LENGTH_BYTES];
    io_result r = recv_all(fd, prefix, sizeof prefix, deadline_ms);
    if (r != IO_OK)
        return r;
    size_t len = (size_t)prefix[0] << 24 | (size_t)prefix[1] << 16 | (size_t)prefix[2] << 8 |
                 prefix[3];
    char *text = len <= MAX_HEADER_BYTES ? malloc(len + 1) : NULL;
    if (!text)
        return IO_CLOSED;
    r = recv_all(fd, text, len, deadline_ms);
    text[r == IO_OK ? len : 0] = '\0';
    out->header = r == IO_OK ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    if (r != IO_OK || !json_is_object(out->header))
        return r != IO_OK ? r : IO_CLOSED;
    json_int_t n = json_integer_value(json_object_get(out->header, "payload_bytes"));
    if (n < 0 || n > MAX_PAYLOAD_BYTES)
        return IO_CLOSED;
    out->payload_bytes = (size_t)n;
    if (n == 0)
        return IO_OK;
    if (!(out->payload = malloc((size_t)n)))
        return IO_CLOSED;
    return recv_all(fd, out->payload, (size_t)n, deadline_ms);
}

void function_reply_clear(function_reply *r)
{
    json_decref(r->header);
    free(r->payload);
    memset(r, 0, sizeof *r);
}

/* What became of a worker that closed its socket. */
static void describe_death(pid_t pid, aside_error *err)
{
    int status = 0;
    pid_t done = waitpid(pid, &status, 0);
    if (done == pid && WIFSIGNALED(status))
        error_set(err, ASIDE_ERR_INTERNAL, "the function's worker died: %s (signal %d)",
                  strsignal(WTERMSIG(status)), WTERMSIG(status));
    else if (done == pid && WIFEXITED(status))
        error_set(err, ASIDE_ERR_INTERNAL, "the function's worker exited with status %d",
                  WEXITSTATUS(status));
    else
        error_set(err, ASIDE_ERR_INTERNAL, "the function's worker stopped answering");
}

aside_status function_pool_request(function_pool *p, json_t *request, unsigned timeout_ms,
                                   function_reply *out, aside_error *err)
{
    memset(out, 0, sizeof *out);
    if (!timeout_ms || timeout_ms > p->cfg.max_timeout_ms)
        timeout_ms = p->cfg.max_timeout_ms;
    int64_t deadline_ms = now_ms() + timeout_ms;
    if (err)
        err->status = ASIDE_OK;
    worker *w = acquire(p, deadline_ms, err);
    if (!w)
        return err ? err->status : ASIDE_ERR_INTERNAL;
    pthread_mutex_lock(&p->lock);
    json_object_set_new(request, "id", json_integer((json_int_t)++p->next_id));
    p->stats.requests++;
    pthread_mutex_unlock(&p->lock);
    io_result r = send_message(w->fd, request, deadline_ms);
    if (r == IO_OK)
        r = recv_message(w->fd, out, deadline_ms);
    aside_status st = ASIDE_OK;
    if (r != IO_OK) {
        function_reply_clear(out);
        pthread_mutex_lock(&p->lock);
        if (r == IO_TIMEOUT) {
            p->stats.timeouts++;
            error_set(err, ASIDE_ERR_TIMEOUT, "the function ran longer than %u ms: its worker "
                      "was stopped", timeout_ms);
            worker_stop(w);
        } else {
            p->stats.crashes++;
            close(w->fd);
            describe_death(w->pid, err);
            w->pid = 0;
            json_decref(w->stats);
            w->stats = NULL;
        }
        pthread_mutex_unlock(&p->lock);
        st = err ? err->status : ASIDE_ERR_INTERNAL;
    }
    json_t *stats = st == ASIDE_OK ? json_object_get(out->header, "stats") : NULL;
    if (json_is_object(stats)) {
        pthread_mutex_lock(&p->lock);
        json_decref(w->stats);
        w->stats = json_incref(stats);
        pthread_mutex_unlock(&p->lock);
    }
    release(p, w);
    return st;
}

/* Add the counters of each name in from (an object of objects of numbers) into into. */
static void add_counters(json_t *into, json_t *from)
{
    const char *name;
    json_t *figures;
    json_object_foreach(from, name, figures) {
        json_t *sum = json_object_get(into, name);
        if (!sum)
            json_object_set_new(into, name, sum = json_object());
        const char *what;
        json_t *n;
        json_object_foreach(figures, what, n) {
            json_int_t before = json_integer_value(json_object_get(sum, what));
            json_object_set_new(sum, what, json_integer(before + json_integer_value(n)));
        }
    }
}

json_t *function_pool_memo_stats(function_pool *p)
{
    json_t *lru = json_object(), *results = json_object();
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        if (!p->workers[i].stats)
            continue;
        add_counters(lru, json_object_get(p->workers[i].stats, "functions"));
        add_counters(results, json_object_get(p->workers[i].stats, "results"));
    }
    pthread_mutex_unlock(&p->lock);
    return json_pack("{s:o, s:o}", "lru", lru, "results", results);
}

const function_pool_config *function_pool_config_of(const function_pool *p) { return &p->cfg; }

/* ---- the function folder ---------------------------------------------------------------- */

void function_pool_path(const function_pool *p, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s.py", p->cfg.dir, name);
}

aside_status function_pool_save(function_pool *p, const char *name, const char *source,
                                size_t len, aside_error *err)
{
    char path[4096], tmp[4096];
    function_pool_path(p, name, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s/.%s.py.XXXXXX", p->cfg.dir, name);
    mkdir(p->cfg.dir, 0755);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return error_set(err, ASIDE_ERR_IO, "cannot write in the function folder: %s",
                         strerror(errno));
    bool ok = fchmod(fd, 0644) == 0 && write(fd, source, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return error_set(err, ASIDE_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    return ASIDE_OK;
}

aside_status function_pool_read_remote(function_pool *p, aside_cache *cache, const char *name,
                                       const aside_read_options *options, char **source,
                                       size_t *len, aside_error *err)
{
    char key[1200];
    snprintf(key, sizeof key, "%s/%s.py", p->cfg.remote_dir, name);
    aside_read_options o = options ? *options : (aside_read_options){0};
    o.type = "bytes";
    o.memory_only = false;
    aside_value *v = NULL;
    aside_status st = aside_update(cache, key, &o, &v, NULL, err);
    if (st != ASIDE_OK)
        return st;
    const char *data = aside_value_data(v);
    *len = (size_t)aside_value_size(v);
    *source = data ? strndup(data, *len) : NULL;
    aside_value_release(v);
    if (!data)
        return error_set(err, ASIDE_ERR_TOO_LARGE, "a function file must fit in memory");
    return *source ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}

/* Why a worker refused a source: its error's type and message, as one line. */
static aside_status refusal(json_t *error, aside_error *err)
{
    const char *type = json_string_value(json_object_get(error, "type"));
    const char *message = json_string_value(json_object_get(error, "message"));
    return error_set(err, ASIDE_ERR_INVALID, "%s%s%s", type ? type : "", type ? ": " : "",
                     message ? message : "the function does not compile");
}

aside_status function_pool_register(function_pool *p, aside_cache *cache, const char *name,
                                    const aside_read_options *options,
                                    bool (*is_reserved)(const char *name), aside_error *err)
{
    if (!name || !text_is_identifier(name))
        return error_set(err, ASIDE_ERR_INVALID, "a function's name must be a Python "
                         "identifier");
    if (is_reserved && is_reserved(name))
        return error_set(err, ASIDE_ERR_CONFLICT, "%s is one of the server's own functions",
                         name);
    char *source = NULL;
    size_t len = 0;
    aside_status st = function_pool_read_remote(p, cache, name, options, &source, &len, err);
    json_t *request = st == ASIDE_OK ? json_pack("{s:s, s:s%}", "op", "check", "source",
                                                 source, len) : NULL;
    function_reply r = {0};
    if (st == ASIDE_OK && !request)
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (request)
        st = function_pool_request(p, request, 0, &r, err);
    if (st == ASIDE_OK && !json_is_true(json_object_get(r.header, "ok")))
        st = refusal(json_object_get(r.header, "error"), err);
    if (st == ASIDE_OK)
        st = function_pool_save(p, name, source, len, err);
    json_decref(request);
    function_reply_clear(&r);
    free(source);
    return st;
}
