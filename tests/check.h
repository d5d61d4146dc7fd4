/* check.h -- the smallest test harness that does the job.
 *
 * CHECK(cond) records a failure with its file and line and goes on, so one run shows every
 * broken expectation; RUN(test) runs a test function and prints its name; CHECK_DONE() prints a
 * summary and yields the exit status ctest reads. */
#ifndef ASIDE_CHECK_H
#define ASIDE_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        check_count++;                                                                    \
        if (!(cond)) {                                                                    \
            check_failures++;                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                                                 \
    } while (0)

#define RUN(test)                                                                         \
    do {                                                                                  \
        int before = check_failures;                                                      \
        test();                                                                           \
        printf("%s %s\n", check_failures == before ? "ok  " : "FAIL", #test);             \
    } while (0)

#define CHECK_DONE()                                                                      \
    (printf("%d checks, %d failed\n", check_count, check_failures),                       \
     check_failures ? EXIT_FAILURE : EXIT_SUCCESS)

#endif
