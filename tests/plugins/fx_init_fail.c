/* fx_init_fail.c - qkv_plugin_init fails with its own message. */
#include <stdio.h>

#include "qkv_plugin.h"

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    (void)host;
    (void)out;
    snprintf(errbuf, errbuf_size, "license file /nonexistent/fx.lic not found");
    return QKV_ERR_IO;
}
