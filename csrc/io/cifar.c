/*
 * CIFAR-10 / CIFAR-100 binary versions. A file is a run of records: CIFAR-10 one label byte
 * (0..9), CIFAR-100 a coarse (0..19) then a fine (0..99) label byte, then 3072 pixel bytes (1024
 * red, 1024 green, 1024 blue, each a 32 x 32 row-major plane), so the pixels of a record are
 * already one [3 x 32 x 32] CHW image. The record count of each file follows from its size.
 * Files are read in chunks of records straight into one float32 [N x 3 x 32 x 32] buffer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io_internal.h"

#define CIFAR_PIXELS 3072
#define CIFAR_CHUNK 256 /* records per read */

typedef struct cifar_fmt {
    const char *fn;
    int label_bytes;   /* 1 or 2 */
    int pick;          /* which label byte becomes the label */
    int classes[2];    /* valid range of each label byte */
} cifar_fmt;

/* Records in the file at path (its size must be a positive whole number of records). */
static collapse_status cifar_count(const cifar_fmt *f, const char *path, int64_t *records) {
    struct stat st;
    if (stat(path, &st) != 0)
        return collapse_fail(COLLAPSE_ERR_IO, "%s: cannot open '%s': %s", f->fn, path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return collapse_fail(COLLAPSE_ERR_IO, "%s: '%s' is not a regular file", f->fn, path);
    int64_t rec = f->label_bytes + CIFAR_PIXELS, size = (int64_t)st.st_size;
    if (size == 0 || size % rec != 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT,
                             "%s: %s: %lld bytes is not a whole number of %lld-byte records (%d label byte%s + 3072 "
                             "pixels): truncated, or not a CIFAR binary file",
                             f->fn, path, (long long)size, (long long)rec, f->label_bytes, f->label_bytes > 1 ? "s" : "");
    *records = size / rec;
    return COLLAPSE_OK;
}

/* Converts `count` records in buf; `first` is the index of the first record in the file. */
static collapse_status cifar_convert(const cifar_fmt *f, const char *path, const unsigned char *buf, int64_t count,
                                     int64_t first, float *img, int32_t *lab) {
    size_t rec = (size_t)f->label_bytes + CIFAR_PIXELS;
    for (int64_t r = 0; r < count; r++) {
        const unsigned char *p = buf + (size_t)r * rec;
        for (int b = 0; b < f->label_bytes; b++)
            if (p[b] >= f->classes[b])
                return collapse_fail(COLLAPSE_ERR_FORMAT,
                                     "%s: %s: label byte %d of record %lld is %d, expected 0..%d (not a %s file?)", f->fn,
                                     path, b + 1, (long long)(first + r + 1), p[b], f->classes[b] - 1,
                                     f->label_bytes == 1 ? "CIFAR-10" : "CIFAR-100");
        lab[r] = (int32_t)p[f->pick] + 1;
        float *o = img + (size_t)r * CIFAR_PIXELS;
        for (int i = 0; i < CIFAR_PIXELS; i++) o[i] = (float)p[f->label_bytes + i] / 255.0f;
    }
    return COLLAPSE_OK;
}

static collapse_status cifar_read_file(const cifar_fmt *f, const char *path, int64_t count, float *img, int32_t *lab) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return collapse_fail(COLLAPSE_ERR_IO, "%s: cannot open '%s': %s", f->fn, path, strerror(errno));
    size_t rec = (size_t)f->label_bytes + CIFAR_PIXELS;
    unsigned char *buf = malloc(rec * CIFAR_CHUNK);
    collapse_status s = buf ? COLLAPSE_OK : collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", f->fn);
    for (int64_t done = 0; s == COLLAPSE_OK && done < count;) {
        int64_t k = count - done < CIFAR_CHUNK ? count - done : CIFAR_CHUNK;
        if (fread(buf, rec, (size_t)k, fp) != (size_t)k)
            s = collapse_fail(COLLAPSE_ERR_IO, "%s: %s: read error or file shrank at record %lld", f->fn, path,
                              (long long)(done + 1));
        else
            s = cifar_convert(f, path, buf, k, done, img + (size_t)done * CIFAR_PIXELS, lab + done);
        done += k;
    }
    free(buf);
    fclose(fp);
    return s;
}

collapse_status collapse_cifar_read(const char *const *paths, int npaths, int variant, int fine_labels, int64_t limit,
                                    collapse_array *images, collapse_array *labels) {
    cifar_fmt f = {variant == 100 ? "cifar100" : "cifar10", variant == 100 ? 2 : 1, variant == 100 && fine_labels,
                   {variant == 100 ? 20 : 10, 100}};
    if (!images || !labels) return collapse_fail(COLLAPSE_ERR_ARG, "%s: images and labels expected, got NULL", f.fn);
    memset(images, 0, sizeof *images);
    memset(labels, 0, sizeof *labels);
    if (variant != 10 && variant != 100)
        return collapse_fail(COLLAPSE_ERR_ARG, "cifar: variant %d, expected 10 or 100", variant);
    if (!paths || npaths < 1) return collapse_fail(COLLAPSE_ERR_ARG, "%s: expected at least one file", f.fn);
    if (limit < 0) return collapse_fail(COLLAPSE_ERR_ARG, "%s: limit %lld is negative, expected 0 (all) or a count",
                                        f.fn, (long long)limit);
    int64_t *counts = calloc((size_t)npaths, sizeof *counts), total = 0;
    if (!counts) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", f.fn);
    collapse_status s = COLLAPSE_OK;
    for (int i = 0; s == COLLAPSE_OK && i < npaths && (limit == 0 || total < limit); i++) {
        s = cifar_count(&f, paths[i], &counts[i]);
        if (limit > 0 && total + counts[i] > limit) counts[i] = limit - total;
        total += counts[i];
    }
    float *img = NULL;
    int32_t *lab = NULL;
    if (s == COLLAPSE_OK) {
        img = malloc((size_t)total * CIFAR_PIXELS * sizeof *img);
        lab = malloc((size_t)total * sizeof *lab);
        if (!img || !lab) s = collapse_fail(COLLAPSE_ERR_NOMEM, "%s: cannot allocate %lld images", f.fn, (long long)total);
    }
    for (int64_t i = 0, at = 0; s == COLLAPSE_OK && i < npaths && at < total; at += counts[i], i++)
        s = cifar_read_file(&f, paths[i], counts[i], img + (size_t)at * CIFAR_PIXELS, lab + at);
    free(counts);
    if (s != COLLAPSE_OK) {
        free(img);
        free(lab);
        return s;
    }
    *images = (collapse_array){COLLAPSE_FLOAT32, 4, {total, 3, 32, 32}, img};
    *labels = (collapse_array){COLLAPSE_INT32, 1, {total}, lab};
    return COLLAPSE_OK;
}
