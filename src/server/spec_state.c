/* spec_state.c -- the state every part of the data spec at work shares (spec_run_parts.h):
 * the reference-counted "active" record of a spec in force, and the stop flag.
 *
 * It sits below the other parts (spec_run.c, spec_jobs.c, spec_views.c, spec_reload.c), which
 * all call it and which it never calls: a job or a view holds a reference to the spec it
 * started with, released here, while a reload puts a new record in force. */
#include <pthread.h>
#include <stdlib.h>

#include "spec_run_parts.h"

active *spec_state_active_new(spec *s)
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
void spec_state_active_release(active *a)
{
    if (!a || --a->refs > 0)
        return;
    spec_free(a->spec);
    free(a->revalidate_due_ms);
    free(a->revalidating);
    free(a);
}

bool spec_state_stopping(spec_run *p)
{
    pthread_mutex_lock(&p->lock);
    bool stop = p->stopping;
    pthread_mutex_unlock(&p->lock);
    return stop;
}
