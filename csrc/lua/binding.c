/* The helpers every binding area file uses (binding.h): userdata plumbing, argument readers and
 * the one error raiser. No area file calls another area file; they all include binding.h only. */
#include "lua/binding.h"

#include <stdarg.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------------- */
/* A chunk of the collapse library itself: a .lua file directly in a directory named collapse or
 * in collapse/nn (the user's own files, specs and examples live elsewhere). */
static int library_source(const char *src) {
    if (src[0] != '@') return 0;
    const char *slash = strrchr(src, '/');
    if (!slash) return 0;
    size_t dir = (size_t)(slash - src);
    static const char *const dirs[] = {"/collapse", "/collapse/nn"};
    for (int i = 0; i < 2; i++) {
        size_t k = strlen(dirs[i]);
        if (dir >= k && memcmp(src + dir - k, dirs[i], k) == 0) return 1;
    }
    return 0;
}

/* Pushes "file:line: " of the first Lua frame outside the library (the user's line), or "". */
static void push_user_where(lua_State *L) {
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0 && !library_source(ar.source)) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

int binding_error(lua_State *L, const char *msg) {
    push_user_where(L);
    lua_pushstring(L, msg);
    lua_concat(L, 2);
    return lua_error(L);
}

int binding_errorf(lua_State *L, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const char *msg = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return binding_error(L, msg);
}

/* Pushes the key under which the function on top is stored in table t (a string), else nothing;
 * pops the function either way. */
static int find_key(lua_State *L, int t) {
    if (!lua_istable(L, t)) return 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_rawequal(L, -1, -3) && lua_type(L, -2) == LUA_TSTRING) {
            lua_pop(L, 1);    /* the value */
            lua_remove(L, -2); /* the function */
            return 1;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

/* The name of the running C function when the call site gives none (pcall(t.sum, x), a function
 * passed around): looked up among the tensor and generator methods and collapse.core. */
static const char *lookup_name(lua_State *L, lua_Debug *ar, int *is_method) {
    static const char *const metas[] = {TENSOR_MT, RNG_MT};
    for (int i = 0; i < 3; i++) {
        int top = lua_gettop(L);
        if (i < 2) {
            luaL_getmetatable(L, metas[i]);
            lua_getfield(L, -1, i == 0 ? "__methods" : "__index");
        } else {
            luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
            lua_getfield(L, -1, "collapse.core");
        }
        lua_getinfo(L, "f", ar);
        if (find_key(L, lua_gettop(L) - 1)) {
            *is_method = i < 2;
            return lua_tostring(L, -1); /* stays on the stack until the error is raised */
        }
        lua_settop(L, top);
    }
    return "?";
}

int binding_argerror(lua_State *L, int arg, const char *extramsg) {
    lua_Debug ar;
    const char *name = "?";
    if (lua_getstack(L, 0, &ar)) {
        lua_getinfo(L, "n", &ar);
        if (ar.name) name = ar.name;
        if (ar.namewhat && strcmp(ar.namewhat, "method") == 0) arg--; /* self is not counted */
        int is_method = 0;
        if (!ar.name) {
            name = lookup_name(L, &ar, &is_method);
            if (is_method) arg--; /* t.sum(5): argument 1 is the self a method call would pass */
        }
    }
    /* "fn: argument 2: number expected, got string": the function, the argument, the expectation
     * (not Lua's "bad argument #2 to 'fn'", which names no function of the library's API) */
    if (arg == 0) lua_pushfstring(L, "%s: self: %s", name, extramsg);
    else lua_pushfstring(L, "%s: argument %d: %s", name, arg, extramsg);
    return binding_error(L, lua_tostring(L, -1));
}

/* ---- plain Lua arguments (in place of luaL_check*, whose messages are Lua's) ---------------- */
lua_Number arg_number(lua_State *L, int arg) {
    int isnum;
    lua_Number v = lua_tonumberx(L, arg, &isnum);
    if (!isnum || lua_type(L, arg) != LUA_TNUMBER)
        binding_argerror(L, arg, lua_pushfstring(L, "number expected, got %s", luaL_typename(L, arg)));
    return v;
}

lua_Integer arg_integer(lua_State *L, int arg) {
    int isnum;
    lua_Integer v = lua_tointegerx(L, arg, &isnum);
    if (!isnum || lua_type(L, arg) != LUA_TNUMBER) {
        if (lua_type(L, arg) == LUA_TNUMBER)
            binding_argerror(L, arg, lua_pushfstring(L, "integer expected, got %s", lua_tostring(L, arg)));
        binding_argerror(L, arg, lua_pushfstring(L, "integer expected, got %s", luaL_typename(L, arg)));
    }
    return v;
}

lua_Number arg_optnumber(lua_State *L, int arg, lua_Number def) {
    return lua_isnoneornil(L, arg) ? def : arg_number(L, arg);
}

lua_Integer arg_optinteger(lua_State *L, int arg, lua_Integer def) {
    return lua_isnoneornil(L, arg) ? def : arg_integer(L, arg);
}

const char *arg_string(lua_State *L, int arg, size_t *len) {
    if (lua_type(L, arg) != LUA_TSTRING)
        binding_argerror(L, arg, lua_pushfstring(L, "string expected, got %s", luaL_typename(L, arg)));
    return lua_tolstring(L, arg, len);
}

void arg_table(lua_State *L, int arg, const char *what) {
    if (!lua_istable(L, arg))
        binding_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", what, luaL_typename(L, arg)));
}

int binding_raise(lua_State *L) {
    const char *msg = collapse_last_error();
    return binding_error(L, (msg && *msg) ? msg : "collapse: unknown error");
}

/* ---- tensor userdata ---------------------------------------------------------------- */
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

collapse_tensor **tensor_push_slot(lua_State *L) {
    tensor_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
    ud->t = NULL;
    luaL_setmetatable(L, TENSOR_MT);
    return &ud->t;
}

void tensor_pushed(lua_State *L) { binding_account(L); }

void tensor_push(lua_State *L, collapse_tensor *t) {
    *tensor_push_slot(L) = t;
    tensor_pushed(L);
}

collapse_tensor *tensor_test(lua_State *L, int arg) {
    tensor_ud *ud = luaL_testudata(L, arg, TENSOR_MT);
    return ud ? ud->t : NULL;
}

collapse_tensor *tensor_check(lua_State *L, int arg) {
    tensor_ud *ud = luaL_testudata(L, arg, TENSOR_MT);
    if (!ud) binding_argerror(L, arg, lua_pushfstring(L, "tensor expected, got %s", luaL_typename(L, arg)));
    if (!ud->t) binding_argerror(L, arg, "the tensor is closed (used after :close())");
    return ud->t;
}

collapse_tensor *kernel_tensor(lua_State *L, int arg, const char *fn, const char *name) {
    if (lua_isnoneornil(L, arg)) return NULL;
    tensor_ud *ud = luaL_testudata(L, arg, TENSOR_MT);
    if (!ud) {
        lua_pushfstring(L, "%s: %s must be a tensor, got %s", fn, name, luaL_typename(L, arg));
        return binding_error(L, lua_tostring(L, -1)), NULL;
    }
    if (!ud->t) {
        lua_pushfstring(L, "%s: %s is a closed tensor", fn, name);
        return binding_error(L, lua_tostring(L, -1)), NULL;
    }
    return ud->t;
}

collapse_tensor *kernel_output(lua_State *L, int arg, const char *fn, const char *name, const collapse_tensor *like,
                               int make_if_nil) {
    int nil = lua_isnoneornil(L, arg);
    if (nil && !make_if_nil) return NULL;
    int make = nil || (lua_isboolean(L, arg) && !lua_toboolean(L, arg));
    if (!make) {
        collapse_tensor *t = kernel_tensor(L, arg, fn, name);
        if (!like || collapse_tensor_dtype(t) == collapse_tensor_dtype(like)) return t;
    }
    /* A new 0-element tensor of like's dtype in the argument's slot; the kernel resizes it. */
    if (lua_gettop(L) < arg) lua_settop(L, arg);
    int64_t zero = 0;
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_new(like ? collapse_tensor_dtype(like) : COLLAPSE_FLOAT32, 1, &zero, slot));
    lua_replace(L, arg);
    return *slot;
}

int kernel_return(lua_State *L, const int *args, int n) {
    for (int i = 0; i < n; i++) {
        if (args[i] > lua_gettop(L) || lua_isboolean(L, args[i])) lua_pushnil(L); /* nothing was made */
        else lua_pushvalue(L, args[i]);
    }
    return n;
}

/* ---- other arguments ------------------------------------------------------------------ */
collapse_dtype dtype_opt(lua_State *L, int arg, collapse_dtype def) {
    if (lua_isnoneornil(L, arg)) return def;
    const char *name = lua_tostring(L, arg);
    if (!name || lua_type(L, arg) != LUA_TSTRING)
        binding_argerror(L, arg, lua_pushfstring(L, "dtype name expected, got %s", luaL_typename(L, arg)));
    collapse_dtype d;
    if (collapse_dtype_from_name(name, &d) != COLLAPSE_OK)
        binding_argerror(L, arg, lua_pushfstring(L, "unknown dtype '%s' (expected float32, float64 or int32)", name));
    return d;
}

int shape_check(lua_State *L, int arg, int64_t *shape) {
    if (!lua_istable(L, arg))
        binding_argerror(L, arg, lua_pushfstring(L, "shape table expected, got %s", luaL_typename(L, arg)));
    lua_Integer n = luaL_len(L, arg);
    if (n > COLLAPSE_MAX_DIMS)
        binding_argerror(L, arg, lua_pushfstring(L, "shape with at most %d dimensions expected, got %d",
                                              COLLAPSE_MAX_DIMS, (int)n));
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, arg, i);
        int isnum;
        lua_Integer v = lua_tointegerx(L, -1, &isnum);
        if (!isnum || v < 0)
            binding_argerror(L, arg, lua_pushfstring(L, "shape entry %d must be a non-negative integer, got %s",
                                                  (int)i, isnum ? lua_tostring(L, -1) : luaL_typename(L, -1)));
        shape[i - 1] = v;
        lua_pop(L, 1);
    }
    return (int)n;
}

collapse_rng *rng_check(lua_State *L, int arg) {
    collapse_rng *g = luaL_testudata(L, arg, RNG_MT);
    if (!g) binding_argerror(L, arg, lua_pushfstring(L, "generator (collapse.rng) expected, got %s", luaL_typename(L, arg)));
    return g;
}
