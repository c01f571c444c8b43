/* libFuzzer target: collapse_idx_read on arbitrary bytes, as images (scaled) and as labels (offset 1),
 * whole and with a limit. */
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    const char *path = fuzz_write(data, size);
    static const struct { int scale; int32_t offset; int64_t limit; } modes[] = { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 1, 2 } };
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        collapse_array a;
        collapse_status s = collapse_idx_read(path, modes[m].scale, modes[m].offset, modes[m].limit, &a);
        fuzz_check_error(s, "idx: ");
        if (s == COLLAPSE_OK) fuzz_touch(&a);
        collapse_array_free(&a);
    }
    return 0;
}
