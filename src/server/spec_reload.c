/* spec_reload.c -- reading the spec file again (SIGHUP, function=reload_spec).
 *
 * A reload parses the file first and changes nothing if it is bad. Otherwise datasets, views
 * and functions are compared with the spec in force by identity (a dataset's key, glob or
 * prefix; a view's or function's name): added and changed ones are put to work, unchanged
 * ones left alone, removed ones only stop being revalidated or refreshed. Nothing is deleted or
 * unpinned: cached data stays. Reloads run one at a time (spec_run.reloading); the old spec
 * stays alive for the jobs that still hold it. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "spec_run_parts.h"

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

static void log_reload(const spec_run *p, const diff_counts *d)
{
    log_line("info", "spec: reloaded %s: datasets +%u ~%u -%u, views +%u ~%u -%u, functions "
             "+%u ~%u -%u (added, changed, removed; cached data stays)", p->path, d[0].added,
             d[0].changed, d[0].removed, d[1].added, d[1].changed, d[1].removed, d[2].added,
             d[2].changed, d[2].removed);
}

/* Put fresh in force (under p->lock), queueing what is new or changed in it. */
static aside_status swap_in(spec_run *p, active *fresh, diff_counts *out)
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
        spec_state_active_release(p->current);
        p->current = fresh;
        p->reloads++;
        metrics_datasets_use(fresh->spec);
        log_reload(p, out);
        if (p->cache)
            spec_run_queue_work(p, fresh, datasets, functions);
        pthread_cond_signal(&p->tick);
    }
    free(datasets);
    free(functions);
    return st;
}

aside_status spec_run_reload(spec_run *p, json_t **summary, aside_error *err)
{
    pthread_mutex_lock(&p->reloading);
    spec *s = NULL;
    active *fresh = NULL;
    diff_counts d[3];
    aside_status st = spec_load_file(p->path, &s, err);
    if (st == ASIDE_OK && !(fresh = spec_state_active_new(s)))
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (st == ASIDE_OK) {
        pthread_mutex_lock(&p->lock);
        st = swap_in(p, fresh, d);
        if (st != ASIDE_OK)
            spec_state_active_release(fresh);
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

void spec_run_on_sighup(spec_run *p)
{
    aside_error err;
    if (!p)
        log_line("warning", "SIGHUP: no spec to reload (the server was started without --spec)");
    else if (spec_run_reload(p, NULL, &err) != ASIDE_OK)
        log_line("error", "spec: reload on SIGHUP refused, the spec in force stays: %s",
                 err.message);
}
