/* Registers the binding areas beyond tensors (nn, optim, nc, io). */
#include "lua/binding.h"

void binding_open_nn(lua_State *L);
void binding_open_conv(lua_State *L);
void binding_open_nc(lua_State *L);
void binding_open_io(lua_State *L);
void binding_open_bound(lua_State *L);
void binding_open_images(lua_State *L); /* image data sets, .npz (data branch) */

void binding_open_extra(lua_State *L) {
    binding_open_nn(L);
    binding_open_conv(L);
    binding_open_nc(L);
    binding_open_io(L);
    binding_open_bound(L);
    binding_open_images(L);
}
