/* The tensor-level kernels (collapse_linear_forward, ..., collapse_adam_step_many) against the raw
 * _f64 tier they dispatch to (itself tested against PyTorch and finite differences in test_nn,
 * test_conv, test_optim): bitwise the same numbers, outputs resized from any buffer, and every bad
 * argument an error naming the kernel and the argument. */
#include "check.h"

static collapse_rng g;

static collapse_tensor *rnd(int ndim, const int64_t *shape) {
    collapse_tensor *t = NULL;
    collapse_tensor_new(COLLAPSE_FLOAT64, ndim, shape, &t);
    collapse_tensor_randn(t, &g);
    return t;
}

static collapse_tensor *empty(collapse_dtype dt) {
    int64_t zero = 0;
    collapse_tensor *t = NULL;
    collapse_tensor_new(dt, 1, &zero, &t);
    return t;
}

static double *D(const collapse_tensor *t) { return collapse_tensor_data(t); }

static int same(const collapse_tensor *t, const double *ref, int64_t n) {
    if (collapse_tensor_numel(t) != n) return 0;
    return memcmp(D(t), ref, (size_t)n * sizeof(double)) == 0;
}

static void test_linear(void) {
    const int64_t n = 5, in = 4, out = 3;
    collapse_tensor *x = rnd(2, (int64_t[]){n, in}), *W = rnd(2, (int64_t[]){out, in}), *b = rnd(1, (int64_t[]){out});
    collapse_tensor *y = empty(COLLAPSE_FLOAT64), *gy = rnd(2, (int64_t[]){n, out}), *gx = empty(COLLAPSE_FLOAT64);
    collapse_tensor *gW = NULL, *gb = NULL;
    collapse_tensor_new(COLLAPSE_FLOAT64, 2, (int64_t[]){out, in}, &gW);
    collapse_tensor_new(COLLAPSE_FLOAT64, 1, (int64_t[]){out}, &gb);
    double ry[15], rgx[20], rgW[12] = {0}, rgb[3] = {0};
    CHECK_OK(collapse_linear_forward_f64(n, in, out, D(x), ry, D(W), D(b)));
    CHECK_OK(collapse_linear_forward(x, y, W, b));
    CHECK(collapse_tensor_ndim(y) == 2 && collapse_tensor_size(y, 0) == n && collapse_tensor_size(y, 1) == out);
    CHECK(same(y, ry, n * out));
    CHECK_OK(collapse_linear_backward_f64(n, in, out, D(x), D(gy), rgx, D(W), rgW, rgb));
    CHECK_OK(collapse_linear_backward(x, gy, gx, W, gW, gb));
    CHECK(same(gx, rgx, n * in) && same(gW, rgW, out * in) && same(gb, rgb, out));
    CHECK_OK(collapse_linear_backward(x, gy, NULL, W, gW, NULL)); /* no input gradient, no bias */
    /* errors name the kernel, the argument and what was expected */
    collapse_tensor *bad = rnd(2, (int64_t[]){2, 5}), *t = NULL;
    CHECK_FAILS(collapse_linear_forward(bad, y, W, b),
                "linear_forward: size mismatch, input [2 x 5], expected [n x 4] (weight is [3 x 4])");
    CHECK_FAILS(collapse_linear_forward(x, y, W, gy), "linear_forward: size mismatch, bias [5 x 3], expected [3]");
    CHECK_FAILS(collapse_linear_forward(x, NULL, W, b), "linear_forward: output is NULL");
    CHECK_FAILS(collapse_linear_forward(x, x, W, b), "linear_forward: output and input must be different tensors");
    CHECK_FAILS(collapse_linear_forward(x, y, NULL, b), "linear_forward: weight is NULL");
    collapse_tensor *f32 = empty(COLLAPSE_FLOAT32);
    CHECK_FAILS(collapse_linear_forward(x, f32, W, b), "linear_forward: output is float32, expected float64");
    CHECK_OK(collapse_tensor_transpose(bad, &t)); /* [5 x 2], not contiguous */
    collapse_tensor *W2 = rnd(2, (int64_t[]){3, 2});
    CHECK_FAILS(collapse_linear_forward(t, y, W2, NULL), "linear_forward: input must be contiguous");
    CHECK_FAILS(collapse_linear_backward(x, y, gx, W, bad, gb), "linear_backward: size mismatch, grad_weight [2 x 5]");
    collapse_tensor *view = NULL;
    CHECK_OK(collapse_tensor_narrow(gW, 0, 0, 1, &view));
    CHECK_FAILS(collapse_linear_forward(x, view, W, b), "linear_forward: output: tensor_resize: cannot resize a view");
    collapse_tensor *list[] = {x, W, b, y, gy, gx, gW, gb, bad, t, f32, W2, view};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++) collapse_tensor_release(list[i]);
}

static void test_batchnorm(void) {
    const int64_t n = 6, f = 3;
    collapse_tensor *x = rnd(2, (int64_t[]){n, f}), *gamma = rnd(1, (int64_t[]){f}), *beta = rnd(1, (int64_t[]){f});
    collapse_tensor *rm = rnd(1, (int64_t[]){f}), *rv = NULL, *gy = rnd(2, (int64_t[]){n, f});
    collapse_tensor_new(COLLAPSE_FLOAT64, 1, (int64_t[]){f}, &rv);
    collapse_tensor_fill(rv, 1.5);
    double rrm[3], rrv[3], ry[18], rsm[3], rsi[3], rgx[18], rgg[3] = {0}, rgb[3] = {0};
    memcpy(rrm, D(rm), sizeof rrm);
    memcpy(rrv, D(rv), sizeof rrv);
    CHECK_OK(collapse_batchnorm_relu_forward_train_f64(n, f, D(x), ry, D(gamma), D(beta), rrm, rrv, rsm, rsi, 0.1,
                                                       1e-5));
    collapse_tensor *y = empty(COLLAPSE_FLOAT64), *sm = empty(COLLAPSE_FLOAT64), *si = empty(COLLAPSE_FLOAT64);
    CHECK_OK(collapse_batchnorm_relu_forward(x, y, gamma, beta, rm, rv, sm, si, 0.1, 1e-5));
    CHECK(same(y, ry, n * f) && same(sm, rsm, f) && same(si, rsi, f) && same(rm, rrm, f) && same(rv, rrv, f));
    CHECK_OK(collapse_batchnorm_relu_backward_train_f64(n, f, D(x), ry, D(gy), rgx, D(gamma), rgg, rgb, rsm, rsi));
    collapse_tensor *gx = empty(COLLAPSE_FLOAT64), *gg = NULL, *gb = NULL;
    collapse_tensor_new(COLLAPSE_FLOAT64, 1, (int64_t[]){f}, &gg);
    collapse_tensor_new(COLLAPSE_FLOAT64, 1, (int64_t[]){f}, &gb);
    CHECK_OK(collapse_batchnorm_relu_backward(x, y, gy, gx, gamma, gg, gb, sm, si));
    CHECK(same(gx, rgx, n * f) && same(gg, rgg, f) && same(gb, rgb, f));
    /* eval mode: the running statistics, no save buffers needed */
    CHECK_OK(collapse_batchnorm_forward_eval_f64(n, f, D(x), ry, D(gamma), D(beta), D(rm), D(rv), 1e-5));
    CHECK_OK(collapse_batchnorm_forward(x, y, gamma, beta, rm, rv, NULL, NULL, 0, 0.1, 1e-5));
    CHECK(same(y, ry, n * f));
    CHECK_FAILS(collapse_batchnorm_forward(x, y, gamma, beta, NULL, rv, NULL, NULL, 0, 0.1, 1e-5),
                "batchnorm_forward: running_mean is NULL");
    CHECK_FAILS(collapse_batchnorm_forward(x, y, gy, beta, rm, rv, sm, si, 1, 0.1, 1e-5),
                "batchnorm_forward: size mismatch, weight [6 x 3], expected [3]");
    collapse_tensor *one = rnd(2, (int64_t[]){1, f});
    CHECK_FAILS(collapse_batchnorm_forward(one, y, gamma, beta, rm, rv, sm, si, 1, 0.1, 1e-5),
                "training needs a batch of at least 2 samples, got 1");
    collapse_tensor *list[] = {x, gamma, beta, rm, rv, gy, y, sm, si, gx, gg, gb, one};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++) collapse_tensor_release(list[i]);
}

static void test_activations_and_loss(void) {
    collapse_tensor *x = rnd(3, (int64_t[]){2, 3, 4}), *gy = rnd(3, (int64_t[]){2, 3, 4});
    collapse_tensor *y = empty(COLLAPSE_FLOAT64), *gx = empty(COLLAPSE_FLOAT64);
    double ry[24], rgx[24];
    CHECK_OK(collapse_tanh_forward_f64(24, D(x), ry));
    CHECK_OK(collapse_tanh_forward(x, y));
    CHECK(collapse_tensor_ndim(y) == 3 && same(y, ry, 24));
    CHECK_OK(collapse_tanh_backward_f64(24, ry, D(gy), rgx));
    CHECK_OK(collapse_tanh_backward(y, gy, gx));
    CHECK(same(gx, rgx, 24));
    CHECK_OK(collapse_relu_forward_f64(24, D(x), ry));
    CHECK_OK(collapse_relu_forward(x, y));
    CHECK(same(y, ry, 24));
    CHECK_FAILS(collapse_relu_backward(y, x, y), "relu_backward: grad_input and output must be different tensors");
    collapse_tensor *gy2 = rnd(2, (int64_t[]){4, 6});
    CHECK_FAILS(collapse_relu_backward(y, gy2, gx), "relu_backward: size mismatch, grad_output [4 x 6], expected [2 x 3 x 4]");
    /* cross-entropy: int32 labels, loss through a pointer */
    collapse_tensor *logits = rnd(2, (int64_t[]){4, 3}), *labels = NULL, *grad = empty(COLLAPSE_FLOAT64);
    int32_t lab[4] = {1, 3, 2, 3};
    collapse_tensor_from_data(COLLAPSE_INT32, 1, (int64_t[]){4}, lab, &labels);
    double rloss = 0, loss = 0, rgrad[12];
    CHECK_OK(collapse_cross_entropy_forward_f64(4, 3, D(logits), lab, &rloss, rgrad));
    CHECK_OK(collapse_cross_entropy(logits, labels, &loss, grad));
    CHECK(loss == rloss && same(grad, rgrad, 12));
    CHECK_FAILS(collapse_cross_entropy(logits, logits, &loss, grad), "cross_entropy: labels is float64, expected int32");
    lab[2] = 4;
    collapse_tensor *bad = NULL;
    collapse_tensor_from_data(COLLAPSE_INT32, 1, (int64_t[]){4}, lab, &bad);
    CHECK_FAILS(collapse_cross_entropy(logits, bad, &loss, NULL), "cross_entropy: label 4 at position 2 is outside 1..3");
    collapse_tensor *list[] = {x, gy, y, gx, gy2, logits, labels, grad, bad};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++) collapse_tensor_release(list[i]);
}

static void test_conv_and_pool(void) {
    const int64_t xs[4] = {2, 3, 7, 6}, ws[4] = {4, 3, 3, 3};
    collapse_tensor *x = rnd(4, xs), *W = rnd(4, ws), *b = rnd(1, (int64_t[]){4});
    int64_t ys[4], ncol = 0;
    CHECK_OK(collapse_conv2d_output_shape(xs, ws, 2, 1, ys, &ncol));
    int64_t ny = ys[0] * ys[1] * ys[2] * ys[3];
    double *ry = calloc((size_t)ny, sizeof *ry), *col = calloc((size_t)ncol, sizeof *col);
    CHECK_OK(collapse_conv2d_forward_f64(xs, ws, D(x), ry, D(W), D(b), col, 2, 1));
    collapse_tensor *y = empty(COLLAPSE_FLOAT64), *cols = empty(COLLAPSE_FLOAT64);
    CHECK_OK(collapse_conv2d_forward(x, y, W, b, cols, 2, 1));
    CHECK(same(y, ry, ny) && collapse_tensor_numel(cols) == ncol);
    CHECK_OK(collapse_conv2d_forward(x, y, W, b, NULL, 2, 1)); /* a temporary scratch */
    CHECK(same(y, ry, ny));
    collapse_tensor *gx = empty(COLLAPSE_FLOAT64), *gW = NULL;
    collapse_tensor_new(COLLAPSE_FLOAT64, 4, ws, &gW);
    double *rgx = calloc(2 * 3 * 7 * 6, sizeof *rgx), *rgW = calloc(4 * 27, sizeof *rgW);
    CHECK_OK(collapse_conv2d_backward_f64(xs, ws, D(x), ry, rgx, D(W), rgW, NULL, col, 2, 1));
    CHECK_OK(collapse_conv2d_backward(x, y, gx, W, gW, NULL, cols, 2, 1));
    CHECK(same(gx, rgx, 2 * 3 * 7 * 6) && same(gW, rgW, 4 * 27));
    collapse_tensor *W4 = rnd(4, (int64_t[]){4, 4, 3, 3});
    CHECK_FAILS(collapse_conv2d_forward(x, y, W4, b, cols, 2, 1), "conv2d_output_shape: input has 3 channels, weight expects 4");
    collapse_tensor_release(W4);
    /* pooling */
    collapse_tensor *p = empty(COLLAPSE_FLOAT64), *idx = empty(COLLAPSE_INT32), *gp = empty(COLLAPSE_FLOAT64);
    CHECK_OK(collapse_pool2d_output_shape(xs, 2, 2, ys));
    double rp[2 * 3 * 3 * 3], rgp[2 * 3 * 7 * 6];
    int32_t ridx[2 * 3 * 3 * 3];
    CHECK_OK(collapse_maxpool2d_forward_f64(xs, D(x), rp, ridx, 2, 2));
    CHECK_OK(collapse_maxpool2d_forward(x, p, idx, 2, 2));
    CHECK(same(p, rp, 54) && !memcmp(collapse_tensor_data(idx), ridx, sizeof ridx));
    CHECK_OK(collapse_maxpool2d_backward_f64(xs, rp, rgp, ridx, 2, 2));
    CHECK_OK(collapse_maxpool2d_backward(x, p, gp, idx, 2, 2));
    CHECK(same(gp, rgp, 2 * 3 * 7 * 6));
    CHECK_OK(collapse_avgpool2d_forward_f64(xs, D(x), rp, 2, 2));
    CHECK_OK(collapse_avgpool2d_forward(x, p, 2, 2));
    CHECK(same(p, rp, 54));
    CHECK_FAILS(collapse_maxpool2d_backward(x, p, gp, p, 2, 2), "maxpool2d_backward: indices is float64, expected int32");
    free(ry), free(col), free(rgx), free(rgW);
    collapse_tensor *list[] = {x, W, b, y, cols, gx, gW, p, idx, gp};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++) collapse_tensor_release(list[i]);
}

static collapse_tensor *zeros_like(const collapse_tensor *t) {
    collapse_tensor *z = NULL;
    collapse_tensor_new(collapse_tensor_dtype(t), collapse_tensor_ndim(t), collapse_tensor_shape(t), &z);
    return z;
}

/* One fused call over two tensors equals the raw rule on each; zero_grad in the same pass. */
static void test_step_many(void) {
    collapse_tensor *x[2] = {rnd(1, (int64_t[]){5}), rnd(2, (int64_t[]){2, 3})};
    collapse_tensor *gr[2] = {rnd(1, (int64_t[]){5}), rnd(2, (int64_t[]){2, 3})};
    collapse_tensor *m[2] = {zeros_like(x[0]), zeros_like(x[1])}, *v[2] = {zeros_like(x[0]), zeros_like(x[1])};
    double rx[2][6], rg[2][6], rm[2][6] = {{0}}, rv[2][6] = {{0}};
    const int64_t len[2] = {5, 6};
    const double wd[2] = {0.5, 0};
    for (int i = 0; i < 2; i++) {
        memcpy(rx[i], D(x[i]), (size_t)len[i] * sizeof(double));
        memcpy(rg[i], D(gr[i]), (size_t)len[i] * sizeof(double));
    }
    for (int step = 1; step <= 2; step++) {
        for (int i = 0; i < 2; i++)
            CHECK_OK(collapse_adam_step_f64(len[i], rx[i], rg[i], rm[i], rv[i], step, 0.01, 0.9, 0.999, 1e-8, wd[i], 0));
        CHECK_OK(collapse_adam_step_many(2, x, gr, m, v, wd, step, 0.01, 0.9, 0.999, 1e-8, 0, step == 2));
    }
    for (int i = 0; i < 2; i++) {
        CHECK(same(x[i], rx[i], len[i]) && same(m[i], rm[i], len[i]) && same(v[i], rv[i], len[i]));
        double norm = 1;
        collapse_tensor_norm(gr[i], &norm);
        CHECK(norm == 0); /* zeroed with the second step */
    }
    /* SGD with momentum: the ready flags are per tensor */
    collapse_tensor *buf[2] = {zeros_like(x[0]), zeros_like(x[1])};
    int ready[2] = {0, 0}, rready = 0;
    collapse_tensor_fill(gr[0], 0.5);
    collapse_tensor_fill(gr[1], 0.5);
    double sx[6], sg[6], sb[6];
    memcpy(sx, D(x[1]), sizeof sx);
    for (int k = 0; k < 6; k++) sg[k] = 0.5;
    for (int step = 0; step < 2; step++) {
        CHECK_OK(collapse_sgd_step_f64(6, sx, sg, sb, &rready, 0.1, 0.9, 0, 0, 0));
        CHECK_OK(collapse_sgd_step_many(2, x, gr, buf, ready, NULL, 0.1, 0.9, 0, 0, 0));
    }
    CHECK(ready[0] == 1 && ready[1] == 1 && same(x[1], sx, 6) && same(buf[1], sb, 6));
    /* everything is checked before anything is written */
    double before[5];
    memcpy(before, D(x[0]), sizeof before);
    collapse_tensor *wrong[2] = {gr[0], x[0]};
    CHECK_FAILS(collapse_adam_step_many(2, x, wrong, m, v, NULL, 3, 0.01, 0.9, 0.999, 1e-8, 0, 0),
                "adam_step_many: size mismatch, grad 1 [5], expected [2 x 3]");
    CHECK(same(x[0], before, 5));
    CHECK_FAILS(collapse_adam_step_many(2, x, gr, NULL, v, NULL, 3, 0.01, 0.9, 0.999, 1e-8, 0, 0),
                "adam_step_many: the exp_avg and exp_avg_sq lists must not be NULL");
    CHECK_OK(collapse_zero_grad_many(2, x));
    double norm = 1;
    collapse_tensor_norm(x[1], &norm);
    CHECK(norm == 0);
    /* zero_grad_many writes only the elements of a view: a contiguous row range (memset path)
     * and a strided column (fill path) of float32 matrices, the rest untouched */
    collapse_tensor *big, *rows, *col;
    CHECK_OK(collapse_tensor_new(COLLAPSE_FLOAT32, 2, (int64_t[]){4, 3}, &big));
    CHECK_OK(collapse_tensor_fill(big, 7));
    CHECK_OK(collapse_tensor_narrow(big, 0, 1, 2, &rows));
    CHECK_OK(collapse_tensor_narrow(big, 1, 2, 1, &col));
    CHECK(collapse_tensor_is_contiguous(rows) && !collapse_tensor_is_contiguous(col));
    collapse_tensor *views[2] = {rows, col};
    CHECK_OK(collapse_zero_grad_many(2, views));
    const float *bf = collapse_tensor_data(big);
    static const float want[12] = {7, 7, 0, 0, 0, 0, 0, 0, 0, 7, 7, 0};
    CHECK(memcmp(bf, want, sizeof want) == 0);
    collapse_tensor_release(rows), collapse_tensor_release(col), collapse_tensor_release(big);
    for (int i = 0; i < 2; i++) {
        collapse_tensor_release(x[i]), collapse_tensor_release(gr[i]), collapse_tensor_release(m[i]);
        collapse_tensor_release(v[i]), collapse_tensor_release(buf[i]);
    }
}

int main(void) {
    collapse_rng_seed(&g, 11);
    test_linear();
    test_batchnorm();
    test_activations_and_loss();
    test_conv_and_pool();
    test_step_many();
    return check_report("test_tensor_kernels");
}
