/*
 * json.h - the little JSON the CLI writes: strings escaped per RFC 8259, and
 * always valid UTF-8 (invalid bytes in model-supplied text become U+FFFD, so
 * `json.load` in Python never chokes on a report).
 */
#ifndef QKV_CLI_JSON_H
#define QKV_CLI_JSON_H

#include <stdio.h>

/* Writes s (NULL as "") as a quoted, escaped JSON string. */
void qkv_cli_json_string(FILE *f, const char *s);

/* Writes "key": (escaped key, then a colon). */
void qkv_cli_json_key(FILE *f, const char *key);

#endif /* QKV_CLI_JSON_H */
