/*
 * db/conn.c: opening and closing PostgreSQL connections without blocking
 * the loop, and the error plumbing every db file shares.
 *
 * Opening. PQconnectStart parses the conninfo (or URI) and starts a
 * non-blocking connect; PQconnectPoll then says after each step whether it
 * needs the socket readable or writable, and the task parks on that with
 * eddy_fd_wait. libpq may close its socket and open another one between
 * two steps (the next address of a host name, a refused SSL or GSS
 * request), and the new one can get the old number: the kernel drops a
 * closed fd from epoll without telling eddy, so the fd leaves the loop
 * (eddy_fd_forget) after every step and the next wait registers it again.
 * A registration reports the socket's current readiness, so no edge is
 * lost. This costs two epoll_ctl calls per step, only while connecting.
 *
 * Errors during the handshake come as text only (libpq keeps no SQLSTATE
 * for a connection). The handshake runs with PQERRORS_VERBOSE, which puts
 * the SQLSTATE in front of the server's message ("FATAL:  3D000: ..."),
 * where it is read back; afterwards the default verbosity is restored.
 *
 * Notices (NOTICE, WARNING, a FATAL sent to an idle session) would go to
 * stderr through libpq's default processor; eddy drops them, as a library
 * should not write to a program's stderr.
 */
#include "db/internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void copy_line(char *dst, size_t cap, const char *msg)
{
    size_t n = strcspn(msg, "\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, msg, n);
    dst[n] = 0;
}

void eddy__pg_set_error(struct eddy_pg_error *err, const char *sqlstate, const char *msg)
{
    err->sqlstate[0] = 0;
    if (sqlstate && strlen(sqlstate) == 5)
        memcpy(err->sqlstate, sqlstate, 6);
    copy_line(err->message, sizeof(err->message), msg ? msg : "");
}

int eddy__pg_map_sqlstate(const char *s)
{
    if (!s || strlen(s) != 5)
        return -EREMOTEIO;
    if (!strncmp(s, "28", 2) || !strcmp(s, "42501"))
        return -EACCES;
    if (!strcmp(s, "3D000"))
        return -ENOENT;
    if (!strcmp(s, "23505"))
        return -EEXIST;
    if (!strcmp(s, "57014"))
        return -ECANCELED;
    if (!strcmp(s, "57P03"))
        return -ECONNREFUSED;
    if (!strncmp(s, "08", 2) || !strcmp(s, "57P01") || !strcmp(s, "57P02"))
        return -ECONNRESET;
    return -EREMOTEIO;
}

int eddy__pg_lost(struct eddy_pg *conn)
{
    conn->broken = true;
    const char *msg = conn->pg ? PQerrorMessage(conn->pg) : "";
    eddy__pg_set_error(&conn->err, NULL, *msg ? msg : "connection lost");
    return -ECONNRESET;
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The error of a failed handshake, from libpq's verbose message: finds
 * "FATAL:  XXXXX: message" (or ERROR), else keeps libpq's own text. */
static int handshake_error(PGconn *pg, struct eddy_pg_error *err)
{
    const char *msg = PQerrorMessage(pg);
    const char *tags[] = {"FATAL:  ", "ERROR:  "};
    for (size_t i = 0; i < 2; i++) {
        const char *p = strstr(msg, tags[i]);
        if (!p)
            continue;
        p += strlen(tags[i]);
        if (strlen(p) > 7 && p[5] == ':' && p[6] == ' ') {
            char state[6];
            memcpy(state, p, 5);
            state[5] = 0;
            eddy__pg_set_error(err, state, p + 7);
            return eddy__pg_map_sqlstate(state);
        }
    }
    /* libpq's "connection to server ... failed: " prefix says where, the
     * rest says why; keep the why when the line is long. */
    const char *why = strstr(msg, "failed: ");
    eddy__pg_set_error(err, NULL, why ? why + strlen("failed: ") : msg);
    return -ECONNREFUSED;
}

/* Drives PQconnectPoll to the end. Returns 0 or -errno. */
static int handshake(PGconn *pg, struct eddy_pg_error *err)
{
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        if (st == PGRES_POLLING_OK)
            return 0;
        if (st == PGRES_POLLING_FAILED)
            return handshake_error(pg, err);
        int fd = PQsocket(pg);
        if (fd < 0)
            return handshake_error(pg, err);
        int rc = eddy_fd_wait(fd, st == PGRES_POLLING_READING ? EDDY_FD_READ : EDDY_FD_WRITE);
        eddy_fd_forget(fd);
        if (rc < 0) {
            eddy__pg_set_error(err, NULL,
                               rc == -ETIMEDOUT ? "connect timed out" : eddy_strerror(rc));
            return rc;
        }
        st = PQconnectPoll(pg);
    }
}

EDDY_API int eddy_pg_open(const char *conninfo, int64_t timeout_ns, struct eddy_pg_error *err,
                          struct eddy_pg **out)
{
    struct eddy_pg_error scratch;
    if (!err)
        err = &scratch;
    eddy__pg_set_error(err, NULL, "");
    if (!conninfo || !out || timeout_ns < 0 || !eddy_task_current()) {
        eddy__pg_set_error(err, NULL, "invalid argument");
        return -EINVAL;
    }
    *out = NULL;
    /* A malformed conninfo is the caller's mistake, not a refusal. */
    char *parse_err = NULL;
    PQconninfoOption *parsed = PQconninfoParse(conninfo, &parse_err);
    if (!parsed) {
        eddy__pg_set_error(err, NULL, parse_err ? parse_err : "out of memory");
        int rc = parse_err ? -EINVAL : -ENOMEM;
        PQfreemem(parse_err);
        return rc;
    }
    PQconninfoFree(parsed);

    struct eddy_pg *conn = eddy__calloc(1, sizeof(*conn));
    if (!conn)
        return -ENOMEM;
    PGconn *pg = PQconnectStart(conninfo);
    if (!pg) {
        eddy__free(conn);
        return -ENOMEM;
    }
    PQsetNoticeProcessor(pg, ignore_notice, NULL);
    int rc;
    if (PQstatus(pg) == CONNECTION_BAD) {
        rc = handshake_error(pg, err);
        goto fail;
    }
    PQsetErrorVerbosity(pg, PQERRORS_VERBOSE);
    struct eddy_timeout scope;
    if (timeout_ns > 0 && (rc = eddy_timeout_enter(&scope, timeout_ns)) < 0)
        goto fail;
    rc = handshake(pg, err);
    if (timeout_ns > 0)
        eddy_timeout_exit(&scope);
    if (rc < 0)
        goto fail;
    PQsetErrorVerbosity(pg, PQERRORS_DEFAULT);
    if (PQsetnonblocking(pg, 1) != 0) {
        rc = handshake_error(pg, err);
        goto fail;
    }
    conn->pg = pg;
    conn->fd = PQsocket(pg);
    eddy__list_init(&conn->link);
    *out = conn;
    return 0;

fail:
    PQfinish(pg);
    eddy__free(conn);
    return rc;
}

EDDY_API void eddy_pg_close(struct eddy_pg *conn)
{
    if (!conn)
        return;
    /* The fd leaves epoll before libpq closes it. */
    if (conn->fd >= 0)
        eddy_fd_forget(conn->fd);
    PQfinish(conn->pg);
    eddy__free(conn);
}

EDDY_API const struct eddy_pg_error *eddy_pg_error(const struct eddy_pg *conn)
{
    return &conn->err;
}

EDDY_API bool eddy_pg_is_broken(const struct eddy_pg *conn)
{
    return conn->broken || PQstatus(conn->pg) != CONNECTION_OK;
}

EDDY_API bool eddy_pg_in_transaction(const struct eddy_pg *conn)
{
    PGTransactionStatusType st = PQtransactionStatus(conn->pg);
    return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

bool eddy__pg_idle_alive(struct eddy_pg *conn)
{
    /* An idle session receives nothing but asynchronous messages (notices,
     * parameter changes, a FATAL before the server hangs up) and EOF:
     * read what is pending and see whether libpq still calls it OK. */
    for (int i = 0; i < 16; i++) {
        if (conn->broken || PQstatus(conn->pg) != CONNECTION_OK)
            return false;
        char b;
        ssize_t n = recv(conn->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n < 0 && errno == EINTR)
            continue;
        if (!PQconsumeInput(conn->pg)) {
            eddy__pg_lost(conn);
            return false;
        }
        (void)PQisBusy(conn->pg); /* parses what was read */
        PGnotify *note;
        while ((note = PQnotifies(conn->pg)))
            PQfreemem(note);
    }
    return !conn->broken && PQstatus(conn->pg) == CONNECTION_OK;
}
