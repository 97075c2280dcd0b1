"""bench/runner/db.py: the db suite, PostgreSQL queries through blocking
libpq (sync), eddy's db layer (build/bench/db, bench/macro/db.c), Python
asyncpg on asyncio and on uvloop (bench/peers/asyncpg_bench.py), and
pgbench, all against one throwaway server that the suite starts with
tests/db/pg_server.sh and always stops (also on Ctrl-C: try/finally).

Cases:
  sleep10ms  N = 1,000 queries of SELECT pg_sleep(0.01); metric seconds.
             sync runs them one after another; eddy-pool-C and
             asyncpg-pool-C run one task per query over a pool of C
             connections (C = 10, 50). Also speedup_vs_sync, run by run.
  select1    SELECT 1 queries per second (metric qps), param = connections:
             1 (sync PQexec, eddy on one connection, asyncpg on one
             connection) and 10 (eddy and asyncpg through a pool of 10, a
             pool acquire per query); pgbench on the same server with the
             same connection count and one thread (-j 1, as eddy's one
             loop): pgbench-S is its built-in select-only script (a primary
             key lookup in pgbench_accounts, scale 1), pgbench-select1 a
             script of `SELECT 1;`.
"""
import os
import shutil
import subprocess
import tempfile

from .common import (DEBIAN_PYTHON, ROOT, SuiteError, SuiteResult, first_line, fmt, rel, row,
                     say)

PG_SERVER = os.path.join(ROOT, "tests", "db", "pg_server.sh")
SLEEP_POOLS = [10, 50]
SELECT_CONNS = [1, 10]


def estimate_s(ctx):
    return 30 if ctx.smoke else 150


def start_server():
    out = subprocess.run([PG_SERVER, "start"], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SuiteError("no PostgreSQL server: " + (out.stderr.strip() or "pg_server.sh failed"))
    env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return env


def stop_server(env):
    subprocess.run([PG_SERVER, "stop", env["EDDY_PG_DIR"]], capture_output=True, timeout=60)
    if os.path.exists(env["EDDY_PG_DIR"]):
        say(f"db: could not remove {env['EDDY_PG_DIR']}")


def run_one(cmd, key):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    except subprocess.TimeoutExpired:
        raise SuiteError("timed out after 600 s: " + " ".join(cmd))
    if out.returncode != 0:
        raise SuiteError(f"{' '.join(cmd)} failed ({out.returncode}): "
                         + (out.stderr.strip() or out.stdout.strip())[-500:])
    fields = dict(kv.split("=", 1) for kv in out.stdout.split() if "=" in kv)
    if key not in fields:
        raise SuiteError(f"{' '.join(cmd)} printed no {key}: {out.stdout.strip()}")
    return float(fields[key])


def run_pgbench(pgbench, env, conns, seconds, script):
    cmd = [pgbench, "-h", env["EDDY_PG_HOST"], "-p", env["EDDY_PG_PORT"], "-U", "postgres",
           "-n", "-c", str(conns), "-j", "1", "-T", str(seconds)] + script + ["eddy_test"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise SuiteError(f"{' '.join(cmd)}: no tps line: {(out.stderr or out.stdout)[-300:]}")


def run(ctx):
    binary = os.path.join(ctx.build, "bench", "db")
    if not os.access(binary, os.X_OK):
        raise SuiteError(f"{rel(binary)} is missing: build it with `make bench-build`")
    py = DEBIAN_PYTHON if os.access(DEBIAN_PYTHON, os.X_OK) else "python3"
    script = os.path.join(ROOT, "bench", "peers", "asyncpg_bench.py")
    probe = subprocess.run([py, "-c", "import asyncpg; print(asyncpg.__version__)"],
                           capture_output=True, text=True)
    asyncpg_version = probe.stdout.strip()
    uvloop_ok = subprocess.run([py, "-c", "import uvloop"], capture_output=True).returncode == 0
    missing = []
    if not asyncpg_version:
        missing.append("asyncpg")
        say(f"db: impl asyncpg skipped: {py} cannot import asyncpg (Debian's python3-asyncpg; "
            "`make bench-deps` installs it)")
    if asyncpg_version and not uvloop_ok:
        missing.append("asyncpg-uvloop")
        say("db: impl asyncpg-uvloop skipped: no uvloop (python3-uvloop)")

    runs = 1 if ctx.smoke else 3
    n_sleep = 200 if ctx.smoke else 1000
    n_select = 5000 if ctx.smoke else 50000
    pgbench_s = 2 if ctx.smoke else 5

    say("db: starting a throwaway PostgreSQL (tests/db/pg_server.sh)")
    env = start_server()
    samples = {}
    try:
        ci = env["EDDY_PG_CONNINFO"]
        bindir = env["EDDY_PG_BIN"]
        pgbench = os.path.join(bindir, "pgbench")
        server_version = first_line([os.path.join(bindir, "postgres"), "--version"])
        have_pgbench = os.access(pgbench, os.X_OK)
        if have_pgbench:
            init = subprocess.run([pgbench, "-h", env["EDDY_PG_HOST"], "-p", env["EDDY_PG_PORT"],
                                   "-U", "postgres", "-i", "-s", "1", "-q", "eddy_test"],
                                  capture_output=True, text=True, timeout=300)
            if init.returncode != 0:
                have_pgbench = False
                say("db: pgbench -i failed, pgbench rows skipped: " + init.stderr.strip()[-200:])
        else:
            say(f"db: {pgbench} missing, pgbench rows skipped")
        if not have_pgbench:
            missing += ["pgbench-S", "pgbench-select1"]
        scratch = tempfile.mkdtemp(prefix="eddy-bench-db-")
        select1_sql = os.path.join(scratch, "select1.sql")
        with open(select1_sql, "w") as f:
            f.write("SELECT 1;\n")

        def asyncpg_cmd(case, queries, conns, uv):
            cmd = [py, script, "--case", case, "--host", env["EDDY_PG_HOST"], "--port",
                   env["EDDY_PG_PORT"], "--database", "eddy_test", "--queries", str(queries),
                   "--conns", str(conns)]
            return cmd + (["--uvloop"] if uv else [])

        # (case, param, impl, metric, thunk); runs interleave the impls.
        points = [("sleep10ms", str(n_sleep), "sync", "seconds",
                   lambda: run_one([binary, "--impl", "sync", "--case", "sleep10ms",
                                    "--conninfo", ci, "--queries", str(n_sleep)], "seconds"))]
        for c in SLEEP_POOLS:
            points.append(("sleep10ms", str(n_sleep), f"eddy-pool-{c}", "seconds",
                           lambda c=c: run_one([binary, "--impl", "eddy", "--case", "sleep10ms",
                                                "--conninfo", ci, "--queries", str(n_sleep),
                                                "--conns", str(c)], "seconds")))
            for uv in (False, True):
                name = f"asyncpg{'-uvloop' if uv else ''}"
                if name in missing:
                    continue
                points.append(("sleep10ms", str(n_sleep), f"{name}-pool-{c}", "seconds",
                               lambda c=c, uv=uv: run_one(
                                   asyncpg_cmd("sleep10ms", n_sleep, c, uv), "seconds")))
        for c in SELECT_CONNS:
            if c == 1:
                points.append(("select1", "1", "sync", "qps",
                               lambda: run_one([binary, "--impl", "sync", "--case", "select1",
                                                "--conninfo", ci, "--queries", str(n_select)],
                                               "qps")))
            points.append(("select1", str(c), "eddy", "qps",
                           lambda c=c: run_one([binary, "--impl", "eddy", "--case", "select1",
                                                "--conninfo", ci, "--queries", str(n_select),
                                                "--conns", str(c)], "qps")))
            for uv in (False, True):
                name = f"asyncpg{'-uvloop' if uv else ''}"
                if name in missing:
                    continue
                points.append(("select1", str(c), name, "qps",
                               lambda c=c, uv=uv: run_one(
                                   asyncpg_cmd("select1", n_select, c, uv), "qps")))
            if have_pgbench:
                points.append(("select1", str(c), "pgbench-S", "qps",
                               lambda c=c: run_pgbench(pgbench, env, c, pgbench_s, ["-S"])))
                points.append(("select1", str(c), "pgbench-select1", "qps",
                               lambda c=c: run_pgbench(pgbench, env, c, pgbench_s,
                                                       ["-f", select1_sql])))
        for r in range(runs):
            for case, param, impl, metric, thunk in points:
                v = thunk()
                samples.setdefault((case, param, impl, metric), []).append(v)
                say(f"db: {case}/{param} run {r + 1}/{runs} {impl:22s} {fmt(v):>9s} {metric}")
        shutil.rmtree(scratch, ignore_errors=True)
    finally:
        stop_server(env)

    rows = []
    units = {"seconds": "s", "qps": "queries/s"}
    for (case, param, impl, metric), s in samples.items():
        rows.append(row("db", case, impl, param, metric, s, units[metric]))
    base = samples.get(("sleep10ms", str(n_sleep), "sync", "seconds"))
    for (case, param, impl, metric), s in samples.items():
        if case == "sleep10ms" and impl != "sync":
            rows.append(row("db", case, impl, param, "speedup_vs_sync",
                            [b / a for a, b in zip(s, base)], "x"))
    for c in SELECT_CONNS:
        eddy = samples.get(("select1", str(c), "eddy", "qps"))
        for ref in ("pgbench-S", "pgbench-select1", "asyncpg", "asyncpg-uvloop"):
            other = samples.get(("select1", str(c), ref, "qps"))
            if eddy and other:
                rows.append(row("db", "select1", "eddy", str(c), "ratio_vs_" + ref,
                                [a / b for a, b in zip(eddy, other)], "x"))

    shown = (f"tests/db/pg_server.sh start; {rel(binary)} --impl sync|eddy --case "
             f"sleep10ms|select1 --conninfo CI --queries N --conns C; {py} "
             "bench/peers/asyncpg_bench.py --case ... [--uvloop]; pgbench -n -c C -j 1 -T "
             f"{pgbench_s} -S | -f select1.sql; tests/db/pg_server.sh stop DIR")
    extra = {
        "settings": {
            "sleep10ms_queries": n_sleep, "select1_queries": n_select, "runs": runs,
            "sleep_pools": SLEEP_POOLS, "select_conns": SELECT_CONNS,
            "pgbench_seconds": pgbench_s,
            "server": "throwaway cluster from tests/db/pg_server.sh: Unix socket, fsync off, "
                      "trust auth, the clients connect over the socket",
            "pinning": "none: server backends and clients share the allowed cores",
        },
        "postgres": server_version,
        "python": {"interpreter": py, "asyncpg": asyncpg_version or "not installed",
                   "uvloop": uvloop_ok},
        "missing": missing,
    }
    return SuiteResult(rows, shown, extra)


def summary(result):
    say("db: median (min..max):")
    for r in result.rows:
        say(f"  {r['case']:9s} {r['param']:>5s} {r['impl']:22s} {r['metric']:26s} "
            f"{fmt(r['value']):>9s} ({fmt(r['min'])}..{fmt(r['max'])}) {r['unit']}")
