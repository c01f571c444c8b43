/* C unit tests of the layer kernels (csrc/nn): finite-difference gradients in float64,
 * float32 vs float64 agreement, argument errors, and a PyTorch 1.13 reference network
 * (spec/fixtures/torch/nn_mlp.txt, made by spec/fixtures/make_torch_fixtures.py). */
#define GRADCHECK_SEED 2024u
#include "check.h"
#include "gradcheck.h"
#include "fixture.h"
#include "collapse.h"

/* ---- helpers: tests/gradcheck.h (random stream, errors, finite differences) ---------------- */

static double worst_torch = 0;

/* ---- linear -------------------------------------------------------------------------------- */

typedef struct { int64_t n, in, out; double *x, *W, *b, *r, *y; } lin_ctx;
static double lin_obj(void *p) {
    lin_ctx *c = p;
    CHECK_OK(collapse_linear_forward_f64(c->n, c->in, c->out, c->x, c->y, c->W, c->b));
    return dot(c->r, c->y, c->n * c->out);
}

static void test_linear(int with_bias) {
    lin_ctx c = {6, 5, 3, NULL, NULL, NULL, NULL, NULL};
    int64_t n = c.n, in = c.in, out = c.out;
    c.x = randn(n * in, 1);
    c.W = randn(out * in, 1);
    c.b = with_bias ? randn(out, 1) : NULL;
    c.r = randn(n * out, 1);
    c.y = zeros(n * out);
    /* forward against a triple loop */
    CHECK_OK(collapse_linear_forward_f64(n, in, out, c.x, c.y, c.W, c.b));
    double e = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < out; j++) {
            double s = c.b ? c.b[j] : 0;
            for (int64_t k = 0; k < in; k++) s += c.x[i * in + k] * c.W[j * in + k];
            if (fabs(s - c.y[i * out + j]) > e) e = fabs(s - c.y[i * out + j]);
        }
    CHECK(e < 1e-14);
    /* backward: gx overwritten (start from garbage), gW / gb accumulated */
    double *gx = randn(n * in, 1), *gW = zeros(out * in), *gb = with_bias ? zeros(out) : NULL;
    CHECK_OK(collapse_linear_backward_f64(n, in, out, c.x, c.r, gx, c.W, gW, gb));
    fd_check("linear d/dx", lin_obj, &c, c.x, n * in, gx);
    fd_check("linear d/dW", lin_obj, &c, c.W, out * in, gW);
    if (with_bias) fd_check("linear d/db", lin_obj, &c, c.b, out, gb);
    double *gW1 = copy_of(gW, out * in), *gb1 = with_bias ? copy_of(gb, out) : NULL;
    CHECK_OK(collapse_linear_backward_f64(n, in, out, c.x, c.r, NULL, c.W, gW, gb)); /* gx NULL, accumulates */
    for (int64_t k = 0; k < out * in; k++) gW1[k] *= 2;
    CHECK(rel_err(gW, gW1, out * in) < 1e-15);
    if (with_bias) {
        for (int64_t k = 0; k < out; k++) gb1[k] *= 2;
        CHECK(rel_err(gb, gb1, out) < 1e-15);
    }
    /* float32 agrees with float64 */
    float *x32 = to_f32(c.x, n * in), *W32 = to_f32(c.W, out * in), *b32 = to_f32(c.b, out),
          *r32 = to_f32(c.r, n * out), *y32 = calloc((size_t)(n * out), sizeof(float)),
          *gx32 = calloc((size_t)(n * in), sizeof(float)), *gW32 = calloc((size_t)(out * in), sizeof(float)),
          *gb32 = calloc((size_t)out, sizeof(float));
    CHECK_OK(collapse_linear_forward_f64(n, in, out, c.x, c.y, c.W, c.b));
    CHECK_OK(collapse_linear_forward_f32(n, in, out, x32, y32, W32, b32));
    check_f32("linear y", y32, c.y, n * out, 1e-5);
    CHECK_OK(collapse_linear_backward_f32(n, in, out, x32, r32, gx32, W32, gW32, with_bias ? gb32 : NULL));
    check_f32("linear gx", gx32, gx, n * in, 1e-5);
    for (int64_t k = 0; k < out * in; k++) gW1[k] /= 2;
    check_f32("linear gW", gW32, gW1, out * in, 1e-5);
    if (with_bias) {
        for (int64_t k = 0; k < out; k++) gb1[k] /= 2;
        check_f32("linear gb", gb32, gb1, out, 1e-5);
    }
    free(x32); free(W32); free(b32); free(r32); free(y32); free(gx32); free(gW32); free(gb32);
    free(gW1); free(gb1); free(gx); free(gW); free(gb);
    free(c.x); free(c.W); free(c.b); free(c.r); free(c.y);
}

/* column sums of a tall matrix exercise the blocked gb reduction (out > block of 256) */
static void test_linear_wide_bias(void) {
    int64_t n = 3, in = 2, out = 300;
    double *x = randn(n * in, 1), *W = randn(out * in, 1), *gy = randn(n * out, 1), *gW = zeros(out * in),
           *gb = randn(out, 1), *gb0 = copy_of(gb, out);
    CHECK_OK(collapse_linear_backward_f64(n, in, out, x, gy, NULL, W, gW, gb));
    double e = 0;
    for (int64_t j = 0; j < out; j++) {
        double s = gb0[j];
        for (int64_t i = 0; i < n; i++) s += gy[i * out + j];
        if (fabs(s - gb[j]) > e) e = fabs(s - gb[j]);
    }
    CHECK(e < 1e-14);
    free(x); free(W); free(gy); free(gW); free(gb); free(gb0);
}

/* ---- batchnorm ----------------------------------------------------------------------------- */

typedef struct { int64_t n, f; double *x, *gamma, *beta, *rm, *rv, *r, *y, *sm, *si; int eval; } bn_ctx;
static double bn_obj(void *p) {
    bn_ctx *c = p;
    if (c->eval)
        CHECK_OK(collapse_batchnorm_forward_eval_f64(c->n, c->f, c->x, c->y, c->gamma, c->beta, c->rm, c->rv, 1e-5));
    else
        CHECK_OK(collapse_batchnorm_forward_train_f64(c->n, c->f, c->x, c->y, c->gamma, c->beta, NULL, NULL, c->sm,
                                                      c->si, 0.1, 1e-5));
    return dot(c->r, c->y, c->n * c->f);
}

/* x = scale * (randn + 3): the mean offset must be removed by the statistics; a small scale
 * (spread comparable to eps) makes d/dx visible for n = 2, where xhat = +-1 otherwise. */
static void test_batchnorm_train(int64_t n, int64_t f, int affine, double scale) {
    bn_ctx c = {n, f, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0};
    c.x = randn(n * f, scale);
    for (int64_t i = 0; i < n * f; i++) c.x[i] += 3 * scale;
    fd_h = 1e-5 * scale;
    if (affine) {
        c.gamma = randn(f, 0.3);
        for (int64_t j = 0; j < f; j++) c.gamma[j] += 1;
        c.beta = randn(f, 0.5);
    }
    c.r = randn(n * f, 1);
    c.y = zeros(n * f);
    c.sm = zeros(f);
    c.si = zeros(f);
    double *rm = randn(f, 0.1), *rv = randn(f, 0.1);
    for (int64_t j = 0; j < f; j++) rv[j] = 1 + fabs(rv[j]);
    double *rm0 = copy_of(rm, f), *rv0 = copy_of(rv, f);
    CHECK_OK(collapse_batchnorm_forward_train_f64(n, f, c.x, c.y, c.gamma, c.beta, rm, rv, c.sm, c.si, 0.1, 1e-5));
    /* statistics and output against the textbook formulas */
    double e_stat = 0, e_y = 0;
    for (int64_t j = 0; j < f; j++) {
        double mu = 0, ss = 0;
        for (int64_t i = 0; i < n; i++) mu += c.x[i * f + j];
        mu /= n;
        for (int64_t i = 0; i < n; i++) ss += (c.x[i * f + j] - mu) * (c.x[i * f + j] - mu);
        double var = ss / n, invstd = 1 / sqrt(var + 1e-5);
        e_stat = fmax(e_stat, fabs(c.sm[j] - mu));
        e_stat = fmax(e_stat, fabs(c.si[j] - invstd) / invstd);
        e_stat = fmax(e_stat, fabs(rm[j] - (0.9 * rm0[j] + 0.1 * mu)));
        e_stat = fmax(e_stat, fabs(rv[j] - (0.9 * rv0[j] + 0.1 * ss / (n - 1))));
        for (int64_t i = 0; i < n; i++) {
            double y = (c.x[i * f + j] - mu) * invstd * (affine ? c.gamma[j] : 1) + (affine ? c.beta[j] : 0);
            e_y = fmax(e_y, fabs(y - c.y[i * f + j]));
        }
    }
    CHECK(e_stat < 1e-13);
    CHECK(e_y < 1e-13);
    /* gradients: the batch statistics depend on x */
    double *gx = randn(n * f, 1), *gg = zeros(f), *gbt = zeros(f);
    CHECK_OK(collapse_batchnorm_backward_train_f64(n, f, c.x, c.r, gx, c.gamma, affine ? gg : NULL,
                                                   affine ? gbt : NULL, c.sm, c.si));
    fd_check("batchnorm train d/dx", bn_obj, &c, c.x, n * f, gx);
    fd_h = 1e-5;
    if (affine) {
        fd_check("batchnorm train d/dgamma", bn_obj, &c, c.gamma, f, gg);
        fd_check("batchnorm train d/dbeta", bn_obj, &c, c.beta, f, gbt);
    }
    /* gx may be computed in place over gy */
    double *g2 = copy_of(c.r, n * f);
    CHECK_OK(collapse_batchnorm_forward_train_f64(n, f, c.x, c.y, c.gamma, c.beta, NULL, NULL, c.sm, c.si, 0.1, 1e-5));
    CHECK_OK(collapse_batchnorm_backward_train_f64(n, f, c.x, g2, g2, c.gamma, NULL, NULL, c.sm, c.si));
    CHECK(rel_err(g2, gx, n * f) < 1e-15);
    /* float32 */
    float *x32 = to_f32(c.x, n * f), *ga32 = to_f32(c.gamma, f), *be32 = to_f32(c.beta, f), *r32 = to_f32(c.r, n * f),
          *rm32 = to_f32(rm0, f), *rv32 = to_f32(rv0, f), *y32 = calloc((size_t)(n * f), sizeof(float)),
          *sm32 = calloc((size_t)f, sizeof(float)), *si32 = calloc((size_t)f, sizeof(float)),
          *gx32 = calloc((size_t)(n * f), sizeof(float)), *gg32 = calloc((size_t)f, sizeof(float)),
          *gb32 = calloc((size_t)f, sizeof(float));
    CHECK_OK(collapse_batchnorm_forward_train_f32(n, f, x32, y32, ga32, be32, rm32, rv32, sm32, si32, 0.1, 1e-5));
    check_f32("batchnorm train y", y32, c.y, n * f, 1e-5);
    check_f32("batchnorm running_mean", rm32, rm, f, 1e-5);
    check_f32("batchnorm running_var", rv32, rv, f, 1e-5);
    CHECK_OK(collapse_batchnorm_backward_train_f32(n, f, x32, r32, gx32, ga32, gg32, gb32, sm32, si32));
    check_f32("batchnorm train gx", gx32, gx, n * f, 1e-5);
    if (affine) {
        check_f32("batchnorm train ggamma", gg32, gg, f, 1e-5);
        check_f32("batchnorm train gbeta", gb32, gbt, f, 1e-5);
    }
    free(x32); free(ga32); free(be32); free(r32); free(rm32); free(rv32); free(y32); free(sm32); free(si32);
    free(gx32); free(gg32); free(gb32);
    free(g2); free(gx); free(gg); free(gbt); free(rm); free(rv); free(rm0); free(rv0);
    free(c.x); free(c.gamma); free(c.beta); free(c.r); free(c.y); free(c.sm); free(c.si);
}

static void test_batchnorm_eval(int64_t n, int64_t f, int affine) {
    bn_ctx c = {n, f, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1};
    c.x = randn(n * f, 1);
    if (affine) {
        c.gamma = randn(f, 0.3);
        c.beta = randn(f, 0.5);
    }
    c.rm = randn(f, 0.5);
    c.rv = randn(f, 0.5);
    for (int64_t j = 0; j < f; j++) c.rv[j] = 0.5 + fabs(c.rv[j]);
    c.r = randn(n * f, 1);
    c.y = zeros(n * f);
    double *gx = zeros(n * f), *gg = zeros(f), *gbt = zeros(f);
    CHECK_OK(collapse_batchnorm_backward_eval_f64(n, f, c.x, c.r, gx, c.gamma, gg, gbt, c.rm, c.rv, 1e-5));
    fd_check("batchnorm eval d/dx", bn_obj, &c, c.x, n * f, gx);
    /* ggamma / gbeta are the same formulas whether or not gamma is used in the forward */
    if (affine) {
        fd_check("batchnorm eval d/dgamma", bn_obj, &c, c.gamma, f, gg);
        fd_check("batchnorm eval d/dbeta", bn_obj, &c, c.beta, f, gbt);
    }
    /* eval needs no x / running_mean when ggamma is not wanted */
    double *gx2 = zeros(n * f);
    CHECK_OK(collapse_batchnorm_backward_eval_f64(n, f, NULL, c.r, gx2, c.gamma, NULL, NULL, NULL, c.rv, 1e-5));
    CHECK(rel_err(gx2, gx, n * f) == 0);
    /* in place */
    double *y2 = copy_of(c.x, n * f);
    CHECK_OK(collapse_batchnorm_forward_eval_f64(n, f, c.x, c.y, c.gamma, c.beta, c.rm, c.rv, 1e-5));
    CHECK_OK(collapse_batchnorm_forward_eval_f64(n, f, y2, y2, c.gamma, c.beta, c.rm, c.rv, 1e-5));
    CHECK(rel_err(y2, c.y, n * f) == 0);
    float *x32 = to_f32(c.x, n * f), *ga32 = to_f32(c.gamma, f), *be32 = to_f32(c.beta, f), *rm32 = to_f32(c.rm, f),
          *rv32 = to_f32(c.rv, f), *y32 = calloc((size_t)(n * f), sizeof(float));
    CHECK_OK(collapse_batchnorm_forward_eval_f32(n, f, x32, y32, ga32, be32, rm32, rv32, 1e-5));
    check_f32("batchnorm eval y", y32, c.y, n * f, 1e-5);
    free(x32); free(ga32); free(be32); free(rm32); free(rv32); free(y32);
    free(y2); free(gx2); free(gx); free(gg); free(gbt);
    free(c.x); free(c.gamma); free(c.beta); free(c.rm); free(c.rv); free(c.r); free(c.y);
}

/* ---- activations --------------------------------------------------------------------------- */

typedef struct { int64_t n; double *x, *y, *r; int tanh; } act_ctx;
static double act_obj(void *p) {
    act_ctx *c = p;
    if (c->tanh) CHECK_OK(collapse_tanh_forward_f64(c->n, c->x, c->y));
    else CHECK_OK(collapse_relu_forward_f64(c->n, c->x, c->y));
    return dot(c->r, c->y, c->n);
}

static void test_activation(int is_tanh) {
    int64_t n = 40;
    act_ctx c = {n, randn(n, 1), zeros(n), randn(n, 1), is_tanh};
    for (int64_t i = 0; i < n; i++) /* keep relu away from its kink */
        if (fabs(c.x[i]) < 0.05) c.x[i] = c.x[i] < 0 ? -0.05 : 0.05;
    act_obj(&c);
    double *gx = zeros(n);
    if (is_tanh) CHECK_OK(collapse_tanh_backward_f64(n, c.y, c.r, gx));
    else CHECK_OK(collapse_relu_backward_f64(n, c.y, c.r, gx));
    fd_check(is_tanh ? "tanh d/dx" : "relu d/dx", act_obj, &c, c.x, n, gx);
    act_obj(&c); /* y at the unperturbed x again */
    /* in place: y over x, gx over gy */
    double *a = copy_of(c.x, n), *g = copy_of(c.r, n);
    if (is_tanh) {
        CHECK_OK(collapse_tanh_forward_f64(n, a, a));
        CHECK_OK(collapse_tanh_backward_f64(n, a, g, g));
    } else {
        CHECK_OK(collapse_relu_forward_f64(n, a, a));
        CHECK_OK(collapse_relu_backward_f64(n, a, g, g));
    }
    CHECK(rel_err(a, c.y, n) == 0);
    CHECK(rel_err(g, gx, n) == 0);
    float *x32 = to_f32(c.x, n), *r32 = to_f32(c.r, n), *y32 = calloc((size_t)n, sizeof(float)),
          *g32 = calloc((size_t)n, sizeof(float));
    if (is_tanh) {
        CHECK_OK(collapse_tanh_forward_f32(n, x32, y32));
        CHECK_OK(collapse_tanh_backward_f32(n, y32, r32, g32));
    } else {
        CHECK_OK(collapse_relu_forward_f32(n, x32, y32));
        CHECK_OK(collapse_relu_backward_f32(n, y32, r32, g32));
    }
    check_f32(is_tanh ? "tanh y" : "relu y", y32, c.y, n, 1e-6);
    check_f32(is_tanh ? "tanh gx" : "relu gx", g32, gx, n, 1e-6);
    free(x32); free(r32); free(y32); free(g32);
    free(a); free(g); free(gx); free(c.x); free(c.y); free(c.r);
}

static void test_relu_nan(void) {
    double x[4] = {NAN, -1, 0, 2}, y[4], gy[4] = {1, 1, 1, 1}, gx[4];
    CHECK_OK(collapse_relu_forward_f64(4, x, y));
    CHECK(isnan(y[0]) && y[1] == 0 && y[2] == 0 && y[3] == 2);
    CHECK_OK(collapse_relu_backward_f64(4, y, gy, gx));
    CHECK(gx[0] == 1 && gx[1] == 0 && gx[2] == 0 && gx[3] == 1); /* as torch threshold_backward */
}

/* ---- cross-entropy ------------------------------------------------------------------------- */

typedef struct { int64_t n, C; double *z; int32_t *labels; } ce_ctx;
static double ce_obj(void *p) {
    ce_ctx *c = p;
    double loss = NAN;
    CHECK_OK(collapse_cross_entropy_forward_f64(c->n, c->C, c->z, c->labels, &loss, NULL));
    return loss;
}

static void test_cross_entropy(void) {
    int64_t n = 7, C = 5;
    ce_ctx c = {n, C, randn(n * C, 2), malloc((size_t)n * sizeof(int32_t))};
    for (int64_t i = 0; i < n; i++) c.labels[i] = (int32_t)(1 + i % C);
    c.z[3] += 500; /* large logits must not overflow */
    double loss = 0, loss2 = 0, *grad = zeros(n * C);
    CHECK_OK(collapse_cross_entropy_forward_f64(n, C, c.z, c.labels, &loss, grad));
    CHECK_OK(collapse_cross_entropy_forward_f64(n, C, c.z, c.labels, &loss2, NULL));
    CHECK(loss == loss2);
    /* closed form with long double */
    long double ref = 0;
    for (int64_t i = 0; i < n; i++) {
        long double mx = c.z[i * C], s = 0;
        for (int64_t j = 0; j < C; j++) mx = c.z[i * C + j] > mx ? c.z[i * C + j] : mx;
        for (int64_t j = 0; j < C; j++) s += expl(c.z[i * C + j] - mx);
        ref += mx + logl(s) - c.z[i * C + c.labels[i] - 1];
    }
    ref /= n;
    CHECK_CLOSE(loss, (double)ref, 1e-14);
    CHECK(isfinite(loss));
    fd_check("cross_entropy d/dlogits", ce_obj, &c, c.z, n * C, grad);
    /* rows of the gradient sum to 0 */
    double rs = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < C; j++) s += grad[i * C + j];
        rs = fmax(rs, fabs(s));
    }
    CHECK(rs < 1e-16 * 100);
    /* grad in place over the logits */
    double *z2 = copy_of(c.z, n * C), loss3 = 0;
    CHECK_OK(collapse_cross_entropy_forward_f64(n, C, z2, c.labels, &loss3, z2));
    CHECK(loss3 == loss);
    CHECK(rel_err(z2, grad, n * C) == 0);
    float *z32 = to_f32(c.z, n * C), *g32 = calloc((size_t)(n * C), sizeof(float));
    double loss32 = 0;
    CHECK_OK(collapse_cross_entropy_forward_f32(n, C, z32, c.labels, &loss32, g32));
    CHECK_CLOSE(loss32, loss, 1e-5);
    check_f32("cross_entropy grad", g32, grad, n * C, 1e-5);
    free(z32); free(g32); free(z2); free(grad); free(c.z); free(c.labels);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_errors(void) {
    double x[20] = {0}, y[20] = {0}, W[20] = {0}, s1[10], s2[10], loss = 0;
    float xf[20] = {0}, yf[20] = {0};
    CHECK_FAILS(collapse_linear_forward_f64(0, 2, 2, x, y, W, NULL), "linear_forward: n must be positive, got 0");
    CHECK_FAILS(collapse_linear_forward_f64(2, -1, 2, x, y, W, NULL), "linear_forward: in must be positive, got -1");
    CHECK_FAILS(collapse_linear_forward_f64(2, 3, 4, NULL, y, W, NULL),
                "linear_forward: x is NULL, expected a [2 x 3] array");
    CHECK_FAILS(collapse_linear_forward_f32(2, 3, 4, xf, yf, NULL, NULL),
                "linear_forward: W is NULL, expected a [4 x 3] array");
    CHECK_FAILS(collapse_linear_forward_f64(2, 3, (int64_t)1 << 33, x, y, W, NULL),
                "linear_forward: out = 8589934592 exceeds the BLAS index limit");
    /* grad_weight NULL = a frozen weight (requires_grad = false): valid, that gradient is skipped */
    {
        double gxa[6], gxb[6], gW[12] = {0}, gba[4] = {0}, gbb[4] = {0}, xs[6], gys[8], Ws[12];
        for (int i = 0; i < 6; i++) xs[i] = 0.5 * i - 1;
        for (int i = 0; i < 8; i++) gys[i] = 0.25 * i - 0.7;
        for (int i = 0; i < 12; i++) Ws[i] = 0.1 * i - 0.4;
        CHECK_OK(collapse_linear_backward_f64(2, 3, 4, xs, gys, gxa, Ws, NULL, gba));
        CHECK_OK(collapse_linear_backward_f64(2, 3, 4, xs, gys, gxb, Ws, gW, gbb));
        for (int i = 0; i < 6; i++) CHECK(gxa[i] == gxb[i]);
        for (int i = 0; i < 4; i++) CHECK(gba[i] == gbb[i]);
    }
    CHECK_FAILS(collapse_linear_backward_f64(2, 3, 4, x, NULL, NULL, W, W, NULL), "linear_backward: grad_output is NULL");

    /* a batch of one cannot be normalised in train mode; nothing is written */
    s1[0] = 42;
    y[0] = 7;
    CHECK_FAILS(collapse_batchnorm_forward_train_f64(1, 3, x, y, NULL, NULL, NULL, NULL, s1, s2, 0.1, 1e-5),
                "batchnorm: training needs a batch of at least 2 samples, got 1");
    CHECK(collapse_last_status() == COLLAPSE_ERR_ARG);
    CHECK(s1[0] == 42 && y[0] == 7);
    CHECK_FAILS(collapse_batchnorm_forward_train_f32(1, 3, xf, yf, NULL, NULL, NULL, NULL, yf, yf, 0.1, 1e-5),
                "batchnorm: training needs a batch of at least 2 samples, got 1");
    CHECK_FAILS(collapse_batchnorm_forward_train_f64(2, 3, x, y, NULL, NULL, NULL, NULL, NULL, s2, 0.1, 1e-5),
                "batchnorm_forward_train: save_mean is NULL, expected a [3] array");
    CHECK_FAILS(collapse_batchnorm_forward_train_f64(2, 3, x, y, NULL, NULL, NULL, NULL, s1, s2, 1.5, 1e-5),
                "batchnorm_forward_train: momentum must be in [0, 1], got 1.5");
    CHECK_FAILS(collapse_batchnorm_forward_train_f64(2, 3, x, y, NULL, NULL, NULL, NULL, s1, s2, 0.1, -1),
                "batchnorm_forward_train: eps must be a finite number >= 0, got -1");
    CHECK_FAILS(collapse_batchnorm_forward_train_f64(2, 0, x, y, NULL, NULL, NULL, NULL, s1, s2, 0.1, 1e-5),
                "batchnorm_forward_train: features must be positive, got 0");
    CHECK_FAILS(collapse_batchnorm_forward_eval_f64(2, 3, x, y, NULL, NULL, s1, NULL, 1e-5),
                "batchnorm_forward_eval: running_var is NULL, expected a [3] array");
    CHECK_FAILS(collapse_batchnorm_backward_train_f64(2, 3, x, y, y, NULL, NULL, NULL, s1, NULL),
                "batchnorm_backward_train: save_invstd is NULL");
    CHECK_FAILS(collapse_batchnorm_backward_eval_f64(2, 3, NULL, y, y, NULL, s1, NULL, s1, s2, 1e-5),
                "batchnorm_backward_eval: x is NULL");
    /* an eval-mode batch of one is fine */
    s1[0] = s1[1] = s1[2] = 0;
    s2[0] = s2[1] = s2[2] = 1;
    CHECK_OK(collapse_batchnorm_forward_eval_f64(1, 3, x, y, NULL, NULL, s1, s2, 1e-5));

    CHECK_FAILS(collapse_relu_forward_f64(-1, x, y), "relu_forward: n must be positive, got -1");
    CHECK_FAILS(collapse_relu_backward_f64(3, y, NULL, x), "relu_backward: grad_output is NULL, expected a [3] array");
    CHECK_FAILS(collapse_tanh_forward_f32(3, xf, NULL), "tanh_forward: y is NULL");
    CHECK_FAILS(collapse_tanh_backward_f64(3, y, x, NULL), "tanh_backward: grad_input is NULL");

    /* labels: the first bad one is reported, 1-based index, nothing written */
    double z[8 * 10];
    for (int i = 0; i < 80; i++) z[i] = i * 0.01;
    int32_t lab[8] = {1, 2, 3, 4, 5, 10, 11, 0};
    double g[80];
    g[0] = 123;
    loss = 5;
    CHECK_FAILS(collapse_cross_entropy_forward_f64(8, 10, z, lab, &loss, g),
                "cross_entropy: label 11 at position 6 is outside 1..10");
    CHECK(collapse_last_status() == COLLAPSE_ERR_RANGE);
    CHECK(!strcmp(collapse_last_error(), "cross_entropy: label 11 at position 6 is outside 1..10"));
    CHECK(g[0] == 123 && loss == 5);
    lab[6] = 3;
    CHECK_FAILS(collapse_cross_entropy_forward_f64(8, 10, z, lab, &loss, g),
                "cross_entropy: label 0 at position 7 is outside 1..10");
    lab[7] = 1;
    CHECK_OK(collapse_cross_entropy_forward_f64(8, 10, z, lab, &loss, g));
    CHECK_FAILS(collapse_cross_entropy_forward_f64(8, 10, z, lab, NULL, g), "cross_entropy_forward: loss_mean is NULL");
    CHECK_FAILS(collapse_cross_entropy_forward_f64(8, 10, z, NULL, &loss, g),
                "cross_entropy_forward: labels is NULL, expected a [8] array");
    CHECK_FAILS(collapse_cross_entropy_forward_f64(8, 0, z, lab, &loss, g),
                "cross_entropy_forward: classes must be positive, got 0");
}

/* ---- PyTorch reference network ------------------------------------------------------------- */

/* fixture_load, fx_get, fixture_free: tests/fixture.h */

/* max |got - ref| / max(1, |ref|) over the array, checked against tol */
static double vs_torch(const fixture *fx, const char *name, const double *got, int count, double tol,
                       double *worst) {
    const double *ref = fx_get(fx, name, count);
    if (!ref) return INFINITY;
    double e = 0;
    for (int i = 0; i < count; i++) {
        double d = fabs(got[i] - ref[i]) / fmax(1, fabs(ref[i]));
        if (!(d <= e)) e = d;
    }
    if (!(e <= tol)) fprintf(stderr, "vs torch: %s error %.3g (tol %g)\n", name, e, tol);
    CHECK(e <= tol);
    if (e > *worst) *worst = e;
    return e;
}

/* Runs the reference network with the library kernels in float64 (f64 = 1) or float32 (f64 = 0)
 * and compares with the fixture: train forward/backward, running stats, eval forward/backward. */
static void test_torch_network(const fixture *fx, int f64) {
    const double *sz = fx_get(fx, "sizes", 4);
    if (!sz) return;
    const int n = (int)sz[0], in = (int)sz[1], H = (int)sz[2], C = (int)sz[3];
    const double eps = fx_get(fx, "bn_eps", 1)[0], mom = fx_get(fx, "bn_momentum", 1)[0];
    const double tol = f64 ? 1e-10 : 2e-5;
    double worst = 0;
    int32_t labels[64];
    const double *lab = fx_get(fx, "labels", n);
    for (int i = 0; i < n; i++) labels[i] = (int32_t)lab[i];
    /* parameters and buffers (copies: the running stats are updated in place) */
    double *x = copy_of(fx_get(fx, "x", n * in), n * in), *W1 = copy_of(fx_get(fx, "W1", H * in), H * in),
           *b1 = copy_of(fx_get(fx, "b1", H), H), *ga = copy_of(fx_get(fx, "gamma", H), H),
           *be = copy_of(fx_get(fx, "beta", H), H), *rm = copy_of(fx_get(fx, "running_mean0", H), H),
           *rv = copy_of(fx_get(fx, "running_var0", H), H), *W2 = copy_of(fx_get(fx, "W2", C * H), C * H),
           *b2 = copy_of(fx_get(fx, "b2", C), C);
    /* activations and gradients */
    double *h1 = zeros(n * H), *h2 = zeros(n * H), *h3 = zeros(n * H), *lg = zeros(n * C), *glg = zeros(n * C),
           *gh3 = zeros(n * H), *gh1 = zeros(n * H), *gx = zeros(n * in), *gW1 = zeros(H * in), *gb1 = zeros(H),
           *gga = zeros(H), *gbe = zeros(H), *gW2 = zeros(C * H), *gb2 = zeros(C), *sm = zeros(H), *si = zeros(H);
    float *x32 = to_f32(x, n * in), *W132 = to_f32(W1, H * in), *b132 = to_f32(b1, H), *ga32 = to_f32(ga, H),
          *be32 = to_f32(be, H), *rm32 = to_f32(rm, H), *rv32 = to_f32(rv, H), *W232 = to_f32(W2, C * H),
          *b232 = to_f32(b2, C);
    float *h1f = fzeros(n * H), *h2f = fzeros(n * H), *h3f = fzeros(n * H), *lgf = fzeros(n * C),
          *glgf = fzeros(n * C), *gh3f = fzeros(n * H), *gh1f = fzeros(n * H), *gxf = fzeros(n * in),
          *gW1f = fzeros(H * in), *gb1f = fzeros(H), *gaf = fzeros(H), *gbf = fzeros(H), *gW2f = fzeros(C * H),
          *gb2f = fzeros(C), *smf = fzeros(H), *sif = fzeros(H);
    for (int mode = 0; mode < 2; mode++) { /* 0: train, 1: eval (after the train step's running stats) */
        const char *p = mode ? "eval." : "train.";
        char name[64];
        double loss = 0;
#define NAME(s) (snprintf(name, sizeof name, "%s%s", p, s), name)
        if (f64) {
            memset(gW1, 0, sizeof(double) * H * in); memset(gb1, 0, sizeof(double) * H);
            memset(gga, 0, sizeof(double) * H); memset(gbe, 0, sizeof(double) * H);
            memset(gW2, 0, sizeof(double) * C * H); memset(gb2, 0, sizeof(double) * C);
            CHECK_OK(collapse_linear_forward_f64(n, in, H, x, h1, W1, b1));
            if (mode == 0)
                CHECK_OK(collapse_batchnorm_forward_train_f64(n, H, h1, h2, ga, be, rm, rv, sm, si, mom, eps));
            else
                CHECK_OK(collapse_batchnorm_forward_eval_f64(n, H, h1, h2, ga, be, rm, rv, eps));
            CHECK_OK(collapse_relu_forward_f64(n * H, h2, h3));
            CHECK_OK(collapse_linear_forward_f64(n, H, C, h3, lg, W2, b2));
            CHECK_OK(collapse_cross_entropy_forward_f64(n, C, lg, labels, &loss, glg));
            CHECK_OK(collapse_linear_backward_f64(n, H, C, h3, glg, gh3, W2, gW2, gb2));
            CHECK_OK(collapse_relu_backward_f64(n * H, h3, gh3, gh3)); /* in place: now d/dh2 */
            if (mode == 0)
                CHECK_OK(collapse_batchnorm_backward_train_f64(n, H, h1, gh3, gh1, ga, gga, gbe, sm, si));
            else
                CHECK_OK(collapse_batchnorm_backward_eval_f64(n, H, h1, gh3, gh1, ga, gga, gbe, rm, rv, eps));
            CHECK_OK(collapse_linear_backward_f64(n, in, H, x, gh1, gx, W1, gW1, gb1));
            vs_torch(fx, NAME("h1"), h1, n * H, tol, &worst);
            vs_torch(fx, NAME("h2"), h2, n * H, tol, &worst);
            vs_torch(fx, NAME("h3"), h3, n * H, tol, &worst);
            vs_torch(fx, NAME("logits"), lg, n * C, tol, &worst);
            vs_torch(fx, NAME("loss"), &loss, 1, tol, &worst);
            vs_torch(fx, NAME("gx"), gx, n * in, tol, &worst);
            vs_torch(fx, NAME("gW1"), gW1, H * in, tol, &worst);
            vs_torch(fx, NAME("gb1"), gb1, H, tol, &worst);
            vs_torch(fx, NAME("ggamma"), gga, H, tol, &worst);
            vs_torch(fx, NAME("gbeta"), gbe, H, tol, &worst);
            vs_torch(fx, NAME("gW2"), gW2, C * H, tol, &worst);
            vs_torch(fx, NAME("gb2"), gb2, C, tol, &worst);
            if (mode == 0) {
                vs_torch(fx, "running_mean1", rm, H, tol, &worst);
                vs_torch(fx, "running_var1", rv, H, tol, &worst);
            }
        } else {
            memset(gW1f, 0, sizeof(float) * H * in); memset(gb1f, 0, sizeof(float) * H);
            memset(gaf, 0, sizeof(float) * H); memset(gbf, 0, sizeof(float) * H);
            memset(gW2f, 0, sizeof(float) * C * H); memset(gb2f, 0, sizeof(float) * C);
            CHECK_OK(collapse_linear_forward_f32(n, in, H, x32, h1f, W132, b132));
            if (mode == 0)
                CHECK_OK(collapse_batchnorm_forward_train_f32(n, H, h1f, h2f, ga32, be32, rm32, rv32, smf, sif, mom, eps));
            else
                CHECK_OK(collapse_batchnorm_forward_eval_f32(n, H, h1f, h2f, ga32, be32, rm32, rv32, eps));
            CHECK_OK(collapse_relu_forward_f32(n * H, h2f, h3f));
            CHECK_OK(collapse_linear_forward_f32(n, H, C, h3f, lgf, W232, b232));
            CHECK_OK(collapse_cross_entropy_forward_f32(n, C, lgf, labels, &loss, glgf));
            CHECK_OK(collapse_linear_backward_f32(n, H, C, h3f, glgf, gh3f, W232, gW2f, gb2f));
            CHECK_OK(collapse_relu_backward_f32(n * H, h3f, gh3f, gh3f));
            if (mode == 0)
                CHECK_OK(collapse_batchnorm_backward_train_f32(n, H, h1f, gh3f, gh1f, ga32, gaf, gbf, smf, sif));
            else
                CHECK_OK(collapse_batchnorm_backward_eval_f32(n, H, h1f, gh3f, gh1f, ga32, gaf, gbf, rm32, rv32, eps));
            CHECK_OK(collapse_linear_backward_f32(n, in, H, x32, gh1f, gxf, W132, gW1f, gb1f));
            struct { const char *s; float *v; int len; } outs[] = {
                {"logits", lgf, n * C}, {"gx", gxf, n * in}, {"gW1", gW1f, H * in}, {"gb1", gb1f, H},
                {"ggamma", gaf, H},     {"gbeta", gbf, H},   {"gW2", gW2f, C * H},  {"gb2", gb2f, C}};
            for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
                double *t = malloc(sizeof(double) * (size_t)outs[k].len);
                for (int i = 0; i < outs[k].len; i++) t[i] = outs[k].v[i];
                vs_torch(fx, NAME(outs[k].s), t, outs[k].len, tol, &worst);
                free(t);
            }
            vs_torch(fx, NAME("loss"), &loss, 1, tol, &worst);
        }
#undef NAME
    }
    printf("torch network (%s): max error %.3g\n", f64 ? "float64" : "float32", worst);
    if (f64 && worst > worst_torch) worst_torch = worst;
    free(h1f); free(h2f); free(h3f); free(lgf); free(glgf); free(gh3f); free(gh1f); free(gxf); free(gW1f);
    free(gb1f); free(gaf); free(gbf); free(gW2f); free(gb2f); free(smf); free(sif);
    free(x32); free(W132); free(b132); free(ga32); free(be32); free(rm32); free(rv32); free(W232); free(b232);
    free(x); free(W1); free(b1); free(ga); free(be); free(rm); free(rv); free(W2); free(b2);
    free(h1); free(h2); free(h3); free(lg); free(glg); free(gh3); free(gh1); free(gx); free(gW1); free(gb1);
    free(gga); free(gbe); free(gW2); free(gb2); free(sm); free(si);
}

int main(void) {
    test_linear(1);
    test_linear(0);
    test_linear_wide_bias();
    test_batchnorm_train(6, 5, 1, 1);
    test_batchnorm_train(6, 5, 0, 1);
    test_batchnorm_train(2, 3, 1, 0.005); /* the smallest trainable batch */
    test_batchnorm_train(4, 300, 1, 1);   /* more features than one stack block (256) */
    test_batchnorm_eval(5, 4, 1);
    test_batchnorm_eval(5, 4, 0);
    test_activation(0);
    test_activation(1);
    test_relu_nan();
    test_cross_entropy();
    test_errors();
    fixture fx;
    CHECK(fixture_load(&fx, "spec/fixtures/torch/nn_mlp.txt"));
    if (fx.n) {
        test_torch_network(&fx, 1);
        test_torch_network(&fx, 0);
    }
    fixture_free(&fx);
    printf("max relative error: finite differences %.3g, float32 vs float64 %.3g, float64 vs torch %.3g\n",
           worst_fd, worst_f32, worst_torch);
    return check_report("test_nn");
}
