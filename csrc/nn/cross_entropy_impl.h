/* Generic fused softmax cross-entropy (instantiated by nn/cross_entropy.c). grad may equal
 * logits (each element is read before it is written), so that pair is not restrict. */

collapse_status CL_FN(collapse_cross_entropy_forward)(int64_t n, int64_t C, const real *logits,
                                                      const int32_t *labels, double *loss_mean, real *grad) {
    static const char fn[] = "cross_entropy_forward";
    COLLAPSE_TRY(cl_need_size(fn, "n", n, 0));
    COLLAPSE_TRY(cl_need_size(fn, "classes", C, 1));
    COLLAPSE_TRY(cl_need_ptr(fn, "logits", logits, n, C));
    COLLAPSE_TRY(cl_need_ptr(fn, "labels", labels, n, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "loss_mean", loss_mean, 1, 0));
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 1 || labels[i] > C)
            return collapse_fail(COLLAPSE_ERR_RANGE, "cross_entropy: label %d at position %lld is outside 1..%lld",
                                 (int)labels[i], (long long)i, (long long)C); /* 0-based, the C convention */
    const double inv_n = 1.0 / (double)n;
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        const real *z = logits + i * C;
        const int64_t l = labels[i] - 1;
        real mx = z[0];
        for (int64_t j = 1; j < C; j++) mx = z[j] > mx ? z[j] : mx;
        const real zl = z[l];
        double s = 0;
        if (grad) {
            real *g = grad + i * C;
            for (int64_t j = 0; j < C; j++) {
                real e = CL_EXP(z[j] - mx);
                g[j] = e;
                s += e;
            }
            /* (softmax - onehot) / n */
            const real sc = (real)(inv_n / s);
            for (int64_t j = 0; j < C; j++) g[j] *= sc;
            g[l] -= (real)inv_n;
        } else {
            for (int64_t j = 0; j < C; j++) s += CL_EXP(z[j] - mx);
        }
        /* -log softmax(z)[l] = (max - z[l]) + log sum exp(z - max) */
        total += ((double)mx - (double)zl) + log(s);
    }
    *loss_mean = total * inv_n;
    return COLLAPSE_OK;
}
