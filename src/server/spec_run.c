/* spec_run.c -- the data spec at work (spec_run.h): the spec in force, its lifecycle, the
 * background thread and telemetry.
 *
 * The spec in force is an "active" record: the parsed spec (src/spec/spec.h) and the state
 * that goes with it (when each dataset is next revalidated), reference counted, so that a
 * reload (spec_reload.c) can put a new one in force while jobs of the old one finish with the
 * spec they started with. Everything runs on two kinds of threads, started after the server
 * listens, so that it answers from the first moment: a read of a key being preloaded joins the
 * preload's fetch (single flight) instead of fetching again, and readiness shows in telemetry
 * ("preload": {"state": "running"}).
 *
 *   - the pool of spec_jobs.c: listing, loading, registering functions, revalidating;
 *   - one background thread here, waking every TICK_MS: it queues the revalidations that are
 *     due, prints progress, and, once no preload job is pending, has the views (spec_views.c)
 *     materialised and refreshed. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "spec_run_parts.h"

/* ---- the background thread ---------------------------------------------------------------- */

static void wait_tick(spec_run *p)
{
    struct timespec until = clock_mono_after_ms(TICK_MS);
    pthread_cond_timedwait(&p->tick, &p->lock, &until);
}

static void *background_main(void *arg)
{
    spec_run *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        wait_tick(p);
        if (p->stopping)
            break;
        active *a = p->current;
        a->refs++;
        bool preloading = p->pending > 0;
        spec_run_schedule_revalidations(p, a);
        spec_run_log_progress(p);
        pthread_mutex_unlock(&p->lock);
        if (!preloading)
            spec_run_refresh_views(p, a);
        pthread_mutex_lock(&p->lock);
        spec_state_active_release(a);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

spec_run *spec_run_create(const char *path, aside_error *err)
{
    spec *s = NULL;
    aside_status st = spec_load_file(path, &s, err);
    if (st != ASIDE_OK) {
        if (st == ASIDE_ERR_IO && err)
            snprintf(err->code, sizeof err->code, "bad_spec");
        return NULL;
    }
    spec_run *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path)) || !(p->current = spec_state_active_new(s))) {
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

static aside_status start_threads(spec_run *p, unsigned count, aside_error *err)
{
    if (!(p->workers = calloc(count, sizeof *p->workers)))
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    for (; p->worker_count < count; p->worker_count++) {
        if (pthread_create(&p->workers[p->worker_count], NULL, spec_run_worker_main, p) != 0)
            return error_set(err, ASIDE_ERR_INTERNAL, "cannot start a preload thread");
    }
    if (pthread_create(&p->background, NULL, background_main, p) != 0)
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot start the spec's background thread");
    p->background_started = true;
    return ASIDE_OK;
}

aside_status spec_run_start(spec_run *p, const server *s, aside_error *err)
{
    pthread_mutex_lock(&p->lock);
    p->cache = s->cache;
    p->server = s;
    const spec *sp = p->current->spec;
    metrics_datasets_use(sp);
    log_line("info", "spec: %s: %zu datasets, %zu views, %zu functions; preloading on %u threads",
             p->path, sp->dataset_count, sp->view_count, sp->function_count, sp->preload_threads);
    spec_run_queue_work(p, p->current, NULL, NULL);
    unsigned threads = sp->preload_threads;
    pthread_mutex_unlock(&p->lock);
    return start_threads(p, threads, err);
}

void spec_run_destroy(spec_run *p)
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
    spec_run_queue_clear(p);
    spec_run_views_clear(p);
    spec_state_active_release(p->views_of);
    spec_state_active_release(p->current);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->tick);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->reloading);
    free(p->workers);
    free(p->path);
    free(p);
}

/* ---- telemetry and the spec in force ------------------------------------------------------ */

static const char *state_name(const spec_run *p)
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

static json_t *counters_json(const spec_run *p)
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

static json_t *progress_json(const spec_run *p)
{
    const progress *g = &p->progress;
    double eta = spec_run_eta_s(g);
    return json_pack("{s:s, s:s, s:i, s:i, s:{s:I, s:I, s:I}, s:{s:I, s:I}, s:i, s:f, s:f, "
                     "s:o, s:{s:I, s:I}, s:I, s:o}",
                     "state", state_name(p), "spec", p->path, "run", (int)g->run, "reloads",
                     (int)p->reloads, "items", "done", (json_int_t)g->items_done, "failed",
                     (json_int_t)g->items_failed, "total", (json_int_t)g->items_total, "bytes",
                     "done", (json_int_t)g->bytes_done, "total", (json_int_t)g->bytes_total,
                     "listings_pending", (int)g->listings, "elapsed_seconds",
                     p->cache ? spec_run_elapsed_s(g) : 0.0, "rate_bytes_per_second",
                     spec_run_rate_bytes_per_s(g), "eta_seconds",
                     eta >= 0 ? json_real(eta) : json_null(), "functions", "registered",
                     (json_int_t)g->functions_registered, "failed",
                     (json_int_t)g->functions_failed, "warnings", (json_int_t)g->warnings,
                     "errors", errors_json(g));
}

json_t *spec_run_progress_json(spec_run *p)
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

const char *spec_run_path(const spec_run *p) { return p->path; }

bool spec_run_ready(spec_run *p)
{
    pthread_mutex_lock(&p->lock);
    bool ready = p->cache && (!p->current->spec->ready_after_preload || !p->progress.running ||
                              p->progress.run > 1);
    pthread_mutex_unlock(&p->lock);
    return ready;
}

aside_status spec_run_in_force(spec_run *p, spec_run_info *out, aside_error *err)
{
    pthread_mutex_lock(&p->lock);
    active *a = p->current;
    a->refs++;
    out->reloads = p->reloads;
    pthread_mutex_unlock(&p->lock);
    out->path = p->path;
    out->loaded_unix_ms = a->loaded_unix_ms;
    out->json = NULL;
    aside_status st = spec_to_json(a->spec, &out->json, err);
    pthread_mutex_lock(&p->lock);
    spec_state_active_release(a);
    pthread_mutex_unlock(&p->lock);
    return st;
}
