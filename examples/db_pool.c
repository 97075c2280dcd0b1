/*
 * examples/db_pool.c: concurrent queries through a connection pool
 * (asyncpg.create_pool and `async with pool.acquire() as conn:`).
 *
 *   pool = await asyncpg.create_pool(dsn, min_size=2, max_size=5)
 *   async def work(i):
 *       async with pool.acquire() as conn:
 *           return await conn.fetchval("SELECT $1::int * 10 FROM pg_sleep(0.05)", i)
 *   results = await asyncio.gather(*(work(i) for i in range(20)))
 *
 * 20 queries of 50 ms each share 5 connections: about 4 rounds of 50 ms
 * instead of a second one after another (the timing is not printed: the
 * output must not depend on it). eddy_pg_pool_with releases the connection
 * whatever the work returns. The server comes from EDDY_PG_CONNINFO.
 */
#include <stdio.h>
#include <stdlib.h>

#include <eddy/eddy.h>

#define QUERIES 20

struct job {
    struct eddy_pg_pool *pool;
    int i;
    int64_t value;
};

static int query(struct eddy_pg *c, void *arg)
{
    struct job *j = arg;
    char i[16];
    snprintf(i, sizeof(i), "%d", j->i);
    const char *params[] = {i};
    struct eddy_pg_result *r;
    int rc = eddy_pg_fetch_one(c, "SELECT $1::int * 10 FROM pg_sleep(0.05)", 1, params, &r);
    if (rc < 0)
        return rc;
    rc = eddy_pg_result_int64(r, 0, 0, &j->value);
    eddy_pg_result_free(r);
    return rc;
}

static intptr_t work(void *arg)
{
    struct job *j = arg;
    return eddy_pg_pool_with(j->pool, 5 * EDDY_NS_PER_SEC, query, j);
}

static intptr_t main_task(void *arg)
{
    struct eddy_pg_pool_opts opts = {.conninfo = arg, .min_size = 2, .max_size = 5};
    struct eddy_pg_pool *pool;
    int rc = eddy_pg_pool_create(&opts, &pool);
    if (rc < 0) {
        fprintf(stderr, "pool: %s\n", eddy_strerror(rc));
        return rc;
    }
    struct job jobs[QUERIES];
    struct eddy_task *tasks[QUERIES];
    for (int i = 0; i < QUERIES; i++) {
        jobs[i] = (struct job){pool, i, -1};
        if ((rc = eddy_task_spawn(work, &jobs[i], NULL, &tasks[i])) < 0)
            return rc; /* eddy_run cancels and finishes the spawned ones */
    }
    int failed = 0;
    int64_t sum = 0;
    for (int i = 0; i < QUERIES; i++) {
        intptr_t result;
        eddy_task_join(tasks[i], &result);
        if (result < 0)
            failed++;
        else
            sum += jobs[i].value;
    }
    struct eddy_pg_pool_stats st;
    eddy_pg_pool_stats(pool, &st);
    printf("%d queries through a pool of at most %zu connections\n", QUERIES, opts.max_size);
    printf("failed: %d, sum of results: %lld\n", failed, (long long)sum);
    printf("connections opened: %llu, acquires: %llu, in use now: %zu\n",
           (unsigned long long)st.opened, (unsigned long long)st.acquired, st.in_use);
    eddy_pg_pool_destroy(pool);
    return failed ? -EIO : 0;
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
