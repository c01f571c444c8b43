/* Minimal assertion helpers for the C unit tests (one executable per file, run by ctest). */
#ifndef COLLAPSE_TESTS_CHECK_H
#define COLLAPSE_TESTS_CHECK_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "collapse.h"

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        check_count++;                                                               \
        if (!(cond)) {                                                               \
            check_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* |a - b| <= tol * max(1, |b|) : relative for large values, absolute near zero. */
#define CHECK_CLOSE(a, b, tol)                                                              \
    do {                                                                                    \
        double check_a_ = (a), check_b_ = (b);                                              \
        check_count++;                                                                      \
        double check_s_ = fabs(check_b_) > 1.0 ? fabs(check_b_) : 1.0;                      \
        if (!(fabs(check_a_ - check_b_) <= (tol) * check_s_)) {                             \
            check_failures++;                                                               \
            fprintf(stderr, "%s:%d: CHECK_CLOSE failed: %s = %.17g, expected %.17g (tol %g)\n", \
                    __FILE__, __LINE__, #a, check_a_, check_b_, (double)(tol));             \
        }                                                                                   \
    } while (0)

#define CHECK_OK(expr)                                                                     \
    do {                                                                                   \
        collapse_status check_s_ = (expr);                                                 \
        check_count++;                                                                     \
        if (check_s_ != COLLAPSE_OK) {                                                     \
            check_failures++;                                                              \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,          \
                    collapse_last_error());                                                \
        }                                                                                  \
    } while (0)

/* Expects a failing status whose message contains `needle`. */
#define CHECK_FAILS(expr, needle)                                                          \
    do {                                                                                   \
        collapse_status check_s_ = (expr);                                                 \
        check_count++;                                                                     \
        if (check_s_ == COLLAPSE_OK || !strstr(collapse_last_error(), (needle))) {        \
            check_failures++;                                                              \
            fprintf(stderr, "%s:%d: expected %s to fail with '%s', got status %d '%s'\n", \
                    __FILE__, __LINE__, #expr, (needle), (int)check_s_,                   \
                    collapse_last_error());                                                \
        }                                                                                  \
    } while (0)

static inline int check_report(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}
#endif
