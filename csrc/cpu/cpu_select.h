/* Which OpenBLAS kernel ("core") to run: the CPU's features, the core Debian's OpenBLAS 0.3.21
 * (DYNAMIC_ARCH) would pick by itself, and the better core when there is one. Plain C with no
 * OpenBLAS and no Lua: it is compiled into libcollapse and into the small Lua module
 * collapse.cpu, which must run before libopenblas is loaded (OpenBLAS reads OPENBLAS_CORETYPE
 * once, in its load-time constructor). */
#ifndef COLLAPSE_CPU_SELECT_H
#define COLLAPSE_CPU_SELECT_H

typedef enum cl_vendor {
    CL_VENDOR_OTHER = 0, CL_VENDOR_INTEL, CL_VENDOR_AMD, CL_VENDOR_HYGON, CL_VENDOR_CENTAUR, CL_VENDOR_ZHAOXIN
} cl_vendor;

/* family / model as cpuid displays them (family 6, model 0xA7; AMD Zen 4: family 0x19). The
 * feature flags mean "usable": the CPU has it and the OS saves the registers it needs. */
typedef struct cl_cpu {
    cl_vendor vendor;
    int family, model;
    int avx, avx2, fma, avx512f, avx512vl, avx512_bf16;
} cl_cpu;

/* This machine (all zero on non-x86 builds). */
void cl_cpu_read(cl_cpu *c);
/* The fastest core OpenBLAS 0.3.21 accepts in OPENBLAS_CORETYPE that this CPU can run:
 * "SkylakeX" (AVX-512 F+VL), "Haswell" (AVX2+FMA), "Sandybridge" (AVX) or "Prescott". */
const char *cl_cpu_best_core(const cl_cpu *c);
/* The CPU feature that best core stands for ("avx512f", "avx2", "avx", "sse3"). */
const char *cl_cpu_best_feature(const cl_cpu *c);
/* The core OpenBLAS 0.3.21's own detection picks on this CPU (its table of CPU models; Intel
 * family-6 models newer than the table fall back to "Prescott"). */
const char *cl_cpu_openblas_pick(const cl_cpu *c);
/* Speed class of a core name, case-insensitive: 0 generic SSE ... 5 AVX-512; -1 unknown name. */
int cl_core_rank(const char *name);
/* The best core when it ranks above `pick` (the core OpenBLAS would run), else NULL. An unknown
 * pick (a newer OpenBLAS's name) is never overridden. */
const char *cl_cpu_choose(const cl_cpu *c, const char *pick);

#endif
