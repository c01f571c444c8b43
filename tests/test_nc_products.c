/* The pass-2 product kernel of nc/stats_products.c: every path this CPU runs (portable fma(), AVX2,
 * AVX-512) gives the same bits as the portable one, for shapes that exercise the row tail (rows % 4),
 * the column tail (d % 8) and several stack widths; and the values match an exact reference (integer
 * data, where every partial sum is exact) and a long-double one (random data). */
#include "check.h"
#include "nc/stats_internal.h"

#include <stdint.h>

static uint64_t rng_state = 12345;
static double uniform(void) { /* splitmix64 -> [-1, 1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* One shape: fill r and s (integers in -8..8 if `integer`, else uniform), run every path. */
static void check_shape(int64_t rows, int64_t d, int64_t ns, int integer) {
    double *r = malloc((size_t)(rows * d) * sizeof *r), *s = malloc((size_t)(ns * d) * sizeof *s);
    double *p0 = malloc((size_t)(rows * ns) * sizeof *p0), *p1 = malloc((size_t)(rows * ns) * sizeof *p1);
    for (int64_t i = 0; i < rows * d; i++) r[i] = integer ? (double)(int)(uniform() * 8.5) : uniform();
    for (int64_t i = 0; i < ns * d; i++) s[i] = integer ? (double)(int)(uniform() * 8.5) : uniform();
    nc_products_path(NC_PR_PORTABLE, r, rows, d, s, ns, p0);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t c = 0; c < ns; c++) {
            long double ref = 0.0L, mag = 0.0L;
            for (int64_t j = 0; j < d; j++) {
                ref += (long double)r[i * d + j] * s[c * d + j];
                mag += fabsl((long double)r[i * d + j] * s[c * d + j]);
            }
            if (integer) CHECK(p0[i * ns + c] == (double)ref);
            else CHECK(fabsl(p0[i * ns + c] - ref) <= 1e-14L * mag + 1e-300L);
        }
    for (int path = NC_PR_AVX2; path <= NC_PR_AVX512; path++) {
        if (!nc_products_have(path)) continue;
        nc_products_path(path, r, rows, d, s, ns, p1);
        CHECK(memcmp(p0, p1, (size_t)(rows * ns) * sizeof *p0) == 0);
    }
    nc_products(r, rows, d, s, ns, p1);
    CHECK(memcmp(p0, p1, (size_t)(rows * ns) * sizeof *p0) == 0);
    free(r);
    free(s);
    free(p0);
    free(p1);
}

int main(void) {
    const int64_t rows[] = {1, 3, 4, 5, 9, 128};
    const int64_t dims[] = {1, 7, 8, 13, 64, 515};
    const int64_t widths[] = {4, 8, 20};
    for (size_t a = 0; a < sizeof rows / sizeof rows[0]; a++)
        for (size_t b = 0; b < sizeof dims / sizeof dims[0]; b++)
            for (size_t c = 0; c < sizeof widths / sizeof widths[0]; c++)
                for (int integer = 0; integer <= 1; integer++) check_shape(rows[a], dims[b], widths[c], integer);
    printf("paths on this CPU: portable%s%s\n", nc_products_have(NC_PR_AVX2) ? ", avx2" : "",
           nc_products_have(NC_PR_AVX512) ? ", avx512" : "");
    return check_report("nc_products");
}
