/*
 * cast_string.c - the shortest round-trip text of a floating-point value,
 * laid out as numpy prints it (cast_string.h).
 *
 * The digits: the fewest significant digits (1 to 17) whose "%.*e" text
 * parses back to the same value of the source type. The layout is numpy's
 * str(): positional for decimal exponents -4..15, at least one digit after
 * the point, for values in [1e-4, 1e16); scientific otherwise, a bare
 * mantissa when it has one digit and an exponent of at least two digits.
 */
#include "cast_string.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"

/* true when the text s reads back as v in type `from`. */
static int round_trips(const char *s, double v, qkv_dtype from)
{
    switch (from) {
    case QKV_DTYPE_FLOAT:
        return strtof(s, NULL) == (float)v;
    case QKV_DTYPE_FLOAT16:
        return qkv_f64_to_f16(strtod(s, NULL)) == qkv_f64_to_f16(v);
    case QKV_DTYPE_BFLOAT16:
        return qkv_f64_to_bf16(strtod(s, NULL)) == qkv_f64_to_bf16(v);
    default:
        return strtod(s, NULL) == v;
    }
}

size_t qkv_cast_format_float(char *buf, double v, qkv_dtype from)
{
    if (isnan(v))
        return (size_t)snprintf(buf, QKV_CAST_STRING_MAX, "NaN");
    if (isinf(v))
        return (size_t)snprintf(buf, QKV_CAST_STRING_MAX, v < 0 ? "-INF" : "INF");
    char sci[40];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(sci, sizeof sci, "%.*e", p - 1, v);
        if (round_trips(sci, v, from))
            break;
    }
    snprintf(sci, sizeof sci, "%.*e", p - 1, v);
    /* sci is [-]d[.ddd]e[+-]XX: pull out the sign, digits and exponent */
    const char *c = sci;
    bool neg = *c == '-';
    if (neg)
        c++;
    char digits[24];
    size_t nd = 0;
    for (; *c && *c != 'e'; c++)
        if (*c != '.')
            digits[nd++] = *c;
    int exp10 = *c == 'e' ? atoi(c + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0') /* %.*e may pad, e.g. for 0 */
        nd--;
    if (v == 0)
        exp10 = 0;
    char *o = buf;
    if (neg)
        *o++ = '-';
    /* numpy picks the layout from the value itself (float32 0.0001 is just
     * below 1e-4, so it prints "1e-04") */
    double mag = fabs(v);
    if (mag == 0 || (mag >= 1e-4 && mag < 1e16)) {
        if (exp10 >= 0) {
            for (int k = 0; k <= exp10; k++)
                *o++ = (size_t)k < nd ? digits[k] : '0';
            *o++ = '.';
            if ((size_t)exp10 + 1 >= nd)
                *o++ = '0';
            for (size_t k = (size_t)exp10 + 1; k < nd; k++)
                *o++ = digits[k];
        } else {
            *o++ = '0';
            *o++ = '.';
            for (int k = 0; k < -exp10 - 1; k++)
                *o++ = '0';
            for (size_t k = 0; k < nd; k++)
                *o++ = digits[k];
        }
        *o = '\0';
        return (size_t)(o - buf);
    }
    *o++ = digits[0];
    if (nd > 1) {
        *o++ = '.';
        for (size_t k = 1; k < nd; k++)
            *o++ = digits[k];
    }
    int w = snprintf(o, 8, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    return (size_t)(o - buf) + (size_t)w;
}
