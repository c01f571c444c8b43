/* libFuzzer target: the shared stream reader (zlib, gzip detected from the content) on arbitrary
 * bytes: read everything, then read in small exact pieces. The seeds are gzip files, so mutations
 * exercise corrupt headers, bodies, trailers and concatenated members. */
#include "fuzz_file.h"
#include "io/io_internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    const char *path = fuzz_write(data, size);
    io_reader r;
    collapse_status s = collapse_io_reader_open(&r, "gzip", path);
    fuzz_check_error(s, "gzip: ");
    if (s != COLLAPSE_OK) return 0;
    unsigned char *all = NULL;
    int64_t len = 0;
    s = collapse_io_read_all(&r, (int64_t)1 << 24, &all, &len);
    fuzz_check_error(s, "gzip: ");
    if (s == COLLAPSE_OK && all[len] != '\0') abort();
    free(all);
    collapse_io_reader_close(&r);

    s = collapse_io_reader_open(&r, "gzip", path);
    if (s != COLLAPSE_OK) return 0;
    for (int i = 0; i < 64 && s == COLLAPSE_OK; i++) {
        unsigned char *piece = NULL;
        s = collapse_io_read_exact(&r, 1 + (i % 7), "piece", &piece);
        fuzz_check_error(s, "gzip: ");
        free(piece);
    }
    collapse_io_reader_close(&r);
    return 0;
}
