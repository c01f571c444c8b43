/* Internal layout of tensors and storage, shared by the core, kernels and the binding.
 * Users of the public header see only the opaque collapse_tensor. */
#ifndef COLLAPSE_CORE_TENSOR_H
#define COLLAPSE_CORE_TENSOR_H

#include "collapse.h"
#include "core/error.h"

/* Refcounted flat buffer; several tensors (views) may share one. */
typedef struct collapse_storage {
    void *data;
    size_t nbytes;
    long refcount;
} collapse_storage;

struct collapse_tensor {
    collapse_storage *storage;
    int64_t offset; /* in elements, from storage->data */
    collapse_dtype dtype;
    int ndim;
    int64_t shape[COLLAPSE_MAX_DIMS];
    int64_t strides[COLLAPSE_MAX_DIMS]; /* in elements */
    long refcount;
    int view; /* 1 for a view (reshape, narrow, select, ...): it shares storage it does not own */
};

static inline size_t tensor_elem_size(const collapse_tensor *t) { return collapse_dtype_size(t->dtype); }

static inline char *tensor_ptr(const collapse_tensor *t) {
    return (char *)t->storage->data + (size_t)t->offset * tensor_elem_size(t);
}

static inline int64_t shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

/* Formats a shape as "[2 x 3]" into buf (for error messages). */
/* Hint that a large block (>= 4 MB) be backed by transparent huge pages; no effect otherwise. */
void cl_advise_huge_pages(void *p, size_t nbytes);
const char *cl_shape_str(int ndim, const int64_t *shape, char *buf, size_t len);
#define SHAPE_BUF 96

/* Offset (in elements) of the k-th element in row-major order, for strided iteration. */
static inline int64_t tensor_elem_offset(const collapse_tensor *t, int64_t k) {
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t i = k % t->shape[d];
        k /= t->shape[d];
        off += i * t->strides[d];
    }
    return off;
}

/* splitmix64 (Steele, Lea & Flood 2014): advances *x and returns the next 64-bit value. The one
 * copy in the library: it seeds xoshiro256** (rng.c) and anything else needing a cheap mixer. */
uint64_t cl_splitmix64(uint64_t *x);

/* Reads element at flat storage offset as double / writes a double there (casting). */
double cl_storage_read(const collapse_tensor *t, int64_t off);
void cl_storage_write(collapse_tensor *t, int64_t off, double v);

#endif
