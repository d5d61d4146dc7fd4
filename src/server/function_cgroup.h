/* function_cgroup.h -- a pids cgroup per function worker: a bound on how many processes its
 * functions may run, and the list of all of them, however they detached (function_cgroup.c).
 * Used by function_pool.c; nothing here knows of workers beyond their pids. */
#ifndef ASIDE_SERVER_FUNCTION_CGROUP_H
#define ASIDE_SERVER_FUNCTION_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum { FUNCTION_CGROUP_PATH_MAX = 512 };

/* The folder under which this server may make pids cgroups (its own cgroup in the pids
 * hierarchy, cgroup v1 or v2), into root (size bytes); false when there is none or it cannot
 * be written (not root, no delegation). The leftovers of servers that are gone (empty
 * aside-PID-* folders) are removed on the way. */
bool function_cgroup_root(char *root, size_t size);
/* Make root/aside-<our pid>-<n> with pids.max = max_pids (0: no bound) into dir (size
 * bytes, at most FUNCTION_CGROUP_PATH_MAX). False when it cannot be made. */
bool function_cgroup_make(const char *root, unsigned long n, unsigned max_pids, char *dir,
                          size_t size);
/* In a child between fork and exec (async-signal-safe): move the calling process into dir,
 * whose cgroup.procs path the parent prepared in procs_path. False when it failed. */
bool function_cgroup_enter(const char *procs_path);
/* The processes in dir right now. */
size_t function_cgroup_count(const char *dir);
/* Kill every process in dir (SIGKILL, until none is left, within a bounded number of rounds),
 * then remove it. An empty dir is ignored. */
void function_cgroup_remove(const char *dir);
/* The number of tasks (threads included) of the real user uid, from /proc: what
 * RLIMIT_NPROC counts. */
size_t function_user_tasks(uid_t uid);

#endif
