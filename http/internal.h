/*
 * http/internal.h: what the http layer's files share.
 *
 * Parser block: the byte-class scanners behind the request and response
 * parsers (http/scan_scalar.c, http/scan_x86.c) and the way to pick one.
 * Each scanner answers "where is the first byte of [p, end) outside this
 * class?"; the parser (http/parse.c) does everything else with the byte it
 * stops at. Every implementation gives the same answer for the same input;
 * the tests and the fuzz target check that, each under every implementation
 * the CPU has.
 */
#ifndef EDDY_HTTP_INTERNAL_H
#define EDDY_HTTP_INTERNAL_H

#include <stdint.h>

#include <eddy/http.h>

/* ---- parser: scanners (http/parse.c, http/scan_*.c) ------------------------ */

/* tchar (RFC 9110 5.6.2) as a constant expression of a byte value c. */
#define EDDY__HTTP_IS_TCHAR(c)                                                                     \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') ||     \
     (c) == '!' || ((c) >= '#' && (c) <= '\'') || (c) == '*' || (c) == '+' || (c) == '-' ||        \
     (c) == '.' || (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')

/* Bits of eddy__http_class[byte]. */
enum {
    EDDY__HTTP_TCHAR = 1u,    /* token character (RFC 9110 5.6.2) */
    EDDY__HTTP_TARGET = 2u,   /* request-target character: visible ASCII 0x21-0x7E */
    EDDY__HTTP_VALUE = 4u,    /* field-value character: HTAB, SP, 0x21-0x7E, obs-text 0x80-0xFF */
    EDDY__HTTP_HEX = 8u,      /* HEXDIG */
    EDDY__HTTP_REGNAME = 16u, /* reg-name character but '%': unreserved, sub-delims */
};

/* The class bits of each byte value; the scalar scanner and the parser's
 * short scalar loops read it. */
extern const uint8_t eddy__http_class[256];

/* One scanner implementation. Each function returns the first byte of
 * [p, end) that is not in its class, or end when every byte is. None reads
 * outside [p, end), whatever the alignment (vector loads cover only whole
 * blocks inside the range). p <= end. */
struct eddy__http_scanner {
    const char *name;                                      /* "scalar", "sse42" or "avx2" */
    const char *(*token)(const char *p, const char *end);  /* EDDY__HTTP_TCHAR */
    const char *(*target)(const char *p, const char *end); /* EDDY__HTTP_TARGET */
    const char *(*value)(const char *p, const char *end);  /* EDDY__HTTP_VALUE */
};

/* Byte-wise with 8-byte SWAR skips; any CPU. */
extern const struct eddy__http_scanner eddy__http_scan_scalar;
#if defined(__x86_64__)
/* SSE4.2: PCMPESTRI with ranges for targets and values, PSHUFB nibble
 * lookups for tokens. Only call when __builtin_cpu_supports("sse4.2"). */
extern const struct eddy__http_scanner eddy__http_scan_sse42;
/* AVX2: compare-and-movemask over 32-byte blocks. Only call when
 * __builtin_cpu_supports("avx2"). */
extern const struct eddy__http_scanner eddy__http_scan_avx2;
#endif

/*
 * The scanner the parsers use. Chosen once, at first use: the one named by
 * the environment variable EDDY_HTTP_SCAN (scalar, sse42, avx2) when the CPU
 * has it, otherwise the fastest the CPU has (avx2, then sse42, then scalar).
 * Never NULL. Thread rules: any thread.
 */
const struct eddy__http_scanner *eddy__http_scanner(void);

/*
 * Forces the scanner for the whole process (tests, benchmarks): name is
 * "scalar", "sse42" or "avx2", or NULL for the automatic choice (which
 * ignores EDDY_HTTP_SCAN). Returns: 0; -EINVAL for an unknown name;
 * -EOPNOTSUPP when this CPU (or architecture) lacks the implementation, in
 * which case the current choice stays. name: borrowed. Thread rules: call
 * it while no other thread parses.
 */
int eddy__http_scan_force(const char *name);

/* ---- end of parser block ---------------------------------------------------- */

#endif
