/* Tensor-level batch normalisation: BatchNorm1d on [n x f] and BatchNorm2d on [N x C x H x W] share
 * one argument reader (the feature/channel count is dimension 1 either way), then dispatch to the
 * raw _f32/_f64 kernels of batchnorm.c / batchnorm2d.c. */
#include "collapse.h"
#include "core/kernel_args.h"

/* What every batchnorm kernel needs to know about its input: dtype, layout and feature count. */
typedef struct bn_geom {
    collapse_dtype dt;
    int ndim;          /* 2 (BatchNorm1d) or 4 (BatchNorm2d) */
    int64_t n, f;      /* 1-d: rows and features */
    int64_t shape4[4]; /* 2-d: N, C, H, W */
} bn_geom;

/* x: a contiguous float tensor of ndim dimensions; the per-feature vectors are [f]. */
static collapse_status bn_input(const char *fn, const collapse_tensor *x, int ndim, bn_geom *g) {
    COLLAPSE_TRY(cl_arg_float(fn, "input", x, &g->dt));
    COLLAPSE_TRY(cl_arg_input(fn, "input", x, g->dt, ndim, NULL, 0, NULL));
    g->ndim = ndim;
    g->n = x->shape[0];
    g->f = x->shape[1];
    for (int i = 0; i < 4; i++) g->shape4[i] = i < ndim ? x->shape[i] : 1;
    return COLLAPSE_OK;
}

static collapse_status bn_vector(const char *fn, const char *name, const collapse_tensor *t, const bn_geom *g,
                                 int optional) {
    return cl_arg_input(fn, name, t, g->dt, 1, (const int64_t[]){g->f}, optional, NULL);
}

/* The fused batchnorm_relu pair takes [n x f] (BatchNorm1d) or [N x C x H x W] (BatchNorm2d):
 * 4 for a 4-d input, else 2 (whose check then names what was wrong). */
static int relu_ndim(const collapse_tensor *x) { return x && x->ndim == 4 ? 4 : 2; }

static collapse_status bn_forward(const char *fn, int ndim, const collapse_tensor *x, collapse_tensor *y,
                                  const collapse_tensor *gamma, const collapse_tensor *beta, collapse_tensor *rm,
                                  collapse_tensor *rv, collapse_tensor *sm, collapse_tensor *si, int train, int relu,
                                  double momentum, double eps) {
    bn_geom g;
    COLLAPSE_TRY(bn_input(fn, x, ndim, &g));
    COLLAPSE_TRY(bn_vector(fn, "weight", gamma, &g, 1));
    COLLAPSE_TRY(bn_vector(fn, "bias", beta, &g, 1));
    COLLAPSE_TRY(bn_vector(fn, "running_mean", rm, &g, train));
    COLLAPSE_TRY(bn_vector(fn, "running_var", rv, &g, train));
    COLLAPSE_TRY(cl_arg_output_like(fn, "output", y, x, 0));
    const int64_t vf[1] = {g.f};
    COLLAPSE_TRY(cl_arg_output(fn, "save_mean", sm, g.dt, 1, vf, !train));
    COLLAPSE_TRY(cl_arg_output(fn, "save_invstd", si, g.dt, 1, vf, !train));
    void *X = cl_data(x), *Y = cl_data(y), *G = cl_data(gamma), *B = cl_data(beta), *RM = cl_data(rm),
         *RV = cl_data(rv), *SM = cl_data(sm), *SI = cl_data(si);
    if (ndim == 4 && relu)
        return CL_DISPATCH(g.dt, collapse_batchnorm2d_relu_forward_train, g.shape4, X, Y, G, B, RM, RV, SM, SI,
                           momentum, eps);
    if (ndim == 4)
        return train ? CL_DISPATCH(g.dt, collapse_batchnorm2d_forward_train, g.shape4, X, Y, G, B, RM, RV, SM, SI,
                                   momentum, eps)
                     : CL_DISPATCH(g.dt, collapse_batchnorm2d_forward_eval, g.shape4, X, Y, G, B, RM, RV, eps);
    if (relu)
        return CL_DISPATCH(g.dt, collapse_batchnorm_relu_forward_train, g.n, g.f, X, Y, G, B, RM, RV, SM, SI, momentum,
                           eps);
    return train ? CL_DISPATCH(g.dt, collapse_batchnorm_forward_train, g.n, g.f, X, Y, G, B, RM, RV, SM, SI, momentum,
                               eps)
                 : CL_DISPATCH(g.dt, collapse_batchnorm_forward_eval, g.n, g.f, X, Y, G, B, RM, RV, eps);
}

collapse_status collapse_batchnorm_forward(const collapse_tensor *x, collapse_tensor *y, const collapse_tensor *gamma,
                                           const collapse_tensor *beta, collapse_tensor *running_mean,
                                           collapse_tensor *running_var, collapse_tensor *save_mean,
                                           collapse_tensor *save_invstd, int train, double momentum, double eps) {
    return bn_forward("batchnorm_forward", 2, x, y, gamma, beta, running_mean, running_var, save_mean, save_invstd,
                      train, 0, momentum, eps);
}

collapse_status collapse_batchnorm2d_forward(const collapse_tensor *x, collapse_tensor *y, const collapse_tensor *gamma,
                                             const collapse_tensor *beta, collapse_tensor *running_mean,
                                             collapse_tensor *running_var, collapse_tensor *save_mean,
                                             collapse_tensor *save_invstd, int train, double momentum, double eps) {
    return bn_forward("batchnorm2d_forward", 4, x, y, gamma, beta, running_mean, running_var, save_mean, save_invstd,
                      train, 0, momentum, eps);
}

collapse_status collapse_batchnorm_relu_forward(const collapse_tensor *x, collapse_tensor *y,
                                                const collapse_tensor *gamma, const collapse_tensor *beta,
                                                collapse_tensor *running_mean, collapse_tensor *running_var,
                                                collapse_tensor *save_mean, collapse_tensor *save_invstd,
                                                double momentum, double eps) {
    return bn_forward("batchnorm_relu_forward", relu_ndim(x), x, y, gamma, beta, running_mean, running_var,
                      save_mean, save_invstd, 1, 1, momentum, eps);
}

/* The backward kernels; y (the fused forward's output) only for relu. */
static collapse_status bn_backward(const char *fn, int ndim, const collapse_tensor *x, const collapse_tensor *y,
                                   const collapse_tensor *gy, collapse_tensor *gx, const collapse_tensor *gamma,
                                   collapse_tensor *ggamma, collapse_tensor *gbeta, const collapse_tensor *sm,
                                   const collapse_tensor *si, const collapse_tensor *rm, const collapse_tensor *rv,
                                   int train, int relu, double eps) {
    bn_geom g;
    COLLAPSE_TRY(bn_input(fn, x, ndim, &g));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_output", gy, g.dt, ndim, x->shape, 0, NULL));
    if (relu) COLLAPSE_TRY(cl_arg_input(fn, "output", y, g.dt, ndim, x->shape, 0, NULL));
    COLLAPSE_TRY(bn_vector(fn, "weight", gamma, &g, 1));
    COLLAPSE_TRY(bn_vector(fn, "grad_weight", ggamma, &g, 1));
    COLLAPSE_TRY(bn_vector(fn, "grad_bias", gbeta, &g, 1));
    COLLAPSE_TRY(bn_vector(fn, "save_mean", sm, &g, !train));
    COLLAPSE_TRY(bn_vector(fn, "save_invstd", si, &g, !train));
    COLLAPSE_TRY(bn_vector(fn, "running_mean", rm, &g, 1));
    COLLAPSE_TRY(bn_vector(fn, "running_var", rv, &g, train));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "input", x));
    COLLAPSE_TRY(cl_arg_output_like(fn, "grad_input", gx, x, 1));
    void *X = cl_data(x), *GY = cl_data(gy), *GX = cl_data(gx), *G = cl_data(gamma), *GG = cl_data(ggamma),
         *GB = cl_data(gbeta), *SM = cl_data(sm), *SI = cl_data(si), *RM = cl_data(rm), *RV = cl_data(rv);
    if (ndim == 4 && relu)
        return CL_DISPATCH(g.dt, collapse_batchnorm2d_relu_backward_train, g.shape4, X, cl_data(y), GY, GX, G, GG,
                           GB, SM, SI);
    if (ndim == 4)
        return train ? CL_DISPATCH(g.dt, collapse_batchnorm2d_backward_train, g.shape4, X, GY, GX, G, GG, GB, SM, SI)
                     : CL_DISPATCH(g.dt, collapse_batchnorm2d_backward_eval, g.shape4, X, GY, GX, G, GG, GB, RM, RV,
                                   eps);
    if (relu)
        return CL_DISPATCH(g.dt, collapse_batchnorm_relu_backward_train, g.n, g.f, X, cl_data(y), GY, GX, G, GG, GB,
                           SM, SI);
    return train ? CL_DISPATCH(g.dt, collapse_batchnorm_backward_train, g.n, g.f, X, GY, GX, G, GG, GB, SM, SI)
                 : CL_DISPATCH(g.dt, collapse_batchnorm_backward_eval, g.n, g.f, X, GY, GX, G, GG, GB, RM, RV, eps);
}

collapse_status collapse_batchnorm_backward(const collapse_tensor *x, const collapse_tensor *gy, collapse_tensor *gx,
                                            const collapse_tensor *gamma, collapse_tensor *ggamma,
                                            collapse_tensor *gbeta, const collapse_tensor *save_mean,
                                            const collapse_tensor *save_invstd, const collapse_tensor *running_mean,
                                            const collapse_tensor *running_var, int train, double eps) {
    return bn_backward("batchnorm_backward", 2, x, NULL, gy, gx, gamma, ggamma, gbeta, save_mean, save_invstd,
                       running_mean, running_var, train, 0, eps);
}

collapse_status collapse_batchnorm2d_backward(const collapse_tensor *x, const collapse_tensor *gy, collapse_tensor *gx,
                                              const collapse_tensor *gamma, collapse_tensor *ggamma,
                                              collapse_tensor *gbeta, const collapse_tensor *save_mean,
                                              const collapse_tensor *save_invstd, const collapse_tensor *running_mean,
                                              const collapse_tensor *running_var, int train, double eps) {
    return bn_backward("batchnorm2d_backward", 4, x, NULL, gy, gx, gamma, ggamma, gbeta, save_mean, save_invstd,
                       running_mean, running_var, train, 0, eps);
}

collapse_status collapse_batchnorm_relu_backward(const collapse_tensor *x, const collapse_tensor *y,
                                                 const collapse_tensor *gy, collapse_tensor *gx,
                                                 const collapse_tensor *gamma, collapse_tensor *ggamma,
                                                 collapse_tensor *gbeta, const collapse_tensor *save_mean,
                                                 const collapse_tensor *save_invstd) {
    return bn_backward("batchnorm_relu_backward", relu_ndim(x), x, y, gy, gx, gamma, ggamma, gbeta, save_mean,
                       save_invstd, NULL, NULL, 1, 1, 0);
}
