/* function_sandbox.c -- who users' functions run as, and what they can see.
 *
 * A function worker (`python -m aside.worker`, see function_pool.c) runs as the workers' user:
 * ASIDE_FUNCTION_USER, by default `nobody` when the server runs as root, else the server's own
 * user. And, unless ASIDE_FUNCTION_SANDBOX is off, inside bubblewrap (`bwrap`, a reviewed
 * sandbox tool; no namespace code of our own), which gives it:
 *
 *   - its own mount namespace holding only, read-only: /usr and the /bin, /lib* links or
 *     folders beside it, the few files of /etc the loader and Python read (ld.so.cache,
 *     localtime, alternatives; not passwd, shadow or anything else), the Python installation
 *     (every folder the interpreter names in its prefixes and sys.path, found once at start by
 *     running it, bound at its real path and at the path it is known by: a folder under a
 *     private one such as /root/.pyenv is reachable there because the folders above it are
 *     the sandbox's own), the function folder, and the shared-memory folder where frames are
 *     published; a private /proc, a minimal /dev and a private /tmp (a tmpfs of a bounded
 *     size). Never the disk tier, the journal, the system of record, the spec, the
 *     configuration or the tokens file: they are simply not there;
 *   - its own pid namespace (it sees only its own processes; when bwrap dies, every process
 *     in it dies), IPC, UTS and network namespaces: no network at all. The API arrives over
 *     the server's Unix socket, bound into the sandbox at FUNCTION_SANDBOX_API_SOCKET; the
 *     worker's client speaks HTTP over it (ASIDE_URL=http+unix://...);
 *   - a session of its own (--new-session: no terminal to push input into) and death with its
 *     parent (--die-with-parent).
 *
 * A server that runs as root starts bwrap as root (it needs to read the installation wherever
 * it is), with every capability dropped but the two that let `setpriv` (util-linux) switch to
 * the workers' user before the interpreter starts: no Python code ever runs as root. A server
 * that is not root runs bwrap as itself, in a user namespace.
 *
 * The shared-memory folder the cache made for itself (mode 0700) is given to the workers'
 * group (group-owned, 02710), so that a worker of another user can open the frames published
 * there (group-readable) by their names, and nobody else can.
 *
 * The sandbox is probed once, at start: the interpreter run as the workers' user, in the
 * sandbox. "on" refuses to start when that fails; "auto" says loudly, once, why, and runs
 * workers without it (as their user still); "off" never tries. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "function_sandbox.h"
#include "util/util.h"

enum {
    PROBE_TIMEOUT_MS = 20000,        /* an interpreter's start, on a busy machine */
    PROBE_OUTPUT_BYTES = 64 << 10,   /* of a probe's output, kept */
    PROBE_POLL_MS = 100,
    MESSAGE_BYTES = 400              /* of a failed probe's output, in the log */
};

/* What the interpreter says of itself: its prefixes, its program's folder, then sys.path. */
static const char PATHS_SCRIPT[] =
    "import json, os, sys\n"
    "print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,\n"
    "                  os.path.dirname(sys.executable)] + [p for p in sys.path if p]))\n";

/* Folders the sandbox never shows, even when the interpreter names them. */
static const char *const never_bound[] = {"/proc", "/sys", "/dev", "/run", NULL};

/* Folders the sandbox has before any bind of ours: with what is under them, and alone. */
static const char *const made_with_contents[] = {"/usr", "/dev", "/proc", NULL};
static const char *const made_alone[] = {"/tmp", "/etc", NULL};

/* The top-level names beside /usr: links into it (merged /usr) or folders of their own. */
static const char *const root_links[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                         "/libx32", NULL};

/* The files of /etc a process of the sandbox may read. */
static const char *const etc_files[] = {"/etc/ld.so.cache", "/etc/ld.so.conf",
                                        "/etc/ld.so.conf.d", "/etc/localtime",
                                        "/etc/alternatives", NULL};

typedef struct strings {
    char  **v;
    size_t  n, cap;
    bool    failed;
} strings;

struct function_sandbox {
    bool    enabled;
    bool    switch_user; /* the child becomes uid/gid itself (no sandbox to do it) */
    uid_t   uid;
    gid_t   gid;
    strings python;      /* the installation's folders, as the interpreter names them */
    strings argv;        /* the worker's command line */
};

static void strings_add(strings *s, const char *text)
{
    if (s->failed)
        return;
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            s->failed = true;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(text))) {
        s->failed = true;
        return;
    }
    s->v[++s->n] = NULL;
}

static void strings_add3(strings *s, const char *a, const char *b, const char *c)
{
    strings_add(s, a);
    strings_add(s, b);
    if (c)
        strings_add(s, c);
}

static void strings_free(strings *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ---- the workers' user ------------------------------------------------------------------ */

static aside_status resolve_user(const function_sandbox_config *cfg, function_sandbox *sb,
                                 aside_error *err)
{
    const char *name = cfg->user && *cfg->user ? cfg->user : geteuid() == 0 ? "nobody" : NULL;
    sb->uid = geteuid();
    sb->gid = getegid();
    if (!name)
        return ASIDE_OK;
    struct passwd *pw = getpwnam(name);
    if (!pw)
        return error_set(err, ASIDE_ERR_INVALID, "ASIDE_FUNCTION_USER: no user %s", name);
    if (pw->pw_uid != geteuid() && geteuid() != 0)
        return error_set(err, ASIDE_ERR_INVALID, "ASIDE_FUNCTION_USER: only a server that "
                         "runs as root can run functions as %s", name);
    sb->uid = pw->pw_uid;
    sb->gid = pw->pw_gid;
    return ASIDE_OK;
}

/* ---- running a probe -------------------------------------------------------------------- */

/* Read what fd gives into out (at most PROBE_OUTPUT_BYTES kept) until its end or deadline. */
static bool read_until_end(int fd, buf *out, int64_t deadline_ms)
{
    char chunk[4096];
    for (;;) {
        int64_t left = deadline_ms - clock_mono_ns() / 1000000;
        if (left <= 0)
            return false;
        struct pollfd pfd = {fd, POLLIN, 0};
        int n = poll(&pfd, 1, left > PROBE_POLL_MS ? PROBE_POLL_MS : (int)left);
        if (n < 0 && errno != EINTR)
            return false;
        if (n <= 0)
            continue;
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got == 0)
            return true;
        if (got < 0 && errno != EINTR)
            return false;
        if (got > 0 && out->len < PROBE_OUTPUT_BYTES)
            buf_printf(out, "%.*s", (int)got, chunk);
    }
}

/* Run program with argv and env (its output, stdout and stderr together, into out), as the
 * workers would run (no_new_privs; as their user when sb->switch_user). Its exit status, or
 * -1 when it could not run or ran past PROBE_TIMEOUT_MS. */
static int run_probe(const function_sandbox *sb, const char *program, char *const *argv,
                     char *const *env, buf *out)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0)
            _exit(126);
        setpgid(0, 0);
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (!function_sandbox_become_user(sb))
            _exit(126);
        execve(program, argv, env);
        execvpe(program, argv, env);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    bool ended = read_until_end(fds[0], out, clock_mono_ns() / 1000000 + PROBE_TIMEOUT_MS);
    close(fds[0]);
    if (!ended)
        kill(-pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!ended || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* A probe's output, for one line of the log: its first MESSAGE_BYTES, newlines as "; ". */
static const char *one_line(buf *out)
{
    if (!out->data || !out->len)
        return "(no output)";
    if (out->len > MESSAGE_BYTES)
        out->data[MESSAGE_BYTES] = '\0';
    for (char *c = out->data; *c; c++) {
        if (*c == '\n')
            *c = *(c + 1) ? ';' : '\0';
    }
    return out->data;
}

/* ---- the sandbox's command line --------------------------------------------------------- */

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static bool under(const char *path, const char *folder)
{
    size_t n = strlen(folder);
    return strncmp(path, folder, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Whether path may be shown in the sandbox: absolute, not the root, not a system folder the
 * sandbox makes its own, not already under /usr. */
static bool may_bind(const char *path)
{
    if (path[0] != '/' || strcmp(path, "/") == 0 || under(path, "/usr"))
        return false;
    for (size_t i = 0; never_bound[i]; i++) {
        if (under(path, never_bound[i]))
            return false;
    }
    return true;
}

/* The binds made so far (source and destination in turn) and the folders made for them. */
typedef struct binds {
    strings pairs;
    strings folders;
} binds;

/* Whether src at dest is shown already, by an earlier bind of a folder above it. */
static bool bound_already(const binds *b, const char *src, const char *dest)
{
    for (size_t i = 0; i + 1 < b->pairs.n; i += 2) {
        const char *s0 = b->pairs.v[i], *d0 = b->pairs.v[i + 1];
        size_t n = strlen(d0);
        if (under(dest, d0) && strncmp(src, s0, strlen(s0)) == 0 &&
            strcmp(src + strlen(s0), dest + n) == 0)
            return true;
    }
    return false;
}

static bool is_made(const binds *b, const char *folder)
{
    for (size_t i = 0; made_with_contents[i]; i++) {
        if (under(folder, made_with_contents[i]))
            return true;
    }
    for (size_t i = 0; made_alone[i]; i++) {
        if (strcmp(folder, made_alone[i]) == 0)
            return true;
    }
    for (size_t i = 0; i < b->folders.n; i++) {
        if (strcmp(b->folders.v[i], folder) == 0)
            return true;
    }
    for (size_t i = 1; i < b->pairs.n; i += 2) {
        if (under(folder, b->pairs.v[i]))
            return true;
    }
    return false;
}

/* The folders above dest that the sandbox does not have yet, made traversable (0755: bwrap
 * would make them 0700, and the workers' user could not reach dest). */
static void make_folders_above(strings *a, binds *b, const char *dest)
{
    char folder[PATH_MAX];
    snprintf(folder, sizeof folder, "%s", dest);
    for (char *slash = strchr(folder + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (!is_made(b, folder)) {
            strings_add3(a, "--perms", "0755", NULL);
            strings_add3(a, "--dir", folder, NULL);
            strings_add(&b->folders, folder);
        }
        *slash = '/';
    }
}

static void bind_one(strings *a, binds *b, const char *src, const char *dest)
{
    if (bound_already(b, src, dest))
        return;
    make_folders_above(a, b, dest);
    strings_add3(a, "--ro-bind", src, dest);
    strings_add(&b->pairs, src);
    strings_add(&b->pairs, dest);
}

/* Show path read-only, at its real path and (when it differs) at path itself. */
static void bind_both(strings *a, binds *b, const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real) || !may_bind(real) || !may_bind(path))
        return;
    bind_one(a, b, real, real);
    if (strcmp(real, path) != 0)
        bind_one(a, b, real, path);
}

/* The folders of the Python installation, as the interpreter names them (run as the server:
 * it can read them wherever they are), into folders. False when the interpreter cannot say. */
static bool find_python(const function_sandbox_config *cfg, strings *folders, buf *why)
{
    char *const argv[] = {(char *)cfg->python, "-c", (char *)PATHS_SCRIPT, NULL};
    function_sandbox self = {0};
    buf out = {0};
    int rc = run_probe(&self, cfg->python, argv, cfg->env, &out);
    json_t *paths = rc == 0 && out.data ? json_loads(out.data, 0, NULL) : NULL;
    if (!json_is_array(paths)) {
        buf_printf(why, "%s cannot say where its installation is: %s", cfg->python,
                   one_line(&out));
        json_decref(paths);
        buf_free(&out);
        return false;
    }
    size_t i;
    json_t *p;
    json_array_foreach(paths, i, p) {
        const char *path = json_string_value(p);
        if (path && exists(path))
            strings_add(folders, path);
    }
    json_decref(paths);
    buf_free(&out);
    return true;
}

static void bind_system(strings *a)
{
    strings_add3(a, "--ro-bind", "/usr", "/usr");
    for (size_t i = 0; root_links[i]; i++) {
        char target[PATH_MAX];
        ssize_t n = readlink(root_links[i], target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            strings_add3(a, "--symlink", target, root_links[i]);
        } else if (exists(root_links[i])) {
            strings_add3(a, "--ro-bind", root_links[i], root_links[i]);
        }
    }
    strings_add3(a, "--perms", "0755", NULL);
    strings_add3(a, "--dir", "/etc", NULL);
    for (size_t i = 0; etc_files[i]; i++)
        strings_add3(a, "--ro-bind-try", etc_files[i], etc_files[i]);
}

/* bwrap's options: namespaces, the file system, the user switch (as root). */
static void sandbox_options(const function_sandbox_config *cfg, const function_sandbox *sb,
                            strings *a)
{
    strings_add3(a, "--die-with-parent", "--new-session", NULL);
    strings_add3(a, "--unshare-pid", "--unshare-net", NULL);
    strings_add3(a, "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try");
    bind_system(a);
    strings_add3(a, "--proc", "/proc", NULL);
    strings_add3(a, "--dev", "/dev", NULL);
    if (cfg->tmp_bytes) {
        char size[32];
        snprintf(size, sizeof size, "%llu", (unsigned long long)cfg->tmp_bytes);
        strings_add3(a, "--size", size, NULL);
    }
    strings_add3(a, "--perms", "1777", NULL); /* as a /tmp is: any user, own files */
    strings_add3(a, "--tmpfs", "/tmp", NULL);
    binds b = {0};
    for (size_t i = 0; i < sb->python.n; i++)
        bind_both(a, &b, sb->python.v[i]);
    bind_both(a, &b, cfg->dir);
    if (cfg->shm_dir && exists(cfg->shm_dir))
        bind_one(a, &b, cfg->shm_dir, cfg->shm_dir);
    bind_one(a, &b, cfg->api_socket, FUNCTION_SANDBOX_API_SOCKET);
    strings_free(&b.pairs);
    strings_free(&b.folders);
    strings_add3(a, "--chdir", "/", NULL);
    if (geteuid() == 0) {
        strings_add3(a, "--cap-drop", "ALL", NULL);
        strings_add3(a, "--cap-add", "CAP_SETUID", NULL);
        strings_add3(a, "--cap-add", "CAP_SETGID", NULL);
        strings_add3(a, "--cap-add", "CAP_SETPCAP", NULL);
    }
}

/* The command that runs python with args (NULL-terminated) in the sandbox, into a. */
static void sandbox_command(const function_sandbox_config *cfg, const function_sandbox *sb,
                            const char *bwrap, const char *setpriv, char *const *args,
                            strings *a)
{
    strings_add(a, bwrap);
    sandbox_options(cfg, sb, a);
    strings_add(a, "--");
    if (geteuid() == 0) {
        char uid[32], gid[32];
        snprintf(uid, sizeof uid, "--reuid=%u", (unsigned)sb->uid);
        snprintf(gid, sizeof gid, "--regid=%u", (unsigned)sb->gid);
        strings_add3(a, setpriv, uid, gid);
        strings_add3(a, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all");
        strings_add(a, "--");
    }
    strings_add(a, cfg->python);
    for (size_t i = 0; args[i]; i++)
        strings_add(a, args[i]);
}

/* The path of name on PATH, under /usr (so that the sandbox has it), into path. */
static bool find_program(const char *name, char *path, size_t size)
{
    static const char *const folders[] = {"/usr/bin", "/usr/sbin", "/usr/local/bin", NULL};
    for (size_t i = 0; folders[i]; i++) {
        snprintf(path, size, "%s/%s", folders[i], name);
        if (access(path, X_OK) == 0)
            return true;
    }
    return false;
}

/* Build the sandbox and run the interpreter in it once. True when it works; why not in why. */
static bool sandbox_try(const function_sandbox_config *cfg, function_sandbox *sb, buf *why)
{
    char bwrap[PATH_MAX], setpriv[PATH_MAX] = "setpriv";
    if (!cfg->api_socket) {
        buf_printf(why, "the server has no Unix socket for the sandbox");
        return false;
    }
    if (!find_program("bwrap", bwrap, sizeof bwrap)) {
        buf_printf(why, "bwrap (bubblewrap) is not installed");
        return false;
    }
    if (geteuid() == 0 && !find_program("setpriv", setpriv, sizeof setpriv)) {
        buf_printf(why, "setpriv (util-linux) is not installed");
        return false;
    }
    if (!find_python(cfg, &sb->python, why))
        return false;
    char *const probe_args[] = {"-c", "import sys", NULL};
    char *const worker_args[] = {"-m", "aside.worker", NULL};
    strings probe = {0};
    sandbox_command(cfg, sb, bwrap, setpriv, probe_args, &probe);
    sandbox_command(cfg, sb, bwrap, setpriv, worker_args, &sb->argv);
    buf out = {0};
    int rc = probe.failed || sb->argv.failed ? -2 : run_probe(sb, bwrap, probe.v, cfg->env,
                                                              &out);
    if (rc == -2)
        buf_printf(why, "out of memory");
    else if (rc != 0)
        buf_printf(why, "the interpreter cannot run in it: %s", one_line(&out));
    strings_free(&probe);
    buf_free(&out);
    return rc == 0;
}

/* Give the shared-memory folder the cache made for itself to the workers' group (02710: they
 * open frames by name; the setgid bit gives every new frame that group), when they run as
 * another user. */
static void open_shm_to_workers(const function_sandbox_config *cfg, const function_sandbox *sb)
{
    struct stat st;
    if (!cfg->shm_dir || sb->uid == geteuid() || stat(cfg->shm_dir, &st) != 0 ||
        st.st_uid != geteuid() || (st.st_mode & 07777) != S_IRWXU)
        return;
    if (chown(cfg->shm_dir, (uid_t)-1, sb->gid) != 0 ||
        chmod(cfg->shm_dir, S_ISGID | S_IRWXU | S_IXGRP) != 0)
        log_line("warn", "functions: cannot open %s to the workers' group: %s (frames reach "
                 "functions over HTTP)", cfg->shm_dir, strerror(errno));
}

/* Without the sandbox: the interpreter run as the workers' user; a warning when it cannot. */
static void check_plain(const function_sandbox_config *cfg, function_sandbox *sb)
{
    sb->switch_user = sb->uid != geteuid();
    strings_add3(&sb->argv, cfg->python, "-m", "aside.worker");
    if (!sb->switch_user)
        return;
    char *const argv[] = {(char *)cfg->python, "-c", "import sys", NULL};
    buf out = {0};
    if (run_probe(sb, cfg->python, argv, cfg->env, &out) != 0)
        log_line("warn", "functions: %s cannot run as uid %u: %s: function calls will fail "
                 "(ASIDE_FUNCTION_USER)", cfg->python, (unsigned)sb->uid, one_line(&out));
    buf_free(&out);
}

function_sandbox *function_sandbox_open(const function_sandbox_config *cfg, aside_error *err)
{
    function_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (resolve_user(cfg, sb, err) != ASIDE_OK) {
        free(sb);
        return NULL;
    }
    mkdir(cfg->dir, 0755); /* bound into the sandbox: it must exist before the first call */
    const char *mode = cfg->mode ? cfg->mode : "auto";
    buf why = {0};
    if (strcmp(mode, "off") != 0) {
        sb->enabled = sandbox_try(cfg, sb, &why);
        if (!sb->enabled) {
            strings_free(&sb->argv);
            if (strcmp(mode, "on") == 0) {
                error_set(err, ASIDE_ERR_INVALID, "ASIDE_FUNCTION_SANDBOX=on: the sandbox "
                          "does not work here: %s", why.data ? why.data : "");
                buf_free(&why);
                function_sandbox_free(sb);
                return NULL;
            }
            log_line("warn", "functions: NO SANDBOX: %s; users' functions see this host's "
                     "files and network as uid %u (ASIDE_FUNCTION_SANDBOX=on refuses to start "
                     "so)", why.data ? why.data : "", (unsigned)sb->uid);
        }
    } else if (sb->uid == 0) {
        log_line("warn", "functions: ASIDE_FUNCTION_SANDBOX=off and ASIDE_FUNCTION_USER is "
                 "root: users' functions run as root with this host's files and network");
    }
    buf_free(&why);
    if (!sb->enabled)
        check_plain(cfg, sb);
    open_shm_to_workers(cfg, sb);
    if (sb->argv.failed) {
        function_sandbox_free(sb);
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (sb->enabled)
        log_line("info", "functions: workers run as uid %u, sandboxed (bwrap: no network but "
                 "the API at %s, read-only installation and function folder, private /tmp)",
                 (unsigned)sb->uid, cfg->api_socket);
    else
        log_line("info", "functions: workers run as uid %u, without a sandbox",
                 (unsigned)sb->uid);
    return sb;
}

void function_sandbox_free(function_sandbox *sb)
{
    if (!sb)
        return;
    strings_free(&sb->python);
    strings_free(&sb->argv);
    free(sb);
}

bool function_sandbox_enabled(const function_sandbox *sb) { return sb->enabled; }
uid_t function_sandbox_uid(const function_sandbox *sb) { return sb->uid; }
gid_t function_sandbox_gid(const function_sandbox *sb) { return sb->gid; }
const char *function_sandbox_program(const function_sandbox *sb) { return sb->argv.v[0]; }
char *const *function_sandbox_argv(const function_sandbox *sb) { return sb->argv.v; }

bool function_sandbox_become_user(const function_sandbox *sb)
{
    if (!sb->switch_user)
        return true;
    return setgroups(0, NULL) == 0 && setgid(sb->gid) == 0 && setuid(sb->uid) == 0;
}

/* ---- the server's Unix socket ----------------------------------------------------------- */

/* Remove the socket folders under tmp that servers now gone left (killed: no exit code ran),
 * named aside-api-<pid>-*, ours. */
static void remove_dead_socket_folders(const char *tmp)
{
    DIR *dir = opendir(tmp);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir))) {
        long pid = 0;
        char folder[PATH_MAX];
        struct stat st;
        if (sscanf(e->d_name, "aside-api-%ld-", &pid) != 1 || pid <= 0 ||
            (kill((pid_t)pid, 0) != 0 ? errno != ESRCH : true))
            continue;
        snprintf(folder, sizeof folder, "%s/%s", tmp, e->d_name);
        if (lstat(folder, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            continue;
        char sock[PATH_MAX + 16];
        snprintf(sock, sizeof sock, "%s/api.sock", folder);
        function_sandbox_socket_remove(sock);
    }
    closedir(dir);
}

bool function_sandbox_socket_path(char *path, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    tmp = tmp && *tmp ? tmp : "/tmp";
    remove_dead_socket_folders(tmp);
    char folder[PATH_MAX];
    snprintf(folder, sizeof folder, "%s/aside-api-%ld-XXXXXX", tmp, (long)getpid());
    if (!mkdtemp(folder)) /* mode 0700: only the server reaches the socket outside */
        return false;
    int n = snprintf(path, size, "%s/api.sock", folder);
    return n > 0 && (size_t)n < size && (size_t)n < FUNCTION_SANDBOX_SOCKET_MAX;
}

void function_sandbox_socket_remove(const char *path)
{
    if (!path || !*path)
        return;
    unlink(path);
    char folder[PATH_MAX];
    snprintf(folder, sizeof folder, "%s", path);
    char *slash = strrchr(folder, '/');
    if (slash) {
        *slash = '\0';
        rmdir(folder);
    }
}
