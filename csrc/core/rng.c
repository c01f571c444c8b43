/* Seeded random numbers, identical on every platform (docs/rng.md):
 * xoshiro256** (Blackman & Vigna 2018) with its state filled by splitmix64(seed);
 * uniform doubles from the top 53 bits; normals by Box-Muller, pairs cached. */
#include "core/tensor.h"

#include <math.h>
#include <string.h>

uint64_t cl_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void collapse_rng_seed(collapse_rng *g, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) g->s[i] = cl_splitmix64(&x);
    g->has_spare = 0;
    g->spare = 0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t collapse_rng_next(collapse_rng *g) {
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double collapse_rng_uniform(collapse_rng *g) {
    return (double)(collapse_rng_next(g) >> 11) * 0x1.0p-53;
}

double collapse_rng_normal(collapse_rng *g) {
    if (g->has_spare) {
        g->has_spare = 0;
        return g->spare;
    }
    double u1 = 1.0 - collapse_rng_uniform(g); /* (0, 1]: log is finite */
    double u2 = collapse_rng_uniform(g);
    double r = sqrt(-2.0 * log(u1));
    double a = 6.283185307179586476925286766559 * u2;
    g->spare = r * sin(a);
    g->has_spare = 1;
    return r * cos(a);
}

int64_t collapse_rng_integer(collapse_rng *g, int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    uint64_t range = (uint64_t)hi - (uint64_t)lo + 1; /* 0 means the full 2^64 range */
    if (range == 0) return (int64_t)collapse_rng_next(g);
    /* Rejection sampling: draw below the largest multiple of range. */
    uint64_t excess = (UINT64_MAX % range + 1) % range; /* 2^64 mod range */
    uint64_t x;
    do x = collapse_rng_next(g);
    while (excess && x > UINT64_MAX - excess);
    return lo + (int64_t)(x % range);
}

void collapse_rng_permutation(collapse_rng *g, int64_t n, int64_t base, int64_t *perm) {
    for (int64_t i = 0; i < n; i++) perm[i] = base + i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = collapse_rng_integer(g, 0, i);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static collapse_status fill_random(const char *fn, collapse_tensor *t, collapse_rng *g, int normal) {
    if (!g) return collapse_fail(COLLAPSE_ERR_ARG, "%s: rng is NULL", fn);
    if (t->dtype == COLLAPSE_INT32)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: expected a float32 or float64 tensor, got int32", fn);
    int64_t n = collapse_tensor_numel(t);
    for (int64_t k = 0; k < n; k++) {
        double v = normal ? collapse_rng_normal(g) : collapse_rng_uniform(g);
        cl_storage_write(t, tensor_elem_offset(t, k), v);
    }
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_randn(collapse_tensor *t, collapse_rng *g) { return fill_random("randn", t, g, 1); }
collapse_status collapse_tensor_rand(collapse_tensor *t, collapse_rng *g) { return fill_random("rand", t, g, 0); }

/* ---- portable state: "XS1", s[0..3] as little-endian uint64, has_spare, spare's IEEE-754 bits
 * as little-endian uint64 (the same bytes on every platform, unlike the struct's own layout). */
static void put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void collapse_rng_save(const collapse_rng *g, unsigned char out[COLLAPSE_RNG_STATE_BYTES]) {
    memcpy(out, "XS1", 3);
    for (int i = 0; i < 4; i++) put_le64(out + 3 + 8 * i, g->s[i]);
    out[35] = g->has_spare ? 1 : 0;
    uint64_t bits;
    memcpy(&bits, &g->spare, sizeof bits);
    put_le64(out + 36, bits);
}

collapse_status collapse_rng_restore(collapse_rng *g, const unsigned char *state, size_t len) {
    if (!g || !state) return collapse_fail(COLLAPSE_ERR_ARG, "rng_restore: generator and state must not be NULL");
    if (len == sizeof *g) { /* the raw struct of checkpoints written before the portable format */
        memcpy(g, state, sizeof *g);
        return COLLAPSE_OK;
    }
    if (len != COLLAPSE_RNG_STATE_BYTES || memcmp(state, "XS1", 3) != 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "rng_restore: state has %zu bytes, expected %d (format XS1)", len,
                             COLLAPSE_RNG_STATE_BYTES);
    if (state[35] > 1) return collapse_fail(COLLAPSE_ERR_FORMAT, "rng_restore: state byte 36 (has_spare) is %d, expected 0 or 1", state[35]);
    for (int i = 0; i < 4; i++) g->s[i] = get_le64(state + 3 + 8 * i);
    g->has_spare = state[35];
    uint64_t bits = get_le64(state + 36);
    memcpy(&g->spare, &bits, sizeof bits);
    return COLLAPSE_OK;
}
