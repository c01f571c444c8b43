/* Binding of the tensor-level layer kernels (linear, batchnorm, activations, cross-entropy): a
 * table of thin wrappers. Each reads its tensors (kernel_tensor / kernel_output), calls one
 * collapse_* kernel (which checks shapes and dtypes and resizes the outputs) and returns the
 * outputs, so a module holds them as `self.output = core.k(x, self.output, ...)`. */
#include "lua/binding.h"

#define T(i, name) kernel_tensor(L, i, fn, name)

/* linear_forward(x, y|nil, W, b|nil) -> y */
static int l_linear_forward(lua_State *L) {
    static const char fn[] = "linear_forward";
    collapse_tensor *W = T(3, "weight");
    CHECK_STATUS(L, collapse_linear_forward(T(1, "input"), kernel_output(L, 2, fn, "output", W, 1), W, T(4, "bias")));
    return kernel_return(L, (const int[]){2}, 1);
}

/* linear_backward(x, gy, gx|false|nil, W, gW|nil, gb|nil) -> gx (nil when not wanted) */
static int l_linear_backward(lua_State *L) {
    static const char fn[] = "linear_backward";
    collapse_tensor *W = T(4, "weight");
    CHECK_STATUS(L, collapse_linear_backward(T(1, "input"), T(2, "grad_output"),
                                             kernel_output(L, 3, fn, "grad_input", W, 0), W, T(5, "grad_weight"),
                                             T(6, "grad_bias")));
    return kernel_return(L, (const int[]){3}, 1);
}

/* batchnorm_forward(x, y|nil, gamma, beta, running_mean, running_var, save_mean|nil, save_invstd|nil,
 *                   train, momentum, eps) -> y, save_mean, save_invstd */
static int bn_forward(lua_State *L, const char *fn, int four_d) {
    collapse_tensor *x = T(1, "input");
    collapse_tensor *y = kernel_output(L, 2, fn, "output", x, 1);
    collapse_tensor *sm = kernel_output(L, 7, fn, "save_mean", x, 1), *si = kernel_output(L, 8, fn, "save_invstd", x, 1);
    int train = lua_toboolean(L, 9);
    double momentum = arg_number(L, 10), eps = arg_number(L, 11);
    CHECK_STATUS(L, (four_d ? collapse_batchnorm2d_forward : collapse_batchnorm_forward)(
                        x, y, T(3, "weight"), T(4, "bias"), T(5, "running_mean"), T(6, "running_var"), sm, si, train,
                        momentum, eps));
    return kernel_return(L, (const int[]){2, 7, 8}, 3);
}
static int l_batchnorm_forward(lua_State *L) { return bn_forward(L, "batchnorm_forward", 0); }
static int l_batchnorm2d_forward(lua_State *L) { return bn_forward(L, "batchnorm2d_forward", 1); }

/* batchnorm_backward(x, gy, gx|false|nil, gamma, ggamma, gbeta, save_mean, save_invstd, running_mean,
 *                    running_var, train, eps) -> gx */
static int bn_backward(lua_State *L, const char *fn, int four_d) {
    collapse_tensor *x = T(1, "input");
    CHECK_STATUS(L, (four_d ? collapse_batchnorm2d_backward : collapse_batchnorm_backward)(
                        x, T(2, "grad_output"), kernel_output(L, 3, fn, "grad_input", x, 0), T(4, "weight"),
                        T(5, "grad_weight"), T(6, "grad_bias"), T(7, "save_mean"), T(8, "save_invstd"),
                        T(9, "running_mean"), T(10, "running_var"), lua_toboolean(L, 11), arg_number(L, 12)));
    return kernel_return(L, (const int[]){3}, 1);
}
static int l_batchnorm_backward(lua_State *L) { return bn_backward(L, "batchnorm_backward", 0); }
static int l_batchnorm2d_backward(lua_State *L) { return bn_backward(L, "batchnorm2d_backward", 1); }

/* batchnorm_relu_forward(x, y|nil, gamma, beta, running_mean, running_var, save_mean|nil,
 *                        save_invstd|nil, momentum, eps) -> y, save_mean, save_invstd (train mode) */
static int l_batchnorm_relu_forward(lua_State *L) {
    static const char fn[] = "batchnorm_relu_forward";
    collapse_tensor *x = T(1, "input");
    collapse_tensor *y = kernel_output(L, 2, fn, "output", x, 1);
    collapse_tensor *sm = kernel_output(L, 7, fn, "save_mean", x, 1), *si = kernel_output(L, 8, fn, "save_invstd", x, 1);
    double momentum = arg_number(L, 9), eps = arg_number(L, 10);
    CHECK_STATUS(L, collapse_batchnorm_relu_forward(x, y, T(3, "weight"), T(4, "bias"), T(5, "running_mean"),
                                                    T(6, "running_var"), sm, si, momentum, eps));
    return kernel_return(L, (const int[]){2, 7, 8}, 3);
}

/* batchnorm_relu_backward(x, y, gy, gx|false|nil, gamma, ggamma, gbeta, save_mean, save_invstd) -> gx */
static int l_batchnorm_relu_backward(lua_State *L) {
    static const char fn[] = "batchnorm_relu_backward";
    collapse_tensor *x = T(1, "input");
    CHECK_STATUS(L, collapse_batchnorm_relu_backward(x, T(2, "output"), T(3, "grad_output"),
                                                     kernel_output(L, 4, fn, "grad_input", x, 0), T(5, "weight"),
                                                     T(6, "grad_weight"), T(7, "grad_bias"), T(8, "save_mean"),
                                                     T(9, "save_invstd")));
    return kernel_return(L, (const int[]){4}, 1);
}

/* activation_forward(x, y|nil) -> y;  activation_backward(y, gy, gx|nil) -> gx */
#define ACTIVATION(name)                                                                           \
    static int l_##name##_forward(lua_State *L) {                                                  \
        static const char fn[] = #name "_forward";                                                 \
        collapse_tensor *x = T(1, "input");                                                        \
        CHECK_STATUS(L, collapse_##name##_forward(x, kernel_output(L, 2, fn, "output", x, 1)));    \
        return kernel_return(L, (const int[]){2}, 1);                                              \
    }                                                                                              \
    static int l_##name##_backward(lua_State *L) {                                                 \
        static const char fn[] = #name "_backward";                                                \
        collapse_tensor *y = T(1, "output");                                                       \
        CHECK_STATUS(L, collapse_##name##_backward(y, T(2, "grad_output"),                         \
                                                   kernel_output(L, 3, fn, "grad_input", y, 1)));  \
        return kernel_return(L, (const int[]){3}, 1);                                              \
    }
ACTIVATION(relu)
ACTIVATION(tanh)

/* cross_entropy(logits, labels, grad|false|nil) -> mean loss, grad (nil when not wanted) */
static int l_cross_entropy(lua_State *L) {
    static const char fn[] = "cross_entropy";
    collapse_tensor *logits = T(1, "logits");
    double loss = 0;
    CHECK_STATUS(L, collapse_cross_entropy(logits, T(2, "labels"), &loss, kernel_output(L, 3, fn, "grad", logits, 0)));
    lua_pushnumber(L, loss);
    kernel_return(L, (const int[]){3}, 1);
    return 2;
}

void binding_open_nn(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"linear_forward", l_linear_forward}, {"linear_backward", l_linear_backward},
        {"batchnorm_forward", l_batchnorm_forward}, {"batchnorm_backward", l_batchnorm_backward},
        {"batchnorm2d_forward", l_batchnorm2d_forward}, {"batchnorm2d_backward", l_batchnorm2d_backward},
        {"batchnorm_relu_forward", l_batchnorm_relu_forward}, {"batchnorm_relu_backward", l_batchnorm_relu_backward},
        {"relu_forward", l_relu_forward}, {"relu_backward", l_relu_backward},
        {"tanh_forward", l_tanh_forward}, {"tanh_backward", l_tanh_backward},
        {"cross_entropy", l_cross_entropy}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
