/*
 * hugepages.h - advising the kernel how to back large buffers: huge pages,
 * or 4 KiB pages faulted in at once.
 */
#ifndef QKV_HUGEPAGES_H
#define QKV_HUGEPAGES_H

#include <stddef.h>

/* Buffers at least this large are worth advising. */
#define QKV_HUGEPAGE_MIN_BYTES ((size_t)4 << 20)

/*
 * Asks the kernel to back the whole 2 MiB pages inside [p, p + bytes) with
 * transparent huge pages (madvise MADV_HUGEPAGE). Call it on a freshly
 * allocated buffer before its first write. Only the aligned interior is
 * advised, so the buffer's resident size never grows beyond its own pages.
 * Advice only: does nothing for small buffers, or where the system has no
 * transparent huge pages or refuses.
 */
void qkv_advise_hugepages(void *p, size_t bytes);

/*
 * Faults in the 4 KiB pages inside [p, p + bytes) in one system call
 * (madvise MADV_POPULATE_WRITE, Linux 5.14+), for a buffer that is about to
 * be written whole: one trap instead of one per page. Advice only: does
 * nothing for small buffers, or where the system does not support it.
 */
void qkv_prefault_pages(void *p, size_t bytes);

#endif /* QKV_HUGEPAGES_H */
