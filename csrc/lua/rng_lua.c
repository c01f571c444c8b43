/* collapse.rng(seed): seeded generator userdata. */
#include "lua/binding.h"

#include <stdlib.h>
#include <string.h>


static int l_rng(lua_State *L) {
    lua_Integer seed = arg_optinteger(L, 1, 0);
    collapse_rng *g = lua_newuserdatauv(L, sizeof *g, 0);
    luaL_setmetatable(L, RNG_MT);
    collapse_rng_seed(g, (uint64_t)seed);
    return 1;
}

static int g_normal(lua_State *L) {
    collapse_rng *g = rng_check(L, 1);
    lua_Number mean = arg_optnumber(L, 2, 0), sd = arg_optnumber(L, 3, 1);
    lua_pushnumber(L, mean + sd * collapse_rng_normal(g));
    return 1;
}

static int g_uniform(lua_State *L) {
    collapse_rng *g = rng_check(L, 1);
    double u = collapse_rng_uniform(g);
    if (lua_isnoneornil(L, 2)) {
        lua_pushnumber(L, u);
    } else {
        lua_Number lo = arg_number(L, 2), hi = arg_number(L, 3);
        lua_pushnumber(L, lo + (hi - lo) * u);
    }
    return 1;
}

static int g_integer(lua_State *L) {
    collapse_rng *g = rng_check(L, 1);
    lua_Integer lo = arg_integer(L, 2), hi = arg_integer(L, 3);
    if (hi < lo) return binding_errorf(L, "integer: empty range %I..%I (hi must be >= lo)", lo, hi);
    lua_pushinteger(L, collapse_rng_integer(g, lo, hi));
    return 1;
}

/* An int32 tensor holding a random permutation of 1..n. */
static int g_permutation(lua_State *L) {
    collapse_rng *g = rng_check(L, 1);
    lua_Integer n = arg_integer(L, 2);
    if (n < 0 || n > INT32_MAX) return binding_errorf(L, "permutation: n must be in 0..2^31-1, got %I", n);
    int64_t shape[1] = {n};
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_new(COLLAPSE_INT32, 1, shape, slot));
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!perm) return binding_errorf(L, "permutation: out of memory");
    collapse_rng_permutation(g, n, 1, perm);
    int32_t *p = collapse_tensor_data(*slot);
    for (lua_Integer i = 0; i < n; i++) p[i] = (int32_t)perm[i];
    free(perm);
    tensor_pushed(L);
    return 1;
}

static int g_seed(lua_State *L) {
    collapse_rng *g = rng_check(L, 1);
    collapse_rng_seed(g, (uint64_t)arg_integer(L, 2));
    return 0;
}

/* The generator's state as a portable string (collapse_rng_save, for checkpoints) and back. */
static int g_state(lua_State *L) {
    unsigned char buf[COLLAPSE_RNG_STATE_BYTES];
    collapse_rng_save(rng_check(L, 1), buf);
    lua_pushlstring(L, (const char *)buf, sizeof buf);
    return 1;
}

static int g_load_state(lua_State *L) {
    collapse_rng *g = rng_check(L, 1);
    size_t len;
    const char *s = arg_string(L, 2, &len);
    CHECK_STATUS(L, collapse_rng_restore(g, (const unsigned char *)s, len));
    return 0;
}

static int g_tostring(lua_State *L) {
    rng_check(L, 1);
    lua_pushfstring(L, "collapse.rng (xoshiro256**) %p", lua_topointer(L, 1));
    return 1;
}

static const luaL_Reg rng_methods[] = {{"normal", g_normal}, {"uniform", g_uniform}, {"integer", g_integer},
                                       {"permutation", g_permutation}, {"seed", g_seed}, {"state", g_state},
                                       {"load_state", g_load_state}, {NULL, NULL}};

void binding_open_rng(lua_State *L) {
    luaL_newmetatable(L, RNG_MT);
    luaL_newlib(L, rng_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, g_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_setfield(L, -2, "rng_mt"); /* for the Lua layer's argument checks (collapse.checks) */
    lua_pushcfunction(L, l_rng);
    lua_setfield(L, -2, "rng");
}
