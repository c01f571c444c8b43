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

