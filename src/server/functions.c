/* functions.c -- users' Python functions, run by a pool of worker processes.
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

#include "arrow/arrow.h"
#include "frame/frame.h"
#include "server.h"

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

/* ---- the API ---------------------------------------------------------------------------- */

/* Parameters of a call that are the API's, not the function's. */
static bool reserved_param(const char *name)
{
    static const char *const names[] = {"function", "timeout", "format", "return", "orient",
                                        NULL};
    for (size_t i = 0; names[i]; i++) {
        if (strcmp(names[i], name) == 0)
            return true;
    }
    return false;
}

/* The function file of name, into path (PATH_MAX). */
static void function_path(const api_call *c, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s.py", c->api->defaults.functions.dir, name);
}

/* The call's arguments: a POST body's "data" members as JSON (text false), else the query's
 * parameters as text (text true). */
static json_t *call_args(api_call *c, bool *text)
{
    json_t *args = json_object();
    json_t *doc = c->req->body_len && c->req->method != HTTP_METHOD_GET
                      ? json_loadb(c->req->body, c->req->body_len, 0, NULL) : NULL;
    json_t *data = json_object_get(doc, "data");
    const char *name;
    json_t *v;
    *text = !json_is_object(data);
    if (!*text) {
        json_object_foreach(data, name, v) {
            if (!reserved_param(name))
                json_object_set(args, name, v);
        }
    }
    for (size_t i = 0; *text && i < c->param_count; i++) {
        if (!reserved_param(c->params[i].name))
            json_object_set_new(args, c->params[i].name,
                                json_stringn(c->params[i].value, c->params[i].value_len));
    }
    json_decref(doc);
    return args;
}

static unsigned call_timeout_ms(api_call *c)
{
    const char *t = api_param(c, "timeout", NULL);
    double s = t ? strtod(t, NULL) : 0;
    return s > 0 && s < 1e6 ? (unsigned)(s * 1000) : 0;
}

/* Answer a failed reply: its status, type, message and the user's traceback lines. */
static void answer_function_error(api_call *c, json_t *error)
{
    json_int_t status = json_integer_value(json_object_get(error, "status"));
    if (status < 400 || status > 599)
        status = 500;
    json_t *body = json_pack("{s:{s:s, s:O?, s:O?, s:O?}}", "error", "code",
                             status == 404 ? "not_found" : status == 400 ? "bad_request"
                             : status == 507 ? "out_of_memory" : "function_error",
                             "message", json_object_get(error, "message"), "type",
                             json_object_get(error, "type"), "traceback",
                             json_object_get(error, "traceback"));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    c->res->status = (int)status;
    c->res->content_type = "application/json";
    buf_reset(&c->res->body);
    buf_puts(&c->res->body, text ? text : "{\"error\": {\"code\": \"function_error\"}}");
    free(text);
    json_decref(body);
}

static void answer_reply_value(api_call *c, function_reply *r)
{
    const char *kind = json_string_value(json_object_get(r->header, "kind"));
    aside_error err;
    if (kind && strcmp(kind, "frame") == 0) {
        frame *f = NULL;
        if (arrow_decode(r->payload ? r->payload : "", r->payload_bytes, &f, &err) != ASIDE_OK) {
            api_status_error(c, &err);
            return;
        }
        frames_answer(c, f);
        frame_release(f);
        return;
    }
    const char *ret = api_param(c, "return", NULL);
    if (kind && strcmp(kind, "bytes") == 0 && ret && strcmp(ret, "data") == 0) {
        c->res->status = 200;
        c->res->content_type = "application/octet-stream";
        buf_append(&c->res->body, r->payload, r->payload_bytes);
        return;
    }
    buf *b = api_envelope_begin(c);
    if (kind && strcmp(kind, "bytes") == 0) {
        buf_putc(b, '"');
        buf_put_base64(b, r->payload, r->payload_bytes);
        buf_putc(b, '"');
    } else {
        char *text = json_dumps(json_object_get(r->header, "value"),
                                JSON_COMPACT | JSON_ENCODE_ANY);
        buf_puts(b, text ? text : "null");
        free(text);
    }
    api_envelope_end(c);
}

/* Send request to a worker and answer its reply with answer (or the error). */
static void run_request(api_call *c, json_t *request, unsigned timeout_ms,
                        void (*answer)(api_call *c, function_reply *r))
{
    function_reply r;
    aside_error err;
    aside_status st = function_pool_request(c->api->functions, request, timeout_ms, &r, &err);
    json_decref(request);
    if (st != ASIDE_OK) {
        api_error(c, st == ASIDE_ERR_TIMEOUT ? 504 : 500,
                  st == ASIDE_ERR_TIMEOUT ? "timeout" : "worker_died", err.message);
        return;
    }
    if (json_is_true(json_object_get(r.header, "ok")))
        answer(c, &r);
    else
        answer_function_error(c, json_object_get(r.header, "error"));
    function_reply_clear(&r);
}

static void call_function(api_call *c, const char *name)
{
    bool text = true;
    json_t *args = call_args(c, &text);
    json_t *request = json_pack("{s:s, s:s, s:o, s:b}", "op", "call", "function", name, "args",
                                args, "text", text);
    if (!request) {
        api_error(c, 503, "out_of_memory", "out of memory");
        return;
    }
    run_request(c, request, call_timeout_ms(c), answer_reply_value);
}

/* Write source as the function name's file, atomically. */
static aside_status save_function(api *a, const char *name, const char *source, size_t len,
                                  aside_error *err)
{
    char path[4096], tmp[4096];
    snprintf(path, sizeof path, "%s/%s.py", a->defaults.functions.dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.py.XXXXXX", a->defaults.functions.dir, name);
    mkdir(a->defaults.functions.dir, 0755);
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

static void answer_saved(api_call *c, const char *name)
{
    buf *b = api_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"function\": ");
    buf_put_json_string(b, name, strlen(name));
    buf_putc(b, '}');
    api_envelope_end(c);
}

/* Check source with a worker (compiling only), then save it as name's file. */
static void check_and_save(api_call *c, const char *name, const char *source, size_t len)
{
    json_t *request = json_pack("{s:s, s:s%}", "op", "check", "source", source, len);
    function_reply r;
    aside_error err;
    if (!request || function_pool_request(c->api->functions, request, 0, &r, &err) != ASIDE_OK) {
        json_decref(request);
        api_error(c, 500, "worker_died", request ? err.message : "out of memory");
        return;
    }
    json_decref(request);
    if (!json_is_true(json_object_get(r.header, "ok")))
        answer_function_error(c, json_object_get(r.header, "error"));
    else if (save_function(c->api, name, source, len, &err) != ASIDE_OK)
        api_status_error(c, &err);
    else
        answer_saved(c, name);
    function_reply_clear(&r);
}

static bool valid_new_name(api_call *c, const char *name)
{
    bool may_block = false, tries_memory = false;
    if (!text_is_identifier(name)) {
        api_error(c, 400, "bad_request", "parameter \"function_name\" must be a Python "
                                         "identifier");
        return false;
    }
    if (frames_function(name, &may_block, &tries_memory) || api_is_builtin(name)) {
        api_error(c, 409, "conflict", "that name is one of the server's own functions");
        return false;
    }
    return true;
}

static void fn_function_create(api_call *c)
{
    const char *name = api_param(c, "function_name", NULL);
    size_t len = 0;
    const char *source = api_param(c, "function_body", &len);
    if (!valid_new_name(c, name))
        return;
    if (!source) {
        api_error(c, 400, "bad_request", "missing parameter \"function_body\"");
        return;
    }
    check_and_save(c, name, source, len);
}

/* NAME.py from the system of record's function folder, read afresh (an update), into *source
 * (NUL-terminated, *len bytes; free it). */
static aside_status read_remote_source(api *a, const char *name,
                                       const aside_read_options *options, char **source,
                                       size_t *len, aside_error *err)
{
    char key[1200];
    snprintf(key, sizeof key, "%s/%s.py", a->defaults.functions.remote_dir, name);
    aside_read_options o = options ? *options : (aside_read_options){0};
    o.type = "bytes";
    o.memory_only = false;
    aside_value *v = NULL;
    aside_status st = aside_update(a->cache, key, &o, &v, NULL, err);
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

/* function_register: NAME.py from the system of record's function folder. */
static void fn_function_register(api_call *c)
{
    const char *name = api_param(c, "function_name", NULL);
    char base[128] = "";
    if (!name && c->path) { /* path=echo.py or path=echo */
        const char *slash = strrchr(c->path, '/');
        snprintf(base, sizeof base, "%s", slash ? slash + 1 : c->path);
        char *dot = strstr(base, ".py");
        if (dot && dot[3] == '\0')
            *dot = '\0';
        name = base;
    }
    if (!valid_new_name(c, name))
        return;
    char *source = NULL;
    size_t len = 0;
    aside_error err;
    if (read_remote_source(c->api, name, &c->options, &source, &len, &err) != ASIDE_OK)
        api_status_error(c, &err);
    else
        check_and_save(c, name, source, len);
    free(source);
}

/* Why a worker refused a source: its error's type and message, as one line. */
static aside_status refusal(json_t *error, aside_error *err)
{
    const char *type = json_string_value(json_object_get(error, "type"));
    const char *message = json_string_value(json_object_get(error, "message"));
    return error_set(err, ASIDE_ERR_INVALID, "%s%s%s", type ? type : "", type ? ": " : "",
                     message ? message : "the function does not compile");
}

aside_status functions_register(api *a, const char *name, const aside_read_options *options,
                                aside_error *err)
{
    bool may_block = false, tries_memory = false;
    if (!name || !text_is_identifier(name))
        return error_set(err, ASIDE_ERR_INVALID, "a function's name must be a Python "
                         "identifier");
    if (frames_function(name, &may_block, &tries_memory) || api_is_builtin(name))
        return error_set(err, ASIDE_ERR_CONFLICT, "%s is one of the server's own functions",
                         name);
    char *source = NULL;
    size_t len = 0;
    aside_status st = read_remote_source(a, name, options, &source, &len, err);
    json_t *request = st == ASIDE_OK ? json_pack("{s:s, s:s%}", "op", "check", "source",
                                                 source, len) : NULL;
    function_reply r = {0};
    if (st == ASIDE_OK && !request)
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (request)
        st = function_pool_request(a->functions, request, 0, &r, err);
    if (st == ASIDE_OK && !json_is_true(json_object_get(r.header, "ok")))
        st = refusal(json_object_get(r.header, "error"), err);
    if (st == ASIDE_OK)
        st = save_function(a, name, source, len, err);
    json_decref(request);
    function_reply_clear(&r);
    free(source);
    return st;
}

static void fn_function_delete(api_call *c)
{
    const char *name = api_param(c, "function_name", NULL);
    if (!name)
        name = api_param(c, "name", NULL);
    char path[4096];
    if (!text_is_identifier(name)) {
        api_error(c, 400, "bad_request", "parameter \"function_name\" must be a Python "
                                         "identifier");
        return;
    }
    function_path(c, name, path, sizeof path);
    if (unlink(path) != 0) {
        api_error(c, errno == ENOENT ? 404 : 500, errno == ENOENT ? "not_found" : "io_error",
                  errno == ENOENT ? "no such function" : strerror(errno));
        return;
    }
    answer_saved(c, name);
}

static void fn_functions(api_call *c)
{
    json_t *request = json_pack("{s:s}", "op", "describe");
    run_request(c, request, 0, answer_reply_value);
}

static void fn_function_stats(api_call *c)
{
    json_t *request = json_pack("{s:s}", "op", "stats");
    run_request(c, request, 0, answer_reply_value);
}

typedef struct function_admin {
    const char *name;
    api_run     run;
} function_admin;

static const function_admin admins[] = {
    {"function_create", fn_function_create}, {"function_register", fn_function_register},
    {"function_delete", fn_function_delete}, {"functions", fn_functions},
    {"function_stats", fn_function_stats},
};

bool functions_dispatch(api_call *c, const char *name)
{
    const function_admin *admin = NULL;
    for (size_t i = 0; i < sizeof admins / sizeof admins[0]; i++) {
        if (strcmp(admins[i].name, name) == 0)
            admin = &admins[i];
    }
    char path[4096];
    if (!admin) {
        if (!text_is_identifier(name))
            return false;
        function_path(c, name, path, sizeof path);
        if (access(path, R_OK) != 0)
            return false;
    }
    if (!c->req->may_block) { /* workers and files: always on the blocking pool */
        c->res->defer = true;
        return true;
    }
    if (admin)
        admin->run(c);
    else
        call_function(c, name);
    return true;
}
