/* Binding of the neural-collapse metrics: the one-shot nc_measure and the streaming
 * nc_stats object used by nc.measure_model. */
#include "lua/binding.h"

#include <stdio.h>
#include <string.h>

#define NC_STATS_MT "collapse.nc_stats"
#define NC_RESULT_MT "collapse.nc_result" /* owns a result's arrays while its table is built */

typedef struct nc_stats_ud {
    collapse_nc_stats *s;
    int classes;
    int64_t dim;
} nc_stats_ud;

static void set_number(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_array(lua_State *L, const char *k, const double *v, int64_t n) {
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, k);
}

/* A result whose arrays a userdata owns: if Lua runs out of memory while the table is built (an
 * error longjmps out of push_result), its __gc frees them. Push it before computing the result. */
static int result_gc(lua_State *L) {
    collapse_nc_result_free(luaL_checkudata(L, 1, NC_RESULT_MT));
    return 0;
}

static collapse_nc_result *result_holder(lua_State *L) {
    collapse_nc_result *r = lua_newuserdatauv(L, sizeof *r, 0);
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, NC_RESULT_MT);
    return r;
}

/* Pushes the result (held by the userdata on top of the stack, which it replaces) as a table with
 * the keys of docs/metrics.md (classifier metrics absent without a classifier) and frees its arrays. */
static void push_result(lua_State *L, collapse_nc_result *r) {
    lua_createtable(L, 0, 40);
    lua_pushinteger(L, r->classes); lua_setfield(L, -2, "classes");
    lua_pushinteger(L, r->dim); lua_setfield(L, -2, "dim");
    lua_pushinteger(L, r->samples); lua_setfield(L, -2, "samples");
    set_number(L, "intra_cos", r->intra_cos);
    set_number(L, "intra_cos_min", r->intra_cos_min);
    set_number(L, "intra_cos_q", r->intra_cos_q);
    set_number(L, "inter_cos", r->inter_cos);
    set_number(L, "inter_cos_max", r->inter_cos_max);
    set_number(L, "inter_cos_q", r->inter_cos_q);
    set_number(L, "feature_norm", r->feature_norm);
    set_number(L, "nc1", r->nc1);
    set_number(L, "variability", r->variability);
    set_number(L, "cdnv", r->cdnv);
    set_number(L, "equinorm", r->equinorm);
    set_number(L, "equiangular", r->equiangular);
    set_number(L, "max_cos", r->max_cos);
    set_number(L, "etf_error", r->etf_error);
    set_number(L, "q", r->q);
    set_number(L, "trace_within", r->trace_within);
    set_number(L, "between_energy", r->between_energy);
    set_number(L, "mean_sq_norm", r->mean_sq_norm);
    if (r->has_classifier) {
        set_number(L, "w_equinorm", r->w_equinorm);
        set_number(L, "self_duality", r->self_duality);
        set_number(L, "ncc_agreement", r->ncc_agreement);
        set_number(L, "accuracy", r->accuracy);
        set_number(L, "loss", r->loss);
    }
    lua_createtable(L, r->classes, 0);
    for (int c = 0; c < r->classes; c++) {
        lua_pushinteger(L, r->class_counts[c]);
        lua_rawseti(L, -2, c + 1);
    }
    lua_setfield(L, -2, "class_counts");
    set_array(L, "intra_per_class", r->intra_per_class, r->classes);
    set_array(L, "etf_spectrum", r->etf_spectrum, r->classes);
    set_array(L, "between_spectrum", r->between_spectrum, r->classes);
    if (r->within_spectrum) set_array(L, "within_spectrum", r->within_spectrum, r->within_spectrum_len);
    collapse_nc_result_free(r);
    lua_remove(L, -2); /* the holder */
}

/* Raises unless the optional classifier argument is a tensor of exactly the given shape: a
 * [rows x cols] matrix (cols > 0) or a [rows] vector (cols == 0); a transposed W is refused. Returns
 * it (NULL when absent). Call before acquiring anything, as it may raise. */
static collapse_tensor *classifier_check(lua_State *L, int arg, const char *fn, const char *name, int64_t rows,
                                         int64_t cols) {
    if (lua_isnoneornil(L, arg)) return NULL;
    collapse_tensor *t = tensor_check(L, arg);
    int nd = collapse_tensor_ndim(t);
    int ok = cols > 0 ? nd == 2 && collapse_tensor_size(t, 0) == rows && collapse_tensor_size(t, 1) == cols
                      : nd == 1 && collapse_tensor_size(t, 0) == rows;
    if (ok) return t;
    char got[96] = "[";
    for (int i = 0; i < nd && strlen(got) < 64; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? " x " : "",
                 (long long)collapse_tensor_size(t, i));
    snprintf(got + strlen(got), sizeof got - strlen(got), "]");
    if (cols > 0)
        luaL_error(L, "%s: %s is %s, expected [%d x %d] (classes x feature dim)", fn, name, got, (int)rows, (int)cols);
    luaL_error(L, "%s: %s is %s, expected [%d] (one per class)", fn, name, got, (int)rows);
    return NULL;
}

/* float64 copies of W and b (either may be NULL); on failure nothing is left allocated. */
static collapse_status classifier_copies(collapse_tensor *W, collapse_tensor *b, collapse_tensor **Wc,
                                         collapse_tensor **bc) {
    *Wc = *bc = NULL;
    if (W) {
        collapse_status st = collapse_tensor_to(W, COLLAPSE_FLOAT64, Wc);
        if (st != COLLAPSE_OK) return st;
    }
    if (b) {
        collapse_status st = collapse_tensor_to(b, COLLAPSE_FLOAT64, bc);
        if (st != COLLAPSE_OK) {
            collapse_tensor_release(*Wc);
            *Wc = NULL;
            return st;
        }
    }
    return COLLAPSE_OK;
}

/* Features (contiguous float, 2-d) and labels (contiguous int32, n) of one batch; the caller
 * releases *fx and *ly (contiguous copies or retained originals). */
static void batch_args(lua_State *L, int farg, int larg, const char *fn, collapse_tensor **fx, collapse_tensor **ly) {
    collapse_tensor *f = tensor_check(L, farg), *l = tensor_check(L, larg);
    if (collapse_tensor_ndim(f) != 2) luaL_error(L, "%s: features must be a 2-d tensor [N x d]", fn);
    if (collapse_tensor_dtype(f) == COLLAPSE_INT32) luaL_error(L, "%s: features must be float32 or float64", fn);
    if (collapse_tensor_dtype(l) != COLLAPSE_INT32 || collapse_tensor_ndim(l) != 1)
        luaL_error(L, "%s: labels must be a 1-d int32 tensor", fn);
    if (collapse_tensor_size(l, 0) != collapse_tensor_size(f, 0))
        luaL_error(L, "%s: %d feature rows but %d labels", fn, (int)collapse_tensor_size(f, 0),
                   (int)collapse_tensor_size(l, 0));
    CHECK_STATUS(L, collapse_tensor_contiguous(f, fx));
    if (collapse_tensor_contiguous(l, ly) != COLLAPSE_OK) {
        collapse_tensor_release(*fx);
        binding_raise(L);
    }
}

/* The COLLAPSE_NC_CONV_* bits at argument arg (nil: none); collapse.nc.conventions builds them. */
static int conventions_arg(lua_State *L, int arg) {
    lua_Integer conv = luaL_optinteger(L, arg, 0);
    if (conv & ~(lua_Integer)COLLAPSE_NC_CONV_ALL) luaL_error(L, "nc: unknown convention bits 0x%x", (unsigned)conv);
    return (int)conv;
}

/* nc_measure(features, labels, classes, W|nil, b|nil, q, within, conventions) -> table */
static int l_nc_measure(lua_State *L) {
    const char *fn = "nc.measure";
    int classes = (int)luaL_checkinteger(L, 3);
    collapse_tensor *f0 = tensor_check(L, 1), *W0 = NULL, *b0 = NULL;
    double q = luaL_optnumber(L, 6, 0.05);
    int flags = (lua_toboolean(L, 7) ? COLLAPSE_NC_WITHIN_SPECTRUM : 0) | conventions_arg(L, 8);
    if (classes >= 1 && collapse_tensor_ndim(f0) == 2) {
        W0 = classifier_check(L, 4, fn, "classifier weight", classes, collapse_tensor_size(f0, 1));
        b0 = classifier_check(L, 5, fn, "bias", classes, 0);
    }
    collapse_nc_result *r = result_holder(L);
    collapse_tensor *fx, *ly, *W = NULL, *b = NULL;
    batch_args(L, 1, 2, fn, &fx, &ly);
    int64_t n = collapse_tensor_size(fx, 0), d = collapse_tensor_size(fx, 1);
    collapse_status s = classifier_copies(W0, b0, &W, &b);
    if (s == COLLAPSE_OK) s = collapse_nc_measure(collapse_tensor_dtype(fx), collapse_tensor_data(fx), n, d,
                                            collapse_tensor_data(ly), classes,
                                            W ? collapse_tensor_data(W) : NULL, b ? collapse_tensor_data(b) : NULL,
                                            q, flags, r);
    collapse_tensor_release(fx);
    collapse_tensor_release(ly);
    collapse_tensor_release(W);
    collapse_tensor_release(b);
    CHECK_STATUS(L, s);
    push_result(L, r);
    return 1;
}

static nc_stats_ud *stats_check(lua_State *L) {
    /* s.pass1(x, y) instead of s:pass1(x, y) puts x where the object belongs: say so plainly */
    nc_stats_ud *ud = luaL_testudata(L, 1, NC_STATS_MT);
    if (!ud) {
        lua_Debug ar;
        const char *name = lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name ? ar.name : "method";
        luaL_error(L, "nc_stats.%s: call with ':' (s:%s(...)); argument 1 is not an nc.stats object", name, name);
    }
    if (!ud->s) luaL_error(L, "nc_stats: object was freed");
    return ud;
}

/* nc_stats(classes, dim, within, conventions) */
static int l_nc_stats(lua_State *L) {
    lua_Integer classes = luaL_checkinteger(L, 1), dim = luaL_checkinteger(L, 2);
    int flags = (lua_toboolean(L, 3) ? COLLAPSE_NC_WITHIN_SPECTRUM : 0) | conventions_arg(L, 4);
    nc_stats_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
    ud->s = NULL;
    luaL_setmetatable(L, NC_STATS_MT);
    if (classes < 1 || classes > 1 << 24) return luaL_error(L, "nc_stats: classes must be in 2..2^24, got %d", (int)classes);
    CHECK_STATUS(L, collapse_nc_stats_new((int)classes, dim, flags, &ud->s));
    ud->classes = (int)classes;
    ud->dim = dim;
    return 1;
}

/* The C tensor entry points check the full shape [n x dim], dtype and layout against the stats. */
static int pass(lua_State *L, int which) {
    nc_stats_ud *ud = stats_check(L);
    collapse_tensor *fx, *ly;
    batch_args(L, 2, 3, which == 1 ? "nc_stats:pass1" : "nc_stats:pass2", &fx, &ly);
    collapse_status s = which == 1 ? collapse_nc_stats_pass1_tensor(ud->s, fx, ly)
                                   : collapse_nc_stats_pass2_tensor(ud->s, fx, ly);
    collapse_tensor_release(fx);
    collapse_tensor_release(ly);
    CHECK_STATUS(L, s);
    return 0;
}
static int s_pass1(lua_State *L) { return pass(L, 1); }
static int s_pass2(lua_State *L) { return pass(L, 2); }

static int s_end_pass1(lua_State *L) {
    CHECK_STATUS(L, collapse_nc_stats_end_pass1(stats_check(L)->s));
    return 0;
}

static int s_set_classifier(lua_State *L) {
    nc_stats_ud *ud = stats_check(L);
    if (lua_isnoneornil(L, 2)) return 0;
    const char *fn = "nc_stats:set_classifier";
    collapse_tensor *W0 = classifier_check(L, 2, fn, "classifier weight", ud->classes, ud->dim);
    collapse_tensor *b0 = classifier_check(L, 3, fn, "bias", ud->classes, 0), *W, *b;
    CHECK_STATUS(L, classifier_copies(W0, b0, &W, &b));
    collapse_status s = collapse_nc_stats_set_classifier(ud->s, collapse_tensor_data(W), b ? collapse_tensor_data(b) : NULL);
    collapse_tensor_release(W);
    collapse_tensor_release(b);
    CHECK_STATUS(L, s);
    return 0;
}

static int s_result(lua_State *L) {
    nc_stats_ud *ud = stats_check(L);
    double q = luaL_optnumber(L, 2, 0.05);
    collapse_nc_result *r = result_holder(L);
    CHECK_STATUS(L, collapse_nc_stats_result(ud->s, q, r));
    push_result(L, r);
    return 1;
}

/* stats:set_conventions(bits) / stats:conventions() -> bits (collapse.nc.conventions names them) */
static int s_set_conventions(lua_State *L) {
    nc_stats_ud *ud = stats_check(L);
    CHECK_STATUS(L, collapse_nc_stats_set_conventions(ud->s, conventions_arg(L, 2)));
    return 0;
}

static int s_conventions(lua_State *L) {
    int conv = 0;
    CHECK_STATUS(L, collapse_nc_stats_conventions(stats_check(L)->s, &conv));
    lua_pushinteger(L, conv);
    return 1;
}

/* stats:save(path): atomic (temporary file + rename) */
static int s_save(lua_State *L) {
    nc_stats_ud *ud = stats_check(L);
    CHECK_STATUS(L, collapse_nc_stats_save(ud->s, luaL_checkstring(L, 2)));
    return 0;
}

/* stats:merge(other): adds other's counts and sums into stats (other is unchanged) */
static int s_merge(lua_State *L) {
    nc_stats_ud *ud = stats_check(L);
    nc_stats_ud *o = luaL_checkudata(L, 2, NC_STATS_MT);
    if (!o->s) return luaL_error(L, "nc_stats:merge: the other object was freed");
    CHECK_STATUS(L, collapse_nc_stats_merge(ud->s, o->s));
    lua_settop(L, 1);
    return 1;
}

/* stats:shape() -> classes, dim, within_spectrum */
static int s_shape(lua_State *L) {
    nc_stats_ud *ud = stats_check(L);
    lua_pushinteger(L, ud->classes);
    lua_pushinteger(L, ud->dim);
    int flags = 0;
    CHECK_STATUS(L, collapse_nc_stats_shape(ud->s, NULL, NULL, &flags));
    lua_pushboolean(L, flags & COLLAPSE_NC_WITHIN_SPECTRUM);
    return 3;
}

/* stats:clone() -> an independent copy */
static int s_clone(lua_State *L) {
    nc_stats_ud *ud = stats_check(L);
    nc_stats_ud *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->s = NULL;
    luaL_setmetatable(L, NC_STATS_MT);
    CHECK_STATUS(L, collapse_nc_stats_clone(ud->s, &c->s));
    c->classes = ud->classes;
    c->dim = ud->dim;
    return 1;
}

/* stats:pass1_files(features_path, labels_path, label_base) (and pass2_files) */
static int pass_files(lua_State *L, int which) {
    nc_stats_ud *ud = stats_check(L);
    const char *f = luaL_checkstring(L, 2), *l = luaL_checkstring(L, 3);
    int base = (int)luaL_optinteger(L, 4, 0);
    CHECK_STATUS(L, collapse_nc_stats_pass_files(ud->s, which, f, l, base));
    return 0;
}
static int s_pass1_files(lua_State *L) { return pass_files(L, 1); }
static int s_pass2_files(lua_State *L) { return pass_files(L, 2); }

/* nc_files_info(features_path, labels_path, label_base, classes|0) -> n, dim, classes */
static int l_nc_files_info(lua_State *L) {
    const char *f = luaL_checkstring(L, 1), *l = luaL_checkstring(L, 2);
    int base = (int)luaL_optinteger(L, 3, 0);
    lua_Integer want = luaL_optinteger(L, 4, 0);
    if (want < 0 || want > 1 << 24) return luaL_error(L, "nc_files_info: classes must be in 2..2^24, got %d", (int)want);
    int64_t n = 0, d = 0;
    int classes = 0;
    CHECK_STATUS(L, collapse_nc_files_info(f, l, base, (int)want, &n, &d, &classes));
    lua_pushinteger(L, n);
    lua_pushinteger(L, d);
    lua_pushinteger(L, classes);
    return 3;
}

/* nc_stats_load(path) -> stats */
static int l_nc_stats_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    nc_stats_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
    ud->s = NULL;
    luaL_setmetatable(L, NC_STATS_MT);
    CHECK_STATUS(L, collapse_nc_stats_load(path, &ud->s));
    CHECK_STATUS(L, collapse_nc_stats_shape(ud->s, &ud->classes, &ud->dim, NULL));
    return 1;
}

static int s_gc(lua_State *L) {
    nc_stats_ud *ud = luaL_checkudata(L, 1, NC_STATS_MT);
    collapse_nc_stats_free(ud->s);
    ud->s = NULL;
    return 0;
}

void binding_open_nc(lua_State *L) {
    static const luaL_Reg methods[] = {{"pass1", s_pass1}, {"end_pass1", s_end_pass1},
                                       {"set_classifier", s_set_classifier}, {"pass2", s_pass2},
                                       {"result", s_result}, {"save", s_save}, {"merge", s_merge}, {"clone", s_clone},
                                       {"pass1_files", s_pass1_files}, {"pass2_files", s_pass2_files},
                                       {"shape", s_shape}, {"set_conventions", s_set_conventions},
                                       {"conventions", s_conventions}, {"free", s_gc}, {NULL, NULL}};
    luaL_newmetatable(L, NC_STATS_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, s_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, s_gc);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newmetatable(L, NC_RESULT_MT);
    lua_pushcfunction(L, result_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    static const struct { const char *name; int bit; } conv[] = {
        {"NC_CONV_MEAN_SAMPLES", COLLAPSE_NC_CONV_MEAN_SAMPLES}, {"NC_CONV_NC1_TRACE", COLLAPSE_NC_CONV_NC1_TRACE},
        {"NC_CONV_CDNV_UNBIASED", COLLAPSE_NC_CONV_CDNV_UNBIASED}, {"NC_CONV_STD_UNBIASED", COLLAPSE_NC_CONV_STD_UNBIASED},
        {"NC_CONV_EQUIANGULAR_SIGNED", COLLAPSE_NC_CONV_EQUIANGULAR_SIGNED},
        {"NC_CONV_SELF_DUALITY_NORM", COLLAPSE_NC_CONV_SELF_DUALITY_NORM},
        {"NC_CONV_NCC_NO_BIAS", COLLAPSE_NC_CONV_NCC_NO_BIAS}};
    for (size_t i = 0; i < sizeof conv / sizeof conv[0]; i++) {
        lua_pushinteger(L, conv[i].bit);
        lua_setfield(L, -2, conv[i].name);
    }
    static const luaL_Reg fns[] = {{"nc_measure", l_nc_measure}, {"nc_stats", l_nc_stats},
                                   {"nc_stats_load", l_nc_stats_load},
                                   {"nc_files_info", l_nc_files_info}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
