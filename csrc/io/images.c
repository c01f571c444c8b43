/*
 * Image preparation after loading (MNIST padding, per-channel normalisation), on float32 NCHW
 * buffers, so that no loader needs a per-pixel loop in Lua.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/io_internal.h"

collapse_status collapse_images_normalize(float *x, int64_t n, int64_t c, int64_t hw, const double *mean,
                                          const double *std) {
    if (!x || !mean || !std || n < 0 || c < 1 || hw < 1)
        return collapse_fail(COLLAPSE_ERR_ARG, "images_normalize: expected images, c >= 1 channels, mean and std");
    for (int64_t k = 0; k < c; k++)
        if (!isfinite(mean[k]) || !isfinite(std[k]) || !(std[k] > 0))
            return collapse_fail(COLLAPSE_ERR_ARG,
                                 "images_normalize: channel %lld has mean %g and std %g, expected finite values, std > 0",
                                 (long long)(k + 1), mean[k], std[k]);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < c; k++) {
            float m = (float)mean[k], inv = (float)(1.0 / std[k]);
            float *p = x + ((size_t)i * (size_t)c + (size_t)k) * (size_t)hw;
            for (int64_t j = 0; j < hw; j++) p[j] = (p[j] - m) * inv;
        }
    return COLLAPSE_OK;
}

collapse_status collapse_images_pad(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t pad,
                                    float *out) {
    if (!x || !out || n < 0 || c < 1 || h < 1 || w < 1 || pad < 0)
        return collapse_fail(COLLAPSE_ERR_ARG, "images_pad: expected [n x c x h x w] images and pad >= 0");
    int64_t ho = h + 2 * pad, wo = w + 2 * pad;
    for (int64_t p = 0; p < n * c; p++) {
        const float *src = x + (size_t)p * (size_t)(h * w);
        float *dst = out + (size_t)p * (size_t)(ho * wo);
        memset(dst, 0, (size_t)(ho * wo) * sizeof *dst);
        for (int64_t r = 0; r < h; r++) memcpy(dst + (r + pad) * wo + pad, src + r * w, (size_t)w * sizeof *dst);
    }
    return COLLAPSE_OK;
}
