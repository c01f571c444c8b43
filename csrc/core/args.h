/* Internal argument checks shared by the nn and optim kernels (not part of the public API).
 * Included once per .c file, before the float/double instantiations. */
#ifndef COLLAPSE_CORE_ARGS_H
#define COLLAPSE_CORE_ARGS_H

#include <limits.h>
#include <math.h>
#include <stdint.h>

#include "core/error.h"

/* Forces inlining of loop bodies that take constant flags (one specialised loop per case). */
#if defined(__GNUC__)
#  define CL_ALWAYS_INLINE __attribute__((always_inline))
#else
#  define CL_ALWAYS_INLINE
#endif

/* Runtime dispatch for the hot elementwise loops: GCC compiles the function for baseline x86-64,
 * AVX2 and AVX-512 and picks one at load time (ifunc), so builds stay portable (no -march).
 * The library is built with -ffp-contract=off: no clone fuses a*b+c into an FMA, so every clone
 * computes bit-identical results (the loops vectorise across independent elements). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 8 && \
    !defined(COLLAPSE_NO_CLONES)
#  define CL_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#  define CL_CLONES
#endif

/* Column block for per-feature reductions: stack accumulators of this many doubles. */
#define CL_NN_BLOCK 256

/* A size argument: > 0, and within BLAS's int range when it reaches BLAS. */
static inline collapse_status cl_need_size(const char *fn, const char *arg, int64_t v, int blas) {
    if (v <= 0) return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s must be positive, got %lld", fn, arg, (long long)v);
    if (blas && v > INT_MAX)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s = %lld exceeds the BLAS index limit %d", fn, arg,
                             (long long)v, INT_MAX);
    return COLLAPSE_OK;
}

/* A required array: p != NULL. cols == 0 describes a vector [rows], else a matrix [rows x cols]. */
static inline collapse_status cl_need_ptr(const char *fn, const char *arg, const void *p, int64_t rows,
                                          int64_t cols) {
    if (p) return COLLAPSE_OK;
    if (cols)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s is NULL, expected a [%lld x %lld] array", fn, arg,
                             (long long)rows, (long long)cols);
    return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s is NULL, expected a [%lld] array", fn, arg, (long long)rows);
}

/* A scalar option in [lo, hi] (NaN fails). */
static inline collapse_status cl_need_range(const char *fn, const char *arg, double v, double lo, double hi) {
    if (v >= lo && v <= hi) return COLLAPSE_OK;
    return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s must be in [%g, %g], got %g", fn, arg, lo, hi, v);
}

/* A non-negative finite scalar option (NaN and inf fail). */
static inline collapse_status cl_need_nonneg(const char *fn, const char *arg, double v) {
    if (v >= 0 && isfinite(v)) return COLLAPSE_OK;
    return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s must be a finite number >= 0, got %g", fn, arg, v);
}

#endif
