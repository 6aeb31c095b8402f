/*
 * hugepages.c - see hugepages.h.
 *
 * Why: session creation writes every weight once (copying an unaligned
 * payload out of the mapped file, packing it for the GEMM) and the first run
 * writes the arena once. With 4 KiB pages each first write of a page is a
 * fault, and in a virtual machine a fault is expensive: on a 57 MB two-layer
 * encoder the faults were about half of session creation. Huge pages make
 * that one fault per 2 MiB. Linux by default gives them only to regions that
 * ask (transparent_hugepage "madvise" mode), so the large buffers ask.
 *
 * Not packed weights: on the Zen 5 VM, with the GEMM's packed weights in
 * huge pages, bert12's run times varied from run to run (p90 1.3-1.5x the
 * median, single GEMM nodes 1.5-5x slower) and with 4 KiB pages they did
 * not (p90 within 2% of the median, and the median 3-10% lower). Those
 * pages are faulted in with one call instead (qkv_prefault_pages), which
 * wins back part of the session-creation time huge pages saved.
 */
#define _DEFAULT_SOURCE /* madvise */
#include "hugepages.h"

#include <stdint.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_PAGE ((uintptr_t)2 << 20)
#define SMALL_PAGE ((uintptr_t)4 << 10)

#if defined(__linux__) && (defined(MADV_HUGEPAGE) || defined(MADV_POPULATE_WRITE))
/* madvise(advice) over the whole pages of `page` bytes inside [p, p + bytes)
 * of a buffer at least QKV_HUGEPAGE_MIN_BYTES long. Advice only: a refusal
 * (an older kernel, no transparent huge pages) changes nothing. */
static void advise_interior(void *p, size_t bytes, uintptr_t page, int advice)
{
    if (!p || bytes < QKV_HUGEPAGE_MIN_BYTES)
        return;
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(page - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, advice);
}
#endif

void qkv_advise_hugepages(void *p, size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    advise_interior(p, bytes, HUGE_PAGE, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

void qkv_prefault_pages(void *p, size_t bytes)
{
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    advise_interior(p, bytes, SMALL_PAGE, MADV_POPULATE_WRITE); /* EINVAL before 5.14 */
#else
    (void)p;
    (void)bytes;
#endif
}
