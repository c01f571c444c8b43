/* Binding of the file readers and writers (csrc/io): each returns tensors. */
#include "lua/binding.h"

/* Moves an array read by csrc/io into a new tensor on the stack without copying its data
 * (the tensor adopts the buffer; on failure the array is freed). */
static void push_array(lua_State *L, collapse_array *a) {
    collapse_tensor **slot = tensor_push_slot(L);
    collapse_status s = collapse_tensor_adopt(a->dtype, a->ndim, a->shape, a->data, slot);
    if (s == COLLAPSE_OK) a->data = NULL;
    collapse_array_free(a);
    CHECK_STATUS(L, s);
    tensor_pushed(L);
}

/* idx_read(path, scale_to_unit, label_offset, limit) */
static int l_idx_read(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int scale = lua_toboolean(L, 2);
    lua_Integer offset = luaL_optinteger(L, 3, 0), limit = luaL_optinteger(L, 4, 0);
    collapse_array a = {0};
    CHECK_STATUS(L, collapse_idx_read(path, scale, (int32_t)offset, limit, &a));
    push_array(L, &a);
    return 1;
}

static int l_npy_read(lua_State *L) {
    collapse_array a = {0};
    CHECK_STATUS(L, collapse_npy_read(luaL_checkstring(L, 1), &a));
    push_array(L, &a);
    return 1;
}

/* npy_write(tensor, path) */
static int l_npy_write(lua_State *L) {
    collapse_tensor *t = tensor_check(L, 1);
    const char *path = luaL_checkstring(L, 2);
    collapse_tensor *c;
    CHECK_STATUS(L, collapse_tensor_contiguous(t, &c));
    collapse_status s = collapse_npy_write(path, collapse_tensor_dtype(c), collapse_tensor_ndim(c),
                                           collapse_tensor_shape(c), collapse_tensor_data(c));
    collapse_tensor_release(c);
    CHECK_STATUS(L, s);
    return 0;
}

/* csv_read(path, label_column, label_offset) -> features[, labels] */
static int l_csv_read(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer col = luaL_optinteger(L, 2, 0), offset = luaL_optinteger(L, 3, 0);
    collapse_array f = {0}, y = {0};
    CHECK_STATUS(L, collapse_csv_read(path, (int)col, (int32_t)offset, &f, col > 0 ? &y : NULL));
    if (col > 0) {
        /* push_array raises on failure; free the other array first so nothing leaks */
        collapse_tensor **slot = tensor_push_slot(L);
        collapse_status s = collapse_tensor_adopt(f.dtype, f.ndim, f.shape, f.data, slot);
        if (s == COLLAPSE_OK) f.data = NULL;
        collapse_array_free(&f);
        if (s != COLLAPSE_OK) {
            collapse_array_free(&y);
            binding_raise(L);
        }
        push_array(L, &y);
        return 2;
    }
    push_array(L, &f);
    return 1;
}

/* write_file_atomic(path, bytes) */
static int l_write_file_atomic(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *bytes = luaL_checklstring(L, 2, &len);
    CHECK_STATUS(L, collapse_write_file_atomic(path, bytes, len));
    return 0;
}

void binding_open_io(lua_State *L) {
    static const luaL_Reg fns[] = {{"idx_read", l_idx_read}, {"npy_read", l_npy_read}, {"npy_write", l_npy_write},
                                   {"csv_read", l_csv_read}, {"write_file_atomic", l_write_file_atomic},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
