/* Binding of the collapse bound (csrc/nc/bound.c): optimal_loss and bound. */
#include "lua/binding.h"

#include <math.h>


static void set_number(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

/* optimal_loss(lambda, classes) -> L*, t* */
static int l_optimal_loss(lua_State *L) {
    double loss = 0, t = 0;
    lua_Integer c = luaL_checkinteger(L, 2);
    CHECK_STATUS(L, collapse_optimal_loss(luaL_checknumber(L, 1), c > 1 << 30 ? 1 << 30 : (int)c, &loss, &t));
    lua_pushnumber(L, loss);
    lua_pushnumber(L, t);
    return 2;
}

/* bound(lambda, classes, loss, per_class, bn, q) -> table (see nc.bound in lua/collapse/nc.lua) */
static int l_bound(lua_State *L) {
    collapse_bound_input in;
    collapse_bound_input_defaults(&in);
    in.lambda = luaL_checknumber(L, 1);
    lua_Integer c = luaL_checkinteger(L, 2);
    in.classes = c > 1 << 30 ? 1 << 30 : (int)c;
    in.loss = luaL_checknumber(L, 3);
    in.per_class = luaL_optinteger(L, 4, 0);
    in.bn = lua_isnoneornil(L, 5) ? 1 : lua_toboolean(L, 5);
    in.q = luaL_optnumber(L, 6, 0.05);
    collapse_bound_result r;
    CHECK_STATUS(L, collapse_bound(&in, &r));
    lua_createtable(L, 0, 24);
    lua_pushboolean(L, r.guaranteed);
    lua_setfield(L, -2, "guaranteed");
    if (!r.guaranteed) {
        lua_pushstring(L, r.reason);
        lua_setfield(L, -2, "reason");
    }
    set_number(L, "lambda", in.lambda);
    lua_pushinteger(L, in.classes);
    lua_setfield(L, -2, "classes");
    set_number(L, "loss", in.loss);
    set_number(L, "q", in.q);
    set_number(L, "optimal_loss", r.optimal_loss);
    set_number(L, "t_star", r.t_star);
    set_number(L, "epsilon", r.epsilon);
    set_number(L, "intra_cos_min", r.intra_cos_min);
    set_number(L, "inter_cos_max", r.inter_cos_max);
    set_number(L, "variability_max", r.variability_max);
    set_number(L, "within_energy_max", r.within_energy_max);
    set_number(L, "self_duality_min", r.self_duality_min);
    set_number(L, "intra_cos_q_min", r.intra_cos_q_min);
    lua_pushboolean(L, r.intra_vacuous);
    lua_setfield(L, -2, "intra_vacuous");
    lua_pushboolean(L, r.inter_vacuous);
    lua_setfield(L, -2, "inter_vacuous");
    set_number(L, "r_min", r.r_min);
    set_number(L, "r_max", r.r_max);
    set_number(L, "eta", r.eta);
    lua_createtable(L, 0, 4); /* unclamped, as the reference vectors */
    set_number(L, "intra_cos_min", r.raw_intra_cos_min);
    set_number(L, "inter_cos_max", r.raw_inter_cos_max);
    set_number(L, "self_duality_min", r.raw_self_duality_min);
    set_number(L, "intra_cos_q_min", r.raw_intra_cos_q_min);
    lua_setfield(L, -2, "raw");
    if (in.bn && in.lambda * sqrt((double)in.classes) < 1) {
        lua_createtable(L, 0, 2);
        set_number(L, "intra_cos_min", r.asymptotic_intra_cos_min);
        set_number(L, "inter_cos_max", r.asymptotic_inter_cos_max);
        lua_setfield(L, -2, "asymptotic");
    }
    return 1;
}

void binding_open_bound(lua_State *L) {
    static const luaL_Reg fns[] = {{"optimal_loss", l_optimal_loss}, {"bound", l_bound}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
