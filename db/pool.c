/*
 * db/pool.c: a pool of PostgreSQL connections shared by the tasks of one
 * loop (asyncpg's Pool).
 *
 * State: `size` connections exist or are being opened; `idle` of them sit
 * in a LIFO list (the most recently used first, so a lightly loaded pool
 * keeps few connections warm); the rest are acquired. Tasks that find no
 * idle connection and no room to open one wait in a FIFO wait queue,
 * at most max_waiters of them.
 *
 * Hand-off: release puts the connection in the idle list and, when a task
 * waits, wakes it with WAKE_IDLE and counts the connection as `reserved`,
 * so a task that calls acquire meanwhile (without waiting) cannot take it
 * from under the woken one: the fast path takes an idle connection only
 * while idle > reserved. A slot freed by closing a connection wakes one
 * waiter with WAKE_SLOT, and that waiter opens a fresh connection. The wait
 * queue never hands a code to a waiter that left by cancellation or
 * timeout, so no reservation is lost.
 *
 * Health: an idle connection is checked before it is handed out: a
 * non-blocking peek shows whether the server hung up (EOF, or a FATAL
 * before it), and a connection idle longer than health_check_idle_ns is
 * also pinged with an empty query. A dead one is closed and replaced: when
 * the server restarts, the pool recovers as acquires find its old
 * connections dead and open new ones.
 */
#include "db/internal.h"

#include <string.h>

/* Wake codes. Not 1: eddy_waitq_wait reads 1 as its own deadline
 * (EDDY__WAKE_DEADLINE) and returns -ETIMEDOUT. */
enum { WAKE_IDLE = 2, WAKE_SLOT = 3 };

struct eddy_pg_pool {
    char *conninfo;
    size_t min_size, max_size, max_waiters;
    int64_t connect_timeout_ns;
    int64_t health_check_idle_ns;
    struct eddy__list idle_list;
    size_t size, idle, in_use, waiting, reserved;
    struct eddy_waitq waiters;
    struct eddy_pg_pool_stats counters; /* only the uint64_t fields are kept here */
};

static void close_slot(struct eddy_pg_pool *pool, struct eddy_pg *conn)
{
    eddy_pg_close(conn);
    pool->size--;
    pool->counters.replaced++;
    eddy_waitq_wake_one(&pool->waiters, WAKE_SLOT);
}

EDDY_API int eddy_pg_pool_create(const struct eddy_pg_pool_opts *opts, struct eddy_pg_pool **out)
{
    if (!opts || !out || !opts->conninfo || !eddy_task_current())
        return -EINVAL;
    size_t max = opts->max_size ? opts->max_size : 10;
    if (opts->min_size > max)
        return -EINVAL;
    struct eddy_pg_pool *pool = eddy__calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    size_t len = strlen(opts->conninfo);
    pool->conninfo = eddy__malloc(len + 1);
    if (!pool->conninfo) {
        eddy__free(pool);
        return -ENOMEM;
    }
    memcpy(pool->conninfo, opts->conninfo, len + 1);
    pool->min_size = opts->min_size;
    pool->max_size = max;
    pool->max_waiters = opts->max_waiters ? opts->max_waiters : 1024;
    pool->connect_timeout_ns =
        opts->connect_timeout_ns > 0 ? opts->connect_timeout_ns : 5 * EDDY_NS_PER_SEC;
    pool->health_check_idle_ns =
        opts->health_check_idle_ns ? opts->health_check_idle_ns : EDDY_NS_PER_SEC;
    eddy__list_init(&pool->idle_list);
    eddy_waitq_init(&pool->waiters);
    for (size_t i = 0; i < pool->min_size; i++) {
        struct eddy_pg *conn;
        int rc = eddy_pg_open(pool->conninfo, pool->connect_timeout_ns, NULL, &conn);
        if (rc < 0) {
            eddy_pg_pool_destroy(pool);
            return rc;
        }
        conn->idle_since_ns = eddy_now_ns();
        eddy__list_push_front(&pool->idle_list, &conn->link);
        pool->size++;
        pool->idle++;
        pool->counters.opened++;
    }
    *out = pool;
    return 0;
}

EDDY_API int eddy_pg_pool_destroy(struct eddy_pg_pool *pool)
{
    if (!pool)
        return 0;
    if (pool->size != pool->idle || pool->waiting || !eddy_waitq_is_empty(&pool->waiters))
        return -EBUSY;
    while (!eddy__list_is_empty(&pool->idle_list)) {
        struct eddy__list *l = eddy__list_pop_front(&pool->idle_list);
        eddy_pg_close(eddy__container_of(l, struct eddy_pg, link));
    }
    eddy__free(pool->conninfo);
    eddy__free(pool);
    return 0;
}

/* Takes the freshest idle connection if it is alive; closes it otherwise.
 * Returns it, or NULL when it was dead. May suspend (the ping). */
static struct eddy_pg *take_idle(struct eddy_pg_pool *pool)
{
    struct eddy__list *l = eddy__list_pop_front(&pool->idle_list);
    struct eddy_pg *conn = eddy__container_of(l, struct eddy_pg, link);
    pool->idle--;
    /* Counted as acquired while it is checked, so that the counts add up
     * across the ping's suspension. */
    pool->in_use++;
    bool alive = eddy__pg_idle_alive(conn);
    if (alive && pool->health_check_idle_ns >= 0 &&
        eddy_now_ns() - conn->idle_since_ns > pool->health_check_idle_ns) {
        /* The empty query: one round trip, no parse, no plan. It runs in a
         * shield so that a cancelled acquire does not also lose the
         * connection to a cancel request. */
        struct eddy_shield shield;
        struct eddy_timeout bound;
        eddy_shield_enter(&shield);
        eddy_timeout_enter(&bound, pool->connect_timeout_ns);
        alive = eddy__pg_run(conn, EDDY__PG_PARAMS, NULL, "", 0, NULL, NULL) == 0;
        eddy_timeout_exit(&bound);
        eddy_shield_exit(&shield);
    }
    if (alive)
        return conn;
    pool->in_use--;
    close_slot(pool, conn);
    return NULL;
}

static int acquire(struct eddy_pg_pool *pool, struct eddy_pg **out)
{
    for (;;) {
        if (pool->idle > pool->reserved) {
            struct eddy_pg *conn = take_idle(pool);
            if (!conn)
                continue;
            *out = conn;
            return 0;
        }
        if (pool->size < pool->max_size) {
            pool->size++;
            struct eddy_pg *conn;
            int rc = eddy_pg_open(pool->conninfo, pool->connect_timeout_ns, NULL, &conn);
            if (rc < 0) {
                pool->size--;
                eddy_waitq_wake_one(&pool->waiters, WAKE_SLOT);
                return rc;
            }
            pool->counters.opened++;
            pool->in_use++;
            *out = conn;
            return 0;
        }
        if (pool->waiting >= pool->max_waiters) {
            pool->counters.rejected++;
            return -EBUSY;
        }
        pool->waiting++;
        int rc = eddy_waitq_wait(&pool->waiters, EDDY_DEADLINE_NEVER);
        pool->waiting--;
        if (rc == WAKE_IDLE)
            pool->reserved--;
        else if (rc < 0)
            return rc;
    }
}

EDDY_API int eddy_pg_pool_acquire(struct eddy_pg_pool *pool, int64_t timeout_ns,
                                  struct eddy_pg **out)
{
    if (!pool || !out || !eddy_task_current())
        return -EINVAL;
    *out = NULL;
    struct eddy_timeout scope;
    bool scoped = timeout_ns >= 0;
    if (scoped) {
        int rc = eddy_timeout_enter(&scope, timeout_ns);
        if (rc < 0)
            return rc;
    }
    int rc = acquire(pool, out);
    if (scoped)
        eddy_timeout_exit(&scope);
    if (rc == -ETIMEDOUT)
        pool->counters.timeouts++;
    if (rc == 0)
        pool->counters.acquired++;
    return rc;
}

EDDY_API void eddy_pg_pool_release(struct eddy_pg_pool *pool, struct eddy_pg *conn)
{
    if (!pool || !conn)
        return;
    pool->in_use--;
    /* A connection in an unknown state, or with a transaction the caller
     * left open, is not handed to the next task: closing it makes the
     * server roll that transaction back. */
    if (conn->busy || eddy_pg_is_broken(conn) || PQtransactionStatus(conn->pg) != PQTRANS_IDLE) {
        close_slot(pool, conn);
        return;
    }
    conn->idle_since_ns = eddy_now_ns();
    eddy__list_push_front(&pool->idle_list, &conn->link);
    pool->idle++;
    if (!eddy_waitq_is_empty(&pool->waiters)) {
        pool->reserved++;
        if (!eddy_waitq_wake_one(&pool->waiters, WAKE_IDLE))
            pool->reserved--;
    }
}

EDDY_API int eddy_pg_pool_with(struct eddy_pg_pool *pool, int64_t timeout_ns, eddy_pg_conn_fn *fn,
                               void *arg)
{
    if (!fn)
        return -EINVAL;
    struct eddy_pg *conn;
    int rc = eddy_pg_pool_acquire(pool, timeout_ns, &conn);
    if (rc < 0)
        return rc;
    rc = fn(conn, arg);
    eddy_pg_pool_release(pool, conn);
    return rc;
}

EDDY_API void eddy_pg_pool_stats(const struct eddy_pg_pool *pool, struct eddy_pg_pool_stats *out)
{
    *out = pool->counters;
    out->size = pool->size;
    out->idle = pool->idle;
    out->in_use = pool->in_use;
    out->waiting = pool->waiting;
}
