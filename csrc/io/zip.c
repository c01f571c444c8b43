/*
 * Minimal zip reader for .npz archives: the central directory (end record found from the end of
 * the file), stored (method 0) and deflated (method 8, raw deflate through zlib) members, CRC-32
 * checked at the end of each member. Sizes come from the central directory, never from the local
 * headers (numpy writes those with zip64 extras and may leave their sizes as 0xFFFFFFFF).
 * zip64 archives (more than 65535 members or 4 GiB) and encrypted members are refused clearly.
 */
#include <stdlib.h>
#include <string.h>

#include "io/npz_internal.h"

#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP_CDIR_SIG 0x02014b50u
#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_EOCD_MIN 22
#define ZIP_COMMENT_MAX 65535

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t le32(const unsigned char *p) { return le16(p) | (le16(p + 2) << 16); }

static collapse_status zip_read_at(io_zip *z, uint64_t off, void *buf, size_t n, const char *what) {
    if (off > z->file_size || n > z->file_size - off)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: truncated zip archive, the %s at byte %llu runs past its end (%llu bytes)",
                             z->fn, z->path, what, (unsigned long long)off, (unsigned long long)z->file_size);
    if (fseeko(z->f, (off_t)off, SEEK_SET) != 0 || fread(buf, 1, n, z->f) != n)
        return collapse_fail(COLLAPSE_ERR_IO, "%s: %s: read error in the %s at byte %llu", z->fn, z->path, what,
                             (unsigned long long)off);
    return COLLAPSE_OK;
}

/* Finds the end-of-central-directory record in the last 64 KiB + 22 bytes. */
static collapse_status zip_find_eocd(io_zip *z, unsigned char rec[ZIP_EOCD_MIN]) {
    if (z->file_size < ZIP_EOCD_MIN)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: %llu bytes, too short for a zip archive (not an .npz file?)",
                             z->fn, z->path, (unsigned long long)z->file_size);
    uint64_t span = z->file_size < ZIP_EOCD_MIN + ZIP_COMMENT_MAX ? z->file_size : ZIP_EOCD_MIN + ZIP_COMMENT_MAX;
    unsigned char *tail = malloc((size_t)span);
    if (!tail) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: %s: cannot allocate %llu bytes", z->fn, z->path,
                                    (unsigned long long)span);
    collapse_status s = zip_read_at(z, z->file_size - span, tail, (size_t)span, "end of the archive");
    if (s == COLLAPSE_OK) {
        s = collapse_fail(COLLAPSE_ERR_FORMAT,
                          "%s: %s: no zip end-of-central-directory record (not an .npz/zip file, or truncated)", z->fn,
                          z->path);
        for (uint64_t i = span - ZIP_EOCD_MIN + 1; i-- > 0;) {
            if (le32(tail + i) == ZIP_EOCD_SIG && i + ZIP_EOCD_MIN + le16(tail + i + 20) == span) {
                memcpy(rec, tail + i, ZIP_EOCD_MIN);
                s = COLLAPSE_OK;
                break;
            }
        }
    }
    free(tail);
    return s;
}

/* Parses one central-directory record at p (avail bytes left); returns its length in *used. */
static collapse_status zip_parse_entry(io_zip *z, const unsigned char *p, uint64_t avail, io_zip_entry *e,
                                       uint64_t *used) {
    if (avail < 46 || le32(p) != ZIP_CDIR_SIG)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: corrupt zip central directory (bad entry signature)", z->fn,
                             z->path);
    uint32_t flags = le16(p + 8), nlen = le16(p + 28), xlen = le16(p + 30), clen = le16(p + 32);
    if (46 + (uint64_t)nlen + xlen + clen > avail)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: corrupt zip central directory (entry runs past its end)",
                             z->fn, z->path);
    if (nlen == 0 || nlen >= sizeof e->name)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: member name of %u bytes, expected 1..%zu", z->fn, z->path,
                             nlen, sizeof e->name - 1);
    memcpy(e->name, p + 46, nlen);
    e->name[nlen] = '\0';
    if (memchr(e->name, '\0', nlen))
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: member name contains a NUL byte", z->fn, z->path);
    e->method = (int)le16(p + 10);
    e->crc = le32(p + 16);
    e->csize = le32(p + 20);
    e->usize = le32(p + 24);
    e->local_offset = le32(p + 42);
    if (e->csize == 0xFFFFFFFFu || e->usize == 0xFFFFFFFFu || e->local_offset == 0xFFFFFFFFu)
        return collapse_fail(COLLAPSE_ERR_FORMAT,
                             "%s: %s: member '%s' uses zip64 sizes (over 4 GiB), which this reader does not support",
                             z->fn, z->path, e->name);
    if (flags & 1)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: member '%s' is encrypted, expected a plain .npz member",
                             z->fn, z->path, e->name);
    if (e->method != 0 && e->method != 8)
        return collapse_fail(COLLAPSE_ERR_FORMAT,
                             "%s: %s: member '%s' uses compression method %d, expected 0 (stored, np.savez) or 8 "
                             "(deflated, np.savez_compressed)",
                             z->fn, z->path, e->name, e->method);
    *used = 46 + (uint64_t)nlen + xlen + clen;
    return COLLAPSE_OK;
}

static collapse_status zip_read_directory(io_zip *z) {
    unsigned char rec[ZIP_EOCD_MIN] = {0};
    COLLAPSE_TRY(zip_find_eocd(z, rec));
    uint32_t count = le16(rec + 10), total = le16(rec + 8);
    uint64_t size = le32(rec + 12), off = le32(rec + 16);
    if (count == 0xFFFF || size == 0xFFFFFFFFu || off == 0xFFFFFFFFu)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: zip64 archive (over 65535 members or 4 GiB), not supported",
                             z->fn, z->path);
    if (le16(rec + 4) != 0 || le16(rec + 6) != 0 || total != count)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: multi-disk zip archive, not supported", z->fn, z->path);
    unsigned char *dir = malloc(size ? (size_t)size : 1);
    if (!dir) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: %s: cannot allocate %llu bytes", z->fn, z->path,
                                   (unsigned long long)size);
    collapse_status s = zip_read_at(z, off, dir, (size_t)size, "central directory");
    z->entries = calloc(count ? count : 1, sizeof *z->entries);
    if (s == COLLAPSE_OK && !z->entries) s = collapse_fail(COLLAPSE_ERR_NOMEM, "%s: %s: out of memory", z->fn, z->path);
    uint64_t pos = 0;
    for (uint32_t i = 0; s == COLLAPSE_OK && i < count; i++) {
        uint64_t used = 0;
        s = zip_parse_entry(z, dir + pos, size - pos, &z->entries[i], &used);
        pos += used;
        z->count = (int)i + 1;
    }
    free(dir);
    return s;
}

collapse_status collapse_io_zip_open(io_zip *z, const char *fn, const char *path) {
    memset(z, 0, sizeof *z);
    z->fn = fn;
    z->path = path;
    if (!path) return collapse_fail(COLLAPSE_ERR_ARG, "%s: path expected, got NULL", fn);
    z->f = fopen(path, "rb");
    if (!z->f) return collapse_fail(COLLAPSE_ERR_IO, "%s: cannot open '%s'", fn, path);
    if (fseeko(z->f, 0, SEEK_END) != 0 || ftello(z->f) < 0) {
        collapse_io_zip_close(z);
        return collapse_fail(COLLAPSE_ERR_IO, "%s: cannot open '%s': not a seekable regular file", fn, path);
    }
    z->file_size = (uint64_t)ftello(z->f);
    collapse_status s = zip_read_directory(z);
    if (s != COLLAPSE_OK) collapse_io_zip_close(z);
    return s;
}

void collapse_io_zip_close(io_zip *z) {
    if (!z) return;
    if (z->f) fclose(z->f);
    free(z->entries);
    z->f = NULL;
    z->entries = NULL;
    z->count = 0;
}

/* ---- member streams ------------------------------------------------------------------------ */

collapse_status collapse_io_zip_stream_open(io_zip *z, const io_zip_entry *e, io_zip_stream *s) {
    memset(s, 0, offsetof(io_zip_stream, in));
    s->z = z;
    s->e = e;
    unsigned char lh[30];
    COLLAPSE_TRY(zip_read_at(z, e->local_offset, lh, sizeof lh, "local header"));
    if (le32(lh) != ZIP_LOCAL_SIG)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: member '%s': bad local header signature", z->fn, z->path,
                             e->name);
    uint64_t data = e->local_offset + 30 + le16(lh + 26) + le16(lh + 28);
    if (data > z->file_size || e->csize > z->file_size - data)
        return collapse_fail(COLLAPSE_ERR_FORMAT,
                             "%s: %s: truncated zip archive, member '%s' needs %llu bytes at byte %llu, the file has %llu",
                             z->fn, z->path, e->name, (unsigned long long)e->csize, (unsigned long long)data,
                             (unsigned long long)z->file_size);
    /* deflate expands at most ~1032:1: a larger claimed size is corrupt (and would over-allocate) */
    if ((e->method == 0 && e->usize != e->csize) || (e->method == 8 && e->usize > e->csize * 1032 + 1024))
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: member '%s': sizes %llu (stored) / %llu (data) are inconsistent",
                             z->fn, z->path, e->name, (unsigned long long)e->csize, (unsigned long long)e->usize);
    s->fpos = data;
    s->cleft = e->csize;
    s->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    if (e->method == 8) {
        if (inflateInit2(&s->zs, -MAX_WBITS) != Z_OK)
            return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: %s: cannot initialise zlib", z->fn, z->path);
        s->inflating = 1;
    }
    return COLLAPSE_OK;
}

/* Reads up to n compressed bytes of the member at its own position (several members of one
 * archive may be open at once on the same FILE). */
static collapse_status zip_stream_raw(io_zip_stream *s, void *buf, size_t n, size_t *have) {
    if (n > s->cleft) n = (size_t)s->cleft;
    *have = 0;
    if (n == 0) return COLLAPSE_OK;
    if (fseeko(s->z->f, (off_t)s->fpos, SEEK_SET) != 0 || (*have = fread(buf, 1, n, s->z->f)) != n)
        return collapse_fail(COLLAPSE_ERR_IO, "%s: %s: read error in member '%s'", s->z->fn, s->z->path, s->e->name);
    s->cleft -= n;
    s->fpos += n;
    return COLLAPSE_OK;
}

static collapse_status zip_inflate(io_zip_stream *s, unsigned char *out, size_t n, size_t *got) {
    s->zs.next_out = out;
    s->zs.avail_out = (uInt)n;
    while (s->zs.avail_out > 0) {
        if (s->zs.avail_in == 0) {
            size_t have = 0;
            COLLAPSE_TRY(zip_stream_raw(s, s->in, sizeof s->in, &have));
            if (have == 0) break; /* checked against usize by the caller */
            s->zs.next_in = s->in;
            s->zs.avail_in = (uInt)have;
        }
        int rc = inflate(&s->zs, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: member '%s': corrupt deflate data (%s)", s->z->fn,
                                 s->z->path, s->e->name, s->zs.msg ? s->zs.msg : "zlib error");
    }
    *got = n - s->zs.avail_out;
    return COLLAPSE_OK;
}

collapse_status collapse_io_zip_stream_read(io_zip_stream *s, void *buf, size_t n, size_t *got) {
    *got = 0;
    uint64_t left = s->e->usize - s->produced;
    if (n > left) n = (size_t)left;
    if (n == 0) return COLLAPSE_OK;
    if (s->inflating) {
        COLLAPSE_TRY(zip_inflate(s, buf, n, got));
    } else {
        COLLAPSE_TRY(zip_stream_raw(s, buf, n, got));
    }
    if (*got < n)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: member '%s' ends after %llu of its %llu bytes (corrupt archive)",
                             s->z->fn, s->z->path, s->e->name, (unsigned long long)(s->produced + *got),
                             (unsigned long long)s->e->usize);
    s->crc = (uint32_t)crc32(s->crc, buf, (uInt)*got);
    s->produced += *got;
    if (s->produced == s->e->usize && s->crc != s->e->crc)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "%s: %s: member '%s': CRC-32 mismatch (corrupt archive)", s->z->fn,
                             s->z->path, s->e->name);
    return COLLAPSE_OK;
}

void collapse_io_zip_stream_close(io_zip_stream *s) {
    if (s && s->inflating) {
        inflateEnd(&s->zs);
        s->inflating = 0;
    }
}
