"""bench/runner/cpu.py: the cpu suite, the trap from the asyncio guides.

A handler that computes (eddy-httpd's /cpu?n=N: N rounds of a hash, about
80 ns each) runs on the loop's thread: while it computes, the loop serves
nothing else, so C concurrent requests queue behind each other and the
server uses one core however many clients there are. Coroutines buy
nothing for CPU work. Moving the same work to the offload pool
(/cpu?n=N&offload=1) frees the loop and lets the pool's threads use every
core. The blocking thread-per-connection server (bench/macro/threaded_httpd,
same hash) is the sync baseline: its threads use every core too.

Impls: eddy-inline (/cpu), eddy-offload (/cpu&offload=1, one eddy-httpd
process for both), threaded. For each C, wrk -t1 -cC loads /cpu for the
run's seconds while a probe sends one /plaintext on a fresh connection
every PROBE_INTERVAL_S and records how long each took: with inline work
the probe waits for the requests ahead of it on the loop.

Nothing is pinned: the point is how many cores each server can use (2 on
the development machine), and wrk's share of a core at a few thousand
requests per second is small (recorded as wrk_cpu_util).
"""
import os
import shutil
import statistics
import tempfile
import threading
import time

from .common import SuiteError, SuiteResult, first_line, git, rel, row, say
from .servers import Server, ServerError, http_get, measure

CPU_ROUNDS = 10000            # ~0.8 ms of hashing per request
CPU_CONNS = [1, 2, 8, 32]
CPU_CONNS_SMOKE = [8]
PROBE_INTERVAL_S = 0.02
PROBE_TIMEOUT_S = 10.0
IMPLS = [("eddy-inline", "eddy-httpd", ""), ("eddy-offload", "eddy-httpd", "&offload=1"),
         ("threaded", "threaded", "")]
METRICS = [("rps", "1/s"), ("p99_ms", "ms"), ("server_cpu_util", "cores"),
           ("wrk_cpu_util", "cores"), ("probe_p50_ms", "ms"), ("probe_p99_ms", "ms"),
           ("probe_max_ms", "ms"), ("errors", "count")]


def plan(ctx):
    if ctx.smoke:
        return {"conns": CPU_CONNS_SMOKE, "runs": 1, "seconds": 1}
    return {"conns": CPU_CONNS, "runs": 3, "seconds": 5}


def estimate_s(ctx):
    p = plan(ctx)
    return len(p["conns"]) * p["runs"] * len(IMPLS) * (p["seconds"] + 1.0) + 3


class Probe(threading.Thread):
    """GET /plaintext on a fresh connection every PROBE_INTERVAL_S until
    stopped; keeps each answer's time in ms and counts failures."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.times_ms = []
        self.failures = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            t0 = time.monotonic()
            try:
                status, _, _ = http_get(self.port, "/plaintext", timeout=PROBE_TIMEOUT_S)
                if status == 200:
                    self.times_ms.append((time.monotonic() - t0) * 1e3)
                else:
                    self.failures += 1
            except (OSError, ServerError):
                self.failures += 1
            self.done.wait(PROBE_INTERVAL_S)

    def stop(self):
        self.done.set()
        self.join(PROBE_TIMEOUT_S + 1)


def percentile(values, q):
    """The q-quantile (0..1) of values, nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


def servers(ctx, scratch):
    found, missing = {}, {}
    httpd = os.path.join(ctx.build, "bin", "eddy-httpd")
    if os.access(httpd, os.X_OK):
        found["eddy-httpd"] = Server(
            "eddy-httpd", lambda port, d: [httpd, "--port", str(port), "--threads", "1"],
            git("describe", "--always", "--dirty"), None, scratch,
            "one loop thread; offload pool of EDDY_OFFLOAD_THREADS threads")
    else:
        for impl in ("eddy-inline", "eddy-offload"):
            missing[impl] = f"{rel(httpd)} is missing: build it with `make tools`"
    threaded = os.path.join(ctx.build, "bench", "threaded_httpd")
    if os.access(threaded, os.X_OK):
        found["threaded"] = Server(
            "threaded", lambda port, d: [threaded, "--port", str(port)],
            git("describe", "--always", "--dirty"), None, scratch,
            "one blocking thread per connection")
    else:
        missing["threaded"] = f"{rel(threaded)} is missing: build it with `make bench-build`"
    return found, missing


def run(ctx):
    if not shutil.which("wrk"):
        raise SuiteError("wrk is not installed (Debian: wrk; `make bench-deps`)")
    p = plan(ctx)
    scratch = tempfile.mkdtemp(prefix="eddy-cpu-")
    found, missing = servers(ctx, scratch)
    for impl, why in missing.items():
        say(f"cpu: skipping {impl}: {why}")
    samples, measurements, commands = {}, [], {}
    try:
        for name, srv in list(found.items()):
            try:
                srv.start()
                say(f"cpu: {name} answering on port {srv.port}")
            except ServerError as e:
                for impl, server, _ in IMPLS:
                    if server == name:
                        missing[impl] = str(e)
                say(f"cpu: skipping {name}: {e}")
                del found[name]
        impls = [(impl, found[server], extra) for impl, server, extra in IMPLS
                 if server in found and impl not in missing]
        if not impls:
            raise SuiteError("no server could be started: "
                             + "; ".join(f"{k}: {v}" for k, v in missing.items()))
        total = len(p["conns"]) * p["runs"] * len(impls)
        done = 0
        for conns in p["conns"]:
            for r in range(p["runs"]):
                order = impls[r % len(impls):] + impls[:r % len(impls)]
                for impl, srv, extra in order:
                    if impl in missing:
                        continue
                    done += 1
                    path = f"/cpu?n={CPU_ROUNDS}{extra}"
                    probe = Probe(srv.port)
                    probe.start()
                    try:
                        res = measure(srv, None, conns, p["seconds"], path, 1)
                    except ServerError as e:
                        missing[impl] = str(e)
                        say(f"cpu: {impl} failed, leaving it out from here on: {e}")
                        continue
                    finally:
                        probe.stop()
                    if probe.times_ms:
                        res["probe_p50_ms"] = statistics.median(probe.times_ms)
                        res["probe_p99_ms"] = percentile(probe.times_ms, 0.99)
                        res["probe_max_ms"] = max(probe.times_ms)
                    res["probe_count"] = len(probe.times_ms)
                    res["probe_failures"] = probe.failures
                    res["errors"] += probe.failures
                    samples.setdefault((conns, impl), []).append(res)
                    commands.setdefault(impl, res["command"].replace(str(srv.port), "PORT"))
                    measurements.append({"impl": impl, "conns": conns, "run": r + 1,
                                         **{k: v for k, v in res.items() if k != "command"}})
                    left = (total - done) * (p["seconds"] + 1.0)
                    say(f"cpu: [{done}/{total}] c={conns} run {r + 1}/{p['runs']} {impl}: "
                        f"{res['rps']:,.0f} req/s, p99 {res['p99_ms']:.1f} ms, server "
                        f"{res['server_cpu_util']:.2f} cores; /plaintext beside it: p99 "
                        f"{res.get('probe_p99_ms', float('nan')):.1f} ms over "
                        f"{res['probe_count']} probes; ~{left:.0f} s left")
    finally:
        for srv in found.values():
            srv.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    rows = []
    for (conns, impl), runs in samples.items():
        for metric, unit in METRICS:
            values = [x[metric] for x in runs if x.get(metric) is not None]
            if values:
                rows.append(row("cpu", "cpu", impl, conns, metric, values, unit))
        base = samples.get((conns, "eddy-inline"))
        if base and impl != "eddy-inline":
            ratios = [a["rps"] / b["rps"] for a, b in zip(runs, base) if b["rps"] > 0]
            if ratios:
                rows.append(row("cpu", "cpu", impl, conns, "rps_vs_inline", ratios, "x"))
    extra = {
        "plan": {"rounds": CPU_ROUNDS, "conns": p["conns"], "runs": p["runs"],
                 "seconds_per_run": p["seconds"], "probe_interval_s": PROBE_INTERVAL_S},
        "eddy_offload_threads": os.environ.get("EDDY_OFFLOAD_THREADS", "4 (default)"),
        "cores_allowed": sorted(os.sched_getaffinity(0)),
        "wrk_version": first_line(["sh", "-c", "wrk -v 2>&1"]),
        "servers": {name: {"version": s.version, "note": s.note,
                           "command": " ".join(rel(a) if a.startswith("/") else a
                                               for a in (s.argv or [])).replace(
                                                   str(s.port), "PORT")}
                    for name, s in found.items()},
        "commands": commands,
        "missing": missing,
        "measurements": measurements,
        "method": ("wrk -t1 -cC loads GET /cpu?n=%d (inline, &offload=1, or the threaded "
                   "server) for the run; rps and p99_ms are wrk's; server_cpu_util is the "
                   "server's utime+stime over the run's seconds (cores used); probe_*: one "
                   "GET /plaintext on a fresh connection every %.0f ms during the run, its "
                   "time to the whole answer. Nothing pinned." % (CPU_ROUNDS,
                                                                  PROBE_INTERVAL_S * 1e3)),
        "not_measured": "Python peers: pure-Python CPU work holds the GIL, so an executor "
                        "thread cannot use a second core; a process pool would, at the cost "
                        "of pickling; neither says anything about eddy",
    }
    failed = None
    if "eddy-inline" in missing or "eddy-offload" in missing:
        failed = "eddy-httpd: " + missing.get("eddy-inline", missing.get("eddy-offload", ""))
    shown = "bench/run cpu: wrk -t1 -cC -dSs http://127.0.0.1:PORT/cpu?n=%d[&offload=1]" % (
        CPU_ROUNDS)
    return SuiteResult(rows, shown, extra, failed)


def summary(result):
    table = {}
    for r in result.rows:
        table.setdefault(r["param"], {}).setdefault(r["impl"], {})[r["metric"]] = r["value"]
    say(f"cpu: GET /cpu?n={CPU_ROUNDS} (~0.8 ms of hashing); medians; probe: /plaintext "
        "beside the load")
    say(f"  {'C':>5s} {'impl':13s} {'req/s':>8s} {'x inline':>8s} {'cores':>6s} {'p99 ms':>8s} "
        f"{'probe p99 ms':>12s}")
    for conns, impls in table.items():
        for impl, m in impls.items():
            say(f"  {conns:5d} {impl:13s} {m.get('rps', 0):8,.0f} "
                f"{m.get('rps_vs_inline', 1.0):7.2f}x {m.get('server_cpu_util', 0):6.2f} "
                f"{m.get('p99_ms', 0):8.1f} {m.get('probe_p99_ms', float('nan')):12.1f}")
    for impl, why in result.extra.get("missing", {}).items():
        say(f"  {impl}: missing: {why}")
