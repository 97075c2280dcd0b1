/*
 * db/tx.c: transactions: BEGIN with an isolation level, COMMIT, ROLLBACK,
 * savepoints, and eddy_pg_transaction, the scope that commits when its
 * function succeeds and rolls back on any error.
 *
 * COMMIT and ROLLBACK run inside a shield bounded by
 * EDDY_PG_CANCEL_TIMEOUT_NS. For ROLLBACK that is what lets a cancelled
 * task clean up. For COMMIT it removes the one ambiguous outcome: a commit
 * interrupted by a cancellation could have committed on the server before
 * the cancel request arrived, and the caller could not tell. Shielded, a
 * commit returns what the server did. A ROLLBACK that fails leaves the
 * connection broken, so the pool closes it (the server then rolls back).
 *
 * PostgreSQL answers COMMIT in a transaction where a statement failed
 * with a rollback and no error; eddy_pg_commit reports it as 25P02.
 */
#include "db/internal.h"

#include <stdio.h>
#include <string.h>

static int exec_simple(struct eddy_pg *c, const char *sql)
{
    int rc = eddy__pg_run(c, EDDY__PG_PARAMS, NULL, sql, 0, NULL, NULL);
    return rc < 0 ? rc : 0;
}

static int exec_shielded(struct eddy_pg *c, const char *sql)
{
    struct eddy_shield shield;
    struct eddy_timeout bound;
    int rc = eddy_shield_enter(&shield);
    if (rc < 0)
        return rc;
    eddy_timeout_enter(&bound, EDDY_PG_CANCEL_TIMEOUT_NS);
    rc = exec_simple(c, sql);
    eddy_timeout_exit(&bound);
    eddy_shield_exit(&shield);
    return rc;
}

EDDY_API int eddy_pg_begin(struct eddy_pg *conn, enum eddy_pg_isolation isolation)
{
    static const char *const sql[] = {
        [EDDY_PG_ISOLATION_DEFAULT] = "BEGIN",
        [EDDY_PG_ISOLATION_READ_COMMITTED] = "BEGIN ISOLATION LEVEL READ COMMITTED",
        [EDDY_PG_ISOLATION_REPEATABLE_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ",
        [EDDY_PG_ISOLATION_SERIALIZABLE] = "BEGIN ISOLATION LEVEL SERIALIZABLE",
    };
    if (!conn || (unsigned)isolation > EDDY_PG_ISOLATION_SERIALIZABLE)
        return -EINVAL;
    if (eddy_pg_in_transaction(conn)) {
        eddy__pg_set_error(&conn->err, NULL, "already in a transaction");
        return -EINVAL;
    }
    return exec_simple(conn, sql[isolation]);
}

EDDY_API int eddy_pg_rollback(struct eddy_pg *conn)
{
    if (!conn || !eddy_pg_in_transaction(conn))
        return -EINVAL;
    int rc = exec_shielded(conn, "ROLLBACK");
    if (rc < 0 || eddy_pg_in_transaction(conn))
        conn->broken = true;
    return rc;
}

EDDY_API int eddy_pg_commit(struct eddy_pg *conn)
{
    if (!conn || !eddy_pg_in_transaction(conn))
        return -EINVAL;
    bool failed = PQtransactionStatus(conn->pg) == PQTRANS_INERROR;
    int rc = exec_shielded(conn, failed ? "ROLLBACK" : "COMMIT");
    if (rc < 0 || eddy_pg_in_transaction(conn)) {
        conn->broken = conn->broken || eddy_pg_in_transaction(conn);
        return rc < 0 ? rc : -EPROTO;
    }
    if (failed) {
        eddy__pg_set_error(&conn->err, "25P02",
                           "a statement of the transaction failed; it was rolled back");
        return -EREMOTEIO;
    }
    return 0;
}

/* True for an identifier that can be spliced into SQL as it is. */
static bool plain_name(const char *name)
{
    if (!name || !*name || strlen(name) > 63 || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

static int savepoint_cmd(struct eddy_pg *conn, const char *verb, const char *name, bool shielded)
{
    if (!conn || !plain_name(name) || !eddy_pg_in_transaction(conn))
        return -EINVAL;
    char sql[128];
    snprintf(sql, sizeof(sql), "%s \"%s\"", verb, name);
    return shielded ? exec_shielded(conn, sql) : exec_simple(conn, sql);
}

EDDY_API int eddy_pg_savepoint(struct eddy_pg *conn, const char *name)
{
    return savepoint_cmd(conn, "SAVEPOINT", name, false);
}

EDDY_API int eddy_pg_rollback_to(struct eddy_pg *conn, const char *name)
{
    return savepoint_cmd(conn, "ROLLBACK TO SAVEPOINT", name, true);
}

EDDY_API int eddy_pg_release_savepoint(struct eddy_pg *conn, const char *name)
{
    return savepoint_cmd(conn, "RELEASE SAVEPOINT", name, false);
}

EDDY_API int eddy_pg_transaction(struct eddy_pg *conn, enum eddy_pg_isolation isolation,
                                 eddy_pg_tx_fn *fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    int rc = eddy_pg_begin(conn, isolation);
    if (rc < 0)
        return rc;
    int r = fn(conn, arg);
    if (r < 0) {
        /* Keep fn's error (and the server's message about it) for the
         * caller; the rollback only has to happen. */
        struct eddy_pg_error err = conn->err;
        if (eddy_pg_in_transaction(conn))
            eddy_pg_rollback(conn);
        conn->err = err;
        return r;
    }
    rc = eddy_pg_commit(conn);
    return rc < 0 ? rc : r;
}
