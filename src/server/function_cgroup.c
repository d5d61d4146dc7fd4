/* function_cgroup.c -- a pids cgroup per function worker.
 *
 * A worker's process group and its supervisor (a subreaper) cover what a function usually
 * starts, but a process may leave its group and outlive the supervisor, and a fork bomb is
 * bounded by RLIMIT_NPROC only for a user other than root, counted over all of that user's
 * processes. A cgroup of the pids controller holds every descendant of the process put in it,
 * whatever they do, and pids.max bounds how many there are. So when the server may make
 * cgroups (root, or a delegated hierarchy), each worker gets one under the server's own: in
 * cgroup v1 under /sys/fs/cgroup/pids/<ours>, in v2 under /sys/fs/cgroup/<ours> when the pids
 * controller is enabled for its children. It is named aside-<server pid>-<n>; a worker enters
 * it itself, between fork and exec, so nothing of it runs outside; stopping a worker kills
 * every process listed in cgroup.procs, round after round until none is left, then removes
 * the folder. The folders of servers that are gone (killed before they could remove them)
 * are swept when the next server looks for its root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "function_cgroup.h"

enum {
    KILL_ROUNDS = 200,       /* rounds of SIGKILL over cgroup.procs (each round may meet new
                                children forked meanwhile; pids.max bounds them) */
    KILL_ROUND_US = 5000,
    RMDIR_ATTEMPTS = 200,    /* a cgroup is busy for a moment after its last task exited */
    LINE_BYTES = 4096
};

static const char V1_MOUNT[] = "/sys/fs/cgroup/pids";
static const char V2_MOUNT[] = "/sys/fs/cgroup";
static const char PREFIX[] = "aside-";

/* Our cgroup's path in the pids hierarchy (v1) or the unified one (v2), from /proc/self/cgroup
 * into path; *v2 says which. */
static bool own_cgroup(char *path, size_t size, bool *v2)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return false;
    char line[LINE_BYTES];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *controllers = strchr(line, ':');
        char *where = controllers ? strchr(controllers + 1, ':') : NULL;
        if (!where)
            continue;
        *where++ = '\0';
        controllers++;
        bool pids = false;
        for (char *c = strtok(controllers, ","); c; c = strtok(NULL, ","))
            pids |= strcmp(c, "pids") == 0;
        if (pids || (*controllers == '\0' && access("/sys/fs/cgroup/cgroup.controllers",
                                                    F_OK) == 0)) {
            *v2 = !pids;
            snprintf(path, size, "%s", where);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* The pids (as text lines) of dir's cgroup.procs, each passed to fn; how many there were. */
static size_t each_process(const char *dir, void (*fn)(pid_t pid))
{
    char path[FUNCTION_CGROUP_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = 0;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
        n++;
        if (fn && pid > 0)
            fn((pid_t)pid);
    }
    fclose(f);
    return n;
}

static void kill_one(pid_t pid) { kill(pid, SIGKILL); }

size_t function_cgroup_count(const char *dir) { return each_process(dir, NULL); }

void function_cgroup_remove(const char *dir)
{
    if (!dir || !*dir)
        return;
    for (int i = 0; i < KILL_ROUNDS && each_process(dir, kill_one) > 0; i++)
        usleep(KILL_ROUND_US);
    for (int i = 0; i < RMDIR_ATTEMPTS && rmdir(dir) != 0 && errno == EBUSY; i++)
        usleep(KILL_ROUND_US);
}

/* Remove the aside-PID-* folders under root of servers that are gone. */
static void sweep(const char *root)
{
    DIR *d = opendir(root);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, PREFIX, sizeof PREFIX - 1) != 0)
            continue;
        long pid = strtol(e->d_name + sizeof PREFIX - 1, NULL, 10);
        if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
            char dir[FUNCTION_CGROUP_PATH_MAX];
            if ((size_t)snprintf(dir, sizeof dir, "%s/%s", root, e->d_name) < sizeof dir)
                function_cgroup_remove(dir);
        }
    }
    closedir(d);
}

bool function_cgroup_root(char *root, size_t size)
{
    char own[FUNCTION_CGROUP_PATH_MAX];
    bool v2 = false;
    if (!own_cgroup(own, sizeof own, &v2))
        return false;
    int n = snprintf(root, size, "%s%s", v2 ? V2_MOUNT : V1_MOUNT,
                     strcmp(own, "/") == 0 ? "" : own);
    if (n < 0 || (size_t)n >= size || n >= FUNCTION_CGROUP_PATH_MAX - 64 ||
        access(root, W_OK) != 0)
        return false;
    sweep(root);
    return true;
}

static bool write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len;
    return close(fd) == 0 && ok;
}

bool function_cgroup_make(const char *root, unsigned long n, unsigned max_pids, char *dir,
                          size_t size)
{
    int len = snprintf(dir, size, "%s/%s%ld-%lu", root, PREFIX, (long)getpid(), n);
    if (len < 0 || (size_t)len >= size || mkdir(dir, 0755) != 0) {
        *dir = '\0';
        return false;
    }
    char path[FUNCTION_CGROUP_PATH_MAX + 32], value[32];
    snprintf(path, sizeof path, "%s/pids.max", dir);
    snprintf(value, sizeof value, "%u", max_pids);
    if (access(path, F_OK) != 0 || (max_pids && !write_text(path, value))) {
        rmdir(dir); /* no pids controller here */
        *dir = '\0';
        return false;
    }
    return true;
}

bool function_cgroup_enter(const char *procs_path)
{
    int fd = open(procs_path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = write(fd, "0", 1) == 1; /* 0: the writing process */
    close(fd);
    return ok;
}

size_t function_user_tasks(uid_t uid)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    size_t tasks = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%.20s/status", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        long real = -1, threads = 0;
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "Uid:", 4) == 0)
                real = strtol(line + 4, NULL, 10);
            else if (strncmp(line, "Threads:", 8) == 0)
                threads = strtol(line + 8, NULL, 10);
        }
        fclose(f);
        if (real == (long)uid && threads > 0)
            tasks += (size_t)threads;
    }
    closedir(d);
    return tasks;
}
