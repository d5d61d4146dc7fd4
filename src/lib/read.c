/* read.c -- reads and updates: aside_read, aside_get, aside_update.
 *
 * A read is the steps of tier.c: a memory hit, or a place in the key's single flight, whose
 * leader loads from the disk tier or the system of record. An update leads the key's flight
 * and asks the system of record whether its copy is current (If-None-Match with the cached
 * version tag); "not modified" only refreshes the copy's validation time.
 *
 * Two ways to serve a copy that is not known to be current:
 *   stale-while-revalidate  a hit older than the read's max_age is served at once, marked
 *                           stale, and revalidated in the background: one thread per key at a
 *                           time (entry->revalidating), counted so close waits for them;
 *   stale-if-error          an update whose system of record fails (an error, a timeout, a
 *                           refusal) serves the last good copy, marked stale.
 *
 * The background revalidation is an update, so it lives here with the reads that start it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "tier.h"
#include "util/util.h"

/* ---- stale-while-revalidate ------------------------------------------------------------------ */

typedef struct refresh_job {
    aside_cache *cache;
    char        *key;
    char        *storage;
} refresh_job;

static void *refresh_run(void *arg)
{
    refresh_job *job = arg;
    aside_cache *c = job->cache;
    aside_read_options options = {.storage = job->storage};
    aside_error err;
    if (aside_update(c, job->key, &options, NULL, NULL, &err) != ASIDE_OK)
        log_line("warn", "background revalidation of %s: %s", job->key, err.message);
    cache_lock(c);
    entry *e = entry_find(c, job->key);
    if (e)
        e->revalidating = false;
    assert(c->background > 0);
    c->background--;
    pthread_cond_broadcast(&c->background_done);
    cache_unlock(c);
    free(job->key);
    free(job->storage);
    free(job);
    return NULL;
}

static bool start_refresh(aside_cache *c, const char *key, const char *storage)
{
    refresh_job *job = calloc(1, sizeof *job);
    if (!job)
        return false;
    job->cache = c;
    job->key = strdup(key);
    job->storage = storage ? strdup(storage) : NULL;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    bool ok = job->key && (!storage || job->storage) &&
              pthread_create(&thread, &attr, refresh_run, job) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        free(job->key);
        free(job->storage);
        free(job);
    }
    return ok;
}

/* After a hit: is the copy older than max_age? Then say so, and revalidate it in the
 * background unless that already runs. */
static void check_age(aside_cache *c, const char *key, const aside_read_options *options,
                      aside_read_info *info)
{
    if (!options || !options->max_age_s)
        return;
    cache_lock(c);
    entry *e = entry_find(c, key);
    info->stale = e && clock_unix_ms() - e->validated_ms > (int64_t)options->max_age_s * 1000;
    bool start = info->stale && !e->revalidating;
    if (start) {
        e->revalidating = true;
        c->background++;
    }
    cache_unlock(c);
    if (start && !start_refresh(c, key, options->storage)) {
        cache_lock(c);
        if ((e = entry_find(c, key)))
            e->revalidating = false;
        assert(c->background > 0);
        c->background--;
        cache_unlock(c);
    }
}

/* ---- reads ----------------------------------------------------------------------------------- */

aside_status aside_get(aside_cache *c, const char *key, aside_value **out,
                       aside_source *source, aside_error *err)
{
    aside_read_info info;
    aside_status st = aside_read(c, key, NULL, out, &info, err);
    if (source)
        *source = info.source;
    return st;
}

aside_status aside_read(aside_cache *c, const char *key, const aside_read_options *options,
                        aside_value **out, aside_read_info *info, aside_error *err)
{
    aside_read_info ignored;
    info = info ? info : &ignored;
    memset(info, 0, sizeof *info);
    aside_source *source = &info->source;
    sor *from = NULL;
    aside_value_type type = ASIDE_TYPE_BYTES;
    aside_status st = tier_prepare(c, key, options, &from, err);
    /* a type asked for may decode the copy again, so it is settled before the memory is
     * looked at; otherwise a memory hit needs no type, and only a miss asks for it */
    bool asked = options && options->type;
    if (st == ASIDE_OK && asked)
        st = tier_settle_type(c, key, options, false, &type, err);
    if (st != ASIDE_OK)
        return st;
    if (tier_memory_hit(c, key, out)) {
        *source = ASIDE_SOURCE_MEMORY;
        check_age(c, key, options, info);
        return ASIDE_OK;
    }
    if (options && options->memory_only)
        return error_set(err, ASIDE_ERR_WOULD_BLOCK, "%s is not in memory", key);
    if (!asked && (st = tier_settle_type(c, key, options, false, &type, err)) != ASIDE_OK)
        return st;
    bool leader = false;
    flight *f = flight_join(c->flights, key, &leader);
    if (!f)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (!leader)
        return tier_follow(c, key, f, out, source, &info->uncached, err);
    aside_value *v = NULL;
    st = tier_load(c, from, key, type, &v, source, &info->uncached, err);
    flight_complete(c->flights, f, st, v, tier_flight_tag(*source, info->uncached), err);
    flight_release(c->flights, f, tier_value_release);
    if (st == ASIDE_OK) {
        *out = v;
        if (*source != ASIDE_SOURCE_SOR)
            check_age(c, key, options, info);
    }
    return st;
}

/* ---- updates --------------------------------------------------------------------------------- */

/* The version tag of key's cached copy, or "" if none; returns the copy's type (or the key's). */
static aside_value_type cached_etag(aside_cache *c, const char *key, char *etag, size_t size)
{
    cache_lock(c);
    entry *e = entry_find(c, key);
    snprintf(etag, size, "%s", e ? e->meta.etag : "");
    aside_value_type type = e ? e->meta.type : aside_value_type_for_key(key);
    cache_unlock(c);
    return type;
}

/* The update itself, as the leader of key's flight. */
static aside_status revalidate(aside_cache *c, sor *from, const char *key, aside_value **out,
                               aside_read_info *info, aside_error *err)
{
    char etag[sizeof((store_meta *)0)->etag];
    aside_value_type type = cached_etag(c, key, etag, sizeof etag);
    bool not_modified = false;
    info->source = ASIDE_SOURCE_SOR;
    aside_status st = load_from_sor(c, from, key, type, etag[0] ? etag : NULL, out,
                                    &not_modified, &info->uncached, err);
    if (st == ASIDE_OK && not_modified) {
        info->revalidated = true;
        cache_lock(c);
        entry *e = entry_find(c, key);
        if (e)
            e->validated_ms = clock_unix_ms();
        cache_unlock(c);
        if (tier_memory_hit(c, key, out))
            return ASIDE_OK;
        st = tier_disk_hit(c, key, out, err);
        if (st != ASIDE_ERR_NOT_FOUND) /* else the copy went bad: fetch it whole */
            return st;
        info->revalidated = false;
        st = load_from_sor(c, from, key, type, NULL, out, &not_modified, &info->uncached, err);
    }
    if (st == ASIDE_ERR_NOT_FOUND) {
        cache_lock(c);
        entry *e = entry_find(c, key);
        if (e)
            entry_destroy(c, e, true);
        cache_unlock(c);
    }
    return st;
}

/* After an update whose SOR failed (status st): the last good copy, if there is one. */
static aside_status stale_if_error(aside_cache *c, const char *key, aside_status st,
                                   aside_value **v, aside_read_info *info, aside_error *err)
{
    if (st != ASIDE_ERR_SOR && st != ASIDE_ERR_TIMEOUT && st != ASIDE_ERR_DENIED)
        return st;
    aside_error ignored;
    bool in_memory = tier_memory_hit(c, key, v);
    if (!in_memory && tier_disk_hit(c, key, v, &ignored) != ASIDE_OK)
        return st;
    log_line("warn", "%s: serving the cached copy: %s", key, err ? err->message : "");
    info->stale = true;
    info->source = in_memory ? ASIDE_SOURCE_MEMORY : ASIDE_SOURCE_DISK;
    return ASIDE_OK;
}

aside_status aside_update(aside_cache *c, const char *key, const aside_read_options *options,
                          aside_value **out, aside_read_info *info, aside_error *err)
{
    aside_read_info ignored;
    info = info ? info : &ignored;
    memset(info, 0, sizeof *info);
    sor *from = NULL;
    flight *f = NULL;
    aside_status st = tier_prepare_to_lead(c, key, options, &from, &f, err);
    if (st != ASIDE_OK)
        return st;
    cache_lock(c);
    entry *e = entry_find(c, key);
    if (e && e->live)
        st = error_set(err, ASIDE_ERR_CONFLICT, "%s is a %s the cache alone holds: no system of "
                       "record has it to update from", key, aside_value_type_name(e->meta.type));
    cache_unlock(c);
    aside_value *v = NULL;
    if (st == ASIDE_OK)
        st = revalidate(c, from, key, &v, info, err);
    if (options && options->stale_if_error)
        st = stale_if_error(c, key, st, &v, info, err);
    flight_complete(c->flights, f, st, v, tier_flight_tag(info->source, info->uncached), err);
    flight_release(c->flights, f, tier_value_release);
    if (st == ASIDE_OK && out)
        *out = v;
    else
        aside_value_release(v);
    return st;
}
