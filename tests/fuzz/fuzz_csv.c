/* libFuzzer target: collapse_csv_read on arbitrary text, without labels and with labels in column 1. */
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    const char *path = fuzz_write(data, size);
    for (int col = 0; col <= 1; col++) {
        collapse_array x, y;
        collapse_status s = collapse_csv_read(path, col, col ? -1 : 0, &x, col ? &y : NULL);
        fuzz_check_error(s, "csv: ");
        if (s == COLLAPSE_OK) {
            fuzz_touch(&x);
            if (col) {
                fuzz_touch(&y);
                if (y.shape[0] != x.shape[0]) abort();
                collapse_array_free(&y);
            }
        }
        collapse_array_free(&x);
    }
    return 0;
}
