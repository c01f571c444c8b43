/* Adam (coupled L2) and AdamW (decoupled weight decay) update rules, PyTorch 1.13 semantics. */
#include "collapse.h"
#include "core/args.h"

#define CL_DOUBLE 0
#include "core/generic.h"
#include "optim/adam_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "optim/adam_impl.h"
#include "core/generic_end.h"
