/*
 * json.c - JSON string escaping for the CLI's reports (see json.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void qkv_cli_json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    fputc('"', f);
    while (*p) {
        unsigned c = *p;
        switch (c) {
        case '"':
            fputs("\\\"", f);
            p++;
            continue;
        case '\\':
            fputs("\\\\", f);
            p++;
            continue;
        case '\n':
            fputs("\\n", f);
            p++;
            continue;
        case '\r':
            fputs("\\r", f);
            p++;
            continue;
        case '\t':
            fputs("\\t", f);
            p++;
            continue;
        case '\b':
            fputs("\\b", f);
            p++;
            continue;
        case '\f':
            fputs("\\f", f);
            p++;
            continue;
        default:
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            p++;
            continue;
        }
        size_t n = utf8_len(p);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
            continue;
        }
        fwrite(p, 1, n, f);
        p += n;
    }
    fputc('"', f);
}

void qkv_cli_json_key(FILE *f, const char *key)
{
    qkv_cli_json_string(f, key);
    fputc(':', f);
}
