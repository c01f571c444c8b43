/* C unit tests of the tensor core: lifetimes, views, copies, reductions, matmul vs naive loops. */
#include "check.h"

static collapse_tensor *mat(collapse_dtype dt, int64_t r, int64_t c, collapse_rng *g) {
    int64_t shape[2] = {r, c};
    collapse_tensor *t = NULL;
    collapse_tensor_new(dt, 2, shape, &t);
    collapse_tensor_randn(t, g);
    return t;
}

static double at(const collapse_tensor *t, int64_t i, int64_t j) {
    int64_t idx[2] = {i, j};
    double v = 0;
    collapse_tensor_get(t, idx, &v);
    return v;
}

/* max relative error of a @ b (computed by the library) against a triple loop in double */
static double matmul_error(const collapse_tensor *a, const collapse_tensor *b) {
    collapse_tensor *c = NULL;
    if (collapse_matmul(a, b, &c) != COLLAPSE_OK) return 1e9;
    int64_t m = collapse_tensor_size(a, 0), k = collapse_tensor_size(a, 1), n = collapse_tensor_size(b, 1);
    double worst = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t l = 0; l < k; l++) s += at(a, i, l) * at(b, l, j);
            double e = fabs(at(c, i, j) - s) / (fabs(s) > 1 ? fabs(s) : 1);
            if (e > worst) worst = e;
        }
    collapse_tensor_release(c);
    return worst;
}

static void test_matmul(collapse_dtype dt, double tol) {
    collapse_rng g;
    collapse_rng_seed(&g, 1);
    collapse_tensor *a = mat(dt, 13, 7, &g), *b = mat(dt, 7, 5, &g);
    CHECK(matmul_error(a, b) < tol);
    /* transposed operands: (7x13)^T and (5x7)^T */
    collapse_tensor *at_ = mat(dt, 7, 13, &g), *bt = mat(dt, 5, 7, &g), *ta = NULL, *tb = NULL;
    CHECK_OK(collapse_tensor_transpose(at_, &ta));
    CHECK_OK(collapse_tensor_transpose(bt, &tb));
    CHECK(matmul_error(ta, tb) < tol);
    CHECK(matmul_error(ta, b) < tol);
    /* strided views: a block of a bigger matrix */
    collapse_tensor *big = mat(dt, 20, 20, &g), *r = NULL, *v1 = NULL, *v2 = NULL;
    CHECK_OK(collapse_tensor_narrow(big, 0, 3, 6, &r));
    CHECK_OK(collapse_tensor_narrow(r, 1, 2, 9, &v1)); /* 6 x 9 */
    collapse_tensor *r2 = NULL;
    CHECK_OK(collapse_tensor_narrow(big, 0, 5, 9, &r2));
    CHECK_OK(collapse_tensor_narrow(r2, 1, 11, 4, &v2)); /* 9 x 4 */
    CHECK(!collapse_tensor_is_contiguous(v1));
    CHECK(matmul_error(v1, v2) < tol);
    /* a column-strided operand that BLAS cannot take directly: transposed view of a narrow */
    collapse_tensor *v2t = NULL, *v2tt = NULL;
    CHECK_OK(collapse_tensor_transpose(v2, &v2t));
    CHECK_OK(collapse_tensor_transpose(v2t, &v2tt));
    CHECK(matmul_error(v1, v2tt) < tol);
    collapse_tensor *all[] = {a, b, at_, bt, ta, tb, big, r, v1, r2, v2, v2t, v2tt};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) collapse_tensor_release(all[i]);
}

static void test_views_and_lifetimes(void) {
    int64_t shape[2] = {3, 4};
    collapse_tensor *t = NULL, *row = NULL, *tt = NULL;
    int64_t before = collapse_bytes_in_use();
    CHECK_OK(collapse_tensor_new(COLLAPSE_FLOAT64, 2, shape, &t));
    CHECK(collapse_bytes_in_use() - before == 3 * 4 * 8);
    CHECK_OK(collapse_tensor_select(t, 0, 1, &row));
    CHECK_OK(collapse_tensor_fill(row, 2.0));
    CHECK_OK(collapse_tensor_transpose(t, &tt));
    collapse_tensor_release(t); /* views keep the storage alive */
    CHECK(collapse_bytes_in_use() - before == 3 * 4 * 8);
    CHECK(at(tt, 3, 1) == 2.0 && at(tt, 3, 0) == 0.0);
    double s = 0;
    CHECK_OK(collapse_tensor_sum_all(tt, &s));
    CHECK(s == 8.0);
    collapse_tensor_release(row);
    collapse_tensor_release(tt);
    CHECK(collapse_bytes_in_use() == before);
}

static void test_errors(void) {
    int64_t bad[2] = {2, -1}, ok[2] = {2, 3}, other[2] = {4, 5};
    collapse_tensor *t = NULL, *a = NULL, *b = NULL, *c = NULL;
    CHECK_FAILS(collapse_tensor_new(COLLAPSE_FLOAT32, 2, bad, &t), "size -1 of dimension 2 is negative");
    CHECK(t == NULL);
    CHECK_FAILS(collapse_tensor_new((collapse_dtype)9, 2, ok, &t), "unknown dtype");
    CHECK_OK(collapse_tensor_new(COLLAPSE_FLOAT32, 2, ok, &a));
    CHECK_OK(collapse_tensor_new(COLLAPSE_FLOAT32, 2, other, &b));
    CHECK_FAILS(collapse_matmul(a, b, &c), "matmul: size mismatch, [2 x 3] @ [4 x 5]");
    int64_t idx[2] = {2, 0};
    double v;
    CHECK_FAILS(collapse_tensor_get(a, idx, &v), "index 3 out of range 1..2");
    collapse_dtype dt;
    CHECK_FAILS(collapse_dtype_from_name("half", &dt), "unknown dtype 'half'");
    collapse_tensor_release(a);
    collapse_tensor_release(b);
}

static void test_reduce_and_copy(void) {
    const double data[6] = {1, 5, 3, 4, 2, 6};
    int64_t shape[2] = {2, 3};
    collapse_tensor *t = NULL, *s = NULL, *am = NULL, *f = NULL, *back = NULL;
    CHECK_OK(collapse_tensor_from_data(COLLAPSE_FLOAT64, 2, shape, data, &t));
    CHECK_OK(collapse_tensor_reduce(t, COLLAPSE_SUM, 0, &s));
    CHECK(at(s, 0, 0) == 5.0); /* s is 1-d; at() with 2 indices reads index [0] via the first */
    CHECK_OK(collapse_tensor_reduce(t, COLLAPSE_ARGMAX, 1, &am));
    CHECK(collapse_tensor_dtype(am) == COLLAPSE_INT32);
    const int32_t *ai = collapse_tensor_data(am);
    CHECK(ai[0] == 2 && ai[1] == 3); /* 1-based like labels */
    CHECK_OK(collapse_tensor_to(t, COLLAPSE_FLOAT32, &f));
    CHECK_OK(collapse_tensor_to(f, COLLAPSE_FLOAT64, &back));
    double dot = 0;
    CHECK_OK(collapse_tensor_dot(t, back, &dot));
    CHECK(dot == 1 + 25 + 9 + 16 + 4 + 36);
    collapse_tensor *arr[] = {t, s, am, f, back};
    for (int i = 0; i < 5; i++) collapse_tensor_release(arr[i]);
}

static void test_adopt(void) {
    int64_t shape[2] = {2, 3}, before = collapse_bytes_in_use();
    double *buf = malloc(6 * sizeof(double));
    for (int i = 0; i < 6; i++) buf[i] = i + 0.5;
    collapse_tensor *t = NULL;
    CHECK_OK(collapse_tensor_adopt(COLLAPSE_FLOAT64, 2, shape, buf, &t));
    CHECK(collapse_tensor_data(t) == buf); /* no copy */
    CHECK(at(t, 1, 2) == 5.5);
    CHECK(collapse_bytes_in_use() - before == 6 * 8);
    collapse_tensor_release(t); /* frees buf (the sanitizer build checks for leaks) */
    CHECK(collapse_bytes_in_use() == before);
    collapse_tensor *u = NULL;
    CHECK_FAILS(collapse_tensor_adopt(COLLAPSE_FLOAT64, 2, shape, NULL, &u), "tensor_adopt: data is NULL");
    int64_t empty[1] = {0};
    CHECK_OK(collapse_tensor_adopt(COLLAPSE_INT32, 1, empty, NULL, &u));
    CHECK(collapse_tensor_numel(u) == 0);
    collapse_tensor_release(u);
}

static void test_rng(void) {
    collapse_rng g, h;
    collapse_rng_seed(&g, 42);
    collapse_rng_seed(&h, 42);
    /* Reference from spec/fixtures/make_rng_reference.py (independent Python implementation). */
    CHECK_CLOSE(collapse_rng_uniform(&g), 0.08386297105988216, 1e-16);
    CHECK_CLOSE(collapse_rng_uniform(&g), 0.3789802506626686, 1e-16);
    collapse_rng_uniform(&h);
    collapse_rng_uniform(&h);
    CHECK(collapse_rng_next(&g) == collapse_rng_next(&h));
    int64_t perm[10];
    int seen[10] = {0};
    collapse_rng_permutation(&g, 10, 0, perm);
    for (int i = 0; i < 10; i++) seen[perm[i]]++;
    for (int i = 0; i < 10; i++) CHECK(seen[i] == 1);
    for (int i = 0; i < 1000; i++) {
        int64_t k = collapse_rng_integer(&g, 3, 5);
        CHECK(k >= 3 && k <= 5);
    }
}

/* resize keeps the storage while its capacity suffices, reallocates beyond it, refuses views. */
static void test_resize(void) {
    collapse_tensor *t = NULL, *v = NULL;
    int64_t s0[1] = {0}, s23[2] = {2, 3}, s6[1] = {6}, s32[2] = {3, 2}, s45[2] = {4, 5};
    CHECK_OK(collapse_tensor_new(COLLAPSE_FLOAT64, 1, s0, &t));
    CHECK_OK(collapse_tensor_resize(t, 2, s23));
    CHECK(collapse_tensor_ndim(t) == 2 && collapse_tensor_numel(t) == 6 && collapse_tensor_is_contiguous(t));
    CHECK(collapse_tensor_dtype(t) == COLLAPSE_FLOAT64);
    CHECK_OK(collapse_tensor_fill(t, 7));
    void *p = collapse_tensor_data(t);
    CHECK_OK(collapse_tensor_resize(t, 1, s6)); /* same count: same memory, same values */
    CHECK(collapse_tensor_data(t) == p);
    int64_t i5[1] = {5};
    double val = 0;
    CHECK_OK(collapse_tensor_get(t, i5, &val));
    CHECK(val == 7);
    CHECK_OK(collapse_tensor_resize(t, 2, s32)); /* smaller or equal: capacity kept */
    CHECK(collapse_tensor_data(t) == p && collapse_tensor_size(t, 0) == 3);
    CHECK_OK(collapse_tensor_resize(t, 1, (int64_t[]){2}));
    CHECK(collapse_tensor_data(t) == p);
    CHECK_OK(collapse_tensor_resize(t, 2, s23)); /* back within capacity: no allocation */
    CHECK(collapse_tensor_data(t) == p);
    int64_t before = collapse_bytes_in_use();
    CHECK_OK(collapse_tensor_resize(t, 2, s45)); /* beyond: a new storage, the old one freed */
    CHECK(collapse_tensor_numel(t) == 20);
    CHECK(collapse_bytes_in_use() == before + (20 - 6) * 8);
    CHECK_OK(collapse_tensor_narrow(t, 0, 1, 2, &v));
    CHECK_FAILS(collapse_tensor_resize(v, 2, s23), "tensor_resize: cannot resize a view");
    CHECK_OK(collapse_tensor_resize(v, 2, (int64_t[]){2, 5})); /* a view of the right shape is fine */
    collapse_tensor_release(v);
    CHECK_OK(collapse_tensor_transpose(t, &v));
    CHECK_FAILS(collapse_tensor_resize(v, 2, s45), "cannot resize a view");
    collapse_tensor_release(v);
    CHECK_FAILS(collapse_tensor_resize(t, 1, (int64_t[]){-1}), "tensor_resize: size -1 of dimension 1 is negative");
    CHECK_FAILS(collapse_tensor_resize(NULL, 1, s6), "tensor_resize: tensor is NULL");
    collapse_tensor_release(t);
}

/* The saved generator state is the documented little-endian layout and restores the stream. */
static void test_rng_state(void) {
    collapse_rng g, h;
    collapse_rng_seed(&g, 7);
    collapse_rng_normal(&g); /* leaves a cached spare */
    unsigned char st[COLLAPSE_RNG_STATE_BYTES];
    collapse_rng_save(&g, st);
    CHECK(memcmp(st, "XS1", 3) == 0 && st[35] == 1);
    uint64_t w0 = 0;
    for (int i = 0; i < 8; i++) w0 |= (uint64_t)st[3 + i] << (8 * i);
    CHECK(w0 == g.s[0]);
    CHECK_OK(collapse_rng_restore(&h, st, sizeof st));
    CHECK(collapse_rng_normal(&h) == collapse_rng_normal(&g));
    CHECK(collapse_rng_next(&h) == collapse_rng_next(&g));
    collapse_rng old = g; /* the raw struct of older checkpoints still loads */
    CHECK_OK(collapse_rng_restore(&h, (const unsigned char *)&old, sizeof old));
    CHECK(collapse_rng_next(&h) == collapse_rng_next(&g));
    CHECK_FAILS(collapse_rng_restore(&h, st, 10), "rng_restore: state has 10 bytes, expected 44");
}

int main(void) {
    test_resize();
    test_rng_state();
    test_matmul(COLLAPSE_FLOAT64, 1e-12);
    test_matmul(COLLAPSE_FLOAT32, 1e-5);
    test_views_and_lifetimes();
    test_errors();
    test_reduce_and_copy();
    test_rng();
    test_adopt();
    return check_report("test_tensor");
}
