/* luaopen_collapse_core: the C module behind require("collapse"). */
#include "lua/binding.h"

#include <stdint.h>

int binding_raise(lua_State *L) {
    const char *msg = collapse_last_error();
    return luaL_error(L, "%s", (msg && *msg) ? msg : "collapse: unknown error");
}

/* Collect when live tensor bytes pass the threshold, then set the next threshold at twice what
 * survived (as Go's GOGC=100): memory stays within ~2x of what the program really holds, however
 * little the Lua heap itself grows. */
static int64_t gc_threshold = 256LL << 20;

void binding_account(lua_State *L) {
    int64_t in_use = collapse_bytes_in_use();
    if (in_use > gc_threshold) {
        lua_gc(L, LUA_GCCOLLECT);
        int64_t live = collapse_bytes_in_use();
        gc_threshold = live * 2 > (256LL << 20) ? live * 2 : (256LL << 20);
    }
}

int luaopen_collapse_core(lua_State *L);
COLLAPSE_API int luaopen_collapse_core(lua_State *L) {
    lua_newtable(L);
    binding_open_tensor(L);
    binding_open_rng(L);
    binding_open_blas(L);
    binding_open_system(L);
    binding_open_extra(L);
    lua_pushstring(L, COLLAPSE_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
