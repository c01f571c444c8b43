/* Binding of the layer kernels and optimiser update rules: argument checks, dtype dispatch,
 * one call into csrc/nn or csrc/optim. Tensors must be contiguous (modules allocate them so). */
#include "lua/binding.h"

#include <string.h>


/* A contiguous float tensor of dtype dt (or nil when optional) with the given element count
 * (-1: any). Errors name the function and argument. */

static void matrix_dims(lua_State *L, collapse_tensor *x, const char *fn, int64_t *n, int64_t *f) {
    if (collapse_tensor_ndim(x) != 2) luaL_error(L, "%s: input must be 2-d [n x features]", fn);
    *n = collapse_tensor_size(x, 0);
    *f = collapse_tensor_size(x, 1);
}

/* linear_forward(x, y|nil, W, b|nil) -> y */
static int l_linear_forward(lua_State *L) {
    static const char fn[] = "linear_forward";
    collapse_tensor *W = kernel_tensor(L, 3, fn, "weight");
    CHECK_STATUS(L, collapse_linear_forward(kernel_tensor(L, 1, fn, "input"), kernel_output(L, 2, fn, "output", W, 1),
                                            W, kernel_tensor(L, 4, fn, "bias")));
    return kernel_return(L, (const int[]){2}, 1);
}

/* linear_backward(x, gy, gx|false|nil, W, gW, gb|nil) -> gx (nil when not wanted) */
static int l_linear_backward(lua_State *L) {
    static const char fn[] = "linear_backward";
    collapse_tensor *W = kernel_tensor(L, 4, fn, "weight");
    CHECK_STATUS(L, collapse_linear_backward(kernel_tensor(L, 1, fn, "input"), kernel_tensor(L, 2, fn, "grad_output"),
                                             kernel_output(L, 3, fn, "grad_input", W, 0), W,
                                             kernel_tensor(L, 5, fn, "grad_weight"),
                                             kernel_tensor(L, 6, fn, "grad_bias")));
    return kernel_return(L, (const int[]){3}, 1);
}

/* The arguments every batchnorm forward binding takes: x, y, gamma|nil, beta|nil, running_mean|nil,
 * running_var|nil at 1..6, then momentum, eps, save_mean, save_invstd from argument k on. */
typedef struct bn_forward_args {
    collapse_dtype dt;
    int64_t n, f;
    collapse_tensor *x, *y, *gamma, *beta, *rm, *rv, *sm, *si;
    double momentum, eps;
} bn_forward_args;

static void bn_forward_read(lua_State *L, const char *fn, int k, bn_forward_args *a) {
    a->dt = float_dtype(L, 1, fn, "x");
    a->x = arg_tensor(L, 1, fn, "x", a->dt, -1, 0);
    matrix_dims(L, a->x, fn, &a->n, &a->f);
    a->y = arg_tensor(L, 2, fn, "output", a->dt, a->n * a->f, 0);
    a->gamma = arg_tensor(L, 3, fn, "weight", a->dt, a->f, 1);
    a->beta = arg_tensor(L, 4, fn, "bias", a->dt, a->f, 1);
    a->rm = arg_tensor(L, 5, fn, "running_mean", a->dt, a->f, 1);
    a->rv = arg_tensor(L, 6, fn, "running_var", a->dt, a->f, 1);
    a->momentum = luaL_checknumber(L, k);
    a->eps = luaL_checknumber(L, k + 1);
    a->sm = arg_tensor(L, k + 2, fn, "save_mean", a->dt, a->f, 0);
    a->si = arg_tensor(L, k + 3, fn, "save_invstd", a->dt, a->f, 0);
}

/* The arguments every batchnorm backward binding takes: x at 1, then (from argument k on) gy,
 * gx|nil, gamma|nil, save_mean, save_invstd, ggamma|nil, gbeta|nil. */
typedef struct bn_backward_args {
    collapse_dtype dt;
    int64_t n, f;
    collapse_tensor *x, *gy, *gx, *gamma, *sm, *si, *gg, *gb;
} bn_backward_args;

static void bn_backward_read(lua_State *L, const char *fn, int k, bn_backward_args *a) {
    a->dt = float_dtype(L, 1, fn, "x");
    a->x = arg_tensor(L, 1, fn, "x", a->dt, -1, 0);
    matrix_dims(L, a->x, fn, &a->n, &a->f);
    a->gy = arg_tensor(L, k, fn, "grad_output", a->dt, a->n * a->f, 0);
    a->gx = arg_tensor(L, k + 1, fn, "grad_input", a->dt, a->n * a->f, 1);
    a->gamma = arg_tensor(L, k + 2, fn, "weight", a->dt, a->f, 1);
    a->sm = arg_tensor(L, k + 3, fn, "save_mean", a->dt, a->f, 0);
    a->si = arg_tensor(L, k + 4, fn, "save_invstd", a->dt, a->f, 0);
    a->gg = arg_tensor(L, k + 5, fn, "weight_grad", a->dt, a->f, 1);
    a->gb = arg_tensor(L, k + 6, fn, "bias_grad", a->dt, a->f, 1);
}

/* batchnorm_forward(x, y, gamma|nil, beta|nil, running_mean, running_var, train, momentum, eps,
 *                   save_mean, save_invstd) */
static int l_batchnorm_forward(lua_State *L) {
    const char *fn = "batchnorm_forward";
    bn_forward_args a;
    bn_forward_read(L, fn, 8, &a);
    int train = lua_toboolean(L, 7);
    collapse_status s;
    if (train)
        s = a.dt == COLLAPSE_FLOAT32
            ? collapse_batchnorm_forward_train_f32(a.n, a.f, ptr(a.x), ptr(a.y), ptr(a.gamma), ptr(a.beta), ptr(a.rm),
                                                   ptr(a.rv), ptr(a.sm), ptr(a.si), a.momentum, a.eps)
            : collapse_batchnorm_forward_train_f64(a.n, a.f, ptr(a.x), ptr(a.y), ptr(a.gamma), ptr(a.beta), ptr(a.rm),
                                                   ptr(a.rv), ptr(a.sm), ptr(a.si), a.momentum, a.eps);
    else {
        if (!a.rm || !a.rv) return luaL_error(L, "%s: evaluate mode needs running statistics", fn);
        s = a.dt == COLLAPSE_FLOAT32
            ? collapse_batchnorm_forward_eval_f32(a.n, a.f, ptr(a.x), ptr(a.y), ptr(a.gamma), ptr(a.beta), ptr(a.rm),
                                                  ptr(a.rv), a.eps)
            : collapse_batchnorm_forward_eval_f64(a.n, a.f, ptr(a.x), ptr(a.y), ptr(a.gamma), ptr(a.beta), ptr(a.rm),
                                                  ptr(a.rv), a.eps);
    }
    CHECK_STATUS(L, s);
    return 0;
}

/* batchnorm_backward(x, gy, gx|nil, gamma|nil, save_mean, save_invstd, ggamma|nil, gbeta|nil, train,
 *                    running_mean, running_var, eps) */
static int l_batchnorm_backward(lua_State *L) {
    const char *fn = "batchnorm_backward";
    bn_backward_args a;
    bn_backward_read(L, fn, 2, &a);
    int train = lua_toboolean(L, 9);
    collapse_tensor *rm = arg_tensor(L, 10, fn, "running_mean", a.dt, a.f, 1);
    collapse_tensor *rv = arg_tensor(L, 11, fn, "running_var", a.dt, a.f, 1);
    double eps = luaL_checknumber(L, 12);
    collapse_status s;
    if (train)
        s = a.dt == COLLAPSE_FLOAT32
            ? collapse_batchnorm_backward_train_f32(a.n, a.f, ptr(a.x), ptr(a.gy), ptr(a.gx), ptr(a.gamma), ptr(a.gg),
                                                    ptr(a.gb), ptr(a.sm), ptr(a.si))
            : collapse_batchnorm_backward_train_f64(a.n, a.f, ptr(a.x), ptr(a.gy), ptr(a.gx), ptr(a.gamma), ptr(a.gg),
                                                    ptr(a.gb), ptr(a.sm), ptr(a.si));
    else
        s = a.dt == COLLAPSE_FLOAT32
            ? collapse_batchnorm_backward_eval_f32(a.n, a.f, ptr(a.x), ptr(a.gy), ptr(a.gx), ptr(a.gamma), ptr(a.gg),
                                                   ptr(a.gb), ptr(rm), ptr(rv), eps)
            : collapse_batchnorm_backward_eval_f64(a.n, a.f, ptr(a.x), ptr(a.gy), ptr(a.gx), ptr(a.gamma), ptr(a.gg),
                                                   ptr(a.gb), ptr(rm), ptr(rv), eps);
    CHECK_STATUS(L, s);
    return 0;
}

/* batchnorm_relu_forward(x, y, gamma|nil, beta|nil, running_mean|nil, running_var|nil, momentum, eps,
 *                        save_mean, save_invstd): train mode, y = relu(bn(x)) */
static int l_batchnorm_relu_forward(lua_State *L) {
    bn_forward_args a;
    bn_forward_read(L, "batchnorm_relu_forward", 7, &a);
    collapse_status s = a.dt == COLLAPSE_FLOAT32
        ? collapse_batchnorm_relu_forward_train_f32(a.n, a.f, ptr(a.x), ptr(a.y), ptr(a.gamma), ptr(a.beta), ptr(a.rm),
                                                    ptr(a.rv), ptr(a.sm), ptr(a.si), a.momentum, a.eps)
        : collapse_batchnorm_relu_forward_train_f64(a.n, a.f, ptr(a.x), ptr(a.y), ptr(a.gamma), ptr(a.beta), ptr(a.rm),
                                                    ptr(a.rv), ptr(a.sm), ptr(a.si), a.momentum, a.eps);
    CHECK_STATUS(L, s);
    return 0;
}

/* batchnorm_relu_backward(x, y, gy, gx|nil, gamma|nil, save_mean, save_invstd, ggamma|nil, gbeta|nil):
 * train mode, y the fused output, gy the gradient at y */
static int l_batchnorm_relu_backward(lua_State *L) {
    const char *fn = "batchnorm_relu_backward";
    bn_backward_args a;
    bn_backward_read(L, fn, 3, &a);
    collapse_tensor *y = arg_tensor(L, 2, fn, "output", a.dt, a.n * a.f, 0);
    collapse_status s = a.dt == COLLAPSE_FLOAT32
        ? collapse_batchnorm_relu_backward_train_f32(a.n, a.f, ptr(a.x), ptr(y), ptr(a.gy), ptr(a.gx), ptr(a.gamma),
                                                     ptr(a.gg), ptr(a.gb), ptr(a.sm), ptr(a.si))
        : collapse_batchnorm_relu_backward_train_f64(a.n, a.f, ptr(a.x), ptr(y), ptr(a.gy), ptr(a.gx), ptr(a.gamma),
                                                     ptr(a.gg), ptr(a.gb), ptr(a.sm), ptr(a.si));
    CHECK_STATUS(L, s);
    return 0;
}

typedef collapse_status (*act_fwd_f32)(int64_t, const float *, float *);
typedef collapse_status (*act_fwd_f64)(int64_t, const double *, double *);
typedef collapse_status (*act_bwd_f32)(int64_t, const float *, const float *, float *);
typedef collapse_status (*act_bwd_f64)(int64_t, const double *, const double *, double *);

/* activation forward(x, y) */
static int activation_forward(lua_State *L, const char *fn, act_fwd_f32 f32, act_fwd_f64 f64) {
    collapse_dtype dt = float_dtype(L, 1, fn, "input");
    collapse_tensor *x = arg_tensor(L, 1, fn, "input", dt, -1, 0);
    int64_t n = collapse_tensor_numel(x);
    collapse_tensor *y = arg_tensor(L, 2, fn, "output", dt, n, 0);
    CHECK_STATUS(L, dt == COLLAPSE_FLOAT32 ? f32(n, ptr(x), ptr(y)) : f64(n, ptr(x), ptr(y)));
    return 0;
}

/* activation backward(y, gy, gx): y is the forward output */
static int activation_backward(lua_State *L, const char *fn, act_bwd_f32 f32, act_bwd_f64 f64) {
    collapse_dtype dt = float_dtype(L, 1, fn, "output");
    collapse_tensor *y = arg_tensor(L, 1, fn, "output", dt, -1, 0);
    int64_t n = collapse_tensor_numel(y);
    collapse_tensor *gy = arg_tensor(L, 2, fn, "grad_output", dt, n, 0);
    collapse_tensor *gx = arg_tensor(L, 3, fn, "grad_input", dt, n, 0);
    CHECK_STATUS(L, dt == COLLAPSE_FLOAT32 ? f32(n, ptr(y), ptr(gy), ptr(gx)) : f64(n, ptr(y), ptr(gy), ptr(gx)));
    return 0;
}

static int l_relu_forward(lua_State *L) {
    return activation_forward(L, "relu_forward", collapse_relu_forward_f32, collapse_relu_forward_f64);
}
static int l_relu_backward(lua_State *L) {
    return activation_backward(L, "relu_backward", collapse_relu_backward_f32, collapse_relu_backward_f64);
}
static int l_tanh_forward(lua_State *L) {
    return activation_forward(L, "tanh_forward", collapse_tanh_forward_f32, collapse_tanh_forward_f64);
}
static int l_tanh_backward(lua_State *L) {
    return activation_backward(L, "tanh_backward", collapse_tanh_backward_f32, collapse_tanh_backward_f64);
}

/* cross_entropy(logits, labels, grad|nil) -> mean loss */
static int l_cross_entropy(lua_State *L) {
    const char *fn = "cross_entropy";
    collapse_dtype dt = float_dtype(L, 1, fn, "logits");
    int64_t n, C;
    collapse_tensor *logits = arg_tensor(L, 1, fn, "logits", dt, -1, 0);
    matrix_dims(L, logits, fn, &n, &C);
    collapse_tensor *labels = arg_tensor(L, 2, fn, "labels", COLLAPSE_INT32, n, 0);
    collapse_tensor *grad = arg_tensor(L, 3, fn, "grad", dt, n * C, 1);
    double loss = 0;
    collapse_status s = dt == COLLAPSE_FLOAT32
        ? collapse_cross_entropy_forward_f32(n, C, ptr(logits), ptr(labels), &loss, ptr(grad))
        : collapse_cross_entropy_forward_f64(n, C, ptr(logits), ptr(labels), &loss, ptr(grad));
    CHECK_STATUS(L, s);
    lua_pushnumber(L, loss);
    return 1;
}

void binding_open_nn(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"linear_forward", l_linear_forward}, {"linear_backward", l_linear_backward},
        {"batchnorm_forward", l_batchnorm_forward}, {"batchnorm_backward", l_batchnorm_backward},
        {"batchnorm_relu_forward", l_batchnorm_relu_forward}, {"batchnorm_relu_backward", l_batchnorm_relu_backward},
        {"relu_forward", l_relu_forward}, {"relu_backward", l_relu_backward},
        {"tanh_forward", l_tanh_forward}, {"tanh_backward", l_tanh_backward},
        {"cross_entropy", l_cross_entropy},
        {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
