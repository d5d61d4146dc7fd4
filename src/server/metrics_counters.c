/* metrics_counters.c -- what the server counts for /metrics (metrics.h): requests by function
 * and status, their durations, reads by named dataset.
 *
 * One set per process, like the process's listening port: the counters are static arrays of
 * atomics, so counting is an atomic add without a lock, on whatever thread answers. A request's
 * function finds its slot by comparing pointers first (route rows' names are the same strings
 * every time), then text; a new name takes the next slot under a mutex, once. The statuses of a
 * function are 500 slots (100..599) in the zero pages of the process's BSS: only the ones used
 * are ever touched.
 *
 * Datasets: the spec in force gives the rules (its named datasets, copied here), swapped under a
 * read-write lock when a spec is put in force; a read takes the read side only when some dataset
 * has a name. Names are slots that stay for the process's life, so a reload that keeps a name
 * keeps counting on, and a counter never goes back. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

enum { STATUS_MIN = 100, STATUS_SLOTS = 500 };

const double metrics_bucket_bounds[METRICS_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,     2.5,   5,    10};

typedef struct function_slot {
    _Atomic(const char *) name;
    atomic_uint_fast64_t  by_status[STATUS_SLOTS];
    atomic_uint_fast64_t  buckets[METRICS_BUCKETS];
    atomic_uint_fast64_t  count, sum_ns;
} function_slot;

static function_slot   functions[METRICS_FUNCTIONS_MAX];
static atomic_size_t   function_count;
static pthread_mutex_t function_lock = PTHREAD_MUTEX_INITIALIZER;

/* The slot of name, taking a new one the first time; the last slot is "other". */
static function_slot *function_find(const char *name)
{
    size_t n = atomic_load_explicit(&function_count, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        if (atomic_load_explicit(&functions[i].name, memory_order_relaxed) == name)
            return &functions[i];
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(atomic_load_explicit(&functions[i].name, memory_order_relaxed), name) == 0)
            return &functions[i];
    }
    pthread_mutex_lock(&function_lock);
    n = atomic_load_explicit(&function_count, memory_order_relaxed);
    function_slot *slot = NULL;
    for (size_t i = 0; i < n && !slot; i++) {
        if (strcmp(atomic_load_explicit(&functions[i].name, memory_order_relaxed), name) == 0)
            slot = &functions[i];
    }
    if (!slot) {
        slot = &functions[n < METRICS_FUNCTIONS_MAX ? n : METRICS_FUNCTIONS_MAX - 1];
        if (n < METRICS_FUNCTIONS_MAX) {
            atomic_store_explicit(&slot->name, n == METRICS_FUNCTIONS_MAX - 1 ? "other" : name,
                                  memory_order_relaxed);
            atomic_store_explicit(&function_count, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&function_lock);
    return slot;
}

void metrics_observe_request(const char *function, int status, double seconds)
{
    function_slot *f = function_find(function ? function : METRICS_NONE);
    if (status >= STATUS_MIN && status < STATUS_MIN + STATUS_SLOTS)
        atomic_fetch_add_explicit(&f->by_status[status - STATUS_MIN], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < METRICS_BUCKETS && seconds > metrics_bucket_bounds[b])
        b++;
    if (b < METRICS_BUCKETS)
        atomic_fetch_add_explicit(&f->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->sum_ns, (uint64_t)(seconds > 0 ? seconds * 1e9 : 0),
                              memory_order_relaxed);
}

bool metrics_function_get(size_t i, metrics_function *out)
{
    if (i >= atomic_load_explicit(&function_count, memory_order_acquire))
        return false;
    const function_slot *f = &functions[i];
    memset(out, 0, sizeof *out);
    out->name = atomic_load_explicit(&f->name, memory_order_relaxed);
    for (size_t s = 0; s < STATUS_SLOTS; s++)
        out->by_status[STATUS_MIN + s] = atomic_load_explicit(&f->by_status[s],
                                                              memory_order_relaxed);
    for (size_t b = 0; b < METRICS_BUCKETS; b++)
        out->buckets[b] = atomic_load_explicit(&f->buckets[b], memory_order_relaxed);
    out->count = atomic_load_explicit(&f->count, memory_order_relaxed);
    out->sum_ns = atomic_load_explicit(&f->sum_ns, memory_order_relaxed);
    return true;
}

/* ---- datasets ------------------------------------------------------------------------------ */

typedef struct dataset_slot {
    char                 name[SPEC_NAME_MAX_BYTES + 1];
    atomic_uint_fast64_t hits_memory, hits_disk, misses, bytes;
} dataset_slot;

/* A named dataset of the spec in force: how its keys match, and its slot. */
typedef struct dataset_rule {
    spec_dataset  match; /* match and pattern only */
    dataset_slot *slot;
} dataset_rule;

static dataset_slot     datasets[METRICS_DATASETS_MAX];
static atomic_size_t    dataset_count;
static pthread_rwlock_t rules_lock = PTHREAD_RWLOCK_INITIALIZER;
static dataset_rule    *rules;      /* under rules_lock */
static atomic_size_t    rule_count; /* read without the lock: 0 means nothing to count */

/* The slot called name, taking a new one (under rules_lock, written); NULL when none is left. */
static dataset_slot *dataset_find(const char *name)
{
    size_t n = atomic_load_explicit(&dataset_count, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(datasets[i].name, name) == 0)
            return &datasets[i];
    }
    if (n == METRICS_DATASETS_MAX)
        return NULL;
    snprintf(datasets[n].name, sizeof datasets[n].name, "%s", name);
    atomic_store_explicit(&dataset_count, n + 1, memory_order_release);
    return &datasets[n];
}

static void rules_free(dataset_rule *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        free(r[i].match.pattern);
    free(r);
}

void metrics_datasets_use(const spec *s)
{
    size_t named = 0;
    for (size_t i = 0; s && i < s->dataset_count; i++)
        named += s->datasets[i].name != NULL;
    dataset_rule *fresh = named ? calloc(named, sizeof *fresh) : NULL;
    size_t n = 0;
    pthread_rwlock_wrlock(&rules_lock);
    for (size_t i = 0; fresh && i < s->dataset_count; i++) {
        const spec_dataset *d = &s->datasets[i];
        dataset_slot *slot = d->name ? dataset_find(d->name) : NULL;
        char *pattern = slot ? strdup(d->pattern) : NULL;
        if (!pattern)
            continue;
        fresh[n].match.match = d->match;
        fresh[n].match.pattern = pattern;
        fresh[n++].slot = slot;
    }
    dataset_rule *old = rules;
    size_t old_count = atomic_load_explicit(&rule_count, memory_order_relaxed);
    rules = fresh;
    atomic_store_explicit(&rule_count, n, memory_order_relaxed);
    pthread_rwlock_unlock(&rules_lock);
    rules_free(old, old_count);
}

void metrics_observe_read(const char *key, aside_source source, uint64_t bytes)
{
    if (atomic_load_explicit(&rule_count, memory_order_relaxed) == 0)
        return;
    pthread_rwlock_rdlock(&rules_lock);
    size_t n = atomic_load_explicit(&rule_count, memory_order_relaxed);
    dataset_slot *slot = NULL;
    for (size_t i = 0; i < n && !slot; i++) {
        if (spec_dataset_matches(&rules[i].match, key))
            slot = rules[i].slot;
    }
    if (slot) {
        atomic_uint_fast64_t *which = source == ASIDE_SOURCE_MEMORY ? &slot->hits_memory
                                      : source == ASIDE_SOURCE_DISK ? &slot->hits_disk
                                                                    : &slot->misses;
        atomic_fetch_add_explicit(which, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&slot->bytes, bytes, memory_order_relaxed);
    }
    pthread_rwlock_unlock(&rules_lock);
}

bool metrics_dataset_get(size_t i, metrics_dataset *out)
{
    if (i >= atomic_load_explicit(&dataset_count, memory_order_acquire))
        return false;
    const dataset_slot *d = &datasets[i];
    memcpy(out->name, d->name, sizeof out->name);
    out->hits_memory = atomic_load_explicit(&d->hits_memory, memory_order_relaxed);
    out->hits_disk = atomic_load_explicit(&d->hits_disk, memory_order_relaxed);
    out->misses = atomic_load_explicit(&d->misses, memory_order_relaxed);
    out->bytes = atomic_load_explicit(&d->bytes, memory_order_relaxed);
    return true;
}
