/* Linear layer kernels: y = x W^T + b and its backward, one BLAS gemm per product. */
#include "collapse.h"
#include "core/args.h"

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nn/linear_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nn/linear_impl.h"
#include "core/generic_end.h"
