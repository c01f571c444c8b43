/* C unit tests of the fused / allocation-free kernels added for speed (bench/README.md):
 * BatchNorm + ReLU in one kernel (bit-identical to the two kernels in turn, and a finite-
 * difference check of its backward), the optimiser steps that zero the gradient in the same
 * pass (bit-identical to step then zero), and gathering rows into an existing tensor. */
#include <stdint.h>

#include "check.h"
#include "collapse.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static double uniform(void) { /* splitmix64 -> [0, 1) */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}
static double normal(void) { /* sum of uniforms: enough for test data */
    double s = 0;
    for (int i = 0; i < 12; i++) s += uniform();
    return s - 6.0;
}

/* ---- BatchNorm + ReLU ------------------------------------------------------------------ */

/* float and double: fused forward == bn forward then relu; fused backward == relu backward then
 * bn backward, bit for bit, over shapes that cover partial and several column blocks. */
#define BN_EQUAL_CASE(T, SUF)                                                                               \
    static void bn_relu_equal_##SUF(int64_t n, int64_t f, int affine) {                                     \
        T *x = malloc(sizeof(T) * n * f), *y1 = malloc(sizeof(T) * n * f), *y2 = malloc(sizeof(T) * n * f); \
        T *gy = malloc(sizeof(T) * n * f), *g1 = malloc(sizeof(T) * n * f), *g2 = malloc(sizeof(T) * n * f); \
        T *gm = malloc(sizeof(T) * n * f);                                                                  \
        T *gamma = malloc(sizeof(T) * f), *beta = malloc(sizeof(T) * f);                                    \
        T *rm1 = calloc(f, sizeof(T)), *rv1 = malloc(sizeof(T) * f), *rm2 = calloc(f, sizeof(T));           \
        T *rv2 = malloc(sizeof(T) * f), *sm1 = malloc(sizeof(T) * f), *si1 = malloc(sizeof(T) * f);         \
        T *sm2 = malloc(sizeof(T) * f), *si2 = malloc(sizeof(T) * f);                                       \
        T *gg1 = calloc(f, sizeof(T)), *gb1 = calloc(f, sizeof(T));                                         \
        T *gg2 = calloc(f, sizeof(T)), *gb2 = calloc(f, sizeof(T));                                         \
        for (int64_t i = 0; i < n * f; i++) {                                                               \
            x[i] = (T)(normal() * 2 + 0.3);                                                                 \
            gy[i] = (T)normal();                                                                            \
        }                                                                                                   \
        for (int64_t j = 0; j < f; j++) {                                                                   \
            gamma[j] = (T)(0.5 + uniform());                                                                \
            beta[j] = (T)(normal() * 0.5);                                                                  \
            rv1[j] = rv2[j] = 1;                                                                            \
        }                                                                                                   \
        const T *ga = affine ? gamma : NULL, *be = affine ? beta : NULL;                                     \
        CHECK_OK(collapse_batchnorm_forward_train_##SUF(n, f, x, y1, ga, be, rm1, rv1, sm1, si1, 0.1, 1e-5)); \
        CHECK_OK(collapse_relu_forward_##SUF(n * f, y1, y1));                                               \
        CHECK_OK(collapse_batchnorm_relu_forward_train_##SUF(n, f, x, y2, ga, be, rm2, rv2, sm2, si2, 0.1, 1e-5)); \
        CHECK(!memcmp(y1, y2, sizeof(T) * n * f));                                                          \
        CHECK(!memcmp(rm1, rm2, sizeof(T) * f) && !memcmp(rv1, rv2, sizeof(T) * f));                        \
        CHECK(!memcmp(sm1, sm2, sizeof(T) * f) && !memcmp(si1, si2, sizeof(T) * f));                        \
        CHECK_OK(collapse_relu_backward_##SUF(n * f, y1, gy, gm));                                          \
        CHECK_OK(collapse_batchnorm_backward_train_##SUF(n, f, x, gm, g1, ga, affine ? gg1 : NULL,          \
                                                         affine ? gb1 : NULL, sm1, si1));                   \
        CHECK_OK(collapse_batchnorm_relu_backward_train_##SUF(n, f, x, y2, gy, g2, ga, affine ? gg2 : NULL,  \
                                                              affine ? gb2 : NULL, sm2, si2));              \
        CHECK(!memcmp(g1, g2, sizeof(T) * n * f));                                                          \
        CHECK(!memcmp(gg1, gg2, sizeof(T) * f) && !memcmp(gb1, gb2, sizeof(T) * f));                        \
        /* in place: gx == gy */                                                                            \
        memcpy(g2, gy, sizeof(T) * n * f);                                                                  \
        CHECK_OK(collapse_batchnorm_relu_backward_train_##SUF(n, f, x, y2, g2, g2, ga, NULL, NULL, sm2, si2)); \
        CHECK(!memcmp(g1, g2, sizeof(T) * n * f));                                                          \
        free(x); free(y1); free(y2); free(gy); free(g1); free(g2); free(gm); free(gamma); free(beta);         \
        free(rm1); free(rv1); free(rm2); free(rv2); free(sm1); free(si1); free(sm2); free(si2);             \
        free(gg1); free(gb1); free(gg2); free(gb2);                                                         \
    }
BN_EQUAL_CASE(float, f32)
BN_EQUAL_CASE(double, f64)

/* Finite differences of L = sum(w * relu(bn(x))) in float64 against the fused backward. */
static double bn_relu_loss(int64_t n, int64_t f, const double *x, const double *gamma, const double *beta,
                           const double *w) {
    double *y = malloc(sizeof(double) * n * f), *sm = malloc(sizeof(double) * f), *si = malloc(sizeof(double) * f);
    collapse_batchnorm_relu_forward_train_f64(n, f, x, y, gamma, beta, NULL, NULL, sm, si, 0.1, 1e-5);
    double l = 0;
    for (int64_t i = 0; i < n * f; i++) l += w[i] * y[i];
    free(y);
    free(sm);
    free(si);
    return l;
}

static void bn_relu_finite_differences(void) {
    const int64_t n = 6, f = 3;
    double x[18], w[18], gamma[3] = {1.3, 0.7, 1.1}, beta[3] = {0.2, -0.1, 0.05};
    for (int i = 0; i < 18; i++) {
        x[i] = normal();
        w[i] = normal();
    }
    double y[18], sm[3], si[3], gx[18], gg[3] = {0}, gb[3] = {0};
    CHECK_OK(collapse_batchnorm_relu_forward_train_f64(n, f, x, y, gamma, beta, NULL, NULL, sm, si, 0.1, 1e-5));
    CHECK_OK(collapse_batchnorm_relu_backward_train_f64(n, f, x, y, w, gx, gamma, gg, gb, sm, si));
    const double h = 1e-6;
    for (int i = 0; i < 18; i++) {
        double keep = x[i];
        x[i] = keep + h;
        double lp = bn_relu_loss(n, f, x, gamma, beta, w);
        x[i] = keep - h;
        double lm = bn_relu_loss(n, f, x, gamma, beta, w);
        x[i] = keep;
        CHECK_CLOSE(gx[i], (lp - lm) / (2 * h), 1e-6);
    }
    for (int j = 0; j < 3; j++) {
        double keep = gamma[j];
        gamma[j] = keep + h;
        double lp = bn_relu_loss(n, f, x, gamma, beta, w);
        gamma[j] = keep - h;
        double lm = bn_relu_loss(n, f, x, gamma, beta, w);
        gamma[j] = keep;
        CHECK_CLOSE(gg[j], (lp - lm) / (2 * h), 1e-6);
        keep = beta[j];
        beta[j] = keep + h;
        lp = bn_relu_loss(n, f, x, gamma, beta, w);
        beta[j] = keep - h;
        lm = bn_relu_loss(n, f, x, gamma, beta, w);
        beta[j] = keep;
        CHECK_CLOSE(gb[j], (lp - lm) / (2 * h), 1e-6);
    }
}

static void bn_relu_errors(void) {
    float x[4] = {0}, y[4], sm[2], si[2];
    CHECK_FAILS(collapse_batchnorm_relu_forward_train_f32(1, 2, x, y, NULL, NULL, NULL, NULL, sm, si, 0.1, 1e-5),
                "at least 2 samples");
    CHECK_FAILS(collapse_batchnorm_relu_forward_train_f32(2, 2, NULL, y, NULL, NULL, NULL, NULL, sm, si, 0.1, 1e-5),
                "batchnorm_relu_forward_train: x is NULL");
    CHECK_FAILS(collapse_batchnorm_relu_backward_train_f32(2, 2, x, NULL, x, y, NULL, NULL, NULL, sm, si),
                "batchnorm_relu_backward_train: y is NULL");
}

/* ---- optimiser steps with the gradient zeroed in the same pass -------------------------- */

static void sgd_zero_grad_equal(int nesterov, double wd, double mom) {
    enum { N = 103 };
    float x1[N], x2[N], g1[N], g2[N], b1[N], b2[N];
    int r1 = 0, r2 = 0;
    for (int i = 0; i < N; i++) {
        x1[i] = x2[i] = (float)normal();
        b1[i] = b2[i] = 0;
    }
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < N; i++) g1[i] = g2[i] = (float)normal();
        CHECK_OK(collapse_sgd_step_f32(N, x1, g1, mom != 0 ? b1 : NULL, &r1, 0.1, mom, 0, nesterov, wd));
        CHECK_OK(collapse_sgd_step_zero_grad_f32(N, x2, g2, mom != 0 ? b2 : NULL, &r2, 0.1, mom, 0, nesterov, wd));
        CHECK(!memcmp(x1, x2, sizeof x1) && !memcmp(b1, b2, sizeof b1) && r1 == r2);
        int zero = 1;
        for (int i = 0; i < N; i++) zero &= g2[i] == 0;
        CHECK(zero);
    }
    double xd[3] = {1, 2, 3}, gd[3] = {0.5, -1, 2};
    CHECK_OK(collapse_sgd_step_zero_grad_f64(3, xd, gd, NULL, NULL, 0.5, 0, 0, 0, 0));
    CHECK(xd[0] == 0.75 && xd[1] == 2.5 && xd[2] == 2 && gd[0] == 0 && gd[1] == 0 && gd[2] == 0);
    CHECK_FAILS(collapse_sgd_step_zero_grad_f32(N, x2, g2, NULL, NULL, -1, 0, 0, 0, 0), "sgd_step: lr");
}

static void adam_zero_grad_equal(int decoupled, double wd) {
    enum { N = 77 };
    double x1[N], x2[N], g1[N], g2[N], m1[N] = {0}, m2[N] = {0}, v1[N] = {0}, v2[N] = {0};
    for (int i = 0; i < N; i++) x1[i] = x2[i] = normal();
    for (int step = 1; step <= 3; step++) {
        for (int i = 0; i < N; i++) g1[i] = g2[i] = normal();
        CHECK_OK(collapse_adam_step_f64(N, x1, g1, m1, v1, step, 1e-2, 0.9, 0.999, 1e-8, wd, decoupled));
        CHECK_OK(collapse_adam_step_zero_grad_f64(N, x2, g2, m2, v2, step, 1e-2, 0.9, 0.999, 1e-8, wd, decoupled));
        CHECK(!memcmp(x1, x2, sizeof x1) && !memcmp(m1, m2, sizeof m1) && !memcmp(v1, v2, sizeof v1));
        int zero = 1;
        for (int i = 0; i < N; i++) zero &= g2[i] == 0;
        CHECK(zero);
    }
    float xf[5] = {1, 2, 3, 4, 5}, gf[5] = {1, 1, 1, 1, 1}, mf[5] = {0}, vf[5] = {0};
    float xr[5] = {1, 2, 3, 4, 5}, gr[5] = {1, 1, 1, 1, 1}, mr[5] = {0}, vr[5] = {0};
    CHECK_OK(collapse_adam_step_f32(5, xr, gr, mr, vr, 1, 1e-3, 0.9, 0.999, 1e-8, wd, decoupled));
    CHECK_OK(collapse_adam_step_zero_grad_f32(5, xf, gf, mf, vf, 1, 1e-3, 0.9, 0.999, 1e-8, wd, decoupled));
    CHECK(!memcmp(xf, xr, sizeof xf) && gf[0] == 0 && gf[4] == 0);
    CHECK_FAILS(collapse_adam_step_zero_grad_f32(5, xf, gf, mf, vf, 0, 1e-3, 0.9, 0.999, 1e-8, wd, decoupled),
                "step must be >= 1");
}

/* ---- rows gathered into an existing tensor ------------------------------------------------- */

static void rows_into(void) {
    int64_t shape[2] = {5, 3}, ishape[1] = {4}, oshape[2] = {2, 3};
    collapse_tensor *t, *idx, *out, *ref, *bad;
    CHECK_OK(collapse_tensor_new(COLLAPSE_FLOAT32, 2, shape, &t));
    CHECK_OK(collapse_tensor_new(COLLAPSE_INT32, 1, ishape, &idx));
    CHECK_OK(collapse_tensor_new(COLLAPSE_FLOAT32, 2, oshape, &out));
    float *td = collapse_tensor_data(t);
    for (int i = 0; i < 15; i++) td[i] = (float)i;
    int32_t *ix = collapse_tensor_data(idx);
    ix[0] = 5; ix[1] = 2; ix[2] = 4; ix[3] = 1; /* 1-based */
    CHECK_OK(collapse_tensor_index_rows_into(t, idx, 1, 2, 1, out)); /* positions 2, 3 -> rows 2, 4 */
    const float *od = collapse_tensor_data(out);
    CHECK(od[0] == 3 && od[2] == 5 && od[3] == 9 && od[5] == 11);
    /* same as index_rows on the same positions */
    collapse_tensor *part;
    CHECK_OK(collapse_tensor_narrow(idx, 0, 1, 2, &part));
    CHECK_OK(collapse_tensor_index_rows(t, part, 1, &ref));
    CHECK(!memcmp(collapse_tensor_data(ref), od, 6 * sizeof(float)));
    ix[2] = 6;
    float keep = od[0];
    CHECK_FAILS(collapse_tensor_index_rows_into(t, idx, 1, 2, 1, out),
                "rows_into: index 6 at position 3 out of range 1..5");
    CHECK(od[0] == keep); /* nothing written */
    ix[2] = 4;
    CHECK_FAILS(collapse_tensor_index_rows_into(t, idx, 3, 2, 1, out),
                "positions 4..5 are outside the index of length 4");
    CHECK_OK(collapse_tensor_new(COLLAPSE_FLOAT64, 2, oshape, &bad));
    CHECK_FAILS(collapse_tensor_index_rows_into(t, idx, 0, 2, 1, bad), "out must be a float32 tensor [2 x 3]");
    CHECK_FAILS(collapse_tensor_index_rows_into(t, idx, 0, 3, 1, out), "got a float32 tensor [2 x 3]");
    CHECK_FAILS(collapse_tensor_index_rows_into(t, idx, 0, 2, 1, t), "out must be a float32 tensor [2 x 3]");
    collapse_tensor_release(bad);
    collapse_tensor_release(ref);
    collapse_tensor_release(part);
    collapse_tensor_release(out);
    collapse_tensor_release(idx);
    collapse_tensor_release(t);
}

int main(void) {
    bn_relu_equal_f32(7, 5, 1);
    bn_relu_equal_f32(128, 300, 1); /* two column blocks (256 + 44) */
    bn_relu_equal_f32(9, 513, 0);
    bn_relu_equal_f64(33, 260, 1);
    bn_relu_equal_f64(2, 3, 0);
    bn_relu_finite_differences();
    bn_relu_errors();
    sgd_zero_grad_equal(0, 0, 0);
    sgd_zero_grad_equal(0, 5e-4, 0.9);
    sgd_zero_grad_equal(1, 1e-2, 0.9);
    adam_zero_grad_equal(0, 5e-4);
    adam_zero_grad_equal(1, 1e-2);
    adam_zero_grad_equal(0, 0);
    rows_into();
    return check_report("test_fused");
}
