/*
 * tests/db/test_result.c: the typed getters on real values from the
 * server: integers of every width, floats and numeric, booleans, bytea
 * (with NUL bytes and empty), text; SQL NULL read as an int is -ENODATA,
 * a text column read as an int is -EINVAL, a value too big for the C type
 * is -ERANGE, indices out of range are -EINVAL.
 */
#include "tests/db/db_test.h"

static intptr_t getters(void *arg)
{
    (void)arg;
    struct eddy_pg *c = db_open(db_conninfo());
    struct eddy_pg_result *r;
    int rc = eddy_pg_fetch_one(c,
                               "SELECT 7::int2 AS i2, -123456::int4 AS i4, "
                               "9223372036854775807::int8 AS i8, 1.5::float8 AS f8, "
                               "0.25::float4 AS f4, 12.125::numeric AS num, true AS yes, "
                               "false AS no, '\\x00ff41'::bytea AS blob, ''::bytea AS empty, "
                               "'héllo' AS txt, NULL::int AS nothing, '12' AS digits, "
                               "1e400::numeric AS huge, 'NaN'::float8 AS nan",
                               0, NULL, &r);
    cr_assert_eq(rc, 1, "%s: %s", eddy_strerror(rc), eddy_pg_error(c)->message);
#define COL(name) eddy_pg_result_col(r, name)
    int64_t i;
    cr_assert_eq(eddy_pg_result_int64(r, 0, COL("i2"), &i), 0);
    cr_assert_eq(i, 7);
    cr_assert_eq(eddy_pg_result_int64(r, 0, COL("i4"), &i), 0);
    cr_assert_eq(i, -123456);
    cr_assert_eq(eddy_pg_result_int64(r, 0, COL("i8"), &i), 0);
    cr_assert_eq(i, INT64_MAX);
    double d;
    cr_assert_eq(eddy_pg_result_double(r, 0, COL("f8"), &d), 0);
    cr_assert_eq(d, 1.5);
    cr_assert_eq(eddy_pg_result_double(r, 0, COL("f4"), &d), 0);
    cr_assert_eq(d, 0.25);
    cr_assert_eq(eddy_pg_result_double(r, 0, COL("num"), &d), 0);
    cr_assert_eq(d, 12.125);
    cr_assert_eq(eddy_pg_result_double(r, 0, COL("i4"), &d), 0);
    cr_assert_eq(d, -123456.0);
    cr_assert_eq(eddy_pg_result_double(r, 0, COL("nan"), &d), 0);
    cr_assert(d != d, "NaN reads as NaN");
    bool b;
    cr_assert_eq(eddy_pg_result_bool(r, 0, COL("yes"), &b), 0);
    cr_assert(b);
    cr_assert_eq(eddy_pg_result_bool(r, 0, COL("no"), &b), 0);
    cr_assert_not(b);
    unsigned char *bytes;
    size_t len;
    cr_assert_eq(eddy_pg_result_bytea(r, 0, COL("blob"), &bytes, &len), 0);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(bytes, "\x00\xff\x41", 3), 0);
    free(bytes);
    cr_assert_eq(eddy_pg_result_bytea(r, 0, COL("empty"), &bytes, &len), 0);
    cr_assert_eq(len, 0);
    cr_assert_not_null(bytes);
    free(bytes);
    const char *s;
    cr_assert_eq(eddy_pg_result_text(r, 0, COL("txt"), &s, &len), 0);
    cr_assert_str_eq(s, "héllo");
    cr_assert_eq(len, strlen("héllo"));
    /* Any type reads as text. */
    cr_assert_eq(eddy_pg_result_text(r, 0, COL("yes"), &s, NULL), 0);
    cr_assert_str_eq(s, "t");

    /* NULL: every getter says -ENODATA; is_null says so. */
    int nothing = COL("nothing");
    cr_assert(eddy_pg_result_is_null(r, 0, nothing));
    cr_assert_not(eddy_pg_result_is_null(r, 0, COL("i2")));
    cr_assert_eq(eddy_pg_result_int64(r, 0, nothing, &i), -ENODATA);
    cr_assert_eq(eddy_pg_result_double(r, 0, nothing, &d), -ENODATA);
    cr_assert_eq(eddy_pg_result_bool(r, 0, nothing, &b), -ENODATA);
    cr_assert_eq(eddy_pg_result_text(r, 0, nothing, &s, NULL), -ENODATA);
    cr_assert_eq(eddy_pg_result_bytea(r, 0, nothing, &bytes, &len), -ENODATA);

    /* Type mismatches, even when the text would parse. */
    cr_assert_eq(eddy_pg_result_int64(r, 0, COL("digits"), &i), -EINVAL);
    cr_assert_eq(eddy_pg_result_int64(r, 0, COL("f8"), &i), -EINVAL);
    cr_assert_eq(eddy_pg_result_double(r, 0, COL("txt"), &d), -EINVAL);
    cr_assert_eq(eddy_pg_result_bool(r, 0, COL("i2"), &b), -EINVAL);
    cr_assert_eq(eddy_pg_result_bytea(r, 0, COL("txt"), &bytes, &len), -EINVAL);
    /* Too big for a double. */
    cr_assert_eq(eddy_pg_result_double(r, 0, COL("huge"), &d), -ERANGE);

    /* Out of range indices and NULL arguments. */
    cr_assert_eq(eddy_pg_result_int64(r, 1, 0, &i), -EINVAL);
    cr_assert_eq(eddy_pg_result_int64(r, 0, 99, &i), -EINVAL);
    cr_assert_eq(eddy_pg_result_int64(r, -1, 0, &i), -EINVAL);
    cr_assert_eq(eddy_pg_result_int64(r, 0, COL("i2"), NULL), -EINVAL);
    cr_assert_eq(eddy_pg_result_text(NULL, 0, 0, &s, NULL), -EINVAL);
    cr_assert_eq(eddy_pg_result_col(r, NULL), -EINVAL);
    cr_assert_null(eddy_pg_result_col_name(r, 99));
    cr_assert_not(eddy_pg_result_is_null(r, 5, 0));
    cr_assert_eq(eddy_pg_result_rows(NULL), 0);
#undef COL
    eddy_pg_result_free(r);
    eddy_pg_result_free(NULL);

    /* oid is unsigned 32-bit: the largest reads back whole. */
    cr_assert_eq(eddy_pg_fetch_one(c, "SELECT 4294967295::oid", 0, NULL, &r), 1);
    cr_assert_eq(eddy_pg_result_int64(r, 0, 0, &i), 0);
    cr_assert_eq(i, 4294967295LL);
    eddy_pg_result_free(r);
    eddy_pg_close(c);
    return 0;
}

EDDY_TEST(db_result, typed_getters_read_values_and_reject_null_and_mismatched_types)
{
    db_conninfo();
    rt_run(getters, NULL);
}
