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

/* Raises the last C error as a Lua error (never returns). */
int binding_raise(lua_State *L);
/* Raises unless s is COLLAPSE_OK. */
#define CHECK_STATUS(L, s) \
    do { if ((s) != COLLAPSE_OK) binding_raise(L); } while (0)

/* Pushes a new empty tensor userdata and returns the slot to fill. */
collapse_tensor **tensor_push_slot(lua_State *L);
/* Pushes a filled slot's tensor result and accounts its memory with the GC. */
void tensor_pushed(lua_State *L);
/* Pushes an existing tensor (takes over one reference). */
void tensor_push(lua_State *L, collapse_tensor *t);
/* The tensor at arg (error "bad argument #arg to 'fn' (collapse.tensor expected, got X)"). */
collapse_tensor *tensor_check(lua_State *L, int arg);
collapse_tensor *tensor_test(lua_State *L, int arg); /* NULL if not a live tensor */
/* Dtype from an optional string argument, default given. */
collapse_dtype dtype_opt(lua_State *L, int arg, collapse_dtype def);
/* Reads a shape array such as {128, 64}; returns ndim. */
int shape_check(lua_State *L, int arg, int64_t *shape);
/* Tells the Lua GC about tensor memory (collects when tensor bytes outgrow a threshold). */
void binding_account(lua_State *L);

collapse_rng *rng_check(lua_State *L, int arg);

/* Kernel arguments (args_lua.c): a contiguous tensor of dtype dt at arg (or NULL for nil when
 * optional) holding numel elements (-1: any); the float dtype of the tensor at arg. Errors name
 * the function and the argument. */
collapse_tensor *arg_tensor(lua_State *L, int arg, const char *fn, const char *name, collapse_dtype dt,
                            int64_t numel, int optional);
collapse_dtype float_dtype(lua_State *L, int arg, const char *fn, const char *name);
static inline void *ptr(collapse_tensor *t) { return t ? collapse_tensor_data(t) : NULL; }

void binding_open_tensor(lua_State *L);  /* functions into the table on top */
void binding_open_rng(lua_State *L);
void binding_open_blas(lua_State *L);
void binding_open_system(lua_State *L);
void binding_open_extra(lua_State *L);   /* areas added later: nn, optim, nc, io */

#endif
