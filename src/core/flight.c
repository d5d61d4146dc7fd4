/* flight.c -- single flight: one load per key at a time.
 *
 * When a hundred clients ask at once for a key the cache does not hold, one of them (the leader)
 * fetches it and the others wait for its outcome instead of each fetching it again. The group
 * keeps the loads in progress in a small hash table under one mutex; a flight is reference
 * counted (the group's table while in progress, the leader, every follower) and carries its own
 * condition variable, so waking the followers of one key disturbs no one else. A flight leaves
 * the table when completed: a caller arriving after that starts a new load, which finds the value
 * already cached. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "util/util.h"

struct flight {
    table_node     node;
    char          *key;
    int            refs; /* guarded by the group's mutex */
    bool           done;
    pthread_cond_t done_cond;
    aside_status   status;
    void          *result; /* the group's reference */
    int            tag;
    aside_error    error;
};

struct flight_group {
    pthread_mutex_t lock;
    table          *loads;
    void *(*retain)(void *result);
};

flight_group *flight_group_create(void *(*retain)(void *result))
{
    flight_group *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->loads = table_create();
    if (!g->loads) {
        free(g);
        return NULL;
    }
    pthread_mutex_init(&g->lock, NULL);
    g->retain = retain;
    return g;
}

void flight_group_destroy(flight_group *g)
{
    if (!g)
        return;
    table_destroy(g->loads);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

static flight *flight_new(const char *key, size_t len, uint64_t hash)
{
    flight *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->key = strndup(key, len);
    if (!f->key) {
        free(f);
        return NULL;
    }
    f->node.key = f->key;
    f->node.key_len = len;
    f->node.hash = hash;
    pthread_cond_init(&f->done_cond, NULL);
    return f;
}

flight *flight_join(flight_group *g, const char *key, bool *leader)
{
    size_t len = strlen(key);
    uint64_t hash = table_hash(key, len);
    pthread_mutex_lock(&g->lock);
    table_node *n = table_find(g->loads, key, len, hash);
    flight *f = NULL;
    if (n) {
        f = (flight *)n;
        f->refs++;
        *leader = false;
    } else {
        f = flight_new(key, len, hash);
        if (f) {
            f->refs = 2; /* the table's and the leader's */
            table_insert(g->loads, &f->node);
            *leader = true;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return f;
}

void flight_complete(flight_group *g, flight *f, aside_status status, void *result, int tag,
                     const aside_error *err)
{
    pthread_mutex_lock(&g->lock);
    table_remove(g->loads, &f->node);
    f->refs--; /* the table's */
    f->status = status;
    f->result = status == ASIDE_OK && result ? g->retain(result) : NULL;
    f->tag = tag;
    if (status != ASIDE_OK && err)
        f->error = *err;
    else if (status != ASIDE_OK)
        error_set(&f->error, status, "load failed");
    f->done = true;
    pthread_cond_broadcast(&f->done_cond);
    pthread_mutex_unlock(&g->lock);
}

aside_status flight_wait(flight_group *g, flight *f, void **result, int *tag,
                         aside_error *err)
{
    pthread_mutex_lock(&g->lock);
    while (!f->done)
        pthread_cond_wait(&f->done_cond, &g->lock);
    aside_status status = f->status;
    if (status == ASIDE_OK) {
        *result = f->result ? g->retain(f->result) : NULL;
        *tag = f->tag;
    } else {
        error_copy(err, &f->error);
    }
    pthread_mutex_unlock(&g->lock);
    return status;
}

void flight_release(flight_group *g, flight *f, void (*release_result)(void *result))
{
    pthread_mutex_lock(&g->lock);
    bool last = --f->refs == 0;
    pthread_mutex_unlock(&g->lock);
    if (!last)
        return;
    if (f->result && release_result)
        release_result(f->result);
    pthread_cond_destroy(&f->done_cond);
    free(f->key);
    free(f);
}
