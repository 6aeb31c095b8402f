/*
 * onednn_threads.c - how many threads oneDNN uses for a call.
 *
 * Debian's oneDNN is built with the OpenMP CPU runtime (libgomp): a
 * primitive runs on an OpenMP team started by the calling thread, sized by
 * that thread's nthreads-var (omp_get_max_threads()). omp_set_num_threads
 * changes the nthreads-var of the calling thread only (OpenMP 5.x, 2.4: the
 * ICV has "data environment" scope; libgomp gives a thread that is not in a
 * team its own copy on the first set). So around each call the plugin sets
 * the context's thread count on the calling thread and puts the previous
 * value back afterwards: no other thread, session or library in the process
 * sees a change, and two contexts with different counts can run at once,
 * each on its own OpenMP team (libgomp keeps one pool of workers per thread
 * that starts teams).
 *
 * With the sequential runtime there is nothing to set; the plugin refuses
 * to load with TBB or threadpool runtimes (onednn_backend.c), whose thread
 * counts are process-wide or need an interop object.
 */
#include "onednn_plugin.h"

#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#endif

void dn_threads_enter(dn_threads *t, size_t threads)
{
    t->saved = 1;
    t->set = 0;
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
    int want = threads < 1 ? 1 : threads > 1024 ? 1024 : (int)threads;
    t->saved = omp_get_max_threads();
    if (t->saved != want) {
        omp_set_num_threads(want);
        t->set = 1;
    }
#else
    (void)threads;
#endif
}

void dn_threads_leave(const dn_threads *t)
{
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
    if (t->set)
        omp_set_num_threads(t->saved);
#else
    (void)t;
#endif
}
