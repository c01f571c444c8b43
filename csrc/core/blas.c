/* What OpenBLAS runs on, and thread control. Debian's OpenBLAS may fall back to a generic
 * kernel on CPUs it does not recognise (5x slower); blas_info says so. */
#include "core/tensor.h"
#include "cpu/cpu_select.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int cpu_has(const char *feature) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (!strcmp(feature, "avx2")) return __builtin_cpu_supports("avx2");
    if (!strcmp(feature, "avx512f")) return __builtin_cpu_supports("avx512f");
#endif
    (void)feature;
    return 0;
}

void collapse_blas_get_info(collapse_blas_info *info) {
    memset(info, 0, sizeof *info);
    const char *cfg = openblas_get_config();
    const char *core = openblas_get_corename();
    snprintf(info->config, sizeof info->config, "%s", cfg ? cfg : "unknown");
    snprintf(info->core, sizeof info->core, "%s", core ? core : "unknown");
    info->threads = openblas_get_num_threads();
    info->cpu_avx2 = cpu_has("avx2");
    info->cpu_avx512 = cpu_has("avx512f");
    /* Cores without AVX2 kernels; running one of these on an AVX2 CPU wastes most of it. */
    static const char *generic[] = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom",
                                    "sandybridge", "katmai", "coppermine", "northwood", "banias",
                                    "generic", "unknown"};
    int is_generic = 0;
    for (size_t i = 0; i < sizeof generic / sizeof *generic; i++) {
        size_t n = strlen(generic[i]);
        if (!strncasecmp(info->core, generic[i], n)) is_generic = 1;
    }
    info->generic_core = is_generic && (info->cpu_avx2 || info->cpu_avx512);
}

/* Here OpenBLAS is loaded, so its real choice is known (collapse.cpu, before the load, has to
 * predict it). The user's setting and the opt-out are respected as in lua/collapse/blas_select.lua. */
const char *collapse_blas_recommended_core(void) {
    const char *env = getenv("OPENBLAS_CORETYPE"), *opt = getenv("COLLAPSE_BLAS_AUTO");
    if ((env && *env) || (opt && !strcmp(opt, "0"))) return NULL;
    cl_cpu c;
    cl_cpu_read(&c);
    return cl_cpu_choose(&c, openblas_get_corename());
}

collapse_status collapse_set_num_threads(int n) {
    if (n < 1) return collapse_fail(COLLAPSE_ERR_ARG, "set_num_threads: n must be >= 1, got %d", n);
    openblas_set_num_threads(n);
    return COLLAPSE_OK;
}

int collapse_get_num_threads(void) { return openblas_get_num_threads(); }
