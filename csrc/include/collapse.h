/*
 * collapse.h - the one public header of libcollapse.
 *
 * A C library for studying neural collapse: tensors over OpenBLAS, layers with
 * forward/backward kernels, optimiser update rules, neural-collapse metrics and
 * the collapse bound of Pan & Cao (arXiv 2309.04644).
 *
 * Conventions (docs/c-api.md has the long form):
 *  - every function that can fail returns a collapse_status; on failure
 *    collapse_last_error() gives a message naming the function, the argument and
 *    what was expected. Nothing in the library aborts or exits.
 *  - handles (collapse_tensor) are opaque and reference counted.
 *  - class labels are 1..C everywhere, C included, so a label tensor passes
 *    between Lua and C unchanged.
 *  - matrices are row-major; a batch of n feature vectors of size d is n x d.
 */
#ifndef COLLAPSE_H
#define COLLAPSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define COLLAPSE_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define COLLAPSE_API __attribute__((visibility("default")))
#else
#  define COLLAPSE_API
#endif

#define COLLAPSE_VERSION "0.1.0"
#define COLLAPSE_MAX_DIMS 8

typedef enum collapse_status {
    COLLAPSE_OK = 0,
    COLLAPSE_ERR_ARG,      /* bad argument value (NULL, negative size, lambda <= 0, ...) */
    COLLAPSE_ERR_SHAPE,    /* shapes do not fit together */
    COLLAPSE_ERR_DTYPE,    /* wrong or unsupported dtype */
    COLLAPSE_ERR_RANGE,    /* index or label out of range */
    COLLAPSE_ERR_NOMEM,    /* allocation failed */
    COLLAPSE_ERR_IO,       /* file could not be opened, read or written */
    COLLAPSE_ERR_FORMAT,   /* file content malformed, truncated or corrupt */
    COLLAPSE_ERR_NUMERIC,  /* a numerical routine failed (LAPACK info != 0, non-finite input) */
    COLLAPSE_ERR_STATE     /* call made in the wrong state (e.g. metrics before a pass) */
} collapse_status;

typedef enum collapse_dtype {
    COLLAPSE_FLOAT32 = 0,
    COLLAPSE_FLOAT64 = 1,
    COLLAPSE_INT32 = 2
} collapse_dtype;

/* ---- errors ------------------------------------------------------------ */
/* Message of the last failed call on this thread ("" if none). */
COLLAPSE_API const char *collapse_last_error(void);
COLLAPSE_API collapse_status collapse_last_status(void);
COLLAPSE_API void collapse_clear_error(void);
COLLAPSE_API const char *collapse_status_name(collapse_status s);
COLLAPSE_API const char *collapse_dtype_name(collapse_dtype t);
/* Parses "float32", "float64", "int32" (also "float", "double", "int"). */
COLLAPSE_API collapse_status collapse_dtype_from_name(const char *name, collapse_dtype *out);
COLLAPSE_API size_t collapse_dtype_size(collapse_dtype t);

/* ---- tensors ----------------------------------------------------------------
 * A tensor is a strided view on a refcounted storage. New tensors are contiguous
 * and zero-filled; views (reshape, transpose, row, select) share storage and keep
 * it alive. Functions that return a tensor through `out` give the caller one
 * reference: release it with collapse_tensor_release. Indices in this API are
 * 0-based; label-like results (argmax) are 1-based like labels. */
typedef struct collapse_tensor collapse_tensor;

COLLAPSE_API collapse_status collapse_tensor_new(collapse_dtype dtype, int ndim, const int64_t *shape,
                                                 collapse_tensor **out);
/* Copies `data` (ndim/shape as given, contiguous, of `dtype`). */
COLLAPSE_API collapse_status collapse_tensor_from_data(collapse_dtype dtype, int ndim, const int64_t *shape,
                                                       const void *data, collapse_tensor **out);
COLLAPSE_API collapse_tensor *collapse_tensor_retain(collapse_tensor *t);
COLLAPSE_API void collapse_tensor_release(collapse_tensor *t); /* NULL is fine */

COLLAPSE_API collapse_dtype collapse_tensor_dtype(const collapse_tensor *t);
COLLAPSE_API int collapse_tensor_ndim(const collapse_tensor *t);
COLLAPSE_API int64_t collapse_tensor_size(const collapse_tensor *t, int dim);
COLLAPSE_API const int64_t *collapse_tensor_shape(const collapse_tensor *t);
COLLAPSE_API const int64_t *collapse_tensor_strides(const collapse_tensor *t);
COLLAPSE_API int64_t collapse_tensor_numel(const collapse_tensor *t);
COLLAPSE_API int collapse_tensor_is_contiguous(const collapse_tensor *t);
/* Pointer to the first element (respecting the view's offset). */
COLLAPSE_API void *collapse_tensor_data(const collapse_tensor *t);
/* Bytes of all live tensor storage in this process (for GC pressure accounting). */
COLLAPSE_API int64_t collapse_bytes_in_use(void);

/* Views. */
COLLAPSE_API collapse_status collapse_tensor_reshape(collapse_tensor *t, int ndim, const int64_t *shape,
                                                     collapse_tensor **out); /* a view if contiguous, else a copy; one dim may be -1 */
COLLAPSE_API collapse_status collapse_tensor_transpose(collapse_tensor *t, collapse_tensor **out); /* 2-d */
COLLAPSE_API collapse_status collapse_tensor_select(collapse_tensor *t, int dim, int64_t index,
                                                    collapse_tensor **out); /* drops dim */
COLLAPSE_API collapse_status collapse_tensor_narrow(collapse_tensor *t, int dim, int64_t start, int64_t length,
                                                    collapse_tensor **out);
COLLAPSE_API collapse_status collapse_tensor_contiguous(collapse_tensor *t, collapse_tensor **out); /* retains if already */

/* Elements (index has ndim 0-based entries). */
COLLAPSE_API collapse_status collapse_tensor_get(const collapse_tensor *t, const int64_t *index, double *value);
COLLAPSE_API collapse_status collapse_tensor_set(collapse_tensor *t, const int64_t *index, double value);
COLLAPSE_API collapse_status collapse_tensor_fill(collapse_tensor *t, double value);           /* writes through views */
COLLAPSE_API collapse_status collapse_tensor_copy(collapse_tensor *dst, const collapse_tensor *src); /* same numel, casts */
COLLAPSE_API collapse_status collapse_tensor_clone(const collapse_tensor *t, collapse_tensor **out);
COLLAPSE_API collapse_status collapse_tensor_to(const collapse_tensor *t, collapse_dtype dtype, collapse_tensor **out);
/* Gathers rows (first-dimension slices) at 0-based `index` (int32 tensor, 1-d). */
COLLAPSE_API collapse_status collapse_tensor_index_rows(const collapse_tensor *t, const collapse_tensor *index,
                                                        int index_base, collapse_tensor **out);

/* Arithmetic (float dtypes; the result is a new contiguous tensor). `u` must have t's shape,
 * be a single element, or match t's trailing dimensions (a bias row broadcast over rows). */
typedef enum collapse_binop { COLLAPSE_ADD, COLLAPSE_SUB, COLLAPSE_MUL, COLLAPSE_DIV } collapse_binop;
COLLAPSE_API collapse_status collapse_tensor_binop(collapse_binop op, const collapse_tensor *t,
                                                   const collapse_tensor *u, collapse_tensor **out);
/* t op s, or s op t when scalar_first (so 1 - t and 2 / t work). */
COLLAPSE_API collapse_status collapse_tensor_binop_scalar(collapse_binop op, const collapse_tensor *t, double s,
                                                          int scalar_first, collapse_tensor **out);
COLLAPSE_API collapse_status collapse_tensor_neg(const collapse_tensor *t, collapse_tensor **out);
/* Reductions over all elements (accumulated in double) ... */
COLLAPSE_API collapse_status collapse_tensor_sum_all(const collapse_tensor *t, double *out);
COLLAPSE_API collapse_status collapse_tensor_max_all(const collapse_tensor *t, double *out);
COLLAPSE_API collapse_status collapse_tensor_norm(const collapse_tensor *t, double *out); /* Frobenius */
COLLAPSE_API collapse_status collapse_tensor_dot(const collapse_tensor *t, const collapse_tensor *u, double *out);
/* ... or along one dim (0-based; the dim is removed). argmax gives 1-based int32 positions. */
typedef enum collapse_reduce { COLLAPSE_SUM, COLLAPSE_MEAN, COLLAPSE_MAX, COLLAPSE_ARGMAX } collapse_reduce;
COLLAPSE_API collapse_status collapse_tensor_reduce(const collapse_tensor *t, collapse_reduce op, int dim,
                                                    collapse_tensor **out);
/* Matrix product through cblas_?gemm; transposed views are passed to BLAS as transposes.
 * 2-d @ 2-d, 2-d @ 1-d and 1-d @ 2-d; both operands of one float dtype. */
COLLAPSE_API collapse_status collapse_matmul(const collapse_tensor *a, const collapse_tensor *b, collapse_tensor **out);

/* ---- random numbers ------------------------------------------------------------
 * xoshiro256** seeded through splitmix64 (docs/rng.md): the same stream on every
 * platform. uniform in [0,1) with 53 bits; normal by the Box-Muller transform. */
typedef struct collapse_rng { uint64_t s[4]; int has_spare; double spare; } collapse_rng;
COLLAPSE_API void collapse_rng_seed(collapse_rng *g, uint64_t seed);
COLLAPSE_API uint64_t collapse_rng_next(collapse_rng *g);
COLLAPSE_API double collapse_rng_uniform(collapse_rng *g);
COLLAPSE_API double collapse_rng_normal(collapse_rng *g);
/* Uniform integer in [lo, hi] without modulo bias. */
COLLAPSE_API int64_t collapse_rng_integer(collapse_rng *g, int64_t lo, int64_t hi);
/* Fills perm with a uniformly random permutation of base..base+n-1 (Fisher-Yates). */
COLLAPSE_API void collapse_rng_permutation(collapse_rng *g, int64_t n, int64_t base, int64_t *perm);
COLLAPSE_API collapse_status collapse_tensor_randn(collapse_tensor *t, collapse_rng *g); /* fills, contiguous float */
COLLAPSE_API collapse_status collapse_tensor_rand(collapse_tensor *t, collapse_rng *g);

/* ---- BLAS configuration ------------------------------------------------------ */
typedef struct collapse_blas_info {
    char config[256];   /* openblas_get_config() */
    char core[64];      /* the kernel OpenBLAS chose, e.g. "Prescott", "Haswell", "SkylakeX" */
    int threads;        /* OpenBLAS threads */
    int cpu_avx2, cpu_avx512; /* what the CPU supports */
    int generic_core;   /* 1 when a generic/old core runs on a CPU with AVX2 or AVX-512 */
} collapse_blas_info;
COLLAPSE_API void collapse_blas_get_info(collapse_blas_info *info);
COLLAPSE_API collapse_status collapse_set_num_threads(int n);
COLLAPSE_API int collapse_get_num_threads(void);

/* @@SECTIONS@@ (nn, optim, nc, bound, io follow) */

#ifdef __cplusplus
}
#endif
#endif /* COLLAPSE_H */
