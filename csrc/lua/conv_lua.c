/* Binding of the tensor-level NCHW kernels (conv2d, max/avg pooling): thin wrappers as in
 * nn_lua.c; the C kernels check the shapes and resize the outputs and scratch buffers. */
#include "lua/binding.h"

#define T(i, name) kernel_tensor(L, i, fn, name)

/* conv2d_forward(x, y|nil, W, b|nil, columns|false|nil, stride, padding) -> y, columns
 * columns: a tensor is resized and used; false makes one; nil lets the kernel use a temporary. */
static int l_conv2d_forward(lua_State *L) {
    static const char fn[] = "conv2d_forward";
    collapse_tensor *W = T(3, "weight");
    collapse_tensor *y = kernel_output(L, 2, fn, "output", W, 1), *col = kernel_output(L, 5, fn, "columns", W, 0);
    CHECK_STATUS(L, collapse_conv2d_forward(T(1, "input"), y, W, T(4, "bias"), col, arg_integer(L, 6),
                                            arg_integer(L, 7)));
    return kernel_return(L, (const int[]){2, 5}, 2);
}

/* conv2d_backward(x, gy, gx|false|nil, W, gW|nil, gb|nil, columns|false|nil, stride, padding) -> gx, columns */
static int l_conv2d_backward(lua_State *L) {
    static const char fn[] = "conv2d_backward";
    collapse_tensor *W = T(4, "weight");
    collapse_tensor *gx = kernel_output(L, 3, fn, "grad_input", W, 0), *col = kernel_output(L, 7, fn, "columns", W, 0);
    CHECK_STATUS(L, collapse_conv2d_backward(T(1, "input"), T(2, "grad_output"), gx, W, T(5, "grad_weight"),
                                             T(6, "grad_bias"), col, arg_integer(L, 8), arg_integer(L, 9)));
    return kernel_return(L, (const int[]){3, 7}, 2);
}

/* maxpool2d_forward(x, y|nil, indices|nil, kernel, stride) -> y, indices */
static int l_maxpool2d_forward(lua_State *L) {
    static const char fn[] = "maxpool2d_forward";
    collapse_tensor *x = T(1, "input");
    collapse_tensor *y = kernel_output(L, 2, fn, "output", x, 1);
    collapse_tensor *idx = lua_isnoneornil(L, 3) ? NULL : T(3, "indices");
    if (!idx) { /* a new int32 tensor in the slot (kernel_output makes tensors of a float dtype) */
        int64_t zero = 0;
        lua_settop(L, 5);
        collapse_tensor **slot = tensor_push_slot(L);
        CHECK_STATUS(L, collapse_tensor_new(COLLAPSE_INT32, 1, &zero, slot));
        lua_replace(L, 3);
        idx = *slot;
    }
    CHECK_STATUS(L, collapse_maxpool2d_forward(x, y, idx, arg_integer(L, 4), arg_integer(L, 5)));
    return kernel_return(L, (const int[]){2, 3}, 2);
}

/* maxpool2d_backward(x, gy, gx|nil, indices, kernel, stride) -> gx */
static int l_maxpool2d_backward(lua_State *L) {
    static const char fn[] = "maxpool2d_backward";
    collapse_tensor *x = T(1, "input");
    CHECK_STATUS(L, collapse_maxpool2d_backward(x, T(2, "grad_output"), kernel_output(L, 3, fn, "grad_input", x, 1),
                                                T(4, "indices"), arg_integer(L, 5), arg_integer(L, 6)));
    return kernel_return(L, (const int[]){3}, 1);
}

/* avgpool2d_forward(x, y|nil, kernel, stride) -> y */
static int l_avgpool2d_forward(lua_State *L) {
    static const char fn[] = "avgpool2d_forward";
    collapse_tensor *x = T(1, "input");
    CHECK_STATUS(L, collapse_avgpool2d_forward(x, kernel_output(L, 2, fn, "output", x, 1), arg_integer(L, 3),
                                               arg_integer(L, 4)));
    return kernel_return(L, (const int[]){2}, 1);
}

/* avgpool2d_backward(x, gy, gx|nil, kernel, stride) -> gx */
static int l_avgpool2d_backward(lua_State *L) {
    static const char fn[] = "avgpool2d_backward";
    collapse_tensor *x = T(1, "input");
    CHECK_STATUS(L, collapse_avgpool2d_backward(x, T(2, "grad_output"), kernel_output(L, 3, fn, "grad_input", x, 1),
                                                arg_integer(L, 4), arg_integer(L, 5)));
    return kernel_return(L, (const int[]){3}, 1);
}

void binding_open_conv(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"conv2d_forward", l_conv2d_forward}, {"conv2d_backward", l_conv2d_backward},
        {"maxpool2d_forward", l_maxpool2d_forward}, {"maxpool2d_backward", l_maxpool2d_backward},
        {"avgpool2d_forward", l_avgpool2d_forward}, {"avgpool2d_backward", l_avgpool2d_backward},
        {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
