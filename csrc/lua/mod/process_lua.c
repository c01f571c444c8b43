/* require("collapse.process"): start worker processes and wait for them (sweep --jobs).
 * posix_spawnp, so a worker is a fresh interpreter (no fork of a process holding OpenBLAS
 * threads); its stdout/stderr go to files the parent reads afterwards. POSIX only; no OpenBLAS. */
#include <lauxlib.h>
#include <lua.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define EXPORT __attribute__((visibility("default")))
EXPORT int luaopen_collapse_process(lua_State *L);

extern char **environ;

/* Strings of the list at `idx` into a NULL-terminated array kept alive as userdata on the stack
 * (the strings themselves stay referenced by their Lua table). */
static const char **string_array(lua_State *L, int idx, int n) {
    const char **a = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        a[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    a[n] = NULL;
    return a;
}

/* environ with opts.env's KEY=VALUE pairs replacing or adding variables; the strings go into a
 * Lua table at `keep` so they outlive the call. */
static const char **build_env(lua_State *L, int env_idx, int keep) {
    int n = 0;
    if (env_idx) {
        lua_pushnil(L);
        while (lua_next(L, env_idx)) {
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
                luaL_error(L, "process.spawn: opts.env must map variable names to strings");
            lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
            lua_rawseti(L, keep, ++n);
            lua_pop(L, 1);
        }
    }
    int overrides = n;
    for (char **e = environ; *e; e++) {
        int replaced = 0;
        for (int i = 1; i <= overrides && !replaced; i++) {
            lua_rawgeti(L, keep, i);
            const char *kv = lua_tostring(L, -1);
            size_t klen = (size_t)(strchr(kv, '=') - kv);
            replaced = !strncmp(*e, kv, klen) && (*e)[klen] == '=';
            lua_pop(L, 1);
        }
        if (!replaced) {
            lua_pushstring(L, *e);
            lua_rawseti(L, keep, ++n);
        }
    }
    return string_array(L, keep, n);
}

/* spawn({program, args...}, {env = {K = V}, stdout = path, stderr = path}) -> pid */
static int l_spawn(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)lua_rawlen(L, 1);
    if (n < 1) return luaL_error(L, "process.spawn: argument #1 must be a non-empty list {program, args...}");
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (!lua_isstring(L, -1)) return luaL_error(L, "process.spawn: argument #1, item %d must be a string", i);
        lua_pop(L, 1);
    }
    int has_opts = lua_istable(L, 2);
    if (!has_opts && !lua_isnoneornil(L, 2)) return luaL_error(L, "process.spawn: argument #2 must be an options table");
    lua_settop(L, 2);
    const char *out = NULL, *err = NULL;
    int env_idx = 0;
    if (has_opts) {
        lua_getfield(L, 2, "stdout"); /* 3 */
        lua_getfield(L, 2, "stderr"); /* 4 */
        lua_getfield(L, 2, "env");    /* 5 */
        out = luaL_optstring(L, 3, NULL);
        err = luaL_optstring(L, 4, NULL);
        if (lua_istable(L, 5)) env_idx = 5;
        else if (!lua_isnil(L, 5)) return luaL_error(L, "process.spawn: opts.env must be a table");
    }
    lua_settop(L, 5);
    const char **argv = string_array(L, 1, n); /* 6 */
    lua_newtable(L);                           /* 7: keeps the env strings */
    const char **envp = build_env(L, env_idx, 7);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out) posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err && out && !strcmp(err, out)) posix_spawn_file_actions_adddup2(&fa, 1, 2); /* one file, one offset */
    else if (err) posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, (char *const *)envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return luaL_error(L, "process.spawn: cannot start '%s': %s", argv[0], strerror(rc));
    lua_pushinteger(L, pid);
    return 1;
}

/* wait([pid]) -> pid, exit code (or nil, "signal N"): blocks until that (or any) child ends. */
static int l_wait(lua_State *L) {
    pid_t want = (pid_t)luaL_optinteger(L, 1, -1);
    int st;
    pid_t pid;
    do pid = waitpid(want, &st, 0); while (pid < 0 && errno == EINTR);
    if (pid < 0) return luaL_error(L, "process.wait: %s", strerror(errno));
    lua_pushinteger(L, pid);
    if (WIFEXITED(st)) {
        lua_pushinteger(L, WEXITSTATUS(st));
        return 2;
    }
    lua_pushnil(L);
    lua_pushfstring(L, "killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    return 3;
}

static int l_kill(lua_State *L) {
    lua_pushboolean(L, kill((pid_t)luaL_checkinteger(L, 1), SIGTERM) == 0);
    return 1;
}

static int l_nproc(lua_State *L) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

static int l_pid(lua_State *L) {
    lua_pushinteger(L, getpid());
    return 1;
}

/* die_with_parent(parent_pid) -> bool: this process gets SIGTERM when its parent ends (Linux's
 * PR_SET_PDEATHSIG), so sweep workers do not outlive a parent killed with SIGKILL; if the parent
 * is already gone (getppid() differs), it ends now. false where the OS has no such request. */
static int l_die_with_parent(lua_State *L) {
    pid_t parent = (pid_t)luaL_checkinteger(L, 1);
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (getppid() != parent) raise(SIGTERM); /* the parent died before the request was made */
    lua_pushboolean(L, 1);
#else
    (void)parent;
    lua_pushboolean(L, 0);
#endif
    return 1;
}

EXPORT int luaopen_collapse_process(lua_State *L) {
    static const luaL_Reg fns[] = {{"spawn", l_spawn}, {"wait", l_wait}, {"kill", l_kill}, {"nproc", l_nproc},
                                   {"pid", l_pid}, {"die_with_parent", l_die_with_parent}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
