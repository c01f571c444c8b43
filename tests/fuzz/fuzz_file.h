/* Shared by the libFuzzer targets: the readers take a path, so each input is written to one
 * temporary file per process (rewritten for every input), and an error must be a clear one. */
#ifndef COLLAPSE_FUZZ_FILE_H
#define COLLAPSE_FUZZ_FILE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collapse.h"

static char fuzz_path_buf[512];

/* libFuzzer ends a -max_total_time run with exit(), so the file goes with the process. */
static void fuzz_remove_file(void) {
    if (fuzz_path_buf[0]) unlink(fuzz_path_buf);
}

static inline const char *fuzz_path(void) {
    if (!fuzz_path_buf[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_path_buf, sizeof fuzz_path_buf, "%s/collapse-fuzz-%ld.bin", dir && *dir ? dir : "/tmp",
                 (long)getpid());
        atexit(fuzz_remove_file);
    }
    return fuzz_path_buf;
}

/* Writes the input to the temporary file; returns its path. */
static inline const char *fuzz_write(const unsigned char *data, size_t size) {
    const char *path = fuzz_path();
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return path;
}

/* A failure must carry a message that starts with the reader's name ("npy: ..."): a finding otherwise. */
static inline void fuzz_check_error(collapse_status s, const char *prefix) {
    if (s == COLLAPSE_OK) return;
    const char *msg = collapse_last_error();
    if (!msg || strncmp(msg, prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "fuzz: error without the '%s' prefix: %s\n", prefix, msg ? msg : "(null)");
        abort();
    }
}

/* The array a reader returned must be consistent with its shape (reads every byte under ASan). */
static inline void fuzz_touch(const collapse_array *a) {
    int64_t n = collapse_array_numel(a);
    size_t es = a->dtype == COLLAPSE_FLOAT64 ? 8 : 4;
    volatile unsigned char sink = 0;
    const unsigned char *p = a->data;
    for (int64_t i = 0; i < n * (int64_t)es; i++) sink ^= p[i];
    (void)sink;
}

#endif
