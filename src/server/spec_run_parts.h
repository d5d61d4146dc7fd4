/* spec_run_parts.h -- what the pieces of the data spec at work share (spec_run.h is the
 * module's interface; this header is for its own files only):
 *
 *   spec_state.c   the state they all share, below them all: the reference-counted "active"
 *                  record of a spec in force, the stop flag
 *   spec_run.c     the spec in force: the lifecycle, the background thread, telemetry
 *   spec_jobs.c    jobs and progress: the queue and its pool of threads, listing, loading,
 *                  registering functions, revalidating; progress counted and logged
 *   spec_views.c   views: materialised once the preload is done, refreshed when an input's
 *                  generation changes
 *   spec_reload.c  reloads: the new file compared with the spec in force, what changed queued
 *
 * Locking: spec_run.lock guards everything in struct spec_run but the background thread's own
 * (views_of's states); a function whose comment says "under p->lock" expects it held. */
#ifndef ASIDE_SERVER_SPEC_RUN_PARTS_H
#define ASIDE_SERVER_SPEC_RUN_PARTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"
#include "spec/spec.h"
#include "spec_run.h"

enum {
    TICK_MS = 500,          /* the background thread's poll of views' inputs and due work */
    LOG_EVERY_MS = 1000,    /* progress lines at most this often */
    VIEW_RETRY_MS = 5000,   /* a view whose query failed is tried again after this */
    ERRORS_KEPT = 8,        /* errors and warnings telemetry keeps; warnings logged up to this */
    ERROR_BYTES = 512,
    DTYPE_BYTES = 96,
    NS_PER_MS = 1000000
};

#define SPEC_RUN_BYTES_PER_MB 1e6 /* rates in MB/s, as transfer tools print them */

typedef struct active {
    spec    *spec;
    unsigned refs;              /* under spec_run.lock */
    int64_t  loaded_unix_ms;
    int64_t *revalidate_due_ms; /* per dataset: when it is next due (monotonic) */
    bool    *revalidating;      /* per dataset: a revalidation is queued or running */
} active;

typedef enum job_kind { JOB_LIST, JOB_LOAD, JOB_FUNCTION, JOB_REVALIDATE } job_kind;

typedef struct job {
    job_kind    kind;
    active     *spec;         /* a reference */
    size_t      index;        /* the dataset's, or the function's */
    char       *key;          /* JOB_LOAD */
    uint64_t    listed_bytes; /* JOB_LOAD: the size the listing gave (0: unknown) */
    struct job *next;
} job;

/* One preload run: the start, or a reload with work, while none is running. */
typedef struct progress {
    unsigned run;
    bool     running;
    uint64_t items_total, items_done, items_failed;
    uint64_t bytes_total, bytes_done;
    unsigned listings;  /* listings not done yet: totals still grow */
    uint64_t functions_registered, functions_failed;
    uint64_t warnings;
    int64_t  started_ns, finished_ns, logged_ns;
    char     errors[ERRORS_KEPT][ERROR_BYTES];
    size_t   error_count;
} progress;

typedef struct view_input {
    char    *key;
    uint64_t generation;
} view_input;

/* What the background thread knows of a view (it alone touches this). */
typedef struct view_state {
    view_input *inputs;
    size_t      input_count;
    uint64_t    generation; /* of the content we stored; 0: none yet */
    int64_t     retry_ms;   /* after a failure: not before this (monotonic) */
    char       *last_error; /* logged once until it changes */
} view_state;

typedef struct counters {
    uint64_t views_materialised, views_refreshed, views_failed;
    uint64_t revalidations, revalidated_changed, revalidated_removed, revalidation_errors;
} counters;

struct spec_run {
    char           *path;
    aside_cache    *cache; /* set by spec_run_start */
    const server   *server; /* set by spec_run_start: the cache, the function pool */
    pthread_mutex_t lock;  /* everything below but the background thread's own */
    pthread_cond_t  work;  /* a job was queued, or stop */
    pthread_cond_t  tick;  /* wakes the background thread early */
    pthread_mutex_t reloading; /* one reload at a time */
    active         *current;
    unsigned        reloads;
    job            *head, *tail;
    unsigned        pending; /* preload jobs queued or running (revalidations not counted) */
    progress        progress;
    counters        counters;
    bool            stopping;
    pthread_t      *workers;
    unsigned        worker_count;
    pthread_t       background;
    bool            background_started;
    active         *views_of; /* the background thread's: whose views the states are */
    view_state     *views;
};

/* ---- spec_state.c: the state the parts share ------------------------------------------------ */

/* The monotonic clock in milliseconds, the unit of every due time here. */
static inline int64_t spec_state_mono_ms(void) { return clock_mono_ns() / NS_PER_MS; }
/* A record of s in force (taking s; freed on failure), one reference; NULL when out of
 * memory. */
active *spec_state_active_new(spec *s);
/* Drop a reference (under p->lock, or with no other thread left). NULL is ignored. */
void    spec_state_active_release(active *a);
/* Whether the threads are asked to stop (takes the lock). */
bool    spec_state_stopping(spec_run *p);

/* ---- spec_jobs.c: jobs and progress --------------------------------------------------------- */

/* Queue the work of a: lists of the datasets to preload and the functions to register whose
 * flag is set (all when a flag array is NULL). A run starts unless one is going; with nothing
 * to do, the last run's figures stay. Under p->lock. */
void    spec_run_queue_work(spec_run *p, active *a, const bool *datasets, const bool *functions);
/* Queue the revalidations that are due (under p->lock). */
void    spec_run_schedule_revalidations(spec_run *p, active *a);
/* A progress line if the last one is a second old (under p->lock). */
void    spec_run_log_progress(spec_run *p);
/* Keep what for telemetry, if there is room (under p->lock). */
void    spec_run_keep_error(progress *g, const char *what);
/* A pool thread: takes jobs until p->stopping. arg is p. */
void   *spec_run_worker_main(void *arg);
/* Free every job still queued (no thread left). */
void    spec_run_queue_clear(spec_run *p);
/* The run's seconds so far (or in all, once finished), bytes per second, and seconds left
 * (-1: unknown). */
double  spec_run_elapsed_s(const progress *g);
double  spec_run_rate_bytes_per_s(const progress *g);
double  spec_run_eta_s(const progress *g);

/* ---- spec_views.c: views -------------------------------------------------------------------- */

/* Materialise a's views that are due (the background thread only, without p->lock). */
void    spec_run_refresh_views(spec_run *p, active *a);
/* Free the views' states (no thread left). */
void    spec_run_views_clear(spec_run *p);

#endif
