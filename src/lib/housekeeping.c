/* housekeeping.c -- the cache's background thread.
 *
 * Once a second (HOUSEKEEPING_PERIOD_MS) it removes entries whose time to live ran out (reads
 * also check, so none is ever served; this frees what nobody reads), compacts the journal when
 * live.c says it is due, and, with the "everysec" fsync policy, syncs the journal. It sleeps on
 * a condition variable, so close wakes it at once. The compaction and the sync run without
 * the cache lock. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "housekeeping.h"
#include "live.h"
#include "util/util.h"

enum {
    HOUSEKEEPING_PERIOD_MS = 1000,
    EXPIRE_BATCH = 1024 /* entries removed per tick at most, so one tick holds the lock briefly */
};

/* Remove up to EXPIRE_BATCH entries whose time ran out. Lock held. */
static void expire_due(aside_cache *c)
{
    cache_assert_locked(c);
    char *due[EXPIRE_BATCH];
    size_t count = 0, cursor = 0;
    int64_t now = clock_unix_ms();
    for (table_node *n = table_next(c->index, &cursor, NULL); n && count < EXPIRE_BATCH;
         n = table_next(c->index, &cursor, n)) {
        entry *e = container_of(n, entry, node);
        if (entry_expired(e, now) && (due[count] = strdup(e->key)))
            count++;
    }
    for (size_t i = 0; i < count; i++) {
        entry_find(c, due[i]); /* finds it expired and removes it */
        free(due[i]);
    }
}

static void *housekeeping_run(void *arg)
{
    aside_cache *c = arg;
    cache_lock(c);
    while (!c->stopping) {
        struct timespec until = clock_mono_after_ms(HOUSEKEEPING_PERIOD_MS);
        cache_wait(c, &c->housekeeping, &until);
        if (c->stopping)
            break;
        if (c->expiring)
            expire_due(c);
        bool compact = live_compaction_due(c);
        cache_unlock(c);
        aside_error err;
        if (compact && live_compact(c, &err) != ASIDE_OK)
            log_line("error", "journal compaction: %s", err.message);
        journal_tick(c->journal);
        cache_lock(c);
    }
    cache_unlock(c);
    return NULL;
}

aside_status housekeeping_start(aside_cache *c, aside_error *err)
{
    if (pthread_create(&c->housekeeper, NULL, housekeeping_run, c) != 0)
        return error_set(err, ASIDE_ERR_NOMEM, "cannot start the housekeeping thread");
    c->housekeeper_running = true;
    return ASIDE_OK;
}

void housekeeping_stop(aside_cache *c)
{
    if (!c->housekeeper_running)
        return;
    cache_lock(c);
    c->stopping = true;
    pthread_cond_signal(&c->housekeeping);
    cache_unlock(c);
    pthread_join(c->housekeeper, NULL);
    c->housekeeper_running = false;
}
