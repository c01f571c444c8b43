/* Binding of the CNN layer kernels (csrc/nn/dropout.c, gap2d.c, residual.c): thin wrappers, one
 * C call each; outputs are made here when false/nil and resized by the kernel (kernel_output). */
#include "lua/binding.h"

/* dropout_forward(x, y|false, mask|false, p, rng) -> y, mask */
static int l_dropout_forward(lua_State *L) {
    static const char fn[] = "dropout_forward";
    collapse_tensor *x = kernel_tensor(L, 1, fn, "input");
    double p = luaL_checknumber(L, 4);
    collapse_rng *g = rng_check(L, 5);
    CHECK_STATUS(L, collapse_dropout_forward(x, kernel_output(L, 2, fn, "output", x, 1),
                                             kernel_output(L, 3, fn, "mask", x, 1), p, g));
    return kernel_return(L, (const int[]){2, 3}, 2);
}

/* dropout_backward(gy, gx|false, mask) -> gx */
static int l_dropout_backward(lua_State *L) {
    static const char fn[] = "dropout_backward";
    collapse_tensor *mask = kernel_tensor(L, 3, fn, "mask");
    CHECK_STATUS(L, collapse_dropout_backward(kernel_tensor(L, 1, fn, "grad_output"),
                                              kernel_output(L, 2, fn, "grad_input", mask, 1), mask));
    return kernel_return(L, (const int[]){2}, 1);
}

/* global_avg_pool2d_forward(x, y|false) -> y */
static int l_gap2d_forward(lua_State *L) {
    static const char fn[] = "global_avg_pool2d_forward";
    collapse_tensor *x = kernel_tensor(L, 1, fn, "input");
    CHECK_STATUS(L, collapse_global_avg_pool2d_forward(x, kernel_output(L, 2, fn, "output", x, 1)));
    return kernel_return(L, (const int[]){2}, 1);
}

/* global_avg_pool2d_backward(x, gy, gx|false) -> gx */
static int l_gap2d_backward(lua_State *L) {
    static const char fn[] = "global_avg_pool2d_backward";
    collapse_tensor *x = kernel_tensor(L, 1, fn, "input");
    CHECK_STATUS(L, collapse_global_avg_pool2d_backward(x, kernel_tensor(L, 2, fn, "grad_output"),
                                                        kernel_output(L, 3, fn, "grad_input", x, 1)));
    return kernel_return(L, (const int[]){3}, 1);
}

typedef collapse_status (*add_kernel)(const collapse_tensor *, const collapse_tensor *, collapse_tensor *);

/* add_forward / add_relu_forward(a, b, y|false) -> y */
static int add_binding(lua_State *L, const char *fn, add_kernel k) {
    collapse_tensor *a = kernel_tensor(L, 1, fn, "a");
    CHECK_STATUS(L, k(a, kernel_tensor(L, 2, fn, "b"), kernel_output(L, 3, fn, "output", a, 1)));
    return kernel_return(L, (const int[]){3}, 1);
}
static int l_add_forward(lua_State *L) { return add_binding(L, "add_forward", collapse_add_forward); }
static int l_add_relu_forward(lua_State *L) { return add_binding(L, "add_relu_forward", collapse_add_relu_forward); }

/* relu_mask_backward(y, gy, gx|false) -> gx */
static int l_relu_mask_backward(lua_State *L) {
    static const char fn[] = "relu_mask_backward";
    collapse_tensor *y = kernel_tensor(L, 1, fn, "output");
    CHECK_STATUS(L, collapse_relu_mask_backward(y, kernel_tensor(L, 2, fn, "grad_output"),
                                                kernel_output(L, 3, fn, "grad_input", y, 1)));
    return kernel_return(L, (const int[]){3}, 1);
}

void binding_open_cnn(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"dropout_forward", l_dropout_forward}, {"dropout_backward", l_dropout_backward},
        {"global_avg_pool2d_forward", l_gap2d_forward}, {"global_avg_pool2d_backward", l_gap2d_backward},
        {"add_forward", l_add_forward}, {"add_relu_forward", l_add_relu_forward},
        {"relu_mask_backward", l_relu_mask_backward},
        {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
