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
/* CRC-32 as zlib computes it; start with crc = 0 and chain over pieces. */
COLLAPSE_API uint32_t collapse_crc32(uint32_t crc, const void *data, size_t len);

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
/* Wraps malloc'd memory without a copy: on success the tensor owns `data` and frees it with
 * free() (e.g. the data of a collapse_array read from a file); on failure the caller keeps it. */
COLLAPSE_API collapse_status collapse_tensor_adopt(collapse_dtype dtype, int ndim, const int64_t *shape, void *data,
                                                   collapse_tensor **out);
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

/* Gives t the shape (ndim sizes), keeping its dtype: the storage is reused when its capacity holds
 * the new element count (as torch's output:resize), else reallocated (zero-filled); contents are
 * unspecified after a shape change, unchanged when the shape is the same. A shape change refuses views (reshape,
 * narrow, select, ... share storage they do not own) and non-contiguous tensors. The tensor-level
 * kernels resize their outputs with it, so callers may pass any buffer, even a 0-element one. */
COLLAPSE_API collapse_status collapse_tensor_resize(collapse_tensor *t, int ndim, const int64_t *shape);

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
/* The same into an existing contiguous `out` [count x ...] (no allocation), from positions
 * start .. start+count-1 (0-based) of `index`: a mini-batch gathered into a reused buffer.
 * Every index is checked before anything is written; out must not share memory with t or index. */
COLLAPSE_API collapse_status collapse_tensor_index_rows_into(const collapse_tensor *t, const collapse_tensor *index,
                                                             int64_t start, int64_t count, int index_base,
                                                             collapse_tensor *out);

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

/* Number of rows whose argmax (first on ties) equals the 1-based label. */
COLLAPSE_API collapse_status collapse_count_correct(const collapse_tensor *logits, const collapse_tensor *labels,
                                                    int64_t *correct);

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
/* The generator's state in a portable form (for checkpoints): "XS1", the four state words and the
 * cached normal as little-endian values: the same bytes on every platform. restore also accepts
 * the raw struct bytes (sizeof(collapse_rng)) of older checkpoints written on this platform. */
#define COLLAPSE_RNG_STATE_BYTES 44
COLLAPSE_API void collapse_rng_save(const collapse_rng *g, unsigned char out[COLLAPSE_RNG_STATE_BYTES]);
COLLAPSE_API collapse_status collapse_rng_restore(collapse_rng *g, const unsigned char *state, size_t len);
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
/* The OpenBLAS core ("SkylakeX", "Haswell", ...) this CPU runs faster than the one OpenBLAS
 * chose, or NULL (OpenBLAS's choice is as good, OPENBLAS_CORETYPE is set, or COLLAPSE_BLAS_AUTO=0).
 * OpenBLAS reads OPENBLAS_CORETYPE only when it is loaded, which for a program linked against
 * libcollapse is before main: set the variable and re-exec (docs/c-api.md, "BLAS kernel"). */
COLLAPSE_API const char *collapse_blas_recommended_core(void);
COLLAPSE_API collapse_status collapse_set_num_threads(int n);
COLLAPSE_API int collapse_get_num_threads(void);
/* Subnormal floats flushed to zero (on = 1) or kept (on = 0, the IEEE default) on the calling
 * thread: PyTorch's torch.set_flush_denormal. Returns 1 when the CPU supports the mode (x86-64),
 * 0 otherwise. On Intel CPUs subnormal values in a GEMM make it up to 25x slower (core/fpmode.c). */
COLLAPSE_API int collapse_set_flush_denormal(int on);
COLLAPSE_API int collapse_get_flush_denormal(void);

/* ==== layers (csrc/nn), tensor level ==============================================
 * THNN argument order: (input, output, weight, bias, buffers..., options). Each kernel checks
 * every tensor once (a float dtype shared by all, shapes, contiguity), RESIZES its outputs
 * (collapse_tensor_resize: pass any buffer you hold, even a 0-element one; views only when they
 * already have the right shape) and dispatches to the raw _f32/_f64 tier below. Messages name
 * the kernel and the argument: "linear_forward: size mismatch, input [2 x 5], expected [n x 3]
 * (weight is [4 x 3])". Optional tensors may be NULL; "+=" outputs (parameter gradients) must
 * already have their exact shape. */
/* y = x W^T + b: x [n x in], W [out x in], b [out] or NULL; y becomes [n x out]. */
COLLAPSE_API collapse_status collapse_linear_forward(const collapse_tensor *x, collapse_tensor *y,
                                                     const collapse_tensor *W, const collapse_tensor *b);
/* gx = gy W (resized to [n x in]; NULL = not needed), gW += gy^T x, gb += column sums of gy (or NULL). */
COLLAPSE_API collapse_status collapse_linear_backward(const collapse_tensor *x, const collapse_tensor *gy,
                                                      collapse_tensor *gx, const collapse_tensor *W,
                                                      collapse_tensor *gW, collapse_tensor *gb);

/* Batch normalisation (PyTorch semantics, see the raw kernels below): x [n x f] (batchnorm) or
 * [N x C x H x W] (batchnorm2d, per channel over N H W). gamma, beta [f] or NULL (affine off);
 * running_mean/var [f], NULL allowed in train mode (track_running_stats off), required in eval.
 * Train mode resizes save_mean/save_invstd to [f] (the backward's buffers; ignored in eval). y may
 * be x. The fused batchnorm_relu pair is train mode only: y = relu(bn(x)) for x [n x f] or
 * [N x C x H x W] (then per channel, as batchnorm2d); its backward takes that y and the gradient
 * at it. gx may be gy; gx NULL = not needed; ggamma/gbeta += (or NULL). */
COLLAPSE_API collapse_status collapse_batchnorm_forward(const collapse_tensor *x, collapse_tensor *y,
                                                        const collapse_tensor *gamma, const collapse_tensor *beta,
                                                        collapse_tensor *running_mean, collapse_tensor *running_var,
                                                        collapse_tensor *save_mean, collapse_tensor *save_invstd,
                                                        int train, double momentum, double eps);
COLLAPSE_API collapse_status collapse_batchnorm_backward(const collapse_tensor *x, const collapse_tensor *gy,
                                                         collapse_tensor *gx, const collapse_tensor *gamma,
                                                         collapse_tensor *ggamma, collapse_tensor *gbeta,
                                                         const collapse_tensor *save_mean,
                                                         const collapse_tensor *save_invstd,
                                                         const collapse_tensor *running_mean,
                                                         const collapse_tensor *running_var, int train, double eps);
COLLAPSE_API collapse_status collapse_batchnorm2d_forward(const collapse_tensor *x, collapse_tensor *y,
                                                          const collapse_tensor *gamma, const collapse_tensor *beta,
                                                          collapse_tensor *running_mean, collapse_tensor *running_var,
                                                          collapse_tensor *save_mean, collapse_tensor *save_invstd,
                                                          int train, double momentum, double eps);
COLLAPSE_API collapse_status collapse_batchnorm2d_backward(const collapse_tensor *x, const collapse_tensor *gy,
                                                           collapse_tensor *gx, const collapse_tensor *gamma,
                                                           collapse_tensor *ggamma, collapse_tensor *gbeta,
                                                           const collapse_tensor *save_mean,
                                                           const collapse_tensor *save_invstd,
                                                           const collapse_tensor *running_mean,
                                                           const collapse_tensor *running_var, int train, double eps);
COLLAPSE_API collapse_status collapse_batchnorm_relu_forward(const collapse_tensor *x, collapse_tensor *y,
                                                             const collapse_tensor *gamma, const collapse_tensor *beta,
                                                             collapse_tensor *running_mean,
                                                             collapse_tensor *running_var, collapse_tensor *save_mean,
                                                             collapse_tensor *save_invstd, double momentum,
                                                             double eps);
COLLAPSE_API collapse_status collapse_batchnorm_relu_backward(const collapse_tensor *x, const collapse_tensor *y,
                                                              const collapse_tensor *gy, collapse_tensor *gx,
                                                              const collapse_tensor *gamma, collapse_tensor *ggamma,
                                                              collapse_tensor *gbeta,
                                                              const collapse_tensor *save_mean,
                                                              const collapse_tensor *save_invstd);
/* Elementwise activations, any shape: y resized like x (y may be x). The backwards take the
 * forward OUTPUT y: gx (resized like y, may be gy) = relu: y > 0 ? gy : 0; tanh: gy (1 - y^2). */
COLLAPSE_API collapse_status collapse_relu_forward(const collapse_tensor *x, collapse_tensor *y);
COLLAPSE_API collapse_status collapse_relu_backward(const collapse_tensor *y, const collapse_tensor *gy,
                                                    collapse_tensor *gx);
COLLAPSE_API collapse_status collapse_tanh_forward(const collapse_tensor *x, collapse_tensor *y);
COLLAPSE_API collapse_status collapse_tanh_backward(const collapse_tensor *y, const collapse_tensor *gy,
                                                    collapse_tensor *gx);
/* Mean cross-entropy of logits [n x C] against int32 labels [n] in 1..C into *loss; grad (or NULL)
 * resized to [n x C] = d loss / d logits (may be logits). */
COLLAPSE_API collapse_status collapse_cross_entropy(const collapse_tensor *logits, const collapse_tensor *labels,
                                                    double *loss, collapse_tensor *grad);
/* conv2d on NCHW: x [N x Cin x H x W], W [Cout x Cin x k x k], b [Cout] or NULL; y resized to
 * [N x Cout x Ho x Wo]. columns: the im2col scratch, resized by the kernel (keep one per layer);
 * NULL = a temporary one per call. Backward: gx (or NULL) resized like x, gW/gb += (or NULL). */
COLLAPSE_API collapse_status collapse_conv2d_forward(const collapse_tensor *x, collapse_tensor *y,
                                                     const collapse_tensor *W, const collapse_tensor *b,
                                                     collapse_tensor *columns, int64_t stride, int64_t padding);
COLLAPSE_API collapse_status collapse_conv2d_backward(const collapse_tensor *x, const collapse_tensor *gy,
                                                      collapse_tensor *gx, const collapse_tensor *W,
                                                      collapse_tensor *gW, collapse_tensor *gb,
                                                      collapse_tensor *columns, int64_t stride, int64_t padding);
/* Pooling on NCHW (square window kernel, stride, no padding): y resized to [N x C x Ho x Wo];
 * maxpool's indices (int32, or NULL) likewise. The backwards take the forward's input x (for its
 * shape); gx resized like x. */
COLLAPSE_API collapse_status collapse_maxpool2d_forward(const collapse_tensor *x, collapse_tensor *y,
                                                        collapse_tensor *indices, int64_t kernel, int64_t stride);
COLLAPSE_API collapse_status collapse_maxpool2d_backward(const collapse_tensor *x, const collapse_tensor *gy,
                                                         collapse_tensor *gx, const collapse_tensor *indices,
                                                         int64_t kernel, int64_t stride);
COLLAPSE_API collapse_status collapse_avgpool2d_forward(const collapse_tensor *x, collapse_tensor *y, int64_t kernel,
                                                        int64_t stride);
COLLAPSE_API collapse_status collapse_avgpool2d_backward(const collapse_tensor *x, const collapse_tensor *gy,
                                                         collapse_tensor *gx, int64_t kernel, int64_t stride);

/* ==== layers (csrc/nn): raw row-major arrays, _f32 and _f64 (the internal/advanced tier) ==== */
/* ---- linear: y[n x out] = x[n x in] W[out x in]^T + b[out] (one gemm) ------------------- */
COLLAPSE_API collapse_status collapse_linear_forward_f32(int64_t n, int64_t in, int64_t out, const float *x,
                                                         float *y, const float *W, const float *b);
COLLAPSE_API collapse_status collapse_linear_forward_f64(int64_t n, int64_t in, int64_t out, const double *x,
                                                         double *y, const double *W, const double *b);
/* gx[n x in] = gy W (overwritten; gx may be NULL), gW[out x in] += gy^T x,
 * gb[out] += column sums of gy (gb may be NULL). */
COLLAPSE_API collapse_status collapse_linear_backward_f32(int64_t n, int64_t in, int64_t out, const float *x,
                                                          const float *gy, float *gx, const float *W, float *gW,
                                                          float *gb);
COLLAPSE_API collapse_status collapse_linear_backward_f64(int64_t n, int64_t in, int64_t out, const double *x,
                                                          const double *gy, double *gx, const double *W,
                                                          double *gW, double *gb);

/* ---- batch normalisation over the n rows of x[n x f] (BatchNorm1d), PyTorch semantics ---
 * Train: normalise with the biased batch variance; save_mean[f], save_invstd[f] =
 * 1/sqrt(var + eps) are written for the backward; running_mean/var (each may be NULL:
 * track_running_stats off) become (1 - momentum) running + momentum batch, with the
 * unbiased variance (n/(n-1)) for running_var. n >= 2. Statistics accumulate in double.
 * gamma NULL means 1, beta NULL means 0 (affine off). y may equal x (then x is lost). */
COLLAPSE_API collapse_status collapse_batchnorm_forward_train_f32(int64_t n, int64_t f, const float *x, float *y,
                                                                  const float *gamma, const float *beta,
                                                                  float *running_mean, float *running_var,
                                                                  float *save_mean, float *save_invstd,
                                                                  double momentum, double eps);
COLLAPSE_API collapse_status collapse_batchnorm_forward_train_f64(int64_t n, int64_t f, const double *x,
                                                                  double *y, const double *gamma,
                                                                  const double *beta, double *running_mean,
                                                                  double *running_var, double *save_mean,
                                                                  double *save_invstd, double momentum,
                                                                  double eps);
/* Eval: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta. y may equal x. */
COLLAPSE_API collapse_status collapse_batchnorm_forward_eval_f32(int64_t n, int64_t f, const float *x, float *y,
                                                                 const float *gamma, const float *beta,
                                                                 const float *running_mean,
                                                                 const float *running_var, double eps);
COLLAPSE_API collapse_status collapse_batchnorm_forward_eval_f64(int64_t n, int64_t f, const double *x,
                                                                 double *y, const double *gamma,
                                                                 const double *beta, const double *running_mean,
                                                                 const double *running_var, double eps);
/* Exact gradient of the train-mode forward (batch statistics depend on x): x and
 * save_mean/save_invstd from that forward; gx overwritten (or NULL; gx may equal gy);
 * ggamma += sum gy * xhat, gbeta += sum gy (each may be NULL). */
COLLAPSE_API collapse_status collapse_batchnorm_backward_train_f32(int64_t n, int64_t f, const float *x,
                                                                   const float *gy, float *gx,
                                                                   const float *gamma, float *ggamma,
                                                                   float *gbeta, const float *save_mean,
                                                                   const float *save_invstd);
COLLAPSE_API collapse_status collapse_batchnorm_backward_train_f64(int64_t n, int64_t f, const double *x,
                                                                   const double *gy, double *gx,
                                                                   const double *gamma, double *ggamma,
                                                                   double *gbeta, const double *save_mean,
                                                                   const double *save_invstd);
/* BatchNorm (train) followed by ReLU in one kernel: y = relu(batchnorm_forward_train(x)), the
 * same values as the two kernels in turn (the BN output is never stored). The backward takes that
 * y and the gradient gy at it: gx, ggamma, gbeta as batchnorm_backward_train applied to
 * relu_backward(y, gy), without the intermediate array. gx may equal gy. */
COLLAPSE_API collapse_status collapse_batchnorm_relu_forward_train_f32(int64_t n, int64_t f, const float *x, float *y,
                                                                       const float *gamma, const float *beta,
                                                                       float *running_mean, float *running_var,
                                                                       float *save_mean, float *save_invstd,
                                                                       double momentum, double eps);
COLLAPSE_API collapse_status collapse_batchnorm_relu_forward_train_f64(int64_t n, int64_t f, const double *x,
                                                                       double *y, const double *gamma,
                                                                       const double *beta, double *running_mean,
                                                                       double *running_var, double *save_mean,
                                                                       double *save_invstd, double momentum,
                                                                       double eps);
COLLAPSE_API collapse_status collapse_batchnorm_relu_backward_train_f32(int64_t n, int64_t f, const float *x,
                                                                        const float *y, const float *gy, float *gx,
                                                                        const float *gamma, float *ggamma,
                                                                        float *gbeta, const float *save_mean,
                                                                        const float *save_invstd);
COLLAPSE_API collapse_status collapse_batchnorm_relu_backward_train_f64(int64_t n, int64_t f, const double *x,
                                                                        const double *y, const double *gy,
                                                                        double *gx, const double *gamma,
                                                                        double *ggamma, double *gbeta,
                                                                        const double *save_mean,
                                                                        const double *save_invstd);
/* Gradient of the eval-mode forward (a fixed affine map per feature):
 * gx = gy * gamma / sqrt(running_var + eps) (or NULL; may equal gy), ggamma += sum gy * xhat,
 * gbeta += sum gy. x and running_mean are needed only for ggamma (may be NULL otherwise). */
COLLAPSE_API collapse_status collapse_batchnorm_backward_eval_f32(int64_t n, int64_t f, const float *x,
                                                                  const float *gy, float *gx,
                                                                  const float *gamma, float *ggamma,
                                                                  float *gbeta, const float *running_mean,
                                                                  const float *running_var, double eps);
COLLAPSE_API collapse_status collapse_batchnorm_backward_eval_f64(int64_t n, int64_t f, const double *x,
                                                                  const double *gy, double *gx,
                                                                  const double *gamma, double *ggamma,
                                                                  double *gbeta, const double *running_mean,
                                                                  const double *running_var, double eps);

/* ---- activations over n elements; y may equal x, gx may equal gy ---------------------------
 * The backwards take the forward OUTPUT y (so an in-place forward loses nothing):
 * relu: gx = y > 0 ? gy : 0 (NaN propagates as in PyTorch); tanh: gx = gy * (1 - y^2). */
COLLAPSE_API collapse_status collapse_relu_forward_f32(int64_t n, const float *x, float *y);
COLLAPSE_API collapse_status collapse_relu_forward_f64(int64_t n, const double *x, double *y);
COLLAPSE_API collapse_status collapse_relu_backward_f32(int64_t n, const float *y, const float *gy, float *gx);
COLLAPSE_API collapse_status collapse_relu_backward_f64(int64_t n, const double *y, const double *gy,
                                                        double *gx);
COLLAPSE_API collapse_status collapse_tanh_forward_f32(int64_t n, const float *x, float *y);
COLLAPSE_API collapse_status collapse_tanh_forward_f64(int64_t n, const double *x, double *y);
COLLAPSE_API collapse_status collapse_tanh_backward_f32(int64_t n, const float *y, const float *gy, float *gx);
COLLAPSE_API collapse_status collapse_tanh_backward_f64(int64_t n, const double *y, const double *gy,
                                                        double *gx);

/* ---- cross-entropy over logits[n x C] with int32 labels in 1..C -------------------------
 * *loss_mean = mean over rows of logsumexp(row) - row[label] (stable, summed in double);
 * grad (or NULL) = d loss_mean / d logits = (softmax - onehot) / n, overwritten; grad may
 * equal logits. Labels are all checked first: COLLAPSE_ERR_RANGE
 * "cross_entropy: label 11 at position 6 is outside 1..10" (positions 0-based, as everywhere in C). */
COLLAPSE_API collapse_status collapse_cross_entropy_forward_f32(int64_t n, int64_t C, const float *logits,
                                                                const int32_t *labels, double *loss_mean,
                                                                float *grad);
COLLAPSE_API collapse_status collapse_cross_entropy_forward_f64(int64_t n, int64_t C, const double *logits,
                                                                const int32_t *labels, double *loss_mean,
                                                                double *grad);

/* ==== optimiser update rules (csrc/optim) ========================================= */
/* One fused call per parameter group and step (as PyTorch's foreach optimisers): the update rule
 * below applied to each of the n_tensors tensors x[i] with gradient g[i] and state tensors of the
 * same dtype and shape, all checked before anything is written. weight_decay (n values, or NULL =
 * 0) lets a group mix decayed and undecayed tensors. zero_grad != 0 zeroes each g[i] in the same
 * pass. SGD: momentum_buf may be NULL (or hold NULLs) when momentum == 0; buf_ready[i] as for
 * collapse_sgd_step. Adam: step is the group's 1-based step count. Messages index the lists from 0. */
COLLAPSE_API collapse_status collapse_sgd_step_many(int n_tensors, collapse_tensor *const *x, collapse_tensor *const *g,
                                                    collapse_tensor *const *momentum_buf, int *buf_ready,
                                                    const double *weight_decay, double lr, double momentum,
                                                    double dampening, int nesterov, int zero_grad);
COLLAPSE_API collapse_status collapse_adam_step_many(int n_tensors, collapse_tensor *const *x, collapse_tensor *const *g,
                                                     collapse_tensor *const *m, collapse_tensor *const *v,
                                                     const double *weight_decay, int64_t step, double lr, double beta1,
                                                     double beta2, double eps, int decoupled, int zero_grad);
/* g[i] = 0 for every tensor (an optimiser's zero_grad in one call). */
COLLAPSE_API collapse_status collapse_zero_grad_many(int n_tensors, collapse_tensor *const *g);

/* torch.optim.SGD: d = g + weight_decay x; with momentum != 0:
 *   buf = d on the first step (*buf_ready == 0; set to 1 on return),
 *   buf = momentum buf + (1 - dampening) d afterwards,
 *   d = nesterov ? d + momentum buf : buf;
 * then x -= lr d. momentum_buf and buf_ready may be NULL when momentum == 0.
 * lr, momentum, weight_decay >= 0; nesterov needs momentum > 0 and dampening == 0. */
COLLAPSE_API collapse_status collapse_sgd_step_f32(int64_t n, float *x, const float *g, float *momentum_buf,
                                                   int *buf_ready, double lr, double momentum, double dampening,
                                                   int nesterov, double weight_decay);
COLLAPSE_API collapse_status collapse_sgd_step_f64(int64_t n, double *x, const double *g, double *momentum_buf,
                                                   int *buf_ready, double lr, double momentum, double dampening,
                                                   int nesterov, double weight_decay);
/* The same step, then g = 0 in the same pass over memory (step() followed by zero_grad()). */
COLLAPSE_API collapse_status collapse_sgd_step_zero_grad_f32(int64_t n, float *x, float *g, float *momentum_buf,
                                                             int *buf_ready, double lr, double momentum,
                                                             double dampening, int nesterov, double weight_decay);
COLLAPSE_API collapse_status collapse_sgd_step_zero_grad_f64(int64_t n, double *x, double *g, double *momentum_buf,
                                                             int *buf_ready, double lr, double momentum,
                                                             double dampening, int nesterov, double weight_decay);

/* torch.optim.Adam (decoupled == 0: g += weight_decay x) / AdamW (decoupled != 0:
 * x *= 1 - lr weight_decay first). step is this update's 1-based count (the caller
 * increments it before the call). m, v (zero before the first step) are updated:
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
 *   x -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps).
 * lr, eps, weight_decay >= 0; beta1, beta2 in [0, 1); step >= 1. */
COLLAPSE_API collapse_status collapse_adam_step_f32(int64_t n, float *x, const float *g, float *m, float *v,
                                                    int64_t step, double lr, double beta1, double beta2,
                                                    double eps, double weight_decay, int decoupled);
COLLAPSE_API collapse_status collapse_adam_step_f64(int64_t n, double *x, const double *g, double *m, double *v,
                                                    int64_t step, double lr, double beta1, double beta2,
                                                    double eps, double weight_decay, int decoupled);
/* The same step, then g = 0 in the same pass over memory (step() followed by zero_grad()). */
COLLAPSE_API collapse_status collapse_adam_step_zero_grad_f32(int64_t n, float *x, float *g, float *m, float *v,
                                                              int64_t step, double lr, double beta1, double beta2,
                                                              double eps, double weight_decay, int decoupled);
COLLAPSE_API collapse_status collapse_adam_step_zero_grad_f64(int64_t n, double *x, double *g, double *m, double *v,
                                                              int64_t step, double lr, double beta1, double beta2,
                                                              double eps, double weight_decay, int decoupled);

/* ==== neural-collapse metrics (csrc/nc, docs/metrics.md) ============================ */
/* ---- neural-collapse metrics ----------------------------------------------------
 * Two streaming passes over the same data: pass 1 (counts, class sums), end_pass1
 * (class means, the C x C Gram of the centred means and its eigen-decomposition),
 * pass 2 (cosine sums, within-class energies and projections, classifier counts),
 * then collapse_nc_stats_result. Batches may be fed in any order and split in any
 * way, but pass 2 must see exactly the samples of pass 1. All accumulation is in
 * double whatever the feature dtype; memory is O(C d) (+ d x d with
 * COLLAPSE_NC_WITHIN_SPECTRUM). Labels are int32 in 1..classes. */
typedef struct collapse_nc_stats collapse_nc_stats; /* opaque */

enum { COLLAPSE_NC_WITHIN_SPECTRUM = 1 }; /* also accumulate Sigma_W (d x d) for within_spectrum */

/* Metric conventions (docs/metrics.md, "Conventions"): OR them into the flags of collapse_nc_stats_new
 * or collapse_nc_measure, or set them with collapse_nc_stats_set_conventions. 0 is the default of
 * every metric; each bit switches one metric to the convention other published code uses. */
enum {
    COLLAPSE_NC_CONV_MEAN_SAMPLES = 1 << 8,       /* M~ rows mu_c - mu_G (sample mean), not mu_c - mu_P */
    COLLAPSE_NC_CONV_NC1_TRACE = 1 << 9,          /* nc1 = Tr(Sigma_W Sigma_B^+), not divided by C */
    COLLAPSE_NC_CONV_CDNV_UNBIASED = 1 << 10,     /* cdnv's v_c over n_c - 1, not n_c */
    COLLAPSE_NC_CONV_STD_UNBIASED = 1 << 11,      /* equinorm, w_equinorm: std over C - 1, not C */
    COLLAPSE_NC_CONV_EQUIANGULAR_SIGNED = 1 << 12, /* equiangular: mean of cos + 1/(C-1), not of |.| */
    COLLAPSE_NC_CONV_SELF_DUALITY_NORM = 1 << 13, /* self_duality: the norm, not its square */
    COLLAPSE_NC_CONV_NCC_NO_BIAS = 1 << 14,       /* ncc_agreement: argmax of W h, without the bias */
    COLLAPSE_NC_CONV_ALL = 0x7f << 8
};

COLLAPSE_API collapse_status collapse_nc_stats_new(int classes, int64_t dim, int flags, collapse_nc_stats **out);
COLLAPSE_API void collapse_nc_stats_free(collapse_nc_stats *s); /* NULL is fine */
/* Optional classifier W (classes x dim, row-major, double) and bias b (classes, may be NULL).
 * Copied. Must be set before the first pass-2 batch; a later call replaces the earlier one. */
COLLAPSE_API collapse_status collapse_nc_stats_set_classifier(collapse_nc_stats *s, const double *W,
                                                              const double *b);
/* features: n x dim row-major, COLLAPSE_FLOAT32 or COLLAPSE_FLOAT64; labels: n int32 in 1..classes.
 * A batch with a bad label or a non-finite feature is rejected whole (nothing accumulated). */
COLLAPSE_API collapse_status collapse_nc_stats_pass1(collapse_nc_stats *s, collapse_dtype dtype,
                                                     const void *features, int64_t n, const int32_t *labels);
/* Class means, mu_G, the Gram eigen-decomposition and the nc1 basis. Fails when a class has
 * fewer than 2 samples (naming the class) or when all class means are identical. */
COLLAPSE_API collapse_status collapse_nc_stats_end_pass1(collapse_nc_stats *s);
COLLAPSE_API collapse_status collapse_nc_stats_pass2(collapse_nc_stats *s, collapse_dtype dtype,
                                                     const void *features, int64_t n, const int32_t *labels);
/* The same passes on tensors: features must be a contiguous float32/float64 [n x dim] tensor with
 * dim the stats' own, labels a contiguous int32 [n]; anything else fails naming both shapes
 * (the raw-pointer passes cannot see the width of what they are given). */
COLLAPSE_API collapse_status collapse_nc_stats_pass1_tensor(collapse_nc_stats *s, const collapse_tensor *features,
                                                            const collapse_tensor *labels);
COLLAPSE_API collapse_status collapse_nc_stats_pass2_tensor(collapse_nc_stats *s, const collapse_tensor *features,
                                                            const collapse_tensor *labels);
/* classes, dim and flags the stats were made with; any pointer may be NULL. */
COLLAPSE_API collapse_status collapse_nc_stats_shape(const collapse_nc_stats *s, int *classes, int64_t *dim,
                                                     int *flags);
/* The COLLAPSE_NC_CONV_* bits in force. Set: MEAN_SAMPLES only before end_pass1 (it shapes the
 * centred means and the nc1 basis), NCC_NO_BIAS only before the first pass-2 batch, the others
 * (applied by the result) at any time; anything else fails naming the bit. */
COLLAPSE_API collapse_status collapse_nc_stats_set_conventions(collapse_nc_stats *s, int conventions);
COLLAPSE_API collapse_status collapse_nc_stats_conventions(const collapse_nc_stats *s, int *conventions);
/* Class means (classes x dim) and the global sample mean (dim) after end_pass1; either may be NULL. */
COLLAPSE_API collapse_status collapse_nc_stats_means(const collapse_nc_stats *s, double *class_means,
                                                     double *global_mean);

/* Sharded measurement (docs/metrics.md, "Sharded measurement"): the whole state (pass-1 sums, the
 * classifier, and after end_pass1 the means, basis and pass-2 sums) serialised to a versioned,
 * CRC-checked little-endian buffer or file (written atomically), and merged. Protocol: pass 1 on
 * every shard, merge; end_pass1; pass 2 on every shard starting from that one merged state
 * (save it, load it per shard), merge; result. Merging adds counts and sums (dst += src), so the
 * merged result equals one pass up to the rounding of the summation order. Merge refuses states of
 * other shapes/flags, a pass-1 state with a pass-2 one, and pass-2 states that did not start
 * from the same pass-1 state. serialize: *buf is malloc'd (free it). Corrupt, truncated and
 * foreign buffers/files fail with COLLAPSE_ERR_FORMAT naming the problem. */
COLLAPSE_API collapse_status collapse_nc_stats_serialize(const collapse_nc_stats *s, void **buf, size_t *len);
COLLAPSE_API collapse_status collapse_nc_stats_deserialize(const void *buf, size_t len, collapse_nc_stats **out);
COLLAPSE_API collapse_status collapse_nc_stats_save(const collapse_nc_stats *s, const char *path);
COLLAPSE_API collapse_status collapse_nc_stats_load(const char *path, collapse_nc_stats **out);
COLLAPSE_API collapse_status collapse_nc_stats_merge(collapse_nc_stats *dst, const collapse_nc_stats *src);
COLLAPSE_API collapse_status collapse_nc_stats_clone(const collapse_nc_stats *s, collapse_nc_stats **out);

/* From files (csrc/nc/stats_files.c): features [N x d] (NPY, streamed a chunk of rows at a time,
 * or CSV) and labels [N] (or [N x 1]; any integer dtype or integral floats) starting at
 * label_base (0 as numpy/PyTorch write them, or 1). _info checks both files (same N, labels
 * integral and in range; classes <= 0: inferred as max - base + 1) and gives N, d and the class
 * count; _pass_files runs pass 1 or 2 (pass = 1 or 2) over the pair. Memory: O(C d) + one chunk.
 * A bad label fails naming its value and 0-based row. An .npz member is named "a.npz:member"; a
 * bare "a.npz" means its member "features" (or "labels"); members stream by rows, stored or deflated. */
COLLAPSE_API collapse_status collapse_nc_files_info(const char *features, const char *labels, int label_base,
                                                    int classes, int64_t *n, int64_t *dim, int *classes_out);
COLLAPSE_API collapse_status collapse_nc_stats_pass_files(collapse_nc_stats *s, int pass, const char *features,
                                                          const char *labels, int label_base);

typedef struct collapse_nc_result {
    int classes;
    int64_t dim, samples;
    /* the paper's cosine measures */
    double intra_cos, intra_cos_min, intra_cos_q;
    double inter_cos, inter_cos_max, inter_cos_q;
    double feature_norm;
    /* NC1..NC4 */
    double nc1, variability, cdnv, equinorm, equiangular, max_cos, etf_error;
    /* classifier-based (0 when has_classifier == 0) */
    int has_classifier;
    double w_equinorm, self_duality, ncc_agreement, accuracy, loss;
    double q;
    /* arrays, allocated by collapse_nc_stats_result, freed by collapse_nc_result_free */
    int64_t *class_counts;     /* classes */
    double *intra_per_class;   /* classes */
    double *etf_spectrum;      /* classes, descending */
    double *between_spectrum;  /* classes, descending */
    int within_spectrum_len;   /* min(dim, 2 classes) with COLLAPSE_NC_WITHIN_SPECTRUM, else 0 */
    double *within_spectrum;   /* NULL unless flagged */
    /* energies in the notation of the bound (centred by the global sample mean mu_G) */
    double trace_within;       /* V = Tr(Sigma_W) = (1/N) sum ||h_i - mu_{y_i}||^2 */
    double between_energy;     /* B = (1/C) sum_c ||mu_c - mu_G||^2 */
    double mean_sq_norm;       /* Q = (1/N) sum ||h_i||^2 = feature_norm^2 + ||mu_G||^2 */
} collapse_nc_result;

/* After pass 2. q in [0, 1] (0.05 is customary). Fills *out (allocating its arrays). */
COLLAPSE_API collapse_status collapse_nc_stats_result(const collapse_nc_stats *s, double q, collapse_nc_result *out);
COLLAPSE_API void collapse_nc_result_free(collapse_nc_result *r); /* frees arrays, zeroes; safe on a zeroed struct */

/* One-shot: both passes over one in-memory n x dim array. W (classes x dim) and b may be NULL
 * (b only with W). flags: COLLAPSE_NC_WITHIN_SPECTRUM and the COLLAPSE_NC_CONV_* bits. */
COLLAPSE_API collapse_status collapse_nc_measure(collapse_dtype dtype, const void *features, int64_t n, int64_t dim,
                                                 const int32_t *labels, int classes, const double *W,
                                                 const double *b, double q, int flags, collapse_nc_result *out);

/* ==== file formats (csrc/io, docs/formats.md) ======================================== */
/* A dense array read from a file; data is malloc'd, free with collapse_array_free.
 * ndim may be 0 (a scalar NPY file: one element). Elements = product of shape[0..ndim). */
typedef struct collapse_array {
    collapse_dtype dtype;
    int ndim;
    int64_t shape[COLLAPSE_MAX_DIMS];
    void *data;
} collapse_array;

/* Frees data and zeroes the struct; NULL and a second call are fine. */
COLLAPSE_API void collapse_array_free(collapse_array *a);
/* Number of elements (product of the shape; 1 for ndim 0). */
COLLAPSE_API int64_t collapse_array_numel(const collapse_array *a);

/* IDX (MNIST / Fashion-MNIST), gzip-compressed or raw (detected from the content).
 * Output dtype by IDX type and rank:
 *   1-d ubyte/byte/short/int   -> int32 labels, each + label_offset (range-checked)
 *   n-d ubyte (n >= 2)         -> float32, /255 into [0,1] when scale_to_unit is 1, else raw 0..255
 *   n-d byte/short (n >= 2)    -> float32 (exact)
 *   n-d int (n >= 2)           -> int32 (unchanged)
 *   float -> float32, double -> float64 (any rank); with label_offset != 0 (a label file)
 *   float data is an error: labels are never truncated from floats
 * limit > 0 reads only the first `limit` items (first dimension; clamped to the count),
 * limit == 0 reads all, limit < 0 is an error. */
COLLAPSE_API collapse_status collapse_idx_read(const char *path, int scale_to_unit, int32_t label_offset,
                                               int64_t limit, collapse_array *out);

/* NPY v1.0 / v2.0 / v3.0 (a gzip-compressed .npy is read transparently too). C order only.
 * dtypes (byte order '<', '>', '|' or '='):
 *   f4 -> float32, f8 -> float64,
 *   i1 i2 i4 u1 u2 -> int32, i8 u4 u8 -> int32 with a range check (error if a value does not fit). */
COLLAPSE_API collapse_status collapse_npy_read(const char *path, collapse_array *out);

/* Writes NPY v1.0 (float32 '<f4', float64 '<f8', int32 '<i4'; little-endian on any host; header
 * padded to a multiple of 64 bytes like numpy) atomically, see collapse_write_file_atomic.
 * ndim 0..COLLAPSE_MAX_DIMS; data may be NULL only when the shape has no elements. */
COLLAPSE_API collapse_status collapse_npy_write(const char *path, collapse_dtype dtype, int ndim,
                                                const int64_t *shape, const void *data);

/* Row-range NPY reader (csrc/io/npy_rows.c): the same files as collapse_npy_read, read a chunk
 * of rows (first-axis slices) at a time so that only the chunk is in memory. _shape returns ndim
 * and fills shape (may be NULL); _read converts the next min(max_rows, rows left) rows to dtype
 * (float32, float64 or int32; a float file cannot be read as int32) into out, *got_rows = 0 at the
 * end; a file shorter than its header says fails naming the missing rows. */
typedef struct collapse_npy_rows collapse_npy_rows; /* opaque */
COLLAPSE_API collapse_status collapse_npy_rows_open(const char *path, collapse_npy_rows **out);
/* The same over the NPY member `member` (with or without ".npy") of an .npz archive, stored or
 * deflated (inflated as the rows are read); an absent member fails listing the members. */
COLLAPSE_API collapse_status collapse_npy_rows_open_npz(const char *archive, const char *member,
                                                        collapse_npy_rows **out);
COLLAPSE_API int collapse_npy_rows_shape(const collapse_npy_rows *r, int64_t *shape);
COLLAPSE_API int collapse_npy_rows_is_float(const collapse_npy_rows *r);
COLLAPSE_API int collapse_npy_rows_is_float32(const collapse_npy_rows *r);
COLLAPSE_API collapse_status collapse_npy_rows_read(collapse_npy_rows *r, collapse_dtype dtype, int64_t max_rows,
                                                    void *out, int64_t *got_rows);
COLLAPSE_API void collapse_npy_rows_close(collapse_npy_rows *r); /* NULL is fine */

/* CSV of numbers (a .csv.gz is read transparently). '#' comment lines and blank lines are skipped;
 * the first remaining line is a header if any of its cells is not a number. Separator: ',' if the
 * first line has one, else ';', else tab (every row must then have the same number of cells).
 * label_column: 0 = none (labels may be NULL), k > 0 = 1-based column of integer labels, returned
 * in `labels` as int32 1-d + label_offset. `features`: float64 [rows x cols] (label column removed). */
COLLAPSE_API collapse_status collapse_csv_read(const char *path, int label_column, int32_t label_offset,
                                               collapse_array *features, collapse_array *labels);

/* Writes len bytes to path atomically: a temporary path.tmp.XXXXXX is created in the same directory
 * (O_EXCL, so nothing is clobbered), written, fsync'ed and renamed over path, then the directory is
 * fsync'ed. An existing file keeps its permission bits; readers see either the old or the new
 * content, never a mixture. On failure the temporary file is removed and path is untouched. */
COLLAPSE_API collapse_status collapse_write_file_atomic(const char *path, const void *bytes, size_t len);

/* ==== the collapse bound (csrc/nc/bound.c, docs/theory.md) ========================= */
/* ---- the collapse bound ---------------------------------------------------------------
 * Setting: C balanced classes, last-layer BatchNorm (training mode) then a linear classifier,
 * weight decay lambda on the last-layer parameters (PyTorch convention, penalty lambda/2 ||.||^2),
 * L_reg = mean cross-entropy + lambda/2 (||W||^2 + ||b||^2 + ||gamma||^2 + ||beta||^2). */

/* Theorem 1: L_reg >= L*(lambda, C) = min_{t >= 0} phi(t/sqrt(C)) + lambda t, in closed form.
 * When lambda sqrt(C) >= 1, L* = log C and t* = 0. lambda > 0 finite, classes >= 2.
 * Either output pointer may be NULL. */
COLLAPSE_API collapse_status collapse_optimal_loss(double lambda, int classes, double *loss, double *t_star);

typedef struct collapse_bound_input {
    double lambda;     /* weight decay, > 0 */
    int classes;       /* C >= 2 */
    double loss;       /* the regularised loss L_reg (>= L*, up to 1e-12 relative) */
    int64_t per_class; /* samples per class n >= 2; 0 = unknown (factor n/(n-1) taken as 1) */
    int bn;            /* 1 = last-layer BN (default); 0 = none: nothing guaranteed, reason says why */
    double q;          /* quantile fraction in (0, 1) for the Markov bound, default 0.05 */
} collapse_bound_input;

typedef struct collapse_bound_result {
    int guaranteed;       /* 1 when Theorem 2 certifies collapse; else the bounds below are trivial */
    char reason[256];     /* why nothing is guaranteed ("" when guaranteed) */
    double optimal_loss;  /* L* */
    double t_star;        /* t* */
    double epsilon;       /* loss - L* (0 when within rounding of L*; may be < 0 when bn = 0) */
    /* Certified bounds. Cosines are clamped to [-1, 1]; trivial values when not guaranteed:
     * intra -1, inter 1, variability +inf, self-duality -1, quantile -1. */
    double intra_cos_min;     /* class-average intra-class cosine >= this */
    double inter_cos_max;     /* pair-average inter-class cosine <= this */
    double variability_max;   /* V/B <= this */
    double within_energy_max; /* V <= this (2 epsilon/lambda; valid whenever bn = 1; +inf when bn = 0) */
    double self_duality_min;  /* cos((w_c - w_bar)_c, (M_c)_c) >= this */
    double intra_cos_q_min;   /* all but a q fraction of classes have intra-class cosine >= this */
    /* the same bounds unclamped (as in spec/fixtures/bound_vectors.csv); trivial when not guaranteed */
    double raw_intra_cos_min, raw_inter_cos_max, raw_self_duality_min, raw_intra_cos_q_min;
    int intra_vacuous, inter_vacuous; /* bound no better than the trivial -1 / 1 (always 1 when not guaranteed) */
    /* Leading-order form as epsilon -> 0 (clamped to [-1, 1]); reported whenever lambda sqrt(C) < 1
     * and bn = 1, even when the certified bound is not guaranteed (else -1 and 1). */
    double asymptotic_intra_cos_min, asymptotic_inter_cos_max;
    /* intermediate quantities of Theorem 2 (trivial when not guaranteed: r_min 0, r_max +inf, eta 1) */
    double r_min, r_max; /* r_min <= ||M_c|| for every class; r_max bounds ||M_c|| from above */
    double eta;          /* self-duality slack: self_duality_min = 1 - eta */
    double delta;        /* sqrt(2 epsilon / lambda) */
    double t_lo, t_hi;   /* {t >= 0 : G(t) <= L* + epsilon} (step 1; 0 and +inf when not computed) */
    double kappa_lo, kappa_hi; /* step 5 (0 and +inf when not computed) */
} collapse_bound_result;

/* bn = 1, q = 0.05, per_class = 0; lambda, classes and loss zeroed (must be set). */
COLLAPSE_API void collapse_bound_input_defaults(collapse_bound_input *in);

/* Theorem 2: what the regularised loss in->loss certifies about the last-layer features.
 * Returns COLLAPSE_OK whenever the input is valid, with out->guaranteed = 0 and a reason when
 * nothing is guaranteed (bn = 0, lambda sqrt(C) >= 1, loss too far above L*). Fails with
 * COLLAPSE_ERR_ARG on bad input, including a loss below L* (bn = 1). No field is ever NaN. */
COLLAPSE_API collapse_status collapse_bound(const collapse_bound_input *in, collapse_bound_result *out);

/* ==== convolutional layers (csrc/nn: conv2d, batchnorm2d, pool2d), NCHW, _f32 and _f64 ==========
 * PyTorch 1.13 semantics on contiguous NCHW arrays. Every kernel takes the input's shape as
 * int64_t[4] = {N, C, H, W} (conv2d also the weight's {Cout, Cin, kH, kW}), all sizes > 0; the
 * output shape follows (the *_output_shape helpers compute it). Sizes and options are validated
 * before anything is written; messages name the function and the argument, e.g.
 * "conv2d_forward: input has 3 channels, weight expects 4". Outputs must not overlap inputs
 * unless stated; "+=" outputs accumulate, the others are overwritten. No allocation. */

/* ---- conv2d: y[N, Cout, Ho, Wo] = weight * x + bias (cross-correlation, no dilation/groups)
 * Ho = (H + 2 padding - kH) / stride + 1 (floor), Wo likewise; stride >= 1, padding >= 0, and the
 * kernel must fit the padded input. Implemented as im2col + one gemm per sample:
 * columns[Cin kH kW x Ho Wo] is a caller-provided scratch array of *columns_numel elements, which
 * is 0 (columns may be NULL) for a 1x1 kernel with stride 1 and padding 0 (x is used directly).
 * Output pointers of the helper may be NULL. */
COLLAPSE_API collapse_status collapse_conv2d_output_shape(const int64_t input_shape[4],
                                                          const int64_t weight_shape[4], int64_t stride,
                                                          int64_t padding, int64_t output_shape[4],
                                                          int64_t *columns_numel);
/* bias[Cout] may be NULL (no bias). */
COLLAPSE_API collapse_status collapse_conv2d_forward_f32(const int64_t input_shape[4], const int64_t weight_shape[4],
                                                         const float *input, float *output, const float *weight,
                                                         const float *bias, float *columns, int64_t stride,
                                                         int64_t padding);
COLLAPSE_API collapse_status collapse_conv2d_forward_f64(const int64_t input_shape[4], const int64_t weight_shape[4],
                                                         const double *input, double *output, const double *weight,
                                                         const double *bias, double *columns, int64_t stride,
                                                         int64_t padding);
/* grad_input = d/dx (overwritten), grad_weight += d/dW, grad_bias += sum of grad_output over
 * N, Ho, Wo (in double); each of the three may be NULL. input is needed (non-NULL) only for
 * grad_weight, weight only for grad_input, columns only for either of them. */
COLLAPSE_API collapse_status collapse_conv2d_backward_f32(const int64_t input_shape[4], const int64_t weight_shape[4],
                                                          const float *input, const float *grad_output,
                                                          float *grad_input, const float *weight, float *grad_weight,
                                                          float *grad_bias, float *columns, int64_t stride,
                                                          int64_t padding);
COLLAPSE_API collapse_status collapse_conv2d_backward_f64(const int64_t input_shape[4], const int64_t weight_shape[4],
                                                          const double *input, const double *grad_output,
                                                          double *grad_input, const double *weight,
                                                          double *grad_weight, double *grad_bias, double *columns,
                                                          int64_t stride, int64_t padding);

/* ---- batchnorm2d: per-channel statistics over N H W (PyTorch BatchNorm2d) --------------------
 * Same contracts as the batchnorm kernels above with features = channels and m = N H W values per
 * channel: train normalises with the biased variance, running_var gets the unbiased one
 * (m/(m-1)); m >= 2 in train mode. gamma, beta, running_*, save_* are [C]. y may equal x;
 * grad_input may equal grad_output. */
COLLAPSE_API collapse_status collapse_batchnorm2d_forward_train_f32(const int64_t input_shape[4], const float *x,
                                                                    float *y, const float *gamma, const float *beta,
                                                                    float *running_mean, float *running_var,
                                                                    float *save_mean, float *save_invstd,
                                                                    double momentum, double eps);
COLLAPSE_API collapse_status collapse_batchnorm2d_forward_train_f64(const int64_t input_shape[4], const double *x,
                                                                    double *y, const double *gamma,
                                                                    const double *beta, double *running_mean,
                                                                    double *running_var, double *save_mean,
                                                                    double *save_invstd, double momentum, double eps);
COLLAPSE_API collapse_status collapse_batchnorm2d_forward_eval_f32(const int64_t input_shape[4], const float *x,
                                                                   float *y, const float *gamma, const float *beta,
                                                                   const float *running_mean,
                                                                   const float *running_var, double eps);
COLLAPSE_API collapse_status collapse_batchnorm2d_forward_eval_f64(const int64_t input_shape[4], const double *x,
                                                                   double *y, const double *gamma,
                                                                   const double *beta, const double *running_mean,
                                                                   const double *running_var, double eps);
COLLAPSE_API collapse_status collapse_batchnorm2d_backward_train_f32(const int64_t input_shape[4], const float *x,
                                                                     const float *grad_output, float *grad_input,
                                                                     const float *gamma, float *grad_gamma,
                                                                     float *grad_beta, const float *save_mean,
                                                                     const float *save_invstd);
COLLAPSE_API collapse_status collapse_batchnorm2d_backward_train_f64(const int64_t input_shape[4], const double *x,
                                                                     const double *grad_output, double *grad_input,
                                                                     const double *gamma, double *grad_gamma,
                                                                     double *grad_beta, const double *save_mean,
                                                                     const double *save_invstd);
/* BatchNorm2d (train) followed by ReLU in one kernel, as batchnorm_relu_*_train for [n x f]:
 * y = relu(batchnorm2d_forward_train(x)); the backward takes that y and the gradient at it (gx,
 * ggamma, gbeta as batchnorm2d_backward_train of relu_backward(y, grad_output)). The same values
 * as the kernels in turn; grad_input may equal grad_output. */
COLLAPSE_API collapse_status collapse_batchnorm2d_relu_forward_train_f32(const int64_t input_shape[4],
                                                                         const float *x, float *y,
                                                                         const float *gamma, const float *beta,
                                                                         float *running_mean, float *running_var,
                                                                         float *save_mean, float *save_invstd,
                                                                         double momentum, double eps);
COLLAPSE_API collapse_status collapse_batchnorm2d_relu_forward_train_f64(const int64_t input_shape[4],
                                                                         const double *x, double *y,
                                                                         const double *gamma, const double *beta,
                                                                         double *running_mean, double *running_var,
                                                                         double *save_mean, double *save_invstd,
                                                                         double momentum, double eps);
COLLAPSE_API collapse_status collapse_batchnorm2d_relu_backward_train_f32(
    const int64_t input_shape[4], const float *x, const float *y, const float *grad_output, float *grad_input,
    const float *gamma, float *grad_gamma, float *grad_beta, const float *save_mean, const float *save_invstd);
COLLAPSE_API collapse_status collapse_batchnorm2d_relu_backward_train_f64(
    const int64_t input_shape[4], const double *x, const double *y, const double *grad_output, double *grad_input,
    const double *gamma, double *grad_gamma, double *grad_beta, const double *save_mean, const double *save_invstd);
/* x and running_mean are needed only for grad_gamma. */
COLLAPSE_API collapse_status collapse_batchnorm2d_backward_eval_f32(const int64_t input_shape[4], const float *x,
                                                                    const float *grad_output, float *grad_input,
                                                                    const float *gamma, float *grad_gamma,
                                                                    float *grad_beta, const float *running_mean,
                                                                    const float *running_var, double eps);
COLLAPSE_API collapse_status collapse_batchnorm2d_backward_eval_f64(const int64_t input_shape[4], const double *x,
                                                                    const double *grad_output, double *grad_input,
                                                                    const double *gamma, double *grad_gamma,
                                                                    double *grad_beta, const double *running_mean,
                                                                    const double *running_var, double eps);

/* ---- max / average pooling, square kernel k, stride s, no padding, floor mode ----------------
 * Ho = (H - k) / s + 1, Wo likewise; k >= 1, s >= 1, k <= H and k <= W. */
COLLAPSE_API collapse_status collapse_pool2d_output_shape(const int64_t input_shape[4], int64_t kernel,
                                                          int64_t stride, int64_t output_shape[4]);
/* y = window maximum (NaN propagates); indices[N, C, Ho, Wo] (or NULL) = the 0-based position
 * ih W + iw of the maximum in its H x W plane, the first one in row-major window order on ties
 * (as PyTorch). The planes must have at most INT32_MAX elements. */
COLLAPSE_API collapse_status collapse_maxpool2d_forward_f32(const int64_t input_shape[4], const float *x, float *y,
                                                            int32_t *indices, int64_t kernel, int64_t stride);
COLLAPSE_API collapse_status collapse_maxpool2d_forward_f64(const int64_t input_shape[4], const double *x,
                                                            double *y, int32_t *indices, int64_t kernel,
                                                            int64_t stride);
/* grad_input[N, C, H, W] = 0, then grad_output scattered (+=) to the forward's indices, which are
 * all range-checked first (COLLAPSE_ERR_RANGE). */
COLLAPSE_API collapse_status collapse_maxpool2d_backward_f32(const int64_t input_shape[4], const float *grad_output,
                                                             float *grad_input, const int32_t *indices,
                                                             int64_t kernel, int64_t stride);
COLLAPSE_API collapse_status collapse_maxpool2d_backward_f64(const int64_t input_shape[4],
                                                             const double *grad_output, double *grad_input,
                                                             const int32_t *indices, int64_t kernel,
                                                             int64_t stride);
/* y = window mean (sum in double / k^2); backward spreads grad_output / k^2 over each window
 * (grad_input overwritten). */
COLLAPSE_API collapse_status collapse_avgpool2d_forward_f32(const int64_t input_shape[4], const float *x, float *y,
                                                            int64_t kernel, int64_t stride);
COLLAPSE_API collapse_status collapse_avgpool2d_forward_f64(const int64_t input_shape[4], const double *x,
                                                            double *y, int64_t kernel, int64_t stride);
COLLAPSE_API collapse_status collapse_avgpool2d_backward_f32(const int64_t input_shape[4], const float *grad_output,
                                                             float *grad_input, int64_t kernel, int64_t stride);
COLLAPSE_API collapse_status collapse_avgpool2d_backward_f64(const int64_t input_shape[4],
                                                             const double *grad_output, double *grad_input,
                                                             int64_t kernel, int64_t stride);

/* (the conv2d/pooling section is added above this line) */

/* ==== image data sets and .npz archives (csrc/io: zip.c, npz.c, cifar.c, imagenet32.c, images.c;
 * docs/data.md). Added by the data branch (issue 9); keep this section last. ==================== */

/* Every member of a NumPy .npz archive (np.savez: stored, np.savez_compressed: deflated; zip64
 * archives are refused). names[i] is the member name without ".npy"; arrays[i] its array with the
 * dtypes of collapse_npy_read (integers -> int32, range-checked). Free with collapse_npz_free. */
typedef struct collapse_npz {
    int count;
    char **names;
    collapse_array *arrays;
} collapse_npz;
COLLAPSE_API collapse_status collapse_npz_read(const char *path, collapse_npz *out);
COLLAPSE_API void collapse_npz_free(collapse_npz *z);

/* CIFAR-10 (variant 10: records of 1 label byte + 3072 pixels) or CIFAR-100 (variant 100: coarse,
 * fine label bytes + 3072 pixels; fine_labels picks the fine one) binary files, read in order into
 * images float32 [N x 3 x 32 x 32] in [0, 1] and labels int32 1..C. Each file's record count follows
 * from its size (a partial record is an error); limit > 0 stops after that many records. */
COLLAPSE_API collapse_status collapse_cifar_read(const char *const *paths, int npaths, int variant, int fine_labels,
                                                 int64_t limit, collapse_array *images, collapse_array *labels);

/* Downsampled ImageNet 32 x 32 .npz files (members data uint8 [N x 3072], labels 1..1000), read in
 * order into images float32 [N x 3 x 32 x 32] in [0, 1] and labels int32; limit as above. */
COLLAPSE_API collapse_status collapse_imagenet32_read(const char *const *paths, int npaths, int64_t limit,
                                                      collapse_array *images, collapse_array *labels);

/* In place: x[i, k, :] = (x[i, k, :] - mean[k]) / std[k] over n images of c channels of hw pixels. */
COLLAPSE_API collapse_status collapse_images_normalize(float *x, int64_t n, int64_t c, int64_t hw,
                                                       const double *mean, const double *std);
/* out [n x c x (h + 2 pad) x (w + 2 pad)] = x [n x c x h x w] with a zero border of width pad. */
COLLAPSE_API collapse_status collapse_images_pad(const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                                                 int64_t pad, float *out);
/* The same on tensors (the kernel contract): x float32 [N x C x H x W] contiguous, checked here;
 * mean/std hold C values (C <= 64 for normalize_tensor); out is resized to the padded shape. */
COLLAPSE_API collapse_status collapse_images_normalize_tensor(collapse_tensor *x, const double *mean,
                                                              const double *std, int64_t nvalues);
COLLAPSE_API collapse_status collapse_images_pad_tensor(const collapse_tensor *x, int64_t pad, collapse_tensor *out);

/* ==== CNN layers (csrc/nn/dropout.c, gap2d.c, residual.c), tensor level =====================
 * The same contract as the layer kernels above: every tensor checked once (float32 or float64,
 * one dtype, shapes, contiguity), outputs RESIZED (pass any buffer, even a 0-element one). */
/* Inverted dropout, train mode: mask becomes x's shape, each element 1/(1-p) with probability
 * 1 - p, else 0 (one collapse_rng_uniform draw per element, in memory order: the same seed gives
 * the same mask); y = x * mask. p in [0, 1]; p == 1 zeroes y (PyTorch). */
COLLAPSE_API collapse_status collapse_dropout_forward(const collapse_tensor *x, collapse_tensor *y,
                                                      collapse_tensor *mask, double p, collapse_rng *g);
/* gx = gy * mask (resized to mask's shape; gx may be gy). */
COLLAPSE_API collapse_status collapse_dropout_backward(const collapse_tensor *gy, collapse_tensor *gx,
                                                       const collapse_tensor *mask);
/* y [N x C] = the mean of each H x W plane of x [N x C x H x W] (accumulated in double). */
COLLAPSE_API collapse_status collapse_global_avg_pool2d_forward(const collapse_tensor *x, collapse_tensor *y);
/* gx (resized to x's shape) = gy[n, c] / (H W) on every pixel of plane (n, c). */
COLLAPSE_API collapse_status collapse_global_avg_pool2d_backward(const collapse_tensor *x, const collapse_tensor *gy,
                                                                 collapse_tensor *gx);
/* y = a + b (same shape; y may be a or b): a residual connection's sum. */
COLLAPSE_API collapse_status collapse_add_forward(const collapse_tensor *a, const collapse_tensor *b,
                                                  collapse_tensor *y);
/* y = relu(a + b): the sum and the ReLU after it in one pass. */
COLLAPSE_API collapse_status collapse_add_relu_forward(const collapse_tensor *a, const collapse_tensor *b,
                                                       collapse_tensor *y);
/* gx = gy where y > 0, else 0 (y a ReLU's output; gx may be gy). */
COLLAPSE_API collapse_status collapse_relu_mask_backward(const collapse_tensor *y, const collapse_tensor *gy,
                                                         collapse_tensor *gx);

#ifdef __cplusplus
}
#endif
#endif /* COLLAPSE_H */
