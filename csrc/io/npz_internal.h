/* Internal interfaces of the .npz / zip reader (csrc/io/zip.c, npz.c) and the NPY header parser
 * it shares with npy.c (collapse_io_npy_parse, defined at the end of npy.c so the parser is not copied). */
#ifndef COLLAPSE_IO_NPZ_INTERNAL_H
#define COLLAPSE_IO_NPZ_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#include "io/io_internal.h"

/* ---- NPY header (npy.c) ---- */
typedef struct io_npy_info {
    io_scalar st;       /* element type as stored */
    int big;            /* stored big-endian */
    int ndim;
    int64_t shape[COLLAPSE_MAX_DIMS];
    char descr[32];
} io_npy_info;

/* Parses the header dict text (len bytes after the preamble) of an NPY file or member: dtype,
 * order and shape. Fails naming fn and where ("npz: a.npz[data.npy]: ..."). */
collapse_status collapse_io_npy_parse(const char *where, const char *text, size_t len, io_npy_info *info);

/* ---- zip central directory (zip.c) ---- */
typedef struct io_zip_entry {
    char name[256];
    int method;             /* 0 stored, 8 deflated */
    uint32_t crc;
    uint64_t csize, usize;  /* compressed / uncompressed bytes */
    uint64_t local_offset;  /* of the local file header */
} io_zip_entry;

typedef struct io_zip {
    FILE *f;
    const char *path;
    const char *fn;         /* prefix of messages */
    uint64_t file_size;
    int count;
    io_zip_entry *entries;
} io_zip;

/* Opens a zip archive and reads its central directory (zip64 archives are refused). */
collapse_status collapse_io_zip_open(io_zip *z, const char *fn, const char *path);
void collapse_io_zip_close(io_zip *z);

/* A member being read: stored members are copied, deflated ones inflated (raw deflate). */
typedef struct io_zip_stream {
    io_zip *z;
    const io_zip_entry *e;
    z_stream zs;
    int inflating;
    uint64_t fpos;           /* file offset of the next compressed byte */
    uint64_t cleft;          /* compressed bytes not yet read from the file */
    uint64_t produced;       /* uncompressed bytes delivered */
    uint32_t crc;
    unsigned char in[1 << 16];
} io_zip_stream;

collapse_status collapse_io_zip_stream_open(io_zip *z, const io_zip_entry *e, io_zip_stream *s);
/* Reads up to n bytes; *got < n only at the end of the member. At the end the CRC-32 is checked. */
collapse_status collapse_io_zip_stream_read(io_zip_stream *s, void *buf, size_t n, size_t *got);
void collapse_io_zip_stream_close(io_zip_stream *s);

/* ---- one NPY member of an .npz (npz.c) ---- */
typedef struct io_npz_member {
    io_zip_stream s;
    io_npy_info info;
    char where[320];         /* "path[name]" for messages */
    int64_t row_elems;       /* elements per first-dimension row (1 for 1-d, numel for 0-d) */
    int64_t rows;            /* shape[0] (1 for 0-d) */
} io_npz_member;

/* Finds the member `name` (with or without ".npy"); NULL if absent. */
const io_zip_entry *collapse_io_npz_find(const io_zip *z, const char *name);
/* Opens the member and parses its NPY header (the member size must match the header's shape). */
collapse_status collapse_io_npz_member_open(io_zip *z, const io_zip_entry *e, io_npz_member *m);
/* The output dtype of a member: float32/float64 as stored, integers -> int32, uint8 -> float32
 * when scale_u8. */
collapse_dtype collapse_io_npz_out_dtype(const io_npy_info *info, int scale_u8);
/* Reads the first `rows` rows, converted to dtype (collapse_io_npz_out_dtype), into out. */
collapse_status collapse_io_npz_member_read(io_npz_member *m, int64_t rows, int scale_u8, void *out);
void collapse_io_npz_member_close(io_npz_member *m);

#endif
