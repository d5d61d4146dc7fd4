/* function_python.h -- the interpreter that runs function workers (ASIDE_PYTHON), seen from the
 * server: whether it can import the aside package (a probe at start), and what a worker wrote
 * to its standard error before it could serve (function_python.c). Used by function_pool.c;
 * nothing here knows of the pool or its protocol. */
#ifndef ASIDE_SERVER_FUNCTION_PYTHON_H
#define ASIDE_SERVER_FUNCTION_PYTHON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/util.h"

/* Where a worker finds the standard error it was started with, while its descriptor 2 is the
 * start pipe; named to it by ASIDE_STDERR_FD (the worker puts it back on 2 once it runs). */
enum { FUNCTION_PYTHON_STDERR_FD = 5 };

/* ---- a worker's start: its first words on standard error ---- */

/* A pipe for a worker's standard error until it serves: fds[0] (non-blocking, close-on-exec)
 * for the server, fds[1] (close-on-exec) for the child. False when none can be made (errno
 * says why); the worker then starts without one. */
bool function_python_stderr_pipe(int fds[2]);
/* In a child between fork and exec (async-signal-safe): move write_fd above low_fd first
 * (before descriptors 3 and up are placed), returning the new number, or -1. */
int function_python_stderr_move(int write_fd, int low_fd);
/* In the child, once its descriptors are in place (async-signal-safe): the standard error it
 * has goes to FUNCTION_PYTHON_STDERR_FD, moved_fd becomes descriptor 2. False on failure. */
bool function_python_stderr_enter(int moved_fd);
/* What a worker that died before serving wrote first, read from read_fd (the pipe's end,
 * not closed): its first and last lines joined with " | ", into out (size bytes); "" when it
 * wrote nothing. */
void function_python_stderr_reason(int read_fd, char *out, size_t size);
/* A worker served: what it wrote before (warnings of its imports, say) goes to the server's
 * log, a line each, naming pid. read_fd is not closed. */
void function_python_stderr_log(int read_fd, pid_t pid);

/* ---- the installed package ---- */

/* The folder an installed server's aside package is in (`<prefix>/<libdir>/aside/python`,
 * found from this program's own path, as its libraries are), into out (size bytes); false
 * when there is none (a server run from its build folder). */
bool function_python_installed(char *out, size_t size);
/* The PYTHONPATH entry of a worker's environment into b ("PYTHONPATH=first:ours", or ours
 * alone, or first alone; nothing when both are empty), NUL-terminated; first may be NULL or
 * "". False when out of memory. */
bool function_python_path_entry(const char *first, buf *b);

/* ---- the probe at start ---- */

typedef struct function_python_probe function_python_probe;

/* Start a probe of python (run as workers are, by PATH when it has no slash, with
 * python_path first on its PYTHONPATH when not NULL or "") on a thread of its own: it runs
 * `python -c` finding the aside package and the packages it needs (without importing them),
 * for at most PROBE_TIMEOUT_MS, and logs one warning when it cannot (naming python and the
 * missing module), nothing when it can. Returns NULL when the thread cannot start (nothing is
 * probed then). The probe never blocks its caller. Both strings must outlive the probe. */
function_python_probe *function_python_probe_start(const char *python, const char *python_path);
/* Stop the probe (its process killed if it still runs) and free it. NULL is ignored. */
void function_python_probe_stop(function_python_probe *probe);

#endif
