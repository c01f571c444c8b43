/* Large tensors ask for transparent huge pages (core/tensor.c, cl_advise_huge_pages): the kernel
 * marks the mapping that holds a big tensor's data eligible for them, a plain malloc of the same
 * size is not (Debian's THP mode "madvise"), and small tensors are left alone. Read off
 * /proc/self/smaps, which reports "THPeligible" per mapping (Linux >= 4.x). */
#include <stdint.h>
#include "check.h"
#include "core/tensor.h"

/* THPeligible of the mapping that contains p, or -1 if smaps has no such line. */
static int thp_eligible(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int inside = 0, result = -1;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = a >= lo && a < hi;
            continue;
        }
        int v;
        if (inside && sscanf(line, "THPeligible: %d", &v) == 1) {
            result = v;
            break;
        }
    }
    fclose(f);
    return result;
}

static int thp_mode_is(const char *mode) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return 0;
    char buf[128] = { 0 };
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, mode) != NULL;
}

int main(void) {
    int64_t big[1] = { 8 << 20 }, small[1] = { 1024 };
    collapse_tensor *t = NULL, *s = NULL;
    CHECK_OK(collapse_tensor_new(COLLAPSE_FLOAT32, 1, big, &t));
    CHECK_OK(collapse_tensor_new(COLLAPSE_FLOAT32, 1, small, &s));
    const float *d = collapse_tensor_data(t);
    double sum = 0; /* still zero-filled, whatever backs it */
    for (int64_t i = 0; i < big[0]; i += 1021) sum += d[i];
    CHECK(sum == 0.0);
    cl_advise_huge_pages(NULL, (size_t)1 << 30); /* no-ops, no crash */
    cl_advise_huge_pages((void *)d, 100);
    if (thp_mode_is("[madvise]") && thp_eligible(d + big[0] / 2) >= 0) {
        CHECK(thp_eligible(d + big[0] / 2) == 1);
        void *plain = malloc((size_t)big[0] * 4);
        CHECK(plain != NULL && thp_eligible((char *)plain + (size_t)big[0] * 2) == 0);
        free(plain);
        CHECK(thp_eligible(collapse_tensor_data(s)) == 0); /* 4 KB: left as it is */
    } else {
        printf("test_huge_pages: THP mode is not \"madvise\" here (or smaps lacks THPeligible); eligibility not checked\n");
    }
    collapse_tensor_release(t);
    collapse_tensor_release(s);
    return check_report("test_huge_pages");
}
