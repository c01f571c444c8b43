/*
 * Reading raw or gzip streams through zlib (detected from the content), with buffers that grow as
 * data arrives, so a corrupt size in a header never causes a large allocation on its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/io_internal.h"

collapse_status collapse_io_reader_open(io_reader *r, const char *fn, const char *path) {
    memset(r, 0, sizeof *r);
    r->fn = fn;
    r->path = path;
    if (!path) return collapse_fail(COLLAPSE_ERR_ARG, "%s: path expected, got NULL", fn);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return collapse_fail(COLLAPSE_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return collapse_fail(COLLAPSE_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(EISDIR));
    }
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: cannot open '%s': out of memory for the zlib stream", fn, path);
    }
    gzbuffer(gz, 1u << 17);
    r->gz = gz;
    return COLLAPSE_OK;
}

void collapse_io_reader_close(io_reader *r) {
    if (r && r->gz) {
        gzclose_r((gzFile)r->gz);
        r->gz = NULL;
    }
}

collapse_status collapse_io_reader_read(io_reader *r, void *buf, size_t n, size_t *got) {
    unsigned char *p = buf;
    size_t have = 0;
    *got = 0;
    while (have < n) {
        size_t want = n - have;
        if (want > (1u << 30)) want = 1u << 30;
        int k = gzread((gzFile)r->gz, p + have, (unsigned)want);
        if (k < 0) {
            int err = Z_OK;
            const char *msg = gzerror((gzFile)r->gz, &err);
            *got = have;
            r->pos += (int64_t)have;
            if (err == Z_ERRNO)
                return collapse_fail(COLLAPSE_ERR_IO, "%s: %s: read error after %lld bytes: %s", r->fn, r->path,
                                     (long long)r->pos, strerror(errno));
            if (err == Z_MEM_ERROR)
                return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: %s: out of memory in zlib", r->fn, r->path);
            return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: corrupt gzip data after %lld bytes (%s)", r->fn,
                                 r->path, (long long)r->pos, msg ? msg : "zlib error");
        }
        if (k == 0) {
            int err = Z_OK;
            gzerror((gzFile)r->gz, &err);
            if (err == Z_BUF_ERROR) r->gz_truncated = 1;
            break;
        }
        have += (size_t)k;
    }
    *got = have;
    r->pos += (int64_t)have;
    return COLLAPSE_OK;
}

#define IO_FIRST_CHUNK ((int64_t)16 << 20)

collapse_status collapse_io_read_exact(io_reader *r, int64_t need, const char *what, unsigned char **out) {
    *out = NULL;
    if (need < 0 || need > IO_MAX_BYTES)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: %s of %lld bytes is larger than the limit of %lld bytes",
                             r->fn, r->path, what, (long long)need, (long long)IO_MAX_BYTES);
    int64_t cap = need < IO_FIRST_CHUNK ? need : IO_FIRST_CHUNK;
    unsigned char *buf = malloc(cap > 0 ? (size_t)cap : 1);
    if (!buf) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: %s: cannot allocate %lld bytes", r->fn, r->path, (long long)cap);
    cl_advise_huge_pages(buf, (size_t)cap);
    int64_t have = 0;
    while (have < need) {
        if (have == cap) {
            int64_t ncap = cap > need / 2 ? need : cap * 2;
            unsigned char *nb = realloc(buf, (size_t)ncap);
            if (!nb) {
                free(buf);
                return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: %s: cannot allocate %lld bytes for the %s", r->fn,
                                     r->path, (long long)ncap, what);
            }
            buf = nb;
            cap = ncap;
            cl_advise_huge_pages(buf, (size_t)cap); /* the array's data: see core/tensor.c */
        }
        size_t want = (size_t)(cap - have), got = 0;
        collapse_status s = collapse_io_reader_read(r, buf + have, want, &got);
        if (s != COLLAPSE_OK) {
            free(buf);
            return s;
        }
        have += (int64_t)got;
        if (got < want) break;
    }
    if (have < need) {
        free(buf);
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: truncated %s, expected %lld bytes, got %lld%s", r->fn, r->path,
                             what, (long long)need, (long long)have,
                             r->gz_truncated ? " (the gzip stream ends early)" : "");
    }
    *out = buf;
    return COLLAPSE_OK;
}

collapse_status collapse_io_read_all(io_reader *r, int64_t max, unsigned char **out, int64_t *len) {
    *out = NULL;
    *len = 0;
    int64_t cap = 1 << 16, have = 0;
    unsigned char *buf = malloc((size_t)cap + 1);
    if (!buf) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: %s: out of memory", r->fn, r->path);
    for (;;) {
        if (have == cap) {
            if (cap >= max) {
                free(buf);
                return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: file larger than the limit of %lld bytes", r->fn,
                                     r->path, (long long)max);
            }
            int64_t ncap = cap > max / 2 ? max : cap * 2;
            unsigned char *nb = realloc(buf, (size_t)ncap + 1);
            if (!nb) {
                free(buf);
                return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: %s: cannot allocate %lld bytes", r->fn, r->path,
                                     (long long)ncap);
            }
            buf = nb;
            cap = ncap;
        }
        size_t want = (size_t)(cap - have), got = 0;
        collapse_status s = collapse_io_reader_read(r, buf + have, want, &got);
        if (s != COLLAPSE_OK) {
            free(buf);
            return s;
        }
        have += (int64_t)got;
        if (got < want) break;
    }
    if (r->gz_truncated) {
        free(buf);
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: truncated gzip stream (ends after %lld bytes)", r->fn,
                             r->path, (long long)have);
    }
    buf[have] = '\0';
    *out = buf;
    *len = have;
    return COLLAPSE_OK;
}

