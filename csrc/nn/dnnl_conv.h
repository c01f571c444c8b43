/* The optional oneDNN path of the float32 conv2d kernels (csrc/nn/dnnl_conv.c), internal.
 * Built when CMake finds Debian's libdnnl-dev (COLLAPSE_HAVE_DNNL); the raw-array contract is
 * the one of collapse_conv2d_forward_f32 / collapse_conv2d_backward_f32 (NCHW input, OIHW
 * weights, square stride and zero padding; gW and gb accumulate, gx is overwritten), the caller
 * has checked every argument. Plans (primitives, reorders, blocked buffers) are cached per
 * geometry, so the steady state creates nothing. */
#ifndef COLLAPSE_NN_DNNL_CONV_H
#define COLLAPSE_NN_DNNL_CONV_H

#include <stdint.h>

#include "collapse.h"

/* 1 when the oneDNN path is compiled in and not disabled (COLLAPSE_DNNL=0 in the environment,
 * read once). */
int cl_dnnl_conv_enabled(void);

/* y = conv(x, W) + b (b may be NULL). Returns COLLAPSE_OK, or an error status when oneDNN
 * refused the geometry (the caller then uses the im2col path). */
collapse_status cl_dnnl_conv2d_forward(const int64_t xs[4], const int64_t ws[4], const float *x, float *y,
                                       const float *W, const float *b, int64_t stride, int64_t pad);

/* gx = conv^T(gy) (when gx != NULL), gW += dL/dW (when gW != NULL), gb += sums of gy (when gb). */
collapse_status cl_dnnl_conv2d_backward(const int64_t xs[4], const int64_t ws[4], const float *x, const float *gy,
                                        float *gx, const float *W, float *gW, float *gb, int64_t stride,
                                        int64_t pad);

#endif
