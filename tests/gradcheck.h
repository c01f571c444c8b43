/* Numerical helpers of the kernel tests (test_nn.c, test_conv.c): a private random stream
 * independent of the tensor core, array helpers, norm-wise relative errors, central finite
 * differences and float32-vs-float64 checks. Define GRADCHECK_SEED before including to choose
 * the stream. */
#ifndef COLLAPSE_TESTS_GRADCHECK_H
#define COLLAPSE_TESTS_GRADCHECK_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#ifndef GRADCHECK_SEED
#define GRADCHECK_SEED 1
#endif

/* splitmix64 + Box-Muller */
static uint64_t rng_state = GRADCHECK_SEED;
static double uniform01(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}
static double normal01(void) { return sqrt(-2 * log(1 - uniform01())) * cos(6.283185307179586 * uniform01()); }
static double *randn(int64_t len, double scale) {
    double *a = malloc((size_t)(len ? len : 1) * sizeof *a);
    for (int64_t i = 0; i < len; i++) a[i] = scale * normal01();
    return a;
}
static double *zeros(int64_t len) { return calloc((size_t)(len ? len : 1), sizeof(double)); }
static float *fzeros(int64_t len) { return calloc((size_t)(len ? len : 1), sizeof(float)); }
static double *copy_of(const double *a, int64_t len) {
    double *b = malloc((size_t)(len ? len : 1) * sizeof *b);
    memcpy(b, a, (size_t)len * sizeof *b);
    return b;
}
static float *to_f32(const double *a, int64_t len) {
    if (!a) return NULL;
    float *b = malloc((size_t)(len ? len : 1) * sizeof *b);
    for (int64_t i = 0; i < len; i++) b[i] = (float)a[i];
    return b;
}
static double dot(const double *a, const double *b, int64_t len) {
    double s = 0;
    for (int64_t i = 0; i < len; i++) s += a[i] * b[i];
    return s;
}
/* max |a - b| / max(max |b|, tiny): a norm-wise relative error */
static double rel_err(const double *a, const double *b, int64_t len) {
    double d = 0, r = 0;
    for (int64_t i = 0; i < len; i++) {
        if (fabs(a[i] - b[i]) > d || a[i] != a[i]) d = a[i] != a[i] ? INFINITY : fabs(a[i] - b[i]);
        if (fabs(b[i]) > r) r = fabs(b[i]);
    }
    return d / (r > 1e-300 ? r : 1e-300);
}
static double rel_err_f32(const float *a, const double *b, int64_t len) {
    double *t = malloc((size_t)(len ? len : 1) * sizeof *t);
    for (int64_t i = 0; i < len; i++) t[i] = a[i];
    double e = rel_err(t, b, len);
    free(t);
    return e;
}

static double worst_fd = 0, worst_f32 = 0;

/* Central differences of obj(ctx) w.r.t. param[0..len) against the analytic gradient. */
typedef double (*objective_fn)(void *ctx);
static double fd_h = 1e-5; /* step, scaled with the inputs by tests that shrink them */
static double fd_check(const char *what, objective_fn obj, void *ctx, double *param, int64_t len,
                       const double *analytic) {
    const double h = fd_h;
    double *fd = malloc((size_t)(len ? len : 1) * sizeof *fd);
    for (int64_t k = 0; k < len; k++) {
        double save = param[k];
        param[k] = save + h;
        double fp = obj(ctx);
        param[k] = save - h;
        double fm = obj(ctx);
        param[k] = save;
        fd[k] = (fp - fm) / (2 * h);
    }
    double e = rel_err(analytic, fd, len);
    free(fd);
    if (e > worst_fd) worst_fd = e;
    if (getenv("COLLAPSE_TEST_VERBOSE") || !(e < 1e-6))
        fprintf(stderr, "finite differences: %s relative error %.3g\n", what, e);
    CHECK(e < 1e-6);
    return e;
}

static void check_f32(const char *what, const float *a, const double *b, int64_t len, double tol) {
    double e = rel_err_f32(a, b, len);
    if (e > worst_f32) worst_f32 = e;
    if (getenv("COLLAPSE_TEST_VERBOSE") || !(e < tol))
        fprintf(stderr, "f32 vs f64: %s relative error %.3g (tol %g)\n", what, e, tol);
    CHECK(e < tol);
}
#endif
