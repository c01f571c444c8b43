/* Thread-local last-error state. The library never prints, aborts or exits on bad input. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[1024];
static _Thread_local collapse_status last_status = COLLAPSE_OK;

collapse_status collapse_fail(collapse_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    last_status = status;
    return status;
}

const char *collapse_last_error(void) { return last_message; }
collapse_status collapse_last_status(void) { return last_status; }

void collapse_clear_error(void) {
    last_message[0] = '\0';
    last_status = COLLAPSE_OK;
}

const char *collapse_status_name(collapse_status s) {
    switch (s) {
    case COLLAPSE_OK: return "ok";
    case COLLAPSE_ERR_ARG: return "bad argument";
    case COLLAPSE_ERR_SHAPE: return "shape mismatch";
    case COLLAPSE_ERR_DTYPE: return "wrong dtype";
    case COLLAPSE_ERR_RANGE: return "out of range";
    case COLLAPSE_ERR_NOMEM: return "out of memory";
    case COLLAPSE_ERR_IO: return "i/o error";
    case COLLAPSE_ERR_FORMAT: return "bad file format";
    case COLLAPSE_ERR_NUMERIC: return "numerical failure";
    case COLLAPSE_ERR_STATE: return "wrong state";
    }
    return "unknown status";
}

const char *collapse_dtype_name(collapse_dtype t) {
    switch (t) {
    case COLLAPSE_FLOAT32: return "float32";
    case COLLAPSE_FLOAT64: return "float64";
    case COLLAPSE_INT32: return "int32";
    }
    return "unknown";
}

collapse_status collapse_dtype_from_name(const char *name, collapse_dtype *out) {
    if (!name) return collapse_fail(COLLAPSE_ERR_ARG, "dtype: name expected, got NULL");
    if (!strcmp(name, "float32") || !strcmp(name, "float")) *out = COLLAPSE_FLOAT32;
    else if (!strcmp(name, "float64") || !strcmp(name, "double")) *out = COLLAPSE_FLOAT64;
    else if (!strcmp(name, "int32") || !strcmp(name, "int")) *out = COLLAPSE_INT32;
    else
        return collapse_fail(COLLAPSE_ERR_DTYPE,
                             "dtype: unknown dtype '%s' (expected float32, float64 or int32)", name);
    return COLLAPSE_OK;
}

size_t collapse_dtype_size(collapse_dtype t) {
    return t == COLLAPSE_FLOAT64 ? 8 : 4;
}
