/* Binding of the fused optimiser steps. The Lua optimiser prepares a param list once per group
 * (core.param_list, rebuilt only when its parameters change): the tensors retained in C arrays,
 * so each step is one call with no table walking, as PyTorch's foreach optimisers. */
#include <stdlib.h>

#include "lua/binding.h"

#define PARAM_LIST_MT "collapse.param_list"

/* The prepared tensors of one group: x (values), g (grads), a and b (state: momentum buffer, or
 * exp_avg and exp_avg_sq; entries may be NULL), per-tensor weight decay and SGD's ready flags. */
typedef struct param_list {
    int n;
    collapse_tensor **x, **g, **a, **b;
    double *wd;
    int *ready;
} param_list;

static void list_free(param_list *p) {
    for (int i = 0; i < p->n; i++) {
        collapse_tensor_release(p->x[i]);
        collapse_tensor_release(p->g[i]);
        collapse_tensor_release(p->a[i]);
        collapse_tensor_release(p->b[i]);
    }
    free(p->x), free(p->g), free(p->a), free(p->b), free(p->wd), free(p->ready);
    p->x = p->g = p->a = p->b = NULL;
    p->wd = NULL;
    p->ready = NULL;
    p->n = 0;
}

static int list_gc(lua_State *L) {
    list_free(luaL_checkudata(L, 1, PARAM_LIST_MT));
    return 0;
}

/* Entry i (1-based) of the array at arg as a retained tensor, or NULL for a missing entry. */
static collapse_tensor *entry(lua_State *L, int arg, int i, const char *what) {
    if (lua_isnoneornil(L, arg)) return NULL;
    lua_rawgeti(L, arg, i);
    collapse_tensor *t = NULL;
    if (!lua_isnil(L, -1) && !(lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
        t = tensor_test(L, -1);
        if (!t) {
            lua_pushfstring(L, "param_list: %s[%d] must be a tensor, got %s", what, i, luaL_typename(L, -1));
            binding_error(L, lua_tostring(L, -1));
        }
    }
    lua_pop(L, 1);
    return collapse_tensor_retain(t);
}

/* param_list(values, grads, state_a|nil, state_b|nil, weight_decays, ready|nil) -> list */
static int l_param_list(lua_State *L) {
    arg_table(L, 1, "table");
    arg_table(L, 2, "table");
    arg_table(L, 5, "table");
    int n = (int)luaL_len(L, 1);
    param_list *p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = (param_list){0};
    luaL_setmetatable(L, PARAM_LIST_MT);
    size_t k = n > 0 ? (size_t)n : 1;
    p->x = calloc(k, sizeof *p->x), p->g = calloc(k, sizeof *p->g), p->a = calloc(k, sizeof *p->a);
    p->b = calloc(k, sizeof *p->b), p->wd = calloc(k, sizeof *p->wd), p->ready = calloc(k, sizeof *p->ready);
    if (!p->x || !p->g || !p->a || !p->b || !p->wd || !p->ready) return binding_error(L, "param_list: out of memory");
    for (int i = 1; i <= n; i++) {
        p->n = i; /* entries retained so far are released by __gc if an error is raised */
        p->x[i - 1] = entry(L, 1, i, "values");
        p->g[i - 1] = entry(L, 2, i, "grads");
        p->a[i - 1] = entry(L, 3, i, "state");
        p->b[i - 1] = entry(L, 4, i, "state");
        lua_rawgeti(L, 5, i);
        p->wd[i - 1] = lua_tonumber(L, -1);
        lua_pop(L, 1);
        if (lua_istable(L, 6)) {
            lua_rawgeti(L, 6, i);
            p->ready[i - 1] = lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
    }
    return 1;
}

static param_list *list_check(lua_State *L, int arg) {
    param_list *p = luaL_testudata(L, arg, PARAM_LIST_MT);
    if (!p) binding_argerror(L, arg, lua_pushfstring(L, "parameter list (core.param_list) expected, got %s", luaL_typename(L, arg)));
    return p;
}

/* sgd_step_many(list, lr, momentum, dampening, nesterov, zero_grad) */
static int l_sgd_step_many(lua_State *L) {
    param_list *p = list_check(L, 1);
    CHECK_STATUS(L, collapse_sgd_step_many(p->n, p->x, p->g, p->a, p->ready, p->wd, arg_number(L, 2),
                                           arg_number(L, 3), arg_number(L, 4), lua_toboolean(L, 5),
                                           lua_toboolean(L, 6)));
    return 0;
}

/* adam_step_many(list, step, lr, beta1, beta2, eps, decoupled, zero_grad) */
static int l_adam_step_many(lua_State *L) {
    param_list *p = list_check(L, 1);
    CHECK_STATUS(L, collapse_adam_step_many(p->n, p->x, p->g, p->a, p->b, p->wd, arg_integer(L, 2),
                                            arg_number(L, 3), arg_number(L, 4), arg_number(L, 5),
                                            arg_number(L, 6), lua_toboolean(L, 7), lua_toboolean(L, 8)));
    return 0;
}

/* zero_grad_many(list): every grad of the list = 0 */
static int l_zero_grad_many(lua_State *L) {
    param_list *p = list_check(L, 1);
    CHECK_STATUS(L, collapse_zero_grad_many(p->n, p->g));
    return 0;
}

void binding_open_optim(lua_State *L) {
    luaL_newmetatable(L, PARAM_LIST_MT);
    lua_pushcfunction(L, list_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"param_list", l_param_list}, {"sgd_step_many", l_sgd_step_many},
                                   {"adam_step_many", l_adam_step_many}, {"zero_grad_many", l_zero_grad_many},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
