/* Binding of the image data-set readers and the .npz reader (csrc/io: npz.c, cifar.c,
 * imagenet32.c, images.c), used by lua/collapse/images.lua. */
#include <string.h>

#include "lua/binding.h"

#define MAX_FILES 64

/* Pushes a tensor adopting a's buffer (freed on failure; then *ok = 0 and the error is pending). */
static int push_adopted(lua_State *L, collapse_array *a) {
    collapse_tensor **slot = tensor_push_slot(L);
    collapse_status s = collapse_tensor_adopt(a->dtype, a->ndim, a->shape, a->data, slot);
    if (s == COLLAPSE_OK) a->data = NULL;
    collapse_array_free(a);
    if (s != COLLAPSE_OK) return 0;
    tensor_pushed(L);
    return 1;
}

/* Pushes images then labels; both arrays are freed whatever happens. */
static int push_pair(lua_State *L, collapse_array *images, collapse_array *labels) {
    if (!push_adopted(L, images)) {
        collapse_array_free(labels);
        return binding_raise(L);
    }
    if (!push_adopted(L, labels)) return binding_raise(L);
    return 2;
}

/* A Lua array of paths at arg into paths[] (strings stay on the Lua stack's table). */
static int paths_check(lua_State *L, int arg, const char **paths) {
    luaL_checktype(L, arg, LUA_TTABLE);
    int n = (int)luaL_len(L, arg);
    luaL_argcheck(L, n >= 1 && n <= MAX_FILES, arg, "expected 1..64 file paths");
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, arg, i + 1);
        paths[i] = lua_tostring(L, -1);
        luaL_argcheck(L, paths[i] != NULL, arg, "file paths must be strings");
        lua_pop(L, 1); /* the string is still referenced by the table */
    }
    return n;
}

/* cifar_read({paths}, variant, fine_labels, limit) -> images, labels */
static int l_cifar_read(lua_State *L) {
    const char *paths[MAX_FILES];
    int n = paths_check(L, 1, paths);
    int variant = (int)luaL_checkinteger(L, 2), fine = lua_toboolean(L, 3);
    lua_Integer limit = luaL_optinteger(L, 4, 0);
    collapse_array x = {0}, y = {0};
    CHECK_STATUS(L, collapse_cifar_read(paths, n, variant, fine, limit, &x, &y));
    return push_pair(L, &x, &y);
}

/* imagenet32_read({paths}, limit) -> images, labels */
static int l_imagenet32_read(lua_State *L) {
    const char *paths[MAX_FILES];
    int n = paths_check(L, 1, paths);
    lua_Integer limit = luaL_optinteger(L, 2, 0);
    collapse_array x = {0}, y = {0};
    CHECK_STATUS(L, collapse_imagenet32_read(paths, n, limit, &x, &y));
    return push_pair(L, &x, &y);
}

/* npz_read(path) -> {name = tensor, ...} */
static int l_npz_read(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    collapse_npz z;
    CHECK_STATUS(L, collapse_npz_read(path, &z));
    lua_createtable(L, 0, z.count);
    for (int i = 0; i < z.count; i++) {
        if (!push_adopted(L, &z.arrays[i])) {
            collapse_npz_free(&z);
            return binding_raise(L);
        }
        lua_setfield(L, -2, z.names[i]);
    }
    collapse_npz_free(&z);
    return 1;
}

/* Reads a Lua array of c numbers at arg. */
static void numbers_check(lua_State *L, int arg, const char *name, int64_t c, double *out) {
    luaL_checktype(L, arg, LUA_TTABLE);
    if ((int64_t)luaL_len(L, arg) != c)
        luaL_error(L, "images_normalize: %s must have %d numbers (one per channel), got %d", name, (int)c,
                   (int)luaL_len(L, arg));
    for (int64_t k = 0; k < c; k++) {
        lua_rawgeti(L, arg, (lua_Integer)k + 1);
        int isnum = 0;
        out[k] = lua_tonumberx(L, -1, &isnum);
        if (!isnum) luaL_error(L, "images_normalize: %s[%d] must be a number", name, (int)k + 1);
        lua_pop(L, 1);
    }
}

/* images_normalize(x [N x C x H x W] float32, mean, std): in place */
static int l_images_normalize(lua_State *L) {
    collapse_tensor *t = kernel_tensor(L, 1, "images_normalize", "x");
    double mean[64], std[64];
    /* the channel count comes from x; a tensor of the wrong rank is refused by the C kernel */
    int64_t n = collapse_tensor_ndim(t) == 4 ? collapse_tensor_size(t, 1) : 0;
    if (n == 0) CHECK_STATUS(L, collapse_images_normalize_tensor(t, NULL, NULL, 0));
    if (n > 64) return luaL_error(L, "images_normalize: at most 64 channels, got %d", (int)n);
    numbers_check(L, 2, "mean", n, mean);
    numbers_check(L, 3, "std", n, std);
    CHECK_STATUS(L, collapse_images_normalize_tensor(t, mean, std, n));
    return 0;
}

/* images_pad(x [N x C x H x W] float32, pad) -> new tensor */
static int l_images_pad(lua_State *L) {
    collapse_tensor *t = kernel_tensor(L, 1, "images_pad", "x");
    lua_Integer pad = luaL_checkinteger(L, 2);
    int64_t empty = 0;
    collapse_tensor **slot = tensor_push_slot(L);
    CHECK_STATUS(L, collapse_tensor_new(COLLAPSE_FLOAT32, 1, &empty, slot));
    CHECK_STATUS(L, collapse_images_pad_tensor(t, pad, *slot));
    tensor_pushed(L);
    return 1;
}

void binding_open_images(lua_State *L) {
    static const luaL_Reg fns[] = {{"cifar_read", l_cifar_read},         {"imagenet32_read", l_imagenet32_read},
                                   {"npz_read", l_npz_read},             {"images_normalize", l_images_normalize},
                                   {"images_pad", l_images_pad},         {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
