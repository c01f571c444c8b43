/* collapse.blas_info() and thread control. */
#include "lua/binding.h"

static int l_blas_info(lua_State *L) {
    collapse_blas_info info;
    collapse_blas_get_info(&info);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, info.config);
    lua_setfield(L, -2, "config");
    lua_pushstring(L, info.core);
    lua_setfield(L, -2, "core");
    lua_pushinteger(L, info.threads);
    lua_setfield(L, -2, "threads");
    lua_pushboolean(L, info.cpu_avx2);
    lua_setfield(L, -2, "cpu_avx2");
    lua_pushboolean(L, info.cpu_avx512);
    lua_setfield(L, -2, "cpu_avx512");
    lua_pushboolean(L, info.generic_core);
    lua_setfield(L, -2, "generic_core");
    return 1;
}

static int l_set_num_threads(lua_State *L) {
    CHECK_STATUS(L, collapse_set_num_threads((int)arg_integer(L, 1)));
    return 0;
}

static int l_get_num_threads(lua_State *L) {
    lua_pushinteger(L, collapse_get_num_threads());
    return 1;
}

static int l_set_flush_denormal(lua_State *L) {
    if (!lua_isboolean(L, 1))
        return binding_errorf(L, "set_flush_denormal: argument 1 (on) must be a boolean, got %s", luaL_typename(L, 1));
    lua_pushboolean(L, collapse_set_flush_denormal(lua_toboolean(L, 1)));
    return 1;
}

static int l_get_flush_denormal(lua_State *L) {
    lua_pushboolean(L, collapse_get_flush_denormal());
    return 1;
}

static int l_bytes_in_use(lua_State *L) {
    lua_pushinteger(L, collapse_bytes_in_use());
    return 1;
}

static int l_crc32(lua_State *L) {
    size_t len;
    const char *s = arg_string(L, 1, &len);
    lua_Integer crc = arg_optinteger(L, 2, 0);
    lua_pushinteger(L, collapse_crc32((uint32_t)crc, s, len));
    return 1;
}

void binding_open_blas(lua_State *L) {
    static const luaL_Reg fns[] = {{"blas_info", l_blas_info}, {"set_num_threads", l_set_num_threads},
                                   {"get_num_threads", l_get_num_threads}, {"set_flush_denormal", l_set_flush_denormal},
                                   {"get_flush_denormal", l_get_flush_denormal}, {"bytes_in_use", l_bytes_in_use}, {"crc32", l_crc32},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
