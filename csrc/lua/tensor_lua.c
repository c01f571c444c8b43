/* Tensor userdata: constructors, methods and operators. */
#include "lua/binding.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The tail of every binding that returns a new tensor: CALL, an expression filling `slot`, makes
 * it into a fresh userdata on the stack; its memory is accounted with the GC and it is returned. */
#define RETURN_NEW(L, CALL)                           \
    do {                                              \
        collapse_tensor **slot = tensor_push_slot(L); \
        CHECK_STATUS(L, CALL);                        \
        tensor_pushed(L);                             \
        return 1;                                     \
    } while (0)

static int t_gc(lua_State *L) {
    tensor_ud *ud = luaL_checkudata(L, 1, TENSOR_MT);
    collapse_tensor_release(ud->t);
    ud->t = NULL;
    return 0;
}

/* ---- constructors ------------------------------------------------------------- */
static int l_zeros(lua_State *L) {
    int64_t shape[COLLAPSE_MAX_DIMS];
    int nd = shape_check(L, 1, shape);
    collapse_dtype dt = dtype_opt(L, 2, COLLAPSE_FLOAT32);
    RETURN_NEW(L, collapse_tensor_new(dt, nd, shape, slot));
}

static int l_full(lua_State *L) {
    int64_t shape[COLLAPSE_MAX_DIMS];
    int nd = shape_check(L, 1, shape);
    lua_Number v = arg_number(L, 2);
    collapse_dtype dt = dtype_opt(L, 3, COLLAPSE_FLOAT32);
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_new(dt, nd, shape, slot));
    CHECK_STATUS(L, collapse_tensor_fill(*slot, v));
    tensor_pushed(L);
    return 1;
}

/* Walks a nested table to find its shape (from first entries), then fills and validates. */
static void nested_shape(lua_State *L, int idx, int *nd, int64_t *shape) {
    *nd = 0;
    lua_pushvalue(L, idx);
    while (lua_type(L, -1) == LUA_TTABLE) {
        if (*nd == COLLAPSE_MAX_DIMS) binding_errorf(L, "tensor: table nested deeper than %d levels", COLLAPSE_MAX_DIMS);
        shape[(*nd)++] = (int64_t)luaL_len(L, -1);
        if (shape[*nd - 1] == 0) break;
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
}

static void where_str(luaL_Buffer *b, const int64_t *pos, int depth) {
    for (int i = 0; i < depth; i++) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "[%lld]", (long long)pos[i] + 1);
        luaL_addstring(b, tmp);
    }
}

static void nested_fill(lua_State *L, int idx, int depth, int nd, const int64_t *shape, int64_t *pos,
                        collapse_tensor *t, int64_t *k) {
    if (depth == nd) {
        int isnum;
        lua_Number v = lua_tonumberx(L, idx, &isnum);
        if (!isnum || lua_type(L, idx) == LUA_TSTRING) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            luaL_addstring(&b, "tensor: non-numeric entry at ");
            where_str(&b, pos, depth);
            luaL_addstring(&b, " (got ");
            luaL_addstring(&b, luaL_typename(L, idx));
            luaL_addstring(&b, ")");
            luaL_pushresult(&b);
            binding_error(L, lua_tostring(L, -1));
        }
        if (collapse_tensor_dtype(t) == COLLAPSE_INT32 && (v != floor(v) || fabs(v) > 2147483647.0))
            binding_errorf(L, "tensor: entry %f is not an int32 value", (double)v);
        int64_t index[COLLAPSE_MAX_DIMS];
        for (int i = 0; i < nd; i++) index[i] = pos[i];
        collapse_tensor_set(t, index, v);
        (*k)++;
        return;
    }
    if (lua_type(L, idx) != LUA_TTABLE || luaL_len(L, idx) != shape[depth]) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "tensor: ragged table, entry ");
        where_str(&b, pos, depth);
        lua_pushfstring(L, " should be a table of %d entries, got %s", (int)shape[depth],
                        lua_type(L, idx) == LUA_TTABLE ? lua_pushfstring(L, "a table of %d", (int)luaL_len(L, idx))
                                                       : luaL_typename(L, idx));
        lua_remove(L, -2);
        luaL_addvalue(&b);
        luaL_pushresult(&b);
        binding_error(L, lua_tostring(L, -1));
    }
    for (int64_t i = 0; i < shape[depth]; i++) {
        pos[depth] = i;
        lua_geti(L, idx, i + 1);
        nested_fill(L, lua_gettop(L), depth + 1, nd, shape, pos, t, k);
        lua_pop(L, 1);
    }
}

static int l_tensor(lua_State *L) {
    collapse_dtype dt = dtype_opt(L, 2, COLLAPSE_FLOAT32);
    int64_t shape[COLLAPSE_MAX_DIMS], pos[COLLAPSE_MAX_DIMS] = {0};
    int nd = 0;
    if (lua_type(L, 1) == LUA_TNUMBER) nd = 0;
    else if (lua_type(L, 1) == LUA_TTABLE) nested_shape(L, 1, &nd, shape);
    else return binding_argerror(L, 1, lua_pushfstring(L, "table of numbers expected, got %s", luaL_typename(L, 1)));
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_new(dt, nd, shape, slot));
    int64_t k = 0;
    nested_fill(L, 1, 0, nd, shape, pos, *slot, &k);
    tensor_pushed(L);
    return 1;
}

static int l_arange(lua_State *L) {
    lua_Integer n = arg_integer(L, 1);
    if (n < 0) binding_argerror(L, 1, lua_pushfstring(L, "non-negative length expected, got %d", (int)n));
    collapse_dtype dt = dtype_opt(L, 2, COLLAPSE_INT32);
    int64_t shape[1] = {n};
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_new(dt, 1, shape, slot));
    for (int64_t i = 0; i < n; i++) collapse_tensor_set(*slot, &i, (double)(i + 1));
    tensor_pushed(L);
    return 1;
}

static int random_fill(lua_State *L, int normal) {
    int64_t shape[COLLAPSE_MAX_DIMS];
    int nd = shape_check(L, 1, shape);
    collapse_dtype dt = dtype_opt(L, 2, COLLAPSE_FLOAT32);
    collapse_rng *g = rng_check(L, 3);
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_new(dt, nd, shape, slot));
    CHECK_STATUS(L, normal ? collapse_tensor_randn(*slot, g) : collapse_tensor_rand(*slot, g));
    tensor_pushed(L);
    return 1;
}
static int l_randn(lua_State *L) { return random_fill(L, 1); }
static int l_rand(lua_State *L) { return random_fill(L, 0); }

/* ---- queries -------------------------------------------------------------------- */
static int m_shape(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    int nd = collapse_tensor_ndim(t);
    lua_createtable(L, nd, 0);
    for (int i = 0; i < nd; i++) {
        lua_pushinteger(L, collapse_tensor_size(t, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int dim_arg(lua_State *L, int arg, collapse_tensor *t, const char *fn) {
    lua_Integer d = arg_integer(L, arg);
    int nd = collapse_tensor_ndim(t);
    if (d < 1 || d > nd)
        binding_errorf(L, "%s: dimension %d out of range 1..%d for a %d-d tensor", fn, (int)d, nd, nd);
    return (int)d - 1;
}

static int m_size(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    if (lua_isnoneornil(L, 2)) return m_shape(L);
    lua_pushinteger(L, collapse_tensor_size(t, dim_arg(L, 2, t, "size")));
    return 1;
}
static int m_dim(lua_State *L) { lua_pushinteger(L, collapse_tensor_ndim(tensor_check(L, 1))); return 1; }
static int m_numel(lua_State *L) { lua_pushinteger(L, collapse_tensor_numel(tensor_check(L, 1))); return 1; }
static int m_dtype(lua_State *L) {
    lua_pushstring(L, collapse_dtype_name(collapse_tensor_dtype(tensor_check(L, 1))));
    return 1;
}
static int m_is_contiguous(lua_State *L) {
    lua_pushboolean(L, collapse_tensor_is_contiguous(tensor_check(L, 1)));
    return 1;
}
static int m_len(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    lua_pushinteger(L, collapse_tensor_ndim(t) ? collapse_tensor_size(t, 0) : 1);
    return 1;
}

static void push_number(lua_State *L, collapse_tensor *t, double v) {
    if (collapse_tensor_dtype(t) == COLLAPSE_INT32) lua_pushinteger(L, (lua_Integer)v);
    else lua_pushnumber(L, v);
}

/* Reads ndim 1-based indices from arg..; error names the function. */
static void index_args(lua_State *L, collapse_tensor *t, int arg, int64_t *index, const char *fn) {
    int nd = collapse_tensor_ndim(t);
    for (int d = 0; d < nd; d++) {
        int isnum;
        lua_Integer v = lua_tointegerx(L, arg + d, &isnum);
        if (!isnum)
            binding_errorf(L, "%s: expected %d integer indices for a %d-d tensor, argument %d is %s", fn, nd, nd, d + 1,
                       luaL_typename(L, arg + d));
        index[d] = v - 1;
    }
}

static int m_get(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    int nd = collapse_tensor_ndim(t);
    if (lua_gettop(L) - 1 != nd)
        return binding_errorf(L, "get: expected %d indices for a %d-d tensor, got %d", nd, nd, lua_gettop(L) - 1);
    int64_t index[COLLAPSE_MAX_DIMS];
    index_args(L, t, 2, index, "get");
    double v;
    CHECK_STATUS(L, collapse_tensor_get(t, index, &v));
    push_number(L, t, v);
    return 1;
}

static int m_set(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    int nd = collapse_tensor_ndim(t);
    if (lua_gettop(L) - 2 != nd)
        return binding_errorf(L, "set: expected %d indices and a value for a %d-d tensor, got %d arguments", nd, nd,
                          lua_gettop(L) - 1);
    int64_t index[COLLAPSE_MAX_DIMS];
    index_args(L, t, 2, index, "set");
    lua_Number v = arg_number(L, nd + 2);
    CHECK_STATUS(L, collapse_tensor_set(t, index, v));
    lua_settop(L, 1);
    return 1;
}

static void totable_rec(lua_State *L, collapse_tensor *t, int depth, int64_t *index) {
    int nd = collapse_tensor_ndim(t);
    int64_t n = collapse_tensor_size(t, depth);
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        index[depth] = i;
        if (depth == nd - 1) {
            double v;
            collapse_tensor_get(t, index, &v);
            push_number(L, t, v);
        } else {
            totable_rec(L, t, depth + 1, index);
        }
        lua_rawseti(L, -2, i + 1);
    }
}

static int m_totable(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    int64_t index[COLLAPSE_MAX_DIMS] = {0};
    if (collapse_tensor_ndim(t) == 0) {
        double v;
        collapse_tensor_get(t, index, &v);
        push_number(L, t, v);
        return 1;
    }
    luaL_checkstack(L, COLLAPSE_MAX_DIMS + 4, "totable");
    totable_rec(L, t, 0, index);
    return 1;
}

/* ---- copies and views ------------------------------------------------------------- */
static int m_clone(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    RETURN_NEW(L, collapse_tensor_clone(t, slot));
}

static int m_to(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    arg_string(L, 2, NULL);
    collapse_dtype dt = dtype_opt(L, 2, COLLAPSE_FLOAT32);
    RETURN_NEW(L, collapse_tensor_to(t, dt, slot));
}

static int m_contiguous(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    RETURN_NEW(L, collapse_tensor_contiguous(t, slot));
}

static int m_reshape(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    int64_t shape[COLLAPSE_MAX_DIMS];
    arg_table(L, 2, "table");
    lua_Integer n = luaL_len(L, 2);
    if (n > COLLAPSE_MAX_DIMS) binding_argerror(L, 2, lua_pushfstring(L, "shape with at most %d dimensions expected", COLLAPSE_MAX_DIMS));
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        int isnum;
        shape[i - 1] = lua_tointegerx(L, -1, &isnum);
        if (!isnum) binding_argerror(L, 2, "shape entries must be integers (-1 to infer one)");
        lua_pop(L, 1);
    }
    RETURN_NEW(L, collapse_tensor_reshape(t, (int)n, shape, slot));
}

static int m_t(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_transpose(t, slot));
    return 1;
}

static int m_row(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    lua_Integer i = arg_integer(L, 2);
    if (collapse_tensor_ndim(t) < 1) return binding_errorf(L, "row: expected a tensor with at least 1 dimension");
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_select(t, 0, i - 1, slot));
    return 1;
}

static int m_select(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    int d = dim_arg(L, 2, t, "select");
    lua_Integer i = arg_integer(L, 3);
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_select(t, d, i - 1, slot));
    return 1;
}

static int m_narrow(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    int d = dim_arg(L, 2, t, "narrow");
    lua_Integer start = arg_integer(L, 3), len = arg_integer(L, 4);
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_narrow(t, d, start - 1, len, slot));
    return 1;
}

/* Index from an int32 tensor or a Lua array of 1-based positions. */
static collapse_tensor *index_arg(lua_State *L, int arg, const char *fn) {
    collapse_tensor *idx = tensor_test(L, arg);
    if (idx) return collapse_tensor_retain(idx);
    if (lua_type(L, arg) != LUA_TTABLE)
        binding_errorf(L, "%s: index must be an int32 tensor or an array of integers, got %s", fn, luaL_typename(L, arg));
    int64_t n = (int64_t)luaL_len(L, arg);
    collapse_tensor *t;
    CHECK_STATUS(L, collapse_tensor_new(COLLAPSE_INT32, 1, &n, &t));
    int32_t *p = collapse_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        lua_geti(L, arg, i + 1);
        int isnum;
        lua_Integer v = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        if (!isnum || v < INT32_MIN || v > INT32_MAX) {
            collapse_tensor_release(t);
            binding_errorf(L, "%s: index entry %d is not an integer", fn, (int)i + 1);
        }
        p[i] = (int32_t)v;
    }
    return t;
}

static int m_rows(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    collapse_tensor *idx = index_arg(L, 2, "rows");
    collapse_tensor **slot = tensor_push_slot(L);
    collapse_status s = collapse_tensor_index_rows(t, idx, 1, slot);
    collapse_tensor_release(idx);
    CHECK_STATUS(L, s);
    tensor_pushed(L);
    return 1;
}

/* t:rows_into(out, index [, start = 1, count = #index - start + 1]) -> out: rows
 * index[start .. start+count-1] of t gathered into out (no allocation; index an int32 tensor). */
static int m_rows_into(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    collapse_tensor *out = tensor_check(L, 2);
    collapse_tensor *idx = tensor_test(L, 3);
    if (!idx) return binding_errorf(L, "rows_into: index must be an int32 tensor, got %s", luaL_typename(L, 3));
    int64_t len = collapse_tensor_ndim(idx) == 1 ? collapse_tensor_size(idx, 0) : 0;
    lua_Integer start = arg_optinteger(L, 4, 1);
    lua_Integer count = arg_optinteger(L, 5, len - start + 1);
    CHECK_STATUS(L, collapse_tensor_index_rows_into(t, idx, (int64_t)start - 1, (int64_t)count, 1, out));
    lua_settop(L, 2);
    return 1;
}

static int m_fill(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    CHECK_STATUS(L, collapse_tensor_fill(t, arg_number(L, 2)));
    lua_settop(L, 1);
    return 1;
}

/* t:resize(shape) -> t: capacity-keeping resize (collapse_tensor_resize). */
static int m_resize(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    int64_t shape[COLLAPSE_MAX_DIMS];
    int nd = shape_check(L, 2, shape);
    CHECK_STATUS(L, collapse_tensor_resize(t, nd, shape));
    binding_account(L);
    lua_settop(L, 1);
    return 1;
}

static int m_copy(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    CHECK_STATUS(L, collapse_tensor_copy(t, tensor_check(L, 2)));
    lua_settop(L, 1);
    return 1;
}

/* t:close(): frees the storage now (closing twice is fine); t.close() with no tensor is an error. */
static int m_close(lua_State *L) {
    if (!luaL_testudata(L, 1, TENSOR_MT))
        return binding_argerror(L, 1, lua_pushfstring(L, "tensor expected (t:close()), got %s", luaL_typename(L, 1)));
    return t_gc(L);
}

/* is_live(v): v is a tensor that has not been closed (for the Lua layer's argument checks). */
static int l_is_live(lua_State *L) {
    lua_pushboolean(L, tensor_test(L, 1) != NULL);
    return 1;
}

/* The raw bytes of the tensor's elements in row-major order (native endianness). */
static int m_tobytes(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    collapse_tensor *c;
    CHECK_STATUS(L, collapse_tensor_contiguous(t, &c));
    size_t n = (size_t)collapse_tensor_numel(c) * collapse_dtype_size(collapse_tensor_dtype(c));
    lua_pushlstring(L, collapse_tensor_data(c), n);
    collapse_tensor_release(c);
    return 1;
}

/* frombytes(s, shape, dtype): the inverse of t:tobytes(). */
static int l_frombytes(lua_State *L) {
    size_t len;
    const char *s = arg_string(L, 1, &len);
    int64_t shape[COLLAPSE_MAX_DIMS];
    int nd = shape_check(L, 2, shape);
    arg_string(L, 3, NULL);
    collapse_dtype dt = dtype_opt(L, 3, COLLAPSE_FLOAT32);
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= shape[i];
    if ((size_t)numel * collapse_dtype_size(dt) != len)
        return binding_errorf(L, "frombytes: %d bytes do not hold %d %s elements", (int)len, (int)numel,
                          collapse_dtype_name(dt));
    RETURN_NEW(L, collapse_tensor_from_data(dt, nd, shape, s, slot));
}

/* ---- arithmetic ---------------------------------------------------------------------- */
static int arith(lua_State *L, collapse_binop op) {
    collapse_tensor *a = tensor_test(L, 1), *b = tensor_test(L, 2);
    collapse_tensor **slot;
    if (a && b) {
        slot = tensor_push_slot(L);
        CHECK_STATUS(L, collapse_tensor_binop(op, a, b, slot));
    } else if (a) {
        int isnum;
        lua_Number v = lua_tonumberx(L, 2, &isnum);
        if (!isnum) return binding_argerror(L, 2, lua_pushfstring(L, "tensor or number expected, got %s", luaL_typename(L, 2)));
        slot = tensor_push_slot(L);
        CHECK_STATUS(L, collapse_tensor_binop_scalar(op, a, v, 0, slot));
    } else if (b) {
        int isnum;
        lua_Number v = lua_tonumberx(L, 1, &isnum);
        if (!isnum) return binding_argerror(L, 1, lua_pushfstring(L, "tensor or number expected, got %s", luaL_typename(L, 1)));
        slot = tensor_push_slot(L);
        CHECK_STATUS(L, collapse_tensor_binop_scalar(op, b, v, 1, slot));
    } else {
        tensor_check(L, 1);
        return 0;
    }
    tensor_pushed(L);
    return 1;
}
static int m_add(lua_State *L) { return arith(L, COLLAPSE_ADD); }
static int m_sub(lua_State *L) { return arith(L, COLLAPSE_SUB); }
static int m_mul(lua_State *L) { return arith(L, COLLAPSE_MUL); }
static int m_div(lua_State *L) { return arith(L, COLLAPSE_DIV); }

static int m_unm(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    RETURN_NEW(L, collapse_tensor_neg(t, slot));
}

static int m_matmul(lua_State *L) {
    collapse_tensor *a = tensor_check(L, 1), *b = tensor_check(L, 2);
    RETURN_NEW(L, collapse_matmul(a, b, slot));
}

static int reduce(lua_State *L, collapse_reduce op) {
    static const char *names[] = {"sum", "mean", "max", "argmax"};
    collapse_tensor *t = tensor_check(L, 1);
    if (lua_isnoneornil(L, 2) && op != COLLAPSE_ARGMAX) {
        double v;
        int64_t n = collapse_tensor_numel(t);
        if (op == COLLAPSE_MAX) {
            CHECK_STATUS(L, collapse_tensor_max_all(t, &v));
        } else {
            CHECK_STATUS(L, collapse_tensor_sum_all(t, &v));
            if (op == COLLAPSE_MEAN) {
                if (n == 0) return binding_errorf(L, "mean: the tensor is empty");
                v /= (double)n;
            }
        }
        if (collapse_tensor_dtype(t) == COLLAPSE_INT32 && op != COLLAPSE_MEAN) lua_pushinteger(L, (lua_Integer)v);
        else lua_pushnumber(L, v);
        return 1;
    }
    int d = dim_arg(L, 2, t, names[op]);
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_reduce(t, op, d, slot));
    tensor_pushed(L);
    if (op == COLLAPSE_MAX) { /* values, indices as torch */
        collapse_tensor **islot = tensor_push_slot(L);
        CHECK_STATUS(L, collapse_tensor_reduce(t, COLLAPSE_ARGMAX, d, islot));
        tensor_pushed(L);
        return 2;
    }
    return 1;
}
static int m_sum(lua_State *L) { return reduce(L, COLLAPSE_SUM); }
static int m_mean(lua_State *L) { return reduce(L, COLLAPSE_MEAN); }
static int m_max(lua_State *L) { return reduce(L, COLLAPSE_MAX); }
static int m_argmax(lua_State *L) { return reduce(L, COLLAPSE_ARGMAX); }

static int m_norm(lua_State *L) {
    double v;
    CHECK_STATUS(L, collapse_tensor_norm(tensor_check(L, 1), &v));
    lua_pushnumber(L, v);
    return 1;
}

static int m_dot(lua_State *L) {
    double v;
    CHECK_STATUS(L, collapse_tensor_dot(tensor_check(L, 1), tensor_check(L, 2), &v));
    lua_pushnumber(L, v);
    return 1;
}

/* count_correct(logits, labels): rows whose argmax equals the label. */
static int l_count_correct(lua_State *L) {
    int64_t n = 0;
    CHECK_STATUS(L, collapse_count_correct(tensor_check(L, 1), tensor_check(L, 2), &n));
    lua_pushinteger(L, n);
    return 1;
}

/* t[i]: the element of a 1-d tensor, a row view otherwise; other keys are methods. */
static int t_index(lua_State *L) {
    if (lua_type(L, 2) == LUA_TNUMBER) {
        collapse_tensor *t = tensor_check(L, 1);
        lua_Integer i = arg_integer(L, 2);
        if (collapse_tensor_ndim(t) == 1) {
            int64_t idx = i - 1;
            double v;
            CHECK_STATUS(L, collapse_tensor_get(t, &idx, &v));
            push_number(L, t, v);
            return 1;
        }
        lua_settop(L, 2);
        return m_row(L);
    }
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int t_newindex(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    lua_Integer i = arg_integer(L, 2);
    if (collapse_tensor_ndim(t) != 1) {
        collapse_tensor *src = tensor_test(L, 3);
        collapse_tensor *row;
        CHECK_STATUS(L, collapse_tensor_select(t, 0, i - 1, &row));
        collapse_status s = src ? collapse_tensor_copy(row, src) : collapse_tensor_fill(row, arg_number(L, 3));
        collapse_tensor_release(row);
        CHECK_STATUS(L, s);
        return 0;
    }
    int64_t idx = i - 1;
    CHECK_STATUS(L, collapse_tensor_set(t, &idx, arg_number(L, 3)));
    return 0;
}

static const luaL_Reg methods[] = {
    {"shape", m_shape}, {"size", m_size}, {"dim", m_dim}, {"numel", m_numel}, {"dtype", m_dtype},
    {"is_contiguous", m_is_contiguous}, {"get", m_get}, {"set", m_set}, {"totable", m_totable},
    {"clone", m_clone}, {"to", m_to}, {"contiguous", m_contiguous}, {"reshape", m_reshape}, {"t", m_t},
    {"row", m_row}, {"select", m_select}, {"narrow", m_narrow}, {"rows", m_rows}, {"rows_into", m_rows_into},
    {"fill", m_fill},
    {"copy", m_copy}, {"resize", m_resize}, {"add", m_add}, {"sub", m_sub}, {"mul", m_mul}, {"div", m_div}, {"matmul", m_matmul},
    {"sum", m_sum}, {"mean", m_mean}, {"max", m_max}, {"argmax", m_argmax}, {"norm", m_norm}, {"dot", m_dot},
    {"close", m_close}, {"tobytes", m_tobytes}, {NULL, NULL}};

static const luaL_Reg metamethods[] = {
    {"__gc", t_gc}, {"__close", t_gc}, {"__add", m_add}, {"__sub", m_sub}, {"__mul", m_mul}, {"__div", m_div},
    {"__unm", m_unm}, {"__len", m_len}, {"__index", t_index}, {"__newindex", t_newindex}, {NULL, NULL}};

static const luaL_Reg functions[] = {
    {"zeros", l_zeros}, {"full", l_full}, {"tensor", l_tensor}, {"arange", l_arange},
    {"randn", l_randn}, {"rand", l_rand}, {"frombytes", l_frombytes},
    {"count_correct", l_count_correct}, {"is_live", l_is_live}, {NULL, NULL}};

void binding_open_tensor(lua_State *L) {
    luaL_newmetatable(L, TENSOR_MT);
    luaL_setfuncs(L, metamethods, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__methods");
    lua_setfield(L, -2, "tensor_mt"); /* the Lua layer adds __tostring and more methods */
    luaL_setfuncs(L, functions, 0);
}
