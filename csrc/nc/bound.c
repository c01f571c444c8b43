/*
 * The collapse bound (docs/theory.md; Pan & Cao, arXiv 2309.04644): Theorem 1 (the optimal
 * regularised loss L*) in closed form and Theorem 2 (certified collapse from L_reg = L* + eps).
 *
 * Notation: k = C/(C-1), phi(a) = log(1 + (C-1) exp(-k a)), G(t) = phi(t/sqrt(C)) + lambda t.
 * Every root of Theorem 2 is a level set of a Bregman divergence of phi,
 *   D_b(a) = phi(a) - phi(b) - phi'(b)(a - b),
 * which depends on b only through w(b) = (C-1)/(exp(k b) + C - 1) (phi'(b) = -k w) and on
 * h = a - b:  D(h; w) = log1p(w expm1(-k h)) + k w h.  Step 1 is one too: since G'(t*) = 0,
 * G(t) - L* = D_{x*}(t/sqrt(C)) with w(x*) = p = lambda (C-1)/sqrt(C). breg() evaluates D without
 * cancellation (series for small arguments), so the roots keep full precision even for
 * epsilon ~ 1e-14, and bisection runs until the bracket cannot shrink (about 1e-16 relative),
 * returning the outer end, which is the end that makes every bound weaker.
 */
#include "collapse.h"
#include "core/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* log1p(y) - y = sum_{n >= 2} (-1)^(n+1) y^n / n */
static double lm(double y) {
    if (fabs(y) < 0.1) {
        double term = y, sum = 0.0;
        for (int n = 2; n < 60; n++) {
            term *= -y;
            double add = term / n;
            sum += add;
            if (fabs(add) <= 1e-18 * fabs(sum)) break;
        }
        return sum;
    }
    return log1p(y) - y;
}

/* expm1(z) - z */
static double em(double z) {
    if (fabs(z) < 1.0) {
        double term = z, sum = 0.0;
        for (int n = 2; n < 40; n++) {
            term *= z / n;
            sum += term;
            if (fabs(term) <= 1e-18 * fabs(sum)) break;
        }
        return sum;
    }
    return expm1(z) - z;
}

/* D(h; w) = log1p(w expm1(-k h)) + k w h >= 0, convex in h, zero at h = 0. */
static double breg(double h, double w, double k) {
    double z = -k * h;
    if (z > 1.0) {
        if (z < 700.0) return log1p(w * expm1(z)) - w * z;
        return (1.0 - w) * z + log(w + (1.0 - w) * exp(-z));
    }
    return lm(w * expm1(z)) + w * em(z);
}

/* The root of D(h; w) = target on the side `side` (-1 or +1) of 0, as the outer end of the final
 * bisection bracket (D >= target there). +-INFINITY when the level is out of double range. */
static double breg_root(double w, double k, double target, int side) {
    if (!(target > 0.0)) return 0.0;
    double curv = k * k * w * (1.0 - w); /* D ~ curv h^2 / 2 near 0 */
    double step = sqrt(2.0 * target / curv);
    if (!(step > 0.0 && step < 1e300)) step = 1.0;
    double inner = 0.0, outer = side * step;
    int grow = 0;
    while (!(breg(outer, w, k) >= target)) {
        inner = outer;
        outer *= 2.0;
        if (++grow > 2100 || fabs(outer) > 1e300) return side > 0 ? INFINITY : -INFINITY;
    }
    for (int it = 0; it < 2200; it++) {
        double mid = 0.5 * (inner + outer);
        if (mid == inner || mid == outer) break;
        if (breg(mid, w, k) >= target) outer = mid;
        else inner = mid;
    }
    return outer;
}

static collapse_status check_lambda_classes(const char *fn, double lambda, int classes) {
    if (!isfinite(lambda) || !(lambda > 0.0))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: lambda must be a finite number > 0, got %g", fn, lambda);
    if (classes < 2)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: classes must be >= 2, got %d", fn, classes);
    return COLLAPSE_OK;
}

/* L*, t* without argument checks. Uses (C-1)(1-p)/p - 1 = sqrt(C)(1 - lambda sqrt(C))/lambda. */
static void optimal(double lambda, int classes, double *L, double *t) {
    double C = (double)classes, sc = sqrt(C);
    double one_minus = fma(-lambda, sc, 1.0); /* 1 - lambda sqrt(C) */
    if (!(one_minus > 0.0)) {
        *L = log(C);
        *t = 0.0;
        return;
    }
    double p = lambda * (C - 1.0) / sc;
    double X = sc * one_minus / lambda; /* overflows only for lambda below ~1e-300 */
    double ts = ((C - 1.0) / sc) * (isfinite(X) ? log1p(X) : log(sc * one_minus) - log(lambda));
    *t = ts;
    *L = -log1p(-p) + lambda * ts;
}

collapse_status collapse_optimal_loss(double lambda, int classes, double *loss, double *t_star) {
    COLLAPSE_TRY(check_lambda_classes("optimal_loss", lambda, classes));
    double L, t;
    optimal(lambda, classes, &L, &t);
    if (loss) *loss = L;
    if (t_star) *t_star = t;
    return COLLAPSE_OK;
}

void collapse_bound_input_defaults(collapse_bound_input *in) {
    if (!in) return;
    memset(in, 0, sizeof *in);
    in->bn = 1;
    in->q = 0.05;
    in->per_class = 0;
}

static double clamp1(double x) { return x < -1.0 ? -1.0 : (x > 1.0 ? 1.0 : x); }

/* Every bound field at its trivial value. */
static void set_trivial(collapse_bound_result *r) {
    r->guaranteed = 0;
    r->intra_cos_min = r->raw_intra_cos_min = -1.0;
    r->inter_cos_max = r->raw_inter_cos_max = 1.0;
    r->self_duality_min = r->raw_self_duality_min = -1.0;
    r->intra_cos_q_min = r->raw_intra_cos_q_min = -1.0;
    r->variability_max = INFINITY;
    r->intra_vacuous = r->inter_vacuous = 1;
    r->r_min = 0.0;
    r->r_max = INFINITY;
    r->eta = 1.0;
}

static void not_guaranteed(collapse_bound_result *r, const char *fmt, ...) COLLAPSE_PRINTF(2, 3);
static void not_guaranteed(collapse_bound_result *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    set_trivial(r);
}

static collapse_status bound_check_input(const collapse_bound_input *in, collapse_bound_result *out) {
    if (!in) return collapse_fail(COLLAPSE_ERR_ARG, "bound: input expected, got NULL");
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "bound: result expected, got NULL");
    COLLAPSE_TRY(check_lambda_classes("bound", in->lambda, in->classes));
    if (!isfinite(in->loss))
        return collapse_fail(COLLAPSE_ERR_ARG, "bound: loss must be a finite number, got %g", in->loss);
    if (in->per_class < 0 || in->per_class == 1)
        return collapse_fail(COLLAPSE_ERR_ARG,
                             "bound: per_class must be >= 2 samples per class (or 0 when unknown), got %lld",
                             (long long)in->per_class);
    if (!(in->q > 0.0 && in->q < 1.0))
        return collapse_fail(COLLAPSE_ERR_ARG, "bound: q must be a fraction in (0, 1), got %g", in->q);
    return COLLAPSE_OK;
}

/* The constants of one bound evaluation and the intermediate quantities of steps 1-5 that steps
 * 6-7 need. */
typedef struct bound_ctx {
    double lambda, loss, q, C, sc, k, nf, eps, delta;
    int classes;
    double x_lo, x_hi, s_lo, r_hi, eta, kappa_lo, kappa_hi;
} bound_ctx;

/* Steps 1-5 (docs/theory.md): the range [t_lo, t_hi] of the class-mean scale, the norms s_lo, r_hi,
 * eta and the margin interval [kappa_lo, kappa_hi]. 0 when nothing is guaranteed (reason set in r). */
static int bound_margin(bound_ctx *b, collapse_bound_result *r) {
    const double C = b->C, sc = b->sc, k = b->k, eps = b->eps, lambda = b->lambda, delta = b->delta;
    const double Ls = r->optimal_loss, ts = r->t_star;
    /* Step 1: [t_lo, t_hi] = {t >= 0 : G(t) - L* = D_{x*}(t/sqrt(C)) <= eps}. */
    const double xs = ts / sc;
    const double p = lambda * (C - 1.0) / sc; /* w(x*) */
    const double g0 = breg(-xs, p, k);        /* G(0) - L* = log C - L* */
    if (g0 <= eps) {
        not_guaranteed(r, "loss %.4g is too far above the optimum L* = %.4g (epsilon = %.4g): "
                          "G(0) = log C <= L* + epsilon, nothing is guaranteed", b->loss, Ls, eps);
        return 0;
    }
    double x_lo = xs + breg_root(p, k, eps, -1);
    double x_hi = xs + breg_root(p, k, eps, +1);
    if (x_lo < 0.0) x_lo = 0.0; /* cannot happen (g0 > eps), kept for safety */
    const double t_lo = sc * x_lo, t_hi = sc * x_hi;
    r->t_lo = t_lo;
    r->t_hi = t_hi;

    /* Step 2. */
    b->s_lo = (-delta + sqrt(delta * delta + 4.0 * t_lo)) / 2.0;
    b->r_hi = (delta + sqrt(delta * delta + 4.0 * t_hi)) / 2.0;

    /* Step 3: f(x) = x |phi'(x)| = k x w(x). */
    const double w_lo = (C - 1.0) / (exp(k * x_lo) + C - 1.0);
    const double w_hi = (C - 1.0) / (exp(k * x_hi) + C - 1.0);
    const double f_lo = k * x_lo * w_lo, f_hi = k * x_hi * w_hi;
    const double f_min = f_lo < f_hi ? f_lo : f_hi;
    double eta = eps > 0.0 ? (f_min > 0.0 ? eps / f_min : 1.0) : 0.0;
    if (eta > 1.0) eta = 1.0;
    b->eta = eta;

    /* Step 4: roots of D_{x_lo}(a) = C eps below x_lo and of D_{x_hi}(a) = C eps above x_hi. */
    const double a_lo = x_lo + breg_root(w_lo, k, C * eps, -1);
    const double a_hi = x_hi + breg_root(w_hi, k, C * eps, +1);

    /* Step 5. */
    b->kappa_lo = a_lo - (b->r_hi + 1.0) * delta;
    b->kappa_hi = a_hi + (b->r_hi + 1.0) * delta;
    r->kappa_lo = b->kappa_lo;
    r->kappa_hi = b->kappa_hi;
    b->x_lo = x_lo;
    b->x_hi = x_hi;
    if (!(b->kappa_lo > 0.0)) {
        not_guaranteed(r, "loss %.4g is too far above the optimum L* = %.4g (epsilon = %.4g): the certified "
                          "margin kappa_lo = %.4g <= 0, nothing is guaranteed", b->loss, Ls, eps, b->kappa_lo);
        return 0;
    }
    return 1;
}

/* Steps 6-7: the norm range [r_min, r_max] of the class means and the certified bounds. */
static void bound_certify(const bound_ctx *b, collapse_bound_result *r) {
    const double C = b->C, sc = b->sc, eps = b->eps, lambda = b->lambda, delta = b->delta, nf = b->nf;
    const double s_lo = b->s_lo, r_hi = b->r_hi, eta = b->eta, kappa_lo = b->kappa_lo, kappa_hi = b->kappa_hi;
    /* Step 6. */
    const double alpha_hi = r_hi / (sc * s_lo), alpha_lo = s_lo / (sc * r_hi);
    const double beta = r_hi * sqrt(2.0 * eta);
    const double r_min = 2.0 * kappa_lo / (beta + sqrt(beta * beta + 4.0 * alpha_hi * kappa_lo));
    const double r_top = sqrt(fmax(0.0, C * r_hi * r_hi - (C - 1.0) * r_min * r_min));
    const double r_ext = (beta + sqrt(beta * beta + 4.0 * alpha_lo * kappa_hi)) / (2.0 * alpha_lo);
    const double r_max = fmax(r_min, fmin(r_top, r_ext));
    r->r_min = r_min;
    r->r_max = r_max;
    r->eta = eta;

    /* Step 7. */
    const double rm2 = r_min * r_min;
    const double intra = 1.0 - nf * 8.0 * eps / (lambda * rm2);
    const double inter = -1.0 / (C - 1.0) + C * (r_max - r_min) * (r_max - r_min) / ((C - 1.0) * rm2) +
                         4.0 * delta / r_min;
    const double intra_q = 1.0 - nf * 8.0 * eps / (b->q * lambda * rm2);
    const double sd = 1.0 - eta;
    const double var = (2.0 * eps / lambda) / rm2;
    if (!(r_min > 0.0) || isnan(intra) || isnan(inter) || isnan(intra_q) || isnan(sd) || isnan(var)) {
        not_guaranteed(r, "the certificate left the range of double precision for lambda = %g, C = %d, "
                          "loss = %g; nothing is guaranteed", lambda, b->classes, b->loss);
        return;
    }
    r->guaranteed = 1;
    r->reason[0] = '\0';
    r->raw_intra_cos_min = intra;
    r->raw_inter_cos_max = inter;
    r->raw_intra_cos_q_min = intra_q;
    r->raw_self_duality_min = sd;
    r->intra_cos_min = clamp1(intra);
    r->inter_cos_max = clamp1(inter);
    r->intra_cos_q_min = clamp1(intra_q);
    r->self_duality_min = clamp1(sd);
    r->variability_max = var;
    r->intra_vacuous = intra <= -1.0;
    r->inter_vacuous = inter >= 1.0;
}

collapse_status collapse_bound(const collapse_bound_input *in, collapse_bound_result *out) {
    COLLAPSE_TRY(bound_check_input(in, out));
    bound_ctx b;
    memset(&b, 0, sizeof b);
    b.lambda = in->lambda;
    b.loss = in->loss;
    b.q = in->q;
    b.classes = in->classes;
    b.C = (double)in->classes;
    b.sc = sqrt(b.C);
    b.k = b.C / (b.C - 1.0);
    b.nf = in->per_class >= 2 ? (double)in->per_class / (double)(in->per_class - 1) : 1.0;

    collapse_bound_result r;
    memset(&r, 0, sizeof r);
    optimal(b.lambda, b.classes, &r.optimal_loss, &r.t_star);
    const double Ls = r.optimal_loss, ts = r.t_star;
    set_trivial(&r);
    r.asymptotic_intra_cos_min = -1.0;
    r.asymptotic_inter_cos_max = 1.0;
    r.delta = 0.0;
    r.t_lo = 0.0;
    r.t_hi = INFINITY;
    r.kappa_lo = 0.0;
    r.kappa_hi = INFINITY;

    if (!in->bn) {
        r.epsilon = b.loss - Ls;
        r.within_energy_max = INFINITY;
        not_guaranteed(&r, "without last-layer BN the feature norm is not penalised: inf L_reg = 0 is "
                           "approached by scaling the features up, so a near-optimal loss implies nothing "
                           "(use the model-free certificate)");
        *out = r;
        return COLLAPSE_OK;
    }
    double eps = b.loss - Ls;
    if (eps < 0.0) {
        if (-eps > 1e-12 * Ls)
            return collapse_fail(COLLAPSE_ERR_ARG,
                                 "bound: loss %.10g is below the optimal loss L* = %.10g for lambda = %g, C = %d; "
                                 "a regularised loss can never be below L* (did you pass the cross-entropy alone?)",
                                 b.loss, Ls, b.lambda, b.classes);
        eps = 0.0;
    }
    b.eps = r.epsilon = eps;
    b.delta = r.delta = sqrt(2.0 * eps / b.lambda);
    r.within_energy_max = 2.0 * eps / b.lambda;
    if (!(ts > 0.0)) {
        not_guaranteed(&r, "lambda sqrt(C) = %.4g >= 1: the optimum is the zero solution (L* = log C = %.4g), "
                           "no collapse is implied", b.lambda * b.sc, Ls);
        *out = r;
        return COLLAPSE_OK;
    }
    /* Step 8, the asymptotic form (reported whatever the certified bound says). */
    const double lt = b.lambda * ts;
    r.asymptotic_intra_cos_min = clamp1(1.0 - b.nf * 8.0 * eps / lt);
    r.asymptotic_inter_cos_max = clamp1(-1.0 / (b.C - 1.0) + 4.0 * sqrt(2.0 * eps / lt));
    if (bound_margin(&b, &r)) bound_certify(&b, &r);
    *out = r;
    return COLLAPSE_OK;
}
