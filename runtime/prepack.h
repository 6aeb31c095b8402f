/*
 * prepack.h - constant inputs transformed once per session by their kernels
 * (qkv_kernel.prepack), and the originals released when nothing else reads
 * them.
 */
#ifndef QKV_PREPACK_H
#define QKV_PREPACK_H

#include "ir.h"
#include "qkv.h"

typedef struct qkv_prepack_stats {
    size_t packed_bytes;   /* what the kernels said their packed copies hold */
    size_t released_bytes; /* original constant bytes freed */
} qkv_prepack_stats;

/* Calls every live node's prepack (kernels and states must be final: after
 * the passes and backend assignment), then releases each constant that all
 * its readers packed. On error the message names the node; kernels' states
 * stay valid for destroy. */
qkv_status qkv_prepack_constants(qkv_ir_graph *g, size_t memory_limit, qkv_prepack_stats *stats,
                                 qkv_error *err);

#endif /* QKV_PREPACK_H */
