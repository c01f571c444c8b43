/* SGD update rule (momentum, dampening, Nesterov, coupled weight decay), PyTorch 1.13 semantics. */
#include "collapse.h"
#include "core/args.h"

#define CL_DOUBLE 0
#include "core/generic.h"
#include "optim/sgd_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "optim/sgd_impl.h"
#include "core/generic_end.h"
