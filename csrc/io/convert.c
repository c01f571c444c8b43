/* Element conversion with explicit byte order (host independent), range-checked into int32. */
#include <string.h>

#include "io/io_internal.h"

size_t collapse_io_scalar_size(io_scalar t) {
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

collapse_status collapse_io_convert(const char *fn, const char *path, const unsigned char *src, int64_t n, io_scalar st,
                           int big_endian, collapse_dtype dst, int scale_u8, int64_t offset, void *out) {
    size_t es = collapse_io_scalar_size(st);
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

