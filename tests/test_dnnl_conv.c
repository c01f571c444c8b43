/* The optional oneDNN path of the float32 conv2d kernels (csrc/nn/dnnl_conv.c) against the
 * library's im2col + gemm kernels (themselves checked against direct loops, finite differences
 * and PyTorch in test_conv.c), on the geometries of the ResNet and VGG builders: 3x3 stride 1 and
 * 2 with padding 1, 1x1 stride 2, odd sizes, with and without bias, and gradient accumulation.
 * Passes trivially (one check) when the library was built without oneDNN. */
#include <stdint.h>

#include "check.h"
#include "collapse.h"
#include "nn/dnnl_conv.h"

static uint64_t state = 777;
static float *randn(int64_t len, double scale) { /* splitmix64 + Box-Muller */
    float *a = malloc((size_t)len * sizeof *a);
    for (int64_t i = 0; i < len; i++) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            uint64_t z = (state += 0x9e3779b97f4a7c15u);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
            u[k] = (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
        }
        a[i] = (float)(scale * sqrt(-2 * log(1 - u[0])) * cos(6.283185307179586 * u[1]));
    }
    return a;
}
static float *fzeros(int64_t len) { return calloc((size_t)len, sizeof(float)); }

/* max |a - b| / max |b| below 1e-5 (float32 sums in another order) */
static void compare(const char *what, const float *a, const float *b, int64_t len) {
    double d = 0, r = 0;
    for (int64_t i = 0; i < len; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d || e != e) d = e != e ? INFINITY : e;
        if (fabs(b[i]) > r) r = fabs(b[i]);
    }
    if (getenv("COLLAPSE_TEST_VERBOSE") || !(d <= 1e-5 * r)) fprintf(stderr, "%s: relative error %.3g\n", what, d / r);
    CHECK(d <= 1e-5 * r);
}

static void test_geometry(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t k, int64_t s, int64_t p,
                          int bias) {
    const int64_t xs[4] = {N, C, H, W}, ws[4] = {O, C, k, k};
    const int64_t Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    const int64_t nx = N * C * H * W, nw = O * C * k * k, ny = N * O * Ho * Wo, ncol = C * k * k * Ho * Wo;
    float *x = randn(nx, 1), *w = randn(nw, 0.3), *b = bias ? randn(O, 1) : NULL, *gy = randn(ny, 1);
    float *y1 = fzeros(ny), *y2 = fzeros(ny), *col = fzeros(ncol), *gx1 = fzeros(nx), *gx2 = fzeros(nx);
    float *gw1 = fzeros(nw), *gw2 = fzeros(nw), *gb1 = fzeros(O), *gb2 = fzeros(O);
    for (int64_t i = 0; i < nw; i++) gw1[i] = gw2[i] = 0.5f; /* gradients accumulate (+=) */
    for (int64_t i = 0; i < O; i++) gb1[i] = gb2[i] = -0.25f;
    CHECK_OK(collapse_conv2d_forward_f32(xs, ws, x, y1, w, b, col, s, p));
    CHECK_OK(cl_dnnl_conv2d_forward(xs, ws, x, y2, w, b, s, p));
    compare("forward", y2, y1, ny);
    CHECK_OK(collapse_conv2d_backward_f32(xs, ws, x, gy, gx1, w, gw1, bias ? gb1 : NULL, col, s, p));
    for (int rep = 0; rep < 2; rep++) { /* the second call reuses the cached plan */
        if (rep == 1) {
            for (int64_t i = 0; i < nw; i++) gw2[i] = 0.5f;
            for (int64_t i = 0; i < O; i++) gb2[i] = -0.25f;
        }
        CHECK_OK(cl_dnnl_conv2d_backward(xs, ws, x, gy, gx2, w, gw2, bias ? gb2 : NULL, s, p));
    }
    compare("grad_input", gx2, gx1, nx);
    compare("grad_weight", gw2, gw1, nw);
    if (bias) compare("grad_bias", gb2, gb1, O);
    /* grad_input only, then weights only */
    float *gx3 = fzeros(nx);
    CHECK_OK(cl_dnnl_conv2d_backward(xs, ws, x, gy, gx3, w, NULL, NULL, s, p));
    compare("grad_input alone", gx3, gx1, nx);
    free(gx3);
    free(x), free(w), free(b), free(gy), free(y1), free(y2), free(col);
    free(gx1), free(gx2), free(gw1), free(gw2), free(gb1), free(gb2);
}

int main(void) {
    if (!cl_dnnl_conv_enabled()) {
        CHECK(1);
        printf("test_dnnl_conv: built without oneDNN (or COLLAPSE_DNNL=0), nothing to compare\n");
        return check_report("test_dnnl_conv");
    }
    test_geometry(2, 3, 8, 8, 4, 3, 1, 1, 1);  /* VGG conv with bias */
    test_geometry(3, 4, 7, 7, 8, 3, 2, 1, 0);  /* ResNet stride-2 conv, odd size */
    test_geometry(2, 4, 7, 6, 8, 1, 2, 0, 0);  /* ResNet 1x1 stride-2 shortcut */
    test_geometry(2, 16, 8, 8, 16, 3, 1, 1, 0); /* blocked layouts (16 channels) */
    test_geometry(1, 1, 5, 5, 2, 3, 1, 0, 1);  /* single channel, no padding */
    return check_report("test_dnnl_conv");
}
