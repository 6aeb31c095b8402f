/*
 * op_families.h - the built-in kernel families, one line per ops/<family>.c.
 * Each file defines `const qkv_kernel *qkv_ops_<family>(size_t *count)`
 * returning its static descriptor array. Add a line when you add a file.
 */
QKV_OP_FAMILY(identity)
