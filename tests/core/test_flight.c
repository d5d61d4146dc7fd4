/* test_flight.c -- single flight: one leader per key, followers get the leader's outcome. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/core.h"

enum { THREADS = 16 };

typedef struct result {
    atomic_int refs;
    int        value;
} result;

static void *retain(void *r)
{
    atomic_fetch_add(&((result *)r)->refs, 1);
    return r;
}

static void release(void *r) { atomic_fetch_sub(&((result *)r)->refs, 1); }

static flight_group *group;
static atomic_int leaders, loads;
static result shared_result;
static pthread_barrier_t start;

static void *load_once(void *arg)
{
    int *seen = arg;
    pthread_barrier_wait(&start);
    bool leader = false;
    flight *f = flight_join(group, "key", &leader);
    void *out = NULL;
    int tag = 0;
    if (leader) {
        atomic_fetch_add(&leaders, 1);
        atomic_fetch_add(&loads, 1);
        usleep(200 * 1000); /* a slow load: everyone else arrives meanwhile */
        shared_result.value = 42;
        flight_complete(group, f, ASIDE_OK, &shared_result, 7, NULL);
        *seen = 42;
    } else if (flight_wait(group, f, &out, &tag, NULL) == ASIDE_OK) {
        *seen = ((result *)out)->value * (tag == 7);
        release(out);
    }
    flight_release(group, f, release);
    return NULL;
}

static void test_concurrent_loads_of_one_key_run_once(void)
{
    group = flight_group_create(retain);
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_t threads[THREADS];
    int seen[THREADS] = {0};
    for (int i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, load_once, &seen[i]);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    CHECK(atomic_load(&leaders) == 1);
    CHECK(atomic_load(&loads) == 1);
    int right = 0;
    for (int i = 0; i < THREADS; i++)
        right += seen[i] == 42;
    CHECK(right == THREADS);
    CHECK(atomic_load(&shared_result.refs) == 0); /* every reference was given back */
    pthread_barrier_destroy(&start);
    flight_group_destroy(group);
}

static void test_a_failed_load_reaches_followers_with_its_reason(void)
{
    flight_group *g = flight_group_create(retain);
    bool leader = false, second_leader = true;
    flight *f = flight_join(g, "k", &leader);
    flight *f2 = flight_join(g, "k", &second_leader);
    CHECK(leader && !second_leader && f == f2);
    aside_error err = {.status = ASIDE_ERR_SOR, .message = "upstream said no"};
    flight_complete(g, f, ASIDE_ERR_SOR, NULL, 0, &err);
    aside_error got;
    void *out = NULL;
    int tag = 0;
    CHECK(flight_wait(g, f2, &out, &tag, &got) == ASIDE_ERR_SOR);
    CHECK(strcmp(got.message, "upstream said no") == 0);
    flight_release(g, f2, release);
    flight_release(g, f, release);
    /* once completed, the key is free: the next caller leads a new load */
    flight *f3 = flight_join(g, "k", &leader);
    CHECK(leader);
    flight_complete(g, f3, ASIDE_ERR_NOT_FOUND, NULL, 0, NULL);
    flight_release(g, f3, release);
    flight_group_destroy(g);
}

static void test_different_keys_do_not_wait_for_each_other(void)
{
    flight_group *g = flight_group_create(retain);
    bool a = false, b = false;
    flight *fa = flight_join(g, "a", &a);
    flight *fb = flight_join(g, "b", &b);
    CHECK(a && b && fa != fb);
    flight_complete(g, fa, ASIDE_OK, NULL, 0, NULL);
    flight_complete(g, fb, ASIDE_OK, NULL, 0, NULL);
    flight_release(g, fa, release);
    flight_release(g, fb, release);
    flight_group_destroy(g);
}

int main(void)
{
    RUN(test_concurrent_loads_of_one_key_run_once);
    RUN(test_a_failed_load_reaches_followers_with_its_reason);
    RUN(test_different_keys_do_not_wait_for_each_other);
    return CHECK_DONE();
}
