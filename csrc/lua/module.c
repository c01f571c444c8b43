/* luaopen_collapse_core: the C module behind require("collapse"); every area registers itself. */
#include "lua/binding.h"

int luaopen_collapse_core(lua_State *L);
COLLAPSE_API int luaopen_collapse_core(lua_State *L) {
    lua_newtable(L);
    binding_open_tensor(L);
    binding_open_rng(L);
    binding_open_blas(L);
    binding_open_system(L);
    binding_open_nn(L);
    binding_open_conv(L);
    binding_open_optim(L);
    binding_open_nc(L);
    binding_open_io(L);
    binding_open_bound(L);
    binding_open_images(L);
    binding_open_cnn(L);
    lua_pushstring(L, COLLAPSE_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
