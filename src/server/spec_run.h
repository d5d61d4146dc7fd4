/* spec_run.h -- the data spec at work (spec_run.c, spec_jobs.c, spec_views.c,
 * spec_reload.c).
 *
 * A spec file (src/spec/spec.h, docs/spec.md) is put to work: the datasets it declares are
 * preloaded on a small pool of threads, frames' columns checked and time to live and pins
 * applied; its functions registered; its SQL views materialised once the preload is done and
 * refreshed when one of their inputs gets a new content; datasets revalidated at their
 * intervals. Progress (items, bytes, rate, ETA) goes to the log at most once a second and to
 * telemetry. A reload (SIGHUP, function=reload_spec) reads the file again: a bad file leaves the
 * spec in force untouched; a good one preloads what is new or changed and never drops cached
 * data. */
#ifndef ASIDE_SERVER_SPEC_RUN_H
#define ASIDE_SERVER_SPEC_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "aside.h"
#include "server.h"

struct json_t;

typedef struct spec_run spec_run;

/* Read and check the spec file at path. NULL when it is bad or unreadable, with err saying
 * "path:line:column: what" (err->code "bad_spec"). Nothing runs until spec_run_start. The
 * caller owns the result and frees it with spec_run_destroy. */
spec_run      *spec_run_create(const char *path, aside_error *err);
/* Put the spec to work for s (its cache, its function pool; s must outlive p's threads): starts
 * the preload threads and the background thread (revalidation, views). Call once, after the
 * HTTP server is started and the function pool knows its URL (function workers need it). */
aside_status   spec_run_start(spec_run *p, const server *s, aside_error *err);
/* Stop the threads (a load in progress finishes first) and free p. NULL is ignored. Call after
 * the HTTP server stopped (requests may read p) and before the cache closes. */
void           spec_run_destroy(spec_run *p);
/* Read the spec file again. A bad file: the spec in force stays, err says why. A good one
 * replaces it: new or changed datasets are preloaded, new or changed functions registered,
 * new or changed views materialised; what the old spec loaded stays cached. *summary (may be
 * NULL; the caller owns it) receives {"datasets"|"views"|"functions": {"added", "changed",
 * "removed", "unchanged"}}. Thread-safe; reloads run one at a time. */
aside_status   spec_run_reload(spec_run *p, struct json_t **summary, aside_error *err);
/* What main does on SIGHUP: reload and log the outcome. p may be NULL (no spec: logged). */
void           spec_run_on_sighup(spec_run *p);
/* The preload's progress for telemetry: {"state", "items", "bytes", "rate_bytes_per_second",
 * "eta_seconds", "errors", ...} (docs/spec.md). The caller owns it; NULL when p is NULL. */
struct json_t *spec_run_progress_json(spec_run *p);
/* Whether the server may say it is ready as far as the spec goes: started, and either the
 * spec says ready_after_preload: false or the start's preload run is over (done or failed; a
 * reload's later run does not count). Thread-safe. */
bool           spec_run_ready(spec_run *p);
/* The spec file's path (lives as long as p). */
const char    *spec_run_path(const spec_run *p);

/* The spec in force, as function=spec answers it. */
typedef struct spec_run_info {
    const char *path;           /* the file (lives as long as the spec_run) */
    char       *json;           /* the spec as JSON text; the caller frees it */
    int64_t     loaded_unix_ms; /* when it was read */
    unsigned    reloads;        /* reloads that put a new spec in force */
} spec_run_info;

/* Fill *out with the spec in force. Thread-safe. */
aside_status   spec_run_in_force(spec_run *p, spec_run_info *out, aside_error *err);

#endif
