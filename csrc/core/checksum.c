/* CRC-32 (zlib's polynomial) for checkpoint integrity checks. */
#include <zlib.h>

#include "core/tensor.h"

uint32_t collapse_crc32(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = data;
    /* zlib takes uInt lengths: feed large buffers in chunks. */
    while (len > 0) {
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = (uint32_t)crc32((uLong)crc, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return crc;
}
