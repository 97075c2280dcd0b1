/*
 * http/parse_chunked.c: the decoder of chunked bodies (RFC 9112 7.1).
 *
 * A byte-wise state machine over the framing (size line, extensions,
 * CRLFs, trailers) that copies chunk data in place towards the front of
 * the buffer with memmove, a whole run of data at a time. All of its state
 * lives in struct eddy_http_chunked, so input can be cut anywhere and
 * every cut gives the same body and the same first error. A chunk-size
 * line (CRLF included) is limited to CHUNK_LINE_MAX_BYTES and the trailer
 * section (final CRLF included) to TRAILER_MAX_BYTES, both -EMSGSIZE, so a
 * peer cannot feed framing without bound. Extensions are checked only for
 * bytes a field value may hold: none of their forms (names, tokens, quoted
 * strings) can hold CR or LF, so the line ends at the first CR, which must
 * start a CRLF, whatever a stricter parser in front of eddy made of them.
 *
 * Cost: a table lookup and a switch per framing byte; data bytes move
 * once, in runs, with memmove.
 */
#include "http/internal.h"

#include <string.h>

#define CHUNK_LINE_MAX_BYTES 4096u
#define TRAILER_MAX_BYTES 8192u

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

enum {
    CH_SIZE_FIRST, /* the first hex digit of a chunk-size */
    CH_SIZE,       /* more digits, BWS, ';' or CR */
    CH_SIZE_BWS,   /* BWS after the size: only more BWS or ';' may follow */
    CH_EXT,        /* chunk extensions, skipped up to CR */
    CH_SIZE_LF,    /* the LF of the size line */
    CH_DATA,       /* chunk data, _left bytes to go */
    CH_DATA_CR,    /* the CRLF after chunk data */
    CH_DATA_LF,
    CH_TRAILER,      /* the start of a trailer field line, or the final CRLF */
    CH_TRAILER_NAME, /* a trailer field name, up to ':' */
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF, /* the LF of the final CRLF */
    CH_DONE,
    CH_BAD,     /* -EBADMSG was returned: sticky */
    CH_TOO_BIG, /* -EMSGSIZE was returned: sticky */
};

EDDY_API void eddy_http_chunked_init(struct eddy_http_chunked *c, uint64_t max_body_bytes)
{
    *c = (struct eddy_http_chunked){.max_body_bytes = max_body_bytes, ._state = CH_SIZE_FIRST};
}

/* The size line ended: account the chunk against the body limit. */
static int chunk_sized(struct eddy_http_chunked *c)
{
    if (c->_left > UINT64_MAX - c->_total)
        return -EBADMSG;
    c->_total += c->_left;
    if (c->max_body_bytes && c->_total > c->max_body_bytes)
        return -EMSGSIZE;
    return 0;
}

/* Steps the framing state machine over one byte. Returns 0 or an error. */
static int chunk_byte(struct eddy_http_chunked *c, char b)
{
    uint8_t cls = eddy__http_class[(uint8_t)b];
    switch (c->_state) {
    case CH_SIZE_FIRST:
    case CH_SIZE:
        if (++c->_line > CHUNK_LINE_MAX_BYTES)
            return -EMSGSIZE;
        if (cls & EDDY__HTTP_HEX) {
            if (c->_left >> 60)
                return -EBADMSG; /* the next digit would overflow 64 bits */
            unsigned d = b <= '9' ? (unsigned)(b - '0') : (unsigned)((b | 0x20) - 'a' + 10);
            c->_left = c->_left << 4 | d;
            c->_state = CH_SIZE;
            return 0;
        }
        if (c->_state == CH_SIZE_FIRST)
            return -EBADMSG;
        if (b == ';' || is_ows(b))
            c->_state = b == ';' ? CH_EXT : CH_SIZE_BWS;
        else if (b == '\r')
            c->_state = CH_SIZE_LF;
        else
            return -EBADMSG;
        return chunk_sized(c);
    case CH_SIZE_BWS:
        if (++c->_line > CHUNK_LINE_MAX_BYTES)
            return -EMSGSIZE;
        if (b == ';')
            c->_state = CH_EXT;
        else if (!is_ows(b))
            return -EBADMSG;
        return 0;
    case CH_EXT:
        /* Extension names, values and quoted strings hold no CR or LF, so
         * the line ends at the first CR, which must start a CRLF. */
        if (++c->_line > CHUNK_LINE_MAX_BYTES)
            return -EMSGSIZE;
        if (b == '\r')
            c->_state = CH_SIZE_LF;
        else if (!(cls & EDDY__HTTP_VALUE))
            return -EBADMSG;
        return 0;
    case CH_SIZE_LF:
        if (++c->_line > CHUNK_LINE_MAX_BYTES)
            return -EMSGSIZE;
        if (b != '\n')
            return -EBADMSG;
        c->_line = 0;
        c->_state = c->_left ? CH_DATA : CH_TRAILER;
        return 0;
    case CH_DATA_CR:
        if (b != '\r')
            return -EBADMSG;
        c->_state = CH_DATA_LF;
        return 0;
    case CH_DATA_LF:
        if (b != '\n')
            return -EBADMSG;
        c->_state = CH_SIZE_FIRST;
        return 0;
    case CH_TRAILER:
    case CH_TRAILER_NAME:
    case CH_TRAILER_VALUE:
    case CH_TRAILER_LF:
    case CH_END_LF:
        if (++c->_line > TRAILER_MAX_BYTES)
            return -EMSGSIZE;
        break;
    default:
        return -EBADMSG;
    }
    /* The trailer section: field lines as in a head, then CRLF. */
    switch (c->_state) {
    case CH_TRAILER:
        if (b == '\r')
            c->_state = CH_END_LF;
        else if (cls & EDDY__HTTP_TCHAR)
            c->_state = CH_TRAILER_NAME;
        else
            return -EBADMSG; /* folding, bare LF, a control, an empty name */
        return 0;
    case CH_TRAILER_NAME:
        if (b == ':')
            c->_state = CH_TRAILER_VALUE;
        else if (!(cls & EDDY__HTTP_TCHAR))
            return -EBADMSG;
        return 0;
    case CH_TRAILER_VALUE:
        if (b == '\r')
            c->_state = CH_TRAILER_LF;
        else if (!(cls & EDDY__HTTP_VALUE))
            return -EBADMSG;
        return 0;
    case CH_TRAILER_LF:
        if (b != '\n')
            return -EBADMSG;
        c->_state = CH_TRAILER;
        return 0;
    default: /* CH_END_LF */
        if (b != '\n')
            return -EBADMSG;
        c->_state = CH_DONE;
        return 0;
    }
}

EDDY_API ssize_t eddy_http_chunked_decode(struct eddy_http_chunked *c, char *buf, size_t *len)
{
    if (!c || !len || (!buf && *len))
        return -EINVAL;
    if (c->_state == CH_BAD || c->_state == CH_TOO_BIG) {
        *len = 0;
        return c->_state == CH_BAD ? -EBADMSG : -EMSGSIZE;
    }
    char *r = buf, *w = buf, *end = buf + *len;
    while (r < end && c->_state != CH_DONE) {
        if (c->_state == CH_DATA) {
            size_t n = (size_t)(end - r);
            if (n > c->_left)
                n = (size_t)c->_left;
            if (w != r)
                memmove(w, r, n);
            w += n;
            r += n;
            c->_left -= n;
            if (c->_left == 0)
                c->_state = CH_DATA_CR;
            continue;
        }
        int rc = chunk_byte(c, *r++);
        if (rc < 0) {
            c->_state = rc == -EBADMSG ? CH_BAD : CH_TOO_BIG;
            *len = (size_t)(w - buf);
            return rc;
        }
    }
    *len = (size_t)(w - buf);
    if (c->_state != CH_DONE)
        return -EAGAIN;
    size_t rest = (size_t)(end - r);
    if (rest && w != r)
        memmove(w, r, rest);
    return (ssize_t)rest;
}
