/* The .npz / zip reader, the CIFAR and ImageNet32 readers and the image helpers (csrc/io: zip.c,
 * npz.c, cifar.c, imagenet32.c, images.c). Run from the repository root. Fixtures and their values
 * come from spec/fixtures/make_image_fixtures.py (numpy). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "collapse.h"
#include "../spec/fixtures/images/expected_npz.h"

#define FIX "spec/fixtures/images/"

static const collapse_array *member(const collapse_npz *z, const char *name) {
    for (int i = 0; i < z->count; i++)
        if (!strcmp(z->names[i], name)) return &z->arrays[i];
    return NULL;
}

static double value(const collapse_array *a, int64_t i) {
    switch (a->dtype) {
    case COLLAPSE_FLOAT32: return ((const float *)a->data)[i];
    case COLLAPSE_FLOAT64: return ((const double *)a->data)[i];
    default: return ((const int32_t *)a->data)[i];
    }
}

static void check_member(const collapse_npz *z, const char *name, collapse_dtype dt, const double *ref,
                         const int64_t *shape, int ndim) {
    const collapse_array *a = member(z, name);
    CHECK(a != NULL);
    if (!a) return;
    CHECK(a->dtype == dt);
    CHECK(a->ndim == ndim);
    for (int d = 0; d < ndim; d++) CHECK(a->shape[d] == shape[d]);
    for (int64_t i = 0; i < collapse_array_numel(a); i++) CHECK(value(a, i) == ref[i]);
}

static void test_members(const char *path) {
    collapse_npz z;
    CHECK_OK(collapse_npz_read(path, &z));
    CHECK(z.count == 5);
    check_member(&z, "a_f4", COLLAPSE_FLOAT32, npz_a_f4, npz_a_f4_shape, npz_a_f4_ndim);
    check_member(&z, "b_f8", COLLAPSE_FLOAT64, npz_b_f8, npz_b_f8_shape, npz_b_f8_ndim);
    check_member(&z, "c_i8", COLLAPSE_INT32, npz_c_i8, npz_c_i8_shape, npz_c_i8_ndim);
    check_member(&z, "d_u1", COLLAPSE_INT32, npz_d_u1, npz_d_u1_shape, npz_d_u1_ndim);
    check_member(&z, "e_i4", COLLAPSE_INT32, npz_e_i4, npz_e_i4_shape, npz_e_i4_ndim);
    collapse_npz_free(&z);
    collapse_npz_free(&z); /* a second free is fine */
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*len);
    if (fread(buf, 1, *len, f) != *len) { perror(path); exit(2); }
    fclose(f);
    return buf;
}

static unsigned char *find(unsigned char *buf, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(buf + i, needle, n)) return buf + i;
    return NULL;
}

static void spit(const char *path, const unsigned char *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) { perror(path); exit(2); }
    fclose(f);
}

/* Damages a copy of stored.npz (no compression: bytes map to members) in the ways a disk or a
 * download can, and expects a clear error each time. */
static void test_damaged(void) {
    char path[] = "/tmp/collapse_test_npz_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    size_t len;
    unsigned char *good = slurp(FIX "npz/stored.npz", &len), *bad = malloc(len);
    collapse_npz z;
    /* a flipped data byte of the first member: CRC-32 mismatch */
    memcpy(bad, good, len);
    unsigned char *npy = find(bad, len, "\x93NUMPY");
    CHECK(npy != NULL);
    if (npy) npy[128 + 4] ^= 0x01; /* the v1.0 header of a_f4 is 128 bytes */
    spit(path, bad, len);
    CHECK_FAILS(collapse_npz_read(path, &z), "CRC-32 mismatch (corrupt archive)");
    /* every truncation length fails cleanly (never a crash, never success) */
    for (size_t cut = 0; cut < len; cut += 37) {
        spit(path, good, cut);
        CHECK(collapse_npz_read(path, &z) != COLLAPSE_OK);
        CHECK(z.count == 0 && z.arrays == NULL);
    }
    /* a header shape that does not match the member size */
    memcpy(bad, good, len);
    unsigned char *shape = find(bad, len, "(2, 3)");
    CHECK(shape != NULL);
    if (shape) shape[4] = '9';
    spit(path, bad, len);
    CHECK_FAILS(collapse_npz_read(path, &z), "shape [2 x 9] '<f4' needs 72 bytes of data, the member holds 24");
    free(good);
    free(bad);
    unlink(path);
    CHECK_FAILS(collapse_npz_read(FIX "bad/zip64.npz", &z), "zip64 archive");
    CHECK_FAILS(collapse_npz_read(FIX "bad/corrupt_deflate.npz", &z), "corrupt deflate data");
    CHECK_FAILS(collapse_npz_read(FIX "nope.npz", &z), "npz: cannot open 'spec/fixtures/images/nope.npz'");
    CHECK_FAILS(collapse_npz_read(NULL, &z), "npz: path expected");
    CHECK_FAILS(collapse_npz_read(FIX "npz/stored.npz", NULL), "npz: out expected");
}

/* Every truncation and seeded random byte corruptions of both archives: an error or a success,
 * never a crash, and on error nothing is left allocated (checked under ASan / valgrind). */
static void test_mutations(const char *src) {
    char path[] = "/tmp/collapse_test_npz_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    size_t len;
    unsigned char *good = slurp(src, &len), *bad = malloc(len);
    collapse_npz z;
    for (size_t cut = 0; cut < len; cut += 13) {
        spit(path, good, cut);
        CHECK(collapse_npz_read(path, &z) != COLLAPSE_OK);
        CHECK(z.count == 0 && z.names == NULL);
    }
    uint64_t state = 20261201;
    int failures = 0;
    for (int round = 0; round < 300; round++) {
        memcpy(bad, good, len);
        for (int k = 0; k < 1 + round % 4; k++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            bad[(state >> 33) % len] ^= (unsigned char)(1u << ((state >> 20) % 8));
        }
        spit(path, bad, len);
        if (collapse_npz_read(path, &z) == COLLAPSE_OK) collapse_npz_free(&z);
        else failures++;
    }
    CHECK(failures > 150); /* most flips hit a checked byte (CRC, header, directory) */
    free(good);
    free(bad);
    unlink(path);
}

static void test_cifar(void) {
    const char *paths[] = {FIX "cifar10/data_batch_1.bin", FIX "cifar10/data_batch_2.bin"};
    collapse_array x, y;
    CHECK_OK(collapse_cifar_read(paths, 2, 10, 0, 0, &x, &y));
    CHECK(x.ndim == 4 && x.shape[0] == 5 && x.shape[1] == 3 && x.shape[2] == 32 && y.shape[0] == 5);
    /* the first pixel of record 1 is byte 1 of the file */
    size_t len;
    unsigned char *raw = slurp(paths[0], &len);
    CHECK(len == 3 * 3073);
    CHECK(((float *)x.data)[0] == (float)raw[1] / 255.0f);
    CHECK(((float *)x.data)[3072 + 5] == (float)raw[3073 + 1 + 5] / 255.0f);
    CHECK(((int32_t *)y.data)[1] == raw[3073] + 1);
    free(raw);
    collapse_array_free(&x);
    collapse_array_free(&y);
    CHECK_OK(collapse_cifar_read(paths, 2, 10, 0, 4, &x, &y));
    CHECK(x.shape[0] == 4);
    collapse_array_free(&x);
    collapse_array_free(&y);
    const char *partial[] = {FIX "bad/cifar10_partial/test_batch.bin"};
    CHECK_FAILS(collapse_cifar_read(partial, 1, 10, 0, 0, &x, &y), "3173 bytes is not a whole number of 3073-byte");
    CHECK_FAILS(collapse_cifar_read(paths, 2, 7, 0, 0, &x, &y), "variant 7, expected 10 or 100");
    CHECK_FAILS(collapse_cifar_read(paths, 2, 10, 0, -1, &x, &y), "limit -1 is negative");
    const char *missing[] = {FIX "cifar10/nope.bin"};
    CHECK_FAILS(collapse_cifar_read(missing, 1, 10, 0, 0, &x, &y), "cannot open 'spec/fixtures/images/cifar10/nope.bin'");
}

static void test_imagenet32(void) {
    const char *paths[] = {FIX "imagenet32/val_data.npz"};
    collapse_array x, y;
    CHECK_OK(collapse_imagenet32_read(paths, 1, 0, &x, &y));
    CHECK(x.shape[0] == 3 && x.shape[1] == 3 && y.shape[0] == 3);
    CHECK(((int32_t *)y.data)[0] == 1000 && ((int32_t *)y.data)[1] == 1);
    for (int64_t i = 0; i < 3 * 3072; i++) CHECK(((float *)x.data)[i] >= 0.0f && ((float *)x.data)[i] <= 1.0f);
    collapse_array_free(&x);
    collapse_array_free(&y);
    const char *bad[] = {FIX "bad/imagenet32_64px/val_data.npz"};
    CHECK_FAILS(collapse_imagenet32_read(bad, 1, 0, &x, &y), "expected uint8 [N x 3072]");
}

static void test_images(void) {
    float x[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, out[2 * 4 * 5];
    CHECK_OK(collapse_images_pad(x, 2, 1, 2, 3, 1, out));
    CHECK(out[0] == 0 && out[6] == 1 && out[8] == 3 && out[11] == 4 && out[13] == 6 && out[19] == 0);
    CHECK(out[20 + 6] == 7 && out[20 + 13] == 12);
    double mean[2] = {1, 2}, std[2] = {2, 4};
    CHECK_OK(collapse_images_normalize(x, 2, 2, 3, mean, std));
    CHECK_CLOSE(x[0], 0.0, 1e-7);
    CHECK_CLOSE(x[3], 0.5, 1e-7);   /* (4 - 2) / 4 */
    CHECK_CLOSE(x[6], 3.0, 1e-7);   /* (7 - 1) / 2 */
    std[1] = 0;
    CHECK_FAILS(collapse_images_normalize(x, 2, 2, 3, mean, std), "channel 2 has mean 2 and std 0");
    CHECK_FAILS(collapse_images_pad(x, 1, 1, 1, 1, -1, out), "images_pad: expected");
}

int main(void) {
    test_members(FIX "npz/stored.npz");
    test_members(FIX "npz/deflated.npz");
    test_damaged();
    test_mutations(FIX "npz/stored.npz");
    test_mutations(FIX "npz/deflated.npz");
    test_cifar();
    test_imagenet32();
    test_images();
    return check_report("test_npz");
}
