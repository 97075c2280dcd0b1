/*
 * db/result.c: reading rows: a result is libpq's PGresult in text form
 * (the struct eddy_pg_result is never defined; the pointer is the
 * PGresult). Typed getters check the column's type OID, then parse the
 * text: a type mismatch is -EINVAL, SQL NULL is -ENODATA, a value that
 * does not fit the C type is -ERANGE. Every getter is O(1) but the column
 * lookup by name, which is PQfnumber's linear scan.
 */
#include "db/internal.h"

#include <stdlib.h>
#include <string.h>

/* Type OIDs of the built-in types (catalog/pg_type_d.h, which only the
 * server's development package ships). */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_OID = 26,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_NUMERIC = 1700,
};

#define PGR(res) ((const PGresult *)(res))

EDDY_API void eddy_pg_result_free(struct eddy_pg_result *res)
{
    PQclear((PGresult *)res);
}

EDDY_API int eddy_pg_result_rows(const struct eddy_pg_result *res)
{
    return res ? PQntuples(PGR(res)) : 0;
}

EDDY_API int eddy_pg_result_cols(const struct eddy_pg_result *res)
{
    return res ? PQnfields(PGR(res)) : 0;
}

EDDY_API int eddy_pg_result_col(const struct eddy_pg_result *res, const char *name)
{
    if (!res || !name)
        return -EINVAL;
    /* PQfnumber folds unquoted names to lower case; compare exactly. */
    int n = PQnfields(PGR(res));
    for (int i = 0; i < n; i++)
        if (strcmp(PQfname(PGR(res), i), name) == 0)
            return i;
    return -ENOENT;
}

EDDY_API const char *eddy_pg_result_col_name(const struct eddy_pg_result *res, int col)
{
    if (!res || col < 0 || col >= PQnfields(PGR(res)))
        return NULL;
    return PQfname(PGR(res), col);
}

static bool in_range(const struct eddy_pg_result *res, int row, int col)
{
    return res && row >= 0 && col >= 0 && row < PQntuples(PGR(res)) && col < PQnfields(PGR(res));
}

EDDY_API bool eddy_pg_result_is_null(const struct eddy_pg_result *res, int row, int col)
{
    return in_range(res, row, col) && PQgetisnull(PGR(res), row, col);
}

/* The value's text after the range and NULL checks. */
static int value(const struct eddy_pg_result *res, int row, int col, const char **out)
{
    if (!in_range(res, row, col) || !out)
        return -EINVAL;
    if (PQgetisnull(PGR(res), row, col))
        return -ENODATA;
    *out = PQgetvalue(PGR(res), row, col);
    return 0;
}

EDDY_API int eddy_pg_result_text(const struct eddy_pg_result *res, int row, int col,
                                 const char **out, size_t *len)
{
    int rc = value(res, row, col, out);
    if (rc == 0 && len)
        *len = (size_t)PQgetlength(PGR(res), row, col);
    return rc;
}

EDDY_API int eddy_pg_result_int64(const struct eddy_pg_result *res, int row, int col, int64_t *out)
{
    const char *s;
    int rc = value(res, row, col, &s);
    if (rc < 0)
        return rc;
    Oid t = PQftype(PGR(res), col);
    if (!out || (t != OID_INT2 && t != OID_INT4 && t != OID_INT8 && t != OID_OID))
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (end == s || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

EDDY_API int eddy_pg_result_double(const struct eddy_pg_result *res, int row, int col, double *out)
{
    const char *s;
    int rc = value(res, row, col, &s);
    if (rc < 0)
        return rc;
    Oid t = PQftype(PGR(res), col);
    if (!out || (t != OID_INT2 && t != OID_INT4 && t != OID_INT8 && t != OID_OID &&
                 t != OID_FLOAT4 && t != OID_FLOAT8 && t != OID_NUMERIC))
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end)
        return -EINVAL;
    /* strtod sets ERANGE for overflow (inf) and for underflow to a
     * denormal or zero; only the first loses the value. */
    if (errno == ERANGE && (v > 1.0 || v < -1.0))
        return -ERANGE;
    *out = v;
    return 0;
}

EDDY_API int eddy_pg_result_bool(const struct eddy_pg_result *res, int row, int col, bool *out)
{
    const char *s;
    int rc = value(res, row, col, &s);
    if (rc < 0)
        return rc;
    if (!out || PQftype(PGR(res), col) != OID_BOOL)
        return -EINVAL;
    if (strcmp(s, "t") == 0)
        *out = true;
    else if (strcmp(s, "f") == 0)
        *out = false;
    else
        return -EINVAL;
    return 0;
}

EDDY_API int eddy_pg_result_bytea(const struct eddy_pg_result *res, int row, int col,
                                  unsigned char **out, size_t *len)
{
    const char *s;
    int rc = value(res, row, col, &s);
    if (rc < 0)
        return rc;
    if (!out || !len || PQftype(PGR(res), col) != OID_BYTEA)
        return -EINVAL;
    size_t n;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)s, &n);
    if (!raw)
        return -ENOMEM;
    /* Handed out as malloc memory, so the caller frees it with free(). */
    unsigned char *copy = malloc(n ? n : 1);
    if (!copy) {
        PQfreemem(raw);
        return -ENOMEM;
    }
    memcpy(copy, raw, n);
    PQfreemem(raw);
    *out = copy;
    *len = n;
    return 0;
}
