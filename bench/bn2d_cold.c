/* The BatchNorm2d + ReLU train pair alone, as a ResNet runs it, on cold caches (a 64 MB memset
 * before each call): minimum over REPS calls of the forward and of the backward, in ms.
 *
 *   gcc -O2 -Icsrc/include bench/bn2d_cold.c build/libcollapse.a -lopenblas -llapacke -lz -lm -ldnnl \
 *       -o /tmp/bn2d_cold && /tmp/bn2d_cold C HW [REPS]        # input [128 x C x HW x HW]
 *
 * -DUNFUSED runs the pair as separate kernels (batchnorm2d then relu_forward in place;
 * relu_backward then batchnorm2d_backward), as before collapse_batchnorm2d_relu_* existed, so the
 * same driver measures an older tree. Not a test: speed only (bench/README.md, workload e). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collapse.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int forward(const int64_t s[4], const float *x, float *y, const float *g, const float *b, float *rm, float *rv,
                   float *sm, float *si) {
#ifdef UNFUSED
    return collapse_batchnorm2d_forward_train_f32(s, x, y, g, b, rm, rv, sm, si, 0.1, 1e-5) ||
           collapse_relu_forward_f32(s[0] * s[1] * s[2] * s[3], y, y);
#else
    return collapse_batchnorm2d_relu_forward_train_f32(s, x, y, g, b, rm, rv, sm, si, 0.1, 1e-5);
#endif
}

static int backward(const int64_t s[4], const float *x, const float *y, const float *gy, float *gx, const float *g,
                    float *gg, float *gb, const float *sm, const float *si) {
#ifdef UNFUSED
    return collapse_relu_backward_f32(s[0] * s[1] * s[2] * s[3], y, gy, gx) ||
           collapse_batchnorm2d_backward_train_f32(s, x, gx, gx, g, gg, gb, sm, si);
#else
    return collapse_batchnorm2d_relu_backward_train_f32(s, x, y, gy, gx, g, gg, gb, sm, si);
#endif
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bn2d_cold C HW [REPS]\n");
        return 2;
    }
    const int64_t s[4] = {128, atoi(argv[1]), atoi(argv[2]), atoi(argv[2])};
    const int reps = argc > 3 ? atoi(argv[3]) : 15;
    const size_t n = (size_t)(s[0] * s[1] * s[2] * s[3]), c = (size_t)s[1], fl = (size_t)64 << 20;
    float *x = malloc(n * 4), *y = malloc(n * 4), *gy = malloc(n * 4), *gx = malloc(n * 4);
    float *g = malloc(c * 4), *b = calloc(c, 4), *rm = calloc(c, 4), *rv = malloc(c * 4), *sm = malloc(c * 4);
    float *si = malloc(c * 4), *gg = calloc(c, 4), *gb = calloc(c, 4);
    char *flush = malloc(fl);
    if (!x || !y || !gy || !gx || !g || !b || !rm || !rv || !sm || !si || !gg || !gb || !flush) return 1;
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)((i * 2654435761u) % 1000) / 500.f - 1;
        gy[i] = (float)((i * 40503u) % 777) / 300.f - 1;
    }
    for (size_t k = 0; k < c; k++) g[k] = 1, rv[k] = 1;
    double bf = 1e9, bb = 1e9;
    for (int r = 0; r < reps; r++) {
        memset(flush, r, fl);
        double t0 = now();
        if (forward(s, x, y, g, b, rm, rv, sm, si)) return 1;
        double t1 = now();
        memset(flush, r + 1, fl);
        double t2 = now();
        if (backward(s, x, y, gy, gx, g, gg, gb, sm, si)) return 1;
        double t3 = now();
        if (t1 - t0 < bf) bf = t1 - t0;
        if (t3 - t2 < bb) bb = t3 - t2;
    }
    printf("[128 x %lld x %lld x %lld] forward %.3f ms backward %.3f ms (gx[12345] = %.9g)\n", (long long)s[1],
           (long long)s[2], (long long)s[3], bf * 1e3, bb * 1e3, gx[12345]);
    return 0;
}
