/* C unit tests of the optimiser update rules (csrc/optim) against PyTorch 1.13
 * (spec/fixtures/torch/optim.txt, made by spec/fixtures/make_torch_fixtures.py), in float64
 * and float32, plus closed forms and argument errors. */
#include "check.h"
#include "fixture.h"
#include "collapse.h"


/* fixture_load, fx_get, fixture_free: tests/fixture.h */

#define N 6
static double worst64 = 0, worst32 = 0;

/* max |got - ref| / max(1, |ref|), checked against tol */
static void vs_torch(const fixture *fx, const char *name, const double *got, double tol, double *worst) {
    const double *ref = fx_get(fx, name, N);
    if (!ref) return;
    double e = 0;
    for (int i = 0; i < N; i++) {
        double d = fabs(got[i] - ref[i]) / fmax(1, fabs(ref[i]));
        if (!(d <= e)) e = d;
    }
    if (!(e <= tol)) fprintf(stderr, "vs torch: %s error %.3g (tol %g)\n", name, e, tol);
    CHECK(e <= tol);
    if (e > *worst) *worst = e;
}

/* Three steps of one configuration, float64 (f64 = 1) or float32, compared after each step. */
static void run_config(const fixture *fx, const char *cfg, int is_adam, int f64) {
    char name[96];
    snprintf(name, sizeof name, "%s.config", cfg);
    const double *c = fx_get(fx, name, is_adam ? 6 : 5);
    const double *x0 = fx_get(fx, "x0", N);
    if (!c || !x0) return;
    const double tol = f64 ? 1e-10 : 2e-6;
    double *worst = f64 ? &worst64 : &worst32;
    double x[N], s1[N] = {0}, s2[N] = {0}, got[N];
    float xf[N], s1f[N] = {0}, s2f[N] = {0};
    for (int i = 0; i < N; i++) {
        x[i] = x0[i];
        xf[i] = (float)x0[i];
    }
    int ready = 0;
    for (int t = 1; t <= 3; t++) {
        snprintf(name, sizeof name, "g%d", t);
        const double *g = fx_get(fx, name, N);
        if (!g) return;
        float gf[N];
        for (int i = 0; i < N; i++) gf[i] = (float)g[i];
        if (is_adam) {
            if (f64) CHECK_OK(collapse_adam_step_f64(N, x, g, s1, s2, t, c[0], c[1], c[2], c[3], c[4], (int)c[5]));
            else CHECK_OK(collapse_adam_step_f32(N, xf, gf, s1f, s2f, t, c[0], c[1], c[2], c[3], c[4], (int)c[5]));
        } else {
            int before = ready;
            if (f64) CHECK_OK(collapse_sgd_step_f64(N, x, g, s1, &ready, c[0], c[1], c[2], (int)c[3], c[4]));
            else CHECK_OK(collapse_sgd_step_f32(N, xf, gf, s1f, &ready, c[0], c[1], c[2], (int)c[3], c[4]));
            CHECK(ready == (c[1] != 0 ? 1 : before));
        }
        for (int i = 0; i < N; i++) got[i] = f64 ? x[i] : xf[i];
        snprintf(name, sizeof name, "%s.x%d", cfg, t);
        vs_torch(fx, name, got, tol, worst);
    }
    const char *states[2] = {is_adam ? "m3" : (c[1] != 0 ? "buf3" : NULL), is_adam ? "v3" : NULL};
    for (int k = 0; k < 2; k++) {
        if (!states[k]) continue;
        for (int i = 0; i < N; i++) got[i] = f64 ? (k ? s2 : s1)[i] : (k ? s2f : s1f)[i];
        snprintf(name, sizeof name, "%s.%s", cfg, states[k]);
        vs_torch(fx, name, got, tol, worst);
    }
}

/* Closed forms independent of the fixture. */
static void test_closed_forms(void) {
    /* plain SGD: x - lr (g + wd x); momentum buffers are optional then */
    double x[3] = {1, -2, 3}, g[3] = {0.5, 0.25, -1};
    CHECK_OK(collapse_sgd_step_f64(3, x, g, NULL, NULL, 0.1, 0, 0, 0, 0.01));
    CHECK_CLOSE(x[0], 1 - 0.1 * (0.5 + 0.01), 1e-15);
    CHECK_CLOSE(x[1], -2 - 0.1 * (0.25 - 0.02), 1e-15);
    CHECK_CLOSE(x[2], 3 - 0.1 * (-1 + 0.03), 1e-15);
    /* momentum: first step buf = d (no dampening), then buf = m buf + (1 - dampening) d */
    double y[1] = {0}, gy[1] = {1}, buf[1] = {123};
    int ready = 0;
    CHECK_OK(collapse_sgd_step_f64(1, y, gy, buf, &ready, 1, 0.9, 0.5, 0, 0));
    CHECK(ready == 1 && buf[0] == 1 && y[0] == -1);
    CHECK_OK(collapse_sgd_step_f64(1, y, gy, buf, &ready, 1, 0.9, 0.5, 0, 0));
    CHECK_CLOSE(buf[0], 0.9 + 0.5, 1e-15);
    CHECK_CLOSE(y[0], -1 - 1.4, 1e-15);
    /* Adam, first step: m = (1-b1) g, v = (1-b2) g^2, x -= lr g / (|g| + eps) (bias-corrected) */
    double a[2] = {1, 1}, ga[2] = {0.3, -2}, m[2] = {0, 0}, v[2] = {0, 0};
    CHECK_OK(collapse_adam_step_f64(2, a, ga, m, v, 1, 0.01, 0.9, 0.999, 1e-8, 0, 0));
    CHECK_CLOSE(m[0], 0.1 * 0.3, 1e-15);
    CHECK_CLOSE(v[1], 0.001 * 4, 1e-15);
    CHECK_CLOSE(a[0], 1 - 0.01 * 0.3 / (0.3 + 1e-8), 1e-13);
    CHECK_CLOSE(a[1], 1 + 0.01 * 2 / (2 + 1e-8), 1e-13);
    /* AdamW with weight_decay 0 is Adam; AdamW decays x before the moment update */
    double p[2] = {0.7, -0.2}, q[2] = {0.7, -0.2}, gp[2] = {0.1, 0.4}, m1[2] = {0}, v1[2] = {0}, m2[2] = {0},
           v2[2] = {0};
    for (int t = 1; t <= 3; t++) {
        CHECK_OK(collapse_adam_step_f64(2, p, gp, m1, v1, t, 0.05, 0.9, 0.99, 1e-8, 0, 0));
        CHECK_OK(collapse_adam_step_f64(2, q, gp, m2, v2, t, 0.05, 0.9, 0.99, 1e-8, 0, 1));
    }
    CHECK(p[0] == q[0] && p[1] == q[1]);
    double w[1] = {2}, gw[1] = {0}, mw[1] = {0}, vw[1] = {0};
    CHECK_OK(collapse_adam_step_f64(1, w, gw, mw, vw, 1, 0.1, 0.9, 0.999, 1e-8, 0.5, 1));
    CHECK_CLOSE(w[0], 2 * (1 - 0.1 * 0.5), 1e-15); /* zero gradient: only the decoupled decay */
    /* lr = 0 leaves x unchanged but still updates the state */
    double z[1] = {5}, gz[1] = {1}, mz[1] = {0}, vz[1] = {0};
    CHECK_OK(collapse_adam_step_f64(1, z, gz, mz, vz, 1, 0, 0.9, 0.999, 1e-8, 0, 0));
    CHECK(z[0] == 5 && mz[0] > 0 && vz[0] > 0);
}

static void test_errors(void) {
    double x[4] = {1, 2, 3, 4}, g[4] = {1, 1, 1, 1}, b[4] = {0}, m[4] = {0}, v[4] = {0};
    int ready = 0;
    CHECK_FAILS(collapse_sgd_step_f64(4, x, g, b, &ready, 0.1, 0, 0, 1, 0),
                "sgd_step: nesterov momentum requires a momentum > 0 and zero dampening, got momentum 0 and dampening 0");
    CHECK_FAILS(collapse_sgd_step_f64(4, x, g, b, &ready, 0.1, 0.9, 0.1, 1, 0),
                "sgd_step: nesterov momentum requires a momentum > 0 and zero dampening, got momentum 0.9 and dampening 0.1");
    CHECK_FAILS(collapse_sgd_step_f64(4, x, g, b, &ready, -0.1, 0, 0, 0, 0),
                "sgd_step: lr must be a finite number >= 0, got -0.1");
    CHECK_FAILS(collapse_sgd_step_f64(4, x, g, b, &ready, NAN, 0, 0, 0, 0), "sgd_step: lr must be a finite number >= 0");
    CHECK_FAILS(collapse_sgd_step_f64(4, x, g, b, &ready, 0.1, 0, 0, 0, -1e-4),
                "sgd_step: weight_decay must be a finite number >= 0, got -0.0001");
    CHECK_FAILS(collapse_sgd_step_f64(4, x, g, b, &ready, 0.1, -0.5, 0, 0, 0),
                "sgd_step: momentum must be a finite number >= 0, got -0.5");
    CHECK_FAILS(collapse_sgd_step_f64(4, x, g, NULL, &ready, 0.1, 0.9, 0, 0, 0),
                "sgd_step: momentum_buf is NULL, expected a [4] array");
    CHECK_FAILS(collapse_sgd_step_f64(4, x, g, b, NULL, 0.1, 0.9, 0, 0, 0), "sgd_step: buf_ready is NULL");
    CHECK_FAILS(collapse_sgd_step_f32(0, NULL, NULL, NULL, NULL, 0.1, 0, 0, 0, 0), "sgd_step: n must be positive, got 0");
    CHECK_FAILS(collapse_sgd_step_f64(4, x, NULL, b, &ready, 0.1, 0, 0, 0, 0), "sgd_step: grad is NULL");
    CHECK_FAILS(collapse_adam_step_f64(4, x, g, m, v, 0, 1e-3, 0.9, 0.999, 1e-8, 0, 0),
                "adam_step: step must be >= 1 (1-based, incremented before the call), got 0");
    CHECK_FAILS(collapse_adam_step_f64(4, x, g, m, v, 1, 1e-3, 1.0, 0.999, 1e-8, 0, 0),
                "adam_step: beta1 must be in [0, 1), got 1");
    CHECK_FAILS(collapse_adam_step_f64(4, x, g, m, v, 1, 1e-3, 0.9, -0.1, 1e-8, 0, 1),
                "adamw_step: beta2 must be in [0, 1), got -0.1");
    CHECK_FAILS(collapse_adam_step_f64(4, x, g, m, v, 1, 1e-3, 0.9, 0.999, -1e-8, 0, 0),
                "adam_step: eps must be a finite number >= 0, got -1e-08");
    CHECK_FAILS(collapse_adam_step_f64(4, x, g, m, v, 1, -1e-3, 0.9, 0.999, 1e-8, 0, 0),
                "adam_step: lr must be a finite number >= 0, got -0.001");
    CHECK_FAILS(collapse_adam_step_f64(4, x, g, m, v, 1, 1e-3, 0.9, 0.999, 1e-8, -5e-4, 0),
                "adam_step: weight_decay must be a finite number >= 0, got -0.0005");
    CHECK_FAILS(collapse_adam_step_f64(4, x, g, NULL, v, 1, 1e-3, 0.9, 0.999, 1e-8, 0, 0),
                "adam_step: exp_avg is NULL, expected a [4] array");
    CHECK_FAILS(collapse_adam_step_f32(4, NULL, NULL, NULL, NULL, 1, 1e-3, 0.9, 0.999, 1e-8, 0, 0),
                "adam_step: x is NULL");
    /* nothing was written by the failing calls */
    CHECK(x[0] == 1 && x[3] == 4 && b[0] == 0 && m[0] == 0 && v[0] == 0 && ready == 0);
}

int main(void) {
    fixture fx;
    CHECK(fixture_load(&fx, "spec/fixtures/torch/optim.txt"));
    if (fx.n) {
        const char *sgd[] = {"sgd_momentum", "sgd_nesterov", "sgd_plain", "sgd_nowd"};
        const char *adam[] = {"adam", "adamw", "adam_betas"};
        for (int f64 = 0; f64 < 2; f64++) {
            for (int k = 0; k < 4; k++) run_config(&fx, sgd[k], 0, f64);
            for (int k = 0; k < 3; k++) run_config(&fx, adam[k], 1, f64);
        }
    }
    fixture_free(&fx);
    test_closed_forms();
    test_errors();
    printf("max error vs torch: float64 %.3g, float32 %.3g\n", worst64, worst32);
    return check_report("test_optim");
}
