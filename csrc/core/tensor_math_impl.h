/* Generic elementwise and reduction loops (instantiated for float and double by tensor_math.c). */

/* out[i] = a[i] op b[i % nb]: nb == n (same shape), 1 (scalar) or a trailing block (bias row). */
static void CL_FN(binop_loop)(collapse_binop op, int64_t n, const real *restrict a, int64_t nb,
                              const real *restrict b, real *restrict out) {
    if (nb == n) {
        switch (op) {
        case COLLAPSE_ADD: for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i]; break;
        case COLLAPSE_SUB: for (int64_t i = 0; i < n; i++) out[i] = a[i] - b[i]; break;
        case COLLAPSE_MUL: for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i]; break;
        case COLLAPSE_DIV: for (int64_t i = 0; i < n; i++) out[i] = a[i] / b[i]; break;
        }
        return;
    }
    for (int64_t r = 0; r < n; r += nb) {
        const real *x = a + r;
        real *y = out + r;
        switch (op) {
        case COLLAPSE_ADD: for (int64_t i = 0; i < nb; i++) y[i] = x[i] + b[i]; break;
        case COLLAPSE_SUB: for (int64_t i = 0; i < nb; i++) y[i] = x[i] - b[i]; break;
        case COLLAPSE_MUL: for (int64_t i = 0; i < nb; i++) y[i] = x[i] * b[i]; break;
        case COLLAPSE_DIV: for (int64_t i = 0; i < nb; i++) y[i] = x[i] / b[i]; break;
        }
    }
}

static void CL_FN(scalar_loop)(collapse_binop op, int64_t n, const real *restrict a, real s, int first,
                               real *restrict out) {
    switch (op) {
    case COLLAPSE_ADD: for (int64_t i = 0; i < n; i++) out[i] = a[i] + s; break;
    case COLLAPSE_MUL: for (int64_t i = 0; i < n; i++) out[i] = a[i] * s; break;
    case COLLAPSE_SUB:
        if (first) for (int64_t i = 0; i < n; i++) out[i] = s - a[i];
        else for (int64_t i = 0; i < n; i++) out[i] = a[i] - s;
        break;
    case COLLAPSE_DIV:
        if (first) for (int64_t i = 0; i < n; i++) out[i] = s / a[i];
        else for (int64_t i = 0; i < n; i++) out[i] = a[i] / s;
        break;
    }
}

/* Reduce a contiguous [outer x len x inner] block along len. */
static void CL_FN(reduce_loop)(collapse_reduce op, int64_t outer, int64_t len, int64_t inner,
                               const real *restrict a, void *out) {
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < inner; j++) {
            const real *p = a + o * len * inner + j;
            double acc = 0;
            int64_t best = 0;
            if (op == COLLAPSE_MAX || op == COLLAPSE_ARGMAX) {
                acc = p[0];
                for (int64_t k = 1; k < len; k++)
                    if (p[k * inner] > acc || (acc != acc)) { acc = p[k * inner]; best = k; }
            } else {
                for (int64_t k = 0; k < len; k++) acc += p[k * inner];
                if (op == COLLAPSE_MEAN) acc /= (double)len;
            }
            if (op == COLLAPSE_ARGMAX) ((int32_t *)out)[o * inner + j] = (int32_t)(best + 1);
            else ((real *)out)[o * inner + j] = (real)acc;
        }
    }
}
