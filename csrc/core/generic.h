/*
 * Generic float kernels, written once and instantiated for float and double
 * (torch7's THGenerateFloatTypes pattern). A kernel file does:
 *
 *   #define CL_DOUBLE 0
 *   #include "core/generic.h"
 *   #include "nn/linear_impl.h"      (uses real, CL_FN, CL_GEMM, ...)
 *   #include "core/generic_end.h"
 *   #define CL_DOUBLE 1
 *   #include "core/generic.h"
 *   #include "nn/linear_impl.h"
 *   #include "core/generic_end.h"
 *
 * CL_FN(name) becomes name_f32 or name_f64.
 */
#include <cblas.h>
#include <math.h>

#define CL_CAT_(a, b) a##b
#define CL_CAT(a, b) CL_CAT_(a, b)

#if CL_DOUBLE
#  define real double
#  define CL_FN(name) CL_CAT(name, _f64)
#  define CL_DTYPE COLLAPSE_FLOAT64
#  define CL_GEMM cblas_dgemm
#  define CL_GEMV cblas_dgemv
#  define CL_AXPY cblas_daxpy
#  define CL_DOT cblas_ddot
#  define CL_SCAL cblas_dscal
#  define CL_SQRT sqrt
#  define CL_EXP exp
#  define CL_LOG log
#  define CL_TANH tanh
#  define CL_FABS fabs
#else
#  define real float
#  define CL_FN(name) CL_CAT(name, _f32)
#  define CL_DTYPE COLLAPSE_FLOAT32
#  define CL_GEMM cblas_sgemm
#  define CL_GEMV cblas_sgemv
#  define CL_AXPY cblas_saxpy
#  define CL_DOT cblas_sdot
#  define CL_SCAL cblas_sscal
#  define CL_SQRT sqrtf
#  define CL_EXP expf
#  define CL_LOG logf
#  define CL_TANH tanhf
#  define CL_FABS fabsf
#endif
