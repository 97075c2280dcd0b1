/*
 * db/internal.h: what the db layer's files share: the connection struct
 * (the pool links idle connections through it), the error helpers and the
 * one query driver every public query call goes through.
 */
#ifndef EDDY_DB_INTERNAL_H
#define EDDY_DB_INTERNAL_H

#include <libpq-fe.h>

#include "alloc/internal.h"
#include "alloc/list.h"
#include <eddy/db.h>
#include <eddy/reactor.h>

struct eddy_pg {
    PGconn *pg;
    int fd;                   /* PQsocket, registered with the loop */
    bool busy;                /* a query is in flight */
    bool broken;              /* lost, or left in an unknown state */
    struct eddy_pg_error err; /* the last error */
    /* Owned by db/pool.c. */
    struct eddy__list link; /* in the pool's idle list */
    int64_t idle_since_ns;
};

/* Copies a SQLSTATE (NULL: none) and a message (first line, truncated). */
void eddy__pg_set_error(struct eddy_pg_error *err, const char *sqlstate, const char *msg);

/* The errno a SQLSTATE maps to (the table in eddy/db.h). */
int eddy__pg_map_sqlstate(const char *sqlstate);

/* Marks conn broken and records libpq's reason. Returns -ECONNRESET. */
int eddy__pg_lost(struct eddy_pg *conn);

enum eddy__pg_kind {
    EDDY__PG_PARAMS,   /* PQsendQueryParams(sql) */
    EDDY__PG_PREPARE,  /* PQsendPrepare(name, sql) */
    EDDY__PG_PREPARED, /* PQsendQueryPrepared(name) */
};

/*
 * Sends one statement, waits for its results and returns the last one in
 * *keep (may be NULL to drop it). Cancels on the server when the wait is
 * cancelled or times out. Returns 0 or the errors of eddy/db.h.
 */
int eddy__pg_run(struct eddy_pg *conn, enum eddy__pg_kind kind, const char *name, const char *sql,
                 int nparams, const char *const *params, PGresult **keep);

/* True when an idle connection shows no sign of being lost: nothing but
 * asynchronous messages pending, no EOF. Suspends: no. */
bool eddy__pg_idle_alive(struct eddy_pg *conn);

#endif
