/* Tensor arithmetic, reductions and matmul (BLAS). */
#include "core/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CL_DOUBLE 0
#include "core/generic.h"
#include "core/tensor_math_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "core/tensor_math_impl.h"
#include "core/generic_end.h"

static const char *binop_name(collapse_binop op) {
    switch (op) {
    case COLLAPSE_ADD: return "add";
    case COLLAPSE_SUB: return "sub";
    case COLLAPSE_MUL: return "mul";
    case COLLAPSE_DIV: return "div";
    }
    return "binop";
}

static collapse_status need_float(const char *fn, const char *arg, const collapse_tensor *t) {
    if (t->dtype != COLLAPSE_FLOAT32 && t->dtype != COLLAPSE_FLOAT64)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: %s must be a float32 or float64 tensor, got %s", fn, arg,
                             collapse_dtype_name(t->dtype));
    return COLLAPSE_OK;
}

/* A contiguous tensor of t's values (t itself, retained, when already contiguous). */
static collapse_status dense(const collapse_tensor *t, collapse_tensor **out) {
    return collapse_tensor_contiguous((collapse_tensor *)t, out);
}

collapse_status collapse_tensor_binop(collapse_binop op, const collapse_tensor *t, const collapse_tensor *u,
                                      collapse_tensor **out) {
    const char *fn = binop_name(op);
    COLLAPSE_TRY(need_float(fn, "self", t));
    COLLAPSE_TRY(need_float(fn, "argument", u));
    if (t->dtype != u->dtype)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: dtype mismatch, %s and %s (convert one with :to())", fn,
                             collapse_dtype_name(t->dtype), collapse_dtype_name(u->dtype));
    int64_t n = collapse_tensor_numel(t), nb = collapse_tensor_numel(u);
    int ok = nb == 1 || (nb == n && u->ndim == t->ndim);
    if (nb == n && u->ndim == t->ndim)
        for (int d = 0; d < t->ndim; d++) ok = ok && t->shape[d] == u->shape[d];
    if (!ok && u->ndim <= t->ndim && nb > 0) { /* trailing-dimension broadcast */
        ok = 1;
        for (int d = 0; d < u->ndim; d++) ok = ok && u->shape[d] == t->shape[t->ndim - u->ndim + d];
    }
    if (!ok) {
        char a[SHAPE_BUF], b[SHAPE_BUF];
        return collapse_fail(COLLAPSE_ERR_SHAPE,
                             "%s: size mismatch, %s and %s (shapes must match, or the second must be a "
                             "single element or match the trailing dimensions)",
                             fn, cl_shape_str(t->ndim, t->shape, a, sizeof a), cl_shape_str(u->ndim, u->shape, b, sizeof b));
    }
    collapse_tensor *a, *b;
    COLLAPSE_TRY(dense(t, &a));
    collapse_status s = dense(u, &b);
    if (s == COLLAPSE_OK) s = collapse_tensor_new(t->dtype, t->ndim, t->shape, out);
    if (s == COLLAPSE_OK && n > 0) {
        if (t->dtype == COLLAPSE_FLOAT32)
            binop_loop_f32(op, n, collapse_tensor_data(a), nb, collapse_tensor_data(b), collapse_tensor_data(*out));
        else
            binop_loop_f64(op, n, collapse_tensor_data(a), nb, collapse_tensor_data(b), collapse_tensor_data(*out));
    }
    collapse_tensor_release(a);
    collapse_tensor_release(b);
    return s;
}

collapse_status collapse_tensor_binop_scalar(collapse_binop op, const collapse_tensor *t, double v, int scalar_first,
                                             collapse_tensor **out) {
    COLLAPSE_TRY(need_float(binop_name(op), "self", t));
    collapse_tensor *a;
    COLLAPSE_TRY(dense(t, &a));
    collapse_status s = collapse_tensor_new(t->dtype, t->ndim, t->shape, out);
    if (s == COLLAPSE_OK) {
        int64_t n = collapse_tensor_numel(t);
        if (t->dtype == COLLAPSE_FLOAT32)
            scalar_loop_f32(op, n, collapse_tensor_data(a), (float)v, scalar_first, collapse_tensor_data(*out));
        else
            scalar_loop_f64(op, n, collapse_tensor_data(a), v, scalar_first, collapse_tensor_data(*out));
    }
    collapse_tensor_release(a);
    return s;
}

collapse_status collapse_tensor_neg(const collapse_tensor *t, collapse_tensor **out) {
    return collapse_tensor_binop_scalar(COLLAPSE_MUL, t, -1.0, 0, out);
}

collapse_status collapse_tensor_sum_all(const collapse_tensor *t, double *out) {
    int64_t n = collapse_tensor_numel(t);
    double acc = 0;
    for (int64_t k = 0; k < n; k++) acc += cl_storage_read(t, tensor_elem_offset(t, k));
    *out = acc;
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_max_all(const collapse_tensor *t, double *out) {
    int64_t n = collapse_tensor_numel(t);
    if (n == 0) return collapse_fail(COLLAPSE_ERR_SHAPE, "max: the tensor is empty");
    double m = cl_storage_read(t, tensor_elem_offset(t, 0));
    for (int64_t k = 1; k < n; k++) {
        double v = cl_storage_read(t, tensor_elem_offset(t, k));
        if (v > m || v != v) m = v;
    }
    *out = m;
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_norm(const collapse_tensor *t, double *out) {
    int64_t n = collapse_tensor_numel(t);
    double acc = 0;
    for (int64_t k = 0; k < n; k++) {
        double v = cl_storage_read(t, tensor_elem_offset(t, k));
        acc += v * v;
    }
    *out = sqrt(acc);
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_dot(const collapse_tensor *t, const collapse_tensor *u, double *out) {
    int64_t n = collapse_tensor_numel(t);
    if (n != collapse_tensor_numel(u)) {
        char a[SHAPE_BUF], b[SHAPE_BUF];
        return collapse_fail(COLLAPSE_ERR_SHAPE, "dot: size mismatch, %s and %s",
                             cl_shape_str(t->ndim, t->shape, a, sizeof a), cl_shape_str(u->ndim, u->shape, b, sizeof b));
    }
    double acc = 0;
    for (int64_t k = 0; k < n; k++)
        acc += cl_storage_read(t, tensor_elem_offset(t, k)) * cl_storage_read(u, tensor_elem_offset(u, k));
    *out = acc;
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_reduce(const collapse_tensor *t, collapse_reduce op, int dim, collapse_tensor **out) {
    static const char *names[] = {"sum", "mean", "max", "argmax"};
    const char *fn = names[op];
    if (dim < 0 || dim >= t->ndim)
        return collapse_fail(COLLAPSE_ERR_RANGE, "%s: dimension %d out of range for a %d-d tensor", fn, dim + 1,
                             t->ndim);
    if ((op == COLLAPSE_MAX || op == COLLAPSE_ARGMAX) && t->shape[dim] == 0)
        return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: dimension %d is empty", fn, dim + 1);
    int64_t shape[COLLAPSE_MAX_DIMS], outer = 1, inner = 1;
    int k = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (d < dim) outer *= t->shape[d];
        if (d > dim) inner *= t->shape[d];
        if (d != dim) shape[k++] = t->shape[d];
    }
    collapse_tensor *a;
    if (t->dtype == COLLAPSE_INT32) COLLAPSE_TRY(collapse_tensor_to(t, COLLAPSE_FLOAT64, &a));
    else COLLAPSE_TRY(dense(t, &a));
    collapse_dtype odt = op == COLLAPSE_ARGMAX ? COLLAPSE_INT32 : a->dtype;
    collapse_status s = collapse_tensor_new(odt, t->ndim - 1, shape, out);
    if (s == COLLAPSE_OK) {
        if (a->dtype == COLLAPSE_FLOAT32)
            reduce_loop_f32(op, outer, t->shape[dim], inner, collapse_tensor_data(a), collapse_tensor_data(*out));
        else
            reduce_loop_f64(op, outer, t->shape[dim], inner, collapse_tensor_data(a), collapse_tensor_data(*out));
    }
    collapse_tensor_release(a);
    if (s == COLLAPSE_OK && t->dtype == COLLAPSE_INT32 && op != COLLAPSE_ARGMAX) {
        collapse_tensor *r;
        s = collapse_tensor_to(*out, op == COLLAPSE_MEAN ? COLLAPSE_FLOAT64 : COLLAPSE_INT32, &r);
        collapse_tensor_release(*out);
        *out = s == COLLAPSE_OK ? r : NULL;
    }
    return s;
}

/* How to hand a 2-d operand to gemm: row-major with leading dimension ld, or transposed. */
static int gemm_layout(const collapse_tensor *m, CBLAS_TRANSPOSE *trans, int64_t *ld) {
    int64_t r = m->shape[0], c = m->shape[1];
    if (m->strides[1] == 1 && (m->strides[0] >= (c > 1 ? c : 1) || r == 1)) {
        *trans = CblasNoTrans;
        *ld = r == 1 ? (c > 1 ? c : 1) : m->strides[0];
        return 1;
    }
    if (m->strides[0] == 1 && (m->strides[1] >= (r > 1 ? r : 1) || c == 1)) {
        *trans = CblasTrans;
        *ld = c == 1 ? (r > 1 ? r : 1) : m->strides[1];
        return 1;
    }
    return 0;
}

collapse_status collapse_matmul(const collapse_tensor *a, const collapse_tensor *b, collapse_tensor **out) {
    COLLAPSE_TRY(need_float("matmul", "self", a));
    COLLAPSE_TRY(need_float("matmul", "argument", b));
    char sa[SHAPE_BUF], sb[SHAPE_BUF];
    if (a->dtype != b->dtype)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "matmul: dtype mismatch, %s @ %s (convert one with :to())",
                             collapse_dtype_name(a->dtype), collapse_dtype_name(b->dtype));
    if (a->ndim < 1 || a->ndim > 2 || b->ndim < 1 || b->ndim > 2)
        return collapse_fail(COLLAPSE_ERR_SHAPE, "matmul: expected 1-d or 2-d tensors, got %s @ %s",
                             cl_shape_str(a->ndim, a->shape, sa, sizeof sa), cl_shape_str(b->ndim, b->shape, sb, sizeof sb));
    /* Promote vectors to 1 x k / k x 1 views (strides carry over), then squeeze the result. */
    collapse_tensor A = *a, B = *b;
    if (a->ndim == 1) {
        A.ndim = 2; A.shape[0] = 1; A.shape[1] = a->shape[0]; A.strides[0] = a->shape[0] * a->strides[0]; A.strides[1] = a->strides[0];
    }
    if (b->ndim == 1) {
        B.ndim = 2; B.shape[0] = b->shape[0]; B.shape[1] = 1; B.strides[0] = b->strides[0]; B.strides[1] = 1;
    }
    int64_t m = A.shape[0], k = A.shape[1], n = B.shape[1];
    if (B.shape[0] != k)
        return collapse_fail(COLLAPSE_ERR_SHAPE, "matmul: size mismatch, %s @ %s",
                             cl_shape_str(a->ndim, a->shape, sa, sizeof sa), cl_shape_str(b->ndim, b->shape, sb, sizeof sb));
    int64_t oshape[2] = {m, n};
    int ond = 2;
    if (a->ndim == 1 && b->ndim == 1) ond = 0;
    else if (a->ndim == 1) { oshape[0] = n; ond = 1; }
    else if (b->ndim == 1) { oshape[0] = m; ond = 1; }
    COLLAPSE_TRY(collapse_tensor_new(a->dtype, ond, oshape, out));
    if (m == 0 || n == 0 || k == 0) return COLLAPSE_OK; /* zeros */
    /* Operands that BLAS cannot read in place (general strides) are copied once. */
    collapse_tensor *ca = NULL, *cb = NULL;
    CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
    int64_t lda = 1, ldb = 1;
    collapse_status s = COLLAPSE_OK;
    const collapse_tensor *pa = &A, *pb = &B;
    if (!gemm_layout(&A, &ta, &lda)) {
        s = collapse_tensor_clone(&A, &ca);
        pa = ca;
        if (s == COLLAPSE_OK) gemm_layout(ca, &ta, &lda);
    }
    if (s == COLLAPSE_OK && !gemm_layout(&B, &tb, &ldb)) {
        s = collapse_tensor_clone(&B, &cb);
        pb = cb;
        if (s == COLLAPSE_OK) gemm_layout(cb, &tb, &ldb);
    }
    if (s == COLLAPSE_OK) {
        if (a->dtype == COLLAPSE_FLOAT32)
            cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1.0f, (const float *)tensor_ptr(pa), (int)lda,
                        (const float *)tensor_ptr(pb), (int)ldb, 0.0f, (float *)tensor_ptr(*out), (int)n);
        else
            cblas_dgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1.0, (const double *)tensor_ptr(pa), (int)lda,
                        (const double *)tensor_ptr(pb), (int)ldb, 0.0, (double *)tensor_ptr(*out), (int)n);
    } else {
        collapse_tensor_release(*out);
        *out = NULL;
    }
    collapse_tensor_release(ca);
    collapse_tensor_release(cb);
    return s;
}

collapse_status collapse_count_correct(const collapse_tensor *logits, const collapse_tensor *labels, int64_t *correct) {
    char a[SHAPE_BUF], b[SHAPE_BUF];
    COLLAPSE_TRY(need_float("count_correct", "logits", logits));
    if (logits->ndim != 2 || labels->ndim != 1 || labels->shape[0] != logits->shape[0] ||
        labels->dtype != COLLAPSE_INT32)
        return collapse_fail(COLLAPSE_ERR_SHAPE, "count_correct: expected logits [n x C] and int32 labels [n], got %s and %s %s",
                             cl_shape_str(logits->ndim, logits->shape, a, sizeof a), collapse_dtype_name(labels->dtype),
                             cl_shape_str(labels->ndim, labels->shape, b, sizeof b));
    int64_t n = logits->shape[0], c = logits->shape[1], count = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        double bv = cl_storage_read(logits, logits->offset + i * logits->strides[0]);
        for (int64_t j = 1; j < c; j++) {
            double v = cl_storage_read(logits, logits->offset + i * logits->strides[0] + j * logits->strides[1]);
            if (v > bv) { bv = v; best = j; }
        }
        if ((int64_t)cl_storage_read(labels, labels->offset + i * labels->strides[0]) == best + 1) count++;
    }
    *correct = count;
    return COLLAPSE_OK;
}
