"""Which OpenBLAS kernel this Python process runs, and its peak resident memory.

numpy and Debian's PyTorch both load the system OpenBLAS (libblas.so.3 -> libopenblas*.so); the
library answers openblas_get_corename() itself, so no extra package (threadpoolctl) is needed.
"""
import ctypes


def _loaded_openblas():
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "libopenblas" in line}
    return sorted(p for p in paths if p.startswith("/"))


def openblas_core():
    """The core OpenBLAS chose ("Cooperlake", "SkylakeX", "Haswell", ...) or "unknown"."""
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
            fn = lib.openblas_get_corename
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        return fn().decode()
    return "unknown"


def openblas_threads():
    for path in _loaded_openblas():
        try:
            fn = ctypes.CDLL(path).openblas_get_num_threads
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_int
        return fn()
    return -1


def vmhwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1
