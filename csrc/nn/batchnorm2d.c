/* Batch normalisation over the channels of NCHW input (PyTorch BatchNorm2d); statistics in double. */
#include <stdlib.h>
#include <string.h>

#include "collapse.h"
#include "core/args.h"
#include "nn/nchw.h"

/* Sizes of one call: n samples, c channels, hw = H W values per (sample, channel) plane. */
typedef struct cl_bn2d_geom { int64_t n, c, hw, m; } cl_bn2d_geom;

static collapse_status cl_bn2d_geometry(const char *fn, const int64_t *shape, cl_bn2d_geom *g) {
    COLLAPSE_TRY(cl_need_shape4(fn, "input shape", shape, NULL));
    g->n = shape[0], g->c = shape[1], g->hw = shape[2] * shape[3];
    g->m = g->n * g->hw;
    return COLLAPSE_OK;
}

/* Train mode needs two values per channel (PyTorch: "Expected more than 1 value per channel"). */
static collapse_status cl_bn2d_need_two(const int64_t *shape, const cl_bn2d_geom *g) {
    if (g->m >= 2) return COLLAPSE_OK;
    char b[CL_SHAPE_STR];
    return collapse_fail(COLLAPSE_ERR_ARG,
                         "batchnorm2d: training needs at least 2 values per channel (N H W), got input %s",
                         cl_shape4_str(b, shape));
}

/* The reductions' lanes (batchnorm2d_impl.h): 16 doubles as two vectors of 8 (GCC / clang
 * vector extensions; one AVX-512 register, two AVX2 or four SSE2 ones each). */
#define CL_BN2D_LANES 16
/* the first pass over a channel prefetches the plane about this many values ahead (1024 was
 * 10-20 % faster than none or 4096 on cold [128 x C x H x W] float32 arrays here) */
#define CL_BN2D_AHEAD 1024
/* planes smaller than this many values: the train backward walks the arrays in memory order
 * (batchnorm2d_impl.h, bn2d_backward_stream; 2-3x faster at 4 x 4 and 8 x 8, no gain at 32 x 32,
 * where the channel-wise passes reuse each channel from L2) */
#define CL_BN2D_STREAM_HW 256

typedef double cl_v8d __attribute__((vector_size(64)));
typedef float cl_v8f __attribute__((vector_size(32)));
typedef int64_t cl_v8l __attribute__((vector_size(64))); /* the masks of compares of cl_v8d */
typedef int32_t cl_v8i __attribute__((vector_size(32))); /* and of cl_v8f */
/* one channel's lanes of the two gradient sums (sum g, sum (x - mu) g): vectors and tail lanes */
typedef struct cl_bn2d_acc { cl_v8d sa, sb, da, db; double st[CL_BN2D_LANES], dt[CL_BN2D_LANES]; } cl_bn2d_acc;

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nn/batchnorm2d_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nn/batchnorm2d_impl.h"
#include "core/generic_end.h"
