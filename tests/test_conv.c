/* C unit tests of the convolutional layer kernels (csrc/nn/conv2d, batchnorm2d, pool2d):
 * direct-loop references, finite-difference gradients in float64, float32 vs float64, argument
 * errors, and PyTorch 1.13 references (spec/fixtures/torch_conv/, made by
 * spec/fixtures/make_conv_fixtures.py): single layers and a
 * Conv2d-BatchNorm2d-ReLU-MaxPool2d-AvgPool2d-Flatten-Linear network. */
#define GRADCHECK_SEED 4048u
#include "check.h"
#include "gradcheck.h"
#include "fixture.h"
#include "collapse.h"

/* ---- helpers: tests/gradcheck.h (random stream, errors, finite differences) ---------------- */

static int64_t numel4(const int64_t *s) { return s[0] * s[1] * s[2] * s[3]; }
static double worst_torch = 0, worst_direct = 0;

static void check_direct(const char *what, const double *got, const double *ref, int64_t len, double tol) {
    double e = rel_err(got, ref, len);
    if (e > worst_direct) worst_direct = e;
    if (getenv("COLLAPSE_TEST_VERBOSE") || !(e <= tol))
        fprintf(stderr, "vs direct loops: %s relative error %.3g (tol %g)\n", what, e, tol);
    CHECK(e <= tol);
}

/* ---- conv2d --------------------------------------------------------------------------------- */

typedef struct {
    int64_t xs[4], ws[4], ys[4], stride, pad, ncol;
    double *x, *W, *b, *r, *y, *col;
} conv_ctx;

static double conv_obj(void *p) {
    conv_ctx *c = p;
    CHECK_OK(collapse_conv2d_forward_f64(c->xs, c->ws, c->x, c->y, c->W, c->b, c->col, c->stride, c->pad));
    return dot(c->r, c->y, numel4(c->ys));
}

/* y[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] x[n, c, oh s - p + i, ow s - p + j] */
static void conv_direct(const conv_ctx *c, double *y) {
    const int64_t N = c->xs[0], C = c->xs[1], H = c->xs[2], W = c->xs[3], O = c->ws[0], KH = c->ws[2],
                  KW = c->ws[3], Ho = c->ys[2], Wo = c->ys[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    double s = c->b ? c->b[o] : 0;
                    for (int64_t ch = 0; ch < C; ch++)
                        for (int64_t i = 0; i < KH; i++)
                            for (int64_t j = 0; j < KW; j++) {
                                int64_t ih = oh * c->stride - c->pad + i, iw = ow * c->stride - c->pad + j;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                s += c->W[((o * C + ch) * KH + i) * KW + j] * c->x[((n * C + ch) * H + ih) * W + iw];
                            }
                    y[((n * O + o) * Ho + oh) * Wo + ow] = s;
                }
}

static void test_conv(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int64_t stride,
                      int64_t pad, int with_bias) {
    conv_ctx c = {{N, C, H, W}, {O, C, KH, KW}, {0}, stride, pad, 0, NULL, NULL, NULL, NULL, NULL, NULL};
    char what[160];
    snprintf(what, sizeof what, "conv2d x[%lld x %lld x %lld x %lld] W[%lld x %lld x %lld x %lld] s%lld p%lld%s",
             (long long)N, (long long)C, (long long)H, (long long)W, (long long)O, (long long)C, (long long)KH,
             (long long)KW, (long long)stride, (long long)pad, with_bias ? "" : " no bias");
    CHECK_OK(collapse_conv2d_output_shape(c.xs, c.ws, stride, pad, c.ys, &c.ncol));
    CHECK(c.ys[0] == N && c.ys[1] == O && c.ys[2] == (H + 2 * pad - KH) / stride + 1 &&
          c.ys[3] == (W + 2 * pad - KW) / stride + 1);
    const int direct = KH == 1 && KW == 1 && stride == 1 && pad == 0;
    CHECK(c.ncol == (direct ? 0 : C * KH * KW * c.ys[2] * c.ys[3]));
    const int64_t nx = numel4(c.xs), nw = numel4(c.ws), ny = numel4(c.ys);
    c.x = randn(nx, 1);
    c.W = randn(nw, 0.5);
    c.b = with_bias ? randn(O, 1) : NULL;
    c.r = randn(ny, 1);
    c.y = zeros(ny);
    c.col = direct ? NULL : randn(c.ncol, 1); /* scratch content must not matter */
    /* forward against the direct 7-loop sum */
    double *ref = zeros(ny);
    conv_direct(&c, ref);
    CHECK_OK(collapse_conv2d_forward_f64(c.xs, c.ws, c.x, c.y, c.W, c.b, c.col, stride, pad));
    char name[200];
    snprintf(name, sizeof name, "%s forward", what);
    check_direct(name, c.y, ref, ny, 1e-14);
    /* backward: gx overwritten (from garbage), gW / gb accumulated from zero */
    double *gx = randn(nx, 1), *gW = zeros(nw), *gb = with_bias ? zeros(O) : NULL;
    CHECK_OK(collapse_conv2d_backward_f64(c.xs, c.ws, c.x, c.r, gx, c.W, gW, gb, c.col, stride, pad));
    snprintf(name, sizeof name, "%s d/dx", what);
    fd_check(name, conv_obj, &c, c.x, nx, gx);
    snprintf(name, sizeof name, "%s d/dW", what);
    fd_check(name, conv_obj, &c, c.W, nw, gW);
    if (with_bias) {
        snprintf(name, sizeof name, "%s d/db", what);
        fd_check(name, conv_obj, &c, c.b, O, gb);
    }
    /* the three gradients are independent: each alone gives the same values; gW, gb accumulate */
    double *gx2 = zeros(nx), *gW2 = copy_of(gW, nw), *gb2 = with_bias ? copy_of(gb, O) : NULL;
    CHECK_OK(collapse_conv2d_backward_f64(c.xs, c.ws, NULL, c.r, gx2, c.W, NULL, NULL, c.col, stride, pad));
    CHECK(rel_err(gx2, gx, nx) == 0);
    CHECK_OK(collapse_conv2d_backward_f64(c.xs, c.ws, c.x, c.r, NULL, NULL, gW2, gb2, c.col, stride, pad));
    for (int64_t k = 0; k < nw; k++) gW2[k] -= 2 * gW[k];
    double m = 0;
    for (int64_t k = 0; k < nw; k++) m = fmax(m, fabs(gW2[k]) / fmax(1, fabs(gW[k])));
    CHECK(m < 1e-14);
    if (with_bias) {
        m = 0;
        for (int64_t k = 0; k < O; k++) m = fmax(m, fabs(gb2[k] - 2 * gb[k]));
        CHECK(m < 1e-13);
    }
    /* float32 agrees with float64 */
    float *x32 = to_f32(c.x, nx), *W32 = to_f32(c.W, nw), *b32 = to_f32(c.b, O), *r32 = to_f32(c.r, ny),
          *y32 = fzeros(ny), *gx32 = fzeros(nx), *gW32 = fzeros(nw), *gb32 = fzeros(O),
          *col32 = direct ? NULL : fzeros(c.ncol);
    CHECK_OK(collapse_conv2d_forward_f64(c.xs, c.ws, c.x, c.y, c.W, c.b, c.col, stride, pad));
    CHECK_OK(collapse_conv2d_forward_f32(c.xs, c.ws, x32, y32, W32, b32, col32, stride, pad));
    snprintf(name, sizeof name, "%s y", what);
    check_f32(name, y32, c.y, ny, 1e-5);
    CHECK_OK(collapse_conv2d_backward_f32(c.xs, c.ws, x32, r32, gx32, W32, gW32, with_bias ? gb32 : NULL, col32,
                                          stride, pad));
    snprintf(name, sizeof name, "%s gx", what);
    check_f32(name, gx32, gx, nx, 1e-5);
    snprintf(name, sizeof name, "%s gW", what);
    check_f32(name, gW32, gW, nw, 1e-5);
    if (with_bias) {
        snprintf(name, sizeof name, "%s gb", what);
        check_f32(name, gb32, gb, O, 1e-5);
    }
    free(x32); free(W32); free(b32); free(r32); free(y32); free(gx32); free(gW32); free(gb32); free(col32);
    free(gx2); free(gW2); free(gb2); free(gx); free(gW); free(gb); free(ref);
    free(c.x); free(c.W); free(c.b); free(c.r); free(c.y); free(c.col);
}

/* ---- batchnorm2d ---------------------------------------------------------------------------- */

typedef struct { int64_t xs[4]; double *x, *gamma, *beta, *rm, *rv, *r, *y, *sm, *si; int eval; } bn_ctx;
static double bn_obj(void *p) {
    bn_ctx *c = p;
    if (c->eval)
        CHECK_OK(collapse_batchnorm2d_forward_eval_f64(c->xs, c->x, c->y, c->gamma, c->beta, c->rm, c->rv, 1e-5));
    else
        CHECK_OK(collapse_batchnorm2d_forward_train_f64(c->xs, c->x, c->y, c->gamma, c->beta, NULL, NULL, c->sm, c->si,
                                                        0.1, 1e-5));
    return dot(c->r, c->y, numel4(c->xs));
}

/* x = scale (randn + 3) per channel offset; a small scale (spread comparable to eps) keeps d/dx
 * visible when a channel has only 2 values (xhat = +-1 otherwise). */
static void test_batchnorm2d(int64_t N, int64_t C, int64_t H, int64_t W, int affine, int eval, double scale) {
    bn_ctx c = {{N, C, H, W}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, eval};
    const int64_t nx = numel4(c.xs), hw = H * W, m = N * hw;
    char what[128], name[192];
    snprintf(what, sizeof what, "batchnorm2d %s [%lld x %lld x %lld x %lld]%s", eval ? "eval" : "train", (long long)N,
             (long long)C, (long long)H, (long long)W, affine ? "" : " no affine");
    c.x = randn(nx, scale);
    for (int64_t i = 0; i < nx; i++) c.x[i] += 3 * scale * (1 + (i / hw) % C);
    fd_h = 1e-5 * scale;
    if (affine) {
        c.gamma = randn(C, 0.3);
        for (int64_t j = 0; j < C; j++) c.gamma[j] += 1;
        c.beta = randn(C, 0.5);
    }
    c.r = randn(nx, 1);
    c.y = zeros(nx);
    c.sm = zeros(C);
    c.si = zeros(C);
    c.rm = randn(C, 0.1);
    c.rv = randn(C, 0.1);
    for (int64_t j = 0; j < C; j++) c.rv[j] = 1 + fabs(c.rv[j]);
    if (eval)
        for (int64_t j = 0; j < C; j++) c.rm[j] += 3 * scale * (1 + j);
    double *rm = copy_of(c.rm, C), *rv = copy_of(c.rv, C);
    if (eval)
        CHECK_OK(collapse_batchnorm2d_forward_eval_f64(c.xs, c.x, c.y, c.gamma, c.beta, rm, rv, 1e-5));
    else
        CHECK_OK(collapse_batchnorm2d_forward_train_f64(c.xs, c.x, c.y, c.gamma, c.beta, rm, rv, c.sm, c.si, 0.1, 1e-5));
    /* statistics and output against the textbook formulas (channel c: x[n, c, :, :] for all n) */
    double e_stat = 0, e_y = 0;
    for (int64_t j = 0; j < C; j++) {
        double mu = 0, ss = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < hw; k++) mu += c.x[(n * C + j) * hw + k];
        mu /= m;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < hw; k++) ss += pow(c.x[(n * C + j) * hw + k] - mu, 2);
        double mean = eval ? c.rm[j] : mu, var = eval ? c.rv[j] : ss / m, invstd = 1 / sqrt(var + 1e-5);
        if (!eval) {
            e_stat = fmax(e_stat, fabs(c.sm[j] - mu));
            e_stat = fmax(e_stat, fabs(c.si[j] - invstd) / invstd);
            e_stat = fmax(e_stat, fabs(rm[j] - (0.9 * c.rm[j] + 0.1 * mu)));
            e_stat = fmax(e_stat, fabs(rv[j] - (0.9 * c.rv[j] + 0.1 * ss / (m - 1))));
        } else {
            e_stat = fmax(e_stat, fabs(rm[j] - c.rm[j]) + fabs(rv[j] - c.rv[j])); /* eval leaves them */
        }
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < hw; k++) {
                int64_t t = (n * C + j) * hw + k;
                double y = (c.x[t] - mean) * invstd * (affine ? c.gamma[j] : 1) + (affine ? c.beta[j] : 0);
                e_y = fmax(e_y, fabs(y - c.y[t]) / fmax(1, fabs(y)));
            }
    }
    CHECK(e_stat < 1e-13);
    CHECK(e_y < 1e-13);
    if (e_stat >= 1e-13 || e_y >= 1e-13) fprintf(stderr, "%s: statistics %.3g, output %.3g\n", what, e_stat, e_y);
    /* gradients */
    double *gx = randn(nx, 1), *gg = zeros(C), *gbt = zeros(C);
    if (eval)
        CHECK_OK(collapse_batchnorm2d_backward_eval_f64(c.xs, c.x, c.r, gx, c.gamma, affine ? gg : NULL,
                                                        affine ? gbt : NULL, c.rm, c.rv, 1e-5));
    else
        CHECK_OK(collapse_batchnorm2d_backward_train_f64(c.xs, c.x, c.r, gx, c.gamma, affine ? gg : NULL,
                                                         affine ? gbt : NULL, c.sm, c.si));
    snprintf(name, sizeof name, "%s d/dx", what);
    fd_check(name, bn_obj, &c, c.x, nx, gx);
    fd_h = 1e-5;
    if (affine) {
        snprintf(name, sizeof name, "%s d/dgamma", what);
        fd_check(name, bn_obj, &c, c.gamma, C, gg);
        snprintf(name, sizeof name, "%s d/dbeta", what);
        fd_check(name, bn_obj, &c, c.beta, C, gbt);
    }
    /* in place: y over x, then gx over gy */
    bn_obj(&c); /* save_mean / save_invstd of the unperturbed x */
    double *a = copy_of(c.x, nx), *g2 = copy_of(c.r, nx);
    if (eval) {
        CHECK_OK(collapse_batchnorm2d_forward_eval_f64(c.xs, a, a, c.gamma, c.beta, c.rm, c.rv, 1e-5));
        CHECK_OK(collapse_batchnorm2d_backward_eval_f64(c.xs, NULL, g2, g2, c.gamma, NULL, NULL, NULL, c.rv, 1e-5));
    } else {
        CHECK_OK(collapse_batchnorm2d_forward_train_f64(c.xs, a, a, c.gamma, c.beta, NULL, NULL, c.sm, c.si, 0.1, 1e-5));
        CHECK_OK(collapse_batchnorm2d_backward_train_f64(c.xs, c.x, g2, g2, c.gamma, NULL, NULL, c.sm, c.si));
    }
    CHECK(rel_err(a, c.y, nx) == 0);
    CHECK(rel_err(g2, gx, nx) == 0);
    /* float32 agrees with float64 */
    float *x32 = to_f32(c.x, nx), *r32 = to_f32(c.r, nx), *ga32 = to_f32(c.gamma, C), *be32 = to_f32(c.beta, C),
          *rm32 = to_f32(c.rm, C), *rv32 = to_f32(c.rv, C), *y32 = fzeros(nx), *gx32 = fzeros(nx),
          *sm32 = fzeros(C), *si32 = fzeros(C), *gg32 = fzeros(C), *gb32 = fzeros(C);
    if (eval) {
        CHECK_OK(collapse_batchnorm2d_forward_eval_f32(c.xs, x32, y32, ga32, be32, rm32, rv32, 1e-5));
        CHECK_OK(collapse_batchnorm2d_backward_eval_f32(c.xs, x32, r32, gx32, ga32, affine ? gg32 : NULL,
                                                        affine ? gb32 : NULL, rm32, rv32, 1e-5));
    } else {
        CHECK_OK(collapse_batchnorm2d_forward_train_f32(c.xs, x32, y32, ga32, be32, NULL, NULL, sm32, si32, 0.1, 1e-5));
        CHECK_OK(collapse_batchnorm2d_backward_train_f32(c.xs, x32, r32, gx32, ga32, affine ? gg32 : NULL,
                                                         affine ? gb32 : NULL, sm32, si32));
    }
    /* float32 loses digits in x - mean when the spread is tiny next to the offset */
    const double tol = scale < 0.1 ? 1e-3 : 2e-5;
    snprintf(name, sizeof name, "%s y", what);
    check_f32(name, y32, c.y, nx, tol);
    snprintf(name, sizeof name, "%s gx", what);
    check_f32(name, gx32, gx, nx, tol);
    if (affine) {
        snprintf(name, sizeof name, "%s ggamma", what);
        check_f32(name, gg32, gg, C, tol);
        snprintf(name, sizeof name, "%s gbeta", what);
        check_f32(name, gb32, gbt, C, tol);
    }
    free(x32); free(r32); free(ga32); free(be32); free(rm32); free(rv32); free(y32); free(gx32); free(sm32);
    free(si32); free(gg32); free(gb32);
    free(a); free(g2); free(gx); free(gg); free(gbt); free(rm); free(rv);
    free(c.x); free(c.gamma); free(c.beta); free(c.rm); free(c.rv); free(c.r); free(c.y); free(c.sm); free(c.si);
}

/* ---- pooling -------------------------------------------------------------------------------- */

typedef struct { int64_t xs[4], ys[4], k, s; double *x, *r, *y; int32_t *idx; int avg; } pool_ctx;
static double pool_obj(void *p) {
    pool_ctx *c = p;
    if (c->avg) CHECK_OK(collapse_avgpool2d_forward_f64(c->xs, c->x, c->y, c->k, c->s));
    else CHECK_OK(collapse_maxpool2d_forward_f64(c->xs, c->x, c->y, c->idx, c->k, c->s));
    return dot(c->r, c->y, numel4(c->ys));
}

/* Max / mean over each window by direct loops; for max, the first maximum's plane index. */
static void pool_direct(const pool_ctx *c, double *y, int32_t *idx) {
    const int64_t P = c->xs[0] * c->xs[1], H = c->xs[2], W = c->xs[3], Ho = c->ys[2], Wo = c->ys[3];
    for (int64_t p = 0; p < P; p++)
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                double best = -INFINITY, sum = 0;
                int32_t bi = -1;
                for (int64_t i = 0; i < c->k; i++)
                    for (int64_t j = 0; j < c->k; j++) {
                        int64_t t = (oh * c->s + i) * W + ow * c->s + j;
                        double v = c->x[p * H * W + t];
                        sum += v;
                        if (bi < 0 || v > best) best = v, bi = (int32_t)t;
                    }
                y[(p * Ho + oh) * Wo + ow] = c->avg ? sum / (double)(c->k * c->k) : best;
                if (idx) idx[(p * Ho + oh) * Wo + ow] = bi;
            }
}

static void test_pool(int avg, int64_t N, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s) {
    pool_ctx c = {{N, C, H, W}, {0}, k, s, NULL, NULL, NULL, NULL, avg};
    char what[128], name[192];
    snprintf(what, sizeof what, "%s k%lld s%lld [%lld x %lld x %lld x %lld]", avg ? "avgpool2d" : "maxpool2d",
             (long long)k, (long long)s, (long long)N, (long long)C, (long long)H, (long long)W);
    CHECK_OK(collapse_pool2d_output_shape(c.xs, k, s, c.ys));
    CHECK(c.ys[0] == N && c.ys[1] == C && c.ys[2] == (H - k) / s + 1 && c.ys[3] == (W - k) / s + 1);
    const int64_t nx = numel4(c.xs), ny = numel4(c.ys);
    /* distinct values 0.05 apart in a random order: far from ties at the finite-difference step */
    c.x = zeros(nx);
    for (int64_t i = 0; i < nx; i++) c.x[i] = 0.05 * (double)i - 0.025 * (double)nx;
    for (int64_t i = nx - 1; i > 0; i--) {
        int64_t j = (int64_t)(uniform01() * (double)(i + 1));
        double t = c.x[i];
        c.x[i] = c.x[j];
        c.x[j] = t;
    }
    c.r = randn(ny, 1);
    c.y = zeros(ny);
    c.idx = avg ? NULL : calloc((size_t)ny, sizeof(int32_t));
    double *ref = zeros(ny);
    int32_t *ridx = avg ? NULL : calloc((size_t)ny, sizeof(int32_t));
    pool_direct(&c, ref, ridx);
    pool_obj(&c);
    snprintf(name, sizeof name, "%s forward", what);
    check_direct(name, c.y, ref, ny, avg ? 1e-15 : 0);
    if (!avg) CHECK(!memcmp(c.idx, ridx, (size_t)ny * sizeof(int32_t)));
    double *gx = randn(nx, 1); /* overwritten */
    if (avg) CHECK_OK(collapse_avgpool2d_backward_f64(c.xs, c.r, gx, k, s));
    else CHECK_OK(collapse_maxpool2d_backward_f64(c.xs, c.r, gx, c.idx, k, s));
    snprintf(name, sizeof name, "%s d/dx", what);
    fd_check(name, pool_obj, &c, c.x, nx, gx);
    pool_obj(&c);
    /* float32 agrees with float64 */
    float *x32 = to_f32(c.x, nx), *r32 = to_f32(c.r, ny), *y32 = fzeros(ny), *gx32 = fzeros(nx);
    int32_t *idx32 = avg ? NULL : calloc((size_t)ny, sizeof(int32_t));
    if (avg) {
        CHECK_OK(collapse_avgpool2d_forward_f32(c.xs, x32, y32, k, s));
        CHECK_OK(collapse_avgpool2d_backward_f32(c.xs, r32, gx32, k, s));
    } else {
        CHECK_OK(collapse_maxpool2d_forward_f32(c.xs, x32, y32, idx32, k, s));
        CHECK(!memcmp(idx32, c.idx, (size_t)ny * sizeof(int32_t)));
        CHECK_OK(collapse_maxpool2d_backward_f32(c.xs, r32, gx32, idx32, k, s));
        CHECK_OK(collapse_maxpool2d_forward_f64(c.xs, c.x, c.y, NULL, k, s)); /* indices are optional */
        check_direct(name, c.y, ref, ny, 0);
    }
    snprintf(name, sizeof name, "%s y", what);
    check_f32(name, y32, c.y, ny, 1e-6);
    snprintf(name, sizeof name, "%s gx", what);
    check_f32(name, gx32, gx, nx, 1e-6);
    free(x32); free(r32); free(y32); free(gx32); free(idx32);
    free(gx); free(ref); free(ridx); free(c.x); free(c.r); free(c.y); free(c.idx);
}

/* Ties go to the first maximum in row-major window order, NaN propagates (PyTorch's rule). */
static void test_maxpool_ties(void) {
    const int64_t xs[4] = {1, 1, 3, 4};
    double x[12] = {1, 2, 2, 0,
                    2, 2, 1, 2,
                    0, 0, 0, 0};
    double y[6], gy[6] = {1, 10, 100, 1000, 10000, 100000}, gx[12];
    int32_t idx[6];
    CHECK_OK(collapse_maxpool2d_forward_f64(xs, x, y, idx, 2, 1)); /* 2 x 3 outputs, overlapping */
    const int32_t want[6] = {1, 1, 2, 4, 5, 7};
    for (int i = 0; i < 6; i++) CHECK(idx[i] == want[i]);
    CHECK(y[0] == 2 && y[1] == 2 && y[2] == 2 && y[3] == 2 && y[4] == 2 && y[5] == 2);
    CHECK_OK(collapse_maxpool2d_backward_f64(xs, gy, gx, idx, 2, 1));
    CHECK(gx[1] == 11 && gx[2] == 100 && gx[4] == 1000 && gx[5] == 10000 && gx[7] == 100000 && gx[0] == 0);
    /* all -inf: the window's first position, value -inf */
    double xi[12];
    for (int i = 0; i < 12; i++) xi[i] = -INFINITY;
    CHECK_OK(collapse_maxpool2d_forward_f64(xs, xi, y, idx, 2, 2));
    CHECK(idx[0] == 0 && idx[1] == 2 && y[0] == -INFINITY);
    /* NaN wins over larger values */
    x[5] = NAN;
    CHECK_OK(collapse_maxpool2d_forward_f64(xs, x, y, idx, 2, 1));
    CHECK(isnan(y[0]) && idx[0] == 5 && isnan(y[1]) && idx[1] == 5 && idx[2] == 2);
    float xf[12];
    for (int i = 0; i < 12; i++) xf[i] = (float)x[i];
    float yf[6];
    CHECK_OK(collapse_maxpool2d_forward_f32(xs, xf, yf, idx, 2, 1));
    CHECK(isnan(yf[0]) && idx[0] == 5 && idx[2] == 2);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_errors(void) {
    double x[400], y[400], w[400], col[400], s1[8], s2[8];
    float xf[400], yf[400], wf[400];
    int32_t idx[100];
    for (int i = 0; i < 400; i++) x[i] = w[i] = 0.01 * i, xf[i] = wf[i] = (float)(0.01 * i), y[i] = 7, yf[i] = 7;
    const int64_t xs[4] = {2, 3, 7, 6}, ws[4] = {4, 3, 3, 3}, ws4[4] = {4, 4, 3, 3};
    int64_t os[4] = {0}, ncol = -1;
    CHECK_OK(collapse_conv2d_output_shape(xs, ws, 2, 1, os, &ncol));
    CHECK(os[0] == 2 && os[1] == 4 && os[2] == 4 && os[3] == 3 && ncol == 27 * 12);
    CHECK_OK(collapse_conv2d_output_shape(xs, ws, 2, 1, NULL, NULL));

    CHECK_FAILS(collapse_conv2d_forward_f64(xs, ws4, x, y, w, NULL, col, 1, 0),
                "conv2d_forward: input has 3 channels, weight expects 4");
    CHECK(collapse_last_status() == COLLAPSE_ERR_SHAPE);
    CHECK(y[0] == 7);
    CHECK_FAILS(collapse_conv2d_forward_f32(xs, ws4, xf, yf, wf, NULL, NULL, 1, 0),
                "conv2d_forward: input has 3 channels, weight expects 4 (input [2 x 3 x 7 x 6], weight [4 x 4 x 3 x 3])");
    CHECK_FAILS(collapse_conv2d_backward_f64(xs, ws4, x, y, y, w, w, NULL, col, 1, 0),
                "conv2d_backward: input has 3 channels, weight expects 4");
    CHECK_FAILS(collapse_conv2d_output_shape(xs, ws4, 1, 0, os, NULL),
                "conv2d_output_shape: input has 3 channels, weight expects 4");
    const int64_t bad[4] = {2, 0, 7, 6};
    CHECK_FAILS(collapse_conv2d_forward_f64(bad, ws, x, y, w, NULL, col, 1, 0),
                "conv2d_forward: input shape [2 x 0 x 7 x 6] has a size <= 0");
    CHECK_FAILS(collapse_conv2d_forward_f64(NULL, ws, x, y, w, NULL, col, 1, 0),
                "conv2d_forward: input shape is NULL");
    CHECK_FAILS(collapse_conv2d_forward_f64(xs, ws, x, y, w, NULL, col, 0, 0),
                "conv2d_forward: stride must be positive, got 0");
    CHECK_FAILS(collapse_conv2d_forward_f64(xs, ws, x, y, w, NULL, col, 1, -1),
                "conv2d_forward: padding must be >= 0, got -1");
    const int64_t big[4] = {4, 3, 9, 9};
    CHECK_FAILS(collapse_conv2d_forward_f64(xs, big, x, y, w, NULL, col, 1, 1),
                "conv2d_forward: kernel 9 x 9 is larger than the padded input 9 x 8 (input [2 x 3 x 7 x 6], padding 1)");
    CHECK_OK(collapse_conv2d_output_shape(xs, big, 1, 2, os, NULL)); /* 11 x 10 fits with padding 2 */
    CHECK(os[2] == 3 && os[3] == 2);
    CHECK_FAILS(collapse_conv2d_forward_f64(xs, ws, NULL, y, w, NULL, col, 2, 1),
                "conv2d_forward: input is NULL, expected a [2 x 3 x 7 x 6] array");
    CHECK_FAILS(collapse_conv2d_forward_f64(xs, ws, x, NULL, w, NULL, col, 2, 1),
                "conv2d_forward: output is NULL, expected a [2 x 4 x 4 x 3] array");
    CHECK_FAILS(collapse_conv2d_forward_f64(xs, ws, x, y, NULL, NULL, col, 2, 1),
                "conv2d_forward: weight is NULL, expected a [4 x 3 x 3 x 3] array");
    CHECK_FAILS(collapse_conv2d_forward_f64(xs, ws, x, y, w, NULL, NULL, 2, 1),
                "conv2d_forward: columns is NULL, expected a [27 x 12] array");
    CHECK_FAILS(collapse_conv2d_backward_f64(xs, ws, x, NULL, y, w, w, NULL, col, 2, 1),
                "conv2d_backward: grad_output is NULL, expected a [2 x 4 x 4 x 3] array");
    CHECK_FAILS(collapse_conv2d_backward_f64(xs, ws, NULL, y, NULL, w, w, NULL, col, 2, 1),
                "conv2d_backward: input is NULL, expected a [2 x 3 x 7 x 6] array");
    CHECK_FAILS(collapse_conv2d_backward_f64(xs, ws, x, y, y, NULL, NULL, NULL, col, 2, 1),
                "conv2d_backward: weight is NULL");
    CHECK_FAILS(collapse_conv2d_backward_f64(xs, ws, x, y, y, w, NULL, NULL, NULL, 2, 1),
                "conv2d_backward: columns is NULL, expected a [27 x 12] array");
    CHECK_OK(collapse_conv2d_backward_f64(xs, ws, NULL, y, NULL, NULL, NULL, s1, NULL, 2, 1)); /* bias only */
    /* a 1x1 kernel with stride 1 and no padding needs no columns */
    const int64_t w1[4] = {2, 3, 1, 1};
    CHECK_OK(collapse_conv2d_output_shape(xs, w1, 1, 0, os, &ncol));
    CHECK(ncol == 0 && os[2] == 7 && os[3] == 6);
    CHECK_OK(collapse_conv2d_forward_f64(xs, w1, x, y, w, NULL, NULL, 1, 0));
    CHECK_OK(collapse_conv2d_output_shape(xs, w1, 2, 0, os, &ncol));
    CHECK(ncol == 3 * 4 * 3);
    const int64_t huge[4] = {1, (int64_t)1 << 31, 1, 1}, hugew[4] = {1, (int64_t)1 << 31, 1, 1};
    CHECK_FAILS(collapse_conv2d_output_shape(huge, hugew, 1, 0, os, NULL), "exceeds the BLAS index limit");
    const int64_t over[4] = {(int64_t)1 << 40, (int64_t)1 << 40, 1, 1};
    CHECK_FAILS(collapse_conv2d_output_shape(over, ws, 1, 0, os, NULL),
                "conv2d_output_shape: input shape [1099511627776 x 1099511627776 x 1 x 1] has too many elements");
    CHECK_FAILS(collapse_conv2d_output_shape(xs, ws, 1, (int64_t)1 << 40, os, NULL),
                "conv2d_output_shape: padding = 1099511627776 is too large");

    /* batchnorm2d */
    const int64_t one[4] = {1, 3, 1, 1}, bs[4] = {2, 3, 2, 2};
    s1[0] = 42;
    y[0] = 7;
    CHECK_FAILS(collapse_batchnorm2d_forward_train_f64(one, x, y, NULL, NULL, NULL, NULL, s1, s2, 0.1, 1e-5),
                "batchnorm2d: training needs at least 2 values per channel (N H W), got input [1 x 3 x 1 x 1]");
    CHECK(collapse_last_status() == COLLAPSE_ERR_ARG && s1[0] == 42 && y[0] == 7);
    CHECK_FAILS(collapse_batchnorm2d_backward_train_f64(one, x, y, y, NULL, NULL, NULL, s1, s2),
                "batchnorm2d: training needs at least 2 values per channel");
    const int64_t one2[4] = {1, 3, 2, 1}; /* one sample, two values per channel: fine */
    CHECK_OK(collapse_batchnorm2d_forward_train_f64(one2, x, y, NULL, NULL, NULL, NULL, s1, s2, 0.1, 1e-5));
    CHECK_FAILS(collapse_batchnorm2d_forward_train_f64(bs, x, y, NULL, NULL, NULL, NULL, NULL, s2, 0.1, 1e-5),
                "batchnorm2d_forward_train: save_mean is NULL, expected a [3] array");
    CHECK_FAILS(collapse_batchnorm2d_forward_train_f64(bs, x, NULL, NULL, NULL, NULL, NULL, s1, s2, 0.1, 1e-5),
                "batchnorm2d_forward_train: y is NULL, expected a [2 x 3 x 2 x 2] array");
    CHECK_FAILS(collapse_batchnorm2d_forward_train_f64(bs, x, y, NULL, NULL, NULL, NULL, s1, s2, -0.5, 1e-5),
                "batchnorm2d_forward_train: momentum must be in [0, 1], got -0.5");
    CHECK_FAILS(collapse_batchnorm2d_forward_train_f32(bs, xf, yf, NULL, NULL, NULL, NULL, wf, wf, 0.1, NAN),
                "batchnorm2d_forward_train: eps must be a finite number >= 0, got nan");
    CHECK_FAILS(collapse_batchnorm2d_forward_eval_f64(bs, x, y, NULL, NULL, NULL, s2, 1e-5),
                "batchnorm2d_forward_eval: running_mean is NULL, expected a [3] array");
    CHECK_FAILS(collapse_batchnorm2d_forward_eval_f64(bad, x, y, NULL, NULL, s1, s2, 1e-5),
                "batchnorm2d_forward_eval: input shape [2 x 0 x 7 x 6] has a size <= 0");
    CHECK_FAILS(collapse_batchnorm2d_backward_train_f64(bs, x, y, y, NULL, NULL, NULL, s1, NULL),
                "batchnorm2d_backward_train: save_invstd is NULL, expected a [3] array");
    CHECK_FAILS(collapse_batchnorm2d_backward_eval_f64(bs, NULL, y, y, NULL, s1, NULL, s1, s2, 1e-5),
                "batchnorm2d_backward_eval: x is NULL, expected a [2 x 3 x 2 x 2] array");
    CHECK_FAILS(collapse_batchnorm2d_backward_eval_f64(bs, x, y, y, NULL, NULL, NULL, NULL, NULL, 1e-5),
                "batchnorm2d_backward_eval: running_var is NULL");
    s1[0] = s1[1] = s1[2] = 0;
    s2[0] = s2[1] = s2[2] = 1;
    CHECK_OK(collapse_batchnorm2d_forward_eval_f64(one, x, y, NULL, NULL, s1, s2, 1e-5)); /* eval: any size */

    /* pooling */
    const int64_t ps[4] = {2, 3, 5, 4};
    CHECK_OK(collapse_pool2d_output_shape(ps, 2, 2, os));
    CHECK(os[0] == 2 && os[1] == 3 && os[2] == 2 && os[3] == 2);
    CHECK_OK(collapse_pool2d_output_shape(ps, 2, 1, os));
    CHECK(os[2] == 4 && os[3] == 3);
    CHECK_FAILS(collapse_maxpool2d_forward_f64(ps, x, y, idx, 5, 1),
                "maxpool2d_forward: kernel 5 x 5 is larger than the input planes 5 x 4 (input [2 x 3 x 5 x 4])");
    CHECK(collapse_last_status() == COLLAPSE_ERR_SHAPE);
    CHECK_FAILS(collapse_avgpool2d_forward_f32(ps, xf, yf, 0, 1), "avgpool2d_forward: kernel must be positive, got 0");
    CHECK_FAILS(collapse_avgpool2d_backward_f64(ps, y, x, 2, 0), "avgpool2d_backward: stride must be positive, got 0");
    CHECK_FAILS(collapse_pool2d_output_shape(bad, 2, 2, os), "pool2d_output_shape: input shape [2 x 0 x 7 x 6]");
    CHECK_FAILS(collapse_maxpool2d_forward_f64(ps, NULL, y, idx, 2, 2),
                "maxpool2d_forward: x is NULL, expected a [2 x 3 x 5 x 4] array");
    CHECK_FAILS(collapse_maxpool2d_forward_f64(ps, x, NULL, idx, 2, 2),
                "maxpool2d_forward: y is NULL, expected a [2 x 3 x 2 x 2] array");
    CHECK_FAILS(collapse_maxpool2d_backward_f64(ps, y, x, NULL, 2, 2),
                "maxpool2d_backward: indices is NULL, expected the forward's [2 x 3 x 2 x 2] int32 array");
    CHECK_FAILS(collapse_avgpool2d_backward_f64(ps, y, NULL, 2, 2),
                "avgpool2d_backward: grad_input is NULL, expected a [2 x 3 x 5 x 4] array");
    /* indices from elsewhere are range-checked before anything is written */
    for (int i = 0; i < 24; i++) idx[i] = i % 20;
    idx[13] = 20;
    for (int i = 0; i < 120; i++) x[i] = 5;
    CHECK_FAILS(collapse_maxpool2d_backward_f64(ps, y, x, idx, 2, 2),
                "maxpool2d_backward: index 20 at position 13 is outside the 5 x 4 input plane (0..19)");
    CHECK(collapse_last_status() == COLLAPSE_ERR_RANGE && x[0] == 5);
    idx[13] = -1;
    CHECK_FAILS(collapse_maxpool2d_backward_f32(ps, yf, xf, idx, 2, 2), "index -1 at position 13");
    const int64_t wide[4] = {1, 1, (int64_t)1 << 16, (int64_t)1 << 16};
    CHECK_FAILS(collapse_pool2d_output_shape(wide, 2, 2, os), "have more than 2147483647 elements");
}

/* ---- PyTorch fixtures ---------------------------------------------------------------------- */

/* fixture_load, fx_get, fixture_free: tests/fixture.h */

/* max |got - ref| / max(1, |ref|) over the array, checked against tol */
static double vs_torch(const fixture *fx, const char *name, const double *got, int64_t count, double tol,
                       double *worst) {
    const double *ref = fx_get(fx, name, (int)count);
    if (!ref) return INFINITY;
    double e = 0;
    for (int64_t i = 0; i < count; i++) {
        double d = fabs(got[i] - ref[i]) / fmax(1, fabs(ref[i]));
        if (!(d <= e)) e = d;
    }
    if (getenv("COLLAPSE_TEST_VERBOSE") || !(e <= tol))
        fprintf(stderr, "vs torch: %s error %.3g (tol %g)\n", name, e, tol);
    CHECK(e <= tol);
    if (e > *worst) *worst = e;
    return e;
}
static void shape_of(const fixture *fx, const char *name, int64_t *s) {
    const double *v = fx_get(fx, name, 4);
    for (int i = 0; i < 4; i++) s[i] = v ? (int64_t)v[i] : 1;
}

/* Single layers of layers.txt under loss = sum(y r). */
static void test_torch_layers(const fixture *fx) {
    double worst = 0;
    const double tol = 1e-10;
    char nm[64];
#define FX(s) (snprintf(nm, sizeof nm, "%s.%s", cs, s), nm)
    static const char *convs[] = {"conv_a", "conv_b", "conv_c"};
    for (int t = 0; t < 3; t++) {
        const char *cs = convs[t];
        const double *cfg = fx_get(fx, FX("config"), 7);
        if (!cfg) continue;
        int64_t xs[4], ys[4], os[4], ncol = 0;
        shape_of(fx, FX("x_shape"), xs);
        shape_of(fx, FX("y_shape"), ys);
        const int64_t ws[4] = {(int64_t)cfg[1], (int64_t)cfg[0], (int64_t)cfg[2], (int64_t)cfg[3]};
        const int64_t stride = (int64_t)cfg[4], pad = (int64_t)cfg[5];
        const int bias = cfg[6] != 0;
        CHECK_OK(collapse_conv2d_output_shape(xs, ws, stride, pad, os, &ncol));
        CHECK(!memcmp(os, ys, sizeof os));
        const int64_t nx = numel4(xs), nw = numel4(ws), ny = numel4(ys);
        const double *x = fx_get(fx, FX("x"), (int)nx), *W = fx_get(fx, FX("weight"), (int)nw),
                     *b = bias ? fx_get(fx, FX("bias"), (int)ws[0]) : NULL, *r = fx_get(fx, FX("r"), (int)ny);
        if (!x || !W || !r) continue;
        double *y = zeros(ny), *gx = zeros(nx), *gW = zeros(nw), *gb = zeros(ws[0]), *col = zeros(ncol);
        CHECK_OK(collapse_conv2d_forward_f64(xs, ws, x, y, W, b, col, stride, pad));
        CHECK_OK(collapse_conv2d_backward_f64(xs, ws, x, r, gx, W, gW, bias ? gb : NULL, col, stride, pad));
        vs_torch(fx, FX("y"), y, ny, tol, &worst);
        vs_torch(fx, FX("gx"), gx, nx, tol, &worst);
        vs_torch(fx, FX("g_weight"), gW, nw, tol, &worst);
        if (bias) vs_torch(fx, FX("g_bias"), gb, ws[0], tol, &worst);
        free(y); free(gx); free(gW); free(gb); free(col);
    }
    for (int avg = 0; avg < 2; avg++) {
        const char *cs = avg ? "avgpool" : "maxpool";
        const double *cfg = fx_get(fx, FX("config"), 2);
        if (!cfg) continue;
        int64_t xs[4], ys[4], os[4];
        shape_of(fx, FX("x_shape"), xs);
        shape_of(fx, FX("y_shape"), ys);
        const int64_t k = (int64_t)cfg[0], s = (int64_t)cfg[1];
        CHECK_OK(collapse_pool2d_output_shape(xs, k, s, os));
        CHECK(!memcmp(os, ys, sizeof os));
        const int64_t nx = numel4(xs), ny = numel4(ys);
        const double *x = fx_get(fx, FX("x"), (int)nx), *r = fx_get(fx, FX("r"), (int)ny);
        if (!x || !r) continue;
        double *y = zeros(ny), *gx = zeros(nx), *di = zeros(ny);
        int32_t *idx = calloc((size_t)ny, sizeof(int32_t));
        if (avg) {
            CHECK_OK(collapse_avgpool2d_forward_f64(xs, x, y, k, s));
            CHECK_OK(collapse_avgpool2d_backward_f64(xs, r, gx, k, s));
        } else {
            CHECK_OK(collapse_maxpool2d_forward_f64(xs, x, y, idx, k, s));
            CHECK_OK(collapse_maxpool2d_backward_f64(xs, r, gx, idx, k, s));
            for (int64_t i = 0; i < ny; i++) di[i] = idx[i];
            vs_torch(fx, FX("indices"), di, ny, 0, &worst); /* ties: the first maximum, exactly */
        }
        vs_torch(fx, FX("y"), y, ny, tol, &worst);
        vs_torch(fx, FX("gx"), gx, nx, tol, &worst);
        free(y); free(gx); free(di); free(idx);
    }
    {
        const char *cs = "bn2d";
        const double *cfg = fx_get(fx, FX("config"), 2);
        int64_t xs[4];
        shape_of(fx, FX("x_shape"), xs);
        const int64_t nx = numel4(xs), C = xs[1];
        const double *x = fx_get(fx, FX("x"), (int)nx), *r = fx_get(fx, FX("r"), (int)nx),
                     *ga = fx_get(fx, FX("gamma"), (int)C), *be = fx_get(fx, FX("beta"), (int)C),
                     *rm0 = fx_get(fx, FX("running_mean0"), (int)C), *rv0 = fx_get(fx, FX("running_var0"), (int)C);
        if (cfg && x && r && ga && be && rm0 && rv0) {
            double *y = zeros(nx), *gx = zeros(nx), *gg = zeros(C), *gb = zeros(C), *sm = zeros(C), *si = zeros(C),
                   *rm = copy_of(rm0, C), *rv = copy_of(rv0, C);
            CHECK_OK(collapse_batchnorm2d_forward_train_f64(xs, x, y, ga, be, rm, rv, sm, si, cfg[1], cfg[0]));
            CHECK_OK(collapse_batchnorm2d_backward_train_f64(xs, x, r, gx, ga, gg, gb, sm, si));
            vs_torch(fx, FX("y"), y, nx, tol, &worst);
            vs_torch(fx, FX("gx"), gx, nx, tol, &worst);
            vs_torch(fx, FX("g_gamma"), gg, C, tol, &worst);
            vs_torch(fx, FX("g_beta"), gb, C, tol, &worst);
            vs_torch(fx, FX("running_mean1"), rm, C, tol, &worst);
            vs_torch(fx, FX("running_var1"), rv, C, tol, &worst);
            free(y); free(gx); free(gg); free(gb); free(sm); free(si); free(rm); free(rv);
        }
    }
#undef FX
    printf("torch single layers (float64): max error %.3g\n", worst);
    if (worst > worst_torch) worst_torch = worst;
}

/* The reference network: parameters and running statistics (double; updated by train runs). */
typedef struct {
    int64_t xs[4], ws[4], h1s[4], h4s[4], h5s[4];
    int64_t cout, k, stride, pad, mpk, mps, apk, classes, feat;
    double eps, momentum;
    const double *x, *W, *b, *gamma, *beta, *lw, *lb;
    double *rm, *rv;
    int32_t labels[16];
} net_params;

/* Every value the fixture records, as double. */
typedef struct {
    double *conv_out, *bn_out, *relu_out, *maxpool_out, *maxpool_indices, *avgpool_out, *logits, loss, *gx,
        *g_conv_out, *g_relu, *g_conv_weight, *g_conv_bias, *g_gamma, *g_beta, *g_lin_weight, *g_lin_bias;
} net_out;

/* One forward/backward of the network with the library's R kernels (suffix S). Running stats are
 * converted to R for the call and back to double after it. */
#define NET_RUN_DEFINE(R, S)                                                                                      \
    static R *cvt_##S(const double *a, int64_t len) {                                                             \
        R *b = malloc((size_t)(len ? len : 1) * sizeof *b);                                                       \
        for (int64_t i = 0; i < len; i++) b[i] = (R)a[i];                                                         \
        return b;                                                                                                 \
    }                                                                                                             \
    static double *back_##S(const R *a, int64_t len) {                                                            \
        double *b = malloc((size_t)(len ? len : 1) * sizeof *b);                                                  \
        for (int64_t i = 0; i < len; i++) b[i] = (double)a[i];                                                    \
        return b;                                                                                                 \
    }                                                                                                             \
    static void net_run_##S(net_params *P, int train, net_out *o) {                                               \
        const int64_t N = P->xs[0], nx = numel4(P->xs), nw = numel4(P->ws), n1 = numel4(P->h1s),                  \
                      n4 = numel4(P->h4s), n5 = numel4(P->h5s), Co = P->cout, F = P->feat, K = P->classes;        \
        int64_t ncol = 0;                                                                                         \
        CHECK_OK(collapse_conv2d_output_shape(P->xs, P->ws, P->stride, P->pad, NULL, &ncol));                    \
        R *x = cvt_##S(P->x, nx), *W = cvt_##S(P->W, nw), *b = cvt_##S(P->b, Co), *ga = cvt_##S(P->gamma, Co),   \
          *be = cvt_##S(P->beta, Co), *lw = cvt_##S(P->lw, K * F), *lb = cvt_##S(P->lb, K),                       \
          *rm = cvt_##S(P->rm, Co), *rv = cvt_##S(P->rv, Co);                                                     \
        R *col = calloc((size_t)(ncol ? ncol : 1), sizeof(R)), *h1 = calloc((size_t)n1, sizeof(R)),              \
          *h2 = calloc((size_t)n1, sizeof(R)), *h3 = calloc((size_t)n1, sizeof(R)),                              \
          *h4 = calloc((size_t)n4, sizeof(R)), *h5 = calloc((size_t)n5, sizeof(R)),                              \
          *lg = calloc((size_t)(N * K), sizeof(R)), *glg = calloc((size_t)(N * K), sizeof(R)),                   \
          *g5 = calloc((size_t)n5, sizeof(R)), *g4 = calloc((size_t)n4, sizeof(R)),                              \
          *g3 = calloc((size_t)n1, sizeof(R)), *g2 = calloc((size_t)n1, sizeof(R)),                              \
          *g1 = calloc((size_t)n1, sizeof(R)), *gx = calloc((size_t)nx, sizeof(R)),                              \
          *gW = calloc((size_t)nw, sizeof(R)), *gb = calloc((size_t)Co, sizeof(R)),                              \
          *gga = calloc((size_t)Co, sizeof(R)), *gbe = calloc((size_t)Co, sizeof(R)),                            \
          *glw = calloc((size_t)(K * F), sizeof(R)), *glb = calloc((size_t)K, sizeof(R)),                        \
          *sm = calloc((size_t)Co, sizeof(R)), *si = calloc((size_t)Co, sizeof(R));                              \
        int32_t *idx = calloc((size_t)n4, sizeof(int32_t));                                                       \
        CHECK_OK(collapse_conv2d_forward_##S(P->xs, P->ws, x, h1, W, b, col, P->stride, P->pad));                \
        if (train)                                                                                                \
            CHECK_OK(collapse_batchnorm2d_forward_train_##S(P->h1s, h1, h2, ga, be, rm, rv, sm, si, P->momentum,  \
                                                            P->eps));                                             \
        else                                                                                                      \
            CHECK_OK(collapse_batchnorm2d_forward_eval_##S(P->h1s, h1, h2, ga, be, rm, rv, P->eps));             \
        CHECK_OK(collapse_relu_forward_##S(n1, h2, h3));                                                          \
        CHECK_OK(collapse_maxpool2d_forward_##S(P->h1s, h3, h4, idx, P->mpk, P->mps));                            \
        CHECK_OK(collapse_avgpool2d_forward_##S(P->h4s, h4, h5, P->apk, P->apk));                                \
        CHECK_OK(collapse_linear_forward_##S(N, F, K, h5, lg, lw, lb)); /* h5 [N x F] is the flattening */       \
        CHECK_OK(collapse_cross_entropy_forward_##S(N, K, lg, P->labels, &o->loss, glg));                        \
        CHECK_OK(collapse_linear_backward_##S(N, F, K, h5, glg, g5, lw, glw, glb));                              \
        CHECK_OK(collapse_avgpool2d_backward_##S(P->h4s, g5, g4, P->apk, P->apk));                               \
        CHECK_OK(collapse_maxpool2d_backward_##S(P->h1s, g4, g3, idx, P->mpk, P->mps));                           \
        CHECK_OK(collapse_relu_backward_##S(n1, h3, g3, g2));                                                     \
        if (train)                                                                                                \
            CHECK_OK(collapse_batchnorm2d_backward_train_##S(P->h1s, h1, g2, g1, ga, gga, gbe, sm, si));          \
        else                                                                                                      \
            CHECK_OK(collapse_batchnorm2d_backward_eval_##S(P->h1s, h1, g2, g1, ga, gga, gbe, rm, rv, P->eps));   \
        CHECK_OK(collapse_conv2d_backward_##S(P->xs, P->ws, x, g1, gx, W, gW, gb, col, P->stride, P->pad));      \
        o->conv_out = back_##S(h1, n1);                                                                           \
        o->bn_out = back_##S(h2, n1);                                                                             \
        o->relu_out = back_##S(h3, n1);                                                                           \
        o->maxpool_out = back_##S(h4, n4);                                                                        \
        o->maxpool_indices = malloc((size_t)n4 * sizeof(double));                                                 \
        for (int64_t i = 0; i < n4; i++) o->maxpool_indices[i] = idx[i];                                          \
        o->avgpool_out = back_##S(h5, n5);                                                                        \
        o->logits = back_##S(lg, N * K);                                                                          \
        o->gx = back_##S(gx, nx);                                                                                 \
        o->g_conv_out = back_##S(g1, n1);                                                                         \
        o->g_relu = back_##S(g3, n1);                                                                             \
        o->g_conv_weight = back_##S(gW, nw);                                                                      \
        o->g_conv_bias = back_##S(gb, Co);                                                                        \
        o->g_gamma = back_##S(gga, Co);                                                                           \
        o->g_beta = back_##S(gbe, Co);                                                                            \
        o->g_lin_weight = back_##S(glw, K * F);                                                                   \
        o->g_lin_bias = back_##S(glb, K);                                                                         \
        for (int64_t i = 0; i < Co; i++) P->rm[i] = rm[i], P->rv[i] = rv[i];                                     \
        free(x); free(W); free(b); free(ga); free(be); free(lw); free(lb); free(rm); free(rv); free(col);       \
        free(h1); free(h2); free(h3); free(h4); free(h5); free(lg); free(glg); free(g5); free(g4); free(g3);    \
        free(g2); free(g1); free(gx); free(gW); free(gb); free(gga); free(gbe); free(glw); free(glb); free(sm); \
        free(si); free(idx);                                                                                      \
    }
NET_RUN_DEFINE(double, f64)
NET_RUN_DEFINE(float, f32)

static void net_out_free(net_out *o) {
    free(o->conv_out); free(o->bn_out); free(o->relu_out); free(o->maxpool_out); free(o->maxpool_indices);
    free(o->avgpool_out); free(o->logits); free(o->gx); free(o->g_conv_out); free(o->g_relu);
    free(o->g_conv_weight); free(o->g_conv_bias); free(o->g_gamma); free(o->g_beta); free(o->g_lin_weight);
    free(o->g_lin_bias);
}

static void test_torch_network(const fixture *fx, int f64) {
    net_params P;
    memset(&P, 0, sizeof P);
    shape_of(fx, "x_shape", P.xs);
    const double *cfg = fx_get(fx, "config", 8);
    if (!cfg) return;
    P.cout = (int64_t)cfg[0], P.k = (int64_t)cfg[1], P.stride = (int64_t)cfg[2], P.pad = (int64_t)cfg[3];
    P.mpk = (int64_t)cfg[4], P.mps = (int64_t)cfg[5], P.apk = (int64_t)cfg[6], P.classes = (int64_t)cfg[7];
    const int64_t ws[4] = {P.cout, P.xs[1], P.k, P.k};
    memcpy(P.ws, ws, sizeof ws);
    CHECK_OK(collapse_conv2d_output_shape(P.xs, P.ws, P.stride, P.pad, P.h1s, NULL));
    CHECK_OK(collapse_pool2d_output_shape(P.h1s, P.mpk, P.mps, P.h4s));
    CHECK_OK(collapse_pool2d_output_shape(P.h4s, P.apk, P.apk, P.h5s));
    const int64_t N = P.xs[0], C = P.cout;
    P.feat = numel4(P.h5s) / N;
    P.eps = fx_get(fx, "bn_eps", 1)[0];
    P.momentum = fx_get(fx, "bn_momentum", 1)[0];
    const double *lab = fx_get(fx, "labels", (int)N);
    for (int64_t i = 0; i < N && i < 16; i++) P.labels[i] = (int32_t)lab[i];
    P.x = fx_get(fx, "x", (int)numel4(P.xs));
    P.W = fx_get(fx, "conv_weight", (int)numel4(P.ws));
    P.b = fx_get(fx, "conv_bias", (int)C);
    P.gamma = fx_get(fx, "gamma", (int)C);
    P.beta = fx_get(fx, "beta", (int)C);
    P.lw = fx_get(fx, "lin_weight", (int)(P.classes * P.feat));
    P.lb = fx_get(fx, "lin_bias", (int)P.classes);
    const double *rm0 = fx_get(fx, "running_mean0", (int)C), *rv0 = fx_get(fx, "running_var0", (int)C);
    if (!P.x || !P.W || !P.b || !P.gamma || !P.beta || !P.lw || !P.lb || !rm0 || !rv0) return;
    P.rm = copy_of(rm0, C);
    P.rv = copy_of(rv0, C);
    const double tol = f64 ? 1e-10 : 1e-4;
    double worst = 0;
    const int64_t n1 = numel4(P.h1s), n4 = numel4(P.h4s), n5 = numel4(P.h5s);
    for (int mode = 0; mode < 2; mode++) {
        net_out o;
        if (f64) net_run_f64(&P, mode == 0, &o);
        else net_run_f32(&P, mode == 0, &o);
        const char *p = mode ? "eval." : "train.";
        char name[64];
        struct { const char *s; const double *v; int64_t len; } outs[] = {
            {"conv_out", o.conv_out, n1},       {"bn_out", o.bn_out, n1},
            {"relu_out", o.relu_out, n1},       {"maxpool_out", o.maxpool_out, n4},
            {"avgpool_out", o.avgpool_out, n5}, {"logits", o.logits, N * P.classes},
            {"loss", &o.loss, 1},               {"gx", o.gx, numel4(P.xs)},
            {"g_conv_out", o.g_conv_out, n1},   {"g_relu", o.g_relu, n1},
            {"g_conv_weight", o.g_conv_weight, numel4(P.ws)}, {"g_conv_bias", o.g_conv_bias, C},
            {"g_gamma", o.g_gamma, C},          {"g_beta", o.g_beta, C},
            {"g_lin_weight", o.g_lin_weight, P.classes * P.feat}, {"g_lin_bias", o.g_lin_bias, P.classes}};
        for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
            snprintf(name, sizeof name, "%s%s", p, outs[k].s);
            vs_torch(fx, name, outs[k].v, outs[k].len, tol, &worst);
        }
        snprintf(name, sizeof name, "%smaxpool_indices", p);
        vs_torch(fx, name, o.maxpool_indices, n4, 0, &worst);
        if (mode == 0) {
            vs_torch(fx, "running_mean1", P.rm, C, tol, &worst);
            vs_torch(fx, "running_var1", P.rv, C, tol, &worst);
        }
        net_out_free(&o);
    }
    printf("torch conv network (%s): max error %.3g\n", f64 ? "float64" : "float32", worst);
    if (f64 && worst > worst_torch) worst_torch = worst;
    free(P.rm);
    free(P.rv);
}

int main(void) {
    /* conv2d: the brief's stride 2 / padding 1 on a non-square input, no padding, the direct 1x1
     * path, a strided 1x1, a rectangular kernel with stride > kernel and padding > kernel / 2,
     * a kernel larger than the unpadded input, and more channels than one gemm block */
    test_conv(2, 3, 7, 6, 4, 3, 3, 2, 1, 1);
    test_conv(2, 3, 7, 6, 4, 3, 3, 2, 1, 0);
    test_conv(2, 2, 5, 8, 3, 3, 3, 1, 0, 0);
    test_conv(2, 3, 4, 5, 2, 1, 1, 1, 0, 1);
    test_conv(1, 3, 5, 4, 2, 1, 1, 2, 0, 1);
    test_conv(2, 2, 6, 5, 3, 2, 3, 3, 2, 1);
    test_conv(1, 2, 2, 3, 2, 4, 4, 1, 2, 1);
    test_conv(1, 1, 9, 1, 1, 3, 1, 2, 1, 1);
    test_conv(1, 17, 3, 3, 5, 2, 2, 1, 1, 1);
    /* batchnorm2d: train and eval, with and without affine, 2 values per channel */
    test_batchnorm2d(2, 3, 4, 5, 1, 0, 1);
    test_batchnorm2d(2, 3, 4, 5, 0, 0, 1);
    test_batchnorm2d(3, 2, 3, 1, 1, 0, 1);
    test_batchnorm2d(1, 3, 2, 1, 1, 0, 0.005);
    test_batchnorm2d(2, 1, 1, 1, 1, 0, 0.005);
    test_batchnorm2d(2, 3, 4, 5, 1, 1, 1);
    test_batchnorm2d(2, 3, 4, 5, 0, 1, 1);
    test_batchnorm2d(1, 2, 1, 1, 1, 1, 1);
    /* pooling away from ties: non-overlapping, overlapping, floor-mode leftovers, stride > kernel */
    for (int avg = 0; avg < 2; avg++) {
        test_pool(avg, 2, 3, 7, 6, 2, 2);
        test_pool(avg, 2, 2, 7, 6, 3, 2);
        test_pool(avg, 1, 2, 5, 5, 2, 1);
        test_pool(avg, 2, 1, 8, 9, 2, 3);
        test_pool(avg, 1, 1, 4, 3, 3, 1);
        test_pool(avg, 1, 2, 3, 3, 1, 1);
    }
    test_maxpool_ties();
    test_errors();
    fixture fx;
    CHECK(fixture_load(&fx, "spec/fixtures/torch_conv/layers.txt"));
    if (fx.n) test_torch_layers(&fx);
    fixture_free(&fx);
    CHECK(fixture_load(&fx, "spec/fixtures/torch_conv/conv_net.txt"));
    if (fx.n) {
        test_torch_network(&fx, 1);
        test_torch_network(&fx, 0);
    }
    fixture_free(&fx);
    printf("max relative error: finite differences %.3g, direct loops %.3g, float32 vs float64 %.3g, "
           "float64 vs torch %.3g\n", worst_fd, worst_direct, worst_f32, worst_torch);
    return check_report("test_conv");
}
