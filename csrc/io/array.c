/* collapse_array helpers and the shape formatting every io message uses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"

void collapse_array_free(collapse_array *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

int64_t collapse_array_numel(const collapse_array *a) {
    if (!a) return 0;
    int64_t n = 1;
    for (int i = 0; i < a->ndim && i < COLLAPSE_MAX_DIMS; i++) n *= a->shape[i];
    return n;
}

const char *collapse_io_shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = 0;
    if (size == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? " x %lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, ndim ? "]" : "scalar]");
    return buf;
}

