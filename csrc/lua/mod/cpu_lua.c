/* require("collapse.cpu"): the BLAS kernel choice, made before collapse.core loads OpenBLAS.
 * A module of its own, not linked against OpenBLAS: OpenBLAS reads OPENBLAS_CORETYPE once, in
 * its load-time constructor, so the variable must be set before libopenblas enters the process.
 * lua/collapse/init.lua calls select() first, then requires collapse.core. */
#include <lauxlib.h>
#include <lua.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_select.h"

#define EXPORT __attribute__((visibility("default")))
EXPORT int luaopen_collapse_cpu(lua_State *L);

static const char *VENDORS[] = {"other", "intel", "amd", "hygon", "centaur", "zhaoxin", NULL};
static const char *FLAGS[] = {"avx", "avx2", "fma", "avx512f", "avx512vl", "avx512_bf16", NULL};

static int *flag_slot(cl_cpu *c, int i) {
    int *slots[] = {&c->avx, &c->avx2, &c->fma, &c->avx512f, &c->avx512vl, &c->avx512_bf16};
    return slots[i];
}

static void push_cpu(lua_State *L, const cl_cpu *c) {
    lua_createtable(L, 0, 9);
    lua_pushstring(L, VENDORS[c->vendor]);
    lua_setfield(L, -2, "vendor");
    lua_pushinteger(L, c->family);
    lua_setfield(L, -2, "family");
    lua_pushinteger(L, c->model);
    lua_setfield(L, -2, "model");
    for (int i = 0; FLAGS[i]; i++) {
        lua_pushboolean(L, *flag_slot((cl_cpu *)c, i));
        lua_setfield(L, -2, FLAGS[i]);
    }
}

/* A feature table as features() returns it (missing flags are false); the default is this CPU. */
static void check_cpu(lua_State *L, int arg, const char *fn, cl_cpu *c) {
    if (lua_isnoneornil(L, arg)) { cl_cpu_read(c); return; }
    if (!lua_istable(L, arg)) luaL_error(L, "%s: argument #%d must be a CPU table {vendor=, family=, model=, avx2=, ...}, got %s", fn, arg, luaL_typename(L, arg));
    memset(c, 0, sizeof *c);
    lua_getfield(L, arg, "vendor");
    const char *v = lua_tostring(L, -1);
    int found = 0;
    for (int i = 0; v && VENDORS[i]; i++)
        if (!strcmp(v, VENDORS[i])) { c->vendor = (cl_vendor)i; found = 1; }
    if (!found) luaL_error(L, "%s: field 'vendor' must be one of intel, amd, hygon, centaur, zhaoxin, other; got %s", fn, v ? v : luaL_typename(L, -1));
    lua_pop(L, 1);
    const char *ints[] = {"family", "model"};
    int *slots[] = {&c->family, &c->model};
    for (int i = 0; i < 2; i++) {
        lua_getfield(L, arg, ints[i]);
        int ok;
        lua_Integer n = lua_tointegerx(L, -1, &ok);
        if (!ok || n < 0 || n > 0xffff) luaL_error(L, "%s: field '%s' must be an integer in 0..65535", fn, ints[i]);
        *slots[i] = (int)n;
        lua_pop(L, 1);
    }
    for (int i = 0; FLAGS[i]; i++) {
        lua_getfield(L, arg, FLAGS[i]);
        *flag_slot(c, i) = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
}

static int l_features(lua_State *L) {
    cl_cpu c;
    cl_cpu_read(&c);
    push_cpu(L, &c);
    return 1;
}

static int l_openblas_pick(lua_State *L) {
    cl_cpu c;
    check_cpu(L, 1, "cpu.openblas_pick", &c);
    lua_pushstring(L, cl_cpu_openblas_pick(&c));
    return 1;
}

static int l_best_core(lua_State *L) {
    cl_cpu c;
    check_cpu(L, 1, "cpu.best_core", &c);
    lua_pushstring(L, cl_cpu_best_core(&c));
    lua_pushstring(L, cl_cpu_best_feature(&c));
    return 2;
}

/* choose(cpu, pick): the core to set, or nil when `pick` is as good as the CPU allows. */
static int l_choose(lua_State *L) {
    cl_cpu c;
    check_cpu(L, 1, "cpu.choose", &c);
    const char *pick = luaL_optstring(L, 2, NULL);
    const char *core = cl_cpu_choose(&c, pick ? pick : cl_cpu_openblas_pick(&c));
    if (core) lua_pushstring(L, core); else lua_pushnil(L);
    return 1;
}

static int l_core_rank(lua_State *L) {
    lua_pushinteger(L, cl_core_rank(luaL_checkstring(L, 1)));
    return 1;
}

/* Is libopenblas already mapped into this process (then setting the variable is too late)? */
static int openblas_loaded(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, "libopenblas") != NULL;
    fclose(f);
    return found;
}

/* setenv(k, v): Lua has no way to change its own process environment. */
static int l_setenv(lua_State *L) {
    const char *k = luaL_checkstring(L, 1), *v = luaL_checkstring(L, 2);
    if (setenv(k, v, 1) != 0) return luaL_error(L, "cpu.setenv: cannot set %s", k);
    return 0;
}

static int l_openblas_loaded(lua_State *L) {
    lua_pushboolean(L, openblas_loaded());
    return 1;
}

EXPORT int luaopen_collapse_cpu(lua_State *L) {
    static const luaL_Reg fns[] = {{"features", l_features}, {"openblas_pick", l_openblas_pick},
                                   {"best_core", l_best_core}, {"choose", l_choose}, {"core_rank", l_core_rank},
                                   {"setenv", l_setenv}, {"openblas_loaded", l_openblas_loaded}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
