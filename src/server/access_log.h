/* access_log.h -- one JSON line per request (access_log.c): the access log, and the warning
 * of a slow request.
 *
 * ASIDE_ACCESS_LOG says where lines go: off (the default), stderr, or a file (opened
 * O_APPEND|O_CLOEXEC, created 0640, reopened on SIGUSR1 for logrotate). ASIDE_SLOW_MS: a
 * request that took at least that long is also logged, with the same line, as a warning in the
 * server's own log (stderr), whether the access log is on or not (0: never).
 *
 * A line, its fields in this order (docs/deploy.md, "Access log"):
 *
 *   {"time": "2026-12-07T07:00:00.123Z", "request_id": "...", "method": "GET",
 *    "function": "read", "key": "a/b.json", "status": 200, "bytes": 312, "source": "memory",
 *    "duration_us": 57, "client": "127.0.0.1:53110", "token": "reader"}
 *
 * time is when the response's last byte left (UTC, milliseconds); bytes what was written (the
 * status line, headers and body; less when the client went away); function, key, source and
 * token are null when the request did not get that far (source: only a read says it). token is
 * the name of the caller's token in the tokens file, never its secret.
 *
 * The log is one per process, like the server's own log: started once by main before the HTTP
 * server, stopped after it. Lines are written by a thread of its own, so the threads that
 * answer requests never wait for the disk; access_log_request only copies a line into a
 * bounded queue (a line that does not fit is dropped and counted). */
#ifndef ASIDE_SERVER_ACCESS_LOG_H
#define ASIDE_SERVER_ACCESS_LOG_H

#include "aside.h"
#include "http.h"

typedef struct access_log_config {
    const char *target;  /* "off", "stderr" or a file's path */
    int         slow_ms; /* requests this slow are warned about in the server's log; 0: never */
} access_log_config;

/* Check that target can be opened for appending (created when missing, 0640); the reason in
 * err when not. "off" and "stderr" always can. */
aside_status access_log_check(const char *target, aside_error *err);
/* Start the log (the file opened, the writer thread started). Before it, and after
 * access_log_stop, access_log_request writes nothing. On failure nothing is started and err
 * says why. */
aside_status access_log_start(const access_log_config *cfg, aside_error *err);
/* Ask the writer to reopen the file at its path (after logrotate renamed it): lines queued
 * before go to the old file, whole; later ones to the new. Returns at once; a file that cannot
 * be opened is reported in the server's log and the old one kept. No-op unless a file. */
void         access_log_reopen(void);
/* Write what is queued, stop the writer and close the file. */
void         access_log_stop(void);
/* The request r is over: queue its line when the log is on, and warn when it was slow.
 * Thread-safe, never blocks on I/O of the log's file. */
void         access_log_request(const http_record *r);

#endif
