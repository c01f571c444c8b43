/* Argument checks shared by the kernel bindings (nn_lua.c, conv_lua.c). */
#include "lua/binding.h"

collapse_tensor *arg_tensor(lua_State *L, int arg, const char *fn, const char *name, collapse_dtype dt,
                            int64_t numel, int optional) {
    if (optional && lua_isnoneornil(L, arg)) return NULL;
    collapse_tensor *t = tensor_test(L, arg);
    if (!t) luaL_error(L, "%s: %s must be a tensor, got %s", fn, name, luaL_typename(L, arg));
    if (collapse_tensor_dtype(t) != dt)
        luaL_error(L, "%s: %s is %s, expected %s", fn, name, collapse_dtype_name(collapse_tensor_dtype(t)),
                   collapse_dtype_name(dt));
    if (!collapse_tensor_is_contiguous(t)) luaL_error(L, "%s: %s must be contiguous (use :contiguous())", fn, name);
    if (numel >= 0 && collapse_tensor_numel(t) != numel)
        luaL_error(L, "%s: %s has %I elements, expected %I", fn, name, (lua_Integer)collapse_tensor_numel(t),
                   (lua_Integer)numel);
    return t;
}

collapse_dtype float_dtype(lua_State *L, int arg, const char *fn, const char *name) {
    collapse_tensor *t = tensor_test(L, arg);
    if (!t) luaL_error(L, "%s: %s must be a tensor, got %s", fn, name, luaL_typename(L, arg));
    collapse_dtype dt = collapse_tensor_dtype(t);
    if (dt != COLLAPSE_FLOAT32 && dt != COLLAPSE_FLOAT64)
        luaL_error(L, "%s: %s must be float32 or float64, got %s", fn, name, collapse_dtype_name(dt));
    return dt;
}
