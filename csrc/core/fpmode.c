/* Flush-to-zero / denormals-are-zero for the calling thread (PyTorch's torch.set_flush_denormal).
 * Why it matters: on Intel CPUs an FMA that reads or produces a subnormal float (|x| < 1.2e-38)
 * takes a microcode assist of ~100 cycles. Training without BatchNorm at large weight decay leaves
 * 1-2 % of some weight gradients subnormal, and OpenBLAS's sgemm then runs 20-25x slower on this
 * machine (bench/README.md, "Subnormal numbers"). With both bits set, subnormal inputs read as
 * zero and subnormal results are written as zero, at full speed; values that are not subnormal are
 * computed exactly as before. The mode is per thread (the MXCSR register of x86-64 SSE/AVX). */
#include "collapse.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FTZ_DAZ 0x8040u /* MXCSR bit 15 flush-to-zero, bit 6 denormals-are-zero */

int collapse_set_flush_denormal(int on) {
    unsigned csr = _mm_getcsr();
    _mm_setcsr(on ? (csr | FTZ_DAZ) : (csr & ~FTZ_DAZ));
    return 1;
}

int collapse_get_flush_denormal(void) { return (_mm_getcsr() & FTZ_DAZ) == FTZ_DAZ; }

#else

int collapse_set_flush_denormal(int on) { return on ? 0 : 1; } /* nothing to switch off */
int collapse_get_flush_denormal(void) { return 0; }

#endif
