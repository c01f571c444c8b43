/*
 * Atomic file writes, plus the small helpers every file format shares: arrays, reading raw or
 * gzip streams through zlib with growth-as-data-arrives buffers, and element conversion with
 * explicit byte order (host independent).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "io/io_internal.h"

/* ---- arrays ------------------------------------------------------------------ */

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

const char *io_shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = 0;
    if (size == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? " x %lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, ndim ? "]" : "scalar]");
    return buf;
}

/* ---- reading ------------------------------------------------------------------- */

collapse_status io_reader_open(io_reader *r, const char *fn, const char *path) {
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

void io_reader_close(io_reader *r) {
    if (r && r->gz) {
        gzclose_r((gzFile)r->gz);
        r->gz = NULL;
    }
}

collapse_status io_reader_read(io_reader *r, void *buf, size_t n, size_t *got) {
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

collapse_status io_read_exact(io_reader *r, int64_t need, const char *what, unsigned char **out) {
    *out = NULL;
    if (need < 0 || need > IO_MAX_BYTES)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: %s of %lld bytes is larger than the limit of %lld bytes",
                             r->fn, r->path, what, (long long)need, (long long)IO_MAX_BYTES);
    int64_t cap = need < IO_FIRST_CHUNK ? need : IO_FIRST_CHUNK;
    unsigned char *buf = malloc(cap > 0 ? (size_t)cap : 1);
    if (!buf) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: %s: cannot allocate %lld bytes", r->fn, r->path, (long long)cap);
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
        }
        size_t want = (size_t)(cap - have), got = 0;
        collapse_status s = io_reader_read(r, buf + have, want, &got);
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

collapse_status io_read_all(io_reader *r, int64_t max, unsigned char **out, int64_t *len) {
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
        collapse_status s = io_reader_read(r, buf + have, want, &got);
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

/* ---- element conversion --------------------------------------------------------------- */

size_t io_scalar_size(io_scalar t) {
    switch (t) {
    case IO_U8: case IO_I8: return 1;
    case IO_U16: case IO_I16: return 2;
    case IO_U32: case IO_I32: case IO_F32: return 4;
    case IO_U64: case IO_I64: case IO_F64: return 8;
    }
    return 1;
}

static inline uint64_t io_load(const unsigned char *p, size_t size, int big) {
    uint64_t v = 0;
    if (big)
        for (size_t i = 0; i < size; i++) v = (v << 8) | p[i];
    else
        for (size_t i = size; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

collapse_status io_convert(const char *fn, const char *path, const unsigned char *src, int64_t n, io_scalar st,
                           int big_endian, collapse_dtype dst, int scale_u8, int64_t offset, void *out) {
    size_t es = io_scalar_size(st);
    int is_float = st == IO_F32 || st == IO_F64;
    if (is_float && dst == COLLAPSE_INT32)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: %s: cannot convert floating-point data to int32", fn, path);
    /* the common MNIST case */
    if (st == IO_U8 && dst == COLLAPSE_FLOAT32) {
        float *o = out;
        if (scale_u8)
            for (int64_t i = 0; i < n; i++) o[i] = (float)src[i] / 255.0f;
        else
            for (int64_t i = 0; i < n; i++) o[i] = (float)src[i];
        return COLLAPSE_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        uint64_t u = io_load(src + (size_t)i * es, es, big_endian);
        double dv = 0.0;
        int64_t iv = 0;
        int too_big = 0; /* u64 beyond int64 */
        switch (st) {
        case IO_U8: case IO_U16: case IO_U32: iv = (int64_t)u; break;
        case IO_I8: iv = (int8_t)(uint8_t)u; break;
        case IO_I16: iv = (int16_t)(uint16_t)u; break;
        case IO_I32: iv = (int32_t)(uint32_t)u; break;
        case IO_I64: iv = (int64_t)u; break;
        case IO_U64: if (u > (uint64_t)INT64_MAX) too_big = 1; else iv = (int64_t)u; break;
        case IO_F32: { uint32_t b = (uint32_t)u; float f; memcpy(&f, &b, 4); dv = f; } break;
        case IO_F64: memcpy(&dv, &u, 8); break;
        }
        if (!is_float) dv = too_big ? (double)u : (double)iv;
        if (st == IO_U8 && scale_u8) dv = (double)((float)iv / 255.0f);
        switch (dst) {
        case COLLAPSE_FLOAT32: ((float *)out)[i] = (float)dv; break;
        case COLLAPSE_FLOAT64: ((double *)out)[i] = dv; break;
        case COLLAPSE_INT32: {
            /* iv is in int64 range; adding a 32-bit offset cannot overflow unless |iv| is huge */
            int in_range = !too_big && iv >= INT32_MIN - offset && iv <= INT32_MAX - offset;
            if (!in_range) {
                if (too_big)
                    return collapse_fail(COLLAPSE_ERR_RANGE,
                                         "%s: %s: value %llu at index %lld is outside the int32 range", fn, path,
                                         (unsigned long long)u, (long long)i);
                if (offset)
                    return collapse_fail(COLLAPSE_ERR_RANGE,
                                         "%s: %s: value %lld at index %lld plus label offset %lld is outside the "
                                         "int32 range",
                                         fn, path, (long long)iv, (long long)i, (long long)offset);
                return collapse_fail(COLLAPSE_ERR_RANGE, "%s: %s: value %lld at index %lld is outside the int32 range",
                                     fn, path, (long long)iv, (long long)i);
            }
            ((int32_t *)out)[i] = (int32_t)(iv + offset);
        } break;
        }
    }
    return COLLAPSE_OK;
}

/* ---- atomic writing --------------------------------------------------------------------- */

static uint64_t io_splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

collapse_status io_atomic_open(io_atomic *w, const char *fn, const char *path) {
    static _Atomic uint64_t counter;
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->fn = fn;
    w->path = path;
    if (!path || !*path) return collapse_fail(COLLAPSE_ERR_ARG, "%s: path expected, got %s", fn, path ? "\"\"" : "NULL");
    size_t plen = strlen(path);
    if (path[plen - 1] == '/')
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: '%s' names a directory, expected a file path", fn, path);
    w->tmp = malloc(plen + sizeof ".tmp.XXXXXX");
    if (!w->tmp) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                    (uint64_t)(uintptr_t)w ^ (atomic_fetch_add(&counter, 1) * 0x2545f4914f6cdd1dULL);
    int err = 0;
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t r = io_splitmix(&seed);
        memcpy(w->tmp, path, plen);
        memcpy(w->tmp + plen, ".tmp.", 5);
        for (int i = 0; i < 6; i++) w->tmp[plen + 5 + i] = alphabet[(r >> (6 * i)) % 62];
        w->tmp[plen + 11] = '\0';
        /* 0666 lets the umask decide the mode of a new file, as fopen would */
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->fd >= 0) break;
        err = errno;
        if (err != EEXIST) break;
    }
    if (w->fd < 0) {
        collapse_status s = collapse_fail(COLLAPSE_ERR_IO, "%s: cannot create temporary file '%s' to write '%s': %s", fn,
                                          w->tmp, path, strerror(err));
        free(w->tmp);
        w->tmp = NULL;
        return s;
    }
    /* replacing a file keeps its permission bits */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) (void)fchmod(w->fd, st.st_mode & 07777);
    return COLLAPSE_OK;
}

void io_atomic_abort(io_atomic *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->tmp) {
        unlink(w->tmp);
        free(w->tmp);
        w->tmp = NULL;
    }
}

collapse_status io_atomic_write(io_atomic *w, const void *bytes, size_t len) {
    const unsigned char *p = bytes;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        ssize_t k = write(w->fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return collapse_fail(COLLAPSE_ERR_IO, "%s: writing '%s' failed (temporary file '%s'): %s", w->fn, w->path,
                                 w->tmp, strerror(errno));
        }
        p += k;
        len -= (size_t)k;
    }
    return COLLAPSE_OK;
}

static void io_fsync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) dir = strdup(".");
    else if (slash == path) dir = strdup("/");
    else {
        dir = malloc((size_t)(slash - path) + 1);
        if (dir) {
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = '\0';
        }
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse fsync on directories */
        close(fd);
    }
    free(dir);
}

collapse_status io_atomic_commit(io_atomic *w) {
    collapse_status s = COLLAPSE_OK;
    if (fsync(w->fd) != 0)
        s = collapse_fail(COLLAPSE_ERR_IO, "%s: fsync of '%s' failed (temporary file '%s'): %s", w->fn, w->path, w->tmp,
                          strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0 && s == COLLAPSE_OK)
        s = collapse_fail(COLLAPSE_ERR_IO, "%s: closing '%s' failed (temporary file '%s'): %s", w->fn, w->path, w->tmp,
                          strerror(errno));
    if (s == COLLAPSE_OK && rename(w->tmp, w->path) != 0)
        s = collapse_fail(COLLAPSE_ERR_IO, "%s: cannot rename temporary file '%s' to '%s': %s", w->fn, w->tmp, w->path,
                          strerror(errno));
    if (s != COLLAPSE_OK) {
        io_atomic_abort(w);
        return s;
    }
    free(w->tmp);
    w->tmp = NULL;
    io_fsync_dir(w->path);
    return COLLAPSE_OK;
}

collapse_status collapse_write_file_atomic(const char *path, const void *bytes, size_t len) {
    const char *fn = "write_file_atomic";
    if (!bytes && len > 0) return collapse_fail(COLLAPSE_ERR_ARG, "write_file_atomic: bytes is NULL but len is %zu", len);
    io_atomic w;
    COLLAPSE_TRY(io_atomic_open(&w, fn, path));
    collapse_status s = len ? io_atomic_write(&w, bytes, len) : COLLAPSE_OK;
    if (s != COLLAPSE_OK) {
        io_atomic_abort(&w);
        return s;
    }
    return io_atomic_commit(&w);
}
