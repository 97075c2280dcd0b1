"""bench/runner/fetch.py: the fetch suite, the client side of sync against
async.

Case slow: fetch N URLs that each take 100 ms (eddy-httpd /delay?ms=100),
N = 10, 100, 1,000, 10,000, with
  sync            eddy-fetch --mode sync: one after the other
  threads         eddy-fetch --mode threads -c N: a thread per request
  eddy-async      eddy-fetch --mode async -c N: a task per request
  requests        Python requests, one after the other (bench/peers/fetch_requests.py)
  aiohttp         Python aiohttp, asyncio.gather of N (bench/peers/fetch_aiohttp.py)
  aiohttp-uvloop  the same on uvloop
Sequential impls take N x 100 ms, so they run only up to SEQ_MAX_N (10 s a
run); above it their rows are absent, the JSON lists them under "capped",
and speedup_vs_sync_extrapolated compares with sync's per-request time at
SEQ_MAX_N times N (a estimate, named so).

Case throughput: C = 64 connections against nginx answering 13 bytes
(/plaintext): wrk -t1 (the ceiling: a load generator, not a client
library), eddy-fetch async and threads, aiohttp and aiohttp on uvloop;
req/s and requests per client CPU second (the client's utime+stime, from
wait4), which is what a client costs whatever the machine.

The server runs pinned to one core and the client to the other. Every
client run is bounded in time and killed (its process group) when over.
"""
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

from .common import DEBIAN_PYTHON, ROOT, SuiteError, SuiteResult, first_line, git, rel, row, say
from .servers import (HOST, PEERS_DIR, Server, ServerError, die_with_parent, nginx_server,
                      pinned, raise_nofile, run_wrk)

DELAY_MS = 100
SLOW_N = [10, 100, 1000, 10000]
SLOW_N_SMOKE = [10]
SEQ_MAX_N = 100               # sequential impls: 100 x 100 ms = 10 s a run
THROUGHPUT_CONNS = 64
CLIENT_SLACK_S = 60.0         # a client is killed this long after its expected time
SEQUENTIAL = {"sync", "requests"}
SLOW_METRICS = [("seconds", "s"), ("rps", "1/s"), ("p99_ms", "ms"), ("client_cpu_s", "cpu_s"),
                ("errors", "count")]
THROUGHPUT_METRICS = [("rps", "1/s"), ("rps_per_client_cpu_s", "1/cpu_s"),
                      ("client_cpu_util", "cores"), ("p99_ms", "ms"), ("errors", "count")]


def plan(ctx):
    if ctx.smoke:
        return {"slow_n": SLOW_N_SMOKE, "runs": 1, "requests_c": 2000, "requests_py": 1000,
                "wrk_seconds": 1}
    return {"slow_n": SLOW_N, "runs": 3, "requests_c": 200000, "requests_py": 20000,
            "wrk_seconds": 5}


def estimate_s(ctx):
    p = plan(ctx)
    slow = sum(2 * n * DELAY_MS / 1e3 for n in p["slow_n"] if n <= SEQ_MAX_N)
    slow += sum(4 * (DELAY_MS / 1e3 + n / 5000 + 0.5) for n in p["slow_n"])
    return (slow + 5 * (p["wrk_seconds"] + 1)) * p["runs"] + 5


def fetch_binary(ctx):
    """(path of eddy-fetch, None) or (None, why it is missing)."""
    path = os.path.join(ctx.build, "bin", "eddy-fetch")
    if os.access(path, os.X_OK):
        return path, None
    if not os.path.exists(os.path.join(ROOT, "tools", "eddy-fetch.c")):
        return None, ("eddy-fetch is not in this tree yet (tools/eddy-fetch.c comes with the "
                      "HTTP client)")
    return None, f"{rel(path)} is missing: build it with `make tools`"


def python_impls():
    """{impl: (argv prefix, version)} of the Python peers that import, and
    {impl: why} of those that do not."""
    found, missing = {}, {}
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        for impl in ("requests", "aiohttp", "aiohttp-uvloop"):
            missing[impl] = f"{DEBIAN_PYTHON} is missing"
        return found, missing
    peers = [("requests", "requests", "fetch_requests.py", []),
             ("aiohttp", "aiohttp", "fetch_aiohttp.py", []),
             ("aiohttp-uvloop", "aiohttp, uvloop", "fetch_aiohttp.py", ["--uvloop"])]
    for impl, mods, script, flags in peers:
        probe = subprocess.run(
            [DEBIAN_PYTHON, "-c", f"import {mods}; print({mods.split(',')[-1].strip()}"
             ".__version__)"], capture_output=True, text=True)
        if probe.returncode != 0:
            pkg = " ".join("python3-" + m.strip() for m in mods.split(","))
            missing[impl] = f"{DEBIAN_PYTHON} cannot import {mods} (Debian: {pkg}; " \
                "`make bench-deps`)"
            continue
        found[impl] = ([DEBIAN_PYTHON, os.path.join(PEERS_DIR, script)] + flags,
                       f"{mods.split(',')[-1].strip()} {probe.stdout.strip()}")
    return found, missing


def client_argv(impl, fetch, py, n, c, url):
    if impl in ("sync", "threads", "eddy-async"):
        mode = {"sync": "sync", "threads": "threads", "eddy-async": "async"}[impl]
        return [fetch, "--mode", mode, "-n", str(n), "-c", str(1 if mode == "sync" else c),
                "--json", url]
    if impl == "requests":
        return py[impl][0] + ["-n", str(n), url]
    return py[impl][0] + ["-n", str(n), "-c", str(c), url]


def shown(cmd):
    return " ".join(shlex.quote(rel(a) if a.startswith(ROOT) else a) for a in cmd)


def run_client(cmd, timeout_s):
    """Runs one client to the end (killed with its process group after
    timeout_s); returns its JSON with wall_s and client_cpu_s added."""
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                cwd=ROOT, start_new_session=True, preexec_fn=die_with_parent)
        usage, status = None, None
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() - t0 > timeout_s:
                    raise ServerError(f"still running after {timeout_s:.0f} s; killed")
                time.sleep(0.02)
        finally:
            if proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        text, errtext = out.read(), err.read()
    lines = [l for l in text.splitlines() if l.startswith("{")]
    if proc.returncode != 0 and not lines:
        raise ServerError(f"exit status {proc.returncode}: "
                          + " | ".join((errtext or text).strip().splitlines()[-3:]))
    try:
        res = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ServerError("no JSON result: " + " | ".join(text.strip().splitlines()[-3:]))
    # One rps for every client: eddy-fetch rounds its own to 0.1.
    if res.get("seconds"):
        res["rps"] = res["requests"] / res["seconds"]
    res["wall_s"] = wall
    res["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    # The Python peers report the CPU of their timed part (cpu_s): their
    # interpreter start and imports (~0.3 s) are not a cost per request.
    res["client_cpu_s"] = res.get("cpu_s", res["process_cpu_s"])
    res["exit_status"] = proc.returncode
    lat = res.get("latency_ms") or {}
    res["p99_ms"] = lat.get("p99")
    return res


def run(ctx):
    p = plan(ctx)
    allowed = sorted(os.sched_getaffinity(0))
    client_cpu = ctx.cpu
    others = [c for c in allowed if c != client_cpu]
    server_cpu = others[0] if others else client_cpu
    limit = raise_nofile(max(p["slow_n"]) + 1024)
    fetch, fetch_why = fetch_binary(ctx)
    py, missing = python_impls()
    if not fetch:
        for impl in ("sync", "threads", "eddy-async"):
            missing[impl] = fetch_why
    for impl, why in missing.items():
        say(f"fetch: skipping {impl}: {why}")
    slow_impls = [i for i in ("sync", "threads", "eddy-async", "requests", "aiohttp",
                              "aiohttp-uvloop") if i not in missing]
    tp_impls = [i for i in ("wrk", "eddy-async", "threads", "aiohttp", "aiohttp-uvloop")
                if i not in missing]
    if not shutil.which("wrk"):
        missing["wrk"] = "wrk is not installed (Debian: wrk; `make bench-deps`)"
        tp_impls.remove("wrk")
    if not slow_impls and not tp_impls:
        raise SuiteError("no client to measure: "
                         + "; ".join(f"{k}: {v}" for k, v in missing.items()))

    scratch = tempfile.mkdtemp(prefix="eddy-fetch-")
    os.chmod(scratch, 0o755)
    samples, measurements, commands, capped, notes = {}, [], {}, {}, []
    missing_points = {}  # "case/impl/param" -> why, for one failed point
    httpd = os.path.join(ctx.build, "bin", "eddy-httpd")
    servers = []
    started = time.monotonic()
    total_est = estimate_s(ctx)

    def point(case, impl, param, run, res, cmd):
        samples.setdefault((case, impl, param), []).append(res)
        commands.setdefault(f"{case}/{impl}", shown(cmd))
        measurements.append({"case": case, "impl": impl, "param": param, "run": run + 1,
                             **res})
        left = max(0.0, total_est - (time.monotonic() - started))
        p99 = res.get("p99_ms")
        say(f"fetch: {case} {impl} {'N' if case == 'slow' else 'C'}={param} run {run + 1}/"
            f"{p['runs']}: {res['seconds']:.2f} s, {res['rps']:,.0f} req/s, p99 "
            f"{'-' if p99 is None else '%.1f ms' % p99}, client cpu {res['client_cpu_s']:.2f} s"
            f"{', %d errors' % res['errors'] if res.get('errors') else ''}; ~{left:.0f} s left")

    try:
        # ---- slow: N x /delay?ms=100 from eddy-httpd ----
        if slow_impls:
            if not os.access(httpd, os.X_OK):
                raise SuiteError(f"{rel(httpd)} is missing: build it with `make tools`")
            srv = Server("eddy-httpd", lambda port, d: [
                httpd, "--port", str(port), "--threads", "1", "--max-connections", "20000"],
                git("describe", "--always", "--dirty"), server_cpu, scratch,
                "the slow server: /delay?ms=100 sleeps on its loop")
            servers.append(srv)
            try:
                srv.start()
            except ServerError as e:
                raise SuiteError(f"eddy-httpd did not start: {e}")
            url = f"http://{HOST}:{srv.port}/delay?ms={DELAY_MS}"
            for n in p["slow_n"]:
                # The client and the server each hold N connections.
                if limit < n + 64:
                    notes.append(f"N={n} skipped: RLIMIT_NOFILE is {limit}")
                    say("fetch: " + notes[-1])
                    continue
                for run in range(p["runs"]):
                    for impl in slow_impls:
                        if impl in SEQUENTIAL and n > SEQ_MAX_N:
                            capped[f"{impl}/{n}"] = (
                                f"not run: one after the other it takes ~{n * DELAY_MS / 1e3:.0f} "
                                f"s; sequential impls run up to N={SEQ_MAX_N}")
                            continue
                        key = f"slow/{impl}/{n}"
                        if key in missing_points:
                            continue
                        cmd = pinned(client_cpu, client_argv(impl, fetch, py, n, n, url))
                        expect = n * DELAY_MS / 1e3 if impl in SEQUENTIAL else DELAY_MS / 1e3 + n / 1000
                        try:
                            res = run_client(cmd, expect * 3 + CLIENT_SLACK_S)
                        except ServerError as e:
                            missing_points[key] = str(e)
                            say(f"fetch: slow {impl} N={n} FAILED: {e}")
                            continue
                        point("slow", impl, n, run, res,
                              [a.replace(str(srv.port), "PORT") for a in cmd])
                        if not srv.alive():
                            raise SuiteError(f"eddy-httpd exited ({srv.exit_status()}): "
                                             + srv.log_tail())
            srv.stop()

        # ---- throughput: C = 64 against nginx /plaintext ----
        nginx, why = nginx_server(server_cpu, scratch)
        if not nginx:
            for impl in tp_impls:
                missing_points[f"throughput/{impl}/{THROUGHPUT_CONNS}"] = why
            say(f"fetch: throughput case skipped: {why}")
            tp_impls = []
        else:
            servers.append(nginx)
            try:
                nginx.start()
            except ServerError as e:
                say(f"fetch: throughput case skipped: nginx did not start: {e}")
                for impl in tp_impls:
                    missing_points[f"throughput/{impl}/{THROUGHPUT_CONNS}"] = str(e)
                tp_impls = []
        c = THROUGHPUT_CONNS
        for run in range(p["runs"]):
            for impl in tp_impls:
                key = f"throughput/{impl}/{c}"
                if key in missing_points:
                    continue
                try:
                    if impl == "wrk":
                        w = run_wrk(client_cpu, nginx.port, c, p["wrk_seconds"], "/plaintext", 1)
                        res = {"requests": w["requests"], "errors": w["errors"],
                               "seconds": w["seconds"], "rps": w["rps"], "p99_ms": w["p99_ms"],
                               "client_cpu_s": w["wrk_cpu_s"]}
                        cmd = w["command"].split()
                    else:
                        n = p["requests_py"] if impl.startswith("aiohttp") else p["requests_c"]
                        url = f"http://{HOST}:{nginx.port}/plaintext"
                        cmd = pinned(client_cpu, client_argv(impl, fetch, py, n, c, url))
                        res = run_client(cmd, 120)
                except ServerError as e:
                    missing_points[key] = str(e)
                    say(f"fetch: throughput {impl} FAILED: {e}")
                    continue
                cpu = res["client_cpu_s"]
                res["rps_per_client_cpu_s"] = res["requests"] / cpu if cpu > 0 else None
                res["client_cpu_util"] = cpu / res["seconds"] if res["seconds"] > 0 else None
                point("throughput", impl, c, run, res,
                      [a.replace(str(nginx.port), "PORT") for a in cmd])
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    rows = []
    for (case, impl, param), runs in samples.items():
        for metric, unit in (SLOW_METRICS if case == "slow" else THROUGHPUT_METRICS):
            values = [r[metric] for r in runs if r.get(metric) is not None]
            if values:
                rows.append(row("fetch", case, impl, param, metric, values, unit))
    # Speedups over the sequential clients, run by run where both ran.
    seq_per_req = {}
    for base in ("sync", "requests"):
        measured = [n for n in p["slow_n"] if ("slow", base, n) in samples]
        if measured:
            top = max(measured)
            seq_per_req[base] = [r["seconds"] / top for r in samples[("slow", base, top)]]
    for (case, impl, n), runs in list(samples.items()):
        if case != "slow":
            continue
        for base in ("sync", "requests"):
            if impl == base or (base == "requests" and not impl.startswith("aiohttp")):
                continue
            ref = samples.get(("slow", base, n))
            if ref:
                rows.append(row("fetch", case, impl, n, f"speedup_vs_{base}",
                                [b["seconds"] / a["seconds"] for a, b in zip(runs, ref)
                                 if a["seconds"] > 0], "x"))
            elif base in seq_per_req:
                est = statistics.median(seq_per_req[base]) * n
                rows.append(row("fetch", case, impl, n, f"speedup_vs_{base}_extrapolated",
                                [est / a["seconds"] for a in runs if a["seconds"] > 0], "x"))
    rows.sort(key=lambda r: (r["case"] != "slow", r["case"], int(r["param"]),
                             list(samples).index((r["case"], r["impl"], r["param"]))))
    extra = {
        "plan": {"slow_n": p["slow_n"], "delay_ms": DELAY_MS, "sequential_max_n": SEQ_MAX_N,
                 "runs": p["runs"], "throughput_connections": THROUGHPUT_CONNS,
                 "throughput_requests_c": p["requests_c"],
                 "throughput_requests_python": p["requests_py"],
                 "wrk_seconds": p["wrk_seconds"]},
        "server_cpu": server_cpu, "client_cpu": client_cpu, "rlimit_nofile": limit,
        "clients": {impl: v[1] for impl, v in py.items()},
        "eddy_fetch": shown([fetch]) if fetch else None,
        "wrk_version": first_line(["sh", "-c", "wrk -v 2>&1"]),
        "commands": commands,
        "capped": capped,
        "missing": missing,
        "failed_points": missing_points,
        "notes": notes,
        "measurements": measurements,
        "method": ("seconds: the client's own figure (first request sent to last answer), "
                   "rps = requests / seconds, p99_ms: the client's 99th percentile of request "
                   "times; client_cpu_s: utime+stime of the client process (wait4), for the "
                   "Python peers of their timed part only (they report it: cpu_s); "
                   "speedup_vs_sync: sync's seconds / the impl's, run by run; "
                   "speedup_vs_sync_extrapolated: sync's seconds per request at N=%d times N, "
                   "over the impl's seconds" % SEQ_MAX_N),
    }
    failed = None
    if fetch:
        bad = [k for k in missing_points if k.split("/")[1] in ("sync", "threads", "eddy-async")]
        if bad:
            failed = "eddy-fetch failed at " + ", ".join(bad)
    return SuiteResult(rows, "bench/run fetch (see commands)", extra, failed)


def summary(result):
    table = {}
    for r in result.rows:
        table.setdefault((r["case"], r["param"]), {}).setdefault(r["impl"], {})[r["metric"]] = r
    say("fetch: medians (min..max)")
    for (case, param), impls in table.items():
        if case == "slow":
            say(f"  slow, N={param} x {DELAY_MS} ms:")
        else:
            say(f"  throughput, C={param} against nginx /plaintext:")
        for impl, m in impls.items():
            def v(k):
                return m[k]["value"] if k in m else None
            if case == "slow":
                speed = []
                for base in ("sync", "requests"):
                    sp = v(f"speedup_vs_{base}")
                    ex = v(f"speedup_vs_{base}_extrapolated")
                    if sp:
                        speed.append(f"{sp:.1f}x {base}")
                    elif ex:
                        speed.append(f"~{ex:.0f}x {base} (extrapolated)")
                say(f"    {impl:15s} {v('seconds') or 0:9.3f} s  {', '.join(speed)}")
            else:
                say(f"    {impl:15s} {v('rps') or 0:10,.0f} req/s  "
                    f"{v('rps_per_client_cpu_s') or 0:10,.0f} req/client-cpu-s")
    for k, why in result.extra.get("capped", {}).items():
        say(f"  capped: {k}: {why}")
    for impl, why in result.extra.get("missing", {}).items():
        say(f"  {impl}: missing: {why}")
    for k, why in result.extra.get("failed_points", {}).items():
        say(f"  {k}: failed: {why}")
    for note in result.extra.get("notes", []):
        say(f"  note: {note}")
