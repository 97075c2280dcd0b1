/*
 * examples/db_transfer.c: a money transfer in a transaction that rolls
 * back on any failure (asyncpg's `async with conn.transaction():`).
 *
 *   async with conn.transaction():
 *       await conn.execute("UPDATE accounts SET balance = balance - $1 ...", amount, src)
 *       await conn.execute("UPDATE accounts SET balance = balance + $1 ...", amount, dst)
 *
 * A CHECK (balance >= 0) makes the debit of an overdraft fail; the credit
 * is then rolled back with it: nothing is half-committed. The server comes
 * from EDDY_PG_CONNINFO; the table ex_accounts is created fresh.
 */
#include <stdio.h>
#include <stdlib.h>

#include <eddy/eddy.h>

struct transfer {
    const char *from, *to, *amount;
};

/* Credit first, then debit, so that the failing statement comes second. */
static int move_money(struct eddy_pg *c, void *arg)
{
    const struct transfer *t = arg;
    const char *credit[] = {t->amount, t->to};
    int64_t n = eddy_pg_exec(c,
                             "UPDATE ex_accounts SET balance = balance + $1::int "
                             "WHERE name = $2",
                             2, credit);
    if (n < 0)
        return (int)n;
    const char *debit[] = {t->amount, t->from};
    n = eddy_pg_exec(c, "UPDATE ex_accounts SET balance = balance - $1::int WHERE name = $2", 2,
                     debit);
    if (n < 0)
        return (int)n;
    return n == 1 ? 0 : -ENOENT;
}

static int print_balances(struct eddy_pg *c)
{
    struct eddy_pg_result *r;
    int rc = eddy_pg_query(c, "SELECT name, balance FROM ex_accounts ORDER BY name", 0, NULL, &r);
    if (rc < 0)
        return rc;
    for (int i = 0; i < eddy_pg_result_rows(r); i++) {
        const char *name;
        int64_t balance;
        eddy_pg_result_text(r, i, 0, &name, NULL);
        eddy_pg_result_int64(r, i, 1, &balance);
        printf("  %s: %lld\n", name, (long long)balance);
    }
    eddy_pg_result_free(r);
    return 0;
}

static intptr_t main_task(void *arg)
{
    struct eddy_pg_error err;
    struct eddy_pg *c;
    int rc = eddy_pg_open(arg, 5 * EDDY_NS_PER_SEC, &err, &c);
    if (rc < 0) {
        fprintf(stderr, "connect: %s (%s)\n", eddy_strerror(rc), err.message);
        return rc;
    }
    static const char *const setup[] = {
        "DROP TABLE IF EXISTS ex_accounts",
        "CREATE TABLE ex_accounts (name text PRIMARY KEY, balance int NOT NULL "
        "CHECK (balance >= 0))",
        "INSERT INTO ex_accounts VALUES ('alice', 100), ('bob', 20)",
    };
    for (int i = 0; i < 3; i++) {
        int64_t n = eddy_pg_exec(c, setup[i], 0, NULL);
        if (n < 0) {
            fprintf(stderr, "%s: %s\n", setup[i], eddy_pg_error(c)->message);
            eddy_pg_close(c);
            return n;
        }
    }
    printf("before:\n");
    print_balances(c);
    struct transfer ok = {"alice", "bob", "30"};
    rc = eddy_pg_transaction(c, EDDY_PG_ISOLATION_SERIALIZABLE, move_money, &ok);
    printf("transfer 30 alice -> bob: %s\n", rc == 0 ? "committed" : eddy_strerror(rc));
    struct transfer overdraft = {"bob", "alice", "500"};
    rc = eddy_pg_transaction(c, EDDY_PG_ISOLATION_SERIALIZABLE, move_money, &overdraft);
    printf("transfer 500 bob -> alice: rolled back, %s (SQLSTATE %s)\n", eddy_strerror(rc),
           eddy_pg_error(c)->sqlstate);
    printf("after:\n");
    rc = print_balances(c);
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
