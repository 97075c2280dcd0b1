/*
 * http/scan_scalar.c: the byte-class table and the portable scanner.
 *
 * eddy__http_class holds one bit per class for each of the 256 byte values,
 * built at compile time from the grammar's definitions, so the table cannot
 * drift from the predicates the vector scanners are built from.
 *
 * The scanner looks at 8 bytes at a time with SWAR tests that can only err
 * towards "something here is not in the class" (never the other way); a
 * word that fails is then walked byte by byte through the table, and the
 * walk alone decides. So the answer is exactly the first byte outside the
 * class, as the vector scanners give it. Words are read with memcpy only
 * when 8 bytes remain, never past end. Token characters have no cheap SWAR
 * test (15 separate punctuation bytes), and names are short: tokens are
 * walked through the table, four bytes per loop trip.
 *
 * Cost: about one word test per 8 in-class bytes, plus a byte walk of at
 * most 8 bytes around each stop.
 */
#include "http/internal.h"

#include <string.h>

/* RFC 3986 2.2, 2.3: unreserved and sub-delims. */
#define IS_REGNAME(c)                                                                              \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') ||     \
     (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' || (c) == '!' || (c) == '$' ||           \
     ((c) >= '&' && (c) <= ',') || (c) == ';' || (c) == '=')
#define CLASS(c)                                                                                   \
    ((EDDY__HTTP_IS_TCHAR(c) ? EDDY__HTTP_TCHAR : 0) |                                             \
     ((c) >= 0x21 && (c) <= 0x7e ? EDDY__HTTP_TARGET : 0) |                                        \
     ((c) == 0x09 || ((c) >= 0x20 && (c) != 0x7f) ? EDDY__HTTP_VALUE : 0) |                        \
     (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'F') || ((c) >= 'a' && (c) <= 'f')       \
          ? EDDY__HTTP_HEX                                                                         \
          : 0) |                                                                                   \
     (IS_REGNAME(c) ? EDDY__HTTP_REGNAME : 0))
#define C4(n) CLASS(n), CLASS((n) + 1), CLASS((n) + 2), CLASS((n) + 3)
#define C16(n) C4(n), C4((n) + 4), C4((n) + 8), C4((n) + 12)
#define C64(n) C16(n), C16((n) + 16), C16((n) + 32), C16((n) + 48)

const uint8_t eddy__http_class[256] = {C64(0), C64(64), C64(128), C64(192)};

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Nonzero when some byte of v is below n (n <= 128). A borrow only starts
 * at a byte that is below n, so a word with none gives exactly 0. */
static inline uint64_t has_below(uint64_t v, uint8_t n)
{
    return (v - ONES * n) & ~v & HIGHS;
}

/* Nonzero when some byte of v equals b. */
static inline uint64_t has_byte(uint64_t v, uint8_t b)
{
    return has_below(v ^ (ONES * b), 1);
}

/* Returns the first byte of [p, end) whose class lacks bit, looking at the
 * bytes one at a time. */
static inline const char *walk(const char *p, const char *end, uint8_t bit)
{
    while (p < end && (eddy__http_class[(uint8_t)*p] & bit))
        p++;
    return p;
}

static inline __attribute__((always_inline)) const char *token_scalar(const char *p,
                                                                      const char *end)
{
    while (end - p >= 4) {
        if (!(eddy__http_class[(uint8_t)p[0]] & EDDY__HTTP_TCHAR))
            return p;
        if (!(eddy__http_class[(uint8_t)p[1]] & EDDY__HTTP_TCHAR))
            return p + 1;
        if (!(eddy__http_class[(uint8_t)p[2]] & EDDY__HTTP_TCHAR))
            return p + 2;
        if (!(eddy__http_class[(uint8_t)p[3]] & EDDY__HTTP_TCHAR))
            return p + 3;
        p += 4;
    }
    return walk(p, end, EDDY__HTTP_TCHAR);
}

/* A word may hold a byte outside 0x21-0x7E: a control or SP, DEL, or a
 * byte with the high bit set. */
static inline bool target_word_suspect(uint64_t v)
{
    return (has_below(v, 0x21) | (v & HIGHS) | has_byte(v, 0x7f)) != 0;
}

static const char *target_scalar(const char *p, const char *end)
{
    while (end - p >= 8 && !target_word_suspect(load64(p)))
        p += 8;
    /* A suspect word always holds a byte outside the class (the SWAR tests
     * are exact for the word), so the walk stops inside it. */
    return walk(p, end, EDDY__HTTP_TARGET);
}

/* A word may hold a control byte or DEL. HTAB is a control that values
 * allow, so a word with a tab is walked too. */
static inline bool value_word_suspect(uint64_t v)
{
    return (has_below(v, 0x20) | has_byte(v, 0x7f)) != 0;
}

static inline __attribute__((always_inline)) const char *value_scalar(const char *p,
                                                                      const char *end)
{
    for (;;) {
        while (end - p >= 8 && !value_word_suspect(load64(p)))
            p += 8;
        const char *stop = end - p >= 8 ? p + 8 : end;
        const char *q = walk(p, stop, EDDY__HTTP_VALUE);
        if (q < stop || stop == end)
            return q;
        p = stop; /* the word's suspect byte was a tab */
    }
}

static inline __attribute__((always_inline)) const char *token_at(void *ctx, const char *p,
                                                                  const char *end)
{
    (void)ctx;
    return token_scalar(p, end);
}

static inline __attribute__((always_inline)) const char *value_at(void *ctx, const char *p,
                                                                  const char *end)
{
    (void)ctx;
    return value_scalar(p, end);
}

static const char *fields_scalar(const char *p, const char *lim, struct eddy_http_header *f,
                                 size_t max, size_t *n, int *stop)
{
    return eddy__http_split_fields(p, lim, f, max, n, stop, NULL, token_at, value_at);
}

const struct eddy__http_scanner eddy__http_scan_scalar = {
    .name = "scalar",
    .fields = fields_scalar,
    .token = token_scalar,
    .target = target_scalar,
    .value = value_scalar,
};
