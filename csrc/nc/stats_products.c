/*
 * The pass-2 products of nc/stats.c: p[i ns + c] = r_i . s_c for a chunk of centred rows r (rows x d)
 * against the stacked rows s (ns x d, ns a multiple of NC_STACK_ROUND), both row-major.
 *
 * Why not dgemm: for this shape (128 x 20 x 512 per chunk) OpenBLAS 0.3.21 spends a third of its time
 * copying the chunk into its packed layout (every call) and its SkylakeX micro-kernel tiles 16 stack
 * rows plus a 4-row tail; on the Intel machine of bench/README.md it ran at ~30 GFLOP/s. Here register
 * blocks of rows x NC_STACK_ROUND stack rows read the chunk in place (in L2, just written by the load).
 *
 * Rounding, the same on every CPU: each product is an 8-lane partial sum, lane k accumulating the terms
 * j = k mod 8 (j < d - d % 8) in order with fused multiply-adds, the lanes then added pairwise
 * ((0+1)+(2+3))+((4+5)+(6+7)), then the d % 8 last terms in order by fma. The AVX-512 and AVX2 paths
 * use hardware FMA; the portable path calls fma() (correctly rounded, so bit-identical; slow only on
 * CPUs without FMA, from before 2013). dgemm's rounding depended on the OpenBLAS core.
 */
#include "core/args.h"
#include "nc/stats_internal.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(COLLAPSE_NO_CLONES)
#  define NC_PR_X86 1
#  include <immintrin.h>
#endif

#define NC_PR_LANES 8
#define NC_PR_COLS NC_STACK_ROUND /* stack rows per block (ns is a multiple of it) */

static inline double nc_lanes_sum(const double *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* The end of one product: the lane sum plus the d % 8 last terms. */
static inline double nc_finish(const double *lanes, const double *r, const double *s, int64_t dv, int64_t d) {
    double v = nc_lanes_sum(lanes);
    for (int64_t j = dv; j < d; j++) v = fma(r[j], s[j], v);
    return v;
}

/* Portable: one row x NC_PR_COLS stack rows per block. */
static void nc_products_portable(const double *restrict r, int64_t rows, int64_t d, const double *restrict s,
                                 int64_t ns, double *restrict p) {
    const int64_t dv = d - d % NC_PR_LANES;
    for (int64_t i = 0; i < rows; i++) {
        const double *ri = r + i * d;
        for (int64_t c = 0; c < ns; c += NC_PR_COLS) {
            double acc[NC_PR_COLS][NC_PR_LANES];
            memset(acc, 0, sizeof acc);
            for (int64_t j = 0; j < dv; j += NC_PR_LANES)
                for (int b = 0; b < NC_PR_COLS; b++)
                    for (int k = 0; k < NC_PR_LANES; k++)
                        acc[b][k] = fma(ri[j + k], s[(c + b) * d + j + k], acc[b][k]);
            for (int b = 0; b < NC_PR_COLS; b++) p[i * ns + c + b] = nc_finish(acc[b], ri, s + (c + b) * d, dv, d);
        }
    }
}

#ifdef NC_PR_X86
#  define NC_PR_ROWS512 4 /* AVX-512: 4 rows x 4 stack rows = 16 zmm accumulators */

/* AVX-512: NR rows (NC_PR_ROWS512 or 1, constant after inlining) x NC_PR_COLS stack rows. */
static inline CL_ALWAYS_INLINE __attribute__((target("avx512f,fma"))) void
nc_block512(const double *restrict r, int64_t d, const double *restrict s, double *restrict p, int64_t ns,
            const int nr) {
    const int64_t dv = d - d % NC_PR_LANES;
    __m512d acc[NC_PR_ROWS512][NC_PR_COLS];
    for (int a = 0; a < nr; a++)
        for (int b = 0; b < NC_PR_COLS; b++) acc[a][b] = _mm512_setzero_pd();
    for (int64_t j = 0; j < dv; j += NC_PR_LANES) {
        __m512d rv[NC_PR_ROWS512];
        for (int a = 0; a < nr; a++) rv[a] = _mm512_loadu_pd(r + a * d + j);
        for (int b = 0; b < NC_PR_COLS; b++) {
            __m512d sv = _mm512_loadu_pd(s + b * d + j);
            for (int a = 0; a < nr; a++) acc[a][b] = _mm512_fmadd_pd(rv[a], sv, acc[a][b]);
        }
    }
    for (int a = 0; a < nr; a++)
        for (int b = 0; b < NC_PR_COLS; b++) {
            double lanes[NC_PR_LANES];
            _mm512_storeu_pd(lanes, acc[a][b]);
            p[a * ns + b] = nc_finish(lanes, r + a * d, s + b * d, dv, d);
        }
}

static __attribute__((target("avx512f,fma"))) void nc_products_avx512(const double *restrict r, int64_t rows, int64_t d,
                                                                       const double *restrict s, int64_t ns,
                                                                       double *restrict p) {
    int64_t i = 0;
    for (; i + NC_PR_ROWS512 <= rows; i += NC_PR_ROWS512)
        for (int64_t c = 0; c < ns; c += NC_PR_COLS)
            nc_block512(r + i * d, d, s + c * d, p + i * ns + c, ns, NC_PR_ROWS512);
    for (; i < rows; i++)
        for (int64_t c = 0; c < ns; c += NC_PR_COLS) nc_block512(r + i * d, d, s + c * d, p + i * ns + c, ns, 1);
}

/* AVX2: one row x NC_PR_COLS stack rows, each 8-lane sum as two ymm halves (lanes 0-3, 4-7). */
static __attribute__((target("avx2,fma"))) void nc_products_avx2(const double *restrict r, int64_t rows, int64_t d,
                                                                  const double *restrict s, int64_t ns,
                                                                  double *restrict p) {
    const int64_t dv = d - d % NC_PR_LANES;
    for (int64_t i = 0; i < rows; i++) {
        const double *ri = r + i * d;
        for (int64_t c = 0; c < ns; c += NC_PR_COLS) {
            __m256d lo[NC_PR_COLS], hi[NC_PR_COLS];
            for (int b = 0; b < NC_PR_COLS; b++) lo[b] = hi[b] = _mm256_setzero_pd();
            for (int64_t j = 0; j < dv; j += NC_PR_LANES) {
                __m256d r0 = _mm256_loadu_pd(ri + j), r1 = _mm256_loadu_pd(ri + j + 4);
                for (int b = 0; b < NC_PR_COLS; b++) {
                    const double *sb = s + (c + b) * d + j;
                    lo[b] = _mm256_fmadd_pd(r0, _mm256_loadu_pd(sb), lo[b]);
                    hi[b] = _mm256_fmadd_pd(r1, _mm256_loadu_pd(sb + 4), hi[b]);
                }
            }
            for (int b = 0; b < NC_PR_COLS; b++) {
                double lanes[NC_PR_LANES];
                _mm256_storeu_pd(lanes, lo[b]);
                _mm256_storeu_pd(lanes + 4, hi[b]);
                p[i * ns + c + b] = nc_finish(lanes, ri, s + (c + b) * d, dv, d);
            }
        }
    }
}
#endif

int nc_products_have(int path) {
#ifdef NC_PR_X86
    if (path == NC_PR_AVX512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    if (path == NC_PR_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return path == NC_PR_PORTABLE;
}

void nc_products_path(int path, const double *r, int64_t rows, int64_t d, const double *s, int64_t ns, double *p) {
#ifdef NC_PR_X86
    if (path == NC_PR_AVX512) {
        nc_products_avx512(r, rows, d, s, ns, p);
        return;
    }
    if (path == NC_PR_AVX2) {
        nc_products_avx2(r, rows, d, s, ns, p);
        return;
    }
#endif
    (void)path;
    nc_products_portable(r, rows, d, s, ns, p);
}

/* The fastest path this CPU runs (all give the same bits). */
void nc_products(const double *r, int64_t rows, int64_t d, const double *s, int64_t ns, double *p) {
    int path = nc_products_have(NC_PR_AVX512) ? NC_PR_AVX512 : nc_products_have(NC_PR_AVX2) ? NC_PR_AVX2 : NC_PR_PORTABLE;
    nc_products_path(path, r, rows, d, s, ns, p);
}
