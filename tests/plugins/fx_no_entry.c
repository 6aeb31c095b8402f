/* fx_no_entry.c - a shared object without qkv_plugin_init. */
#include "qkv_plugin.h"

__attribute__((visibility("default"))) int fx_not_a_plugin(void);
__attribute__((visibility("default"))) int fx_not_a_plugin(void) { return 42; }
