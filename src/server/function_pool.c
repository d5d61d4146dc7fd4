/* function_pool.c -- users' Python functions: the worker processes that run them and the
 * folder that holds them (the API's side, calls and function_create & co., is functions.c).
 *
 * aside never runs user code in its own process. A function is a file NAME.py in the function
 * folder holding `def main(cache, **kwargs)`; a call goes to one of a pool of Python worker
 * processes (`python -m aside.worker`, from the aside package), each serving one call at a
 * time over a socket pair, and sees the cache only through the HTTP API, as any client does
 * (frames by shared memory). The configured number of workers start together on the first
 * call (every empty slot is filled on a call: a dead or stopped worker's on the next one), so
 * that no start happens later, under load, with a caller waiting on it; a call takes a worker
 * that has answered before one still starting. Each runs in a process group of its own, with
 * an environment of an allow-list (no AWS keys, no token: the token comes on a pipe),
 * no_new_privs, no core files, RLIMIT_AS and RLIMIT_FSIZE set before exec. Who it runs as, and the sandbox it runs in (bwrap: no
 * network, the API over the server's Unix socket, a read-only view of the installation and the
 * function folder), are decided once at start by function_sandbox.c, which gives the command
 * line exec'd here. Inside, a worker runs each function in a process of its own that cannot
 * reach this socket (aside/_supervisor.py).
 *
 * The protocol (framing.md in the package documents the Python side): every message is a
 * 4-byte big-endian length, that many bytes of a JSON header, then, if the header says
 * "payload_bytes": n, n raw bytes. Requests: {"op": "call", "id", "function", "args", "text"},
 * {"op": "check", "id", "source"}, {"op": "describe", "id"}, {"op": "stats", "id"}, each with
 * "timeout_ms". Replies echo the id: {"ok": true, "kind": "json"|"frame"|"bytes", "value" |
 * "payload_bytes"} or {"ok": false, "error": {"status", "type", "message", "traceback",
 * "output"}}.
 *
 * Nothing a worker sends is trusted: a reply must be one frame, its header a JSON object under
 * MAX_HEADER_BYTES with the request's id, its payload under MAX_PAYLOAD_BYTES, and no byte may
 * wait on the socket before a request or after a reply. Anything else is a broken protocol:
 * the worker is killed and replaced, the caller gets 500 worker_protocol, so a reply can never
 * answer another caller.
 *
 * Supervision: a call has a deadline. A worker that does not answer in time is stopped: its
 * socket closed (it then kills its functions' processes, orphans included), then its whole
 * process group killed (SIGKILL); its slot is refilled on the next call and the caller gets
 * 504. A worker that dies (a crash, a segfaulting extension, os.abort) is reaped and
 * replaced; the caller gets 500 naming the signal (one that died before it served, a Python
 * without the package say, also what it wrote then: function_python.h). Other calls never
 * notice: each worker serves one caller, and the server's threads only ever wait on a socket
 * with a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "function_cgroup.h"
#include "function_pool.h"
#include "function_python.h"
#include "function_sandbox.h"
#include "util/util.h"

extern char **environ;

enum {
    WORKER_FD = 3,                       /* where a worker finds its socket */
    TOKEN_FD = 4,                        /* where it reads the bearer token, once */
    SPARE_FD_MIN = 10,                   /* above the two, while they are moved into place */
    MAX_HEADER_BYTES = 64 << 20,         /* a reply's JSON header */
    MAX_PAYLOAD_BYTES = 1 << 30,         /* a reply's frame or bytes */
    HEADER_LENGTH_BYTES = 4,
    EXIT_WAIT_MS = 2000,                 /* at exit, workers have this long to clean up */
    DEATH_WAIT_MS = 1000,                /* a worker that closed its socket, to exit */
    STOP_WAIT_MS = 1000,                 /* a worker told to stop, to clean up */
    REAP_POLL_US = 10000
};

typedef struct worker {
    pid_t   pid; /* 0: the slot is empty */
    int     fd;
    bool    busy;
    bool    answered; /* it has answered a request: it did start */
    json_t *stats; /* its memoisation figures as of its last call, or NULL */
    char    cgroup[FUNCTION_CGROUP_PATH_MAX]; /* its pids cgroup, or "" */
    int     start_fd; /* its standard error until it served (function_python.h), or -1 */
} worker;

struct function_pool {
    pthread_mutex_t      lock;
    pthread_cond_t       freed;
    worker              *workers;
    function_pool_config cfg;
    char                 url[512];
    uint64_t             next_id;
    function_pool_stats  stats;
    char                 cgroup_root[FUNCTION_CGROUP_PATH_MAX]; /* "" when none can be made */
    unsigned long        cgroups_made;
    function_python_probe *probe; /* whether ASIDE_PYTHON has the package, found at start */
    char python_path[4096]; /* an installed server's own aside package, first on PYTHONPATH */
    function_sandbox    *sandbox; /* who workers run as, and how; NULL: as the server, plain */
};

/* How a worker's processes are bounded: a pids cgroup each when the server may make them,
 * else RLIMIT_NPROC (which root ignores, and which counts every process of the user). */
static void choose_process_bound(function_pool *p)
{
    p->cgroup_root[0] = '\0';
    if (!p->cfg.max_processes)
        return;
    if (function_cgroup_root(p->cgroup_root, sizeof p->cgroup_root)) {
        log_line("info", "functions: each worker in a pids cgroup under %s, at most %u "
                 "processes", p->cgroup_root, p->cfg.max_processes);
        return;
    }
    p->cgroup_root[0] = '\0';
    if (geteuid() == 0)
        log_line("warn", "functions: no pids cgroup can be made: the number of a worker's "
                 "processes is not bounded (ASIDE_FUNCTION_PROCESSES; RLIMIT_NPROC does not "
                 "bind root)");
}

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
    for (unsigned i = 0; i < (cfg->workers ? cfg->workers : 1); i++)
        p->workers[i].start_fd = -1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    choose_process_bound(p);
    if (function_python_installed(p->python_path, sizeof p->python_path))
        log_line("info", "functions: workers import the aside package installed in %s",
                 p->python_path);
    else
        p->python_path[0] = '\0';
    p->probe = function_python_probe_start(p->cfg.python, p->python_path);
    return p;
}

void function_pool_set_url(function_pool *p, const char *url)
{
    pthread_mutex_lock(&p->lock);
    snprintf(p->url, sizeof p->url, "%s", url);
    pthread_mutex_unlock(&p->lock);
}

static int64_t now_ms(void) { return clock_mono_ns() / 1000000; }

/* Whether w's worker ended by itself within wait_ms (how in *info). It is not reaped, so
 * its pid still names its process group. */
static bool worker_ended(const worker *w, int64_t wait_ms, siginfo_t *info)
{
    int64_t deadline_ms = now_ms() + wait_ms;
    for (;;) {
        memset(info, 0, sizeof *info);
        int rc = waitid(P_PID, (id_t)w->pid, info, WEXITED | WNOHANG | WNOWAIT);
        if (rc == 0 && info->si_pid == w->pid)
            return true;
        if ((rc != 0 && errno != EINTR) || now_ms() >= deadline_ms)
            return false;
        usleep(REAP_POLL_US);
    }
}

/* Kill w's whole process group (the worker, its functions' processes and every child they
 * started) and reap the worker; the slot is empty after. */
static void worker_kill(worker *w)
{
    kill(-w->pid, SIGKILL);
    waitpid(w->pid, NULL, 0);
    w->pid = 0;
    if (w->start_fd >= 0)
        close(w->start_fd);
    w->start_fd = -1;
    function_cgroup_remove(w->cgroup); /* what left the group */
    w->cgroup[0] = '\0';
}

/* Stop w: closing its socket tells it to kill its functions' processes, orphans included
 * (even mid-call: it watches the socket); STOP_WAIT_MS later its group is killed whole. */
static void worker_stop(worker *w)
{
    json_decref(w->stats);
    w->stats = NULL;
    if (!w->pid)
        return;
    close(w->fd);
    siginfo_t info;
    worker_ended(w, STOP_WAIT_MS, &info);
    worker_kill(w);
}

void function_pool_destroy(function_pool *p)
{
    if (!p)
        return;
    function_python_probe_stop(p->probe);
    /* end of file on its socket ends a worker, after it killed what its functions started
     * (orphans included); the group is killed whole after, whatever is left */
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        if (p->workers[i].pid)
            close(p->workers[i].fd);
    }
    int64_t deadline_ms = now_ms() + EXIT_WAIT_MS;
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        worker *w = &p->workers[i];
        siginfo_t info;
        if (w->pid) {
            int64_t left = deadline_ms - now_ms();
            worker_ended(w, left > 0 ? left : 0, &info);
            worker_kill(w);
        }
        json_decref(w->stats);
    }
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    function_sandbox_free(p->sandbox);
    free(p->workers);
    free(p);
}

void function_pool_get_stats(function_pool *p, function_pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    out->workers = out->busy = 0;
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        out->workers += p->workers[i].pid != 0;
        out->busy += p->workers[i].busy;
    }
    pthread_mutex_unlock(&p->lock);
}

/* What a worker's environment keeps of the server's: what Python needs to start, find its
 * packages and decode text. Nothing else passes (AWS keys, the token, the server's settings):
 * a function must not find secrets in os.environ. */
static const char *const env_allowed[] = {"PATH=", "LANG=", "LC_ALL=", "LC_CTYPE=", "TZ=",
                                          "PYTHONPATH=", NULL};

static bool env_is_allowed(const char *entry)
{
    for (size_t i = 0; env_allowed[i]; i++) {
        if (strncmp(entry, env_allowed[i], strlen(env_allowed[i])) == 0)
            return true;
    }
    return false;
}

/* The environment of a worker: the allowed part of ours, where the cache and the functions
 * are, (when there is a token) the descriptor it reads the token from, where its standard
 * error is, and PYTHONPATH with an installed server's own package first. */
static char **worker_env(const function_pool *p, buf *storage)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 6, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (env_is_allowed(environ[i]) && strncmp(environ[i], "PYTHONPATH=", 11) != 0)
            env[k++] = environ[i];
    }
    size_t at[5];
    at[0] = storage->len;
    bool sandboxed = p->sandbox && function_sandbox_enabled(p->sandbox);
    buf_printf(storage, "ASIDE_URL=%s%c", sandboxed ? FUNCTION_SANDBOX_API_URL : p->url, '\0');
    at[1] = storage->len;
    buf_printf(storage, "ASIDE_FUNCTION_DIR=%s%c", p->cfg.dir, '\0');
    at[2] = storage->len;
    if (p->cfg.token)
        buf_printf(storage, "ASIDE_TOKEN_FD=%d%c", TOKEN_FD, '\0');
    at[3] = storage->len;
    buf_printf(storage, "ASIDE_STDERR_FD=%d%c", FUNCTION_PYTHON_STDERR_FD, '\0');
    at[4] = storage->len;
    if (!function_python_path_entry(p->python_path, storage) || storage->failed) {
        free(env);
        return NULL;
    }
    env[k++] = storage->data + at[0];
    env[k++] = storage->data + at[1];
    if (p->cfg.token)
        env[k++] = storage->data + at[2];
    env[k++] = storage->data + at[3];
    if (storage->data[at[4]])
        env[k++] = storage->data + at[4]; /* PYTHONPATH, the installed package first */
    return env;
}

/* A pipe holding the token, for the worker to read on TOKEN_FD: the token never sits in an
 * environment a function could read (/proc/self/environ included). *read_fd -1 without one. */
static bool token_pipe(const function_pool *p, int *read_fd)
{
    *read_fd = -1;
    if (!p->cfg.token)
        return true;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    size_t len = strlen(p->cfg.token);
    bool ok = write(fds[1], p->cfg.token, len) == (ssize_t)len; /* far below a pipe's size */
    close(fds[1]);
    if (!ok) {
        close(fds[0]);
        return false;
    }
    *read_fd = fds[0];
    return true;
}

aside_status function_pool_start_sandbox(function_pool *p, aside_error *err)
{
    buf storage = {0};
    char **env = worker_env(p, &storage);
    if (!env)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    function_sandbox_config sc = {
        .mode = p->cfg.sandbox, .user = p->cfg.user, .python = p->cfg.python,
        .dir = p->cfg.dir, .shm_dir = p->cfg.shm_dir, .api_socket = p->cfg.api_socket,
        .env = env, .tmp_bytes = p->cfg.tmp_bytes};
    function_sandbox *sb = function_sandbox_open(&sc, err);
    free(env);
    buf_free(&storage);
    if (!sb)
        return err ? err->status : ASIDE_ERR_INVALID;
    pthread_mutex_lock(&p->lock);
    function_sandbox_free(p->sandbox);
    p->sandbox = sb;
    pthread_mutex_unlock(&p->lock);
    return ASIDE_OK;
}

/* In the child, before exec (async-signal-safe calls only): the limits every process of the
 * worker inherits. no_new_privs: no set-user-ID program gives a function more rights; no core
 * files; the address space and file size configured; processes, when no cgroup bounds
 * them, as RLIMIT_NPROC (processes: 0 for none). */
static void worker_limits(const function_pool_config *cfg, rlim_t processes)
{
    if (processes) {
        struct rlimit nproc = {processes, processes};
        setrlimit(RLIMIT_NPROC, &nproc);
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    if (cfg->memory_limit_bytes) {
        struct rlimit memory = {cfg->memory_limit_bytes, cfg->memory_limit_bytes};
        setrlimit(RLIMIT_AS, &memory);
    }
    if (cfg->file_size_limit_bytes) {
        struct rlimit size = {cfg->file_size_limit_bytes, cfg->file_size_limit_bytes};
        setrlimit(RLIMIT_FSIZE, &size);
    }
}

/* In the child: the socket on WORKER_FD and the token's pipe on TOKEN_FD (moved above both
 * first, so neither can overwrite the other). False when a descriptor cannot be moved. */
static bool worker_fds(int sock, int token)
{
    int s = fcntl(sock, F_DUPFD_CLOEXEC, SPARE_FD_MIN);
    int t = token >= 0 ? fcntl(token, F_DUPFD_CLOEXEC, SPARE_FD_MIN) : -1;
    if (s < 0 || (token >= 0 && t < 0) || dup2(s, WORKER_FD) < 0)
        return false;
    return t < 0 || dup2(t, TOKEN_FD) >= 0;
}

/* The bound of w's processes: a new pids cgroup (its cgroup.procs path into procs) when one
 * can be made, and the RLIMIT_NPROC to set (0: none). RLIMIT_NPROC counts every task of the
 * real user and root ignores it: for a workers' user other than root it is the user's tasks
 * now plus the bound, or, with a cgroup bounding each worker already, plus the bound of the
 * whole pool (every worker runs as that user). */
static rlim_t worker_cgroup(function_pool *p, worker *w, char *procs, size_t size)
{
    w->cgroup[0] = '\0';
    if (!p->cfg.max_processes)
        return 0;
    bool cgroup = p->cgroup_root[0] &&
                  function_cgroup_make(p->cgroup_root, ++p->cgroups_made, p->cfg.max_processes,
                                       w->cgroup, sizeof w->cgroup);
    if (cgroup)
        snprintf(procs, size, "%s/cgroup.procs", w->cgroup);
    uid_t uid = p->sandbox ? function_sandbox_uid(p->sandbox) : getuid();
    if (uid == 0 || (cgroup && uid == getuid()))
        return 0;
    rlim_t bound = (rlim_t)p->cfg.max_processes * (cgroup ? p->cfg.workers : 1);
    return (rlim_t)function_user_tasks(uid) + bound;
}

/* Start a worker in slot w (under the lock). Between fork and exec the child only calls
 * async-signal-safe functions. */
static aside_status worker_start(function_pool *p, worker *w, aside_error *err)
{
    int pair[2], token = -1, start[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot make a socket pair: %s",
                         strerror(errno));
    if (!function_python_stderr_pipe(start)) {
        close(pair[0]);
        close(pair[1]);
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot make a function worker's pipe: %s",
                         strerror(errno));
    }
    if (!token_pipe(p, &token)) {
        int saved = errno;
        int fds[] = {pair[0], pair[1], start[0], start[1]};
        for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
            close(fds[i]);
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot pass the token to a function "
                         "worker: %s", strerror(saved));
    }
    buf storage = {0};
    char **env = worker_env(p, &storage);
    char *const plain[] = {(char *)p->cfg.python, "-m", "aside.worker", NULL};
    char *const *argv = p->sandbox ? function_sandbox_argv(p->sandbox) : plain;
    char procs[FUNCTION_CGROUP_PATH_MAX + 32] = "";
    rlim_t processes = worker_cgroup(p, w, procs, sizeof procs);
    pid_t pid = env ? fork() : -1;
    if (pid == 0) {
        int moved = function_python_stderr_move(start[1], SPARE_FD_MIN);
        if (moved < 0 || !worker_fds(pair[1], token) || !function_python_stderr_enter(moved) ||
            (*procs && !function_cgroup_enter(procs)))
            _exit(127);
        setpgid(0, 0); /* one group per worker: killed whole; the server's signals pass by */
        worker_limits(&p->cfg, processes);
        if (p->sandbox && !function_sandbox_become_user(p->sandbox))
            _exit(126);
        execve(argv[0], argv, env);
        execvpe(argv[0], argv, env);
        _exit(127);
    }
    free(env);
    buf_free(&storage);
    close(pair[1]);
    close(start[1]);
    if (token >= 0)
        close(token);
    if (pid < 0) {
        close(pair[0]);
        close(start[0]);
        function_cgroup_remove(w->cgroup);
        w->cgroup[0] = '\0';
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot start a function worker: %s",
                         strerror(errno));
    }
    setpgid(pid, pid); /* also here: the group exists before anyone signals it */
    w->pid = pid;
    w->fd = pair[0];
    w->start_fd = start[0];
    w->busy = false;
    w->answered = false;
    p->stats.started++;
    return ASIDE_OK;
}

/* Start a worker in every empty slot (under the lock): they start together, on the first
 * call that needs one, rather than one by one as the load grows, each start then competing
 * with the calls already running and binding its caller to a worker still importing. False
 * (err set) when one could not start and none did. */
static bool start_empty(function_pool *p, aside_error *err)
{
    bool started = false, failed = false;
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        worker *w = &p->workers[i];
        aside_error mine = {0};
        if (w->pid)
            continue;
        if (worker_start(p, w, &mine) == ASIDE_OK) {
            started = true;
        } else if (!failed) {
            failed = true;
            *err = mine;
        }
    }
    return started || !failed;
}

/* An idle worker (under the lock): one that has answered before one still starting, so that
 * a call does not wait on an interpreter's start while a started worker is free. */
static worker *idle_worker(function_pool *p)
{
    worker *starting = NULL;
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        worker *w = &p->workers[i];
        if (!w->pid || w->busy)
            continue;
        if (w->answered)
            return w;
        if (!starting)
            starting = w;
    }
    return starting;
}

/* An idle worker, marked busy, waiting until deadline_ms for one. Empty slots (the first
 * call's, a dead or stopped worker's) are filled first. */
static worker *acquire(function_pool *p, int64_t deadline_ms, aside_error *err)
{
    pthread_mutex_lock(&p->lock);
    worker *got = NULL;
    for (;;) {
        aside_error start_err = {0};
        bool started = start_empty(p, &start_err);
        got = idle_worker(p);
        if (!got && !started && err)
            *err = start_err;
        if (got || !started)
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

/* IO_PROTOCOL: the worker sent what the protocol does not allow (a malformed reply, another
 * request's id, bytes outside a reply). */
typedef enum io_result { IO_OK, IO_TIMEOUT, IO_CLOSED, IO_PROTOCOL } io_result;

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

/* Read one reply: its header and payload. IO_PROTOCOL for a malformed one. */
static io_result recv_message(int fd, function_reply *out, int64_t deadline_ms)
{
    unsigned char prefix[HEADER_LENGTH_BYTES];
    io_result r = recv_all(fd, prefix, sizeof prefix, deadline_ms);
    if (r != IO_OK)
        return r;
    size_t len = (size_t)prefix[0] << 24 | (size_t)prefix[1] << 16 | (size_t)prefix[2] << 8 |
                 prefix[3];
    if (len > MAX_HEADER_BYTES)
        return IO_PROTOCOL;
    char *text = malloc(len + 1);
    if (!text)
        return IO_CLOSED;
    r = recv_all(fd, text, len, deadline_ms);
    text[r == IO_OK ? len : 0] = '\0';
    out->header = r == IO_OK ? json_loadb(text, len, JSON_ALLOW_NUL, NULL) : NULL;
    free(text);
    if (r != IO_OK || !json_is_object(out->header))
        return r != IO_OK ? r : IO_PROTOCOL;
    json_t *payload = json_object_get(out->header, "payload_bytes");
    json_int_t n = payload ? json_integer_value(payload) : 0;
    if ((payload && !json_is_integer(payload)) || n < 0 || n > MAX_PAYLOAD_BYTES)
        return IO_PROTOCOL;
    out->payload_bytes = (size_t)n;
    if (n == 0)
        return IO_OK;
    if (!(out->payload = malloc((size_t)n)))
        return IO_CLOSED;
    return recv_all(fd, out->payload, (size_t)n, deadline_ms);
}

/* Bytes waiting on a worker's socket outside a reply (or its end): a worker out of step. */
static bool stray_bytes(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0;
}

/* One exchange with w: request (with id) out, its reply in, checked. */
static io_result exchange(worker *w, json_t *request, json_int_t id, function_reply *out,
                          int64_t deadline_ms)
{
    if (stray_bytes(w->fd))
        return IO_PROTOCOL;
    io_result r = send_message(w->fd, request, deadline_ms);
    if (r == IO_OK)
        r = recv_message(w->fd, out, deadline_ms);
    if (r != IO_OK)
        return r;
    json_t *echoed = json_object_get(out->header, "id");
    if (!json_is_integer(echoed) || json_integer_value(echoed) != id || stray_bytes(w->fd))
        return IO_PROTOCOL;
    return IO_OK;
}

void function_reply_clear(function_reply *r)
{
    json_decref(r->header);
    free(r->payload);
    memset(r, 0, sizeof *r);
}

/* Why a worker that never served ended, from what it wrote on its standard error then, into
 * why (size bytes): " (ASIDE_PYTHON=...): its lines", or "" for one that served. */
static void start_reason(const function_pool *p, const worker *w, char *why, size_t size)
{
    char lines[ASIDE_ERROR_MESSAGE_MAX / 2] = "";
    why[0] = '\0';
    if (w->start_fd < 0)
        return;
    function_python_stderr_reason(w->start_fd, lines, sizeof lines);
    snprintf(why, size, " (ASIDE_PYTHON=%.100s)%s%s", p->cfg.python, *lines ? ": " : "",
             lines);
}

/* What became of a worker that closed its socket (its group is killed, it is reaped). */
static void describe_death(const function_pool *p, worker *w, aside_error *err)
{
    siginfo_t info;
    bool ended = worker_ended(w, DEATH_WAIT_MS, &info);
    char why[ASIDE_ERROR_MESSAGE_MAX];
    bool sandboxed = p->sandbox && function_sandbox_enabled(p->sandbox);
    start_reason(p, w, why, sizeof why);
    worker_kill(w);
    if (ended && (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED))
        error_set(err, ASIDE_ERR_INTERNAL, "the function's worker died: %s (signal %d)%s",
                  strsignal(info.si_status), info.si_status, why);
    else if (ended && info.si_code == CLD_EXITED && !w->answered && sandboxed)
        error_set(err, ASIDE_ERR_INTERNAL, "the function's worker could not start: its "
                  "sandbox (bwrap) or its interpreter exited with status %d before it "
                  "answered%s", info.si_status, why);
    else if (ended && info.si_code == CLD_EXITED)
        error_set(err, ASIDE_ERR_INTERNAL, "the function's worker exited with status %d%s",
                  info.si_status, why);
    else
        error_set(err, ASIDE_ERR_INTERNAL, "the function's worker stopped answering%s", why);
}

/* A worker served: what it wrote before goes to the log, and its start pipe is closed. */
static void started(worker *w)
{
    if (w->start_fd < 0)
        return;
    function_python_stderr_log(w->start_fd, w->pid);
    close(w->start_fd);
    w->start_fd = -1;
}

/* A failed exchange: the worker is stopped (its slot refilled by a later call), err and
 * out->failure say why. Under the lock. */
static void fail(function_pool *p, worker *w, io_result r, unsigned timeout_ms,
                 function_reply *out, aside_error *err)
{
    function_reply_clear(out);
    if (r == IO_TIMEOUT) {
        p->stats.timeouts++;
        out->failure = FUNCTION_TIMEOUT;
        error_set(err, ASIDE_ERR_TIMEOUT, "the function ran longer than %u ms: its worker "
                  "was stopped", timeout_ms);
        worker_stop(w);
        return;
    }
    p->stats.crashes++;
    if (r == IO_PROTOCOL) {
        out->failure = FUNCTION_PROTOCOL;
        error_set(err, ASIDE_ERR_INTERNAL, "the function's worker broke the protocol (a reply "
                  "to another request, or bytes outside a reply): it was replaced");
        log_line("warn", "functions: worker %d broke the protocol: stopped", (int)w->pid);
        worker_stop(w);
        return;
    }
    out->failure = FUNCTION_DIED;
    close(w->fd);
    describe_death(p, w, err);
    json_decref(w->stats);
    w->stats = NULL;
}

/* A reply in which the worker says one of its function's processes died or broke the
 * protocol counts as a crash. */
static void count_reported_failure(function_pool *p, const function_reply *r)
{
    const char *code = json_string_value(
        json_object_get(json_object_get(r->header, "error"), "code"));
    if (code && (!strcmp(code, "worker_died") || !strcmp(code, "worker_protocol"))) {
        pthread_mutex_lock(&p->lock);
        p->stats.crashes++;
        pthread_mutex_unlock(&p->lock);
    }
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
    if (!w) {
        out->failure = err && err->status == ASIDE_ERR_TIMEOUT ? FUNCTION_TIMEOUT
                                                              : FUNCTION_DIED;
        return err ? err->status : ASIDE_ERR_INTERNAL;
    }
    pthread_mutex_lock(&p->lock);
    json_int_t id = (json_int_t)++p->next_id;
    p->stats.requests++;
    pthread_mutex_unlock(&p->lock);
    json_object_set_new(request, "id", json_integer(id));
    json_object_set_new(request, "timeout_ms", json_integer((json_int_t)timeout_ms));
    io_result r = exchange(w, request, id, out, deadline_ms);
    aside_status st = ASIDE_OK;
    if (r != IO_OK) {
        pthread_mutex_lock(&p->lock);
        fail(p, w, r, timeout_ms, out, err);
        pthread_mutex_unlock(&p->lock);
        st = err ? err->status : ASIDE_ERR_INTERNAL;
    } else {
        w->answered = true;
        started(w);
        count_reported_failure(p, out);
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
