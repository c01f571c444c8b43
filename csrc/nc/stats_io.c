/*
 * Saving, loading and merging streaming NC statistics (issue 14), so that features measured in
 * shards (other processes or machines) give the single-pass result:
 *   pass 1 on every shard, save; load and merge the pass-1 states; end_pass1; save that state;
 *   pass 2 on every shard starting from it, save; load and merge the pass-2 states; result.
 * The state is kept as sums (not running means), for which Chan et al.'s pairwise combination
 * reduces to adding counts and sums; the pass-2 sums are all centred by the same merged means, so
 * they add too. The merge order is the caller's (nc.merge_stats uses a fixed pairwise tree).
 *
 * File format (docs/metrics.md, "Sharded measurement"), little-endian whatever the host:
 *   "CLPSNCST" magic, uint32 version (2), uint64 payload length, uint32 CRC-32 (zlib) of the payload,
 *   then the payload: a header (uint32 C, int64 d, uint32 flags, state, pass2_started, has_w, rank,
 *   and from version 2 uint32 conventions) and the arrays in the fixed order of nc_fields. Written
 *   atomically (temp file + rename). Version 1 (no conventions word: all defaults) is still read.
 */
#include "collapse.h"
#include "core/error.h"
#include "nc/stats_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NC_MAGIC "CLPSNCST"
#define NC_VERSION 2u
#define NC_PREAMBLE 24   /* magic 8 + version 4 + length 8 + crc 4 */
#define NC_HEADER_V1 32  /* C 4, d 8, flags 4, state 4, pass2_started 4, has_w 4, rank 4 */
#define NC_HEADER 36     /* version 2: + conventions 4 */

typedef struct nc_io {
    unsigned char *p; /* write or read cursor */
    int writing;
} nc_io;

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static void io_f64(nc_io *io, double *v, int64_t n) {
    for (int64_t i = 0; i < n; i++, io->p += 8) {
        uint64_t u;
        if (io->writing) {
            memcpy(&u, v + i, 8);
            put_u64(io->p, u);
        } else {
            u = get_u64(io->p);
            memcpy(v + i, &u, 8);
        }
    }
}

static void io_i64(nc_io *io, int64_t *v, int64_t n) {
    for (int64_t i = 0; i < n; i++, io->p += 8) {
        if (io->writing) put_u64(io->p, (uint64_t)v[i]);
        else v[i] = (int64_t)get_u64(io->p);
    }
}

/* Payload bytes for a header; -1 when it would not fit in memory. */
static int64_t nc_payload_size(int64_t header, int64_t C, int64_t d, int flags, int state, int has_w, int64_t rank) {
    if (C < 2 || d < 1 || C > INT_MAX / 2 || d > INT_MAX || C * d > INT64_MAX / 64 / 8) return -1;
    if ((flags & COLLAPSE_NC_WITHIN_SPECTRUM) && d > INT64_MAX / 8 / d) return -1;
    int64_t n = 1 + C + C * d;                             /* n1, count1, sum */
    if (has_w) n += C * d + C;                             /* W, b */
    if (state == NC_PASS2) {
        n += C * d + d + C * d + 2 * C * C + C + rank * d + rank; /* mu mu_g mt gram gvec geig basis blam */
        n += 1 + C + C * d + 1 + C + rank + 3;             /* n2 count2 usum sq within proj2 agree correct loss */
        if (flags & COLLAPSE_NC_WITHIN_SPECTRUM) n += d * d;
    }
    return header + 8 * n;
}

/* The arrays after the header, in file order; the same walk writes and reads. */
static void nc_fields(nc_io *io, collapse_nc_stats *s, double *W, double *b) {
    const int64_t C = s->C, d = s->d, k = s->rank;
    io_i64(io, &s->n1, 1);
    io_i64(io, s->count1, C);
    io_f64(io, s->sum, C * d);
    if (W) {
        io_f64(io, W, C * d);
        io_f64(io, b, C);
    }
    if (s->state != NC_PASS2) return;
    io_f64(io, s->mu, C * d);
    io_f64(io, s->mu_g, d);
    io_f64(io, s->mt, C * d);
    io_f64(io, s->gram, C * C);
    io_f64(io, s->gvec, C * C);
    io_f64(io, s->geig, C);
    io_f64(io, s->basis, k * d);
    io_f64(io, s->blam, k);
    io_i64(io, &s->n2, 1);
    io_i64(io, s->count2, C);
    io_f64(io, s->usum, C * d);
    io_f64(io, &s->sq_centred, 1);
    io_f64(io, s->within, C);
    io_f64(io, s->proj2, k);
    if (s->sigw) io_f64(io, s->sigw, d * d);
    io_i64(io, &s->agree, 1);
    io_i64(io, &s->correct, 1);
    io_f64(io, &s->loss_sum, 1);
}

collapse_status collapse_nc_stats_serialize(const collapse_nc_stats *s, void **buf, size_t *len) {
    static const char fn[] = "nc_stats_serialize";
    if (!buf || !len) return collapse_fail(COLLAPSE_ERR_ARG, "%s: buf and len expected, got NULL", fn);
    *buf = NULL;
    *len = 0;
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "%s: stats expected, got NULL", fn);
    int64_t payload = nc_payload_size(NC_HEADER, s->C, s->d, s->flags, s->state, s->has_w, s->rank);
    if (payload < 0 || (uint64_t)payload > SIZE_MAX - NC_PREAMBLE)
        return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: the state is too large to serialise", fn);
    unsigned char *out = malloc((size_t)payload + NC_PREAMBLE);
    if (!out) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory for %lld bytes", fn, (long long)payload);
    unsigned char *h = out + NC_PREAMBLE;
    put_u32(h, (uint32_t)s->C);
    put_u64(h + 4, (uint64_t)s->d);
    put_u32(h + 12, (uint32_t)s->flags);
    put_u32(h + 16, (uint32_t)s->state);
    put_u32(h + 20, (uint32_t)s->pass2_started);
    put_u32(h + 24, (uint32_t)s->has_w);
    put_u32(h + 28, (uint32_t)s->rank);
    put_u32(h + 32, (uint32_t)s->conv);
    nc_io io = {h + NC_HEADER, 1};
    /* the classifier's W is the first C x d block of wm (nc_fields only reads from it here) */
    nc_fields(&io, (collapse_nc_stats *)s, s->has_w ? s->wm : NULL, s->has_w ? s->bias : NULL);
    memcpy(out, NC_MAGIC, 8);
    put_u32(out + 8, NC_VERSION);
    put_u64(out + 12, (uint64_t)payload);
    put_u32(out + 20, collapse_crc32(0, h, (size_t)payload));
    *buf = out;
    *len = (size_t)payload + NC_PREAMBLE;
    return COLLAPSE_OK;
}

/* Header fields checked against each other and against the payload length. */
static collapse_status nc_parse_header(const char *fn, const char *what, const unsigned char *h, uint64_t payload,
                                       int64_t header, int *C, int64_t *d, int *flags, int *state, int *started,
                                       int *has_w, int *rank, int *conv) {
    if (payload < (uint64_t)header)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: payload of %llu bytes is shorter than the header", fn, what,
                             (unsigned long long)payload);
    uint32_t c = get_u32(h), fl = get_u32(h + 12), stt = get_u32(h + 16), st2 = get_u32(h + 20);
    uint32_t hw = get_u32(h + 24), rk = get_u32(h + 28);
    uint32_t cv = header > NC_HEADER_V1 ? get_u32(h + 32) : 0u;
    uint64_t dd = get_u64(h + 4);
    if (cv & ~(uint32_t)COLLAPSE_NC_CONV_ALL)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: unknown convention bits 0x%x in the header", fn, what, cv);
    if (c < 2 || c > INT_MAX / 2 || dd < 1 || dd > INT_MAX || (fl & ~(uint32_t)COLLAPSE_NC_WITHIN_SPECTRUM) ||
        stt > 1 || st2 > 1 || hw > 1 || (st2 && !stt) || rk > c - 1 || rk > dd || (!stt && rk))
        return collapse_fail(COLLAPSE_ERR_FORMAT,
                             "%s: %s: inconsistent header (classes %u, dim %llu, flags %u, state %u, rank %u)", fn,
                             what, c, (unsigned long long)dd, fl, stt, rk);
    int64_t want = nc_payload_size(header, c, (int64_t)dd, (int)fl, (int)stt, (int)hw, rk);
    if (want < 0 || (uint64_t)want != payload)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: payload is %llu bytes but its header (classes %u, dim %llu) "
                             "needs %lld", fn, what, (unsigned long long)payload, c, (unsigned long long)dd,
                             (long long)want);
    *C = (int)c;
    *d = (int64_t)dd;
    *flags = (int)fl;
    *state = (int)stt;
    *started = (int)st2;
    *has_w = (int)hw;
    *rank = (int)rk;
    *conv = (int)cv;
    return COLLAPSE_OK;
}

/* Counts add up and are non-negative (the CRC catches corruption; this catches a crafted file). */
static collapse_status nc_check_counts(const char *fn, const char *what, const collapse_nc_stats *s) {
    int64_t t1 = 0, t2 = 0;
    for (int c = 0; c < s->C; c++) {
        if (s->count1[c] < 0 || (s->state == NC_PASS2 && s->count2[c] < 0))
            return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: negative class count", fn, what);
        t1 += s->count1[c];
        if (s->state == NC_PASS2) t2 += s->count2[c];
    }
    if (t1 != s->n1 || (s->state == NC_PASS2 && t2 != s->n2))
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: the class counts do not add up to the sample count", fn, what);
    return COLLAPSE_OK;
}

static collapse_status nc_decode(const char *fn, const char *what, const unsigned char *p, size_t len,
                                 collapse_nc_stats **out) {
    if (len < NC_PREAMBLE)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s is truncated (%zu bytes, the preamble alone is %d)", fn, what,
                             len, NC_PREAMBLE);
    if (memcmp(p, NC_MAGIC, 8) != 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s is not a collapse NC statistics file (bad magic; expected "
                             "\"%s\")", fn, what, NC_MAGIC);
    uint32_t version = get_u32(p + 8);
    if (version != 1u && version != NC_VERSION)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s has format version %u; this library reads versions 1 to %u",
                             fn, what, version, NC_VERSION);
    const int64_t header = version == 1u ? NC_HEADER_V1 : NC_HEADER;
    uint64_t payload = get_u64(p + 12);
    if (payload > len - NC_PREAMBLE)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s is truncated (payload %llu bytes, %zu present)", fn, what,
                             (unsigned long long)payload, len - NC_PREAMBLE);
    if (payload < len - NC_PREAMBLE)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s has %zu trailing bytes after the payload", fn, what,
                             len - NC_PREAMBLE - (size_t)payload);
    const unsigned char *h = p + NC_PREAMBLE;
    if (collapse_crc32(0, h, (size_t)payload) != get_u32(p + 20))
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s is corrupt (CRC-32 mismatch)", fn, what);
    int C = 0, flags = 0, state = 0, started = 0, has_w = 0, rank = 0, conv = 0;
    int64_t d = 0;
    COLLAPSE_TRY(nc_parse_header(fn, what, h, payload, header, &C, &d, &flags, &state, &started, &has_w, &rank,
                                 &conv));
    collapse_nc_stats *s = NULL;
    COLLAPSE_TRY(nc_new(fn, C, d, flags | conv, &s));
    double *W = has_w ? malloc(sizeof(double) * (size_t)(C * d + C)) : NULL;
    if (has_w && !W) {
        collapse_nc_stats_free(s);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    }
    s->state = state;
    s->rank = rank;
    nc_io io = {(unsigned char *)h + header, 0};
    nc_fields(&io, s, W, W ? W + C * d : NULL);
    collapse_status st = nc_check_counts(fn, what, s);
    if (st == COLLAPSE_OK && has_w) {
        s->state = NC_PASS1; /* set the classifier without preparing pass 2 yet */
        st = nc_set_classifier(fn, s, W, W + C * d);
        s->state = state;
    }
    free(W);
    if (st != COLLAPSE_OK) {
        collapse_nc_stats_free(s);
        return st;
    }
    if (state == NC_PASS2) nc_prepare_pass2(s);
    s->pass2_started = started;
    *out = s;
    return COLLAPSE_OK;
}

collapse_status collapse_nc_stats_deserialize(const void *buf, size_t len, collapse_nc_stats **out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "nc_stats_deserialize: out expected, got NULL");
    *out = NULL;
    if (!buf) return collapse_fail(COLLAPSE_ERR_ARG, "nc_stats_deserialize: buf expected, got NULL");
    return nc_decode("nc_stats_deserialize", "the buffer", buf, len, out);
}

collapse_status collapse_nc_stats_save(const collapse_nc_stats *s, const char *path) {
    if (!path) return collapse_fail(COLLAPSE_ERR_ARG, "nc_stats_save: path expected, got NULL");
    void *buf = NULL;
    size_t len = 0;
    COLLAPSE_TRY(collapse_nc_stats_serialize(s, &buf, &len));
    collapse_status st = collapse_write_file_atomic(path, buf, len);
    free(buf);
    return st;
}

collapse_status collapse_nc_stats_load(const char *path, collapse_nc_stats **out) {
    static const char fn[] = "nc_stats_load";
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "%s: out expected, got NULL", fn);
    *out = NULL;
    if (!path) return collapse_fail(COLLAPSE_ERR_ARG, "%s: path expected, got NULL", fn);
    FILE *f = fopen(path, "rb");
    if (!f) return collapse_fail(COLLAPSE_ERR_IO, "%s: cannot open '%s'", fn, path);
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    collapse_status st = COLLAPSE_OK;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                st = collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory reading '%s'", fn, path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) st = collapse_fail(COLLAPSE_ERR_IO, "%s: read error on '%s'", fn, path);
            break;
        }
    }
    fclose(f);
    if (st == COLLAPSE_OK) {
        char what[1024];
        snprintf(what, sizeof what, "'%s'", path);
        st = nc_decode(fn, what, buf, len, out);
    }
    free(buf);
    return st;
}

static int same_f64(const double *a, const double *b, int64_t n) {
    return n <= 0 || memcmp(a, b, (size_t)n * sizeof(double)) == 0;
}

static void add_f64(double *dst, const double *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

static void add_i64(int64_t *dst, const int64_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* Pass 1: counts and class sums add. The classifier travels with the state: a state without one
 * takes the other's; two different classifiers are refused. */
static collapse_status nc_merge_pass1(const char *fn, collapse_nc_stats *dst, const collapse_nc_stats *src) {
    const int64_t C = dst->C, d = dst->d;
    if (src->has_w && dst->has_w &&
        !(same_f64(src->wm, dst->wm, C * d) && same_f64(src->bias, dst->bias, C)))
        return collapse_fail(COLLAPSE_ERR_STATE, "%s: the two states hold different classifiers", fn);
    if (src->has_w && !dst->has_w) COLLAPSE_TRY(nc_set_classifier(fn, dst, src->wm, src->bias));
    dst->n1 += src->n1;
    add_i64(dst->count1, src->count1, C);
    add_f64(dst->sum, src->sum, C * d);
    return COLLAPSE_OK;
}

/* Pass 2: both shards must have started from the same merged pass-1 state (same counts, means,
 * basis and classifier, bit for bit); then every pass-2 sum adds. */
static collapse_status nc_merge_pass2(const char *fn, collapse_nc_stats *dst, const collapse_nc_stats *src) {
    const int64_t C = dst->C, d = dst->d;
    int same = dst->n1 == src->n1 && dst->rank == src->rank && dst->has_w == src->has_w &&
               memcmp(dst->count1, src->count1, (size_t)C * sizeof(int64_t)) == 0 && same_f64(dst->mu, src->mu, C * d) &&
               same_f64(dst->mu_g, src->mu_g, d) && same_f64(dst->basis, src->basis, dst->rank * d) &&
               same_f64(dst->blam, src->blam, dst->rank) &&
               (!dst->has_w || (same_f64(dst->wm, src->wm, C * d) && same_f64(dst->bias, src->bias, C)));
    if (!same)
        return collapse_fail(COLLAPSE_ERR_STATE,
                             "%s: the pass-2 states did not start from the same pass-1 state; run pass 2 of every "
                             "shard from one saved, merged state after end_pass1", fn);
    dst->n2 += src->n2;
    add_i64(dst->count2, src->count2, C);
    add_f64(dst->usum, src->usum, C * d);
    dst->sq_centred += src->sq_centred;
    add_f64(dst->within, src->within, C);
    add_f64(dst->proj2, src->proj2, dst->rank);
    if (dst->sigw) add_f64(dst->sigw, src->sigw, d * d);
    dst->agree += src->agree;
    dst->correct += src->correct;
    dst->loss_sum += src->loss_sum;
    dst->pass2_started |= src->pass2_started;
    return COLLAPSE_OK;
}

collapse_status collapse_nc_stats_merge(collapse_nc_stats *dst, const collapse_nc_stats *src) {
    static const char fn[] = "nc_stats_merge";
    if (!dst || !src) return collapse_fail(COLLAPSE_ERR_ARG, "%s: two stats expected, got NULL", fn);
    if (dst == src) return collapse_fail(COLLAPSE_ERR_ARG, "%s: cannot merge a state into itself", fn);
    if (dst->conv != src->conv)
        return collapse_fail(COLLAPSE_ERR_STATE, "%s: states measured under different conventions (0x%x and 0x%x) "
                             "cannot be merged", fn, (unsigned)dst->conv, (unsigned)src->conv);
    if (dst->C != src->C || dst->d != src->d || dst->flags != src->flags)
        return collapse_fail(COLLAPSE_ERR_SHAPE,
                             "%s: states of %d classes x dim %lld (flags %d) and %d classes x dim %lld (flags %d) "
                             "cannot be merged", fn, dst->C, (long long)dst->d, dst->flags, src->C,
                             (long long)src->d, src->flags);
    if (dst->state != src->state)
        return collapse_fail(COLLAPSE_ERR_STATE,
                             "%s: cannot merge a pass-1 state with a pass-2 state (merge pass-1 states before "
                             "end_pass1, pass-2 states after)", fn);
    return dst->state == NC_PASS1 ? nc_merge_pass1(fn, dst, src) : nc_merge_pass2(fn, dst, src);
}

collapse_status collapse_nc_stats_clone(const collapse_nc_stats *s, collapse_nc_stats **out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "nc_stats_clone: out expected, got NULL");
    *out = NULL;
    void *buf = NULL;
    size_t len = 0;
    COLLAPSE_TRY(collapse_nc_stats_serialize(s, &buf, &len));
    collapse_status st = nc_decode("nc_stats_clone", "the copy", buf, len, out);
    free(buf);
    return st;
}
