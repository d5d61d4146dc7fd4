/* preload.c -- the data spec at work: preloading, revalidation, views, functions, reloads.
 *
 * The spec in force is an "active" record: the parsed spec (src/spec/spec.h) and the state that
 * goes with it, reference counted, so that a reload can put a new one in force while jobs of
 * the old one finish with the spec they started with. Everything here runs on two kinds of
 * threads, started after the server listens, so that it answers from the first moment: a read
 * of a key being preloaded joins the preload's fetch (single flight) instead of fetching again,
 * and readiness shows in telemetry ("preload": {"state": "running"}).
 *
 *   - A small pool (preload_threads, default 4) takes jobs from one FIFO queue: list a
 *     dataset's keys in the system of record (a glob or prefix expands to its matches; a key's
 *     listing gives its size for the totals), load one key (aside_read, then the columns check,
 *     time to live and pin), register one function, revalidate one dataset (aside_update of its
 *     cached keys). A small pool, not the HTTP load threads: preloading must not take every
 *     thread that clients' misses need.
 *   - One background thread wakes every TICK_MS: it queues the revalidations that are due,
 *     prints progress, and, once no preload job is pending, materialises the views and
 *     refreshes those whose inputs changed. A view's inputs are the keys its query read: the
 *     query's resolver records each frame it hands to the engine with its generation (the
 *     cache numbers every content of a key), and a refresh is due when an input's generation
 *     in the cache differs from the one recorded. Generations cost one lookup per input, so
 *     polling is cheap; an input that left the cache counts as unchanged (reading it back would
 *     fetch it only to compare).
 *
 * Progress (items and bytes done of the totals known so far, rate, ETA) is counted under the
 * lock, logged at most once a second and at the end, and answered to telemetry. Load failures
 * are all logged and the first few kept for telemetry; warnings (a pin or time to live the cache
 * refused) are counted, the first few logged.
 *
 * A reload parses the file first and changes nothing if it is bad. Otherwise datasets,
 * views and functions are compared with the spec in force by identity (a dataset's key, glob or
 * prefix; a view's or function's name): added and changed ones are put to work, unchanged ones
 * left alone, removed ones only stop being revalidated or refreshed. Nothing is deleted or
 * unpinned: cached data stays. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "lib/lib.h"
#include "server.h"
#include "spec/spec.h"
#include "value/value.h"

enum {
    TICK_MS = 500,          /* the background thread's poll of views' inputs and due work */
    LOG_EVERY_MS = 1000,    /* progress lines at most this often */
    VIEW_RETRY_MS = 5000,   /* a view whose query failed is tried again after this */
    ERRORS_KEPT = 8,        /* errors and warnings telemetry keeps; warnings logged up to this */
    ERROR_BYTES = 512,
    DTYPE_BYTES = 96,
    NS_PER_MS = 1000000
};

static const double BYTES_PER_MB = 1e6; /* rates in MB/s, as transfer tools print them */

/* ---- the spec in force -------------------------------------------------------------------- */

typedef struct active {
    spec    *spec;
    unsigned refs;              /* under preload.lock */
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

struct preload {
    char           *path;
    aside_cache    *cache; /* set by preload_start */
    api            *api;
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

static int64_t mono_ms(void) { return clock_mono_ns() / NS_PER_MS; }

static active *active_new(spec *s)
{
    active *a = calloc(1, sizeof *a);
    size_t n = s->dataset_count ? s->dataset_count : 1;
    if (a) {
        a->revalidate_due_ms = calloc(n, sizeof *a->revalidate_due_ms);
        a->revalidating = calloc(n, sizeof *a->revalidating);
    }
    if (!a || !a->revalidate_due_ms || !a->revalidating) {
        if (a) {
            free(a->revalidate_due_ms);
            free(a->revalidating);
        }
        free(a);
        spec_free(s);
        return NULL;
    }
    a->spec = s;
    a->refs = 1;
    a->loaded_unix_ms = clock_unix_ms();
    return a;
}

/* Drop a reference (under p->lock, or with no other thread left). */
static void active_release(active *a)
{
    if (!a || --a->refs > 0)
        return;
    spec_free(a->spec);
    free(a->revalidate_due_ms);
    free(a->revalidating);
    free(a);
}

static aside_read_options dataset_options(const spec_dataset *d)
{
    return (aside_read_options){.storage = d->storage, .type = d->type};
}

static const spec_dataset *dataset_of(const job *j) { return &j->spec->spec->datasets[j->index]; }

/* ---- the queue ---------------------------------------------------------------------------- */

/* Queue a job (under p->lock); false when out of memory (logged). */
static bool queue(preload *p, job_kind kind, active *a, size_t index, const char *key,
                  uint64_t listed_bytes)
{
    job *j = calloc(1, sizeof *j);
    if (!j || (key && !(j->key = strdup(key)))) {
        free(j);
        log_line("error", "preload: out of memory: a job is dropped");
        return false;
    }
    j->kind = kind;
    j->spec = a;
    j->index = index;
    j->listed_bytes = listed_bytes;
    a->refs++;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->pending += kind != JOB_REVALIDATE;
    pthread_cond_signal(&p->work);
    return true;
}

static void job_free(job *j)
{
    active_release(j->spec);
    free(j->key);
    free(j);
}

/* ---- progress ----------------------------------------------------------------------------- */

static double elapsed_s(const progress *g)
{
    int64_t end = g->running ? clock_mono_ns() : g->finished_ns;
    return (double)(end - g->started_ns) / 1e9;
}

static double rate_bytes_per_s(const progress *g)
{
    double s = elapsed_s(g);
    return s > 0 ? (double)g->bytes_done / s : 0;
}

/* Seconds left at the current rate, or -1 when unknown (totals still growing, no rate yet). */
static double eta_s(const progress *g)
{
    double rate = rate_bytes_per_s(g);
    if (!g->running)
        return 0;
    if (g->listings || rate <= 0 || g->bytes_total < g->bytes_done)
        return -1;
    return (double)(g->bytes_total - g->bytes_done) / rate;
}

static void log_progress(const progress *g)
{
    double eta = eta_s(g);
    char eta_text[32] = "unknown";
    if (eta >= 0)
        snprintf(eta_text, sizeof eta_text, "%.0f s", eta);
    log_line("info", "preload: %llu/%llu items (%llu failed), %.1f of %.1f%s MB, %.1f MB/s, "
             "ETA %s", (unsigned long long)(g->items_done + g->items_failed),
             (unsigned long long)g->items_total, (unsigned long long)g->items_failed,
             (double)g->bytes_done / BYTES_PER_MB, (double)g->bytes_total / BYTES_PER_MB,
             g->listings ? "+" : "", rate_bytes_per_s(g) / BYTES_PER_MB, eta_text);
}

/* A progress line if the last one is a second old (under p->lock). */
static void maybe_log_progress(preload *p)
{
    progress *g = &p->progress;
    int64_t now = clock_mono_ns();
    if (!g->running || now - g->logged_ns < (int64_t)LOG_EVERY_MS * NS_PER_MS)
        return;
    g->logged_ns = now;
    log_progress(g);
}

static void log_finished(const progress *g)
{
    bool failed = g->items_failed || g->functions_failed;
    log_line(failed ? "error" : "info", "preload: %s in %.1f s: %llu items loaded, %llu failed, "
             "%.1f MB (%.1f MB/s); %llu functions registered, %llu failed; %llu warnings",
             failed ? "finished with failures" : "done", elapsed_s(g),
             (unsigned long long)g->items_done, (unsigned long long)g->items_failed,
             (double)g->bytes_done / BYTES_PER_MB, rate_bytes_per_s(g) / BYTES_PER_MB,
             (unsigned long long)g->functions_registered,
             (unsigned long long)g->functions_failed, (unsigned long long)g->warnings);
}

/* Start a run unless one is going (under p->lock): its counters start from zero. */
static void begin_run(preload *p)
{
    progress *g = &p->progress;
    if (g->running)
        return;
    unsigned run = g->run + 1;
    memset(g, 0, sizeof *g);
    g->run = run;
    g->running = true;
    g->started_ns = g->logged_ns = clock_mono_ns();
}

/* A preload job is done (under p->lock): the run ends with the last one. */
static void job_done(preload *p, const job *j)
{
    if (j->kind == JOB_REVALIDATE || --p->pending > 0 || !p->progress.running)
        return;
    p->progress.running = false;
    p->progress.finished_ns = clock_mono_ns();
    log_finished(&p->progress);
    pthread_cond_signal(&p->tick); /* views may go now */
}

/* Keep what for telemetry, if there is room (under p->lock). */
static void keep_error(progress *g, const char *what)
{
    if (g->error_count < ERRORS_KEPT)
        snprintf(g->errors[g->error_count++], ERROR_BYTES, "%s", what);
}

static void item_failed(preload *p, const job *j, const char *key, const char *why)
{
    char what[ERROR_BYTES];
    snprintf(what, sizeof what, "%s: %s", key, why);
    log_line("error", "preload: %s", what);
    pthread_mutex_lock(&p->lock);
    progress *g = &p->progress;
    g->items_failed++;
    g->bytes_total -= j->listed_bytes < g->bytes_total ? j->listed_bytes : g->bytes_total;
    keep_error(g, what);
    pthread_mutex_unlock(&p->lock);
}

static void item_loaded(preload *p, const job *j, uint64_t bytes)
{
    pthread_mutex_lock(&p->lock);
    progress *g = &p->progress;
    g->items_done++;
    g->bytes_done += bytes;
    g->bytes_total = g->bytes_total + bytes - j->listed_bytes; /* the size as loaded */
    maybe_log_progress(p);
    pthread_mutex_unlock(&p->lock);
}

/* A setting the cache refused for key: a warning, the first few logged. */
static void warn(preload *p, const char *key, const char *what, const aside_error *err)
{
    char text[ERROR_BYTES];
    snprintf(text, sizeof text, "%s: %s not applied: %s", key, what, err->message);
    pthread_mutex_lock(&p->lock);
    progress *g = &p->progress;
    if (++g->warnings <= ERRORS_KEPT)
        log_line("warning", "preload: %s%s", text,
                 g->warnings == ERRORS_KEPT ? " (further warnings are counted, not logged)" : "");
    keep_error(g, text);
    pthread_mutex_unlock(&p->lock);
}

/* ---- loading a key ------------------------------------------------------------------------ */

/* Whether the frame in v has the dataset's columns with their dtypes; why says the first
 * difference. */
static bool columns_match(const spec_dataset *d, const aside_value *v, char *why, size_t size)
{
    const frame *f = value_frame(v);
    if (!f) {
        snprintf(why, size, "is %s, not a frame, so its columns cannot be checked; not kept",
                 aside_value_type_name(aside_value_type_of(v)));
        return false;
    }
    for (size_t i = 0; i < d->column_count; i++) {
        const spec_column *c = &d->columns[i];
        ptrdiff_t at = frame_field_find(f, c->name);
        char found[DTYPE_BYTES];
        if (at < 0) {
            snprintf(why, size, "column \"%s\" (%s) is missing; not kept", c->name, c->dtype);
            return false;
        }
        frame_pandas_dtype(&f->fields[at], found, sizeof found);
        if (strcmp(found, c->dtype) != 0) {
            snprintf(why, size, "column \"%s\": expected dtype %s, found %s; not kept", c->name,
                     c->dtype, found);
            return false;
        }
    }
    return true;
}

/* Time to live and pin, as the dataset asks. */
static void apply_settings(preload *p, const spec_dataset *d, const char *key)
{
    aside_error err;
    aside_read_options o = dataset_options(d);
    if (d->ttl_ms && aside_expire(p->cache, key, d->ttl_ms, &err) != ASIDE_OK)
        warn(p, key, "ttl", &err);
    if (d->pin && aside_pin(p->cache, key, &o, &err) != ASIDE_OK)
        warn(p, key, "pin", &err);
}

/* After a new content of key entered the cache: false (and the key removed) when its columns
 * are not the dataset's; why says how. */
static bool accept_content(preload *p, const spec_dataset *d, const char *key,
                           const aside_value *v, char *why, size_t size)
{
    if (d->column_count && !columns_match(d, v, why, size)) {
        aside_delete(p->cache, key, NULL);
        return false;
    }
    apply_settings(p, d, key);
    return true;
}

static void run_load(preload *p, const job *j)
{
    const spec_dataset *d = dataset_of(j);
    aside_read_options o = dataset_options(d);
    aside_value *v = NULL;
    aside_error err;
    char why[ERROR_BYTES];
    if (aside_read(p->cache, j->key, &o, &v, NULL, &err) != ASIDE_OK) {
        item_failed(p, j, j->key, err.message);
        return;
    }
    uint64_t bytes = aside_value_size(v);
    bool kept = accept_content(p, d, j->key, v, why, sizeof why);
    aside_value_release(v);
    if (kept)
        item_loaded(p, j, bytes);
    else
        item_failed(p, j, j->key, why);
}

/* ---- listing a dataset -------------------------------------------------------------------- */

/* Queue a load for each listed object of the dataset (under p->lock); how many. */
static size_t queue_matches(preload *p, const job *j, const aside_object_entry *objects,
                            size_t count, bool *found_key)
{
    const spec_dataset *d = dataset_of(j);
    size_t queued = 0;
    for (size_t i = 0; i < count; i++) {
        if (!spec_dataset_matches(d, objects[i].key))
            continue;
        if (!queue(p, JOB_LOAD, j->spec, j->index, objects[i].key, objects[i].size))
            break;
        p->progress.items_total++;
        p->progress.bytes_total += objects[i].size;
        queued++;
        *found_key = *found_key || d->match == SPEC_KEY;
    }
    return queued;
}

/* A glob or prefix whose listing failed (an error) or found nothing (a warning); under the
 * lock. */
static void listing_came_empty(preload *p, const spec_dataset *d, aside_status st,
                               const aside_error *err)
{
    char what[ERROR_BYTES];
    snprintf(what, sizeof what, "%s %s (line %d): %s", d->match == SPEC_GLOB ? "glob" : "prefix",
             d->pattern, d->line, st != ASIDE_OK ? err->message
                                                 : "matches no object of the system of record");
    log_line(st != ASIDE_OK ? "error" : "warning", "preload: %s", what);
    keep_error(&p->progress, what);
    if (st != ASIDE_OK) {
        p->progress.items_total++;
        p->progress.items_failed++;
    } else {
        p->progress.warnings++;
    }
}

/* What a listing found (under p->lock). A key the listing does not show is still loaded: the
 * cache may hold it, and if not, the load says why. */
static void listed(preload *p, const job *j, aside_status st, const aside_error *err,
                   const aside_object_entry *objects, size_t count)
{
    const spec_dataset *d = dataset_of(j);
    bool found_key = false;
    p->progress.listings--;
    size_t queued = st == ASIDE_OK ? queue_matches(p, j, objects, count, &found_key) : 0;
    if (d->match == SPEC_KEY) {
        if (!found_key && queue(p, JOB_LOAD, j->spec, j->index, d->pattern, 0))
            p->progress.items_total++;
    } else if (st != ASIDE_OK || queued == 0) {
        listing_came_empty(p, d, st, err);
    }
}

static void run_list(preload *p, const job *j)
{
    const spec_dataset *d = dataset_of(j);
    aside_read_options o = dataset_options(d);
    size_t len = 0;
    const char *start = spec_dataset_list_prefix(d, &len);
    char *prefix = strndup(start, len);
    aside_object_entry *objects = NULL;
    size_t count = 0;
    aside_error err;
    aside_status st = prefix ? aside_list(p->cache, &o, prefix, &objects, &count, &err)
                             : error_set(&err, ASIDE_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&p->lock);
    listed(p, j, st, &err, objects, count);
    pthread_mutex_unlock(&p->lock);
    aside_object_entries_free(objects, count);
    free(prefix);
}

/* ---- functions and revalidation ----------------------------------------------------------- */

static void run_function(preload *p, const job *j)
{
    const spec_function *f = &j->spec->spec->functions[j->index];
    aside_read_options o = {.storage = f->storage};
    aside_error err;
    aside_status st = functions_register(p->api, f->name, &o, &err);
    char what[ERROR_BYTES];
    snprintf(what, sizeof what, "function %s (line %d): %s", f->name, f->line,
             st == ASIDE_OK ? "registered" : err.message);
    log_line(st == ASIDE_OK ? "info" : "error", "preload: %s", what);
    pthread_mutex_lock(&p->lock);
    if (st == ASIDE_OK)
        p->progress.functions_registered++;
    else {
        p->progress.functions_failed++;
        keep_error(&p->progress, what);
    }
    pthread_mutex_unlock(&p->lock);
}

static bool stopping(preload *p)
{
    pthread_mutex_lock(&p->lock);
    bool stop = p->stopping;
    pthread_mutex_unlock(&p->lock);
    return stop;
}

static bool is_view_key(const spec *s, const char *key)
{
    for (size_t i = 0; i < s->view_count; i++) {
        if (strcmp(s->views[i].name, key) == 0)
            return true;
    }
    return false;
}

/* Revalidate one cached key of d; counts into c. */
static void revalidate_key(preload *p, const spec_dataset *d, const char *key, counters *c)
{
    aside_read_options o = dataset_options(d);
    aside_read_info info;
    aside_value *v = NULL;
    aside_error err;
    char why[ERROR_BYTES];
    aside_status st = aside_update(p->cache, key, &o, &v, &info, &err);
    c->revalidations++;
    if (st == ASIDE_ERR_NOT_FOUND) {
        c->revalidated_removed++;
        log_line("info", "revalidate: %s is gone from the system of record: removed", key);
    } else if (st != ASIDE_OK) {
        c->revalidation_errors++;
        log_line("warning", "revalidate: %s: %s (the cached copy stays)", key, err.message);
    } else if (!info.revalidated) {
        c->revalidated_changed++;
        bool kept = accept_content(p, d, key, v, why, sizeof why);
        log_line(kept ? "info" : "error", "revalidate: %s changed in the system of record: %s",
                 key, kept ? "reloaded" : why);
    }
    aside_value_release(v);
}

/* aside_update of every cached key of the dataset, but views and keys the cache alone holds
 * (the system of record would answer that they are gone). */
static void run_revalidate(preload *p, const job *j)
{
    const spec_dataset *d = dataset_of(j);
    aside_entry_info *entries = NULL;
    size_t count = 0;
    aside_error err;
    counters c = {0};
    if (aside_entries(p->cache, &entries, &count, &err) != ASIDE_OK)
        log_line("warning", "revalidate: cannot list the cache: %s", err.message);
    for (size_t i = 0; i < count && !stopping(p); i++) {
        if (spec_dataset_matches(d, entries[i].key) && !entries[i].cache_only &&
            !is_view_key(j->spec->spec, entries[i].key))
            revalidate_key(p, d, entries[i].key, &c);
    }
    aside_entries_free(entries, count);
    pthread_mutex_lock(&p->lock);
    j->spec->revalidating[j->index] = false;
    p->counters.revalidations += c.revalidations;
    p->counters.revalidated_changed += c.revalidated_changed;
    p->counters.revalidated_removed += c.revalidated_removed;
    p->counters.revalidation_errors += c.revalidation_errors;
    pthread_mutex_unlock(&p->lock);
}

/* Queue the revalidations that are due (under p->lock). */
static void schedule_revalidations(preload *p, active *a)
{
    int64_t now = mono_ms();
    for (size_t i = 0; i < a->spec->dataset_count; i++) {
        const spec_dataset *d = &a->spec->datasets[i];
        if (!d->revalidate_ms)
            continue;
        if (!a->revalidate_due_ms[i])
            a->revalidate_due_ms[i] = now + (int64_t)d->revalidate_ms;
        if (now < a->revalidate_due_ms[i] || a->revalidating[i])
            continue;
        a->revalidate_due_ms[i] = now + (int64_t)d->revalidate_ms;
        a->revalidating[i] = queue(p, JOB_REVALIDATE, a, i, NULL, 0);
    }
}

/* ---- the pool ----------------------------------------------------------------------------- */

static void run_job(preload *p, const job *j)
{
    switch (j->kind) {
    case JOB_LIST: run_list(p, j); break;
    case JOB_LOAD: run_load(p, j); break;
    case JOB_FUNCTION: run_function(p, j); break;
    case JOB_REVALIDATE: run_revalidate(p, j); break;
    }
}

static void *worker_main(void *arg)
{
    preload *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stopping && !p->head)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->stopping)
            break;
        job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        run_job(p, j);
        pthread_mutex_lock(&p->lock);
        job_done(p, j);
        job_free(j);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static bool has_work(const spec *s, const bool *datasets, const bool *functions)
{
    for (size_t i = 0; i < s->dataset_count; i++) {
        if (s->datasets[i].preload && (!datasets || datasets[i]))
            return true;
    }
    for (size_t i = 0; i < s->function_count; i++) {
        if (!functions || functions[i])
            return true;
    }
    return false;
}

/* Queue the work of a: lists of the datasets to preload and the functions to register whose
 * flag is set (all when a flag array is NULL). A run starts unless one is going; with nothing
 * to do, the last run's figures stay. Under p->lock. */
static void queue_work(preload *p, active *a, const bool *datasets, const bool *functions)
{
    const spec *s = a->spec;
    if (!has_work(s, datasets, functions))
        return;
    begin_run(p);
    for (size_t i = 0; i < s->dataset_count; i++) {
        if (s->datasets[i].preload && (!datasets || datasets[i]) &&
            queue(p, JOB_LIST, a, i, NULL, 0))
            p->progress.listings++;
    }
    for (size_t i = 0; i < s->function_count; i++) {
        if (!functions || functions[i])
            queue(p, JOB_FUNCTION, a, i, NULL, 0);
    }
}

/* ---- views -------------------------------------------------------------------------------- */

static uint64_t generation_of(aside_cache *cache, const char *key)
{
    aside_entry_info e;
    if (aside_entry(cache, key, &e, NULL) != ASIDE_OK)
        return 0;
    free(e.key);
    return e.generation;
}

/* A view's query being run: where its inputs are read from, and what it read. */
typedef struct view_run {
    preload    *p;
    const char *storage;
    view_input *inputs;
    size_t      count;
} view_run;

static void inputs_free(view_input *inputs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(inputs[i].key);
    free(inputs);
}

static void record_input(view_run *run, const char *key, uint64_t generation)
{
    for (size_t i = 0; i < run->count; i++) {
        if (strcmp(run->inputs[i].key, key) == 0) {
            run->inputs[i].generation = generation;
            return;
        }
    }
    view_input *grown = realloc(run->inputs, (run->count + 1) * sizeof *grown);
    char *copy = grown ? strdup(key) : NULL;
    if (grown)
        run->inputs = grown;
    if (copy)
        run->inputs[run->count++] = (view_input){copy, generation};
}

/* The engine's resolver for a view's query: the frame named key, read through the cache (a
 * miss loads it), recorded with the generation of the very content handed over. */
static aside_status view_resolve(void *ctx, const char *key, frame **out, aside_error *err)
{
    view_run *run = ctx;
    aside_read_options o = {.storage = run->storage};
    o.type = aside_value_type_for_key(key) == ASIDE_TYPE_JSON ? NULL : "frame";
    aside_value *v = NULL;
    aside_status st = aside_read(run->p->cache, key, &o, &v, NULL, err);
    if (st != ASIDE_OK)
        return st;
    if (!value_frame(v)) {
        st = error_set(err, ASIDE_ERR_INVALID, "%s is %s, not a frame", key,
                       aside_value_type_name(aside_value_type_of(v)));
        aside_value_release(v);
        return st;
    }
    record_input(run, key, value_generation(v));
    *out = frame_retain(value_frame(v));
    aside_value_release(v);
    return ASIDE_OK;
}

/* The inputs a run read become the ones the view watches. */
static void take_inputs(view_state *st, view_run *run)
{
    inputs_free(st->inputs, st->input_count);
    st->inputs = run->inputs;
    st->input_count = run->count;
    run->inputs = NULL;
    run->count = 0;
}

static bool view_due(preload *p, const spec_view *v, const view_state *st)
{
    if (mono_ms() < st->retry_ms)
        return false;
    if (!st->generation || generation_of(p->cache, v->name) == 0)
        return true; /* never stored, or it left the cache */
    for (size_t i = 0; i < st->input_count; i++) {
        uint64_t now = generation_of(p->cache, st->inputs[i].key);
        if (now && now != st->inputs[i].generation)
            return true;
    }
    return false;
}

static void view_succeeded(preload *p, const spec_view *v, view_state *st, view_run *run,
                           const frame *result, int64_t started_ns)
{
    bool first = st->generation == 0;
    take_inputs(st, run);
    st->generation = generation_of(p->cache, v->name);
    st->retry_ms = 0;
    free(st->last_error);
    st->last_error = NULL;
    log_line("info", "view %s %s: %lld rows, %zu columns, from %zu inputs, in %.0f ms", v->name,
             first ? "materialised" : "refreshed", (long long)result->rows, result->field_count,
             st->input_count, (double)(clock_mono_ns() - started_ns) / NS_PER_MS);
    pthread_mutex_lock(&p->lock);
    if (first)
        p->counters.views_materialised++;
    else
        p->counters.views_refreshed++;
    pthread_mutex_unlock(&p->lock);
}

/* A failed run is logged once per distinct reason, and tried again later, or when one of the
 * inputs it did read changes. */
static void view_failed(preload *p, const spec_view *v, view_state *st, view_run *run,
                        const aside_error *err)
{
    st->retry_ms = mono_ms() + VIEW_RETRY_MS;
    if (run->count)
        take_inputs(st, run);
    bool again = st->last_error && strcmp(st->last_error, err->message) == 0;
    if (!again) {
        free(st->last_error);
        st->last_error = strdup(err->message);
        log_line("error", "view %s (line %d): %s; tried again every %d s", v->name, v->line,
                 err->message, VIEW_RETRY_MS / 1000);
    }
    char what[ERROR_BYTES];
    snprintf(what, sizeof what, "view %s: %s", v->name, err->message);
    pthread_mutex_lock(&p->lock);
    p->counters.views_failed++;
    if (!again)
        keep_error(&p->progress, what);
    pthread_mutex_unlock(&p->lock);
}

/* Run the view's query and keep its result as the view's key. */
static void materialise(preload *p, const spec_view *v, view_state *st)
{
    view_run run = {p, v->storage, NULL, 0};
    engine_query q = {view_resolve, &run, 0, p->api->defaults.sql_timeout_ms};
    frame *result = NULL;
    aside_error err;
    int64_t started_ns = clock_mono_ns();
    aside_status s = engine_sql(aside_cache_engine(p->cache), &q, v->query, &result, &err);
    if (s == ASIDE_OK)
        s = aside_store_frame(p->cache, v->name, result, &err);
    if (s == ASIDE_OK)
        view_succeeded(p, v, st, &run, result, started_ns);
    else
        view_failed(p, v, st, &run, &err);
    frame_release(result);
    inputs_free(run.inputs, run.count);
}

static void view_state_clear(view_state *st)
{
    inputs_free(st->inputs, st->input_count);
    free(st->last_error);
    memset(st, 0, sizeof *st);
}

static void views_clear(preload *p)
{
    for (size_t i = 0; p->views_of && i < p->views_of->spec->view_count; i++)
        view_state_clear(&p->views[i]);
    free(p->views);
    p->views = NULL;
}

/* Take the views of a: a view declared the same way keeps its state (it is not computed again
 * for a reload); others start afresh. */
static void adopt_views(preload *p, active *a)
{
    const spec *s = a->spec;
    view_state *states = calloc(s->view_count ? s->view_count : 1, sizeof *states);
    if (!states)
        return; /* tried again next tick */
    const spec *old = p->views_of ? p->views_of->spec : NULL;
    for (size_t i = 0; i < s->view_count; i++) {
        for (size_t j = 0; old && j < old->view_count; j++) {
            if (spec_view_equal(&s->views[i], &old->views[j])) {
                states[i] = p->views[j];
                memset(&p->views[j], 0, sizeof p->views[j]);
            }
        }
    }
    views_clear(p);
    p->views = states;
    pthread_mutex_lock(&p->lock);
    active_release(p->views_of);
    a->refs++;
    p->views_of = a;
    pthread_mutex_unlock(&p->lock);
}

static void refresh_views(preload *p, active *a)
{
    if (p->views_of != a)
        adopt_views(p, a);
    if (p->views_of != a)
        return;
    for (size_t i = 0; i < a->spec->view_count && !stopping(p); i++) {
        if (view_due(p, &a->spec->views[i], &p->views[i]))
            materialise(p, &a->spec->views[i], &p->views[i]);
    }
}

/* ---- the background thread ---------------------------------------------------------------- */

static void wait_tick(preload *p)
{
    struct timespec until = clock_mono_after_ms(TICK_MS);
    pthread_cond_timedwait(&p->tick, &p->lock, &until);
}

static void *background_main(void *arg)
{
    preload *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        wait_tick(p);
        if (p->stopping)
            break;
        active *a = p->current;
        a->refs++;
        bool preloading = p->pending > 0;
        schedule_revalidations(p, a);
        maybe_log_progress(p);
        pthread_mutex_unlock(&p->lock);
        if (!preloading)
            refresh_views(p, a);
        pthread_mutex_lock(&p->lock);
        active_release(a);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

preload *preload_create(const char *path, aside_error *err)
{
    spec *s = NULL;
    aside_status st = spec_load_file(path, &s, err);
    if (st != ASIDE_OK) {
        if (st == ASIDE_ERR_IO && err)
            snprintf(err->code, sizeof err->code, "bad_spec");
        return NULL;
    }
    preload *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path)) || !(p->current = active_new(s))) {
        if (p)
            free(p->path);
        else
            spec_free(s);
        free(p);
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->reloading, NULL);
    pthread_cond_init(&p->work, NULL);
    cond_init_monotonic(&p->tick);
    return p;
}

static aside_status start_threads(preload *p, unsigned count, aside_error *err)
{
    if (!(p->workers = calloc(count, sizeof *p->workers)))
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    for (; p->worker_count < count; p->worker_count++) {
        if (pthread_create(&p->workers[p->worker_count], NULL, worker_main, p) != 0)
            return error_set(err, ASIDE_ERR_INTERNAL, "cannot start a preload thread");
    }
    if (pthread_create(&p->background, NULL, background_main, p) != 0)
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot start the spec's background thread");
    p->background_started = true;
    return ASIDE_OK;
}

aside_status preload_start(preload *p, aside_cache *cache, api *a, aside_error *err)
{
    pthread_mutex_lock(&p->lock);
    p->cache = cache;
    p->api = a;
    const spec *s = p->current->spec;
    log_line("info", "spec: %s: %zu datasets, %zu views, %zu functions; preloading on %u threads",
             p->path, s->dataset_count, s->view_count, s->function_count, s->preload_threads);
    queue_work(p, p->current, NULL, NULL);
    unsigned threads = s->preload_threads;
    pthread_mutex_unlock(&p->lock);
    return start_threads(p, threads, err);
}

static void queue_clear(preload *p)
{
    while (p->head) {
        job *j = p->head;
        p->head = j->next;
        job_free(j);
    }
    p->tail = NULL;
}

void preload_destroy(preload *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_cond_signal(&p->tick);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->worker_count; i++)
        pthread_join(p->workers[i], NULL);
    if (p->background_started)
        pthread_join(p->background, NULL);
    queue_clear(p);
    views_clear(p);
    active_release(p->views_of);
    active_release(p->current);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->tick);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->reloading);
    free(p->workers);
    free(p->path);
    free(p);
}

/* ---- reloads ------------------------------------------------------------------------------ */

typedef struct diff_counts {
    unsigned added, changed, removed, unchanged;
} diff_counts;

/* Whether item i of b is item j of a (same identity), and if so, declared the same way. */
typedef bool (*same_item)(const spec *a, size_t j, const spec *b, size_t i, bool *equal);

static bool same_dataset(const spec *a, size_t j, const spec *b, size_t i, bool *equal)
{
    const spec_dataset *x = &a->datasets[j], *y = &b->datasets[i];
    *equal = spec_dataset_equal(x, y);
    return x->match == y->match && strcmp(x->pattern, y->pattern) == 0;
}

static bool same_view(const spec *a, size_t j, const spec *b, size_t i, bool *equal)
{
    *equal = spec_view_equal(&a->views[j], &b->views[i]);
    return strcmp(a->views[j].name, b->views[i].name) == 0;
}

static bool same_function(const spec *a, size_t j, const spec *b, size_t i, bool *equal)
{
    *equal = spec_function_equal(&a->functions[j], &b->functions[i]);
    return strcmp(a->functions[j].name, b->functions[i].name) == 0;
}

/* Compare the new items (new_count of them) with the old; todo[i] (may be NULL) is set for
 * those added or changed. */
static diff_counts compare(const spec *old, size_t old_count, const spec *new, size_t new_count,
                           same_item same, bool *todo)
{
    diff_counts d = {0};
    size_t kept = 0;
    for (size_t i = 0; i < new_count; i++) {
        bool found = false, equal = false;
        for (size_t j = 0; j < old_count && !found; j++)
            found = same(old, j, new, i, &equal);
        kept += found;
        d.added += !found;
        d.changed += found && !equal;
        d.unchanged += found && equal;
        if (todo)
            todo[i] = !found || !equal;
    }
    d.removed = (unsigned)(old_count - kept);
    return d;
}

static json_t *diff_json(diff_counts d)
{
    return json_pack("{s:i, s:i, s:i, s:i}", "added", d.added, "changed", d.changed, "removed",
                     d.removed, "unchanged", d.unchanged);
}

static void log_reload(const preload *p, const diff_counts *d)
{
    log_line("info", "spec: reloaded %s: datasets +%u ~%u -%u, views +%u ~%u -%u, functions "
             "+%u ~%u -%u (added, changed, removed; cached data stays)", p->path, d[0].added,
             d[0].changed, d[0].removed, d[1].added, d[1].changed, d[1].removed, d[2].added,
             d[2].changed, d[2].removed);
}

/* Put fresh in force (under p->lock), queueing what is new or changed in it. */
static aside_status swap_in(preload *p, active *fresh, diff_counts *out)
{
    const spec *old = p->current->spec, *s = fresh->spec;
    bool *datasets = calloc(s->dataset_count + 1, sizeof *datasets);
    bool *functions = calloc(s->function_count + 1, sizeof *functions);
    aside_status st = datasets && functions ? ASIDE_OK : ASIDE_ERR_NOMEM;
    if (st == ASIDE_OK) {
        out[0] = compare(old, old->dataset_count, s, s->dataset_count, same_dataset, datasets);
        out[1] = compare(old, old->view_count, s, s->view_count, same_view, NULL);
        out[2] = compare(old, old->function_count, s, s->function_count, same_function,
                         functions);
        active_release(p->current);
        p->current = fresh;
        p->reloads++;
        log_reload(p, out);
        if (p->cache)
            queue_work(p, fresh, datasets, functions);
        pthread_cond_signal(&p->tick);
    }
    free(datasets);
    free(functions);
    return st;
}

aside_status preload_reload(preload *p, json_t **summary, aside_error *err)
{
    pthread_mutex_lock(&p->reloading);
    spec *s = NULL;
    active *fresh = NULL;
    diff_counts d[3];
    aside_status st = spec_load_file(p->path, &s, err);
    if (st == ASIDE_OK && !(fresh = active_new(s)))
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (st == ASIDE_OK) {
        pthread_mutex_lock(&p->lock);
        st = swap_in(p, fresh, d);
        if (st != ASIDE_OK)
            active_release(fresh);
        pthread_mutex_unlock(&p->lock);
        if (st != ASIDE_OK)
            error_set(err, st, "out of memory");
    }
    if (st == ASIDE_OK && summary)
        *summary = json_pack("{s:o, s:o, s:o}", "datasets", diff_json(d[0]), "views",
                             diff_json(d[1]), "functions", diff_json(d[2]));
    pthread_mutex_unlock(&p->reloading);
    return st;
}

void preload_on_sighup(preload *p)
{
    aside_error err;
    if (!p)
        log_line("warning", "SIGHUP: no spec to reload (the server was started without --spec)");
    else if (preload_reload(p, NULL, &err) != ASIDE_OK)
        log_line("error", "spec: reload on SIGHUP refused, the spec in force stays: %s",
                 err.message);
}

/* ---- telemetry and the API ---------------------------------------------------------------- */

static const char *state_name(const preload *p)
{
    const progress *g = &p->progress;
    if (!p->cache)
        return "pending";
    if (g->running)
        return "running";
    return g->items_failed || g->functions_failed ? "failed" : "done";
}

static json_t *errors_json(const progress *g)
{
    json_t *errors = json_array();
    for (size_t i = 0; errors && i < g->error_count; i++)
        json_array_append_new(errors, json_string(g->errors[i]));
    return errors;
}

static json_t *counters_json(const preload *p)
{
    const counters *c = &p->counters;
    return json_pack("{s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}}", "views", "materialised",
                     (json_int_t)c->views_materialised, "refreshed",
                     (json_int_t)c->views_refreshed, "failed", (json_int_t)c->views_failed,
                     "revalidation", "keys", (json_int_t)c->revalidations, "changed",
                     (json_int_t)c->revalidated_changed, "removed",
                     (json_int_t)c->revalidated_removed, "errors",
                     (json_int_t)c->revalidation_errors);
}

static json_t *progress_json(const preload *p)
{
    const progress *g = &p->progress;
    double eta = eta_s(g);
    return json_pack("{s:s, s:s, s:i, s:i, s:{s:I, s:I, s:I}, s:{s:I, s:I}, s:i, s:f, s:f, "
                     "s:o, s:{s:I, s:I}, s:I, s:o}",
                     "state", state_name(p), "spec", p->path, "run", (int)g->run, "reloads",
                     (int)p->reloads, "items", "done", (json_int_t)g->items_done, "failed",
                     (json_int_t)g->items_failed, "total", (json_int_t)g->items_total, "bytes",
                     "done", (json_int_t)g->bytes_done, "total", (json_int_t)g->bytes_total,
                     "listings_pending", (int)g->listings, "elapsed_seconds",
                     p->cache ? elapsed_s(g) : 0.0, "rate_bytes_per_second",
                     rate_bytes_per_s(g), "eta_seconds",
                     eta >= 0 ? json_real(eta) : json_null(), "functions", "registered",
                     (json_int_t)g->functions_registered, "failed",
                     (json_int_t)g->functions_failed, "warnings", (json_int_t)g->warnings,
                     "errors", errors_json(g));
}

json_t *preload_progress_json(preload *p)
{
    if (!p)
        return NULL;
    pthread_mutex_lock(&p->lock);
    json_t *out = progress_json(p);
    json_t *more = counters_json(p);
    pthread_mutex_unlock(&p->lock);
    if (out && more)
        json_object_update(out, more);
    json_decref(more);
    return out;
}

/* The spec in force, with a reference the caller drops with release_current. */
static active *hold_current(preload *p, unsigned *reloads)
{
    pthread_mutex_lock(&p->lock);
    active *a = p->current;
    a->refs++;
    *reloads = p->reloads;
    pthread_mutex_unlock(&p->lock);
    return a;
}

static void release_current(preload *p, active *a)
{
    pthread_mutex_lock(&p->lock);
    active_release(a);
    pthread_mutex_unlock(&p->lock);
}

static bool need_spec(api_call *c)
{
    if (c->api->preload)
        return true;
    api_error(c, 404, "no_spec", "this server runs without a spec: start it with --spec FILE "
                                 "(or ASIDE_SPEC)");
    return false;
}

void preload_fn_spec(api_call *c)
{
    if (!need_spec(c))
        return;
    preload *p = c->api->preload;
    unsigned reloads = 0;
    active *a = hold_current(p, &reloads);
    char *json = NULL;
    aside_error err;
    if (spec_to_json(a->spec, &json, &err) != ASIDE_OK) {
        api_status_error(c, &err);
    } else {
        buf *b = api_envelope_begin(c);
        buf_puts(b, "{\"path\": ");
        buf_put_json_string(b, p->path, strlen(p->path));
        buf_puts(b, ", \"loaded_at\": ");
        api_put_time(b, a->loaded_unix_ms);
        buf_printf(b, ", \"reloads\": %u, \"spec\": %s}", reloads, json);
        api_envelope_end(c);
    }
    free(json);
    release_current(p, a);
}

void preload_fn_reload(api_call *c)
{
    if (!need_spec(c))
        return;
    preload *p = c->api->preload;
    json_t *summary = NULL;
    aside_error err;
    if (preload_reload(p, &summary, &err) != ASIDE_OK) {
        log_line("error", "spec: reload refused, the spec in force stays: %s", err.message);
        api_error(c, 400, "bad_spec", err.message);
        return;
    }
    char *text = summary ? json_dumps(summary, JSON_COMPACT) : NULL;
    buf *b = api_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"path\": ");
    buf_put_json_string(b, p->path, strlen(p->path));
    if (text && text[0] == '{' && text[1] != '}') /* the summary's members, inline */
        buf_printf(b, ", %s", text + 1);
    else
        buf_putc(b, '}');
    api_envelope_end(c);
    free(text);
    json_decref(summary);
}
