/* LD_PRELOAD shim for bench/sgemm/probe: times every cblas_sgemm call of a process in place
 * (wall and thread CPU time) and, at exit, writes one line per distinct call form (transposes,
 * M N K, leading dimensions, beta) to $SGEMM_TRACE_OUT. It answers "how fast do the products
 * run inside the training epoch", to set against sgemm/alone.c running the same calls alone.
 * Not part of the library or its tests: a measuring tool. */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*sgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE,
                         const blasint, const blasint, const blasint, const float, const float *, const blasint,
                         const float *, const blasint, const float, float *, const blasint);

typedef struct {
    int ta, tb, m, n, k, lda, ldb, ldc;
    float beta;
    long calls;
    double wall, cpu;
} form;

enum { MAX_FORMS = 256 };
static form forms[MAX_FORMS];
static int n_forms;
static sgemm_fn real_sgemm;

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void dump(void) {
    const char *path = getenv("SGEMM_TRACE_OUT");
    FILE *f = path ? fopen(path, "w") : stderr;
    if (!f) return;
    fprintf(f, "# ta tb M N K lda ldb ldc beta calls wall_s cpu_s\n");
    for (int i = 0; i < n_forms; i++) {
        const form *r = &forms[i];
        fprintf(f, "%c %c %d %d %d %d %d %d %g %ld %.6f %.6f\n", r->ta ? 't' : 'n', r->tb ? 't' : 'n', r->m, r->n,
                r->k, r->lda, r->ldb, r->ldc, r->beta, r->calls, r->wall, r->cpu);
    }
    if (f != stderr) fclose(f);
}

/* The process loads OpenBLAS inside a Lua module (RTLD_LOCAL), so RTLD_NEXT does not see it:
 * open the same library by name ($SGEMM_TRACE_LIB, default Debian's pthreads build). */
static void init(void) {
    const char *lib = getenv("SGEMM_TRACE_LIB");
    void *h = dlopen(lib ? lib : "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0", RTLD_NOW);
    if (h) real_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    if (!real_sgemm) {
        fprintf(stderr, "sgemm trace: cannot load cblas_sgemm (%s)\n", dlerror());
        exit(1);
    }
    atexit(dump);
}

void cblas_sgemm(const enum CBLAS_ORDER o, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                 const blasint m, const blasint n, const blasint k, const float alpha, const float *a,
                 const blasint lda, const float *b, const blasint ldb, const float beta, float *c,
                 const blasint ldc) {
    if (!real_sgemm) init();
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    real_sgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    double w1 = clock_s(CLOCK_MONOTONIC), c1 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    int t1 = ta == CblasTrans, t2 = tb == CblasTrans, i;
    for (i = 0; i < n_forms; i++) {
        const form *r = &forms[i];
        if (r->ta == t1 && r->tb == t2 && r->m == m && r->n == n && r->k == k && r->lda == lda && r->ldb == ldb &&
            r->ldc == ldc && r->beta == beta)
            break;
    }
    if (i == n_forms) {
        if (n_forms == MAX_FORMS) return;
        forms[n_forms++] = (form){t1, t2, m, n, k, lda, ldb, ldc, beta, 0, 0, 0};
    }
    forms[i].calls++;
    forms[i].wall += w1 - w0;
    forms[i].cpu += c1 - c0;
}
