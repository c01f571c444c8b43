/*
 * Downsampled ImageNet 32 x 32 (Chrabaszcz et al. 2017): .npz files with members `data` (uint8
 * [N x 3072], each row 1024 red, 1024 green, 1024 blue values of a 32 x 32 image) and `labels`
 * (N integers, 1..1000), and in the training batches a `mean` (ignored). Pass 1 reads the member
 * headers of every file for the total count, pass 2 streams the pixels, as float32 in [0, 1],
 * straight into one [N x 3 x 32 x 32] buffer.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "io/npz_internal.h"

#define IN32_PIXELS 3072
#define IN32_CLASSES 1000

static collapse_status in32_open(io_zip *z, const char *name, io_npz_member *m) {
    const io_zip_entry *e = collapse_io_npz_find(z, name);
    if (!e)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "imagenet32: %s: no member '%s' (expected 'data' and 'labels')", z->path,
                             name);
    return collapse_io_npz_member_open(z, e, m);
}

/* Opens both members of one file and checks their shapes; *rows = its image count. */
static collapse_status in32_members(io_zip *z, io_npz_member *data, io_npz_member *lab, int64_t *rows) {
    COLLAPSE_TRY(in32_open(z, "data", data));
    collapse_status s = in32_open(z, "labels", lab);
    if (s != COLLAPSE_OK) {
        collapse_io_npz_member_close(data);
        return s;
    }
    char shp[256];
    if (data->info.ndim != 2 || data->info.shape[1] != IN32_PIXELS || data->info.st != IO_U8)
        s = collapse_fail(COLLAPSE_ERR_FORMAT, "imagenet32: %s: data is %s '%s', expected uint8 [N x 3072] (32 x 32 x 3)",
                          z->path, cl_shape_str(data->info.ndim, data->info.shape, shp, sizeof shp), data->info.descr);
    else if (lab->info.ndim != 1 || lab->info.shape[0] != data->info.shape[0] || lab->info.st == IO_F32 ||
             lab->info.st == IO_F64)
        s = collapse_fail(COLLAPSE_ERR_FORMAT, "imagenet32: %s: labels are %s '%s', expected %lld integers", z->path,
                          cl_shape_str(lab->info.ndim, lab->info.shape, shp, sizeof shp), lab->info.descr,
                          (long long)data->info.shape[0]);
    if (s != COLLAPSE_OK) {
        collapse_io_npz_member_close(data);
        collapse_io_npz_member_close(lab);
        return s;
    }
    *rows = data->info.shape[0];
    return COLLAPSE_OK;
}

static collapse_status in32_count(const char *path, int64_t *rows) {
    io_zip z;
    io_npz_member d, l;
    COLLAPSE_TRY(collapse_io_zip_open(&z, "imagenet32", path));
    collapse_status s = in32_members(&z, &d, &l, rows);
    if (s == COLLAPSE_OK) {
        collapse_io_npz_member_close(&d);
        collapse_io_npz_member_close(&l);
    }
    collapse_io_zip_close(&z);
    return s;
}

static collapse_status in32_check_labels(const char *path, const int32_t *lab, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (lab[i] < 1 || lab[i] > IN32_CLASSES)
            return collapse_fail(COLLAPSE_ERR_FORMAT, "imagenet32: %s: label %d at index %lld is outside 1..%d", path,
                                 lab[i], (long long)(i + 1), IN32_CLASSES);
    return COLLAPSE_OK;
}

static collapse_status in32_read_file(const char *path, int64_t rows, float *img, int32_t *lab) {
    io_zip z;
    io_npz_member d, l;
    int64_t have = 0;
    COLLAPSE_TRY(collapse_io_zip_open(&z, "imagenet32", path));
    collapse_status s = in32_members(&z, &d, &l, &have);
    if (s == COLLAPSE_OK) {
        if (have < rows) s = collapse_fail(COLLAPSE_ERR_FORMAT, "imagenet32: %s: changed while being read", path);
        if (s == COLLAPSE_OK) s = collapse_io_npz_member_read(&d, rows, 1, img);
        if (s == COLLAPSE_OK) s = collapse_io_npz_member_read(&l, rows, 0, lab);
        if (s == COLLAPSE_OK) s = in32_check_labels(path, lab, rows);
        collapse_io_npz_member_close(&d);
        collapse_io_npz_member_close(&l);
    }
    collapse_io_zip_close(&z);
    return s;
}

collapse_status collapse_imagenet32_read(const char *const *paths, int npaths, int64_t limit, collapse_array *images,
                                         collapse_array *labels) {
    if (!images || !labels) return collapse_fail(COLLAPSE_ERR_ARG, "imagenet32: images and labels expected, got NULL");
    memset(images, 0, sizeof *images);
    memset(labels, 0, sizeof *labels);
    if (!paths || npaths < 1) return collapse_fail(COLLAPSE_ERR_ARG, "imagenet32: expected at least one file");
    if (limit < 0)
        return collapse_fail(COLLAPSE_ERR_ARG, "imagenet32: limit %lld is negative, expected 0 (all) or a count",
                             (long long)limit);
    int64_t *counts = calloc((size_t)npaths, sizeof *counts), total = 0;
    if (!counts) return collapse_fail(COLLAPSE_ERR_NOMEM, "imagenet32: out of memory");
    collapse_status s = COLLAPSE_OK;
    for (int i = 0; s == COLLAPSE_OK && i < npaths && (limit == 0 || total < limit); i++) {
        s = in32_count(paths[i], &counts[i]);
        if (limit > 0 && total + counts[i] > limit) counts[i] = limit - total;
        total += counts[i];
    }
    float *img = NULL;
    int32_t *lab = NULL;
    if (s == COLLAPSE_OK) {
        img = malloc((size_t)(total ? total : 1) * IN32_PIXELS * sizeof *img);
        lab = malloc((size_t)(total ? total : 1) * sizeof *lab);
        if (!img || !lab)
            s = collapse_fail(COLLAPSE_ERR_NOMEM, "imagenet32: cannot allocate %lld images", (long long)total);
    }
    for (int64_t i = 0, at = 0; s == COLLAPSE_OK && i < npaths && at < total; at += counts[i], i++)
        s = in32_read_file(paths[i], counts[i], img + (size_t)at * IN32_PIXELS, lab + at);
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
