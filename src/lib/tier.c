/* tier.c -- a key in the tiers: memory hit, disk hit, the leader's load, the single flight.
 *
 * Every call of the API is made of these steps. A read looks in memory (one lock, a hash
 * lookup, an atomic increment of the value's reference count); on a miss it joins the key's
 * flight (core/flight.c): one leader per key at a time loads it -- memory again, the disk tier,
 * then the system of record (load.c) -- while followers wait for the leader's value. Writers
 * (update, write, a put of a file, store_frame) lead the key's flight too, after waiting for
 * loads in progress, so a key has one load or write at a time.
 *
 * The lock is taken only around lookups and bookkeeping; a thread never keeps an entry across
 * an unlock but finds it again, and checks it is still the content it loaded (size, checksum). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "tier.h"
#include "util/util.h"

void *tier_value_retain(void *v) { return aside_value_retain(v); }
void  tier_value_release(void *v) { aside_value_release(v); }

/* ---- the tiers ------------------------------------------------------------------------------- */

bool tier_memory_hit(aside_cache *c, const char *key, aside_value **out)
{
    cache_lock(c);
    entry *e = entry_find(c, key);
    bool hit = e && (e->value || (e->live && entry_snapshot(c, e)));
    if (hit) {
        *out = aside_value_retain(e->value);
        entry_touch(c, e);
        c->counters.hits++;
        c->counters.hits_memory++;
    }
    cache_unlock(c);
    return hit;
}

aside_status tier_disk_hit(aside_cache *c, const char *key, aside_value **out,
                           aside_error *err)
{
    cache_lock(c);
    entry *e = entry_find(c, key);
    store_meta meta;
    bool verified = false;
    if (e) {
        meta = e->meta;
        verified = e->verified;
    }
    cache_unlock(c);
    if (!e)
        return ASIDE_ERR_NOT_FOUND;
    aside_error load_err;
    aside_status st = load_file(c, key, &meta, &verified, out, &load_err);
    cache_lock(c);
    e = entry_find(c, key);
    bool same = e && e->meta.xxh3 == meta.xxh3 && e->meta.size == meta.size;
    if (st == ASIDE_OK && same) {
        e->verified = verified;
        entry_touch(c, e);
        entry_hold(c, e, *out);
    }
    if (st == ASIDE_OK) {
        c->counters.hits++;
        c->counters.hits_disk++;
    }
    if (st == ASIDE_ERR_BAD_VALUE && same)
        entry_destroy(c, e, true);
    cache_unlock(c);
    if (st == ASIDE_ERR_BAD_VALUE) {
        log_line("warn", "store: %s; removed, fetching it again", load_err.message);
        return ASIDE_ERR_NOT_FOUND;
    }
    if (st != ASIDE_OK)
        return error_copy(err, &load_err);
    return ASIDE_OK;
}

aside_status tier_load(aside_cache *c, sor *from, const char *key, aside_value_type type,
                       aside_value **out, aside_source *source, bool *uncached,
                       aside_error *err)
{
    *uncached = false;
    if (tier_memory_hit(c, key, out)) {
        *source = ASIDE_SOURCE_MEMORY;
        return ASIDE_OK;
    }
    aside_status st = tier_disk_hit(c, key, out, err);
    if (st != ASIDE_ERR_NOT_FOUND) {
        *source = ASIDE_SOURCE_DISK;
        return st;
    }
    *source = ASIDE_SOURCE_SOR;
    bool not_modified = false;
    st = load_from_sor(c, from, key, type, NULL, out, &not_modified, uncached, err);
    cache_lock(c);
    c->counters.misses++;
    cache_unlock(c);
    return st;
}

/* The flag tier_flight_tag adds to a source when the value was not kept. */
enum { TAG_UNCACHED = 0x100 };

int tier_flight_tag(aside_source source, bool uncached)
{
    return (int)source | (uncached ? TAG_UNCACHED : 0);
}

aside_status tier_follow(aside_cache *c, const char *key, flight *f, aside_value **out,
                         aside_source *source, bool *uncached, aside_error *err)
{
    void *result = NULL;
    int tag = 0;
    atomic_fetch_add_explicit(&c->flight_waiting, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->flight_waits, 1, memory_order_relaxed);
    aside_status st = flight_wait(c->flights, f, &result, &tag, err);
    atomic_fetch_sub_explicit(&c->flight_waiting, 1, memory_order_relaxed);
    flight_release(c->flights, f, tier_value_release);
    if (st == ASIDE_OK && !result) /* a value too large for memory: read its file */
        st = tier_disk_hit(c, key, (aside_value **)&result, err);
    if (st == ASIDE_ERR_NOT_FOUND && !result)
        error_set(err, st, "%s left the cache while it was read; read it again", key);
    if (st != ASIDE_OK)
        return st;
    *out = result;
    *source = (aside_source)(tag & ~TAG_UNCACHED);
    *uncached = (tag & TAG_UNCACHED) != 0;
    cache_lock(c);
    if (*source == ASIDE_SOURCE_SOR)
        c->counters.misses++;
    else
        c->counters.hits++;
    if (*source == ASIDE_SOURCE_MEMORY)
        c->counters.hits_memory++;
    else if (*source == ASIDE_SOURCE_DISK)
        c->counters.hits_disk++;
    cache_unlock(c);
    return ASIDE_OK;
}

aside_status tier_sor(aside_cache *c, const aside_read_options *options, sor **out,
                      aside_error *err)
{
    const char *storage = options ? options->storage : NULL;
    if (!storage || !*storage)
        *out = c->s3 ? c->s3 : c->sd;
    else if (strcmp(storage, "s3") == 0)
        *out = c->s3;
    else if (strcmp(storage, "sd") == 0)
        *out = c->sd;
    else
        return error_set(err, ASIDE_ERR_INVALID, "unknown storage \"%s\" (known: s3, sd)",
                         storage);
    if (!*out)
        return error_set(err, ASIDE_ERR_INVALID, "storage s3 needs a bucket (AWS_BUCKET_NAME)");
    return ASIDE_OK;
}

aside_status tier_prepare(aside_cache *c, const char *key, const aside_read_options *options,
                          sor **from, aside_error *err)
{
    aside_status st = aside_key_check(key, key ? strlen(key) : 0, err);
    return st == ASIDE_OK ? tier_sor(c, options, from, err) : st;
}

/* ---- single flight --------------------------------------------------------------------------- */

flight *tier_lead(aside_cache *c, const char *key)
{
    for (;;) {
        bool leader = false;
        flight *f = flight_join(c->flights, key, &leader);
        if (!f || leader)
            return f;
        void *result = NULL;
        int tag = 0;
        if (flight_wait(c->flights, f, &result, &tag, NULL) == ASIDE_OK)
            aside_value_release(result);
        flight_release(c->flights, f, tier_value_release);
    }
}

aside_status tier_prepare_to_lead(aside_cache *c, const char *key,
                                  const aside_read_options *options, sor **to, flight **f,
                                  aside_error *err)
{
    aside_status st = tier_prepare(c, key, options, to, err);
    if (st != ASIDE_OK)
        return st;
    *f = tier_lead(c, key);
    return *f ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}

/* ---- types ----------------------------------------------------------------------------------- */

/* The names of the value types as the registry (value.c) spells them: "bytes, json, ...". */
static void type_names(char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int t = ASIDE_TYPE_BYTES; t <= ASIDE_TYPE_COUNTER && used < size; t++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", t ? ", " : "",
                                 aside_value_type_name((aside_value_type)t));
}

/* The type options ask for, parsed into *type; *asked false (*type untouched) when none is. */
static aside_status asked_type(const aside_read_options *options, aside_value_type *type,
                               bool *asked, aside_error *err)
{
    *asked = options && options->type;
    if (!*asked || aside_value_type_parse(options->type, type) == ASIDE_OK)
        return ASIDE_OK;
    char known[128];
    type_names(known, sizeof known);
    return error_set(err, ASIDE_ERR_INVALID, "unknown type \"%s\" (known: %s)", options->type,
                     known);
}

aside_status tier_settle_type(aside_cache *c, const char *key, const aside_read_options *options,
                              bool collections_ok, aside_value_type *type, aside_error *err)
{
    bool asked = false;
    aside_status st = asked_type(options, type, &asked, err);
    if (st != ASIDE_OK)
        return st;
    cache_lock(c);
    entry *e = entry_find(c, key);
    if (e && e->live) /* a live value is replaced, never decoded again */
        *type = asked ? *type : aside_value_type_for_key(key);
    else if (!asked)
        *type = e ? e->meta.type : aside_value_type_for_key(key);
    else if (*type >= ASIDE_TYPE_LIST && !collections_ok)
        st = error_set(err, ASIDE_ERR_INVALID, "type %s is for collections, which the cache "
                       "alone holds: create one with put or its operations", options->type);
    else if (e && e->meta.type != *type)
        entry_retype(c, e, *type);
    cache_unlock(c);
    return st;
}
