/* Internal error reporting: every failing call records a message and returns its status. */
#ifndef COLLAPSE_CORE_ERROR_H
#define COLLAPSE_CORE_ERROR_H

#include "collapse.h"

#if defined(__GNUC__)
#  define COLLAPSE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define COLLAPSE_PRINTF(a, b)
#endif

/* Records "fmt ..." as the thread's last error and returns status, so callers write
 *   return collapse_fail(COLLAPSE_ERR_SHAPE, "matmul: size mismatch, [%lld x %lld] @ ...", ...); */
collapse_status collapse_fail(collapse_status status, const char *fmt, ...) COLLAPSE_PRINTF(2, 3);

/* Propagate a failing status unchanged (the callee already set the message). */
#define COLLAPSE_TRY(expr)                                   \
    do {                                                     \
        collapse_status collapse_try_s_ = (expr);            \
        if (collapse_try_s_ != COLLAPSE_OK) return collapse_try_s_; \
    } while (0)

#endif
