/* 2-d convolution (PyTorch Conv2d, NCHW, no dilation or groups): im2col + one BLAS gemm per sample. */
#include "collapse.h"
#include "core/args.h"
#include "nn/nchw.h"

/* Everything the kernels need to know about one call, validated once. */
typedef struct cl_conv_geom {
    int64_t n, cin, h, w;       /* input */
    int64_t cout, kh, kw;       /* weight [cout x cin x kh x kw] */
    int64_t ho, wo;             /* output spatial size */
    int64_t stride, pad;
    int64_t K, L;               /* gemm sizes: K = cin kh kw rows of columns, L = ho wo columns */
    int direct;                 /* 1x1 kernel, stride 1, no padding: the input plane is the column matrix */
    int64_t out_shape[4];
} cl_conv_geom;

static collapse_status cl_conv_geometry(const char *fn, const int64_t *in, const int64_t *wt, int64_t stride,
                                        int64_t padding, cl_conv_geom *g) {
    char b1[CL_SHAPE_STR], b2[CL_SHAPE_STR];
    COLLAPSE_TRY(cl_need_shape4(fn, "input shape", in, NULL));
    COLLAPSE_TRY(cl_need_shape4(fn, "weight shape", wt, NULL));
    COLLAPSE_TRY(cl_need_int_opt(fn, "stride", stride, 1));
    COLLAPSE_TRY(cl_need_int_opt(fn, "padding", padding, 0));
    if (in[1] != wt[1])
        return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: input has %lld channels, weight expects %lld (input %s, weight %s)",
                             fn, (long long)in[1], (long long)wt[1], cl_shape4_str(b1, in), cl_shape4_str(b2, wt));
    g->n = in[0], g->cin = in[1], g->h = in[2], g->w = in[3];
    g->cout = wt[0], g->kh = wt[2], g->kw = wt[3];
    g->stride = stride, g->pad = padding;
    /* sizes are < 2^63 and padding < 2^31, so h + 2 padding cannot overflow */
    const int64_t hp = g->h + 2 * padding, wp = g->w + 2 * padding;
    if (g->kh > hp || g->kw > wp)
        return collapse_fail(COLLAPSE_ERR_SHAPE,
                             "%s: kernel %lld x %lld is larger than the padded input %lld x %lld (input %s, padding %lld)",
                             fn, (long long)g->kh, (long long)g->kw, (long long)hp, (long long)wp, cl_shape4_str(b1, in),
                             (long long)padding);
    g->ho = (hp - g->kh) / stride + 1;
    g->wo = (wp - g->kw) / stride + 1;
    if (g->cout > INT_MAX || g->cin > INT_MAX / g->kh / g->kw || g->ho > INT_MAX / g->wo)
        return collapse_fail(COLLAPSE_ERR_ARG,
                             "%s: input %s with weight %s exceeds the BLAS index limit %d (Cout, Cin kH kW and Ho Wo "
                             "must each fit)", fn, cl_shape4_str(b1, in), cl_shape4_str(b2, wt), INT_MAX);
    g->K = g->cin * g->kh * g->kw;
    g->L = g->ho * g->wo;
    if (g->n > INT64_MAX / g->cout / g->L)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: the output of input %s with weight %s has too many elements", fn,
                             cl_shape4_str(b1, in), cl_shape4_str(b2, wt));
    g->direct = g->kh == 1 && g->kw == 1 && stride == 1 && padding == 0;
    g->out_shape[0] = g->n, g->out_shape[1] = g->cout, g->out_shape[2] = g->ho, g->out_shape[3] = g->wo;
    return COLLAPSE_OK;
}

/* Range of output positions o (0 <= o < out) whose input index o stride - pad + k lies in [0, size):
 * [*lo, *hi). Empty when *lo >= *hi. */
static inline void cl_conv_valid(int64_t out, int64_t size, int64_t stride, int64_t pad, int64_t k, int64_t *lo,
                                 int64_t *hi) {
    const int64_t a = pad - k;                 /* need o stride >= a */
    int64_t l = a <= 0 ? 0 : (a + stride - 1) / stride;
    const int64_t b = size - 1 + pad - k;      /* need o stride <= b */
    int64_t h = b < 0 ? 0 : b / stride + 1;
    if (l > out) l = out;
    if (h > out) h = out;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

collapse_status collapse_conv2d_output_shape(const int64_t input_shape[4], const int64_t weight_shape[4],
                                             int64_t stride, int64_t padding, int64_t output_shape[4],
                                             int64_t *columns_numel) {
    cl_conv_geom g;
    COLLAPSE_TRY(cl_conv_geometry("conv2d_output_shape", input_shape, weight_shape, stride, padding, &g));
    if (output_shape)
        for (int i = 0; i < 4; i++) output_shape[i] = g.out_shape[i];
    if (columns_numel) *columns_numel = g.direct ? 0 : g.K * g.L;
    return COLLAPSE_OK;
}

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nn/conv2d_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nn/conv2d_impl.h"
#include "core/generic_end.h"
