/* collapse_blas_recommended_core and the choice rule behind it (csrc/cpu), from C: the C host's
 * way to the kernel that require("collapse") picks by itself (docs/c-api.md). The Lua spec
 * spec/blas_select_spec.lua covers the rule over many CPU models; this checks the C entry. */
#include "check.h"
#include "cpu/cpu_select.h"

int main(void) {
    collapse_blas_info info;
    collapse_blas_get_info(&info);
    cl_cpu c;
    cl_cpu_read(&c);
    /* With this process's environment: a recommendation is strictly better than what runs. */
    const char *rec = getenv("OPENBLAS_CORETYPE") ? NULL : collapse_blas_recommended_core();
    if (rec) CHECK(cl_core_rank(rec) > cl_core_rank(info.core));
    else CHECK(getenv("OPENBLAS_CORETYPE") || getenv("COLLAPSE_BLAS_AUTO") || cl_cpu_choose(&c, info.core) == NULL);
    /* The opt-out switches it off (this variable is collapse's own, not OpenBLAS's). */
    setenv("COLLAPSE_BLAS_AUTO", "0", 1);
    CHECK(collapse_blas_recommended_core() == NULL);
    unsetenv("COLLAPSE_BLAS_AUTO");
    /* The rule on a fixed CPU: an AVX-512 Emerald Rapids (0xCF) that 0.3.21 runs as Prescott. */
    cl_cpu emr = {CL_VENDOR_INTEL, 6, 0xCF, 1, 1, 1, 1, 1, 1};
    CHECK(!strcmp(cl_cpu_openblas_pick(&emr), "Prescott"));
    CHECK(!strcmp(cl_cpu_choose(&emr, "Prescott"), "SkylakeX"));
    CHECK(cl_cpu_choose(&emr, "Cooperlake") == NULL);
    CHECK(cl_cpu_choose(&emr, "NotACore") == NULL);
    return check_report("blas_select");
}
