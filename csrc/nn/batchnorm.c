/* Batch normalisation (BatchNorm1d) kernels, PyTorch semantics; statistics in double. */
#include "collapse.h"
#include "core/args.h"

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nn/batchnorm_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nn/batchnorm_impl.h"
#include "core/generic_end.h"
