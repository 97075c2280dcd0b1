#!/usr/bin/env python3
"""bench/peers/asyncpg_bench.py: the asyncpg side of the `db` suite of
bench/run, the same work as build/bench/db (bench/macro/db.c) written the
way an asyncio service would.

    asyncpg_bench.py --case sleep10ms|select1 --host H --port P --user U
                     --database D [--queries N] [--conns C] [--uvloop]

sleep10ms: N coroutines, each `async with pool.acquire() as conn:
  await conn.execute("SELECT pg_sleep(0.01)")`, gathered, through a pool
  of C connections. Prints `seconds=S`.
select1: N queries of `SELECT 1` (conn.fetchval): with C = 1 one coroutine
  on one connection; with C > 1 C coroutines each acquiring from a pool
  of C per query. Prints `qps=Q seconds=S queries=N`.

asyncpg uses the extended protocol with its statement cache (a prepared
statement per distinct query). As the C driver does, each run does a
warm-up pass (select1: a tenth of N) and times the second one with
time.perf_counter. Runs under Debian's /usr/bin/python3 with
python3-asyncpg (make bench-deps).
"""
import argparse
import asyncio
import sys
import time

import asyncpg


async def sleep_pass(pool, n):
    async def one():
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_sleep(0.01)")

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - t0, n


async def select_pool_pass(pool, tasks, per_task):
    async def worker():
        for _ in range(per_task):
            async with pool.acquire() as conn:
                if await conn.fetchval("SELECT 1") != 1:
                    raise RuntimeError("SELECT 1 returned something else")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return time.perf_counter() - t0, tasks * per_task


async def select_conn_pass(conn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        if await conn.fetchval("SELECT 1") != 1:
            raise RuntimeError("SELECT 1 returned something else")
    return time.perf_counter() - t0, n


async def main(args):
    kw = dict(host=args.host, port=args.port, user=args.user, database=args.database)
    if args.case == "select1" and args.conns == 1:
        conn = await asyncpg.connect(**kw)
        await select_conn_pass(conn, max(1, args.queries // 10))
        seconds, done = await select_conn_pass(conn, args.queries)
        await conn.close()
        return seconds, done
    pool = await asyncpg.create_pool(min_size=args.conns, max_size=args.conns, **kw)
    try:
        if args.case == "sleep10ms":
            await sleep_pass(pool, args.queries)
            return await sleep_pass(pool, args.queries)
        await select_pool_pass(pool, args.conns, args.queries // 10 // args.conns + 1)
        return await select_pool_pass(pool, args.conns, args.queries // args.conns)
    finally:
        await pool.close()


def cli():
    p = argparse.ArgumentParser()
    p.add_argument("--case", choices=["sleep10ms", "select1"], required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="postgres")
    p.add_argument("--database", required=True)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--uvloop", action="store_true")
    args = p.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    seconds, done = asyncio.run(main(args))
    if args.case == "select1":
        print(f"qps={done / seconds:.1f} seconds={seconds:.6f} queries={done}")
    else:
        print(f"seconds={seconds:.6f}")


if __name__ == "__main__":
    sys.exit(cli())
