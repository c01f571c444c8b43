/* Replays one cblas_sgemm call form alone (bench/sgemm/probe), on one OpenBLAS thread:
 *   alone ta tb M N K beta REPS [NBUF]   -> "cpu_us wall_us" per call
 *   alone peak                            -> AVX-512 and AVX2 FMA throughput, GFLOP/s
 * NBUF > 1 cycles through that many operand sets (16 sets of the 128 x 300 x 300 products are
 * ~8 MB, beyond the 2 MB L2), i.e. operands cold in L2 as after an optimiser pass. */
#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* 12 independent FMA chains per width: enough to cover the FMA latency on two ports. */
__attribute__((target("avx512f,fma"))) static void peak(void) {
    const long it = 50000000;
    __m512 a[12], x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < it; i++)
        for (int j = 0; j < 12; j++) a[j] = _mm512_fmadd_ps(a[j], x, y);
    double t = clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
    float s = 0;
    for (int j = 0; j < 12; j++) s += _mm512_reduce_add_ps(a[j]);
    printf("fma zmm %.1f GFLOP/s\n", it * 12.0 * 32 / t / 1e9);
    __m256 b[12], x2 = _mm256_set1_ps(1.0000001f), y2 = _mm256_set1_ps(0.9999999f);
    for (int i = 0; i < 12; i++) b[i] = _mm256_set1_ps((float)i);
    t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < it; i++)
        for (int j = 0; j < 12; j++) b[j] = _mm256_fmadd_ps(b[j], x2, y2);
    t = clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
    float o[8];
    for (int j = 0; j < 12; j++) {
        _mm256_storeu_ps(o, b[j]);
        for (int k = 0; k < 8; k++) s += o[k];
    }
    printf("fma ymm %.1f GFLOP/s (checksum %g)\n", it * 12.0 * 16 / t / 1e9, s);
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "peak")) {
        peak();
        return 0;
    }
    if (argc < 8) {
        fprintf(stderr, "usage: alone ta tb M N K beta REPS [NBUF] | alone peak\n");
        return 2;
    }
    openblas_set_num_threads(1);
    int ta = argv[1][0] == 't', tb = argv[2][0] == 't', M = atoi(argv[3]), N = atoi(argv[4]), K = atoi(argv[5]);
    float beta = (float)atof(argv[6]);
    int reps = atoi(argv[7]), nbuf = argc > 8 ? atoi(argv[8]) : 1;
    float **A = malloc(sizeof *A * nbuf), **B = malloc(sizeof *B * nbuf), **C = malloc(sizeof *C * nbuf);
    for (int s = 0; s < nbuf; s++) {
        A[s] = malloc(sizeof(float) * M * K);
        B[s] = malloc(sizeof(float) * K * N);
        C[s] = calloc((size_t)M * N, sizeof(float));
        for (long i = 0; i < (long)M * K; i++) A[s][i] = (float)rand() / RAND_MAX - 0.5f;
        for (long i = 0; i < (long)K * N; i++) B[s][i] = (float)rand() / RAND_MAX - 0.5f;
    }
    const int lda = ta ? M : K, ldb = tb ? K : N;
    const enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    for (int r = 0; r < 20; r++) cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, 1, A[0], lda, B[0], ldb, beta, C[0], N);
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (int r = 0; r < reps; r++) {
        int s = r % nbuf;
        cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, 1, A[s], lda, B[s], ldb, beta, C[s], N);
    }
    double c = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0, w = clock_s(CLOCK_MONOTONIC) - w0;
    printf("%.2f %.2f\n", 1e6 * c / reps, 1e6 * w / reps);
    return 0;
}
