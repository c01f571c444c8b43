/* CPU features and the OpenBLAS core choice (see cpu_select.h). The model table below records
 * what OpenBLAS 0.3.21's DYNAMIC_ARCH detection (driver/others/dynamic.c, get_coretype) does on
 * each CPU, as data: the highest core it allows for a model; the features then decide. */
#include "cpu/cpu_select.h"

#include <string.h>
#include <strings.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#define CL_X86 1
#endif

void cl_cpu_read(cl_cpu *c) {
    memset(c, 0, sizeof *c);
#ifdef CL_X86
    unsigned a, b, cx, d;
    if (!__get_cpuid(0, &a, &b, &cx, &d)) return;
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &cx, 4);
    vendor[12] = 0;
    static const struct { const char *id; cl_vendor v; } vendors[] = {
        {"GenuineIntel", CL_VENDOR_INTEL}, {"AuthenticAMD", CL_VENDOR_AMD}, {"HygonGenuine", CL_VENDOR_HYGON},
        {"CentaurHauls", CL_VENDOR_CENTAUR}, {"  Shanghai  ", CL_VENDOR_ZHAOXIN}};
    for (size_t i = 0; i < sizeof vendors / sizeof *vendors; i++)
        if (!strcmp(vendor, vendors[i].id)) c->vendor = vendors[i].v;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return;
    int family = (a >> 8) & 0xf, model = (a >> 4) & 0xf, exfamily = (a >> 20) & 0xff, exmodel = (a >> 16) & 0xf;
    c->family = family == 0xf ? family + exfamily : family;
    c->model = (family == 0x6 || family == 0xf) ? (exmodel << 4) | model : model;
    /* libgcc's answers include the OS check (XGETBV) for the AVX and AVX-512 register state. */
    __builtin_cpu_init();
    c->avx = __builtin_cpu_supports("avx");
    c->avx2 = __builtin_cpu_supports("avx2");
    c->fma = __builtin_cpu_supports("fma");
    c->avx512f = __builtin_cpu_supports("avx512f");
    c->avx512vl = __builtin_cpu_supports("avx512vl");
    c->avx512_bf16 = __builtin_cpu_supports("avx512bf16");
#endif
}

/* Ceilings: the best core OpenBLAS lets a CPU model reach (then limited by its features). */
enum { UP_PRESCOTT, UP_CORE2, UP_NEHALEM, UP_SANDY, UP_HASWELL, UP_SKYLAKEX, UP_COOPERLAKE };

static int has_avx512(const cl_cpu *c) { return c->avx512f && c->avx512vl; }
static int has_avx2(const cl_cpu *c) { return c->avx2 && c->fma; }

/* The features' core under a ceiling; `floor` is what is left without AVX. */
static const char *ladder(const cl_cpu *c, int up, const char *floor) {
    if (up >= UP_COOPERLAKE && has_avx512(c) && c->avx512_bf16) return "Cooperlake";
    if (up >= UP_SKYLAKEX && has_avx512(c)) return "SkylakeX";
    if (up >= UP_HASWELL && c->avx2) return "Haswell";
    if (up >= UP_SANDY && c->avx) return "Sandybridge";
    return floor;
}

/* Intel family 6 models that 0.3.21 knows, and their ceiling. */
static const struct { unsigned char up; unsigned char models[20]; } intel6[] = {
    {UP_CORE2, {0x0F, 0x16, 0x17, 0x1D}},
    {UP_NEHALEM, {0x1A, 0x1B, 0x1C, 0x1E, 0x1F, 0x25, 0x2C, 0x2E, 0x2F, 0x37, 0x4C, 0x4D, 0x5C, 0x5F, 0x7A}},
    {UP_SANDY, {0x2A, 0x2D, 0x3A, 0x3E}},
    {UP_HASWELL, {0x3C, 0x3D, 0x3F, 0x45, 0x46, 0x47, 0x4E, 0x4F, 0x56, 0x57, 0x5E, 0x66, 0x8E, 0x9E, 0xA5, 0xA6}},
    {UP_SKYLAKEX, {0x7D, 0x7E, 0x8C, 0x8D, 0xA7}},
    {UP_COOPERLAKE, {0x55, 0x6A, 0x6C, 0x8F, 0x97, 0x9A}},
};

static const char *intel_family6(const cl_cpu *c) {
    for (size_t i = 0; i < sizeof intel6 / sizeof *intel6; i++)
        for (int j = 0; j < 20 && intel6[i].models[j]; j++)
            if (intel6[i].models[j] == c->model) {
                if (intel6[i].up == UP_CORE2) return "Core2";
                return ladder(c, intel6[i].up, "Nehalem");
            }
    /* Extended models 0xB.. and up fall through its switch into the Pentium 4 case: the issue's
     * Prescott. Models 0x00-0x0E are 32-bit CPUs (Prescott too on x86-64). */
    if (c->model >= 0xB0 || c->model < 0x0F) return "Prescott";
    return ladder(c, UP_COOPERLAKE, "Prescott"); /* unknown: its fallback by features */
}

static const char *amd(const cl_cpu *c) {
    if (c->family < 0xf) return "Prescott"; /* Athlon, mapped to Prescott on 64-bit */
    switch (c->family) {
    case 0xf: case 0x11: case 0x14: case 0x16: return "Core2"; /* Opteron, Bobcat */
    case 0x15: return c->avx ? (c->avx2 ? "Excavator" : "Piledriver") : "Barcelona";
    case 0x17: case 0x18: return c->avx ? "Zen" : "Barcelona";
    case 0x19: return ladder(c, UP_COOPERLAKE, c->avx ? "Zen" : "Barcelona");
    default: return ladder(c, UP_COOPERLAKE, "Prescott"); /* unknown family: fallback by features */
    }
}

const char *cl_cpu_openblas_pick(const cl_cpu *c) {
    switch (c->vendor) {
    case CL_VENDOR_INTEL:
        if (c->family == 6) return intel_family6(c);
        if (c->family >= 0xf && c->family < 0x10) return "Prescott";
        return ladder(c, UP_COOPERLAKE, "Prescott");
    case CL_VENDOR_AMD: case CL_VENDOR_HYGON: return amd(c);
    case CL_VENDOR_CENTAUR: case CL_VENDOR_ZHAOXIN:
        if (c->family == 7 && (c->model >> 4) == 5) return c->avx2 ? "Zen" : "Core2";
        return "Nehalem";
    default: return ladder(c, UP_COOPERLAKE, "Prescott");
    }
}

const char *cl_cpu_best_core(const cl_cpu *c) {
    if (has_avx512(c) && has_avx2(c)) return "SkylakeX"; /* 0.3.21 cannot be told "Cooperlake" */
    if (has_avx2(c)) return "Haswell";
    if (c->avx) return "Sandybridge";
    return "Prescott";
}

const char *cl_cpu_best_feature(const cl_cpu *c) {
    static const char *names[][2] = {{"SkylakeX", "avx512f"}, {"Haswell", "avx2"}, {"Sandybridge", "avx"}};
    const char *best = cl_cpu_best_core(c);
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(best, names[i][0])) return names[i][1];
    return "sse3";
}

int cl_core_rank(const char *name) {
    static const struct { const char *name; int rank; } ranks[] = {
        {"Katmai", 0}, {"Coppermine", 0}, {"Northwood", 0}, {"Prescott", 0}, {"Banias", 0}, {"Athlon", 0},
        {"Unknown", 0}, {"Core2", 1}, {"Penryn", 1}, {"Dunnington", 1}, {"Opteron", 1}, {"Opteron_SSE3", 1},
        {"Bobcat", 1}, {"Atom", 2}, {"Nehalem", 2}, {"Nano", 2}, {"Barcelona", 2}, {"Sandybridge", 3},
        {"Bulldozer", 3}, {"Piledriver", 3}, {"Steamroller", 3}, {"Excavator", 4}, {"Zen", 4}, {"Haswell", 4},
        {"SkylakeX", 5}, {"Cooperlake", 5}};
    if (!name) return -1;
    for (size_t i = 0; i < sizeof ranks / sizeof *ranks; i++)
        if (!strcasecmp(name, ranks[i].name)) return ranks[i].rank;
    return -1;
}

const char *cl_cpu_choose(const cl_cpu *c, const char *pick) {
    int have = cl_core_rank(pick);
    const char *best = cl_cpu_best_core(c);
    if (have < 0 || cl_core_rank(best) <= have) return NULL;
    return best;
}
