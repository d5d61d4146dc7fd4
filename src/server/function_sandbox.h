/* function_sandbox.h -- who function workers run as, and the sandbox they run in
 * (function_sandbox.c). Used by function_pool.c: this module decides, once at start, the user
 * and the command line of every worker; it never starts a worker itself. */
#ifndef ASIDE_SERVER_FUNCTION_SANDBOX_H
#define ASIDE_SERVER_FUNCTION_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aside.h"

/* Where the sandbox finds the server's API: the Unix socket below, bound at this path inside,
 * and the URL the workers' clients are given for it. */
#define FUNCTION_SANDBOX_API_SOCKET "/run/aside/api.sock"
#define FUNCTION_SANDBOX_API_URL "http+unix://%2Frun%2Faside%2Fapi.sock/cache/api/v1.0/"

typedef struct function_sandbox_config {
    const char *mode;         /* ASIDE_FUNCTION_SANDBOX: "auto" (default), "on", "off" */
    const char *user;         /* ASIDE_FUNCTION_USER; NULL: nobody when root, else ours */
    const char *python;       /* the interpreter workers run */
    const char *dir;          /* the function folder (read-only inside) */
    const char *shm_dir;      /* where frames are published (read-only inside), or NULL */
    const char *api_socket;   /* the server's Unix socket, or NULL: no sandbox possible */
    char *const *env;         /* the workers' environment (the probes run with it) */
    uint64_t    tmp_bytes;    /* size of the private /tmp */
} function_sandbox_config;

typedef struct function_sandbox function_sandbox;

/* Decide the workers' user (refused: a user that does not exist) and, by mode, whether they
 * run sandboxed: "on" and "auto" probe the sandbox once (bwrap and the interpreter as the
 * workers' user, in the sandbox); "on" refuses to start without it, "auto" logs a warning and
 * goes on without. Also opens the shared-memory folder to the workers' group. NULL with err
 * set when the server must not start; the caller frees the result with
 * function_sandbox_free(). */
function_sandbox *function_sandbox_open(const function_sandbox_config *cfg, aside_error *err);
void              function_sandbox_free(function_sandbox *sb);
/* Whether workers run in the sandbox. */
bool              function_sandbox_enabled(const function_sandbox *sb);
/* The uid and gid workers run as. */
uid_t             function_sandbox_uid(const function_sandbox *sb);
gid_t             function_sandbox_gid(const function_sandbox *sb);
/* The program to exec and its argv (NULL-terminated, owned by sb, valid until it is freed)
 * to run `python -m aside.worker` as the workers' user: bwrap's command line in the sandbox,
 * else the interpreter itself. */
const char       *function_sandbox_program(const function_sandbox *sb);
char *const      *function_sandbox_argv(const function_sandbox *sb);
/* In a child between fork and exec (async-signal-safe): become the workers' user when no
 * sandbox does it (a server that runs as root without the sandbox). False when it failed. */
bool              function_sandbox_become_user(const function_sandbox *sb);

/* The server's Unix socket for the sandbox: a new private folder (mode 0700) under $TMPDIR or
 * /tmp, aside-api-<our pid>-*, and the socket's path in it into path (size bytes); the
 * folders of servers that are gone are removed first. False when it cannot be made. */
enum { FUNCTION_SANDBOX_SOCKET_MAX = 108 }; /* sun_path */
bool              function_sandbox_socket_path(char *path, size_t size);
/* Remove the socket at path and its folder. NULL or "" is ignored. */
void              function_sandbox_socket_remove(const char *path);

#endif
