/*
 * tests/db/test_tx.c: transactions: commit, rollback on error (the
 * money transfer: nothing half-committed), a query error inside a
 * transaction (COMMIT reports 25P02 and nothing is kept), savepoints,
 * isolation levels, a cancelled task's transaction rolled back, and
 * misuse (bad savepoint names, BEGIN twice, COMMIT outside).
 */
#include "tests/db/db_test.h"

static void accounts(struct eddy_pg *c, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", table);
    db_exec(c, sql);
    snprintf(sql, sizeof(sql),
             "CREATE TABLE %s (name text PRIMARY KEY, balance int CHECK (balance >= 0))", table);
    db_exec(c, sql);
    snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES ('alice', 100), ('bob', 50)", table);
    db_exec(c, sql);
}

static int64_t balance(struct eddy_pg *c, const char *table, const char *who)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT balance FROM %s WHERE name = '%s'", table, who);
    return db_scalar(c, sql);
}

struct transfer {
    const char *table;
    const char *amount;
};

/* Credits bob first, then debits alice: the debit is what can fail. */
static int transfer(struct eddy_pg *c, void *arg)
{
    struct transfer *t = arg;
    char sql[256];
    const char *p[] = {t->amount};
    snprintf(sql, sizeof(sql), "UPDATE %s SET balance = balance + $1::int WHERE name = 'bob'",
             t->table);
    int64_t rc = eddy_pg_exec(c, sql, 1, p);
    if (rc < 0)
        return (int)rc;
    snprintf(sql, sizeof(sql), "UPDATE %s SET balance = balance - $1::int WHERE name = 'alice'",
             t->table);
    rc = eddy_pg_exec(c, sql, 1, p);
    return rc < 0 ? (int)rc : 1;
}

static intptr_t money(void *arg)
{
    (void)arg;
    struct eddy_pg *c = db_open(db_conninfo());
    accounts(c, "tx_money");
    struct transfer ok = {"tx_money", "30"};
    cr_assert_eq(eddy_pg_transaction(c, EDDY_PG_ISOLATION_DEFAULT, transfer, &ok), 1);
    cr_assert_eq(balance(c, "tx_money", "alice"), 70);
    cr_assert_eq(balance(c, "tx_money", "bob"), 80);
    /* Too much: bob's credit runs, alice's debit breaks the CHECK. */
    struct transfer bad = {"tx_money", "500"};
    int rc = eddy_pg_transaction(c, EDDY_PG_ISOLATION_SERIALIZABLE, transfer, &bad);
    cr_assert_eq(rc, -EREMOTEIO, "%s", eddy_strerror(rc));
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "23514");
    cr_assert_not(eddy_pg_in_transaction(c));
    cr_assert_not(eddy_pg_is_broken(c));
    cr_assert_eq(balance(c, "tx_money", "alice"), 70);
    cr_assert_eq(balance(c, "tx_money", "bob"), 80, "bob's credit must be rolled back");
    eddy_pg_close(c);
    return 0;
}

EDDY_TEST(db_tx, a_failed_transfer_rolls_back_and_a_good_one_commits)
{
    db_conninfo();
    rt_run(money, NULL);
}

static intptr_t error_inside(void *arg)
{
    (void)arg;
    struct eddy_pg *c = db_open(db_conninfo());
    accounts(c, "tx_err");
    cr_assert_eq(eddy_pg_begin(c, EDDY_PG_ISOLATION_DEFAULT), 0);
    cr_assert(eddy_pg_in_transaction(c));
    db_exec(c, "UPDATE tx_err SET balance = 0 WHERE name = 'alice'");
    cr_assert_eq(eddy_pg_exec(c, "SELECT * FROM no_such_table", 0, NULL), -EREMOTEIO);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "42P01");
    /* Every later statement fails until the end of the block. */
    cr_assert_eq(eddy_pg_exec(c, "SELECT 1", 0, NULL), -EREMOTEIO);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "25P02");
    cr_assert_eq(eddy_pg_commit(c), -EREMOTEIO);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "25P02");
    cr_assert_not(eddy_pg_in_transaction(c));
    cr_assert_eq(balance(c, "tx_err", "alice"), 100);
    eddy_pg_close(c);
    return 0;
}

EDDY_TEST(db_tx, a_query_error_inside_a_transaction_makes_commit_fail_and_keeps_nothing)
{
    db_conninfo();
    rt_run(error_inside, NULL);
}

static intptr_t savepoints(void *arg)
{
    (void)arg;
    struct eddy_pg *c = db_open(db_conninfo());
    accounts(c, "tx_sp");
    cr_assert_eq(eddy_pg_begin(c, EDDY_PG_ISOLATION_REPEATABLE_READ), 0);
    db_exec(c, "UPDATE tx_sp SET balance = 1 WHERE name = 'alice'");
    cr_assert_eq(eddy_pg_savepoint(c, "before_bob"), 0);
    db_exec(c, "UPDATE tx_sp SET balance = 2 WHERE name = 'bob'");
    cr_assert_eq(eddy_pg_exec(c, "SELECT 1/0", 0, NULL), -EREMOTEIO);
    cr_assert_eq(eddy_pg_rollback_to(c, "before_bob"), 0);
    cr_assert_eq(eddy_pg_savepoint(c, "sp2"), 0);
    cr_assert_eq(eddy_pg_release_savepoint(c, "sp2"), 0);
    cr_assert_eq(eddy_pg_rollback_to(c, "sp2"), -EREMOTEIO, "released: gone");
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "3B001");
    cr_assert_eq(eddy_pg_rollback_to(c, "before_bob"), 0);
    cr_assert_eq(eddy_pg_commit(c), 0);
    cr_assert_eq(balance(c, "tx_sp", "alice"), 1);
    cr_assert_eq(balance(c, "tx_sp", "bob"), 50);
    eddy_pg_close(c);
    return 0;
}

EDDY_TEST(db_tx, rolling_back_to_a_savepoint_keeps_the_work_before_it)
{
    db_conninfo();
    rt_run(savepoints, NULL);
}

static intptr_t isolation(void *arg)
{
    (void)arg;
    struct eddy_pg *c = db_open(db_conninfo());
    static const struct {
        enum eddy_pg_isolation level;
        const char *name;
    } levels[] = {
        {EDDY_PG_ISOLATION_DEFAULT, "read committed"},
        {EDDY_PG_ISOLATION_READ_COMMITTED, "read committed"},
        {EDDY_PG_ISOLATION_REPEATABLE_READ, "repeatable read"},
        {EDDY_PG_ISOLATION_SERIALIZABLE, "serializable"},
    };
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(eddy_pg_begin(c, levels[i].level), 0);
        struct eddy_pg_result *r;
        cr_assert_eq(eddy_pg_fetch_one(c, "SHOW transaction_isolation", 0, NULL, &r), 1);
        const char *s;
        cr_assert_eq(eddy_pg_result_text(r, 0, 0, &s, NULL), 0);
        cr_assert_str_eq(s, levels[i].name);
        eddy_pg_result_free(r);
        cr_assert_eq(eddy_pg_rollback(c), 0);
    }
    /* Repeatable read: a snapshot that another session's commit does not
     * change. */
    accounts(c, "tx_iso");
    struct eddy_pg *other = db_open(db_conninfo());
    cr_assert_eq(eddy_pg_begin(c, EDDY_PG_ISOLATION_REPEATABLE_READ), 0);
    cr_assert_eq(balance(c, "tx_iso", "alice"), 100);
    db_exec(other, "UPDATE tx_iso SET balance = 5 WHERE name = 'alice'");
    cr_assert_eq(balance(c, "tx_iso", "alice"), 100);
    cr_assert_eq(eddy_pg_commit(c), 0);
    cr_assert_eq(balance(c, "tx_iso", "alice"), 5);
    eddy_pg_close(other);
    eddy_pg_close(c);
    return 0;
}

EDDY_TEST(db_tx, each_isolation_level_is_the_one_the_server_runs)
{
    db_conninfo();
    rt_run(isolation, NULL);
}

static int insert_then_sleep(struct eddy_pg *c, void *arg)
{
    (void)arg;
    int64_t rc = eddy_pg_exec(c, "INSERT INTO tx_cancel VALUES ('carol', 1)", 0, NULL);
    if (rc < 0)
        return (int)rc;
    rc = eddy_pg_exec(c, "SELECT pg_sleep(30)", 0, NULL);
    return rc < 0 ? (int)rc : 0;
}

struct cancel_tx {
    struct eddy_pg *c;
    int rc;
};

static intptr_t tx_task(void *arg)
{
    struct cancel_tx *t = arg;
    t->rc = eddy_pg_transaction(t->c, EDDY_PG_ISOLATION_DEFAULT, insert_then_sleep, NULL);
    return 0;
}

static intptr_t cancelled_tx(void *arg)
{
    (void)arg;
    struct eddy_pg *c = db_open(db_conninfo());
    accounts(c, "tx_cancel");
    struct cancel_tx t = {c, 1};
    struct eddy_task *task;
    cr_assert_eq(eddy_task_spawn(tx_task, &t, NULL, &task), 0);
    cr_assert_eq(eddy_sleep_ms(100), 0);
    cr_assert_eq(eddy_task_cancel(task), 0);
    cr_assert_eq(eddy_task_join(task, NULL), 0);
    cr_assert_eq(t.rc, -ECANCELED, "%s", eddy_strerror(t.rc));
    cr_assert_not(eddy_pg_in_transaction(c));
    cr_assert_not(eddy_pg_is_broken(c));
    cr_assert_eq(db_scalar(c, "SELECT count(*) FROM tx_cancel WHERE name = 'carol'"), 0);
    eddy_pg_close(c);
    return 0;
}

EDDY_TEST(db_tx, a_cancelled_task_rolls_its_transaction_back)
{
    db_conninfo();
    rt_run(cancelled_tx, NULL);
}

static intptr_t misuse(void *arg)
{
    (void)arg;
    struct eddy_pg *c = db_open(db_conninfo());
    cr_assert_eq(eddy_pg_commit(c), -EINVAL);
    cr_assert_eq(eddy_pg_rollback(c), -EINVAL);
    cr_assert_eq(eddy_pg_savepoint(c, "a"), -EINVAL, "outside a transaction");
    cr_assert_eq(eddy_pg_begin(c, (enum eddy_pg_isolation)42), -EINVAL);
    cr_assert_eq(eddy_pg_begin(c, EDDY_PG_ISOLATION_DEFAULT), 0);
    cr_assert_eq(eddy_pg_begin(c, EDDY_PG_ISOLATION_DEFAULT), -EINVAL);
    const char *bad[] = {
        "",    "1abc",
        "a b", "x\"; DROP TABLE t; --",
        "a-b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(eddy_pg_savepoint(c, bad[i]), -EINVAL, "name %s", bad[i]);
    cr_assert_eq(eddy_pg_savepoint(c, NULL), -EINVAL);
    cr_assert_eq(eddy_pg_savepoint(c, "Good_name_2"), 0);
    cr_assert_eq(eddy_pg_transaction(c, EDDY_PG_ISOLATION_DEFAULT, NULL, NULL), -EINVAL);
    cr_assert_eq(eddy_pg_rollback(c), 0);
    eddy_pg_close(c);
    return 0;
}

EDDY_TEST(db_tx, misuse_is_einval_and_savepoint_names_cannot_carry_sql)
{
    db_conninfo();
    rt_run(misuse, NULL);
}
