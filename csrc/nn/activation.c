/* Elementwise activation kernels: ReLU and tanh, forward and backward (from the output). */
#include "collapse.h"
#include "core/args.h"

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nn/activation_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nn/activation_impl.h"
#include "core/generic_end.h"
