/* check.h -- the smallest test harness that does the job.
 *
 * CHECK(cond) records a failure with its file and line and goes on, so one run shows every
 * broken expectation; RUN(test) runs a test function and prints its name; CHECK_DONE() prints a
 * summary and yields the exit status ctest reads. A binary that made no check at all fails: a
 * test that checks nothing is broken, not green. A part that cannot run here is not passed
 * silently either: CHECK_SKIP(why) says so and the binary exits CHECK_SKIP_STATUS, which ctest
 * reports as skipped (tests/CMakeLists.txt sets SKIP_RETURN_CODE). */
#ifndef ASIDE_CHECK_H
#define ASIDE_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;
static int check_count;
static int check_skips;

/* The exit status ctest reads as "skipped" (the automake convention). */
#define CHECK_SKIP_STATUS 77

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

/* Record that a part of the binary did not run, and why; the binary then exits as skipped
 * (unless a check failed, which wins). */
#define CHECK_SKIP(why)                                                                   \
    do {                                                                                  \
        check_skips++;                                                                    \
        printf("SKIP %s\n", why);                                                         \
    } while (0)

#define CHECK_DONE()                                                                      \
    (printf("%d checks, %d failed, %d skipped\n", check_count, check_failures, check_skips), \
     check_count == 0 ? (fprintf(stderr, "no check was made\n"), EXIT_FAILURE)           \
     : check_failures ? EXIT_FAILURE                                                      \
     : check_skips    ? CHECK_SKIP_STATUS                                                 \
                      : EXIT_SUCCESS)

#endif
