/* Tensor creation, reference counting, views and element access. */
#define _DEFAULT_SOURCE /* MADV_HUGEPAGE (Linux); the build asks only for POSIX otherwise */
#include "core/tensor.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static _Atomic int64_t bytes_in_use = 0;

int64_t collapse_bytes_in_use(void) { return atomic_load(&bytes_in_use); }

const char *cl_shape_str(int ndim, const int64_t *shape, char *buf, size_t len) {
    size_t used = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? " x %lld" : "%lld", (long long)shape[i]);
    if (used < len) snprintf(buf + used, len - used, ndim ? "]" : "scalar]"); /* a 0-d shape: "[scalar]" */
    return buf;
}

static collapse_status check_shape(const char *fn, int ndim, const int64_t *shape, int64_t *numel) {
    if (ndim < 0 || ndim > COLLAPSE_MAX_DIMS)
        return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: expected 0 to %d dimensions, got %d", fn,
                             COLLAPSE_MAX_DIMS, ndim);
    if (ndim > 0 && !shape) return collapse_fail(COLLAPSE_ERR_ARG, "%s: shape is NULL", fn);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: size %lld of dimension %d is negative", fn,
                                 (long long)shape[i], i + 1);
        if (shape[i] > 0 && n > INT64_MAX / 8 / shape[i])
            return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: shape is too large", fn);
        n *= shape[i];
    }
    *numel = n;
    return COLLAPSE_OK;
}

/* Large arrays ask the kernel for transparent huge pages (Debian's default THP mode is "madvise":
 * only memory that asks gets them). A 2 MB page covers what 512 ordinary pages do, so streaming
 * over features of 100 MB or more takes far fewer TLB misses (nc.measure on 60,000 x 512: about
 * 4.5 % faster on this Intel machine, bench/README.md). Only the 2 MB-aligned interior of the
 * block is advised; the advice is a hint, and any failure (no THP, another OS) leaves ordinary
 * pages. Called before the pages are first touched, so faults allocate huge pages directly. */
void cl_advise_huge_pages(void *p, size_t nbytes) {
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (!p || nbytes < 2 * huge) return;
    uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1), hi = ((uintptr_t)p + nbytes) & ~(huge - 1);
    if (hi > lo) (void)madvise((void *)lo, (size_t)(hi - lo), MADV_HUGEPAGE);
#else
    (void)p;
    (void)nbytes;
#endif
}

static collapse_status storage_new(const char *fn, size_t nbytes, collapse_storage **out) {
    collapse_storage *s = malloc(sizeof *s);
    if (!s) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    /* calloc: new tensors are zero-filled; +1 byte so empty tensors still own a pointer. */
    s->data = calloc(nbytes ? nbytes : 1, 1);
    if (!s->data) {
        free(s);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory allocating %zu bytes", fn, nbytes);
    }
    cl_advise_huge_pages(s->data, nbytes);
    s->nbytes = nbytes;
    s->refcount = 1;
    atomic_fetch_add(&bytes_in_use, (int64_t)nbytes);
    *out = s;
    return COLLAPSE_OK;
}

static void storage_release(collapse_storage *s) {
    if (s && --s->refcount == 0) {
        atomic_fetch_sub(&bytes_in_use, (int64_t)s->nbytes);
        free(s->data);
        free(s);
    }
}

static void set_contiguous_strides(collapse_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->strides[d] = st;
        /* Saturates: a shape with a 0 among its outer sizes (numel 0, so nothing is allocated) may
         * have inner sizes whose product does not fit in int64; such strides are never used. */
        if (__builtin_mul_overflow(st, t->shape[d], &st)) st = INT64_MAX;
    }
}

/* Fills a new tensor object over storage st: contiguous, one reference. */
static void tensor_init(collapse_tensor *t, collapse_storage *st, collapse_dtype dtype, int ndim,
                        const int64_t *shape) {
    t->storage = st;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    set_contiguous_strides(t);
    t->refcount = 1;
}

static collapse_status tensor_alloc(const char *fn, collapse_dtype dtype, int ndim, const int64_t *shape,
                                    collapse_tensor **out) {
    if (dtype != COLLAPSE_FLOAT32 && dtype != COLLAPSE_FLOAT64 && dtype != COLLAPSE_INT32)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dtype);
    int64_t numel = 0;
    COLLAPSE_TRY(check_shape(fn, ndim, shape, &numel));
    collapse_tensor *t = calloc(1, sizeof *t);
    if (!t) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    collapse_storage *st = NULL;
    collapse_status s = storage_new(fn, (size_t)numel * collapse_dtype_size(dtype), &st);
    if (s != COLLAPSE_OK) {
        free(t);
        return s;
    }
    tensor_init(t, st, dtype, ndim, shape);
    *out = t;
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_new(collapse_dtype dtype, int ndim, const int64_t *shape, collapse_tensor **out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "tensor_new: out is NULL");
    return tensor_alloc("tensor_new", dtype, ndim, shape, out);
}

collapse_status collapse_tensor_from_data(collapse_dtype dtype, int ndim, const int64_t *shape, const void *data,
                                          collapse_tensor **out) {
    if (!out || !data) return collapse_fail(COLLAPSE_ERR_ARG, "tensor_from_data: data and out must not be NULL");
    COLLAPSE_TRY(tensor_alloc("tensor_from_data", dtype, ndim, shape, out));
    memcpy((*out)->storage->data, data, (*out)->storage->nbytes);
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_adopt(collapse_dtype dtype, int ndim, const int64_t *shape, void *data,
                                     collapse_tensor **out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "tensor_adopt: out is NULL");
    if (dtype != COLLAPSE_FLOAT32 && dtype != COLLAPSE_FLOAT64 && dtype != COLLAPSE_INT32)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "tensor_adopt: unknown dtype %d", (int)dtype);
    int64_t numel = 0;
    COLLAPSE_TRY(check_shape("tensor_adopt", ndim, shape, &numel));
    if (!data && numel > 0) return collapse_fail(COLLAPSE_ERR_ARG, "tensor_adopt: data is NULL");
    collapse_tensor *t = calloc(1, sizeof *t);
    collapse_storage *st = malloc(sizeof *st);
    if (!t || !st) {
        free(t);
        free(st);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "tensor_adopt: out of memory");
    }
    size_t nbytes = (size_t)numel * collapse_dtype_size(dtype);
    st->data = data ? data : malloc(1);
    if (!st->data) {
        free(t);
        free(st);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "tensor_adopt: out of memory");
    }
    st->nbytes = nbytes;
    st->refcount = 1;
    atomic_fetch_add(&bytes_in_use, (int64_t)nbytes);
    tensor_init(t, st, dtype, ndim, shape);
    *out = t;
    return COLLAPSE_OK;
}

/* Capacity-keeping resize (torch's output:resize): the storage is reused when it holds the new
 * element count, else replaced; contents are unspecified after a shape change. Views are refused
 * (resizing one would write over, or detach from, storage another tensor owns). */
collapse_status collapse_tensor_resize(collapse_tensor *t, int ndim, const int64_t *shape) {
    const char *fn = "tensor_resize";
    if (!t) return collapse_fail(COLLAPSE_ERR_ARG, "%s: tensor is NULL", fn);
    int64_t numel = 0;
    COLLAPSE_TRY(check_shape(fn, ndim, shape, &numel));
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (same && collapse_tensor_is_contiguous(t)) return COLLAPSE_OK;
    if (t->view)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: cannot resize a view (reshape, narrow, row, ...) that shares "
                             "another tensor's storage; resize a tensor made by zeros/clone", fn);
    if (!collapse_tensor_is_contiguous(t))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: cannot resize a non-contiguous tensor", fn);
    size_t nbytes = (size_t)numel * tensor_elem_size(t);
    if (nbytes > t->storage->nbytes) {
        collapse_storage *st = NULL;
        COLLAPSE_TRY(storage_new(fn, nbytes, &st));
        storage_release(t->storage);
        t->storage = st;
        t->offset = 0;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    set_contiguous_strides(t);
    return COLLAPSE_OK;
}

collapse_tensor *collapse_tensor_retain(collapse_tensor *t) {
    if (t) t->refcount++;
    return t;
}

void collapse_tensor_release(collapse_tensor *t) {
    if (t && --t->refcount == 0) {
        storage_release(t->storage);
        free(t);
    }
}

collapse_dtype collapse_tensor_dtype(const collapse_tensor *t) { return t->dtype; }
int collapse_tensor_ndim(const collapse_tensor *t) { return t->ndim; }
int64_t collapse_tensor_size(const collapse_tensor *t, int dim) {
    return (dim >= 0 && dim < t->ndim) ? t->shape[dim] : -1;
}
const int64_t *collapse_tensor_shape(const collapse_tensor *t) { return t->shape; }
const int64_t *collapse_tensor_strides(const collapse_tensor *t) { return t->strides; }
int64_t collapse_tensor_numel(const collapse_tensor *t) { return shape_numel(t->ndim, t->shape); }
void *collapse_tensor_data(const collapse_tensor *t) { return tensor_ptr(t); }

int collapse_tensor_is_contiguous(const collapse_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->strides[d] != st) return 0;
        st *= t->shape[d];
    }
    return 1;
}

/* A view object sharing t's storage. */
static collapse_status view_of(const char *fn, collapse_tensor *t, collapse_tensor **out) {
    collapse_tensor *v = malloc(sizeof *v);
    if (!v) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    *v = *t;
    v->refcount = 1;
    v->view = 1;
    v->storage->refcount++;
    *out = v;
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_contiguous(collapse_tensor *t, collapse_tensor **out) {
    if (collapse_tensor_is_contiguous(t)) {
        *out = collapse_tensor_retain(t);
        return COLLAPSE_OK;
    }
    return collapse_tensor_clone(t, out);
}

collapse_status collapse_tensor_reshape(collapse_tensor *t, int ndim, const int64_t *shape, collapse_tensor **out) {
    if (ndim < 0 || ndim > COLLAPSE_MAX_DIMS)
        return collapse_fail(COLLAPSE_ERR_SHAPE, "reshape: expected 0 to %d dimensions, got %d",
                             COLLAPSE_MAX_DIMS, ndim);
    int64_t sh[COLLAPSE_MAX_DIMS], known = 1, numel = collapse_tensor_numel(t);
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        sh[i] = shape[i];
        if (sh[i] == -1 && infer < 0) infer = i;
        else if (sh[i] < 0)
            return collapse_fail(COLLAPSE_ERR_SHAPE, "reshape: size %lld of dimension %d is invalid",
                                 (long long)sh[i], i + 1);
        else known *= sh[i];
    }
    if (infer >= 0) {
        if (known == 0 || numel % known)
            return collapse_fail(COLLAPSE_ERR_SHAPE, "reshape: cannot infer dimension %d for %lld elements",
                                 infer + 1, (long long)numel);
        sh[infer] = numel / known;
        known *= sh[infer];
    }
    if (known != numel) {
        char a[SHAPE_BUF], b[SHAPE_BUF];
        return collapse_fail(COLLAPSE_ERR_SHAPE, "reshape: cannot view %s (%lld elements) as %s (%lld elements)",
                             cl_shape_str(t->ndim, t->shape, a, sizeof a), (long long)numel,
                             cl_shape_str(ndim, sh, b, sizeof b), (long long)known);
    }
    collapse_tensor *src;
    COLLAPSE_TRY(collapse_tensor_contiguous(t, &src));
    collapse_status s = view_of("reshape", src, out);
    collapse_tensor_release(src);
    if (s != COLLAPSE_OK) return s;
    (*out)->ndim = ndim;
    for (int i = 0; i < ndim; i++) (*out)->shape[i] = sh[i];
    set_contiguous_strides(*out);
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_transpose(collapse_tensor *t, collapse_tensor **out) {
    if (t->ndim != 2) {
        char a[SHAPE_BUF];
        return collapse_fail(COLLAPSE_ERR_SHAPE, "t: expected a 2-d tensor, got %s",
                             cl_shape_str(t->ndim, t->shape, a, sizeof a));
    }
    COLLAPSE_TRY(view_of("t", t, out));
    (*out)->shape[0] = t->shape[1];
    (*out)->shape[1] = t->shape[0];
    (*out)->strides[0] = t->strides[1];
    (*out)->strides[1] = t->strides[0];
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_select(collapse_tensor *t, int dim, int64_t index, collapse_tensor **out) {
    if (dim < 0 || dim >= t->ndim)
        return collapse_fail(COLLAPSE_ERR_RANGE, "select: dimension %d out of range for a %d-d tensor", dim + 1,
                             t->ndim);
    if (index < 0 || index >= t->shape[dim])
        return collapse_fail(COLLAPSE_ERR_RANGE, "select: index %lld out of range 1..%lld", (long long)index + 1,
                             (long long)t->shape[dim]);
    COLLAPSE_TRY(view_of("select", t, out));
    collapse_tensor *v = *out;
    v->offset += index * t->strides[dim];
    for (int d = dim; d < t->ndim - 1; d++) {
        v->shape[d] = t->shape[d + 1];
        v->strides[d] = t->strides[d + 1];
    }
    v->ndim--;
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_narrow(collapse_tensor *t, int dim, int64_t start, int64_t length,
                                       collapse_tensor **out) {
    if (dim < 0 || dim >= t->ndim)
        return collapse_fail(COLLAPSE_ERR_RANGE, "narrow: dimension %d out of range for a %d-d tensor", dim + 1,
                             t->ndim);
    if (start < 0 || length < 0 || start + length > t->shape[dim])
        return collapse_fail(COLLAPSE_ERR_RANGE, "narrow: elements %lld..%lld out of range 1..%lld",
                             (long long)start + 1, (long long)(start + length), (long long)t->shape[dim]);
    COLLAPSE_TRY(view_of("narrow", t, out));
    (*out)->offset += start * t->strides[dim];
    (*out)->shape[dim] = length;
    return COLLAPSE_OK;
}

double cl_storage_read(const collapse_tensor *t, int64_t off) {
    switch (t->dtype) {
    case COLLAPSE_FLOAT32: return ((const float *)t->storage->data)[off];
    case COLLAPSE_FLOAT64: return ((const double *)t->storage->data)[off];
    case COLLAPSE_INT32: return ((const int32_t *)t->storage->data)[off];
    }
    return 0;
}

void cl_storage_write(collapse_tensor *t, int64_t off, double v) {
    switch (t->dtype) {
    case COLLAPSE_FLOAT32: ((float *)t->storage->data)[off] = (float)v; break;
    case COLLAPSE_FLOAT64: ((double *)t->storage->data)[off] = v; break;
    case COLLAPSE_INT32: ((int32_t *)t->storage->data)[off] = (int32_t)v; break;
    }
}

static collapse_status element_offset(const char *fn, const collapse_tensor *t, const int64_t *index, int64_t *off) {
    int64_t o = t->offset;
    for (int d = 0; d < t->ndim; d++) {
        if (index[d] < 0 || index[d] >= t->shape[d])
            return collapse_fail(COLLAPSE_ERR_RANGE, "%s: index %lld out of range 1..%lld in dimension %d", fn,
                                 (long long)index[d] + 1, (long long)t->shape[d], d + 1);
        o += index[d] * t->strides[d];
    }
    *off = o;
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_get(const collapse_tensor *t, const int64_t *index, double *value) {
    int64_t off = 0;
    COLLAPSE_TRY(element_offset("get", t, index, &off));
    *value = cl_storage_read(t, off);
    return COLLAPSE_OK;
}

static collapse_status check_int32_value(const char *fn, const collapse_tensor *t, double v) {
    if (t->dtype == COLLAPSE_INT32 && !(v >= INT32_MIN && v <= INT32_MAX && v == (double)(int64_t)v))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: value %g is not representable as int32", fn, v);
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_set(collapse_tensor *t, const int64_t *index, double value) {
    int64_t off = 0;
    COLLAPSE_TRY(element_offset("set", t, index, &off));
    COLLAPSE_TRY(check_int32_value("set", t, value));
    cl_storage_write(t, off, value);
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_fill(collapse_tensor *t, double value) {
    COLLAPSE_TRY(check_int32_value("fill", t, value));
    int64_t n = collapse_tensor_numel(t);
    if (collapse_tensor_is_contiguous(t)) {
        char *p = tensor_ptr(t);
        switch (t->dtype) {
        case COLLAPSE_FLOAT32: for (int64_t i = 0; i < n; i++) ((float *)p)[i] = (float)value; break;
        case COLLAPSE_FLOAT64: for (int64_t i = 0; i < n; i++) ((double *)p)[i] = value; break;
        case COLLAPSE_INT32: for (int64_t i = 0; i < n; i++) ((int32_t *)p)[i] = (int32_t)value; break;
        }
        return COLLAPSE_OK;
    }
    for (int64_t k = 0; k < n; k++) cl_storage_write(t, tensor_elem_offset(t, k), value);
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_copy(collapse_tensor *dst, const collapse_tensor *src) {
    int64_t n = collapse_tensor_numel(dst);
    if (n != collapse_tensor_numel(src)) {
        char a[SHAPE_BUF], b[SHAPE_BUF];
        return collapse_fail(COLLAPSE_ERR_SHAPE, "copy: size mismatch, destination %s, source %s",
                             cl_shape_str(dst->ndim, dst->shape, a, sizeof a),
                             cl_shape_str(src->ndim, src->shape, b, sizeof b));
    }
    if (dst->dtype == src->dtype && collapse_tensor_is_contiguous(dst) && collapse_tensor_is_contiguous(src)) {
        memmove(tensor_ptr(dst), tensor_ptr(src), (size_t)n * tensor_elem_size(dst));
        return COLLAPSE_OK;
    }
    if (dst->storage == src->storage) {
        /* Overlapping strided copy: go through a temporary. */
        collapse_tensor *tmp;
        COLLAPSE_TRY(collapse_tensor_clone(src, &tmp));
        collapse_status s = collapse_tensor_copy(dst, tmp);
        collapse_tensor_release(tmp);
        return s;
    }
    int fast_src = collapse_tensor_is_contiguous(src), fast_dst = collapse_tensor_is_contiguous(dst);
    for (int64_t k = 0; k < n; k++) {
        int64_t so = fast_src ? src->offset + k : tensor_elem_offset(src, k);
        int64_t d_o = fast_dst ? dst->offset + k : tensor_elem_offset(dst, k);
        cl_storage_write(dst, d_o, cl_storage_read(src, so));
    }
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_to(const collapse_tensor *t, collapse_dtype dtype, collapse_tensor **out) {
    COLLAPSE_TRY(tensor_alloc("to", dtype, t->ndim, t->shape, out));
    collapse_status s = collapse_tensor_copy(*out, t);
    if (s != COLLAPSE_OK) {
        collapse_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

collapse_status collapse_tensor_clone(const collapse_tensor *t, collapse_tensor **out) {
    return collapse_tensor_to(t, t->dtype, out);
}

collapse_status collapse_tensor_index_rows(const collapse_tensor *t, const collapse_tensor *index, int index_base,
                                           collapse_tensor **out) {
    if (t->ndim < 1) return collapse_fail(COLLAPSE_ERR_SHAPE, "rows: expected a tensor with at least 1 dimension");
    if (index->dtype != COLLAPSE_INT32 || index->ndim != 1)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "rows: index must be a 1-d int32 tensor, got a %d-d %s tensor",
                             index->ndim, collapse_dtype_name(index->dtype));
    int64_t m = index->shape[0], rows = t->shape[0];
    for (int64_t i = 0; i < m; i++) {
        int64_t r = (int64_t)cl_storage_read(index, index->offset + i * index->strides[0]) - index_base;
        if (r < 0 || r >= rows)
            return collapse_fail(COLLAPSE_ERR_RANGE, "rows: index %lld at position %lld out of range %d..%lld",
                                 (long long)(r + index_base), (long long)i + 1, index_base,
                                 (long long)(rows - 1 + index_base));
    }
    int64_t shape[COLLAPSE_MAX_DIMS];
    shape[0] = m;
    for (int d = 1; d < t->ndim; d++) shape[d] = t->shape[d];
    COLLAPSE_TRY(tensor_alloc("rows", t->dtype, t->ndim, shape, out));
    collapse_tensor *src;
    collapse_status s = collapse_tensor_contiguous((collapse_tensor *)t, &src);
    if (s != COLLAPSE_OK) {
        collapse_tensor_release(*out);
        return s;
    }
    size_t row_bytes = (size_t)shape_numel(t->ndim - 1, t->shape + 1) * tensor_elem_size(t);
    for (int64_t i = 0; i < m; i++) {
        int64_t r = (int64_t)cl_storage_read(index, index->offset + i * index->strides[0]) - index_base;
        memcpy(tensor_ptr(*out) + (size_t)i * row_bytes, tensor_ptr(src) + (size_t)r * row_bytes, row_bytes);
    }
    collapse_tensor_release(src);
    return COLLAPSE_OK;
}

collapse_status collapse_tensor_index_rows_into(const collapse_tensor *t, const collapse_tensor *index, int64_t start,
                                                int64_t count, int index_base, collapse_tensor *out) {
    static const char fn[] = "rows_into";
    if (!t || !index || !out) return collapse_fail(COLLAPSE_ERR_ARG, "%s: tensor, index and out are required", fn);
    if (t->ndim < 1) return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: expected a tensor with at least 1 dimension", fn);
    if (index->dtype != COLLAPSE_INT32 || index->ndim != 1)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: index must be a 1-d int32 tensor, got a %d-d %s tensor", fn,
                             index->ndim, collapse_dtype_name(index->dtype));
    if (start < 0 || count < 0 || start > index->shape[0] || count > index->shape[0] - start)
        return collapse_fail(COLLAPSE_ERR_RANGE, "%s: positions %lld..%lld are outside the index of length %lld", fn,
                             (long long)start + 1, (long long)(start + count), (long long)index->shape[0]);
    char want[SHAPE_BUF], got[SHAPE_BUF];
    int64_t shape[COLLAPSE_MAX_DIMS];
    shape[0] = count;
    for (int d = 1; d < t->ndim; d++) shape[d] = t->shape[d];
    int same = out->ndim == t->ndim && out->dtype == t->dtype;
    for (int d = 0; same && d < t->ndim; d++) same = out->shape[d] == shape[d];
    if (!same)
        return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: out must be a %s tensor %s, got a %s tensor %s", fn,
                             collapse_dtype_name(t->dtype), cl_shape_str(t->ndim, shape, want, sizeof want),
                             collapse_dtype_name(out->dtype), cl_shape_str(out->ndim, out->shape, got, sizeof got));
    if (!collapse_tensor_is_contiguous(out))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: out must be contiguous", fn);
    if (out->storage == t->storage || out->storage == index->storage)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: out must not share memory with the tensor or the index", fn);
    int64_t rows = t->shape[0];
    const int32_t *ix = (const int32_t *)index->storage->data + index->offset;
    const int64_t is = index->strides[0];
    for (int64_t i = 0; i < count; i++) {
        int64_t r = (int64_t)ix[(start + i) * is] - index_base;
        if (r < 0 || r >= rows)
            return collapse_fail(COLLAPSE_ERR_RANGE, "%s: index %lld at position %lld out of range %d..%lld", fn,
                                 (long long)(r + index_base), (long long)(start + i + 1), index_base,
                                 (long long)(rows - 1 + index_base));
    }
    collapse_tensor *src;
    COLLAPSE_TRY(collapse_tensor_contiguous((collapse_tensor *)t, &src));
    size_t row_bytes = (size_t)shape_numel(t->ndim - 1, t->shape + 1) * tensor_elem_size(t);
    char *dst = tensor_ptr(out);
    const char *base = tensor_ptr(src);
    for (int64_t i = 0; i < count; i++) {
        int64_t r = (int64_t)ix[(start + i) * is] - index_base;
        memcpy(dst + (size_t)i * row_bytes, base + (size_t)r * row_bytes, row_bytes);
    }
    collapse_tensor_release(src);
    return COLLAPSE_OK;
}
