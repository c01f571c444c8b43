/* Internal checks shared by the NCHW layer kernels (conv2d, batchnorm2d, pool2d); not public.
 * Included once per .c file, before the float/double instantiations. */
#ifndef COLLAPSE_NN_NCHW_H
#define COLLAPSE_NN_NCHW_H

#include <stdio.h>

#include "core/args.h"

/* Room for "[a x b x c x d]" with four int64 values. */
#define CL_SHAPE_STR 96

static inline const char *cl_shape4_str(char *buf, const int64_t *s) {
    snprintf(buf, CL_SHAPE_STR, "[%lld x %lld x %lld x %lld]", (long long)s[0], (long long)s[1], (long long)s[2],
             (long long)s[3]);
    return buf;
}

/* A 4-d shape argument: non-NULL, every size > 0, the element count within int64. */
static inline collapse_status cl_need_shape4(const char *fn, const char *arg, const int64_t *s, int64_t *numel) {
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s is NULL, expected 4 sizes", fn, arg);
    char b[CL_SHAPE_STR];
    int64_t n = 1;
    for (int i = 0; i < 4; i++) {
        if (s[i] <= 0)
            return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s %s has a size <= 0", fn, arg, cl_shape4_str(b, s));
        if (n > INT64_MAX / s[i])
            return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s %s has too many elements", fn, arg, cl_shape4_str(b, s));
        n *= s[i];
    }
    if (numel) *numel = n;
    return COLLAPSE_OK;
}

/* A required 4-d array of shape s. */
static inline collapse_status cl_need_ptr4(const char *fn, const char *arg, const void *p, const int64_t *s) {
    if (p) return COLLAPSE_OK;
    char b[CL_SHAPE_STR];
    return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s is NULL, expected a %s array", fn, arg, cl_shape4_str(b, s));
}

/* An integer option >= lo (stride >= 1, padding >= 0), bounded so index arithmetic cannot overflow. */
static inline collapse_status cl_need_int_opt(const char *fn, const char *arg, int64_t v, int64_t lo) {
    if (v < lo)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s must be %s, got %lld", fn, arg, lo ? "positive" : ">= 0",
                             (long long)v);
    if (v > INT32_MAX)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s = %lld is too large (at most %d)", fn, arg, (long long)v,
                             INT32_MAX);
    return COLLAPSE_OK;
}

#endif
