/* Small system queries the Lua layer needs: is stdout a terminal, monotonic time. */
#include "lua/binding.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int l_isatty(lua_State *L) {
    lua_pushboolean(L, isatty((int)arg_optinteger(L, 1, 1)));
    return 1;
}

/* Seconds from a monotonic clock (wall time, unlike os.clock). */
static int l_clock(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

/* Peak resident memory of this process in kB (Linux; nil elsewhere). */
static int l_peak_rss_kb(lua_State *L) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
    if (kb < 0) return 0;
    lua_pushinteger(L, kb);
    return 1;
}

void binding_open_system(lua_State *L) {
    static const luaL_Reg fns[] = {{"isatty", l_isatty}, {"clock", l_clock}, {"peak_rss_kb", l_peak_rss_kb},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
