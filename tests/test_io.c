/* File formats: IDX, NPY, CSV readers, NPY writer, atomic writes. Run from the repository root.
 * Fixtures and their exact expected values come from spec/fixtures/make_io_fixtures.py (numpy). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "collapse.h"
#include "../spec/fixtures/io/io_expected.h"

#define FIX "spec/fixtures/io/"
#define NELEM(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

static char tmpdir[64];

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_raw(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    if (len && fwrite(data, 1, len, f) != len) { perror(path); exit(2); }
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_raw(path, text, strlen(text)); }

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return NULL;
    size_t cap = 1 << 12;
    unsigned char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + *len, 1, cap - *len, f)) > 0) {
        *len += k;
        if (*len == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    return buf;
}

/* Number of entries in tmpdir whose name contains `needle` ("" counts all). */
static int count_entries(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, needle)) n++;
    closedir(d);
    return n;
}

static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    if (!d) return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int shape_is(const collapse_array *a, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    int64_t want[3] = {d0, d1, d2};
    if (a->ndim != ndim) return 0;
    for (int i = 0; i < ndim && i < 3; i++)
        if (a->shape[i] != want[i]) return 0;
    return 1;
}

#define CHECK_DATA(arr, expected) \
    CHECK(collapse_array_numel(&(arr)) == NELEM(expected) && (arr).data && \
          memcmp((arr).data, (expected), sizeof(expected)) == 0)

/* ---- NPY ------------------------------------------------------------------- */

static void test_npy_read(void) {
    collapse_array a;
    CHECK_OK(collapse_npy_read(FIX "f4_2x3.npy", &a));
    CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 2, 2, 3, 0));
    CHECK_DATA(a, npy_f4_2x3);
    collapse_array_free(&a);
    collapse_array_free(&a); /* safe twice */
    CHECK(a.data == NULL && a.ndim == 0);

    CHECK_OK(collapse_npy_read(FIX "f4_2x3.npy.gz", &a));
    CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 2, 2, 3, 0));
    CHECK_DATA(a, npy_f4_2x3);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "f8_2x2x3.npy", &a));
    CHECK(a.dtype == COLLAPSE_FLOAT64 && shape_is(&a, 3, 2, 2, 3));
    CHECK_DATA(a, npy_f8_2x2x3);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "i4_5.npy", &a));
    CHECK(a.dtype == COLLAPSE_INT32 && shape_is(&a, 1, 5, 0, 0));
    CHECK_DATA(a, npy_i4_5);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "i8_2x2.npy", &a));
    CHECK(a.dtype == COLLAPSE_INT32 && shape_is(&a, 2, 2, 2, 0));
    CHECK_DATA(a, npy_i8_2x2);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "u1_3x4.npy", &a));
    CHECK(a.dtype == COLLAPSE_INT32 && shape_is(&a, 2, 3, 4, 0));
    CHECK_DATA(a, npy_u1_3x4);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "be_f8_3.npy", &a));
    CHECK(a.dtype == COLLAPSE_FLOAT64 && shape_is(&a, 1, 3, 0, 0));
    CHECK_DATA(a, npy_be_f8_3);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "be_f4_2x2.npy", &a));
    CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 2, 2, 2, 0));
    CHECK_DATA(a, npy_be_f4_2x2);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "be_i8_2x2.npy", &a));
    CHECK(a.dtype == COLLAPSE_INT32 && shape_is(&a, 2, 2, 2, 0));
    CHECK_DATA(a, npy_be_i8_2x2);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "be_i4_3.npy", &a));
    CHECK(a.dtype == COLLAPSE_INT32 && shape_is(&a, 1, 3, 0, 0));
    CHECK_DATA(a, npy_be_i4_3);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "v2_f4_3x2.npy", &a));
    CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 2, 3, 2, 0));
    CHECK_DATA(a, npy_v2_f4_3x2);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "v3_f4_3x2.npy", &a));
    CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 2, 3, 2, 0));
    CHECK_DATA(a, npy_v2_f4_3x2);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "scalar_f8.npy", &a));
    CHECK(a.dtype == COLLAPSE_FLOAT64 && a.ndim == 0 && collapse_array_numel(&a) == 1);
    CHECK(a.data && ((double *)a.data)[0] == 2.5);
    collapse_array_free(&a);

    CHECK_OK(collapse_npy_read(FIX "empty_0x3.npy", &a));
    CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 2, 0, 3, 0) && a.data != NULL);
    collapse_array_free(&a);

    /* errors from real numpy files */
    CHECK_FAILS(collapse_npy_read(FIX "i8_out_of_range.npy", &a), "value 3000000000 at index 2 is outside the int32 range");
    CHECK(collapse_last_status() == COLLAPSE_ERR_RANGE && a.data == NULL);
    CHECK_FAILS(collapse_npy_read(FIX "fortran_3x2.npy", &a), "fortran_order is True");
    CHECK(a.data == NULL);
    CHECK_FAILS(collapse_npy_read(FIX "complex_2.npy", &a), "unsupported dtype '<c8'");
    CHECK(collapse_last_status() == COLLAPSE_ERR_DTYPE);
    CHECK_FAILS(collapse_npy_read(FIX "struct_2.npy", &a), "structured dtype");
    CHECK_FAILS(collapse_npy_read(FIX "missing.npy", &a),
                "npy: cannot open 'spec/fixtures/io/missing.npy': No such file or directory");
    CHECK(collapse_last_status() == COLLAPSE_ERR_IO);
    CHECK_FAILS(collapse_npy_read(FIX "img_u8_5x4x3.idx", &a), "bad magic");
    CHECK_FAILS(collapse_npy_read(tmpdir, &a), "Is a directory");
    CHECK_FAILS(collapse_npy_read(NULL, &a), "path expected");
    CHECK_FAILS(collapse_npy_read(FIX "f4_2x3.npy", NULL), "out array expected");
}

/* An .npy file with a hand-written header text (version 1 or 2) followed by `data`. */
static void make_npy(const char *path, int major, const char *header, const void *data, size_t dlen) {
    size_t hl = strlen(header), pre = major == 1 ? 10 : 12;
    unsigned char *buf = malloc(pre + hl + dlen + 1);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    buf[8] = (unsigned char)(hl & 0xff);
    buf[9] = (unsigned char)(hl >> 8);
    if (major != 1) {
        buf[10] = (unsigned char)(hl >> 16);
        buf[11] = (unsigned char)(hl >> 24);
    }
    memcpy(buf + pre, header, hl);
    if (dlen) memcpy(buf + pre + hl, data, dlen);
    write_raw(path, buf, pre + hl + dlen);
    free(buf);
}

static void test_npy_corrupt(void) {
    collapse_array a;
    unsigned char zeros[256] = {0};
    const char *p = tmp_path("c.npy");

    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1200,), }\n", zeros, 100);
    CHECK_FAILS(collapse_npy_read(p, &a), "truncated data, expected 4800 bytes, got 100");
    CHECK(collapse_last_status() == COLLAPSE_ERR_FORMAT && a.data == NULL);
    {
        char want[300];
        snprintf(want, sizeof want, "npy: %s: truncated data, expected 4800 bytes, got 100", p);
        CHECK(strcmp(collapse_last_error(), want) == 0);
    }
    /* absurd sizes: no huge allocation, a clean error */
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "truncated data, expected 400000000000 bytes, got 8");
    make_npy(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 8), }\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "overflows the element count");
    make_npy(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "overflows int64");
    make_npy(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "more than the limit");
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n", zeros, 4);
    CHECK_FAILS(collapse_npy_read(p, &a), "more than 8 dimensions");
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "corrupt header");

    /* malformed dicts */
    make_npy(p, 1, "{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "corrupt header, expected ',' or '}'");
    make_npy(p, 1, "{'descr': '<f4', 'shape': (2,), }\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "key 'fortran_order' missing");
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "unexpected key 'x'");
    make_npy(p, 1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "'descr' given twice");
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "True or False");
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "only padding after the header dict");
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", zeros, 0);
    CHECK_FAILS(collapse_npy_read(p, &a), "corrupt header");
    make_npy(p, 1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2,)}\n", zeros, 8);
    CHECK_FAILS(collapse_npy_read(p, &a), "unsupported dtype '|f4'");
    make_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", zeros, 12);
    CHECK_FAILS(collapse_npy_read(p, &a), "unexpected data after the array");
    make_npy(p, 1, "", zeros, 0);
    CHECK_FAILS(collapse_npy_read(p, &a), "corrupt header");

    /* tolerated variants: Python 2 longs, double quotes, native order, any key order, no trailing comma */
    make_npy(p, 1, "{\"shape\": (2L, 1L), \"fortran_order\": False, \"descr\": \"=f4\"}          \n", "\0\0\x80?\0\0\0@", 8);
    CHECK_OK(collapse_npy_read(p, &a));
    CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 2, 2, 1, 0));
    if (a.data) CHECK(((float *)a.data)[0] == 1.0f && ((float *)a.data)[1] == 2.0f);
    collapse_array_free(&a);

    /* version / magic problems */
    make_npy(p, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", zeros, 8);
    CHECK_OK(collapse_npy_read(p, &a));
    collapse_array_free(&a);
    {
        unsigned char v4[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 4, 0, 0, 0};
        write_raw(p, v4, sizeof v4);
        CHECK_FAILS(collapse_npy_read(p, &a), "unsupported format version 4.0");
        unsigned char big[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff};
        write_raw(p, big, sizeof big);
        CHECK_FAILS(collapse_npy_read(p, &a), "header length 4294967295 is larger than the limit");
        write_raw(p, "\x93NUM", 4);
        CHECK_FAILS(collapse_npy_read(p, &a), "truncated header, expected at least 10 bytes, got 4");
        write_raw(p, "", 0);
        CHECK_FAILS(collapse_npy_read(p, &a), "truncated header");
        unsigned char hl[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 200, 0, '{'};
        write_raw(p, hl, sizeof hl);
        CHECK_FAILS(collapse_npy_read(p, &a), "truncated header, expected 200 bytes, got 1");
    }
}

static void test_npy_write(void) {
    collapse_array a;
    struct { const char *fixture; collapse_dtype dt; int ndim; int64_t shape[3]; const void *data; } cases[] = {
        {"f4_2x3.npy", COLLAPSE_FLOAT32, 2, {2, 3}, npy_f4_2x3},
        {"f8_2x2x3.npy", COLLAPSE_FLOAT64, 3, {2, 2, 3}, npy_f8_2x2x3},
        {"i4_5.npy", COLLAPSE_INT32, 1, {5}, npy_i4_5},
        {"scalar_f8.npy", COLLAPSE_FLOAT64, 0, {0}, (const double[]){2.5}},
        {"empty_0x3.npy", COLLAPSE_FLOAT32, 2, {0, 3}, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *out = tmp_path("w.npy");
        char fx[256];
        snprintf(fx, sizeof fx, FIX "%s", cases[i].fixture);
        CHECK_OK(collapse_npy_write(out, cases[i].dt, cases[i].ndim, cases[i].shape, cases[i].data));
        /* byte for byte what numpy's np.save writes */
        size_t la, lb;
        unsigned char *x = slurp(out, &la), *y = slurp(fx, &lb);
        CHECK(x && y && la == lb && memcmp(x, y, la) == 0);
        if (!(x && y && la == lb && memcmp(x, y, la) == 0)) fprintf(stderr, "  differs from %s\n", fx);
        CHECK(la >= 10 && (10 + (size_t)(x[8] | (x[9] << 8))) % 64 == 0); /* data starts 64-aligned */
        free(x);
        free(y);
        CHECK_OK(collapse_npy_read(out, &a));
        CHECK(a.dtype == cases[i].dt && a.ndim == cases[i].ndim);
        size_t bytes = (size_t)collapse_array_numel(&a) * collapse_dtype_size(a.dtype);
        CHECK(bytes == 0 || memcmp(a.data, cases[i].data, bytes) == 0);
        collapse_array_free(&a);
    }
    /* 8-d round trip */
    int64_t shape8[8] = {1, 2, 1, 2, 1, 1, 3, 1};
    int32_t v[12];
    for (int i = 0; i < 12; i++) v[i] = i * 1000003 - 7;
    CHECK_OK(collapse_npy_write(tmp_path("r8.npy"), COLLAPSE_INT32, 8, shape8, v));
    CHECK_OK(collapse_npy_read(tmp_path("r8.npy"), &a));
    CHECK(a.ndim == 8 && memcmp(a.shape, shape8, sizeof shape8) == 0 && a.data && memcmp(a.data, v, sizeof v) == 0);
    collapse_array_free(&a);
    /* a larger array: header grows, still aligned */
    int64_t big[2] = {1234567, 3};
    float *fbig = malloc(sizeof(float) * 1234567 * 3);
    for (int64_t i = 0; i < 1234567 * 3; i++) fbig[i] = (float)i * 0.5f;
    CHECK_OK(collapse_npy_write(tmp_path("big.npy"), COLLAPSE_FLOAT32, 2, big, fbig));
    CHECK_OK(collapse_npy_read(tmp_path("big.npy"), &a));
    CHECK(shape_is(&a, 2, 1234567, 3, 0) && a.data && memcmp(a.data, fbig, sizeof(float) * 1234567 * 3) == 0);
    collapse_array_free(&a);
    free(fbig);

    CHECK_FAILS(collapse_npy_write(tmp_path("x.npy"), (collapse_dtype)7, 1, big, v), "unknown dtype 7");
    CHECK_FAILS(collapse_npy_write(tmp_path("x.npy"), COLLAPSE_INT32, 9, shape8, v), "ndim 9, expected 0..8");
    int64_t neg[1] = {-1};
    CHECK_FAILS(collapse_npy_write(tmp_path("x.npy"), COLLAPSE_INT32, 1, neg, v), "shape[0] = -1");
    CHECK_FAILS(collapse_npy_write(tmp_path("x.npy"), COLLAPSE_INT32, 1, big, NULL), "data is NULL");
    CHECK_FAILS(collapse_npy_write(tmp_path("nodir/x.npy"), COLLAPSE_INT32, 1, (int64_t[]){2}, v),
                "cannot create temporary file");
    CHECK(count_entries(tmpdir, ".tmp.") == 0);
    CHECK(access(tmp_path("x.npy"), F_OK) != 0);
}

/* ---- IDX ------------------------------------------------------------------------- */

static void test_idx(void) {
    collapse_array a;
    const char *img[2] = {FIX "img_u8_5x4x3.idx", FIX "img_u8_5x4x3.idx.gz"};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(collapse_idx_read(img[k], 1, 0, 0, &a));
        CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 3, 5, 4, 3));
        CHECK_DATA(a, idx_img_scaled);
        collapse_array_free(&a);
        CHECK_OK(collapse_idx_read(img[k], 0, 0, 0, &a));
        CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 3, 5, 4, 3));
        CHECK_DATA(a, idx_img_raw);
        collapse_array_free(&a);
        /* limit: the first two images; larger limits clamp */
        CHECK_OK(collapse_idx_read(img[k], 1, 0, 2, &a));
        CHECK(shape_is(&a, 3, 2, 4, 3) && a.data && memcmp(a.data, idx_img_scaled, 2 * 12 * sizeof(float)) == 0);
        collapse_array_free(&a);
        CHECK_OK(collapse_idx_read(img[k], 1, 0, 1000, &a));
        CHECK(shape_is(&a, 3, 5, 4, 3));
        CHECK_DATA(a, idx_img_scaled);
        collapse_array_free(&a);
    }
    CHECK_FAILS(collapse_idx_read(img[0], 1, 0, -1, &a), "limit -1 is negative");

    const char *lab[2] = {FIX "lab_u8_7.idx.gz", FIX "lab_u8_7.idx"};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(collapse_idx_read(lab[k], 1, 0, 0, &a));
        CHECK(a.dtype == COLLAPSE_INT32 && shape_is(&a, 1, 7, 0, 0));
        CHECK_DATA(a, idx_lab);
        collapse_array_free(&a);
        CHECK_OK(collapse_idx_read(lab[k], 1, 1, 3, &a));
        CHECK(a.dtype == COLLAPSE_INT32 && shape_is(&a, 1, 3, 0, 0));
        if (a.data) {
            const int32_t *l = a.data;
            CHECK(l[0] == idx_lab[0] + 1 && l[1] == idx_lab[1] + 1 && l[2] == idx_lab[2] + 1);
        }
        collapse_array_free(&a);
    }

    CHECK_OK(collapse_idx_read(FIX "i4_2x3.idx", 1, 5, 0, &a)); /* n-d int: no offset */
    CHECK(a.dtype == COLLAPSE_INT32 && shape_is(&a, 2, 2, 3, 0));
    CHECK_DATA(a, idx_i4_2x3);
    collapse_array_free(&a);
    CHECK_OK(collapse_idx_read(FIX "i2_4.idx.gz", 1, 0, 0, &a));
    CHECK(a.dtype == COLLAPSE_INT32 && shape_is(&a, 1, 4, 0, 0));
    CHECK_DATA(a, idx_i2_4);
    collapse_array_free(&a);
    CHECK_FAILS(collapse_idx_read(FIX "i2_4.idx.gz", 1, INT32_MAX, 0, &a), "value 32767 at index 2 plus label offset");
    CHECK(collapse_last_status() == COLLAPSE_ERR_RANGE && a.data == NULL);
    CHECK_OK(collapse_idx_read(FIX "i1_2x2.idx", 1, 0, 0, &a)); /* signed bytes are not scaled */
    CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 2, 2, 2, 0));
    CHECK_DATA(a, idx_i1_2x2);
    collapse_array_free(&a);
    CHECK_OK(collapse_idx_read(FIX "f4_2x2.idx", 1, 0, 0, &a));
    CHECK(a.dtype == COLLAPSE_FLOAT32 && shape_is(&a, 2, 2, 2, 0));
    CHECK_DATA(a, idx_f4_2x2);
    collapse_array_free(&a);
    CHECK_OK(collapse_idx_read(FIX "f8_3.idx.gz", 1, 0, 0, &a));
    CHECK(a.dtype == COLLAPSE_FLOAT64 && shape_is(&a, 1, 3, 0, 0));
    CHECK_DATA(a, idx_f8_3);
    collapse_array_free(&a);

    CHECK_FAILS(collapse_idx_read("/x/y.gz", 1, 0, 0, &a), "idx: cannot open '/x/y.gz': No such file or directory");
    CHECK(collapse_last_status() == COLLAPSE_ERR_IO);
    CHECK_FAILS(collapse_idx_read(FIX "f4_2x3.npy", 1, 0, 0, &a), "bad magic");

    /* crafted headers */
    const char *p = tmp_path("c.idx");
    unsigned char b[64] = {0};
    memcpy(b, "\0\0\x08\x04\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 20);
    write_raw(p, b, 24);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "overflow the element count");
    memcpy(b, "\0\0\x08\x01\xff\xff\xff\xf0", 8);
    write_raw(p, b, 18);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "truncated data, expected 4294967280 bytes, got 10");
    CHECK(a.data == NULL);
    memcpy(b, "\0\0\x08\x03\0\0\0\x02\0\0\0\x02\0\0\0\x02", 16);
    write_raw(p, b, 16 + 7);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "truncated data, expected 8 bytes, got 7");
    write_raw(p, b, 16 + 9);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "unexpected data after the 8 bytes");
    CHECK_OK(collapse_idx_read(p, 1, 0, 1, &a)); /* a limit reads only the start */
    CHECK(shape_is(&a, 3, 1, 2, 2));
    collapse_array_free(&a);
    write_raw(p, b, 14);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "truncated header, expected 12 bytes of sizes, got 10");
    memcpy(b, "\0\0\x08\x00", 4);
    write_raw(p, b, 4);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "0 dimensions in the header, expected 1..8");
    memcpy(b, "\0\0\x08\x09", 4);
    write_raw(p, b, 4);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "9 dimensions");
    memcpy(b, "\0\0\x07\x01\0\0\0\x01\x05", 9);
    write_raw(p, b, 9);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "bad magic 0x00000701");
    write_raw(p, b, 2);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "truncated header, expected 4 magic bytes, got 2");
    /* an empty first dimension is a valid, empty array */
    memcpy(b, "\0\0\x08\x02\0\0\0\0\0\0\0\x03", 12);
    write_raw(p, b, 12);
    CHECK_OK(collapse_idx_read(p, 1, 0, 0, &a));
    CHECK(shape_is(&a, 2, 0, 3, 0) && a.data != NULL);
    collapse_array_free(&a);
    /* a gzip stream cut short */
    size_t len;
    unsigned char *gz = slurp(FIX "img_u8_5x4x3.idx.gz", &len);
    write_raw(p, gz, len - 12);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "gzip stream ends early");
    write_raw(p, gz, len - 4); /* all data, trailer cut */
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "truncated gzip stream");
    unsigned char *bad = malloc(len);
    memcpy(bad, gz, len);
    bad[len - 6] ^= 0x55; /* CRC mismatch */
    write_raw(p, bad, len);
    CHECK_FAILS(collapse_idx_read(p, 1, 0, 0, &a), "corrupt gzip data");
    CHECK(collapse_last_status() == COLLAPSE_ERR_FORMAT);
    free(bad);
    free(gz);
}

/* Every proper prefix of a valid file must fail cleanly (IDX, NPY), never crash. */
static void test_truncations(void) {
    const char *files[] = {FIX "f4_2x3.npy", FIX "be_i8_2x2.npy", FIX "v2_f4_3x2.npy", FIX "f4_2x3.npy.gz",
                           FIX "img_u8_5x4x3.idx", FIX "img_u8_5x4x3.idx.gz", FIX "lab_u8_7.idx.gz", FIX "f8_3.idx.gz"};
    const char *p = tmp_path("t.bin");
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        unsigned char *buf = slurp(files[f], &len);
        CHECK(buf != NULL);
        int is_npy = strstr(files[f], ".npy") != NULL, all_failed = 1;
        for (size_t cut = 0; buf && cut < len; cut++) {
            write_raw(p, buf, cut);
            collapse_array a;
            collapse_status s = is_npy ? collapse_npy_read(p, &a) : collapse_idx_read(p, 1, 0, 0, &a);
            if (s == COLLAPSE_OK) {
                all_failed = 0;
                fprintf(stderr, "  %s cut at %zu bytes was accepted\n", files[f], cut);
                collapse_array_free(&a);
            } else if (a.data != NULL) {
                all_failed = 0;
            }
        }
        CHECK(all_failed);
        free(buf);
    }
}

/* Random byte corruption: any outcome but a crash / sanitizer report / inconsistent result. */
static void test_fuzz(void) {
    const char *files[] = {FIX "f4_2x3.npy", FIX "i8_2x2.npy", FIX "v2_f4_3x2.npy", FIX "img_u8_5x4x3.idx",
                           FIX "img_u8_5x4x3.idx.gz", FIX "lab_u8_7.idx", FIX "labelled.csv", FIX "f4_2x3.npy.gz"};
    const char *p = tmp_path("fuzz.bin");
    uint64_t x = 88172645463325252ULL;
    int ok = 0, failed = 0, consistent = 1;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        unsigned char *orig = slurp(files[f], &len);
        unsigned char *buf = malloc(len + 1);
        for (int iter = 0; orig && iter < 400; iter++) {
            memcpy(buf, orig, len);
            int flips = 1 + iter % 3;
            for (int k = 0; k < flips; k++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                size_t pos = (size_t)(x % len);
                buf[pos] = (unsigned char)(x >> 40);
            }
            write_raw(p, buf, len);
            collapse_array a, l;
            collapse_status s;
            if (strstr(files[f], ".csv")) {
                s = collapse_csv_read(p, 3, 0, &a, &l);
                if (s == COLLAPSE_OK) {
                    consistent &= a.ndim == 2 && l.ndim == 1 && l.shape[0] == a.shape[0];
                    collapse_array_free(&l);
                }
            } else {
                s = strstr(files[f], ".npy") ? collapse_npy_read(p, &a) : collapse_idx_read(p, 1, 0, 0, &a);
            }
            if (s == COLLAPSE_OK) {
                ok++;
                consistent &= a.data != NULL && collapse_array_numel(&a) >= 0;
                collapse_array_free(&a);
            } else {
                failed++;
                consistent &= a.data == NULL && collapse_last_error()[0] != '\0';
            }
        }
        free(buf);
        free(orig);
    }
    CHECK(consistent);
    CHECK(failed > 0);
    printf("fuzz: %d corrupted files accepted, %d rejected\n", ok, failed);
}

/* ---- CSV --------------------------------------------------------------------------- */

static void test_csv(void) {
    collapse_array f, l;
    CHECK_OK(collapse_csv_read(FIX "labelled.csv", 3, 0, &f, &l));
    CHECK(f.dtype == COLLAPSE_FLOAT64 && shape_is(&f, 2, 4, 3, 0));
    CHECK_DATA(f, csv_labelled_features);
    CHECK(l.dtype == COLLAPSE_INT32 && shape_is(&l, 1, 4, 0, 0));
    CHECK_DATA(l, csv_labelled_labels);
    collapse_array_free(&f);
    collapse_array_free(&l);

    CHECK_OK(collapse_csv_read(FIX "labelled.csv", 3, -1, &f, &l));
    if (l.data)
        for (int i = 0; i < 4; i++) CHECK(((int32_t *)l.data)[i] == csv_labelled_labels[i] - 1);
    collapse_array_free(&f);
    collapse_array_free(&l);

    CHECK_OK(collapse_csv_read(FIX "labelled.csv", 0, 0, &f, NULL)); /* all four columns as features */
    CHECK(shape_is(&f, 2, 4, 4, 0));
    if (f.data) {
        const double *d = f.data;
        CHECK(d[0] == csv_labelled_features[0] && d[2] == csv_labelled_labels[0] && d[3] == csv_labelled_features[2]);
        CHECK(d[15] == csv_labelled_features[11] && d[14] == csv_labelled_labels[3]);
    }
    collapse_array_free(&f);

    CHECK_OK(collapse_csv_read(FIX "semicolon.csv", 0, 0, &f, &l));
    CHECK(shape_is(&f, 2, 3, 2, 0) && l.data == NULL);
    CHECK_DATA(f, csv_semicolon);
    collapse_array_free(&f);

    CHECK_OK(collapse_csv_read(FIX "tab.tsv", 0, 0, &f, NULL));
    CHECK(shape_is(&f, 2, 2, 3, 0));
    CHECK_DATA(f, csv_tab);
    collapse_array_free(&f);

    /* label in the first column, quoted cells, trailing line without newline */
    const char *p = tmp_path("t.csv");
    write_text(p, "\"y\",\"a\"\n\"2\", \"0.5\"\n1,-1e3");
    CHECK_OK(collapse_csv_read(p, 1, 0, &f, &l));
    CHECK(shape_is(&f, 2, 2, 1, 0) && shape_is(&l, 1, 2, 0, 0));
    if (f.data && l.data) {
        CHECK(((double *)f.data)[0] == 0.5 && ((double *)f.data)[1] == -1000.0);
        CHECK(((int32_t *)l.data)[0] == 2 && ((int32_t *)l.data)[1] == 1);
    }
    collapse_array_free(&f);
    collapse_array_free(&l);
    /* a single column that is the label: features n x 0 */
    write_text(p, "3\n4\n");
    CHECK_OK(collapse_csv_read(p, 1, 0, &f, &l));
    CHECK(shape_is(&f, 2, 2, 0, 0) && shape_is(&l, 1, 2, 0, 0));
    collapse_array_free(&f);
    collapse_array_free(&l);

    /* gzip-compressed CSV */
    const char *pg = tmp_path("t.csv.gz");
    gzFile g = gzopen(pg, "wb");
    gzputs(g, "a,b\n1,2\n3,4\n");
    gzclose(g);
    CHECK_OK(collapse_csv_read(pg, 0, 0, &f, NULL));
    CHECK(shape_is(&f, 2, 2, 2, 0) && f.data && ((double *)f.data)[3] == 4.0);
    collapse_array_free(&f);

    /* errors name file, line and column */
    char want[300];
    write_text(p, "a,b,c\n1,2,3\n4,5\n");
    snprintf(want, sizeof want, "csv: %s line 3: 2 cells, expected 3 as in line 1", p);
    CHECK_FAILS(collapse_csv_read(p, 0, 0, &f, NULL), want);
    CHECK(f.data == NULL);
    write_text(p, "# c\n1,2,3\n4,abc,6\n");
    snprintf(want, sizeof want, "csv: %s line 3 column 2: 'abc' is not a number", p);
    CHECK_FAILS(collapse_csv_read(p, 0, 0, &f, NULL), want);
    write_text(p, "1,2,3\n4,,6\n");
    CHECK_FAILS(collapse_csv_read(p, 0, 0, &f, NULL), "line 2 column 2: empty cell");
    write_text(p, "1,2,3\n4,5,6,\n");
    CHECK_FAILS(collapse_csv_read(p, 0, 0, &f, NULL), "line 2: 4 cells, expected 3");
    write_text(p, "1,2.5,3\n");
    CHECK_FAILS(collapse_csv_read(p, 2, 0, &f, &l), "line 1 column 2: label '2.5' is not an integer");
    CHECK(f.data == NULL && l.data == NULL);
    write_text(p, "1,3000000000,3\n");
    CHECK_FAILS(collapse_csv_read(p, 2, 0, &f, &l), "not an integer in the int32 range");
    write_text(p, "1,2,3\n");
    CHECK_FAILS(collapse_csv_read(p, 4, 0, &f, &l), "label_column 4 but");
    CHECK_FAILS(collapse_csv_read(p, 1, 0, &f, NULL), "labels array is NULL");
    CHECK_FAILS(collapse_csv_read(p, -1, 0, &f, &l), "label_column -1");
    write_text(p, "x,y\n");
    CHECK_FAILS(collapse_csv_read(p, 0, 0, &f, NULL), "no data rows (only a header line)");
    write_text(p, "# nothing\n\n");
    CHECK_FAILS(collapse_csv_read(p, 0, 0, &f, NULL), "no data rows");
    write_text(p, "1;2\n3,4\n");
    CHECK_FAILS(collapse_csv_read(p, 0, 0, &f, NULL), "line 2: 1 cell, expected 2 as in line 1 (separator ';')");
    write_text(p, "a;b\n3;x4\n");
    CHECK_FAILS(collapse_csv_read(p, 0, 0, &f, NULL), "line 2 column 2: 'x4' is not a number");
    write_raw(p, "1,2\n3,\0\n", 8);
    CHECK_FAILS(collapse_csv_read(p, 0, 0, &f, NULL), "line 2 column 2: '?' is not a number");
    CHECK_FAILS(collapse_csv_read(FIX "nope.csv", 0, 0, &f, NULL), "csv: cannot open 'spec/fixtures/io/nope.csv'");
}

/* ---- atomic writes ------------------------------------------------------------------------ */

static void test_atomic(void) {
    const char *p = tmp_path("a.txt");
    size_t len;
    unsigned char *got;
    CHECK_OK(collapse_write_file_atomic(p, "hello world", 11));
    got = slurp(p, &len);
    CHECK(got && len == 11 && memcmp(got, "hello world", 11) == 0);
    free(got);
    chmod(p, 0640);
    CHECK_OK(collapse_write_file_atomic(p, "bye", 3)); /* replaces, keeps the mode */
    got = slurp(p, &len);
    CHECK(got && len == 3 && memcmp(got, "bye", 3) == 0);
    free(got);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0640);
    CHECK_OK(collapse_write_file_atomic(p, NULL, 0));
    CHECK(stat(p, &st) == 0 && st.st_size == 0);
    CHECK(count_entries(tmpdir, ".tmp.") == 0);

    /* failures leave nothing behind and keep the target */
    CHECK_FAILS(collapse_write_file_atomic(tmp_path("no/such/dir/f"), "x", 1),
                "write_file_atomic: cannot create temporary file");
    CHECK(collapse_last_status() == COLLAPSE_ERR_IO);
    const char *d = tmp_path("adir");
    mkdir(d, 0755);
    write_text(tmp_path("adir/keep"), "k");
    CHECK_FAILS(collapse_write_file_atomic(d, "x", 1), "cannot rename temporary file");
    CHECK(count_entries(tmpdir, ".tmp.") == 0);
    CHECK(count_entries(d, "") == 1);
    CHECK_FAILS(collapse_write_file_atomic(tmp_path("z"), NULL, 5), "bytes is NULL");
    CHECK_FAILS(collapse_write_file_atomic(NULL, "x", 1), "path expected");
    CHECK_FAILS(collapse_write_file_atomic("", "x", 1), "path expected");
    CHECK(count_entries(tmpdir, ".tmp.") == 0);

    /* many rewrites: never a leftover temporary */
    for (int i = 0; i < 50; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "version %d", i);
        CHECK_OK(collapse_write_file_atomic(p, msg, (size_t)n));
    }
    got = slurp(p, &len);
    CHECK(got && len == 10 && memcmp(got, "version 49", 10) == 0);
    free(got);
    CHECK(count_entries(tmpdir, ".tmp.") == 0);
}

/* ---- Fashion-MNIST from Debian, if installed ---------------------------------------------- */

static void test_fashion_mnist(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist/";
    char ip[256], lp[256];
    snprintf(ip, sizeof ip, "%st10k-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%st10k-labels-idx1-ubyte.gz", dir);
    if (access(ip, R_OK) != 0 || access(lp, R_OK) != 0) {
        printf("note: %s not found, skipping the Fashion-MNIST check\n", ip);
        return;
    }
    collapse_array im, lab, head;
    CHECK_OK(collapse_idx_read(ip, 1, 0, 0, &im));
    CHECK(im.dtype == COLLAPSE_FLOAT32 && shape_is(&im, 3, 10000, 28, 28));
    CHECK_OK(collapse_idx_read(lp, 1, 1, 0, &lab));
    CHECK(lab.dtype == COLLAPSE_INT32 && shape_is(&lab, 1, 10000, 0, 0));
    if (im.data && lab.data) {
        const float *x = im.data;
        double lo = 1, hi = 0, sum = 0;
        int64_t n = collapse_array_numel(&im);
        for (int64_t i = 0; i < n; i++) {
            if (x[i] < lo) lo = x[i];
            if (x[i] > hi) hi = x[i];
            sum += x[i];
        }
        CHECK(lo == 0.0 && hi == 1.0);
        double mean = sum / (double)n;
        CHECK(mean > 0.2 && mean < 0.4);
        int hist[12] = {0};
        const int32_t *y = lab.data;
        for (int i = 0; i < 10000; i++) hist[(y[i] >= 1 && y[i] <= 10) ? y[i] : 11]++;
        int balanced = hist[11] == 0;
        for (int c = 1; c <= 10; c++) balanced &= hist[c] == 1000;
        CHECK(balanced);
        printf("fashion-mnist t10k: [10000 x 28 x 28], pixel mean %.4f, 1000 per class 1..10\n", mean);
        CHECK_OK(collapse_idx_read(ip, 1, 0, 100, &head));
        CHECK(shape_is(&head, 3, 100, 28, 28) && head.data &&
              memcmp(head.data, im.data, 100 * 784 * sizeof(float)) == 0);
        collapse_array_free(&head);
    }
    collapse_array_free(&im);
    collapse_array_free(&lab);

    snprintf(lp, sizeof lp, "%strain-labels-idx1-ubyte.gz", dir);
    if (access(lp, R_OK) == 0) {
        CHECK_OK(collapse_idx_read(lp, 1, 1, 0, &lab));
        CHECK(shape_is(&lab, 1, 60000, 0, 0));
        int hist[11] = {0}, bad = 0;
        for (int i = 0; lab.data && i < 60000; i++) {
            int32_t c = ((int32_t *)lab.data)[i];
            if (c < 1 || c > 10) bad++;
            else hist[c]++;
        }
        int balanced = !bad;
        for (int c = 1; c <= 10; c++) balanced &= hist[c] == 6000;
        CHECK(balanced);
        collapse_array_free(&lab);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/collapse_io_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_npy_read();
    test_npy_corrupt();
    test_npy_write();
    test_idx();
    test_truncations();
    test_fuzz();
    test_csv();
    test_atomic();
    test_fashion_mnist();
    rm_tree(tmpdir);
    return check_report("test_io");
}
