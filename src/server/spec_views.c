/* spec_views.c -- the data spec's views: SQL queries over other keys, kept as frames.
 *
 * The background thread (spec_run.c), once no preload job is pending, materialises the views
 * and refreshes those whose inputs changed. A view's inputs are the keys its query read: the
 * query's resolver records each frame it hands to the engine with its generation (the cache
 * numbers every content of a key), and a refresh is due when an input's generation in the
 * cache differs from the one recorded. Generations cost one lookup per input, so polling is
 * cheap; an input that left the cache counts as unchanged (reading it back would fetch it only
 * to compare). A failed query is logged once per distinct reason and tried again after
 * VIEW_RETRY_MS. The views' states belong to the background thread alone; a reload keeps the
 * state of a view declared the same way. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "frame/frame.h"
#include "lib/lib.h"
#include "spec_run_parts.h"
#include "value/value.h"

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
    spec_run   *p;
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

static bool view_due(spec_run *p, const spec_view *v, const view_state *st)
{
    if (spec_state_mono_ms() < st->retry_ms)
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

static void view_succeeded(spec_run *p, const spec_view *v, view_state *st, view_run *run,
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
static void view_failed(spec_run *p, const spec_view *v, view_state *st, view_run *run,
                        const aside_error *err)
{
    st->retry_ms = spec_state_mono_ms() + VIEW_RETRY_MS;
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
        spec_run_keep_error(&p->progress, what);
    pthread_mutex_unlock(&p->lock);
}

/* Run the view's query and keep its result as the view's key. */
static void materialise(spec_run *p, const spec_view *v, view_state *st)
{
    view_run run = {p, v->storage, NULL, 0};
    engine_query q = {view_resolve, &run, 0, p->server->defaults.sql_timeout_ms};
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

void spec_run_views_clear(spec_run *p)
{
    for (size_t i = 0; p->views_of && i < p->views_of->spec->view_count; i++)
        view_state_clear(&p->views[i]);
    free(p->views);
    p->views = NULL;
}

/* Take the views of a: a view declared the same way keeps its state (it is not computed again
 * for a reload); others start afresh. */
static void adopt_views(spec_run *p, active *a)
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
    spec_run_views_clear(p);
    p->views = states;
    pthread_mutex_lock(&p->lock);
    spec_state_active_release(p->views_of);
    a->refs++;
    p->views_of = a;
    pthread_mutex_unlock(&p->lock);
}

void spec_run_refresh_views(spec_run *p, active *a)
{
    if (p->views_of != a)
        adopt_views(p, a);
    if (p->views_of != a)
        return;
    for (size_t i = 0; i < a->spec->view_count && !spec_state_stopping(p); i++) {
        if (view_due(p, &a->spec->views[i], &p->views[i]))
            materialise(p, &a->spec->views[i], &p->views[i]);
    }
}
