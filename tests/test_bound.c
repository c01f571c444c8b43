/* The collapse bound (csrc/nc/bound.c, docs/theory.md): Theorem 1 against the reference table and
 * a direct minimisation, Theorem 2 against spec/fixtures/bound_vectors.csv, its asymptotic form,
 * monotonicity, argument errors, a never-NaN grid, and a simulation of the layer-peeled model with
 * BatchNorm in which no certified statement may be violated. */
#include "check.h"
#include "collapse.h"

#include <stdint.h>

/* |a - b| <= tol |b| */
#define CHECK_REL(a, b, tol)                                                                   \
    do {                                                                                       \
        double check_a_ = (a), check_b_ = (b);                                                 \
        check_count++;                                                                         \
        if (!(fabs(check_a_ - check_b_) <= (tol) * fabs(check_b_))) {                          \
            check_failures++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK_REL failed: %s = %.17g, expected %.17g (rel tol %g)\n", \
                    __FILE__, __LINE__, #a, check_a_, check_b_, (double)(tol));                \
        }                                                                                      \
    } while (0)

static double rel_err(double a, double b) { return b == 0.0 ? fabs(a) : fabs(a - b) / fabs(b); }

static collapse_bound_input make_input(double lambda, int classes, double loss, int64_t n) {
    collapse_bound_input in;
    collapse_bound_input_defaults(&in);
    in.lambda = lambda;
    in.classes = classes;
    in.loss = loss;
    in.per_class = n;
    return in;
}

static double lstar(double lambda, int classes) {
    double L = NAN;
    CHECK_OK(collapse_optimal_loss(lambda, classes, &L, NULL));
    return L;
}

/* ---- Theorem 1 ------------------------------------------------------------------------ */

/* G(t) = phi(t/sqrt(C)) + lambda t, written independently of bound.c. */
static double G(double t, double lambda, int C) {
    double a = t / sqrt((double)C);
    return log1p((C - 1.0) * exp(-(double)C * a / (C - 1.0))) + lambda * t;
}

static void test_reference_table(void) {
    static const double lam[6] = {1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2};
    static const double L[6] = {0.0032335369, 0.0138766038, 0.0257784483,
                                0.1059080738, 0.1918834027, 0.7217918035};
    static const double T[6] = {29.48891, 24.90513, 22.92834, 18.31512, 16.30101, 11.36576};
    static const double intra[6] = {0.99646, 0.99927, 0.99962, 0.99991, 0.99995, 0.99999};
    static const double inter[6] = {0.10146, -0.03757, -0.06155, -0.08934, -0.09534, -0.10304};
    for (int i = 0; i < 6; i++) {
        double Ls = NAN, ts = NAN;
        CHECK_OK(collapse_optimal_loss(lam[i], 10, &Ls, &ts));
        /* the table has 10 decimals: 1e-9 relative, or correct rounding where that is coarser */
        CHECK(fabs(Ls - L[i]) <= fmax(1e-9 * L[i], 0.5e-10 + 1e-16));
        CHECK_REL(ts, T[i], 1e-6);
        collapse_bound_input in = make_input(lam[i], 10, Ls + 1e-6, 0);
        collapse_bound_result r;
        CHECK_OK(collapse_bound(&in, &r));
        CHECK(r.guaranteed == 1);
        CHECK(r.reason[0] == '\0');
        CHECK_CLOSE(r.epsilon, 1e-6, 1e-15);
        CHECK_CLOSE(r.intra_cos_min, intra[i], 1e-4);
        CHECK_CLOSE(r.inter_cos_max, inter[i], 1e-4);
        CHECK(r.intra_vacuous == 0 && r.inter_vacuous == 0);
    }
    CHECK_CLOSE(lstar(0.01, 4), 0.09436169, 1e-8);
    CHECK_CLOSE(lstar(0.05, 3), 0.26070821, 1e-8);
    CHECK_CLOSE(lstar(0.1, 2), 0.25547338, 1e-8);
}

/* The closed form against a golden-section minimisation of G, and the zero solution. */
static void test_optimal_loss_minimises_G(void) {
    static const int Cs[] = {2, 3, 7, 10, 100, 1000};
    static const double fr[] = {1e-6, 1e-3, 0.1, 0.5, 0.9};
    for (unsigned a = 0; a < sizeof Cs / sizeof Cs[0]; a++) {
        for (unsigned b = 0; b < sizeof fr / sizeof fr[0]; b++) {
            int C = Cs[a];
            double lambda = fr[b] / sqrt((double)C), Ls = NAN, ts = NAN;
            CHECK_OK(collapse_optimal_loss(lambda, C, &Ls, &ts));
            double lo = 0.0, hi = 10.0 * ts + 10.0, g = (sqrt(5.0) - 1.0) / 2.0;
            for (int it = 0; it < 300; it++) {
                double m1 = hi - g * (hi - lo), m2 = lo + g * (hi - lo);
                if (G(m1, lambda, C) < G(m2, lambda, C)) hi = m2;
                else lo = m1;
            }
            double tm = 0.5 * (lo + hi);
            CHECK_REL(Ls, G(tm, lambda, C), 1e-12);
            CHECK_REL(G(ts, lambda, C), Ls, 1e-13);
            CHECK(fabs(tm - ts) <= 1e-5 * (1.0 + ts)); /* G is flat at its minimum */
        }
        double Ls = NAN, ts = NAN;
        CHECK_OK(collapse_optimal_loss(1.0 / sqrt((double)Cs[a]) * 1.5, Cs[a], &Ls, &ts));
        CHECK_REL(Ls, log((double)Cs[a]), 1e-15);
        CHECK(ts == 0.0);
    }
    /* NULL outputs are allowed. */
    CHECK_OK(collapse_optimal_loss(0.01, 10, NULL, NULL));
}

/* ---- Theorem 2 against the committed reference points ------------------------------------ */

static void test_vectors(void) {
    FILE *f = fopen("spec/fixtures/bound_vectors.csv", "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[2048];
    int rows = 0, guaranteed = 0;
    double max_err[6] = {0, 0, 0, 0, 0, 0};
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || !strncmp(line, "classes", 7) || line[0] == '\n') continue;
        double v[11];
        char *p = line, *end;
        int ok = 1;
        for (int i = 0; i < 11; i++) {
            v[i] = strtod(p, &end); /* "nan" parses as NaN */
            if (end == p) ok = 0;
            p = end + (*end == ',');
        }
        CHECK(ok);
        if (!ok) continue;
        rows++;
        collapse_bound_input in = make_input(v[1], (int)v[0], v[2], (int64_t)v[3]);
        collapse_bound_result r;
        CHECK_OK(collapse_bound(&in, &r));
        CHECK(r.guaranteed == (int)v[6]);
        CHECK_REL(r.optimal_loss, v[4], 1e-6);
        CHECK_REL(r.t_star, v[5], 1e-6);
        double e[6] = {rel_err(r.optimal_loss, v[4]), rel_err(r.t_star, v[5]), 0, 0, 0, 0};
        if (v[6] == 1.0 && r.guaranteed) {
            guaranteed++;
            CHECK_REL(r.raw_intra_cos_min, v[7], 1e-6);
            CHECK_REL(r.raw_inter_cos_max, v[8], 1e-6);
            CHECK_REL(r.variability_max, v[9], 1e-6);
            CHECK_REL(r.raw_self_duality_min, v[10], 1e-6);
            e[2] = rel_err(r.raw_intra_cos_min, v[7]);
            e[3] = rel_err(r.raw_inter_cos_max, v[8]);
            e[4] = rel_err(r.variability_max, v[9]);
            e[5] = rel_err(r.raw_self_duality_min, v[10]);
        } else {
            CHECK(r.reason[0] != '\0');
        }
        for (int i = 0; i < 6; i++)
            if (e[i] > max_err[i]) max_err[i] = e[i];
    }
    fclose(f);
    CHECK(rows == 40);
    CHECK(guaranteed >= 20);
    printf("bound_vectors.csv: %d rows (%d guaranteed); max relative error: L* %.1e, t* %.1e, intra %.1e, "
           "inter %.1e, variability %.1e, self-duality %.1e\n",
           rows, guaranteed, max_err[0], max_err[1], max_err[2], max_err[3], max_err[4], max_err[5]);
}

/* ---- asymptotic form, monotonicity, special cases --------------------------------------------- */

static void test_asymptotic(void) {
    static const double lam[] = {1e-3, 1e-2, 5e-2};
    static const int Cs[] = {10, 3, 100};
    for (int i = 0; i < 3; i++) {
        double Ls = lstar(lam[i], Cs[i]), prev = INFINITY;
        for (double eps = 1e-8; eps >= 1e-12; eps /= 100.0) {
            collapse_bound_input in = make_input(lam[i], Cs[i], Ls + eps, 0);
            collapse_bound_result r;
            CHECK_OK(collapse_bound(&in, &r));
            CHECK(r.guaranteed);
            /* The exact epsilon (Ls + eps rounded) and 1 - bound = 8 eps / (lambda r_min^2) exactly. */
            double ratio = (r.t_star / (r.r_min * r.r_min));
            double ratio_cos = (1.0 - r.raw_intra_cos_min) / (1.0 - r.asymptotic_intra_cos_min);
            CHECK(ratio >= 1.0 && ratio - 1.0 < prev / 5.0); /* r_min^2 -> t* like sqrt(eps) */
            CHECK(fabs(ratio_cos - ratio) < 1e-3);
            prev = ratio - 1.0;
            if (eps < 2e-12) {
                CHECK(fabs(ratio_cos - 1.0) < 1e-3);
                printf("asymptotic: lambda %g, C %d, eps %g: (1 - certified intra)/(1 - asymptotic intra) = %.8f, "
                       "inter ratio %.8f\n", lam[i], Cs[i], eps, ratio_cos,
                       (r.raw_inter_cos_max + 1.0 / (Cs[i] - 1.0)) / (r.asymptotic_inter_cos_max + 1.0 / (Cs[i] - 1.0)));
            }
            /* The certified bound is weaker than its leading order. */
            CHECK(r.raw_intra_cos_min <= r.asymptotic_intra_cos_min);
            CHECK(r.raw_inter_cos_max >= r.asymptotic_inter_cos_max);
            double inter_ratio = (r.raw_inter_cos_max + 1.0 / (Cs[i] - 1.0)) /
                                 (r.asymptotic_inter_cos_max + 1.0 / (Cs[i] - 1.0));
            CHECK(inter_ratio >= 1.0 && inter_ratio < 1.0 + 2000.0 * sqrt(eps));
        }
        CHECK(prev < 1e-3);
    }
    /* Asymptotic form also when the certified bound gives up, exactly as in theory.md. */
    double Ls = lstar(7.028214560868901e-4, 3);
    collapse_bound_input in = make_input(7.028214560868901e-4, 3, 0.05279468790710141, 0);
    collapse_bound_result r;
    CHECK_OK(collapse_bound(&in, &r));
    CHECK(r.guaranteed == 0);
    double eps = 0.05279468790710141 - Ls;
    CHECK_CLOSE(r.asymptotic_intra_cos_min, fmax(-1.0, 1.0 - 8.0 * eps / (in.lambda * r.t_star)), 1e-12);
    CHECK_CLOSE(r.asymptotic_inter_cos_max, fmin(1.0, -0.5 + 4.0 * sqrt(2.0 * eps / (in.lambda * r.t_star))), 1e-12);
    CHECK(strstr(r.reason, "kappa_lo") != NULL); /* this point fails at step 5, not at G(0) */
    CHECK(r.intra_cos_min == -1.0 && r.inter_cos_max == 1.0 && r.self_duality_min == -1.0);
    CHECK(r.intra_vacuous && r.inter_vacuous);
    CHECK(isinf(r.variability_max));
    CHECK_CLOSE(r.within_energy_max, 2.0 * eps / in.lambda, 1e-12);
}

static void test_monotone(void) {
    static const double lam[] = {1e-4, 1e-3, 2e-2, 0.2};
    static const int Cs[] = {10, 4, 100, 2};
    static const int64_t ns[] = {0, 5, 500, 2};
    for (int i = 0; i < 4; i++) {
        double Ls = lstar(lam[i], Cs[i]);
        collapse_bound_result prev;
        memset(&prev, 0, sizeof prev);
        int have = 0, lost = 0;
        for (double eps = 1e-14; eps < 10.0; eps *= 1.5) {
            collapse_bound_input in = make_input(lam[i], Cs[i], Ls + eps, ns[i]);
            collapse_bound_result r;
            CHECK_OK(collapse_bound(&in, &r));
            if (!r.guaranteed) lost = 1;
            CHECK(!(lost && r.guaranteed)); /* once lost, never regained */
            if (have) {
                /* the reported (clamped) bounds always; the unclamped ones while both are certified */
                CHECK(r.intra_cos_min <= prev.intra_cos_min);
                CHECK(r.intra_cos_q_min <= prev.intra_cos_q_min);
                CHECK(r.inter_cos_max >= prev.inter_cos_max);
                CHECK(r.self_duality_min <= prev.self_duality_min);
                CHECK(r.variability_max >= prev.variability_max);
                CHECK(r.within_energy_max >= prev.within_energy_max);
                CHECK(r.r_min <= prev.r_min && r.r_max >= prev.r_max);
                CHECK(r.asymptotic_intra_cos_min <= prev.asymptotic_intra_cos_min);
                CHECK(r.asymptotic_inter_cos_max >= prev.asymptotic_inter_cos_max);
                if (r.guaranteed && prev.guaranteed) {
                    CHECK(r.raw_intra_cos_min < prev.raw_intra_cos_min);
                    CHECK(r.raw_intra_cos_q_min < prev.raw_intra_cos_q_min);
                    CHECK(r.raw_inter_cos_max > prev.raw_inter_cos_max);
                    CHECK(r.raw_self_duality_min < prev.raw_self_duality_min);
                    CHECK(r.eta > prev.eta && r.kappa_lo < prev.kappa_lo && r.kappa_hi > prev.kappa_hi);
                    CHECK(r.t_lo < prev.t_lo && r.t_hi > prev.t_hi);
                }
            }
            /* Markov: the quantile bound is weaker than the average bound. */
            CHECK(r.raw_intra_cos_q_min <= r.raw_intra_cos_min);
            prev = r;
            have = 1;
        }
        CHECK(lost);
    }
    /* more samples per class -> stronger intra bound (factor n/(n-1)) */
    double Ls = lstar(1e-3, 10);
    collapse_bound_input a = make_input(1e-3, 10, Ls + 1e-6, 2), b = make_input(1e-3, 10, Ls + 1e-6, 0);
    collapse_bound_result ra, rb;
    CHECK_OK(collapse_bound(&a, &ra));
    CHECK_OK(collapse_bound(&b, &rb));
    CHECK_CLOSE(1.0 - ra.raw_intra_cos_min, 2.0 * (1.0 - rb.raw_intra_cos_min), 1e-13);
    /* smaller q -> weaker quantile bound, q = 1/... scales the deficit by 1/q */
    b.q = 0.5;
    CHECK_OK(collapse_bound(&b, &ra));
    CHECK_CLOSE(1.0 - ra.raw_intra_cos_q_min, 2.0 * (1.0 - rb.raw_intra_cos_min), 1e-13);
}

static void test_special_cases(void) {
    collapse_bound_input in;
    memset(&in, 0x5a, sizeof in);
    collapse_bound_input_defaults(&in);
    CHECK(in.bn == 1 && in.q == 0.05 && in.per_class == 0);

    /* epsilon = 0 and a loss a rounding error below L*: the perfect-collapse values. */
    for (int k = 0; k < 2; k++) {
        double Ls = lstar(5e-3, 10);
        in = make_input(5e-3, 10, k ? Ls * (1.0 - 1e-13) : Ls, 100);
        collapse_bound_result r;
        CHECK_OK(collapse_bound(&in, &r));
        CHECK(r.guaranteed);
        CHECK(r.epsilon == 0.0);
        CHECK(r.intra_cos_min == 1.0 && r.intra_cos_q_min == 1.0 && r.self_duality_min == 1.0);
        CHECK_CLOSE(r.inter_cos_max, -1.0 / 9.0, 1e-15);
        CHECK(r.variability_max == 0.0 && r.within_energy_max == 0.0 && r.eta == 0.0);
        CHECK_REL(r.r_min, sqrt(r.t_star), 1e-14);
        CHECK_REL(r.r_max, sqrt(r.t_star), 1e-14);
        CHECK(r.asymptotic_intra_cos_min == 1.0);
    }

    /* No last-layer BN: nothing is guaranteed, the reason says why; a loss below L* is fine. */
    in = make_input(1e-3, 10, 1e-4, 0);
    in.bn = 0;
    collapse_bound_result r;
    CHECK_OK(collapse_bound(&in, &r));
    CHECK(!r.guaranteed && strstr(r.reason, "BN") && strstr(r.reason, "model-free"));
    CHECK(r.intra_cos_min == -1.0 && r.inter_cos_max == 1.0);
    CHECK(r.asymptotic_intra_cos_min == -1.0 && r.asymptotic_inter_cos_max == 1.0);
    CHECK_REL(r.optimal_loss, lstar(1e-3, 10), 1e-15);

    /* lambda sqrt(C) >= 1: the zero solution. */
    in = make_input(0.5, 4, log(4.0) + 0.01, 0);
    CHECK_OK(collapse_bound(&in, &r));
    CHECK(!r.guaranteed && strstr(r.reason, ">= 1"));
    CHECK(r.t_star == 0.0 && r.asymptotic_intra_cos_min == -1.0);

    /* G(0) = log C <= L* + epsilon. */
    in = make_input(0.01, 10, 3.0, 0);
    CHECK_OK(collapse_bound(&in, &r));
    CHECK(!r.guaranteed && strstr(r.reason, "G(0) = log C <= L* + epsilon"));
    CHECK(r.asymptotic_intra_cos_min == -1.0); /* 1 - 8 eps/(lambda t*) far below -1, clamped */
}

static void test_errors(void) {
    double L, t;
    CHECK_FAILS(collapse_optimal_loss(0.0, 10, &L, &t), "optimal_loss: lambda");
    CHECK_FAILS(collapse_optimal_loss(-1e-3, 10, &L, &t), "optimal_loss: lambda");
    CHECK_FAILS(collapse_optimal_loss(NAN, 10, &L, &t), "optimal_loss: lambda");
    CHECK_FAILS(collapse_optimal_loss(INFINITY, 10, &L, &t), "optimal_loss: lambda");
    CHECK_FAILS(collapse_optimal_loss(1e-3, 1, &L, &t), "optimal_loss: classes must be >= 2, got 1");

    collapse_bound_result r;
    collapse_bound_input in = make_input(1e-3, 10, 0.03, 0);
    CHECK_OK(collapse_bound(&in, &r));
    CHECK_FAILS(collapse_bound(NULL, &r), "bound: input");
    CHECK_FAILS(collapse_bound(&in, NULL), "bound: result");
    in.lambda = 0.0;
    CHECK_FAILS(collapse_bound(&in, &r), "bound: lambda must be a finite number > 0, got 0");
    in.lambda = -INFINITY;
    CHECK_FAILS(collapse_bound(&in, &r), "bound: lambda");
    in.lambda = NAN;
    CHECK_FAILS(collapse_bound(&in, &r), "bound: lambda");
    in = make_input(1e-3, 0, 0.03, 0);
    CHECK_FAILS(collapse_bound(&in, &r), "bound: classes must be >= 2, got 0");
    in = make_input(1e-3, 10, NAN, 0);
    CHECK_FAILS(collapse_bound(&in, &r), "bound: loss must be a finite number");
    in.loss = INFINITY;
    CHECK_FAILS(collapse_bound(&in, &r), "bound: loss must be a finite number, got inf");
    in = make_input(1e-3, 10, 0.03, 1);
    CHECK_FAILS(collapse_bound(&in, &r), "bound: per_class must be >= 2 samples per class (or 0 when unknown), got 1");
    in.per_class = -3;
    CHECK_FAILS(collapse_bound(&in, &r), "got -3");
    in = make_input(1e-3, 10, 0.03, 0);
    in.q = 0.0;
    CHECK_FAILS(collapse_bound(&in, &r), "bound: q must be a fraction in (0, 1), got 0");
    in.q = 1.0;
    CHECK_FAILS(collapse_bound(&in, &r), "bound: q");
    in.q = NAN;
    CHECK_FAILS(collapse_bound(&in, &r), "bound: q");
    /* below the optimum */
    in = make_input(1e-3, 10, 0.02, 0);
    CHECK_FAILS(collapse_bound(&in, &r), "bound: loss 0.02 is below the optimal loss L* = 0.02577844826 for "
                                        "lambda = 0.001, C = 10; a regularised loss can never be below L* "
                                        "(did you pass the cross-entropy alone?)");
    in.loss = lstar(1e-3, 10) * (1.0 - 1e-11);
    CHECK_FAILS(collapse_bound(&in, &r), "below the optimal loss");
    in.loss = log(10.0) - 1e-6; /* lambda sqrt(C) >= 1: L* = log C */
    in.lambda = 0.5;
    CHECK_FAILS(collapse_bound(&in, &r), "below the optimal loss L* = 2.302585093");
}

static int has_nan(const collapse_bound_result *r) {
    const double v[] = {r->optimal_loss, r->t_star, r->epsilon, r->intra_cos_min, r->inter_cos_max,
                        r->variability_max, r->within_energy_max, r->self_duality_min, r->intra_cos_q_min,
                        r->raw_intra_cos_min, r->raw_inter_cos_max, r->raw_self_duality_min,
                        r->raw_intra_cos_q_min, r->asymptotic_intra_cos_min, r->asymptotic_inter_cos_max,
                        r->r_min, r->r_max, r->eta, r->delta, r->t_lo, r->t_hi, r->kappa_lo, r->kappa_hi};
    for (unsigned i = 0; i < sizeof v / sizeof v[0]; i++)
        if (isnan(v[i])) return 1;
    return 0;
}

static int in_pm1(double x) { return x >= -1.0 && x <= 1.0; }

static void test_never_nan(void) {
    static const int Cs[] = {2, 3, 10, 1000, 1000000, 2147483647};
    static const double fr[] = {1e-320, 1e-300, 1e-100, 1e-12, 1e-6, 1e-3, 0.1, 0.5, 0.9, 0.99,
                                1 - 1e-6, 1 - 1e-10, 1 - 1e-14, 1 - 1e-16, 1, 1 + 1e-15, 2, 1e300};
    static const double eps[] = {0, 1e-300, 1e-30, 1e-15, 1e-12, 1e-8, 1e-4, 1e-2, 1, 10, 1e3, 1e100, 1e300};
    static const int64_t ns[] = {0, 2, 1000};
    static const double qs[] = {1e-9, 0.05, 0.999999};
    int cases = 0, nan_cases = 0, guaranteed = 0, bad_range = 0;
    for (unsigned a = 0; a < sizeof Cs / sizeof Cs[0]; a++)
        for (unsigned b = 0; b < sizeof fr / sizeof fr[0]; b++)
            for (unsigned e = 0; e <= sizeof eps / sizeof eps[0]; e++)
                for (unsigned m = 0; m < 3; m++)
                    for (int bn = 0; bn < 2; bn++) {
                        double lambda = fr[b] / sqrt((double)Cs[a]), Ls = NAN;
                        if (lambda == 0.0) continue; /* 1e-320 / sqrt(C) underflows */
                        if (collapse_optimal_loss(lambda, Cs[a], &Ls, NULL) != COLLAPSE_OK || !isfinite(Ls)) {
                            nan_cases++;
                            continue;
                        }
                        collapse_bound_input in = make_input(lambda, Cs[a], 0.0, ns[m]);
                        in.bn = bn;
                        in.q = qs[(a + b + e) % 3];
                        /* the last "eps" is a loss within rounding below L* */
                        in.loss = e < sizeof eps / sizeof eps[0] ? Ls + eps[e] : Ls * (1.0 - 1e-13);
                        if (!isfinite(in.loss)) continue;
                        collapse_bound_result r;
                        collapse_status s = collapse_bound(&in, &r);
                        if (s != COLLAPSE_OK) {
                            nan_cases++;
                            fprintf(stderr, "unexpected failure: %s\n", collapse_last_error());
                            continue;
                        }
                        cases++;
                        guaranteed += r.guaranteed;
                        if (has_nan(&r)) {
                            nan_cases++;
                            fprintf(stderr, "NaN for C=%d lambda=%g loss=%g n=%lld bn=%d\n", Cs[a], lambda,
                                    in.loss, (long long)ns[m], bn);
                        }
                        if (!in_pm1(r.intra_cos_min) || !in_pm1(r.inter_cos_max) || !in_pm1(r.self_duality_min) ||
                            !in_pm1(r.intra_cos_q_min) || !in_pm1(r.asymptotic_intra_cos_min) ||
                            !in_pm1(r.asymptotic_inter_cos_max) || !(r.guaranteed == 0 || r.guaranteed == 1) ||
                            (r.guaranteed ? r.reason[0] != '\0' : r.reason[0] == '\0') ||
                            (r.guaranteed && !(r.r_min > 0.0 && r.r_max >= r.r_min && r.eta >= 0.0 && r.eta <= 1.0)))
                            bad_range++;
                    }
    CHECK(cases > 5000);
    CHECK(guaranteed > 500);
    CHECK(nan_cases == 0);
    CHECK(bad_range == 0);
}

/* ---- simulation: the layer-peeled model with last-layer BN ----------------------------------
 * Start at the optimum (class means a simplex ETF of squared norm t*, W rows equal to the means,
 * gamma making the BN output exactly those means), perturb every free quantity (pre-BN features z,
 * W, b, gamma, beta), compute L_reg exactly and the measured quantities the bound speaks about,
 * and check Theorem 1 (L_reg >= L*) and every certified statement of Theorem 2. */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static double nrand(void) { return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand()); }

enum { SIM_MAXC = 10, SIM_MAXN = 6 };

static void test_simulation(void) {
    enum { D = SIM_MAXC };
    static double z[SIM_MAXC * SIM_MAXN][D], h[SIM_MAXC * SIM_MAXN][D], W[SIM_MAXC][D], b[SIM_MAXC];
    static double gam[D], bet[D];
    static const int Cs[] = {2, 3, 4, 5, 10};
    int trials = 0, certified = 0, violations = 0, below = 0;
    double tight_intra = INFINITY, tight_inter = INFINITY, tight_sd = INFINITY, tight_rmin = INFINITY;
    for (int trial = 0; trial < 4000; trial++) {
        int C = Cs[trial % 5], n = 2 + (trial / 5) % (SIM_MAXN - 1), N = C * n, d = C;
        double lambda = exp(log(1e-4) + urand() * (log(0.8 / sqrt((double)C)) - log(1e-4)));
        double scale = exp(log(1e-6) + urand() * (log(0.3) - log(1e-6)));
        double Ls, ts;
        CHECK_OK(collapse_optimal_loss(lambda, C, &Ls, &ts));
        double etf = sqrt(ts * C / (C - 1.0)), S = 100.0, bn_eps = 1e-5;
        /* which parts are perturbed this trial (all, or a single one) */
        int mode = trial % 7;
        double sz = (mode == 0 || mode == 1) ? scale : 0, sw = (mode == 0 || mode == 2) ? scale : 0;
        double sb = (mode == 0 || mode == 3) ? scale : 0, sg = (mode == 0 || mode == 4) ? scale : 0;
        double sbe = (mode == 0 || mode == 5) ? scale : 0, sm = mode == 6 ? scale : 0;
        double stretch[SIM_MAXC];
        for (int c = 0; c < C; c++) stretch[c] = 1.0 + sm * nrand(); /* unequal class-mean norms */
        for (int i = 0; i < N; i++)
            for (int k = 0; k < d; k++)
                z[i][k] = S * (etf * stretch[i % C] * ((k == i % C) - 1.0 / C) + sz * sqrt(ts) * nrand());
        for (int k = 0; k < d; k++) {
            double mu = 0, var = 0;
            for (int i = 0; i < N; i++) mu += z[i][k];
            mu /= N;
            for (int i = 0; i < N; i++) var += (z[i][k] - mu) * (z[i][k] - mu);
            var /= N;
            double sd = sqrt(var + bn_eps);
            gam[k] = sqrt(ts / C) * sd / sqrt(var) * (1.0 + sg * nrand());
            bet[k] = sbe * sqrt(ts) * nrand();
            for (int i = 0; i < N; i++) h[i][k] = gam[k] * (z[i][k] - mu) / sd + bet[k];
        }
        for (int c = 0; c < C; c++) {
            /* at the optimum w_c - w_bar = M_c / sqrt(C) (||W||^2 = t*, ||M_c||^2 = t*) */
            for (int k = 0; k < d; k++)
                W[c][k] = etf / sqrt((double)C) * ((k == c) - 1.0 / C) + sw * sqrt(ts / C) * nrand();
            b[c] = sb * nrand();
        }
        /* L_reg */
        double ce = 0, reg = 0;
        for (int i = 0; i < N; i++) {
            double lg[SIM_MAXC], mx = -INFINITY, se = 0;
            for (int c = 0; c < C; c++) {
                lg[c] = b[c];
                for (int k = 0; k < d; k++) lg[c] += W[c][k] * h[i][k];
                if (lg[c] > mx) mx = lg[c];
            }
            for (int c = 0; c < C; c++) se += exp(lg[c] - mx);
            ce += mx + log(se) - lg[i % C];
        }
        ce /= N;
        for (int c = 0; c < C; c++) {
            reg += b[c] * b[c];
            for (int k = 0; k < d; k++) reg += W[c][k] * W[c][k];
        }
        for (int k = 0; k < d; k++) reg += gam[k] * gam[k] + bet[k] * bet[k];
        double loss = ce + lambda / 2 * reg;
        trials++;
        if (loss < Ls * (1.0 - 1e-12)) { /* Theorem 1 violated */
            below++;
            continue;
        }
        collapse_bound_input in = make_input(lambda, C, loss, n);
        collapse_bound_result r;
        CHECK_OK(collapse_bound(&in, &r));
        if (!r.guaranteed) continue;
        certified++;
        /* measured quantities (centred by the global mean) */
        double hbar[D] = {0}, M[SIM_MAXC][D] = {{0}}, s[SIM_MAXC][D] = {{0}}, Vc[SIM_MAXC] = {0};
        for (int i = 0; i < N; i++)
            for (int k = 0; k < d; k++) hbar[k] += h[i][k] / N;
        for (int i = 0; i < N; i++) {
            double g[D], nrm = 0;
            for (int k = 0; k < d; k++) { g[k] = h[i][k] - hbar[k]; nrm += g[k] * g[k]; }
            nrm = sqrt(nrm);
            for (int k = 0; k < d; k++) {
                M[i % C][k] += g[k] / n;
                s[i % C][k] += (nrm > 0 ? g[k] / nrm : 0.0) / n;
            }
        }
        for (int i = 0; i < N; i++)
            for (int k = 0; k < d; k++) {
                double dev = h[i][k] - hbar[k] - M[i % C][k];
                Vc[i % C] += dev * dev / n;
            }
        double V = 0, B = 0, mmin = INFINITY, mmax = 0, intra = 0, inter = 0, wm = 0, ww = 0, mm = 0;
        double q_bound = r.raw_intra_cos_q_min;
        int low = 0;
        for (int c = 0; c < C; c++) {
            double m2 = 0, s2 = 0, wbar_dot = 0;
            for (int k = 0; k < d; k++) { m2 += M[c][k] * M[c][k]; s2 += s[c][k] * s[c][k]; }
            V += Vc[c] / C;
            B += m2 / C;
            mmin = fmin(mmin, sqrt(m2));
            mmax = fmax(mmax, sqrt(m2));
            double ic = (n * s2 - 1.0) / (n - 1.0);
            intra += ic / C;
            if (ic < q_bound) low++;
            for (int c2 = 0; c2 < C; c2++) {
                if (c2 == c) continue;
                double dot = 0;
                for (int k = 0; k < d; k++) dot += s[c][k] * s[c2][k];
                inter += dot / (C * (C - 1.0));
            }
            for (int k = 0; k < d; k++) {
                double wb = 0;
                for (int c2 = 0; c2 < C; c2++) wb += W[c2][k] / C;
                double wc = W[c][k] - wb;
                wbar_dot += wc * M[c][k];
                ww += wc * wc;
            }
            wm += wbar_dot;
            mm += m2;
        }
        double sdual = wm / sqrt(ww * mm);
        int bad = 0;
        const double tol = 1e-9;
        bad |= !(V <= r.within_energy_max * (1 + tol) + 1e-300);
        bad |= !(V / B <= r.variability_max * (1 + tol) + 1e-300);
        bad |= !(mmin >= r.r_min * (1 - tol));
        bad |= !(mmax <= r.r_max * (1 + tol));
        bad |= !(intra >= r.raw_intra_cos_min - tol);
        bad |= !(inter <= r.raw_inter_cos_max + tol);
        bad |= !(sdual >= r.raw_self_duality_min - tol);
        bad |= !(low <= in.q * C);
        if (bad) {
            violations++;
            fprintf(stderr, "violation: C=%d n=%d lambda=%g eps=%g mode=%d: V %g<=%g, V/B %g<=%g, |M| in [%g,%g] vs [%g,%g], "
                            "intra %g>=%g, inter %g<=%g, sd %g>=%g, low %d\n",
                    C, n, lambda, r.epsilon, mode, V, r.within_energy_max, V / B, r.variability_max, mmin, mmax,
                    r.r_min, r.r_max, intra, r.raw_intra_cos_min, inter, r.raw_inter_cos_max, sdual,
                    r.raw_self_duality_min, low);
        }
        if (r.epsilon > 0) {
            tight_intra = fmin(tight_intra, (1 - r.raw_intra_cos_min) / fmax(1e-300, 1 - intra));
            tight_inter = fmin(tight_inter, (r.raw_inter_cos_max + 1.0 / (C - 1)) / fmax(1e-300, inter + 1.0 / (C - 1)));
            tight_sd = fmin(tight_sd, (1 - r.raw_self_duality_min) / fmax(1e-300, 1 - sdual));
            tight_rmin = fmin(tight_rmin, mmin / r.r_min);
        }
    }
    printf("simulation: %d near-optimal points, %d certified, %d below L*, %d violations; "
           "closest approach (bound deficit / measured deficit): intra %.3g, inter %.3g, self-duality %.3g, "
           "min ||M_c|| / r_min %.6g\n",
           trials, certified, below, violations, tight_intra, tight_inter, tight_sd, tight_rmin);
    CHECK(below == 0);
    CHECK(certified > 1000);
    CHECK(violations == 0);
}

int main(void) {
    test_reference_table();
    test_optimal_loss_minimises_G();
    test_vectors();
    test_asymptotic();
    test_monotone();
    test_special_cases();
    test_errors();
    test_never_nan();
    test_simulation();
    return check_report("test_bound");
}
