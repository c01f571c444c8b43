/* Binding of the optimiser update rules. */
#include "lua/binding.h"

/* sgd_step(x, g, buf|nil, first, lr, momentum, dampening, nesterov, weight_decay [, zero_grad]) */
static int l_sgd_step(lua_State *L) {
    const char *fn = "sgd_step";
    collapse_dtype dt = float_dtype(L, 1, fn, "param");
    collapse_tensor *x = arg_tensor(L, 1, fn, "param", dt, -1, 0);
    int64_t n = collapse_tensor_numel(x);
    collapse_tensor *g = arg_tensor(L, 2, fn, "grad", dt, n, 0);
    collapse_tensor *buf = arg_tensor(L, 3, fn, "momentum_buffer", dt, n, 1);
    int ready = !lua_toboolean(L, 4);
    double lr = luaL_checknumber(L, 5), mom = luaL_checknumber(L, 6), damp = luaL_checknumber(L, 7);
    int nesterov = lua_toboolean(L, 8);
    double wd = luaL_checknumber(L, 9);
    collapse_status s;
    if (lua_toboolean(L, 10)) /* zero the gradient in the same pass */
        s = dt == COLLAPSE_FLOAT32
            ? collapse_sgd_step_zero_grad_f32(n, ptr(x), ptr(g), ptr(buf), &ready, lr, mom, damp, nesterov, wd)
            : collapse_sgd_step_zero_grad_f64(n, ptr(x), ptr(g), ptr(buf), &ready, lr, mom, damp, nesterov, wd);
    else
        s = dt == COLLAPSE_FLOAT32
            ? collapse_sgd_step_f32(n, ptr(x), ptr(g), ptr(buf), &ready, lr, mom, damp, nesterov, wd)
            : collapse_sgd_step_f64(n, ptr(x), ptr(g), ptr(buf), &ready, lr, mom, damp, nesterov, wd);
    CHECK_STATUS(L, s);
    return 0;
}

/* adam_step(x, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled [, zero_grad]) */
static int l_adam_step(lua_State *L) {
    const char *fn = "adam_step";
    collapse_dtype dt = float_dtype(L, 1, fn, "param");
    collapse_tensor *x = arg_tensor(L, 1, fn, "param", dt, -1, 0);
    int64_t n = collapse_tensor_numel(x);
    collapse_tensor *g = arg_tensor(L, 2, fn, "grad", dt, n, 0);
    collapse_tensor *m = arg_tensor(L, 3, fn, "exp_avg", dt, n, 0);
    collapse_tensor *v = arg_tensor(L, 4, fn, "exp_avg_sq", dt, n, 0);
    lua_Integer step = luaL_checkinteger(L, 5);
    double lr = luaL_checknumber(L, 6), b1 = luaL_checknumber(L, 7), b2 = luaL_checknumber(L, 8);
    double eps = luaL_checknumber(L, 9), wd = luaL_checknumber(L, 10);
    int decoupled = lua_toboolean(L, 11);
    collapse_status s;
    if (lua_toboolean(L, 12)) /* zero the gradient in the same pass */
        s = dt == COLLAPSE_FLOAT32
            ? collapse_adam_step_zero_grad_f32(n, ptr(x), ptr(g), ptr(m), ptr(v), step, lr, b1, b2, eps, wd, decoupled)
            : collapse_adam_step_zero_grad_f64(n, ptr(x), ptr(g), ptr(m), ptr(v), step, lr, b1, b2, eps, wd, decoupled);
    else
        s = dt == COLLAPSE_FLOAT32
            ? collapse_adam_step_f32(n, ptr(x), ptr(g), ptr(m), ptr(v), step, lr, b1, b2, eps, wd, decoupled)
            : collapse_adam_step_f64(n, ptr(x), ptr(g), ptr(m), ptr(v), step, lr, b1, b2, eps, wd, decoupled);
    CHECK_STATUS(L, s);
    return 0;
}

void binding_open_optim(lua_State *L) {
    static const luaL_Reg fns[] = {{"sgd_step", l_sgd_step}, {"adam_step", l_adam_step}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
