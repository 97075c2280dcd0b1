/*
 * examples/db_users.c: the guides' user table on PostgreSQL (asyncpg).
 *
 *   conn = await asyncpg.connect(dsn)
 *   await conn.execute("CREATE TABLE users (id serial PRIMARY KEY, ...)")
 *   await conn.execute("INSERT INTO users (name, email) VALUES ($1, $2)", n, e)
 *   row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", 2)
 *   rows = await conn.fetch("SELECT * FROM users ORDER BY id")
 *
 * The server comes from EDDY_PG_CONNINFO (a conninfo string or a URI),
 * for example "host=/var/run/postgresql dbname=test" or
 * "postgresql://user@localhost/test". The table ex_users is created fresh.
 */
#include <stdio.h>
#include <stdlib.h>

#include <eddy/eddy.h>

static int fail(struct eddy_pg *c, const char *what, int64_t rc)
{
    fprintf(stderr, "%s: %s (%s %s)\n", what, eddy_strerror((int)rc), eddy_pg_error(c)->sqlstate,
            eddy_pg_error(c)->message);
    return (int)rc;
}

static void print_user(const struct eddy_pg_result *r, int row)
{
    int64_t id;
    const char *name, *email;
    eddy_pg_result_int64(r, row, eddy_pg_result_col(r, "id"), &id);
    eddy_pg_result_text(r, row, eddy_pg_result_col(r, "name"), &name, NULL);
    eddy_pg_result_text(r, row, eddy_pg_result_col(r, "email"), &email, NULL);
    printf("  %lld %s <%s>\n", (long long)id, name, email);
}

static intptr_t main_task(void *arg)
{
    const char *conninfo = arg;
    struct eddy_pg_error err;
    struct eddy_pg *c;
    int rc = eddy_pg_open(conninfo, 5 * EDDY_NS_PER_SEC, &err, &c);
    if (rc < 0) {
        fprintf(stderr, "connect: %s (%s)\n", eddy_strerror(rc), err.message);
        return rc;
    }
    int64_t n;
    if ((n = eddy_pg_exec(c, "DROP TABLE IF EXISTS ex_users", 0, NULL)) < 0 ||
        (n = eddy_pg_exec(c,
                          "CREATE TABLE ex_users (id serial PRIMARY KEY, name text NOT NULL, "
                          "email text UNIQUE NOT NULL)",
                          0, NULL)) < 0) {
        rc = fail(c, "create", n);
        goto out;
    }
    printf("created table ex_users\n");
    static const char *const users[][2] = {
        {"alice", "alice@example.com"},
        {"bob", "bob@example.com"},
        {"carol", "carol@example.com"},
    };
    for (int i = 0; i < 3; i++) {
        if ((n = eddy_pg_exec(c, "INSERT INTO ex_users (name, email) VALUES ($1, $2)", 2,
                              users[i])) < 0) {
            rc = fail(c, "insert", n);
            goto out;
        }
        printf("inserted %s (%lld row)\n", users[i][0], (long long)n);
    }
    /* The same email again: the unique constraint says no. */
    const char *dup[] = {"mallory", "bob@example.com"};
    n = eddy_pg_exec(c, "INSERT INTO ex_users (name, email) VALUES ($1, $2)", 2, dup);
    printf("inserting a second bob@example.com: %s, SQLSTATE %s\n", eddy_strerror((int)n),
           eddy_pg_error(c)->sqlstate);

    struct eddy_pg_result *r;
    const char *id[] = {"2"};
    if ((rc = eddy_pg_fetch_one(c, "SELECT id, name, email FROM ex_users WHERE id = $1", 1, id,
                                &r)) < 0) {
        rc = fail(c, "fetch one", rc);
        goto out;
    }
    printf("user 2:\n");
    print_user(r, 0);
    eddy_pg_result_free(r);
    if ((rc = eddy_pg_query(c, "SELECT id, name, email FROM ex_users ORDER BY id", 0, NULL, &r)) <
        0) {
        rc = fail(c, "fetch all", rc);
        goto out;
    }
    printf("all %d users:\n", eddy_pg_result_rows(r));
    for (int i = 0; i < eddy_pg_result_rows(r); i++)
        print_user(r, i);
    eddy_pg_result_free(r);
    rc = 0;
out:
    eddy_pg_close(c);
    return rc;
}

int main(void)
{
    const char *conninfo = getenv("EDDY_PG_CONNINFO");
    if (!conninfo) {
        fprintf(stderr, "set EDDY_PG_CONNINFO to a conninfo string or URI\n");
        return 2;
    }
    intptr_t result = -1;
    int rc = eddy_run(main_task, (void *)conninfo, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
