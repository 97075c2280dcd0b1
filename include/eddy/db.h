/*
 * eddy/db.h: PostgreSQL from tasks, on libpq's non-blocking API: connections,
 * parameterised queries, typed result getters, prepared statements,
 * pipelines, a connection pool and transactions.
 *
 * The asyncpg picture, in C:
 *   conn = await asyncpg.connect(dsn)     eddy_pg_open(dsn, timeout, &err, &conn)
 *   await conn.execute(sql, a, b)         eddy_pg_exec(conn, sql, 2, params)
 *   await conn.fetchrow(sql, a)           eddy_pg_fetch_one(conn, sql, 1, params, &res)
 *   await conn.fetch(sql)                 eddy_pg_query(conn, sql, 0, NULL, &res)
 *   row["name"]                           eddy_pg_result_text(res, 0, eddy_pg_result_col(res,
 *                                         "name"), &s)
 *   pool = await asyncpg.create_pool()    eddy_pg_pool_create(&opts, &pool)
 *   async with pool.acquire() as conn:    eddy_pg_pool_with(pool, timeout, fn, arg)
 *   async with conn.transaction():        eddy_pg_transaction(conn, iso, fn, arg)
 *
 * Parameters travel apart from the SQL text ($1, $2, ... with
 * PQsendQueryParams), as text; a NULL pointer in params is SQL NULL. They
 * are never spliced into the statement, so a value like "'; DROP TABLE x"
 * stays data.
 *
 * Errors: every call returns -errno. A server error returns the errno its
 * SQLSTATE maps to (class 28 invalid authorization: -EACCES; 3D000 database
 * missing: -ENOENT; 23505 unique violation: -EEXIST; 57014 query cancelled:
 * -ECANCELED; class 08 and 57P01-57P02 the connection is gone:
 * -ECONNRESET; any other SQLSTATE: -EREMOTEIO), and the SQLSTATE and the
 * server's message are kept in the connection's error (eddy_pg_error).
 * A lost connection returns -ECONNRESET and marks the connection broken
 * (eddy_pg_is_broken): close it, or let the pool replace it.
 *
 * Cancellation: a query whose task is cancelled, or whose timeout scope
 * expires, sends a real cancel request to the server (PQcancel, on the
 * offload pool so that the loop does not block), then reads the query's
 * remaining results inside a shield bounded by EDDY_PG_CANCEL_TIMEOUT_NS,
 * and returns -ECANCELED / -ETIMEDOUT. The connection stays usable; only
 * when the server does not answer within that bound is it marked broken.
 *
 * Thread rules: a connection, a result and a pool belong to the loop
 * thread that created them. A connection runs one query at a time: a
 * second task using it while a query is in flight gets -EBUSY.
 *
 * TLS: connections without TLS (sslmode=disable, or a server without SSL)
 * are what is tested. With TLS, libpq may hold decrypted bytes the socket
 * no longer shows, which an edge-triggered wait cannot see.
 */
#ifndef EDDY_DB_H
#define EDDY_DB_H

#include <eddy/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct eddy_pg;
struct eddy_pg_result;
struct eddy_pg_pool;

/* How long a cancelled query may take to wind down (cancel request sent,
 * results drained) before its connection is given up as broken. */
#define EDDY_PG_CANCEL_TIMEOUT_NS (5 * INT64_C(1000000000))

/* The last error of a connection (or of a failed open). */
struct eddy_pg_error {
    char sqlstate[6];  /* five characters and NUL; "" when the server sent none */
    char message[256]; /* the server's (or libpq's) primary message, truncated */
};

/* ---- connections ----------------------------------------------------------- */

/*
 * Opens a connection from a conninfo string ("host=/tmp port=5432
 * dbname=x") or a URI ("postgresql://user@host/db"), driving
 * PQconnectStart/PQconnectPoll from the loop. timeout_ns bounds the whole
 * handshake (0: no bound but the enclosing timeout scopes).
 * err (may be NULL) receives the reason of a failure. libpq resolves a
 * host name with a blocking getaddrinfo inside PQconnectPoll: use a Unix
 * socket directory, an IP address, or hostaddr= (eddy_dns_resolve first)
 * to keep the loop free while connecting.
 * Returns: 0; -EACCES (authentication failed); -ENOENT (no such
 * database); -ECONNREFUSED (nothing listens, or the server refuses);
 * -ETIMEDOUT; -ECANCELED; -EREMOTEIO (another server error); -EINVAL (NULL
 * conninfo or out, a malformed conninfo, outside a task); -ENOMEM.
 * conninfo: borrowed. Suspends: yes.
 */
EDDY_API int eddy_pg_open(const char *conninfo, int64_t timeout_ns, struct eddy_pg_error *err,
                          struct eddy_pg **out);

/* Closes the connection (a server session in a transaction is rolled back
 * by the server). NULL is a no-op. Suspends: no. */
EDDY_API void eddy_pg_close(struct eddy_pg *conn);

/* The connection's last error (sqlstate "" and message "" after a
 * success). The pointer stays valid until the connection is closed. */
EDDY_API const struct eddy_pg_error *eddy_pg_error(const struct eddy_pg *conn);

/* True when the connection was lost or could not be brought back to a
 * known state: every later query fails with -ECONNRESET. */
EDDY_API bool eddy_pg_is_broken(const struct eddy_pg *conn);

/* True inside a transaction block (also a failed one). */
EDDY_API bool eddy_pg_in_transaction(const struct eddy_pg *conn);

/* ---- queries ------------------------------------------------------------------
 * nparams values in params (borrowed, text form, NULL entries are SQL
 * NULL; params may be NULL when nparams is 0). With parameters, one SQL
 * statement per call (the extended protocol). Without, the simple query
 * protocol is used (one message, faster on the server): a string of
 * several statements then runs them all and returns the last one's rows.
 * Common returns: -EREMOTEIO and the other SQLSTATE codes above (the error
 * is in eddy_pg_error); -ECONNRESET (connection lost, now broken);
 * -ECANCELED / -ETIMEDOUT (cancelled on the server, see above); -EBUSY
 * (another query is in flight on conn); -EINVAL (NULL conn or sql,
 * nparams < 0, outside a task); -ENOMEM. All suspend.
 */

/* Runs a statement and returns its rows in *out (to free with
 * eddy_pg_result_free; NULL after a failure). Returns: 0 or an error. */
EDDY_API int eddy_pg_query(struct eddy_pg *conn, const char *sql, int nparams,
                           const char *const *params, struct eddy_pg_result **out);

/* Runs a statement and drops its rows. Returns: the affected-row count
 * (INSERT/UPDATE/DELETE/SELECT...; 0 for a command without one) or an
 * error. */
EDDY_API int64_t eddy_pg_exec(struct eddy_pg *conn, const char *sql, int nparams,
                              const char *const *params);

/* Runs a query expected to return at most one row. Returns: 1 and the row
 * in *out; 0 and *out NULL when there was none; -ERANGE when there were
 * several (nothing returned); or an error. */
EDDY_API int eddy_pg_fetch_one(struct eddy_pg *conn, const char *sql, int nparams,
                               const char *const *params, struct eddy_pg_result **out);

/* Prepares sql under name (borrowed) on this connection, for
 * eddy_pg_query_prepared. nparams may be 0 to let the server infer the
 * types. Returns: 0 or an error (-EREMOTEIO 42P05 when the name exists). */
EDDY_API int eddy_pg_prepare(struct eddy_pg *conn, const char *name, const char *sql, int nparams);

/* Runs the prepared statement name. *out as eddy_pg_query; out may be
 * NULL to drop the rows. Returns: the affected-row count or an error. */
EDDY_API int64_t eddy_pg_query_prepared(struct eddy_pg *conn, const char *name, int nparams,
                                        const char *const *params, struct eddy_pg_result **out);

/* One statement of a pipeline. */
struct eddy_pg_stmt {
    const char *sql;
    int nparams;
    const char *const *params;
};

/*
 * Sends n statements at once in libpq's pipeline mode (one round trip for
 * all of them, one sync at the end) and collects their results in order:
 * results[i] (caller array of n, may be NULL to drop the rows) gets each
 * statement's rows, or NULL for a statement that failed or that the
 * server skipped after an earlier failure. Outside an explicit
 * transaction the server runs the statements up to the sync as one
 * implicit transaction: when one fails, the ones before it are rolled
 * back too.
 * Returns: the number of statements that succeeded when all did (n), else
 * the error of the first that failed (the others after it are skipped
 * by the server); the errors above. stmts, params: borrowed.
 * Suspends: yes.
 */
EDDY_API int eddy_pg_pipeline(struct eddy_pg *conn, const struct eddy_pg_stmt *stmts, size_t n,
                              struct eddy_pg_result **results);

/* ---- results ------------------------------------------------------------------
 * A result is libpq's PGresult in text form. Getters check the row and
 * column (-EINVAL when out of range), NULL (-ENODATA), and the column's
 * type: int64 reads int2/int4/int8/oid columns, double reads those and
 * float4/float8/numeric, bool reads boolean, bytea reads bytea (-EINVAL
 * for another type); a value beyond the C type is -ERANGE. None suspends.
 */

/* Frees a result. NULL is a no-op. */
EDDY_API void eddy_pg_result_free(struct eddy_pg_result *res);
EDDY_API int eddy_pg_result_rows(const struct eddy_pg_result *res);
EDDY_API int eddy_pg_result_cols(const struct eddy_pg_result *res);
/* The column named name (borrowed; exact match). Returns: its index;
 * -ENOENT when no column has that name; -EINVAL for NULL arguments. */
EDDY_API int eddy_pg_result_col(const struct eddy_pg_result *res, const char *name);
/* The name of column col, or NULL when out of range. Valid while res is. */
EDDY_API const char *eddy_pg_result_col_name(const struct eddy_pg_result *res, int col);
/* True when the value is SQL NULL (false also for indices out of range). */
EDDY_API bool eddy_pg_result_is_null(const struct eddy_pg_result *res, int row, int col);
/* The value as text (any type) in *out, valid while res is; *len (may be
 * NULL) gets its length. Returns: 0; -ENODATA (NULL); -EINVAL. */
EDDY_API int eddy_pg_result_text(const struct eddy_pg_result *res, int row, int col,
                                 const char **out, size_t *len);
EDDY_API int eddy_pg_result_int64(const struct eddy_pg_result *res, int row, int col, int64_t *out);
EDDY_API int eddy_pg_result_double(const struct eddy_pg_result *res, int row, int col, double *out);
EDDY_API int eddy_pg_result_bool(const struct eddy_pg_result *res, int row, int col, bool *out);
/* The decoded bytes of a bytea value in *out (malloc'd, transferred to the
 * caller, to free with free(); never NULL on success, also for 0 bytes)
 * and their count in *len. Returns: 0; -ENODATA; -EINVAL; -ENOMEM. */
EDDY_API int eddy_pg_result_bytea(const struct eddy_pg_result *res, int row, int col,
                                  unsigned char **out, size_t *len);

/* ---- transactions -----------------------------------------------------------
 * Savepoint names are SQL identifiers of letters, digits and '_' (not
 * starting with a digit, at most 63 bytes): anything else is -EINVAL, so a
 * name never carries SQL. Rollbacks run inside a shield bounded by
 * EDDY_PG_CANCEL_TIMEOUT_NS, so they happen even in a cancelled task.
 */
enum eddy_pg_isolation {
    EDDY_PG_ISOLATION_DEFAULT, /* the server's default (read committed) */
    EDDY_PG_ISOLATION_READ_COMMITTED,
    EDDY_PG_ISOLATION_REPEATABLE_READ,
    EDDY_PG_ISOLATION_SERIALIZABLE,
};

/* BEGIN with the isolation level. Returns: 0; -EINVAL (unknown level, or
 * already in a transaction); the query errors. Suspends: yes. */
EDDY_API int eddy_pg_begin(struct eddy_pg *conn, enum eddy_pg_isolation isolation);
/* COMMIT. A transaction in which a statement failed is rolled back by the
 * server instead: that returns -EREMOTEIO with SQLSTATE 25P02. Returns: 0;
 * -EINVAL when not in a transaction; the query errors. Suspends: yes. */
EDDY_API int eddy_pg_commit(struct eddy_pg *conn);
/* ROLLBACK, inside a shield. Returns: 0; -EINVAL when not in a
 * transaction; the query errors. Suspends: yes. */
EDDY_API int eddy_pg_rollback(struct eddy_pg *conn);
/* SAVEPOINT name / ROLLBACK TO SAVEPOINT name (shielded) / RELEASE
 * SAVEPOINT name. Returns: 0; -EINVAL (bad name, not in a transaction);
 * the query errors. Suspends: yes. */
EDDY_API int eddy_pg_savepoint(struct eddy_pg *conn, const char *name);
EDDY_API int eddy_pg_rollback_to(struct eddy_pg *conn, const char *name);
EDDY_API int eddy_pg_release_savepoint(struct eddy_pg *conn, const char *name);

typedef int eddy_pg_tx_fn(struct eddy_pg *conn, void *arg);

/*
 * async with conn.transaction(): begins, runs fn(conn, arg), commits when
 * it returns >= 0 and rolls back when it returns < 0 (also -ECANCELED: the
 * rollback is shielded). Nothing is half-committed: either the commit
 * succeeds or the whole transaction is rolled back.
 * Returns: fn's value after a successful commit; fn's error after a
 * rollback; the error of BEGIN or COMMIT. arg: borrowed. Suspends: yes.
 */
EDDY_API int eddy_pg_transaction(struct eddy_pg *conn, enum eddy_pg_isolation isolation,
                                 eddy_pg_tx_fn *fn, void *arg);

/* ---- pool -------------------------------------------------------------------
 * min_size connections are opened by eddy_pg_pool_create; more are opened
 * on demand up to max_size. acquire hands out an idle connection (newest
 * first), opens one when none is idle and the pool is below max_size, or
 * waits (FIFO, at most max_waiters tasks) for a release. Before an idle
 * connection is handed out it is checked: a lost one (the server closed
 * it: pending EOF) is closed and replaced, and one idle for longer than
 * health_check_idle_ns is pinged with an empty query first. release puts a
 * connection back; a broken one, or one left inside a transaction or with
 * a query in flight, is closed instead (its slot frees up for a fresh
 * connection). After the server went away and came back, the first
 * acquires replace every dead connection: the pool recovers by itself.
 */
struct eddy_pg_pool_opts {
    const char *conninfo;         /* copied */
    size_t min_size;              /* opened at create (default 0) */
    size_t max_size;              /* default 10 */
    size_t max_waiters;           /* tasks waiting in acquire at once; default 1024 */
    int64_t connect_timeout_ns;   /* per connection; default 5 s */
    int64_t health_check_idle_ns; /* ping connections idle longer; default 1 s, <0 never */
};

struct eddy_pg_pool_stats {
    size_t size;       /* connections open or opening */
    size_t idle;       /* of which idle in the pool */
    size_t in_use;     /* of which acquired */
    size_t waiting;    /* tasks waiting in acquire */
    uint64_t acquired; /* successful acquires */
    uint64_t opened;   /* connections opened */
    uint64_t replaced; /* connections closed as broken or dirty */
    uint64_t timeouts; /* acquires that ended with -ETIMEDOUT */
    uint64_t rejected; /* acquires refused because max_waiters were waiting */
};

/*
 * Creates a pool and opens its min_size connections. opts: borrowed.
 * Returns: 0; -EINVAL (NULL arguments or conninfo, max_size 0, min_size >
 * max_size, outside a task); -ENOMEM; the error of eddy_pg_open for the
 * first connection that failed (nothing is kept then). Suspends: yes.
 */
EDDY_API int eddy_pg_pool_create(const struct eddy_pg_pool_opts *opts, struct eddy_pg_pool **out);

/* Closes the idle connections and frees the pool. Returns: 0; -EBUSY
 * (nothing freed) while connections are acquired or tasks wait. NULL: 0.
 * Suspends: no. */
EDDY_API int eddy_pg_pool_destroy(struct eddy_pg_pool *pool);

/*
 * Takes a connection, waiting up to timeout_ns (<0: no bound but the
 * enclosing timeout scopes). Returns: 0 and the connection in *out;
 * -ETIMEDOUT; -ECANCELED; -EBUSY when max_waiters tasks already wait;
 * the error of eddy_pg_open when a new connection could not be opened;
 * -EINVAL (NULL arguments, outside a task). Suspends: yes.
 */
EDDY_API int eddy_pg_pool_acquire(struct eddy_pg_pool *pool, int64_t timeout_ns,
                                  struct eddy_pg **out);

/* Gives an acquired connection back (see above for the ones closed
 * instead) and wakes the first waiter. conn: transferred to the pool.
 * Suspends: no. */
EDDY_API void eddy_pg_pool_release(struct eddy_pg_pool *pool, struct eddy_pg *conn);

typedef int eddy_pg_conn_fn(struct eddy_pg *conn, void *arg);

/*
 * async with pool.acquire() as conn: acquires (timeout_ns as acquire),
 * runs fn(conn, arg) and releases the connection whatever fn returns, so
 * no error path leaks it. Returns: fn's value, or the acquire error.
 * arg: borrowed. Suspends: yes.
 */
EDDY_API int eddy_pg_pool_with(struct eddy_pg_pool *pool, int64_t timeout_ns, eddy_pg_conn_fn *fn,
                               void *arg);

/* A snapshot of the counters. Suspends: no. */
EDDY_API void eddy_pg_pool_stats(const struct eddy_pg_pool *pool, struct eddy_pg_pool_stats *out);

#ifdef __cplusplus
}
#endif
#endif
