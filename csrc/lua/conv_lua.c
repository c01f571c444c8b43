/* Binding of the convolutional layer kernels (conv2d, batchnorm2d, max/avg pooling): argument
 * checks, dtype dispatch, one call into csrc/nn. Tensors must be contiguous NCHW (modules
 * allocate them so); every size the C kernel relies on is checked here against the tensors. */
#include "lua/binding.h"

#include "collapse.h"

/* A contiguous tensor of dtype dt (or NULL when optional and nil) with numel elements (-1: any). */
/* The NCHW shape of a 4-d tensor. */
static void shape4(lua_State *L, collapse_tensor *t, const char *fn, const char *name, int64_t s[4]) {
    if (collapse_tensor_ndim(t) != 4)
        luaL_error(L, "%s: %s must be 4-d [N x C x H x W], got %d dimensions", fn, name, collapse_tensor_ndim(t));
    for (int i = 0; i < 4; i++) s[i] = collapse_tensor_size(t, i);
}

static int64_t numel4(const int64_t s[4]) { return s[0] * s[1] * s[2] * s[3]; }

static void push_shape(lua_State *L, const int64_t s[4]) {
    lua_createtable(L, 4, 0);
    for (int i = 0; i < 4; i++) {
        lua_pushinteger(L, (lua_Integer)s[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* Output shape and column count of a convolution; raises the C message when they do not fit. */
static int64_t conv_shapes(lua_State *L, const int64_t xs[4], const int64_t ws[4], lua_Integer stride,
                           lua_Integer padding, int64_t ys[4]) {
    int64_t ncol = 0;
    CHECK_STATUS(L, collapse_conv2d_output_shape(xs, ws, (int64_t)stride, (int64_t)padding, ys, &ncol));
    return ncol;
}

/* conv2d_shape(x, weight, stride, padding) -> {N, Cout, Ho, Wo}, columns element count */
static int l_conv2d_shape(lua_State *L) {
    const char *fn = "conv2d_shape";
    int64_t xs[4], ws[4], ys[4];
    collapse_tensor *x = tensor_test(L, 1), *w = tensor_test(L, 2);
    if (!x) return luaL_error(L, "%s: x must be a tensor, got %s", fn, luaL_typename(L, 1));
    if (!w) return luaL_error(L, "%s: weight must be a tensor, got %s", fn, luaL_typename(L, 2));
    shape4(L, x, fn, "x", xs);
    shape4(L, w, fn, "weight", ws);
    int64_t ncol = conv_shapes(L, xs, ws, luaL_checkinteger(L, 3), luaL_checkinteger(L, 4), ys);
    push_shape(L, ys);
    lua_pushinteger(L, (lua_Integer)ncol);
    return 2;
}

/* conv2d_forward(x, weight, bias|nil, y, columns|nil, stride, padding) */
static int l_conv2d_forward(lua_State *L) {
    const char *fn = "conv2d_forward";
    collapse_dtype dt = float_dtype(L, 1, fn, "x");
    int64_t xs[4], ws[4], ys[4];
    collapse_tensor *x = arg_tensor(L, 1, fn, "x", dt, -1, 0);
    shape4(L, x, fn, "x", xs);
    collapse_tensor *W = arg_tensor(L, 2, fn, "weight", dt, -1, 0);
    shape4(L, W, fn, "weight", ws);
    lua_Integer stride = luaL_checkinteger(L, 6), padding = luaL_checkinteger(L, 7);
    int64_t ncol = conv_shapes(L, xs, ws, stride, padding, ys);
    collapse_tensor *b = arg_tensor(L, 3, fn, "bias", dt, ws[0], 1);
    collapse_tensor *y = arg_tensor(L, 4, fn, "output", dt, numel4(ys), 0);
    collapse_tensor *col = arg_tensor(L, 5, fn, "columns", dt, ncol, ncol == 0);
    collapse_status s = dt == COLLAPSE_FLOAT32
        ? collapse_conv2d_forward_f32(xs, ws, ptr(x), ptr(y), ptr(W), ptr(b), ptr(col), stride, padding)
        : collapse_conv2d_forward_f64(xs, ws, ptr(x), ptr(y), ptr(W), ptr(b), ptr(col), stride, padding);
    CHECK_STATUS(L, s);
    return 0;
}

/* conv2d_backward(x, weight, gy, gx|nil, gW|nil, gb|nil, columns|nil, stride, padding) */
static int l_conv2d_backward(lua_State *L) {
    const char *fn = "conv2d_backward";
    collapse_dtype dt = float_dtype(L, 1, fn, "x");
    int64_t xs[4], ws[4], ys[4];
    collapse_tensor *x = arg_tensor(L, 1, fn, "x", dt, -1, 0);
    shape4(L, x, fn, "x", xs);
    collapse_tensor *W = arg_tensor(L, 2, fn, "weight", dt, -1, 0);
    shape4(L, W, fn, "weight", ws);
    lua_Integer stride = luaL_checkinteger(L, 8), padding = luaL_checkinteger(L, 9);
    int64_t ncol = conv_shapes(L, xs, ws, stride, padding, ys);
    collapse_tensor *gy = arg_tensor(L, 3, fn, "grad_output", dt, numel4(ys), 0);
    collapse_tensor *gx = arg_tensor(L, 4, fn, "grad_input", dt, numel4(xs), 1);
    collapse_tensor *gW = arg_tensor(L, 5, fn, "weight_grad", dt, numel4(ws), 1);
    collapse_tensor *gb = arg_tensor(L, 6, fn, "bias_grad", dt, ws[0], 1);
    collapse_tensor *col = arg_tensor(L, 7, fn, "columns", dt, ncol, ncol == 0 || (!gx && !gW));
    collapse_status s = dt == COLLAPSE_FLOAT32
        ? collapse_conv2d_backward_f32(xs, ws, ptr(x), ptr(gy), ptr(gx), ptr(W), ptr(gW), ptr(gb), ptr(col), stride,
                                       padding)
        : collapse_conv2d_backward_f64(xs, ws, ptr(x), ptr(gy), ptr(gx), ptr(W), ptr(gW), ptr(gb), ptr(col), stride,
                                       padding);
    CHECK_STATUS(L, s);
    return 0;
}

/* batchnorm2d_forward(x, y, gamma|nil, beta|nil, running_mean|nil, running_var|nil, train, momentum, eps,
 *                     save_mean, save_invstd) */
static int l_batchnorm2d_forward(lua_State *L) {
    const char *fn = "batchnorm2d_forward";
    collapse_dtype dt = float_dtype(L, 1, fn, "x");
    int64_t xs[4];
    collapse_tensor *x = arg_tensor(L, 1, fn, "x", dt, -1, 0);
    shape4(L, x, fn, "x", xs);
    const int64_t c = xs[1];
    collapse_tensor *y = arg_tensor(L, 2, fn, "output", dt, numel4(xs), 0);
    collapse_tensor *gamma = arg_tensor(L, 3, fn, "weight", dt, c, 1);
    collapse_tensor *beta = arg_tensor(L, 4, fn, "bias", dt, c, 1);
    collapse_tensor *rm = arg_tensor(L, 5, fn, "running_mean", dt, c, 1);
    collapse_tensor *rv = arg_tensor(L, 6, fn, "running_var", dt, c, 1);
    int train = lua_toboolean(L, 7);
    double momentum = luaL_checknumber(L, 8), eps = luaL_checknumber(L, 9);
    collapse_tensor *sm = arg_tensor(L, 10, fn, "save_mean", dt, c, 0);
    collapse_tensor *si = arg_tensor(L, 11, fn, "save_invstd", dt, c, 0);
    collapse_status s;
    if (train)
        s = dt == COLLAPSE_FLOAT32
            ? collapse_batchnorm2d_forward_train_f32(xs, ptr(x), ptr(y), ptr(gamma), ptr(beta), ptr(rm), ptr(rv),
                                                     ptr(sm), ptr(si), momentum, eps)
            : collapse_batchnorm2d_forward_train_f64(xs, ptr(x), ptr(y), ptr(gamma), ptr(beta), ptr(rm), ptr(rv),
                                                     ptr(sm), ptr(si), momentum, eps);
    else {
        if (!rm || !rv) return luaL_error(L, "%s: evaluate mode needs running statistics", fn);
        s = dt == COLLAPSE_FLOAT32
            ? collapse_batchnorm2d_forward_eval_f32(xs, ptr(x), ptr(y), ptr(gamma), ptr(beta), ptr(rm), ptr(rv), eps)
            : collapse_batchnorm2d_forward_eval_f64(xs, ptr(x), ptr(y), ptr(gamma), ptr(beta), ptr(rm), ptr(rv), eps);
    }
    CHECK_STATUS(L, s);
    return 0;
}

/* batchnorm2d_backward(x, gy, gx|nil, gamma|nil, save_mean, save_invstd, ggamma|nil, gbeta|nil, train,
 *                      running_mean|nil, running_var|nil, eps) */
static int l_batchnorm2d_backward(lua_State *L) {
    const char *fn = "batchnorm2d_backward";
    collapse_dtype dt = float_dtype(L, 1, fn, "x");
    int64_t xs[4];
    collapse_tensor *x = arg_tensor(L, 1, fn, "x", dt, -1, 0);
    shape4(L, x, fn, "x", xs);
    const int64_t c = xs[1];
    collapse_tensor *gy = arg_tensor(L, 2, fn, "grad_output", dt, numel4(xs), 0);
    collapse_tensor *gx = arg_tensor(L, 3, fn, "grad_input", dt, numel4(xs), 1);
    collapse_tensor *gamma = arg_tensor(L, 4, fn, "weight", dt, c, 1);
    collapse_tensor *sm = arg_tensor(L, 5, fn, "save_mean", dt, c, 0);
    collapse_tensor *si = arg_tensor(L, 6, fn, "save_invstd", dt, c, 0);
    collapse_tensor *gg = arg_tensor(L, 7, fn, "weight_grad", dt, c, 1);
    collapse_tensor *gb = arg_tensor(L, 8, fn, "bias_grad", dt, c, 1);
    int train = lua_toboolean(L, 9);
    collapse_tensor *rm = arg_tensor(L, 10, fn, "running_mean", dt, c, 1);
    collapse_tensor *rv = arg_tensor(L, 11, fn, "running_var", dt, c, 1);
    double eps = luaL_checknumber(L, 12);
    collapse_status s;
    if (train)
        s = dt == COLLAPSE_FLOAT32
            ? collapse_batchnorm2d_backward_train_f32(xs, ptr(x), ptr(gy), ptr(gx), ptr(gamma), ptr(gg), ptr(gb),
                                                      ptr(sm), ptr(si))
            : collapse_batchnorm2d_backward_train_f64(xs, ptr(x), ptr(gy), ptr(gx), ptr(gamma), ptr(gg), ptr(gb),
                                                      ptr(sm), ptr(si));
    else
        s = dt == COLLAPSE_FLOAT32
            ? collapse_batchnorm2d_backward_eval_f32(xs, ptr(x), ptr(gy), ptr(gx), ptr(gamma), ptr(gg), ptr(gb),
                                                     ptr(rm), ptr(rv), eps)
            : collapse_batchnorm2d_backward_eval_f64(xs, ptr(x), ptr(gy), ptr(gx), ptr(gamma), ptr(gg), ptr(gb),
                                                     ptr(rm), ptr(rv), eps);
    CHECK_STATUS(L, s);
    return 0;
}

/* pool2d_shape(x, kernel, stride) -> {N, C, Ho, Wo} */
static int l_pool2d_shape(lua_State *L) {
    const char *fn = "pool2d_shape";
    int64_t xs[4], ys[4];
    collapse_tensor *x = tensor_test(L, 1);
    if (!x) return luaL_error(L, "%s: x must be a tensor, got %s", fn, luaL_typename(L, 1));
    shape4(L, x, fn, "x", xs);
    CHECK_STATUS(L, collapse_pool2d_output_shape(xs, luaL_checkinteger(L, 2), luaL_checkinteger(L, 3), ys));
    push_shape(L, ys);
    return 1;
}

/* The input shape of a pooling call (from tensor arg) and its output shape. */
static void pool_shapes(lua_State *L, collapse_tensor *t, const char *fn, const char *name, lua_Integer k,
                        lua_Integer stride, int64_t xs[4], int64_t ys[4]) {
    shape4(L, t, fn, name, xs);
    CHECK_STATUS(L, collapse_pool2d_output_shape(xs, (int64_t)k, (int64_t)stride, ys));
}

/* maxpool2d_forward(x, y, indices|nil, kernel, stride) */
static int l_maxpool2d_forward(lua_State *L) {
    const char *fn = "maxpool2d_forward";
    collapse_dtype dt = float_dtype(L, 1, fn, "x");
    int64_t xs[4], ys[4];
    collapse_tensor *x = arg_tensor(L, 1, fn, "x", dt, -1, 0);
    lua_Integer k = luaL_checkinteger(L, 4), stride = luaL_checkinteger(L, 5);
    pool_shapes(L, x, fn, "x", k, stride, xs, ys);
    collapse_tensor *y = arg_tensor(L, 2, fn, "output", dt, numel4(ys), 0);
    collapse_tensor *idx = arg_tensor(L, 3, fn, "indices", COLLAPSE_INT32, numel4(ys), 1);
    collapse_status s = dt == COLLAPSE_FLOAT32
        ? collapse_maxpool2d_forward_f32(xs, ptr(x), ptr(y), ptr(idx), k, stride)
        : collapse_maxpool2d_forward_f64(xs, ptr(x), ptr(y), ptr(idx), k, stride);
    CHECK_STATUS(L, s);
    return 0;
}

/* maxpool2d_backward(gy, indices, gx, kernel, stride): gx has the input's shape */
static int l_maxpool2d_backward(lua_State *L) {
    const char *fn = "maxpool2d_backward";
    collapse_dtype dt = float_dtype(L, 3, fn, "grad_input");
    int64_t xs[4], ys[4];
    collapse_tensor *gx = arg_tensor(L, 3, fn, "grad_input", dt, -1, 0);
    lua_Integer k = luaL_checkinteger(L, 4), stride = luaL_checkinteger(L, 5);
    pool_shapes(L, gx, fn, "grad_input", k, stride, xs, ys);
    collapse_tensor *gy = arg_tensor(L, 1, fn, "grad_output", dt, numel4(ys), 0);
    collapse_tensor *idx = arg_tensor(L, 2, fn, "indices", COLLAPSE_INT32, numel4(ys), 0);
    collapse_status s = dt == COLLAPSE_FLOAT32
        ? collapse_maxpool2d_backward_f32(xs, ptr(gy), ptr(gx), ptr(idx), k, stride)
        : collapse_maxpool2d_backward_f64(xs, ptr(gy), ptr(gx), ptr(idx), k, stride);
    CHECK_STATUS(L, s);
    return 0;
}

/* avgpool2d_forward(x, y, kernel, stride) */
static int l_avgpool2d_forward(lua_State *L) {
    const char *fn = "avgpool2d_forward";
    collapse_dtype dt = float_dtype(L, 1, fn, "x");
    int64_t xs[4], ys[4];
    collapse_tensor *x = arg_tensor(L, 1, fn, "x", dt, -1, 0);
    lua_Integer k = luaL_checkinteger(L, 3), stride = luaL_checkinteger(L, 4);
    pool_shapes(L, x, fn, "x", k, stride, xs, ys);
    collapse_tensor *y = arg_tensor(L, 2, fn, "output", dt, numel4(ys), 0);
    collapse_status s = dt == COLLAPSE_FLOAT32 ? collapse_avgpool2d_forward_f32(xs, ptr(x), ptr(y), k, stride)
                                               : collapse_avgpool2d_forward_f64(xs, ptr(x), ptr(y), k, stride);
    CHECK_STATUS(L, s);
    return 0;
}

/* avgpool2d_backward(gy, gx, kernel, stride): gx has the input's shape */
static int l_avgpool2d_backward(lua_State *L) {
    const char *fn = "avgpool2d_backward";
    collapse_dtype dt = float_dtype(L, 2, fn, "grad_input");
    int64_t xs[4], ys[4];
    collapse_tensor *gx = arg_tensor(L, 2, fn, "grad_input", dt, -1, 0);
    lua_Integer k = luaL_checkinteger(L, 3), stride = luaL_checkinteger(L, 4);
    pool_shapes(L, gx, fn, "grad_input", k, stride, xs, ys);
    collapse_tensor *gy = arg_tensor(L, 1, fn, "grad_output", dt, numel4(ys), 0);
    collapse_status s = dt == COLLAPSE_FLOAT32 ? collapse_avgpool2d_backward_f32(xs, ptr(gy), ptr(gx), k, stride)
                                               : collapse_avgpool2d_backward_f64(xs, ptr(gy), ptr(gx), k, stride);
    CHECK_STATUS(L, s);
    return 0;
}

void binding_open_conv(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"conv2d_shape", l_conv2d_shape}, {"conv2d_forward", l_conv2d_forward},
        {"conv2d_backward", l_conv2d_backward}, {"batchnorm2d_forward", l_batchnorm2d_forward},
        {"batchnorm2d_backward", l_batchnorm2d_backward}, {"pool2d_shape", l_pool2d_shape},
        {"maxpool2d_forward", l_maxpool2d_forward}, {"maxpool2d_backward", l_maxpool2d_backward},
        {"avgpool2d_forward", l_avgpool2d_forward}, {"avgpool2d_backward", l_avgpool2d_backward},
        {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
