/*
 * host_app: a C program that embeds Lua 5.4 with the collapse module.
 *
 *   host_app SCRIPT.lua [ARGS...]
 *
 * Runs SCRIPT in a fresh Lua state (the script gets its arguments in `arg` as with lua5.4),
 * then reads the script's return values back into C: numbers are printed as
 * "result[i] = <number>", a table's string/number fields as "result.key = value".
 * `require("collapse")` is found through LUA_PATH / LUA_CPATH or the installed module.
 * Exit status: 0 on success, 1 when the script fails (its error is printed on stderr).
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>

static int traceback(lua_State *L) {
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

static void print_result(lua_State *L, int idx, int i) {
    if (lua_type(L, idx) == LUA_TNUMBER) {
        printf("result[%d] = %.17g\n", i, lua_tonumber(L, idx));
    } else if (lua_type(L, idx) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) == LUA_TSTRING && (lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TSTRING))
                printf("result.%s = %s\n", lua_tostring(L, -2), lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    } else {
        printf("result[%d] = %s\n", i, luaL_tolstring(L, idx, NULL));
        lua_pop(L, 1);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRIPT.lua [ARGS...]\n", argv[0]);
        return 2;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "host_app: cannot create a Lua state\n");
        return 1;
    }
    luaL_openlibs(L);
    lua_createtable(L, argc, 0); /* arg table as the standalone interpreter builds it */
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");

    lua_pushcfunction(L, traceback);
    int base = lua_gettop(L);
    int status = luaL_loadfile(L, argv[1]);
    if (status == LUA_OK) {
        for (int i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
        status = lua_pcall(L, argc - 2, LUA_MULTRET, base);
    }
    if (status != LUA_OK) {
        fprintf(stderr, "host_app: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    int nres = lua_gettop(L) - base;
    for (int i = 1; i <= nres; i++) print_result(L, base + i, i);
    lua_close(L);
    return 0;
}
