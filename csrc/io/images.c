/*
 * Image preparation after loading (MNIST padding, per-channel normalisation), on float32 NCHW
 * buffers, so that no loader needs a per-pixel loop in Lua.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/kernel_args.h"
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

/* Tensor-level entry points: shape, dtype and contiguity checked once, here. */
collapse_status collapse_images_normalize_tensor(collapse_tensor *x, const double *mean, const double *std,
                                                 int64_t nvalues) {
    static const char fn[] = "images_normalize";
    COLLAPSE_TRY(cl_arg_input(fn, "x", x, COLLAPSE_FLOAT32, 4, NULL, 0, NULL));
    const int64_t *s = collapse_tensor_shape(x);
    if (nvalues != s[1])
        return collapse_fail(COLLAPSE_ERR_SHAPE, "images_normalize: mean and std need %lld values (one per channel), got %lld",
                             (long long)s[1], (long long)nvalues);
    return collapse_images_normalize(collapse_tensor_data(x), s[0], s[1], s[2] * s[3], mean, std);
}

collapse_status collapse_images_pad_tensor(const collapse_tensor *x, int64_t pad, collapse_tensor *out) {
    static const char fn[] = "images_pad";
    COLLAPSE_TRY(cl_arg_input(fn, "x", x, COLLAPSE_FLOAT32, 4, NULL, 0, NULL));
    if (pad < 0 || pad > 1024) return collapse_fail(COLLAPSE_ERR_ARG, "images_pad: pad must be 0..1024, got %lld", (long long)pad);
    COLLAPSE_TRY(cl_arg_distinct(fn, "x", x, "out", out));
    const int64_t *s = collapse_tensor_shape(x);
    int64_t shape[4] = {s[0], s[1], s[2] + 2 * pad, s[3] + 2 * pad};
    COLLAPSE_TRY(cl_arg_output(fn, "out", out, COLLAPSE_FLOAT32, 4, shape, 0));
    return collapse_images_pad(collapse_tensor_data(x), s[0], s[1], s[2], s[3], pad, collapse_tensor_data(out));
}
