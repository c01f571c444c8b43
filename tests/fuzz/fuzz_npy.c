/* libFuzzer target: collapse_npy_read on arbitrary bytes (raw or gzip, detected from the content). */
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    collapse_array a;
    collapse_status s = collapse_npy_read(fuzz_write(data, size), &a);
    fuzz_check_error(s, "npy: ");
    if (s == COLLAPSE_OK) fuzz_touch(&a);
    collapse_array_free(&a);
    return 0;
}
