/* Internal layout of collapse_nc_stats, shared by nc/stats.c (the passes and the result) and
 * nc/stats_io.c (save, load, merge). Not part of the public API. */
#ifndef COLLAPSE_NC_STATS_INTERNAL_H
#define COLLAPSE_NC_STATS_INTERNAL_H

#include "collapse.h"

#include <stdint.h>

#if defined(__GNUC__)
#  define NC_INTERNAL __attribute__((visibility("hidden")))
#else
#  define NC_INTERNAL
#endif

#define NC_CHUNK_ELEMS ((int64_t)1 << 16) /* doubles per scratch buffer: 512 KB */
#define NC_STACK_ROUND 4                  /* pass-2 product width rounded up to this with zero rows */
#define NC_EIG_RTOL 1e-12                 /* Gram eigenvalues below this * largest are zero */
#define NC_CDNV_RECOMPUTE 1e-2            /* recompute ||mu_c - mu_c'||^2 directly below this */

enum { NC_PASS1 = 0, NC_PASS2 = 1 };

struct collapse_nc_stats {
    int C;
    int64_t d;
    int flags;          /* COLLAPSE_NC_WITHIN_SPECTRUM or 0 */
    int conv;           /* COLLAPSE_NC_CONV_* bits (docs/metrics.md, "Conventions") */
    int state;          /* NC_PASS1 until end_pass1 succeeds, then NC_PASS2 */
    int pass2_started;
    /* pass 1 */
    int64_t n1;
    int64_t *count1;    /* C */
    double *sum;        /* C x d class sums */
    /* end_pass1 */
    double *mu;         /* C x d class means */
    double *mu_g;       /* d: global sample mean */
    double *mt;         /* C x d: mu_c - mu_P (mu_c - mu_G with COLLAPSE_NC_CONV_MEAN_SAMPLES) */
    double *gram;       /* C x C: M~ M~^T (both triangles) */
    double *gvec;       /* C x C eigenvectors (columns, ascending) */
    double *geig;       /* C eigenvalues of G, descending, clamped >= 0 */
    int rank;
    double *basis;      /* rank x d (room for C rows) */
    double *blam;       /* rank: the eigenvalues lambda_k of G behind basis rows */
    /* classifier */
    int has_w;
    double *wm;         /* 2C x d: rows 0..C-1 W, rows C..2C-1 mu_c - mu_G (filled at end_pass1) */
    double *tw;         /* C x C: tw[y C + c] = (mu_y - mu_G).w_c */
    double *tm;         /* C x C: tm[y C + c] = (mu_y - mu_G).(mu_c - mu_G) */
    double *acoef;      /* C x C: acoef[c C + k] = (mu_c - mu_G).u_k (used when ncc_coord) */
    int ncc_coord;      /* mu_c - mu_G lie in the well-conditioned span of the basis: pass 2 gets
                           (h - mu_y).(mu_c - mu_G) from the basis projections instead of d-wide products */
    double *bias;       /* C: b (zeros if none) */
    double *beff;       /* C: W mu_G + b */
    double *mnorm2;     /* C: ||mu_c - mu_G||^2 */
    /* pass 2 */
    int64_t n2;
    int64_t *count2;    /* C */
    double *usum;       /* C x d: sums of unit centred features */
    double sq_centred;  /* sum ||h_i - mu_G||^2 */
    double *within;     /* C: sum over class c of ||h_i - mu_c||^2 */
    double *proj2;      /* C: sum of squared projections on basis rows */
    double *sigw;       /* d x d upper triangle of sum r r^T (flagged only) */
    int64_t agree, correct; /* agree: argmax (W h + b), or W h with COLLAPSE_NC_CONV_NCC_NO_BIAS, = NCC */
    double loss_sum;
    /* scratch */
    int64_t chunk;
    double *rbuf, *pbuf; /* chunk x d (h - mu_y), chunk x (3C + NC_STACK_ROUND) (products) */
    double *bsum;        /* C x d: the class sums before the current pass-1 batch (restored if it is bad) */
    double *stack;       /* (rank [+ 2C]) x d: rows basis, then W and mu_c - mu_G with a classifier */
    int nstack;          /* rows of stack */
};


/* Shared between stats.c and stats_io.c. */
NC_INTERNAL collapse_status nc_new(const char *fn, int classes, int64_t dim, int flags, collapse_nc_stats **out);
NC_INTERNAL collapse_status nc_set_classifier(const char *fn, collapse_nc_stats *s, const double *W, const double *b);
/* After the end_pass1 fields are filled (by end_pass1 or by a load): the classifier rows and the
 * pass-2 product matrix. */
NC_INTERNAL void nc_prepare_pass2(collapse_nc_stats *s);
/* p[i ns + c] = r_i . s_c (rows x d times ns x d, row-major; ns a multiple of NC_STACK_ROUND), nc/stats_products.c.
 * nc_products takes the fastest path the CPU has; every path gives the same bits (tests/test_nc_products.c). */
enum { NC_PR_PORTABLE = 0, NC_PR_AVX2 = 1, NC_PR_AVX512 = 2 };
NC_INTERNAL void nc_products(const double *r, int64_t rows, int64_t d, const double *s, int64_t ns, double *p);
NC_INTERNAL int nc_products_have(int path);
NC_INTERNAL void nc_products_path(int path, const double *r, int64_t rows, int64_t d, const double *s, int64_t ns,
                                  double *p);

#endif
