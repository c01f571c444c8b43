/* C unit tests of the BatchNorm2d train kernels' fast paths (csrc/nn/batchnorm2d_impl.h):
 * - the lane reductions against an independent long-double reference (mean, biased variance,
 *   running variance, the gradient sums), over plane sizes with and without a tail (hw mod 16),
 *   on both sides of the plane size where the backward switches to passes in memory order;
 * - the fused BatchNorm2d + ReLU kernels bit-identical to batchnorm2d then relu (forward) and
 *   relu_backward then batchnorm2d (backward), float and double, in place (gx == gy) too;
 * - a float64 finite-difference check of the fused backward;
 * - the fused kernels' argument errors. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "collapse.h"

static uint64_t rng_state = 0x243f6a8885a308d3ULL;
static double uniform(void) { /* splitmix64 -> [0, 1) */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}
static double normal(void) {
    double s = 0;
    for (int i = 0; i < 12; i++) s += uniform();
    return s - 6.0;
}

/* float32 input with a large common offset (the case the two-pass variance is for): save_mean,
 * save_invstd, running_var and the gradient sums against long-double sums of the same values. */
static void reductions_against_long_double(int64_t n, int64_t c, int64_t h, int64_t w) {
    const int64_t hw = h * w, m = n * hw, total = n * c * hw;
    const int64_t s[4] = {n, c, h, w};
    float *x = malloc(sizeof(float) * total), *y = malloc(sizeof(float) * total);
    float *gy = malloc(sizeof(float) * total), *gx = malloc(sizeof(float) * total);
    float *rm = calloc(c, sizeof(float)), *rv = malloc(sizeof(float) * c), *sm = malloc(sizeof(float) * c);
    float *si = malloc(sizeof(float) * c), *gg = calloc(c, sizeof(float)), *gb = calloc(c, sizeof(float));
    for (int64_t i = 0; i < total; i++) {
        x[i] = (float)(1000.0 + 3.0 * normal());
        gy[i] = (float)normal();
    }
    for (int64_t k = 0; k < c; k++) rv[k] = 0;
    CHECK_OK(collapse_batchnorm2d_forward_train_f32(s, x, y, NULL, NULL, rm, rv, sm, si, 1.0, 1e-5));
    CHECK_OK(collapse_batchnorm2d_backward_train_f32(s, x, gy, gx, NULL, gg, gb, sm, si));
    for (int64_t k = 0; k < c; k++) {
        long double sum = 0, ss = 0, sdy = 0, dot = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) sum += x[(i * c + k) * hw + j];
        const long double mu = sum / m;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                const long double d = x[(i * c + k) * hw + j] - mu;
                ss += d * d;
            }
        const long double invstd = 1.0L / sqrtl(ss / m + 1e-5L);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                const int64_t o = (i * c + k) * hw + j;
                sdy += gy[o];
                dot += (x[o] - (long double)sm[k]) * gy[o];
            }
        /* each value is the float rounding of a double result: within 1 float ulp, or so */
        CHECK_CLOSE(sm[k], (double)mu, 1e-6 * fabs((double)mu));
        CHECK_CLOSE(si[k], (double)invstd, 2e-7 * (double)invstd);
        CHECK_CLOSE(rv[k], (double)(ss / (m - 1)), 2e-7 * (double)(ss / (m - 1)));
        CHECK_CLOSE(gb[k], (double)sdy, 1e-6 * (1 + fabsl(sdy)));
        CHECK_CLOSE(gg[k], (double)(dot * (long double)si[k]), 1e-6 * (1 + fabsl(dot * si[k])));
    }
    free(x), free(y), free(gy), free(gx), free(rm), free(rv), free(sm), free(si), free(gg), free(gb);
}

/* fused == the kernels in turn, bit for bit (affine or not; some x exactly at the ReLU kink). */
#define FUSED_EQUAL_CASE(T, SUF)                                                                              \
    static void fused_equal_##SUF(int64_t n, int64_t c, int64_t h, int64_t w, int affine) {                   \
        const int64_t total = n * c * h * w, s[4] = {n, c, h, w};                                             \
        T *x = malloc(sizeof(T) * total), *y1 = malloc(sizeof(T) * total), *y2 = malloc(sizeof(T) * total);   \
        T *gy = malloc(sizeof(T) * total), *g1 = malloc(sizeof(T) * total), *g2 = malloc(sizeof(T) * total);  \
        T *gamma = malloc(sizeof(T) * c), *beta = calloc(c, sizeof(T));                                       \
        T *rm1 = calloc(c, sizeof(T)), *rv1 = malloc(sizeof(T) * c), *rm2 = calloc(c, sizeof(T));             \
        T *rv2 = malloc(sizeof(T) * c), *sm1 = malloc(sizeof(T) * c), *si1 = malloc(sizeof(T) * c);           \
        T *sm2 = malloc(sizeof(T) * c), *si2 = malloc(sizeof(T) * c);                                         \
        T *gg1 = calloc(c, sizeof(T)), *gb1 = calloc(c, sizeof(T)), *gg2 = calloc(c, sizeof(T));              \
        T *gb2 = calloc(c, sizeof(T));                                                                        \
        for (int64_t i = 0; i < total; i++) {                                                                 \
            x[i] = (T)(normal() * 2 + 0.3);                                                                   \
            gy[i] = (T)normal();                                                                              \
        }                                                                                                     \
        for (int64_t k = 0; k < c; k++) {                                                                     \
            gamma[k] = (T)(0.5 + uniform());                                                                  \
            beta[k] = (T)(normal() * 0.5);                                                                    \
            rv1[k] = rv2[k] = 1;                                                                              \
        }                                                                                                     \
        const T *ga = affine ? gamma : NULL, *be = affine ? beta : NULL;                                      \
        CHECK_OK(collapse_batchnorm2d_forward_train_##SUF(s, x, y1, ga, be, rm1, rv1, sm1, si1, 0.1, 1e-5));  \
        CHECK_OK(collapse_relu_forward_##SUF(total, y1, y1));                                                 \
        CHECK_OK(collapse_batchnorm2d_relu_forward_train_##SUF(s, x, y2, ga, be, rm2, rv2, sm2, si2, 0.1,     \
                                                               1e-5));                                        \
        CHECK(!memcmp(y1, y2, sizeof(T) * total));                                                            \
        CHECK(!memcmp(rm1, rm2, sizeof(T) * c) && !memcmp(rv1, rv2, sizeof(T) * c));                          \
        CHECK(!memcmp(sm1, sm2, sizeof(T) * c) && !memcmp(si1, si2, sizeof(T) * c));                          \
        int zeros = 0;                                                                                        \
        for (int64_t i = 0; i < total; i++) zeros += y2[i] == 0;                                              \
        CHECK(zeros > 0 && zeros < total);                                                                    \
        CHECK_OK(collapse_relu_backward_##SUF(total, y1, gy, g1));                                            \
        CHECK_OK(collapse_batchnorm2d_backward_train_##SUF(s, x, g1, g1, ga, affine ? gg1 : NULL,             \
                                                           affine ? gb1 : NULL, sm1, si1));                   \
        CHECK_OK(collapse_batchnorm2d_relu_backward_train_##SUF(s, x, y2, gy, g2, ga, affine ? gg2 : NULL,    \
                                                                affine ? gb2 : NULL, sm2, si2));              \
        CHECK(!memcmp(g1, g2, sizeof(T) * total));                                                            \
        CHECK(!memcmp(gg1, gg2, sizeof(T) * c) && !memcmp(gb1, gb2, sizeof(T) * c));                          \
        memcpy(g2, gy, sizeof(T) * total); /* in place: gx == gy */                                           \
        CHECK_OK(collapse_batchnorm2d_relu_backward_train_##SUF(s, x, y2, g2, g2, ga, NULL, NULL, sm2, si2)); \
        CHECK(!memcmp(g1, g2, sizeof(T) * total));                                                            \
        free(x), free(y1), free(y2), free(gy), free(g1), free(g2), free(gamma), free(beta);                   \
        free(rm1), free(rv1), free(rm2), free(rv2), free(sm1), free(si1), free(sm2), free(si2);               \
        free(gg1), free(gb1), free(gg2), free(gb2);                                                           \
    }
FUSED_EQUAL_CASE(float, f32)
FUSED_EQUAL_CASE(double, f64)

/* L = sum(w * relu(bn2d(x))) in float64 */
static double loss(const int64_t s[4], const double *x, const double *gamma, const double *beta, const double *w) {
    const int64_t total = s[0] * s[1] * s[2] * s[3];
    double *y = malloc(sizeof(double) * total), sm[2], si[2], l = 0;
    collapse_batchnorm2d_relu_forward_train_f64(s, x, y, gamma, beta, NULL, NULL, sm, si, 0.1, 1e-5);
    for (int64_t i = 0; i < total; i++) l += w[i] * y[i];
    free(y);
    return l;
}

/* central differences of L against the fused backward: input, gamma, beta (3 x 3 planes: a tail) */
static void fused_finite_differences(void) {
    enum { N = 3, C = 2, H = 3, W = 3, T = N * C * H * W };
    const int64_t s[4] = {N, C, H, W};
    double x[T], w[T], y[T], gx[T], gamma[C] = {1.3, 0.7}, beta[C] = {0.2, -0.1}, sm[C], si[C];
    double gg[C] = {0}, gb[C] = {0};
    for (int i = 0; i < T; i++) x[i] = normal(), w[i] = normal();
    CHECK_OK(collapse_batchnorm2d_relu_forward_train_f64(s, x, y, gamma, beta, NULL, NULL, sm, si, 0.1, 1e-5));
    CHECK_OK(collapse_batchnorm2d_relu_backward_train_f64(s, x, y, w, gx, gamma, gg, gb, sm, si));
    const double h = 1e-6;
    double *ps[3] = {x, gamma, beta}, *gs[3] = {gx, gg, gb};
    const int counts[3] = {T, C, C};
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < counts[p]; i++) {
            const double keep = ps[p][i];
            ps[p][i] = keep + h;
            const double lp = loss(s, x, gamma, beta, w);
            ps[p][i] = keep - h;
            const double lm = loss(s, x, gamma, beta, w);
            ps[p][i] = keep;
            CHECK_CLOSE(gs[p][i], (lp - lm) / (2 * h), 1e-6);
        }
}

static void fused_errors(void) {
    const int64_t s[4] = {2, 1, 1, 2}, one[4] = {1, 1, 1, 1};
    float x[4] = {1, 2, 3, 4}, y[4], sm[1], si[1];
    CHECK_FAILS(collapse_batchnorm2d_relu_forward_train_f32(one, x, y, NULL, NULL, NULL, NULL, sm, si, 0.1, 1e-5),
                "at least 2 values per channel");
    CHECK_FAILS(collapse_batchnorm2d_relu_forward_train_f32(s, NULL, y, NULL, NULL, NULL, NULL, sm, si, 0.1, 1e-5),
                "batchnorm2d_relu_forward_train: x is NULL");
    CHECK_OK(collapse_batchnorm2d_relu_forward_train_f32(s, x, y, NULL, NULL, NULL, NULL, sm, si, 0.1, 1e-5));
    CHECK_FAILS(collapse_batchnorm2d_relu_backward_train_f32(s, x, NULL, x, y, NULL, NULL, NULL, sm, si),
                "batchnorm2d_relu_backward_train: y is NULL, expected a [2 x 1 x 1 x 2] array");
    CHECK_FAILS(collapse_batchnorm2d_relu_backward_train_f32(NULL, x, y, x, y, NULL, NULL, NULL, sm, si),
                "batchnorm2d_relu_backward_train: input shape");
}

int main(void) {
    reductions_against_long_double(8, 3, 32, 32); /* hw = 1024: no tail */
    reductions_against_long_double(16, 5, 5, 5);  /* hw = 25: 16 + a tail of 9 */
    reductions_against_long_double(64, 2, 3, 3);  /* hw = 9: tail only */
    reductions_against_long_double(40, 4, 1, 1);  /* hw = 1 */
    /* the backward walks channel by channel from hw = 256 (CL_BN2D_STREAM_HW), in memory order below */
    reductions_against_long_double(6, 3, 16, 16);
    reductions_against_long_double(6, 3, 15, 17);
    fused_equal_f32(4, 3, 8, 8, 1);
    fused_equal_f32(5, 4, 7, 7, 0);
    fused_equal_f32(3, 2, 4, 4, 1);
    fused_equal_f64(4, 3, 5, 5, 1);
    fused_equal_f64(6, 2, 2, 2, 0);
    fused_finite_differences();
    fused_errors();
    return check_report("test_bn2d_kernels");
}
