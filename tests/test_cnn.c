/* C unit tests of the CNN kernels (csrc/nn/dropout.c, gap2d.c, residual.c) through their
 * tensor-level entry points: finite-difference Jacobians in float64, direct references, float32
 * vs float64, mask statistics and reproducibility, output resizing and argument errors. */
#define GRADCHECK_SEED 9009u
#include "check.h"
#include "gradcheck.h"
#include "collapse.h"

/* A new float64 tensor holding a (len values) in the given shape. */
static collapse_tensor *tensor_of(const double *a, int ndim, const int64_t *shape) {
    collapse_tensor *t = NULL;
    CHECK_OK(collapse_tensor_from_data(COLLAPSE_FLOAT64, ndim, shape, a, &t));
    return t;
}
static collapse_tensor *empty(collapse_dtype dt) {
    collapse_tensor *t = NULL;
    int64_t zero = 0;
    CHECK_OK(collapse_tensor_new(dt, 1, &zero, &t));
    return t;
}
static double *data64(collapse_tensor *t) { return collapse_tensor_data(t); }

/* ---- global average pooling --------------------------------------------------------------- */
typedef struct {
    collapse_tensor *x, *y;
    double *r;
} gap_ctx;

static double gap_obj(void *p) {
    gap_ctx *c = p;
    CHECK_OK(collapse_global_avg_pool2d_forward(c->x, c->y));
    return dot(c->r, data64(c->y), collapse_tensor_numel(c->y));
}

static void test_gap(void) {
    const int64_t s[4] = {2, 3, 4, 5};
    double *x = randn(120, 1), *r = randn(6, 1);
    gap_ctx c = {tensor_of(x, 4, s), empty(COLLAPSE_FLOAT64), r};
    gap_obj(&c);
    CHECK(collapse_tensor_ndim(c.y) == 2 && collapse_tensor_size(c.y, 0) == 2 && collapse_tensor_size(c.y, 1) == 3);
    for (int p = 0; p < 6; p++) { /* direct: the plane means */
        double m = 0;
        for (int i = 0; i < 20; i++) m += x[p * 20 + i];
        CHECK_CLOSE(data64(c.y)[p], m / 20, 1e-15);
    }
    collapse_tensor *gy = tensor_of(r, 2, (const int64_t[]){2, 3}), *gx = empty(COLLAPSE_FLOAT64);
    CHECK_OK(collapse_global_avg_pool2d_backward(c.x, gy, gx));
    fd_check("global_avg_pool2d input", gap_obj, &c, data64(c.x), 120, data64(gx));
    /* float32 against float64 */
    float *xf = to_f32(x, 120), *yf = fzeros(6);
    collapse_tensor *x32 = NULL, *y32 = empty(COLLAPSE_FLOAT32);
    CHECK_OK(collapse_tensor_from_data(COLLAPSE_FLOAT32, 4, s, xf, &x32));
    CHECK_OK(collapse_global_avg_pool2d_forward(x32, y32));
    memcpy(yf, collapse_tensor_data(y32), 6 * sizeof *yf);
    check_f32("global_avg_pool2d f32", yf, data64(c.y), 6, 1e-5);
    free(xf);
    free(yf);
    /* errors */
    CHECK_FAILS(collapse_global_avg_pool2d_forward(gy, c.y), "global_avg_pool2d_forward: size mismatch, input [2 x 3]");
    CHECK_FAILS(collapse_global_avg_pool2d_forward(x32, c.y), "output is float64, expected float32");
    CHECK_FAILS(collapse_global_avg_pool2d_forward(c.x, c.x), "output and input must be different tensors");
    CHECK_FAILS(collapse_global_avg_pool2d_backward(c.x, c.x, gx), "grad_output [2 x 3 x 4 x 5], expected [2 x 3]");
    CHECK_FAILS(collapse_global_avg_pool2d_forward(NULL, c.y), "input is NULL");
    collapse_tensor_release(x32);
    collapse_tensor_release(y32);
    collapse_tensor_release(gy);
    collapse_tensor_release(gx);
    collapse_tensor_release(c.x);
    collapse_tensor_release(c.y);
    free(x);
    free(r);
}

/* ---- dropout -------------------------------------------------------------------------------- */
typedef struct {
    collapse_tensor *x, *y, *mask;
    double *r, p;
    uint64_t seed;
} drop_ctx;

static double drop_obj(void *v) { /* the same seed every time: the same mask */
    drop_ctx *c = v;
    collapse_rng g;
    collapse_rng_seed(&g, c->seed);
    CHECK_OK(collapse_dropout_forward(c->x, c->y, c->mask, c->p, &g));
    return dot(c->r, data64(c->y), collapse_tensor_numel(c->y));
}

static void test_dropout_grad(void) {
    const int64_t s[2] = {6, 7};
    double *x = randn(42, 1), *r = randn(42, 1);
    drop_ctx c = {tensor_of(x, 2, s), empty(COLLAPSE_FLOAT64), empty(COLLAPSE_FLOAT64), r, 0.4, 77};
    drop_obj(&c);
    collapse_tensor *gy = tensor_of(r, 2, s), *gx = empty(COLLAPSE_FLOAT64);
    CHECK_OK(collapse_dropout_backward(gy, gx, c.mask));
    fd_check("dropout input", drop_obj, &c, data64(c.x), 42, data64(gx));
    const double *m = data64(c.mask);
    int zeros = 0;
    for (int i = 0; i < 42; i++) {
        CHECK(m[i] == 0 || m[i] == 1 / 0.6);
        zeros += m[i] == 0;
        CHECK(data64(c.y)[i] == x[i] * m[i]);
    }
    CHECK(zeros > 0 && zeros < 42);
    /* in place: gx may be gy */
    CHECK_OK(collapse_dropout_backward(gy, gy, c.mask));
    CHECK(rel_err(data64(gy), data64(gx), 42) == 0);
    /* p = 1 zeroes everything (PyTorch), p = 0 keeps everything unscaled */
    collapse_rng g;
    collapse_rng_seed(&g, 1);
    CHECK_OK(collapse_dropout_forward(c.x, c.y, c.mask, 1.0, &g));
    double nz = 0;
    for (int i = 0; i < 42; i++) nz += fabs(data64(c.y)[i]) + fabs(data64(c.mask)[i]);
    CHECK(nz == 0);
    CHECK_OK(collapse_dropout_forward(c.x, c.y, c.mask, 0.0, &g));
    CHECK(rel_err(data64(c.y), x, 42) == 0);
    /* errors */
    CHECK_FAILS(collapse_dropout_forward(c.x, c.y, c.mask, 1.5, &g), "dropout_forward: p must be in [0, 1], got 1.5");
    CHECK_FAILS(collapse_dropout_forward(c.x, c.y, c.mask, NAN, &g), "p must be in [0, 1]");
    CHECK_FAILS(collapse_dropout_forward(c.x, c.y, c.mask, 0.5, NULL), "dropout_forward: rng is NULL");
    CHECK_FAILS(collapse_dropout_forward(c.x, c.y, c.y, 0.5, &g), "mask and output must be different tensors");
    CHECK_FAILS(collapse_dropout_forward(c.x, c.x, c.mask, 0.5, &g), "output and input must be different tensors");
    collapse_tensor *bad = tensor_of(x, 2, (const int64_t[]){7, 6});
    CHECK_FAILS(collapse_dropout_backward(bad, gx, c.mask), "dropout_backward: size mismatch, grad_output [7 x 6], "
                                                            "expected [6 x 7] (the mask of the forward)");
    collapse_tensor_release(bad);
    collapse_tensor_release(gy);
    collapse_tensor_release(gx);
    collapse_tensor_release(c.x);
    collapse_tensor_release(c.y);
    collapse_tensor_release(c.mask);
    free(x);
    free(r);
}

/* The fraction kept over 10^5 elements is binomial(n, 1 - p): within 5 standard deviations;
 * the same seed gives the same mask, in float32 and float64 alike. */
static void test_dropout_stats(void) {
    const int64_t n = 100000;
    double *x = zeros(n);
    for (int64_t i = 0; i < n; i++) x[i] = 1;
    collapse_tensor *x64 = tensor_of(x, 1, &n), *x32 = NULL;
    CHECK_OK(collapse_tensor_to(x64, COLLAPSE_FLOAT32, &x32));
    collapse_tensor *y64 = empty(COLLAPSE_FLOAT64), *m64 = empty(COLLAPSE_FLOAT64);
    collapse_tensor *y32 = empty(COLLAPSE_FLOAT32), *m32 = empty(COLLAPSE_FLOAT32);
    const double ps[3] = {0.1, 0.5, 0.8};
    for (int k = 0; k < 3; k++) {
        collapse_rng a, b;
        collapse_rng_seed(&a, 1234);
        collapse_rng_seed(&b, 1234);
        CHECK_OK(collapse_dropout_forward(x64, y64, m64, ps[k], &a));
        CHECK_OK(collapse_dropout_forward(x32, y32, m32, ps[k], &b));
        int64_t kept = 0, same = 0;
        const double *m = data64(m64);
        const float *mf = collapse_tensor_data(m32);
        for (int64_t i = 0; i < n; i++) {
            kept += m[i] != 0;
            same += (m[i] != 0) == (mf[i] != 0);
        }
        double q = 1 - ps[k], sd = sqrt(n * q * (1 - q));
        CHECK(fabs((double)kept - n * q) < 5 * sd);
        CHECK(same == n);
        double sum = 0;
        CHECK_OK(collapse_tensor_sum_all(y64, &sum));
        CHECK_CLOSE(sum, (double)kept / q, 1e-9); /* every kept value is exactly 1 / (1 - p) */
    }
    collapse_tensor_release(x64);
    collapse_tensor_release(x32);
    collapse_tensor_release(y64);
    collapse_tensor_release(m64);
    collapse_tensor_release(y32);
    collapse_tensor_release(m32);
    free(x);
}

/* ---- residual sums -------------------------------------------------------------------------- */
typedef struct {
    collapse_tensor *a, *b, *y;
    double *r;
    int relu;
} add_ctx;

static double add_obj(void *v) {
    add_ctx *c = v;
    CHECK_OK(c->relu ? collapse_add_relu_forward(c->a, c->b, c->y) : collapse_add_forward(c->a, c->b, c->y));
    return dot(c->r, data64(c->y), collapse_tensor_numel(c->y));
}

static void test_add(int relu) {
    const int64_t s[4] = {2, 3, 2, 3};
    double *a = randn(36, 1), *b = randn(36, 1), *r = randn(36, 1);
    add_ctx c = {tensor_of(a, 4, s), tensor_of(b, 4, s), empty(COLLAPSE_FLOAT64), r, relu};
    add_obj(&c);
    for (int i = 0; i < 36; i++) CHECK(data64(c.y)[i] == (relu && a[i] + b[i] <= 0 ? 0 : a[i] + b[i]));
    /* the gradient at a and at b is gy masked by the ReLU's output (gy itself without ReLU) */
    collapse_tensor *gy = tensor_of(r, 4, s), *g = empty(COLLAPSE_FLOAT64);
    if (relu) CHECK_OK(collapse_relu_mask_backward(c.y, gy, g));
    else {
        double *same = copy_of(r, 36); /* without the ReLU the gradient is gy itself */
        collapse_tensor_release(g);
        g = tensor_of(same, 4, s);
        free(same);
    }
    fd_check(relu ? "add_relu a" : "add a", add_obj, &c, data64(c.a), 36, data64(g));
    fd_check(relu ? "add_relu b" : "add b", add_obj, &c, data64(c.b), 36, data64(g));
    /* y may be a (in place) */
    CHECK_OK(collapse_add_forward(c.a, c.b, c.a));
    for (int i = 0; i < 36; i++) CHECK(data64(c.a)[i] == a[i] + b[i]);
    collapse_tensor *wrong = tensor_of(a, 2, (const int64_t[]){6, 6});
    CHECK_FAILS(collapse_add_forward(c.a, wrong, c.y), "add_forward: size mismatch, b [6 x 6], expected [2 x 3 x 2 x 3] "
                                                       "(a is [2 x 3 x 2 x 3])");
    CHECK_FAILS(collapse_relu_mask_backward(c.y, wrong, g), "relu_mask_backward: size mismatch, grad_output [6 x 6]");
    CHECK_FAILS(collapse_relu_mask_backward(c.y, gy, c.y), "grad_input and output must be different tensors");
    collapse_tensor *i32 = empty(COLLAPSE_INT32);
    CHECK_FAILS(collapse_add_forward(i32, c.b, c.y), "add_forward: a must be float32 or float64, got int32");
    collapse_tensor_release(i32);
    collapse_tensor_release(wrong);
    collapse_tensor_release(gy);
    collapse_tensor_release(g);
    collapse_tensor_release(c.a);
    collapse_tensor_release(c.b);
    collapse_tensor_release(c.y);
    free(a);
    free(b);
    free(r);
}

/* The 2 x 2 stride-2 max-pool (the branch-free path of pool2d_impl.h, used by the VGG builder)
 * against PyTorch's rule written out: ties (values from {0, 1, 2}), NaN (wins, the last one),
 * -inf windows, an odd plane size (floor mode), float32 and float64. */
static void test_maxpool_2x2(void) {
    const int64_t xs[4] = {2, 3, 5, 7}, n = 2 * 3 * 5 * 7, ho = 2, wo = 3, ny = 2 * 3 * ho * wo;
    double x[210], y[36];
    float xf[210], yf[36];
    int32_t idx[36], idxf[36];
    for (int64_t i = 0; i < n; i++) x[i] = floor(3 * uniform01());
    x[0] = NAN, x[9] = NAN, x[36] = -INFINITY, x[37] = -INFINITY, x[43] = -INFINITY, x[44] = -INFINITY;
    for (int64_t i = 0; i < n; i++) xf[i] = (float)x[i];
    CHECK_OK(collapse_maxpool2d_forward_f64(xs, x, y, idx, 2, 2));
    CHECK_OK(collapse_maxpool2d_forward_f32(xs, xf, yf, idxf, 2, 2));
    for (int64_t p = 0; p < 6; p++)
        for (int64_t oh = 0; oh < ho; oh++)
            for (int64_t ow = 0; ow < wo; ow++) {
                double m = -INFINITY;
                int32_t best = (int32_t)(2 * oh * 7 + 2 * ow);
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        int32_t at = (int32_t)((2 * oh + i) * 7 + 2 * ow + j);
                        double v = x[p * 35 + at];
                        if (v > m || isnan(v)) m = v, best = at;
                    }
                int64_t o = (p * ho + oh) * wo + ow;
                CHECK(idx[o] == best && idxf[o] == best);
                CHECK((isnan(m) && isnan(y[o]) && isnan(yf[o])) || (y[o] == m && yf[o] == (float)m));
            }
    CHECK(isnan(y[0]) && idx[0] == 0 && isnan(y[1]) && idx[1] == 9);
    CHECK(ny == 36);
}

int main(void) {
    test_maxpool_2x2();
    test_gap();
    test_dropout_grad();
    test_dropout_stats();
    test_add(0);
    test_add(1);
    return check_report("test_cnn");
}
