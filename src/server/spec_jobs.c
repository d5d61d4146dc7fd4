/* spec_jobs.c -- the data spec's jobs and their progress.
 *
 * A small pool (preload_threads, default 4) takes jobs from one FIFO queue: list a dataset's
 * keys in the system of record (a glob or prefix expands to its matches; a key's listing gives
 * its size for the totals), load one key (aside_read, then the columns check, time to live and
 * pin), register one function, revalidate one dataset (aside_update of its cached keys). A small
 * pool, not the HTTP load threads: preloading must not take every thread that clients' misses
 * need. Each job holds a reference to the spec it was queued for, so a reload never pulls a
 * spec from under a job.
 *
 * Progress (items and bytes done of the totals known so far, rate, ETA) is counted under the
 * lock, logged at most once a second and at the end, and answered to telemetry (spec_run.c).
 * A run is one start, or one reload with work, while none is running. Load failures are all
 * logged and the first few kept for telemetry; warnings (a pin or time to live the cache
 * refused) are counted, the first few logged. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame/frame.h"
#include "lib/lib.h"
#include "spec_run_parts.h"
#include "value/value.h"

static aside_read_options dataset_options(const spec_dataset *d)
{
    return (aside_read_options){.storage = d->storage, .type = d->type};
}

static const spec_dataset *dataset_of(const job *j) { return &j->spec->spec->datasets[j->index]; }

/* ---- the queue ---------------------------------------------------------------------------- */

/* Queue a job (under p->lock); false when out of memory (logged). */
static bool queue(spec_run *p, job_kind kind, active *a, size_t index, const char *key,
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
    spec_state_active_release(j->spec);
    free(j->key);
    free(j);
}

/* ---- progress ----------------------------------------------------------------------------- */

double spec_run_elapsed_s(const progress *g)
{
    int64_t end = g->running ? clock_mono_ns() : g->finished_ns;
    return (double)(end - g->started_ns) / 1e9;
}

double spec_run_rate_bytes_per_s(const progress *g)
{
    double s = spec_run_elapsed_s(g);
    return s > 0 ? (double)g->bytes_done / s : 0;
}

/* Seconds left at the current rate, or -1 when unknown (totals still growing, no rate yet). */
double spec_run_eta_s(const progress *g)
{
    double rate = spec_run_rate_bytes_per_s(g);
    if (!g->running)
        return 0;
    if (g->listings || rate <= 0 || g->bytes_total < g->bytes_done)
        return -1;
    return (double)(g->bytes_total - g->bytes_done) / rate;
}

static void log_progress(const progress *g)
{
    double eta = spec_run_eta_s(g);
    char eta_text[32] = "unknown";
    if (eta >= 0)
        snprintf(eta_text, sizeof eta_text, "%.0f s", eta);
    log_line("info", "preload: %llu/%llu items (%llu failed), %.1f of %.1f%s MB, %.1f MB/s, "
             "ETA %s", (unsigned long long)(g->items_done + g->items_failed),
             (unsigned long long)g->items_total, (unsigned long long)g->items_failed,
             (double)g->bytes_done / SPEC_RUN_BYTES_PER_MB, (double)g->bytes_total / SPEC_RUN_BYTES_PER_MB,
             g->listings ? "+" : "", spec_run_rate_bytes_per_s(g) / SPEC_RUN_BYTES_PER_MB, eta_text);
}

/* A progress line if the last one is a second old (under p->lock). */
void spec_run_log_progress(spec_run *p)
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
             failed ? "finished with failures" : "done", spec_run_elapsed_s(g),
             (unsigned long long)g->items_done, (unsigned long long)g->items_failed,
             (double)g->bytes_done / SPEC_RUN_BYTES_PER_MB, spec_run_rate_bytes_per_s(g) / SPEC_RUN_BYTES_PER_MB,
             (unsigned long long)g->functions_registered,
             (unsigned long long)g->functions_failed, (unsigned long long)g->warnings);
}

/* Start a run unless one is going (under p->lock): its counters start from zero. */
static void begin_run(spec_run *p)
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
static void job_done(spec_run *p, const job *j)
{
    if (j->kind == JOB_REVALIDATE || --p->pending > 0 || !p->progress.running)
        return;
    p->progress.running = false;
    p->progress.finished_ns = clock_mono_ns();
    log_finished(&p->progress);
    pthread_cond_signal(&p->tick); /* views may go now */
}

/* Keep what for telemetry, if there is room (under p->lock). */
void spec_run_keep_error(progress *g, const char *what)
{
    if (g->error_count < ERRORS_KEPT)
        snprintf(g->errors[g->error_count++], ERROR_BYTES, "%s", what);
}

static void item_failed(spec_run *p, const job *j, const char *key, const char *why)
{
    char what[ERROR_BYTES];
    snprintf(what, sizeof what, "%s: %s", key, why);
    log_line("error", "preload: %s", what);
    pthread_mutex_lock(&p->lock);
    progress *g = &p->progress;
    g->items_failed++;
    g->bytes_total -= j->listed_bytes < g->bytes_total ? j->listed_bytes : g->bytes_total;
    spec_run_keep_error(g, what);
    pthread_mutex_unlock(&p->lock);
}

static void item_loaded(spec_run *p, const job *j, uint64_t bytes)
{
    pthread_mutex_lock(&p->lock);
    progress *g = &p->progress;
    g->items_done++;
    g->bytes_done += bytes;
    g->bytes_total = g->bytes_total + bytes - j->listed_bytes; /* the size as loaded */
    spec_run_log_progress(p);
    pthread_mutex_unlock(&p->lock);
}

/* A setting the cache refused for key: a warning, the first few logged. */
static void warn(spec_run *p, const char *key, const char *what, const aside_error *err)
{
    char text[ERROR_BYTES];
    snprintf(text, sizeof text, "%s: %s not applied: %s", key, what, err->message);
    pthread_mutex_lock(&p->lock);
    progress *g = &p->progress;
    if (++g->warnings <= ERRORS_KEPT)
        log_line("warning", "preload: %s%s", text,
                 g->warnings == ERRORS_KEPT ? " (further warnings are counted, not logged)" : "");
    spec_run_keep_error(g, text);
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
static void apply_settings(spec_run *p, const spec_dataset *d, const char *key)
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
static bool accept_content(spec_run *p, const spec_dataset *d, const char *key,
                           const aside_value *v, char *why, size_t size)
{
    if (d->column_count && !columns_match(d, v, why, size)) {
        aside_delete(p->cache, key, NULL);
        return false;
    }
    apply_settings(p, d, key);
    return true;
}

static void run_load(spec_run *p, const job *j)
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
static size_t queue_matches(spec_run *p, const job *j, const aside_object_entry *objects,
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
static void listing_came_empty(spec_run *p, const spec_dataset *d, aside_status st,
                               const aside_error *err)
{
    char what[ERROR_BYTES];
    snprintf(what, sizeof what, "%s %s (line %d): %s", d->match == SPEC_GLOB ? "glob" : "prefix",
             d->pattern, d->line, st != ASIDE_OK ? err->message
                                                 : "matches no object of the system of record");
    log_line(st != ASIDE_OK ? "error" : "warning", "preload: %s", what);
    spec_run_keep_error(&p->progress, what);
    if (st != ASIDE_OK) {
        p->progress.items_total++;
        p->progress.items_failed++;
    } else {
        p->progress.warnings++;
    }
}

/* What a listing found (under p->lock). A key the listing does not show is still loaded: the
 * cache may hold it, and if not, the load says why. */
static void listed(spec_run *p, const job *j, aside_status st, const aside_error *err,
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

static void run_list(spec_run *p, const job *j)
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

static void run_function(spec_run *p, const job *j)
{
    const spec_function *f = &j->spec->spec->functions[j->index];
    aside_read_options o = {.storage = f->storage};
    aside_error err;
    aside_status st = function_pool_register(p->server->functions, p->cache, f->name, &o,
                                             p->server->is_own_function, &err);
    char what[ERROR_BYTES];
    snprintf(what, sizeof what, "function %s (line %d): %s", f->name, f->line,
             st == ASIDE_OK ? "registered" : err.message);
    log_line(st == ASIDE_OK ? "info" : "error", "preload: %s", what);
    pthread_mutex_lock(&p->lock);
    if (st == ASIDE_OK)
        p->progress.functions_registered++;
    else {
        p->progress.functions_failed++;
        spec_run_keep_error(&p->progress, what);
    }
    pthread_mutex_unlock(&p->lock);
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
static void revalidate_key(spec_run *p, const spec_dataset *d, const char *key, counters *c)
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
static void run_revalidate(spec_run *p, const job *j)
{
    const spec_dataset *d = dataset_of(j);
    aside_entry_info *entries = NULL;
    size_t count = 0;
    aside_error err;
    counters c = {0};
    if (aside_entries(p->cache, &entries, &count, &err) != ASIDE_OK)
        log_line("warning", "revalidate: cannot list the cache: %s", err.message);
    for (size_t i = 0; i < count && !spec_state_stopping(p); i++) {
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
void spec_run_schedule_revalidations(spec_run *p, active *a)
{
    int64_t now = spec_state_mono_ms();
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

static void run_job(spec_run *p, const job *j)
{
    switch (j->kind) {
    case JOB_LIST: run_list(p, j); break;
    case JOB_LOAD: run_load(p, j); break;
    case JOB_FUNCTION: run_function(p, j); break;
    case JOB_REVALIDATE: run_revalidate(p, j); break;
    }
}

void *spec_run_worker_main(void *arg)
{
    spec_run *p = arg;
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
void spec_run_queue_work(spec_run *p, active *a, const bool *datasets, const bool *functions)
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

void spec_run_queue_clear(spec_run *p)
{
    while (p->head) {
        job *j = p->head;
        p->head = j->next;
        job_free(j);
    }
    p->tail = NULL;
}
