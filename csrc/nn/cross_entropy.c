/* Cross-entropy loss on logits with 1-based int32 labels: stable fused log-softmax, one call
 * gives the mean loss and its gradient. */
#include "collapse.h"
#include "core/args.h"

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nn/cross_entropy_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nn/cross_entropy_impl.h"
#include "core/generic_end.h"
