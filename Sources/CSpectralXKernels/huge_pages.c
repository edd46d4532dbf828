// Transparent huge pages for large buffers, asked for explicitly because Debian's kernels default to
// THP "madvise" mode.
#include "spectralx_kernels.h"

#include <stdint.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

void sx_advise_huge_pages(void *base, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (bytes < 2 * huge) return;
    const uintptr_t start = ((uintptr_t)base + huge - 1) & ~(huge - 1);
    const uintptr_t end = ((uintptr_t)base + bytes) & ~(huge - 1);
    if (end > start) (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)base; (void)bytes;
#endif
}
