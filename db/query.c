/*
 * db/query.c: queries on libpq's non-blocking API: send, flush, wait for
 * the results as the socket becomes readable, and cancel on the server
 * when the waiting task is cancelled or times out.
 *
 * A query: PQsendQueryParams (or Prepare / QueryPrepared) queues the
 * message in libpq's output buffer; PQflush writes it, and while it cannot
 * (1: the socket is full) the task waits for writable or readable, reading
 * input when it comes so that a server blocked on its own output cannot
 * deadlock with us. Then, while PQisBusy says a result is incomplete, the
 * task waits for readable and calls PQconsumeInput. The loop's epoll is
 * edge-triggered and PQconsumeInput may stop reading before the socket is
 * empty (it reads once per call into its buffer), so before parking the
 * task peeks at the socket (recv MSG_PEEK|MSG_DONTWAIT): pending bytes or
 * EOF are read at once, and only EAGAIN parks. That is one recv per wait
 * on top of libpq's own reads.
 *
 * Cancellation: when a wait returns -ECANCELED or -ETIMEDOUT, the query is
 * still running on the server. The task shields itself (bounded by
 * EDDY_PG_CANCEL_TIMEOUT_NS), sends a cancel request with PQcancel on the
 * offload pool (it opens its own connection and blocks until the server
 * took the request), then drains the query's results (an error 57014
 * normally) so that the connection is idle again, and returns the wait's
 * error. If any of that fails, the connection is marked broken.
 *
 * Pipelines: PQenterPipelineMode, every statement sent, one
 * PQpipelineSync, one flush; results come back per statement, each
 * followed by a NULL, and a PGRES_PIPELINE_SYNC at the end. After a
 * failure the server skips the rest up to the sync (PGRES_PIPELINE_ABORTED).
 */
#include "db/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The state of one public call; `interrupted` tells a wait that was
 * cancelled or timed out (the server still runs the query) from an error
 * the server sent. */
struct op {
    struct eddy_pg *c;
    bool interrupted;
    bool pipeline;
    bool fresh; /* nothing read since the statement was sent: see wait_readable */
};

static int wait_failed(struct op *op, int rc)
{
    if (rc == -ECANCELED || rc == -ETIMEDOUT)
        op->interrupted = true;
    else
        op->c->broken = true; /* -ENOMEM, -EBADF: the state is unknown */
    eddy__pg_set_error(&op->c->err, NULL, eddy_strerror(rc));
    return rc;
}

/* Waits until the socket has something to read (or EOF). The first wait
 * after a statement went out skips the peek: its answer cannot have
 * arrived before it was sent, so its arrival is an edge the parked task
 * sees (bytes left from before, such as a notice, do not matter: only
 * the answer ends the wait). */
static int wait_readable(struct op *op)
{
    if (op->fresh) {
        op->fresh = false;
        int rc = eddy_fd_wait(op->c->fd, EDDY_FD_READ);
        return rc < 0 ? wait_failed(op, rc) : 0;
    }
    for (;;) {
        char b;
        ssize_t n = recv(op->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return 0; /* a socket error: libpq's read reports it */
        int rc = eddy_fd_wait(op->c->fd, EDDY_FD_READ);
        if (rc < 0)
            return wait_failed(op, rc);
    }
}

static int flush_all(struct op *op)
{
    PGconn *pg = op->c->pg;
    for (;;) {
        int r = PQflush(pg);
        if (r == 0)
            return 0;
        if (r < 0)
            return eddy__pg_lost(op->c);
        op->fresh = false;
        int rc = eddy_fd_wait(op->c->fd, EDDY_FD_READ | EDDY_FD_WRITE);
        if (rc < 0)
            return wait_failed(op, rc);
        if (!PQconsumeInput(pg))
            return eddy__pg_lost(op->c);
    }
}

/* The next result (NULL at the end of a statement's results). */
static int next_result(struct op *op, PGresult **out)
{
    PGconn *pg = op->c->pg;
    while (PQisBusy(pg)) {
        int rc = wait_readable(op);
        if (rc < 0)
            return rc;
        if (!PQconsumeInput(pg))
            return eddy__pg_lost(op->c);
    }
    *out = PQgetResult(pg);
    return 0;
}

/* Records the error result r carries and returns its errno. */
static int result_error(struct eddy_pg *c, const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    eddy__pg_set_error(&c->err, state, msg ? msg : PQresultErrorMessage(r));
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        c->broken = true;
        return -ECONNRESET;
    }
    int rc = eddy__pg_map_sqlstate(state);
    if (rc == -ECONNRESET)
        c->broken = true;
    return rc;
}

/* What a result of status st means for the statement: 0 (rows or a
 * command done), or an error. COPY is not supported: a COPY FROM STDIN is
 * ended with an error so the server goes on; a COPY TO STDOUT would need
 * its data read, so the connection is given up. */
static int result_status(struct eddy_pg *c, PGresult *r)
{
    switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
    case PGRES_SINGLE_TUPLE:
        return 0;
    case PGRES_COPY_IN:
        PQputCopyEnd(c->pg, "COPY is not supported by eddy");
        eddy__pg_set_error(&c->err, NULL, "COPY is not supported");
        return -EOPNOTSUPP;
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        c->broken = true;
        eddy__pg_set_error(&c->err, NULL, "COPY is not supported");
        return -EOPNOTSUPP;
    case PGRES_PIPELINE_ABORTED:
        /* Skipped after an earlier failure, whose error stays recorded. */
        return -ECANCELED;
    default:
        return result_error(c, r);
    }
}

/* Collects one statement's results: the last good one in *keep, or the
 * first error. */
static int collect(struct op *op, PGresult **keep)
{
    PGresult *last = NULL;
    int rc = 0;
    for (;;) {
        PGresult *r;
        int w = next_result(op, &r);
        if (w < 0) {
            rc = w;
            break;
        }
        if (!r)
            break;
        int st = result_status(op->c, r);
        if (st < 0 && rc == 0)
            rc = st;
        if (st == 0 && rc == 0) {
            PQclear(last);
            last = r;
        } else {
            PQclear(r);
        }
        if (op->c->broken)
            break;
    }
    if (rc < 0 || !keep) {
        PQclear(last);
        last = NULL;
    }
    if (keep)
        *keep = last;
    return rc;
}

struct cancel_job {
    PGcancel *cancel;
    char errbuf[256];
};

static intptr_t cancel_run(void *arg)
{
    struct cancel_job *job = arg;
    return PQcancel(job->cancel, job->errbuf, sizeof(job->errbuf)) ? 0 : -ECONNREFUSED;
}

static void cancel_free(struct cancel_job *job)
{
    PQfreeCancel(job->cancel);
    eddy__free(job);
}

static void cancel_dispose(void *arg, intptr_t result, bool ran)
{
    (void)result;
    (void)ran;
    cancel_free(arg);
}

/* Sends a cancel request for the query running on c, from a worker. */
static int send_cancel(struct eddy_pg *c)
{
    struct cancel_job *job = eddy__malloc(sizeof(*job));
    if (!job)
        return -ENOMEM;
    job->cancel = PQgetCancel(c->pg);
    job->errbuf[0] = 0;
    if (!job->cancel) {
        eddy__free(job);
        return -ENOMEM;
    }
    intptr_t result = 0;
    int rc = eddy_offload_run(cancel_run, job, cancel_dispose, &result);
    if (rc < 0)
        return rc; /* job went to cancel_dispose */
    cancel_free(job);
    return (int)result;
}

/* Reads and drops what the cancelled call still has coming: the results of
 * one statement, or of a pipeline up to its sync. */
static int drain(struct op *op)
{
    int rc = flush_all(op);
    if (rc < 0)
        return rc;
    for (;;) {
        PGresult *r;
        if ((rc = next_result(op, &r)) < 0)
            return rc;
        if (!r) {
            if (op->pipeline)
                continue; /* the NULL after one statement; the sync ends it */
            return 0;
        }
        bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (op->c->broken || PQstatus(op->c->pg) == CONNECTION_BAD)
            return -ECONNRESET;
        if (sync)
            return PQexitPipelineMode(op->c->pg) ? 0 : -EPROTO;
    }
}

/* The task left a wait with rc (-ECANCELED or -ETIMEDOUT) while the server
 * runs the query: cancel it there and bring the connection back to idle,
 * shielded and bounded. Returns rc. */
static int cancel_query(struct op *op, int rc)
{
    struct eddy_shield shield;
    struct eddy_timeout bound;
    eddy_shield_enter(&shield);
    eddy_timeout_enter(&bound, EDDY_PG_CANCEL_TIMEOUT_NS);
    op->interrupted = false;
    int r = send_cancel(op->c);
    if (r == 0)
        r = drain(op);
    eddy_timeout_exit(&bound);
    eddy_shield_exit(&shield);
    if (r < 0 || op->interrupted)
        op->c->broken = true;
    eddy__pg_set_error(&op->c->err, "57014",
                       rc == -ETIMEDOUT ? "canceling statement: the timeout scope expired"
                                        : "canceling statement: the task was cancelled");
    return rc;
}

/* Checks the common preconditions and claims the connection. */
static int op_begin(struct op *op, struct eddy_pg *c)
{
    op->c = c;
    op->interrupted = false;
    op->pipeline = false;
    op->fresh = false;
    if (!c || !eddy_task_current())
        return -EINVAL;
    if (c->busy)
        return -EBUSY;
    if (c->broken || PQstatus(c->pg) != CONNECTION_OK) {
        c->broken = true;
        eddy__pg_set_error(&c->err, NULL, "the connection is broken");
        return -ECONNRESET;
    }
    eddy__pg_set_error(&c->err, NULL, "");
    c->busy = true;
    return 0;
}

/* libpq refused to queue a message: a lost connection, or bad input it
 * checks itself (too many parameters). */
static int send_failed(struct eddy_pg *c)
{
    if (PQstatus(c->pg) == CONNECTION_BAD)
        return eddy__pg_lost(c);
    eddy__pg_set_error(&c->err, NULL, PQerrorMessage(c->pg));
    return -EINVAL;
}

int eddy__pg_run(struct eddy_pg *c, enum eddy__pg_kind kind, const char *name, const char *sql,
                 int nparams, const char *const *params, PGresult **keep)
{
    if (keep)
        *keep = NULL;
    struct op op;
    int rc = op_begin(&op, c);
    if (rc < 0)
        return rc;
    if (nparams < 0 || (nparams > 0 && !params && kind != EDDY__PG_PREPARE) ||
        (kind != EDDY__PG_PREPARED && !sql) || (kind != EDDY__PG_PARAMS && !name)) {
        c->busy = false;
        return -EINVAL;
    }
    /* Without parameters, the simple query protocol: one message instead
     * of five (Parse, Bind, Describe, Execute, Sync), which the server also
     * handles faster. */
    int sent;
    if (kind == EDDY__PG_PARAMS && nparams == 0)
        sent = PQsendQuery(c->pg, sql);
    else if (kind == EDDY__PG_PARAMS)
        sent = PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    else if (kind == EDDY__PG_PREPARE)
        sent = PQsendPrepare(c->pg, name, sql, nparams, NULL);
    else
        sent = PQsendQueryPrepared(c->pg, name, nparams, params, NULL, NULL, 0);
    if (!sent) {
        rc = send_failed(c);
        goto out;
    }
    op.fresh = true;
    rc = flush_all(&op);
    if (rc == 0)
        rc = collect(&op, keep);
    if (op.interrupted)
        rc = cancel_query(&op, rc);
out:
    c->busy = false;
    return rc;
}

EDDY_API int eddy_pg_query(struct eddy_pg *conn, const char *sql, int nparams,
                           const char *const *params, struct eddy_pg_result **out)
{
    if (!out)
        return -EINVAL;
    PGresult *r;
    int rc = eddy__pg_run(conn, EDDY__PG_PARAMS, NULL, sql, nparams, params, &r);
    *out = (struct eddy_pg_result *)r;
    return rc;
}

static int64_t affected(PGresult *r)
{
    const char *n = PQcmdTuples(r);
    return *n ? strtoll(n, NULL, 10) : 0;
}

EDDY_API int64_t eddy_pg_exec(struct eddy_pg *conn, const char *sql, int nparams,
                              const char *const *params)
{
    PGresult *r;
    int rc = eddy__pg_run(conn, EDDY__PG_PARAMS, NULL, sql, nparams, params, &r);
    if (rc < 0)
        return rc;
    int64_t n = affected(r);
    PQclear(r);
    return n;
}

EDDY_API int eddy_pg_fetch_one(struct eddy_pg *conn, const char *sql, int nparams,
                               const char *const *params, struct eddy_pg_result **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    PGresult *r;
    int rc = eddy__pg_run(conn, EDDY__PG_PARAMS, NULL, sql, nparams, params, &r);
    if (rc < 0)
        return rc;
    int rows = PQntuples(r);
    if (rows != 1) {
        PQclear(r);
        if (rows > 1)
            eddy__pg_set_error(&conn->err, NULL, "more than one row");
        return rows > 1 ? -ERANGE : 0;
    }
    *out = (struct eddy_pg_result *)r;
    return 1;
}

EDDY_API int eddy_pg_prepare(struct eddy_pg *conn, const char *name, const char *sql, int nparams)
{
    return eddy__pg_run(conn, EDDY__PG_PREPARE, name, sql, nparams, NULL, NULL);
}

EDDY_API int64_t eddy_pg_query_prepared(struct eddy_pg *conn, const char *name, int nparams,
                                        const char *const *params, struct eddy_pg_result **out)
{
    if (out)
        *out = NULL;
    PGresult *r;
    int rc = eddy__pg_run(conn, EDDY__PG_PREPARED, name, NULL, nparams, params, &r);
    if (rc < 0)
        return rc;
    int64_t n = affected(r);
    if (out)
        *out = (struct eddy_pg_result *)r;
    else
        PQclear(r);
    return n;
}

/* Collects the pipeline's results into results[0..n), then its sync. */
static int pipeline_collect(struct op *op, size_t n, struct eddy_pg_result **results)
{
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        PGresult *keep = NULL;
        int rc = collect(op, results ? &keep : NULL);
        if (op->interrupted || op->c->broken)
            return rc < 0 ? rc : -ECONNRESET;
        if (results)
            results[i] = (struct eddy_pg_result *)keep;
        if (rc < 0 && first == 0)
            first = rc; /* the later ones are skipped: -ECANCELED */
    }
    PGresult *r;
    int rc = next_result(op, &r);
    if (rc < 0)
        return rc;
    bool sync = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (!sync || !PQexitPipelineMode(op->c->pg)) {
        op->c->broken = true;
        eddy__pg_set_error(&op->c->err, NULL, "pipeline out of step with the server");
        return -EPROTO;
    }
    return first;
}

EDDY_API int eddy_pg_pipeline(struct eddy_pg *conn, const struct eddy_pg_stmt *stmts, size_t n,
                              struct eddy_pg_result **results)
{
    struct op op;
    if (!stmts && n > 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!stmts[i].sql || stmts[i].nparams < 0 || (stmts[i].nparams > 0 && !stmts[i].params))
            return -EINVAL;
        if (results)
            results[i] = NULL;
    }
    if (n > INT32_MAX)
        return -EINVAL;
    int rc = op_begin(&op, conn);
    if (rc < 0 || n == 0) {
        if (rc == 0)
            conn->busy = false;
        return rc;
    }
    if (!PQenterPipelineMode(conn->pg)) {
        rc = send_failed(conn);
        goto out;
    }
    op.pipeline = true;
    for (size_t i = 0; i < n; i++) {
        if (!PQsendQueryParams(conn->pg, stmts[i].sql, stmts[i].nparams, NULL, stmts[i].params,
                               NULL, NULL, 0)) {
            /* Nothing reached the server unless a flush happened: the sync
             * still ends whatever did. */
            rc = send_failed(conn);
            break;
        }
    }
    if (!PQpipelineSync(conn->pg)) {
        rc = eddy__pg_lost(conn);
        goto out;
    }
    int sent_rc = rc;
    rc = flush_all(&op);
    if (rc == 0 && sent_rc < 0) {
        /* Only the statements before the refused one were sent: drain them. */
        int d = drain(&op);
        rc = d < 0 ? d : sent_rc;
    } else if (rc == 0) {
        rc = pipeline_collect(&op, n, results);
    }
    if (op.interrupted)
        rc = cancel_query(&op, rc);
    if (rc < 0 && results) {
        /* A failed pipeline keeps the results of the statements that ran,
         * unless it was interrupted or lost. */
        if (op.interrupted || conn->broken || sent_rc < 0)
            for (size_t i = 0; i < n; i++) {
                PQclear((PGresult *)results[i]);
                results[i] = NULL;
            }
    }
    if (rc == 0)
        rc = (int)n;
out:
    if (PQpipelineStatus(conn->pg) != PQ_PIPELINE_OFF && !conn->broken)
        conn->broken = true; /* could not get back to normal mode */
    conn->busy = false;
    return rc;
}
