/* watchdog.c -- the thread that holds queries to their deadlines.
 *
 * A query checks its own deadline only between the pieces of work it hands DuckDB (a task, a
 * chunk of its result), and one piece can run long: a sort's merge, a hash table's build, a
 * spill to disk. So every query with a deadline is also watched from outside: it is added to
 * the engine's watchdog while its connection is open, and the watchdog's thread, asleep until
 * the nearest deadline, calls duckdb_interrupt on the connection of each query past its own.
 * DuckDB notices the interrupt at its next check (between the chunks an operator produces) and
 * ends the query with an error, freeing its memory and its spilled blocks.
 *
 * An interrupt is repeated every REPEAT_MS until the query leaves, since DuckDB clears the flag
 * when a new statement starts on the connection (the query's views, a retry). Adding and
 * removing take the watchdog's lock, as does interrupting, so a connection is never interrupted
 * after its query removed it (and disconnected it). */
#include <stdlib.h>

#include "engine_internal.h"

enum { REPEAT_MS = 100 };

struct watchdog {
    pthread_mutex_t lock;
    pthread_cond_t  wake;
    pthread_t       thread;
    engine_watch   *watches; /* the queries being watched */
    bool            stop;
};

static int64_t now_ms(void) { return clock_mono_ns() / 1000000; }

/* Interrupt the queries past their deadlines; the nearest deadline still ahead (0: none). */
static int64_t interrupt_late(watchdog *w)
{
    int64_t now = now_ms(), next = 0;
    for (engine_watch *q = w->watches; q; q = q->next) {
        if (q->deadline_ms <= now) {
            duckdb_interrupt(q->conn);
            q->deadline_ms = now + REPEAT_MS;
        }
        if (!next || q->deadline_ms < next)
            next = q->deadline_ms;
    }
    return next;
}

static void *watch_loop(void *arg)
{
    watchdog *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        int64_t next = interrupt_late(w);
        if (!next) {
            pthread_cond_wait(&w->wake, &w->lock);
        } else {
            struct timespec at = clock_mono_after_ms(next - now_ms());
            pthread_cond_timedwait(&w->wake, &w->lock, &at);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

aside_status watchdog_start(watchdog **out, aside_error *err)
{
    watchdog *w = calloc(1, sizeof *w);
    if (!w)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&w->lock, NULL);
    cond_init_monotonic(&w->wake);
    if (pthread_create(&w->thread, NULL, watch_loop, w) != 0) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot start the queries' watchdog");
    }
    *out = w;
    return ASIDE_OK;
}

void watchdog_stop(watchdog *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void watchdog_add(watchdog *w, engine_watch *q)
{
    pthread_mutex_lock(&w->lock);
    q->next = w->watches;
    w->watches = q;
    pthread_cond_signal(&w->wake); /* it may be the nearest deadline now */
    pthread_mutex_unlock(&w->lock);
}

void watchdog_remove(watchdog *w, engine_watch *q)
{
    pthread_mutex_lock(&w->lock);
    for (engine_watch **p = &w->watches; *p; p = &(*p)->next) {
        if (*p == q) {
            *p = q->next;
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
}
