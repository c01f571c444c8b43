/* Helpers shared by the Lua binding files. The binding is thin: it checks Lua arguments,
 * calls the C API and raises its message as a Lua error. Only csrc/lua includes Lua headers. */
#ifndef COLLAPSE_LUA_BINDING_H
#define COLLAPSE_LUA_BINDING_H

#include <lauxlib.h>
#include <lua.h>

#include "collapse.h"

#define TENSOR_MT "collapse.tensor"
#define RNG_MT "collapse.rng"

/* Userdata of a tensor: the handle is NULL until the C call that fills it succeeds and after
 * __close, so __gc is always safe (the metatable is set before anything is allocated). */
typedef struct tensor_ud {
    collapse_tensor *t;
} tensor_ud;

/* Raises the last C error as a Lua error (never returns), prefixed with "file:line: " of the
 * user's code: the first Lua frame on the stack that is not a file of the collapse library. */
int binding_raise(lua_State *L);
int binding_error(lua_State *L, const char *msg); /* the same for a message of the binding */
int binding_errorf(lua_State *L, const char *fmt, ...); /* binding_error of a lua_pushfstring format */
/* "fn: argument N: extramsg" ("fn: self: ..." for a method's self) blaming the user's line. */
int binding_argerror(lua_State *L, int arg, const char *extramsg);
/* Plain Lua arguments, raising through binding_argerror ("fill: argument 1: number expected, got
 * string"): used instead of luaL_check*, whose "bad argument #1 to 'fill'" is Lua's wording. */
lua_Number arg_number(lua_State *L, int arg);
lua_Integer arg_integer(lua_State *L, int arg);
lua_Number arg_optnumber(lua_State *L, int arg, lua_Number def);
lua_Integer arg_optinteger(lua_State *L, int arg, lua_Integer def);
const char *arg_string(lua_State *L, int arg, size_t *len);
void arg_table(lua_State *L, int arg, const char *what);
/* Raises unless s is COLLAPSE_OK. */
#define CHECK_STATUS(L, s) \
    do { if ((s) != COLLAPSE_OK) binding_raise(L); } while (0)

/* Pushes a new empty tensor userdata and returns the slot to fill. */
collapse_tensor **tensor_push_slot(lua_State *L);
/* Pushes a filled slot's tensor result and accounts its memory with the GC. */
void tensor_pushed(lua_State *L);
/* Pushes an existing tensor (takes over one reference). */
void tensor_push(lua_State *L, collapse_tensor *t);
/* The tensor at arg (error "fn: argument N: tensor expected, got X"). */
collapse_tensor *tensor_check(lua_State *L, int arg);
collapse_tensor *tensor_test(lua_State *L, int arg); /* NULL if not a live tensor */
/* Dtype from an optional string argument, default given. */
collapse_dtype dtype_opt(lua_State *L, int arg, collapse_dtype def);
/* Reads a shape array such as {128, 64}; returns ndim. */
int shape_check(lua_State *L, int arg, int64_t *shape);
/* Tells the Lua GC about tensor memory (collects when tensor bytes outgrow a threshold). */
void binding_account(lua_State *L);

collapse_rng *rng_check(lua_State *L, int arg);

/* A tensor argument of a kernel binding: NULL for nil/none (the C kernel says whether that is
 * allowed), else the live tensor; "fn: name must be a tensor, got number" or "fn: name is a
 * closed tensor" otherwise. Shapes, dtypes and contiguity are the C kernel's to check. */
collapse_tensor *kernel_tensor(lua_State *L, int arg, const char *fn, const char *name);
/* An output argument of a kernel binding. A tensor of like's dtype is used as it is (the kernel
 * resizes it); false (or nil when make_if_nil), or a tensor of another dtype, is replaced in its
 * stack slot by a new empty tensor of like's dtype; nil otherwise means "not wanted" (NULL).
 * So the Lua layer holds outputs as `self.output = core.k(x, self.output, ...)`, made once. */
collapse_tensor *kernel_output(lua_State *L, int arg, const char *fn, const char *name, const collapse_tensor *like,
                               int make_if_nil);
/* Returns the values at the given argument slots (the outputs after kernel_output). */
int kernel_return(lua_State *L, const int *args, int n);

/* Each area file registers its functions into the table on top (module.c calls them all). */
void binding_open_tensor(lua_State *L);
void binding_open_rng(lua_State *L);
void binding_open_blas(lua_State *L);
void binding_open_system(lua_State *L);
void binding_open_nn(lua_State *L);
void binding_open_conv(lua_State *L);
void binding_open_optim(lua_State *L);
void binding_open_nc(lua_State *L);
void binding_open_io(lua_State *L);
void binding_open_bound(lua_State *L);
void binding_open_images(lua_State *L); /* image data sets, .npz */
void binding_open_cnn(lua_State *L); /* dropout, global average pooling, residual sums */

#endif
