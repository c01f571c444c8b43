/* The optional oneDNN (Debian's libdnnl, the library PyTorch's CPU convolutions use) path of
 * the float32 conv2d kernels; see nn/dnnl_conv.h. Each geometry gets a plan: the forward,
 * backward-data and backward-weights primitives with the layouts oneDNN prefers (format "any":
 * blocked, e.g. nChw16c), and reorders between those and the library's plain NCHW / OIHW arrays,
 * created once and cached. A call sets the arrays' pointers, runs the reorders and the primitive
 * and waits. Calls are serialised by a mutex (the plans' memory objects are shared). */
#include "nn/dnnl_conv.h"

#include "core/error.h"

#ifndef COLLAPSE_HAVE_DNNL

int cl_dnnl_conv_enabled(void) { return 0; }
collapse_status cl_dnnl_conv2d_forward(const int64_t xs[4], const int64_t ws[4], const float *x, float *y,
                                       const float *W, const float *b, int64_t stride, int64_t pad) {
    (void)xs, (void)ws, (void)x, (void)y, (void)W, (void)b, (void)stride, (void)pad;
    return collapse_fail(COLLAPSE_ERR_STATE, "conv2d: built without oneDNN");
}
collapse_status cl_dnnl_conv2d_backward(const int64_t xs[4], const int64_t ws[4], const float *x, const float *gy,
                                        float *gx, const float *W, float *gW, float *gb, int64_t stride,
                                        int64_t pad) {
    (void)xs, (void)ws, (void)x, (void)gy, (void)gx, (void)W, (void)gW, (void)gb, (void)stride, (void)pad;
    return collapse_fail(COLLAPSE_ERR_STATE, "conv2d: built without oneDNN");
}

#else

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void omp_set_num_threads(int n); /* libgomp, oneDNN's threading runtime (linked with it) */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static dnnl_stream_t stream;

/* An argument of a primitive: the caller's plain array (user) and the primitive's own layout
 * (inner, == user when they agree), with the reorder between them (NULL when they agree). */
typedef struct port {
    dnnl_memory_t user, inner;
    dnnl_primitive_t reorder;
    size_t bytes; /* of the inner layout, when it differs */
    int output, slot;
} port;

/* The inner (blocked) arrays live in a few workspace slots shared by every plan, each grown to
 * the largest use: a call needs at most four at once, so the memory is that of four activations,
 * not of six per conv layer. */
#define SLOTS 4
static void *slot_data[SLOTS];
static size_t slot_bytes[SLOTS];

static void *slot_get(int k, size_t bytes) {
    if (slot_bytes[k] < bytes) {
        free(slot_data[k]);
        slot_bytes[k] = 0;
        slot_data[k] = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!slot_data[k]) return NULL;
        slot_bytes[k] = bytes;
    }
    return slot_data[k];
}

typedef struct plan {
    int64_t xs[4], ws[4], stride, pad;
    int bias;
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    port f_src, f_wei, f_bia, f_dst;   /* forward */
    port d_ddst, d_wei, d_dsrc;        /* backward data */
    port w_src, w_ddst, w_dwei, w_dbia; /* backward weights (into the scratch arrays below) */
    float *gw_scratch, *gb_scratch;
    int shared_ddst; /* backward data and weights read grad_output in the same layout */
    struct plan *next;
} plan;

static plan *plans; /* a short list: one plan per conv layer geometry of the models in use */

#define DNNL_TRY(expr) \
    do { if ((expr) != dnnl_success) goto fail; } while (0)

static int port_init(port *p, const dnnl_memory_desc_t *plain, const dnnl_memory_desc_t *want, int output,
                     int slot) {
    memset(p, 0, sizeof *p);
    p->slot = slot;
    p->output = output;
    if (dnnl_memory_create(&p->user, plain, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
    if (dnnl_memory_desc_equal(plain, want)) {
        p->inner = p->user;
        return 0;
    }
    p->bytes = dnnl_memory_desc_get_size(want);
    if (dnnl_memory_create(&p->inner, want, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = output ? want : plain, *to = output ? plain : want;
    if (dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, NULL) != dnnl_success) return -1;
    dnnl_status_t s = dnnl_primitive_create(&p->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return s == dnnl_success ? 0 : -1;
}

static void port_free(port *p) {
    if (p->reorder) dnnl_primitive_destroy(p->reorder);
    if (p->inner && p->inner != p->user) dnnl_memory_destroy(p->inner);
    if (p->user) dnnl_memory_destroy(p->user);
}

/* Points the port at the caller's array and, for an input, reorders it into the inner layout. */
/* Points the port at the caller's array (and its inner layout at its workspace slot). */
static int port_set(port *p, const void *data) {
    if (dnnl_memory_set_data_handle(p->user, (void *)data) != dnnl_success) return -1;
    if (!p->reorder) return 0;
    void *w = slot_get(p->slot, p->bytes);
    return w && dnnl_memory_set_data_handle(p->inner, w) == dnnl_success ? 0 : -1;
}

static int port_in(port *p, const void *data) {
    if (port_set(p, data)) return -1;
    if (!p->reorder) return 0;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, p->user}, {DNNL_ARG_TO, p->inner}};
    return dnnl_primitive_execute(p->reorder, stream, 2, a) == dnnl_success ? 0 : -1;
}

/* After the primitive: an output port's inner layout reordered into the caller's array. */
static int port_out(port *p) {
    if (!p->reorder) return 0;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, p->inner}, {DNNL_ARG_TO, p->user}};
    return dnnl_primitive_execute(p->reorder, stream, 2, a) == dnnl_success ? 0 : -1;
}

static void plan_free(plan *q) {
    port *ports[] = {&q->f_src, &q->f_wei, &q->f_bia, &q->f_dst, &q->d_ddst, &q->d_wei, &q->d_dsrc, &q->w_src,
                     &q->w_ddst, &q->w_dwei, &q->w_dbia};
    for (size_t i = 0; i < sizeof ports / sizeof *ports; i++) port_free(ports[i]);
    if (q->fwd) dnnl_primitive_destroy(q->fwd);
    if (q->bwd_data) dnnl_primitive_destroy(q->bwd_data);
    if (q->bwd_weights) dnnl_primitive_destroy(q->bwd_weights);
    free(q->gw_scratch);
    free(q->gb_scratch);
    free(q);
}

static const dnnl_memory_desc_t *md_of(dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* The three primitives of one geometry and their ports; NULL when oneDNN refuses it. */
static plan *plan_new(const int64_t xs[4], const int64_t ws[4], int64_t stride, int64_t pad, int bias) {
    plan *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    memcpy(q->xs, xs, sizeof q->xs);
    memcpy(q->ws, ws, sizeof q->ws);
    q->bias = bias;
    q->stride = stride;
    q->pad = pad;
    const int64_t ho = (xs[2] + 2 * pad - ws[2]) / stride + 1, wo = (xs[3] + 2 * pad - ws[3]) / stride + 1;
    dnnl_dims_t xd = {xs[0], xs[1], xs[2], xs[3]}, wd = {ws[0], ws[1], ws[2], ws[3]}, yd = {xs[0], ws[0], ho, wo};
    dnnl_dims_t bd = {ws[0]}, st = {stride, stride}, pd = {pad, pad};
    dnnl_memory_desc_t x_plain, w_plain, y_plain, b_plain, x_any, w_any, y_any;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&x_plain, 4, xd, dnnl_f32, dnnl_nchw));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_plain, 4, wd, dnnl_f32, dnnl_oihw));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&y_plain, 4, yd, dnnl_f32, dnnl_nchw));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&b_plain, 1, bd, dnnl_f32, dnnl_a));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&x_any, 4, xd, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&y_any, 4, yd, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t fd, dd, wdsc;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &x_any, &w_any,
                                                bias ? &b_plain : NULL, &y_any, st, pd, pd));
    DNNL_TRY(dnnl_primitive_desc_create(&fpd, &fd, NULL, engine, NULL));
    DNNL_TRY(dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &x_any, &w_any, &y_any, st, pd, pd));
    DNNL_TRY(dnnl_primitive_desc_create(&dpd, &dd, NULL, engine, fpd));
    DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&wdsc, dnnl_convolution_direct, &x_any, &w_any,
                                                         bias ? &b_plain : NULL, &y_any, st, pd, pd));
    DNNL_TRY(dnnl_primitive_desc_create(&wpd, &wdsc, NULL, engine, fpd));
    DNNL_TRY(dnnl_primitive_create(&q->fwd, fpd));
    DNNL_TRY(dnnl_primitive_create(&q->bwd_data, dpd));
    DNNL_TRY(dnnl_primitive_create(&q->bwd_weights, wpd));
    /* slots: 0 input-sized, 1 weight-sized, 2 output- or input-sized, 3 grad_output (shared by
     * both backward primitives when their layouts agree) */
    if (port_init(&q->f_src, &x_plain, md_of(fpd, dnnl_query_src_md), 0, 0) ||
        port_init(&q->f_wei, &w_plain, md_of(fpd, dnnl_query_weights_md), 0, 1) ||
        port_init(&q->f_dst, &y_plain, md_of(fpd, dnnl_query_dst_md), 1, 2) ||
        port_init(&q->d_ddst, &y_plain, md_of(dpd, dnnl_query_diff_dst_md), 0, 3) ||
        port_init(&q->d_wei, &w_plain, md_of(dpd, dnnl_query_weights_md), 0, 1) ||
        port_init(&q->d_dsrc, &x_plain, md_of(dpd, dnnl_query_diff_src_md), 1, 2) ||
        port_init(&q->w_src, &x_plain, md_of(wpd, dnnl_query_src_md), 0, 0) ||
        port_init(&q->w_ddst, &y_plain, md_of(wpd, dnnl_query_diff_dst_md), 0, 3) ||
        port_init(&q->w_dwei, &w_plain, md_of(wpd, dnnl_query_diff_weights_md), 1, 1))
        goto fail;
    q->shared_ddst = dnnl_memory_desc_equal(md_of(dpd, dnnl_query_diff_dst_md), md_of(wpd, dnnl_query_diff_dst_md));
    if (bias && (port_init(&q->f_bia, &b_plain, &b_plain, 0, 0) || port_init(&q->w_dbia, &b_plain, &b_plain, 1, 0)))
        goto fail;
    q->gw_scratch = malloc((size_t)(ws[0] * ws[1] * ws[2] * ws[3]) * sizeof(float));
    q->gb_scratch = malloc((size_t)ws[0] * sizeof(float));
    if (!q->gw_scratch || !q->gb_scratch) goto fail;
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
    return q;
fail:
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    plan_free(q);
    return NULL;
}

static int enabled = -1;

int cl_dnnl_conv_enabled(void) {
    if (enabled < 0) {
        const char *e = getenv("COLLAPSE_DNNL");
        enabled = !(e && strcmp(e, "0") == 0);
    }
    return enabled;
}

/* The plan of a geometry (made on first use); NULL when oneDNN is unavailable or refuses it. */
static plan *plan_get(const int64_t xs[4], const int64_t ws[4], int64_t stride, int64_t pad, int bias) {
    if (!engine) {
        if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) return NULL;
        if (dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) return NULL;
    }
    for (plan *q = plans; q; q = q->next)
        if (!memcmp(q->xs, xs, sizeof q->xs) && !memcmp(q->ws, ws, sizeof q->ws) && q->stride == stride &&
            q->pad == pad && q->bias == bias)
            return q;
    plan *q = plan_new(xs, ws, stride, pad, bias);
    if (q) {
        q->next = plans;
        plans = q;
    }
    return q;
}

static collapse_status refused(void) {
    return collapse_fail(COLLAPSE_ERR_STATE, "conv2d: oneDNN refused this geometry");
}

collapse_status cl_dnnl_conv2d_forward(const int64_t xs[4], const int64_t ws[4], const float *x, float *y,
                                       const float *W, const float *b, int64_t stride, int64_t pad) {
    pthread_mutex_lock(&lock);
    omp_set_num_threads(collapse_get_num_threads());
    plan *q = plan_get(xs, ws, stride, pad, b != NULL);
    int bad = !q;
    if (!bad) {
        bad = port_in(&q->f_src, x) || port_in(&q->f_wei, W) || (b && port_in(&q->f_bia, b)) || port_set(&q->f_dst, y);
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, q->f_src.inner}, {DNNL_ARG_WEIGHTS, q->f_wei.inner},
                                {DNNL_ARG_DST, q->f_dst.inner}, {DNNL_ARG_BIAS, b ? q->f_bia.inner : NULL}};
        bad = bad || dnnl_primitive_execute(q->fwd, stream, b ? 4 : 3, a) != dnnl_success || port_out(&q->f_dst) ||
              dnnl_stream_wait(stream) != dnnl_success;
    }
    pthread_mutex_unlock(&lock);
    return bad ? refused() : COLLAPSE_OK;
}

static int backward_data(plan *q, const float *gy, float *gx, const float *W) {
    if (port_in(&q->d_ddst, gy) || port_in(&q->d_wei, W) || port_set(&q->d_dsrc, gx)) return -1;
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, q->d_ddst.inner}, {DNNL_ARG_WEIGHTS, q->d_wei.inner},
                            {DNNL_ARG_DIFF_SRC, q->d_dsrc.inner}};
    return dnnl_primitive_execute(q->bwd_data, stream, 3, a) != dnnl_success || port_out(&q->d_dsrc) ? -1 : 0;
}

/* gW += and gb += through the plan's scratch arrays (oneDNN overwrites its outputs). ddst_ready:
 * backward_data has just reordered grad_output into slot 3 in the layout this primitive reads. */
static int backward_weights(plan *q, const float *x, const float *gy, float *gW, float *gb, int ddst_ready) {
    dnnl_memory_t ddst = ddst_ready ? q->d_ddst.inner : q->w_ddst.inner;
    if (port_in(&q->w_src, x) || (!ddst_ready && port_in(&q->w_ddst, gy)) || port_set(&q->w_dwei, q->gw_scratch))
        return -1;
    if (q->bias && port_set(&q->w_dbia, q->gb_scratch)) return -1;
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, q->w_src.inner}, {DNNL_ARG_DIFF_DST, ddst},
                            {DNNL_ARG_DIFF_WEIGHTS, q->w_dwei.inner}, {DNNL_ARG_DIFF_BIAS, q->bias ? q->w_dbia.inner : NULL}};
    if (dnnl_primitive_execute(q->bwd_weights, stream, q->bias ? 4 : 3, a) != dnnl_success || port_out(&q->w_dwei) ||
        dnnl_stream_wait(stream) != dnnl_success)
        return -1;
    const int64_t nw = q->ws[0] * q->ws[1] * q->ws[2] * q->ws[3];
    if (gW)
        for (int64_t i = 0; i < nw; i++) gW[i] += q->gw_scratch[i];
    if (gb && q->bias)
        for (int64_t i = 0; i < q->ws[0]; i++) gb[i] += q->gb_scratch[i];
    return 0;
}

collapse_status cl_dnnl_conv2d_backward(const int64_t xs[4], const int64_t ws[4], const float *x, const float *gy,
                                        float *gx, const float *W, float *gW, float *gb, int64_t stride,
                                        int64_t pad) {
    pthread_mutex_lock(&lock);
    omp_set_num_threads(collapse_get_num_threads());
    plan *q = plan_get(xs, ws, stride, pad, gb != NULL);
    int bad = !q;
    if (!bad && gx) bad = backward_data(q, gy, gx, W);
    if (!bad && (gW || gb)) bad = backward_weights(q, x, gy, gW, gb, gx && q->shared_ddst);
    if (!bad) bad = dnnl_stream_wait(stream) != dnnl_success;
    pthread_mutex_unlock(&lock);
    return bad ? refused() : COLLAPSE_OK;
}

#endif
