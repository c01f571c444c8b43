/*
 * libFuzzer target for the Lua decoders, built twice: FUZZ_CHECKPOINT (collapse.load) and
 * FUZZ_JSON (collapse.json.decode). The harness embeds lua5.4 with the module from the source tree
 * (lua/ and the fuzz build's collapse/core.so, instrumented, so coverage reaches frombytes/crc32).
 *
 * For checkpoints the input is the payload: the harness writes the header with the right length
 * and CRC-32 around it, so mutations reach the decoder instead of all failing the checksum.
 * The oracle: the call succeeds, or fails with the decoder's own message ("load: '<path>' is not a
 * valid collapse checkpoint (...)" / "json.decode: ..."). Any other error (a Lua runtime error
 * such as "attempt to index", "table index is NaN", "stack overflow", "not enough memory") is a
 * finding, as is any sanitizer report from the C parts.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <zlib.h>

#include "fuzz_file.h"

#ifndef COLLAPSE_SOURCE_DIR
#error "COLLAPSE_SOURCE_DIR must be defined"
#endif

static lua_State *L;

static void fuzz_init(void) {
    L = luaL_newstate();
    luaL_openlibs(L);
    const char *setup = "package.path = '" COLLAPSE_SOURCE_DIR "/lua/?.lua;' .. package.path\n"
                        "package.cpath = '" COLLAPSE_FUZZ_BUILD_DIR "/lua/?.so;' .. package.cpath\n"
#ifdef FUZZ_CHECKPOINT
                        "fuzz_call = require('collapse.checkpoint').load\n"
                        "fuzz_ok = \"^load: '[^']*' is not a valid collapse checkpoint %(\"\n";
#else
                        "local json = require('collapse.json')\n"
                        "fuzz_call = function(path) local f = assert(io.open(path, 'rb')) local s = f:read('a') "
                        "f:close() return json.decode(s) end\n"
                        "fuzz_ok = '^json%.decode: .* at line %d+ %(byte %d+%)$'\n";
#endif
    if (luaL_dostring(L, setup) != LUA_OK) {
        fprintf(stderr, "fuzz: setup failed: %s\n", lua_tostring(L, -1));
        abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (!L) fuzz_init();
    const char *path;
#ifdef FUZZ_CHECKPOINT
    if (size > (1u << 20)) return 0;
    unsigned char *file = malloc(size + 24);
    if (!file) abort();
    uint32_t version = 1, crc = (uint32_t)crc32(0L, data, (uInt)size);
    uint64_t len = size;
    memcpy(file, "CLPSCKPT", 8);
    memcpy(file + 8, &version, 4); /* little-endian host (x86-64, as the format) */
    memcpy(file + 12, &len, 8);
    memcpy(file + 20, &crc, 4);
    if (size) memcpy(file + 24, data, size);
    path = fuzz_write(file, size + 24);
    free(file);
#else
    path = fuzz_write(data, size);
#endif
    lua_getglobal(L, "fuzz_call");
    lua_pushstring(L, path);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        size_t mlen = 0;
        const char *msg = lua_tolstring(L, -1, &mlen);
        if (msg && strlen(msg) != mlen) {
            fprintf(stderr, "fuzz: error message with a NUL byte: %s\n", msg);
            abort();
        }
        lua_getglobal(L, "string");
        lua_getfield(L, -1, "find");
        lua_pushlstring(L, msg ? msg : "", msg ? mlen : 0);
        lua_getglobal(L, "fuzz_ok");
        lua_call(L, 2, 1);
        int ok = !lua_isnil(L, -1);
        if (!ok) {
            fprintf(stderr, "fuzz: not a decoder error: %s\n", msg ? msg : "(not a string)");
            abort();
        }
        lua_settop(L, 0);
    }
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
