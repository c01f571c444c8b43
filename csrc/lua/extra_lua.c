/* Registers the binding areas beyond tensors (nn, optim, nc, io) as they are added. */
#include "lua/binding.h"

void binding_open_extra(lua_State *L) { (void)L; }
