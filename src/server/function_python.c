/* function_python.c -- the interpreter that runs function workers, seen from the server.
 *
 * A worker is `ASIDE_PYTHON -m aside.worker`. When that Python lacks the aside package (a
 * server started by hand with the default `python3`), or one of its imports fails, the worker
 * exits before it says anything, and all the server could tell a caller was "exited with
 * status 1". Two things make the cause visible:
 *
 * - A worker's standard error is, until it serves, a pipe the server holds. The worker puts
 *   its own standard error back (descriptor FUNCTION_PYTHON_STDERR_FD, named by
 *   ASIDE_STDERR_FD) as soon as its code runs, so only what the interpreter and the imports
 *   write go into the pipe. A worker that dies first: the pipe's first and last lines join
 *   the caller's error (`ModuleNotFoundError: No module named 'aside'`). One that serves:
 *   what is in the pipe goes to the log, and the pipe is closed. The pipe holds
 *   STDERR_PIPE_BYTES, so a start that warns a lot does not block on it.
 * - At start a probe runs `ASIDE_PYTHON -c ...` (finding the package, not importing it: a
 *   Python's start, some 20 ms) on a thread of its own, off the accept path, for at most
 *   PROBE_TIMEOUT_MS, and logs one warning when the package, or one it needs, cannot be
 *   found.
 *
 * An installed server brings its own copy of the package (`cmake --install` and the Debian
 * package put it in `<prefix>/<libdir>/aside/python`): the server finds it from its own path,
 * as it finds libduckdb, and puts it first on its workers' PYTHONPATH, so that any Python
 * with pandas, pyarrow and requests runs the workers of that very server's version. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "function_python.h"
#include "util/util.h"

extern char **environ;

enum {
    STDERR_PIPE_BYTES = 1 << 20, /* what a worker may write before it serves, unread */
    REASON_READ_BYTES = 4096,    /* of it, what a death's reason is taken from */
    REASON_LINES = 4,            /* more lines than this: the first two, "...", the last */
    LOG_READ_BYTES = 64 << 10,   /* of it, what reaches the log when the worker serves */
    PROBE_TIMEOUT_MS = 10000,    /* the probe's bound: a Python's start takes some 20 ms */
    PROBE_SLICE_MS = 100         /* how often the probe looks whether it must stop */
};

/* Finds the package and those it imports without importing any (no pandas, no pyarrow:
 * quick); the message is Python's own for a missing module. */
static const char PROBE_CODE[] =
    "import importlib.util, sys\n"
    "for name in ('aside', 'pandas', 'pyarrow', 'requests'):\n"
    "    importlib.util.find_spec(name) or sys.exit(\n"
    "        \"ModuleNotFoundError: No module named '%s'\" % name)\n";

#ifndef ASIDE_INSTALL_LIBDIR /* the build's libdir, relative to the prefix */
#define ASIDE_INSTALL_LIBDIR "lib"
#endif

/* ---- a worker's start ---- */

bool function_python_stderr_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    fcntl(fds[0], F_SETPIPE_SZ, STDERR_PIPE_BYTES); /* best effort: else the default 64 KiB */
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    return true;
}

int function_python_stderr_move(int write_fd, int low_fd)
{
    return fcntl(write_fd, F_DUPFD_CLOEXEC, low_fd);
}

bool function_python_stderr_enter(int moved_fd)
{
    if (dup2(STDERR_FILENO, FUNCTION_PYTHON_STDERR_FD) < 0) { /* a server without one */
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, FUNCTION_PYTHON_STDERR_FD) < 0)
            return false;
        if (null != FUNCTION_PYTHON_STDERR_FD)
            close(null);
    }
    return dup2(moved_fd, STDERR_FILENO) >= 0;
}

/* Read what read_fd holds now, up to size - 1 bytes, NUL-terminated; its length. */
static size_t read_available(int read_fd, char *into, size_t size)
{
    size_t got = 0;
    while (got + 1 < size) {
        ssize_t n = read(read_fd, into + got, size - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    into[got] = '\0';
    return got;
}

/* Split text into its non-empty lines, trailing blanks cut, in place; how many (at most max). */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t count = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && count < max;
         line = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        if (len)
            lines[count++] = line;
    }
    return count;
}

void function_python_stderr_reason(int read_fd, char *out, size_t size)
{
    char text[REASON_READ_BYTES];
    char *lines[REASON_READ_BYTES / 2];
    read_available(read_fd, text, sizeof text);
    size_t count = split_lines(text, lines, sizeof lines / sizeof lines[0]);
    buf b = {0};
    for (size_t i = 0; i < count; i++) {
        bool shown = count <= REASON_LINES || i < 2 || i == count - 1;
        if (shown)
            buf_printf(&b, "%s%s", i ? " | " : "", lines[i]);
        else if (i == 2)
            buf_puts(&b, " | ...");
    }
    snprintf(out, size, "%s", b.data && !b.failed ? b.data : "");
    buf_free(&b);
}

void function_python_stderr_log(int read_fd, pid_t pid)
{
    char *text = malloc(LOG_READ_BYTES);
    char **lines = malloc(sizeof *lines * (LOG_READ_BYTES / 2));
    if (text && lines) {
        read_available(read_fd, text, LOG_READ_BYTES);
        size_t count = split_lines(text, lines, LOG_READ_BYTES / 2);
        for (size_t i = 0; i < count; i++)
            log_line("info", "functions: worker %d at its start: %s", (int)pid, lines[i]);
    }
    free(lines);
    free(text);
}

/* ---- the installed package ---- */

bool function_python_installed(char *out, size_t size)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || (size_t)n >= sizeof exe - 1)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = '\0'; /* <prefix>/bin */
    char init[4200];
    int len = snprintf(out, size, "%s/../%s/aside/python", exe, ASIDE_INSTALL_LIBDIR);
    if (len < 0 || (size_t)len >= size)
        return false;
    snprintf(init, sizeof init, "%s/aside/__init__.py", out);
    return access(init, R_OK) == 0;
}

bool function_python_path_entry(const char *first, buf *b)
{
    const char *ours = getenv("PYTHONPATH");
    bool has_first = first && *first, has_ours = ours && *ours;
    if (has_first || has_ours)
        buf_printf(b, "PYTHONPATH=%s%s%s", has_first ? first : "",
                   has_first && has_ours ? ":" : "", has_ours ? ours : "");
    buf_putc(b, '\0');
    return !b->failed;
}

/* ---- the probe at start ---- */

struct function_python_probe {
    pthread_t   thread;
    const char *python;
    const char *python_path;
    atomic_bool stop;
};

/* Our environment with python_path first on PYTHONPATH, in storage (the strings) and a new
 * array (freed by the caller); NULL when out of memory. */
static char **probe_env(const char *python_path, buf *storage)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env || !function_python_path_entry(python_path, storage)) {
        free(env);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "PYTHONPATH=", 11) != 0)
            env[k++] = environ[i];
    }
    if (storage->data[0])
        env[k++] = storage->data;
    return env;
}

/* Spawn python -c PROBE_CODE, its output to out_fd and its input /dev/null; its pid, or -1
 * (errno set). */
static pid_t probe_spawn(const char *python, const char *python_path, int out_fd)
{
    buf storage = {0};
    char **env = probe_env(python_path, &storage);
    if (!env) {
        buf_free(&storage);
        errno = ENOMEM;
        return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t none;
    sigemptyset(&none);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_fd, STDERR_FILENO);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none); /* the server's threads block every signal */
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    char *const argv[] = {(char *)python, "-c", (char *)PROBE_CODE, NULL};
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, python, &actions, &attr, argv, env);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    free(env);
    buf_free(&storage);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

/* Read the probe's output from fd until its end, the deadline or a stop; true at its end. */
static bool probe_read(function_python_probe *probe, int fd, char *out, size_t size)
{
    size_t got = 0;
    int64_t deadline_ns = clock_mono_ns() + (int64_t)PROBE_TIMEOUT_MS * 1000000;
    while (!atomic_load(&probe->stop) && clock_mono_ns() < deadline_ns) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, PROBE_SLICE_MS) <= 0)
            continue;
        char chunk[512];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            out[got] = '\0';
            return true;
        }
        size_t keep = (size_t)n < size - 1 - got ? (size_t)n : size - 1 - got;
        memcpy(out + got, chunk, keep);
        got += keep;
    }
    out[got] = '\0';
    return false;
}

static void *probe_run(void *arg)
{
    function_python_probe *probe = arg;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return NULL;
    pid_t pid = probe_spawn(probe->python, probe->python_path, fds[1]);
    close(fds[1]);
    if (pid < 0) {
        log_line("warn", "functions: ASIDE_PYTHON=%s cannot be run (%s): every call of a "
                 "user's function will fail", probe->python, strerror(errno));
        close(fds[0]);
        return NULL;
    }
    char text[REASON_READ_BYTES];
    bool ended = probe_read(probe, fds[0], text, sizeof text);
    close(fds[0]);
    if (!ended)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (atomic_load(&probe->stop))
        return NULL;
    char *lines[REASON_READ_BYTES / 2];
    size_t count = split_lines(text, lines, sizeof lines / sizeof lines[0]);
    if (!ended)
        log_line("warn", "functions: ASIDE_PYTHON=%s did not tell within %d ms whether it "
                 "can import the aside package", probe->python, PROBE_TIMEOUT_MS);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        log_line("warn", "functions: ASIDE_PYTHON=%s cannot import the aside package (%s): "
                 "every call of a user's function will fail; set ASIDE_PYTHON to a Python "
                 "that has it and pandas, pyarrow and requests", probe->python,
                 count ? lines[count - 1] : "it exited with an error");
    return NULL;
}

function_python_probe *function_python_probe_start(const char *python, const char *python_path)
{
    function_python_probe *probe = calloc(1, sizeof *probe);
    if (!probe)
        return NULL;
    probe->python = python;
    probe->python_path = python_path;
    atomic_init(&probe->stop, false);
    if (pthread_create(&probe->thread, NULL, probe_run, probe) != 0) {
        free(probe);
        return NULL;
    }
    return probe;
}

void function_python_probe_stop(function_python_probe *probe)
{
    if (!probe)
        return;
    atomic_store(&probe->stop, true);
    pthread_join(probe->thread, NULL);
    free(probe);
}
