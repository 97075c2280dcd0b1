"""bench/runner/serve.py: the serve suite, eddy-httpd beside nginx, h2o
and aiohttp under wrk.

Every server runs pinned to one core (the one bench/run does not use) and
wrk (-t1) to the other. A server is started once, checked to answer the
same bodies, warmed up, then measured point by point; within a point the
servers take turns run after run, so they share whatever else the machine
was doing. The idle case restarts each server before each of its runs so
that "RSS before" is a fresh process, not the memory an earlier run left.

BENCH_SERVE_IMPLS=eddy-async,nginx (environment) limits the servers, for
trying the suite out; the committed figures use all of them.
"""
import os
import resource
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from .common import (DEBIAN_PYTHON, ROOT, SuiteError, SuiteResult, first_line, git, rel, row,
                     say)
from .servers import (HOST, MACRO_DIR, PEERS_DIR, WRK_TIMEOUT, Server, ServerError, die_with_parent,
                      from_template, measure, nginx_server, pinned, raise_nofile, run_wrk,
                      status_field)

SERVE_HOLDER_TIMEOUT_S = 90.0    # opening the idle connections
SERVE_SETTLE_S = 0.5             # after the idle connections are open, before RSS
SERVE_PIPELINE_DEPTH = 16


# The concurrency sweep (case "conns"): C keep-alive connections, each
# with one request in flight, threads against coroutines against nginx.
SERVE_SWEEP = [1, 10, 100, 1000, 10000]
SERVE_SWEEP_SMOKE = [1]


def serve_plan(smoke):
    """The points: (case, wrk connections, path, pipeline depth), the idle
    case, the number of runs, seconds per wrk run and of the warm-up."""
    if smoke:
        return {"points": [("plaintext", 64, "/plaintext", 1),
                           ("json", 64, "/json", 1),
                           (f"pipelined{SERVE_PIPELINE_DEPTH}", 64, "/plaintext",
                            SERVE_PIPELINE_DEPTH)] +
                [("conns", c, "/plaintext", 1) for c in SERVE_SWEEP_SMOKE],
                "idle": 1000, "idle_conns": 64, "runs": 1, "seconds": 1, "warmup": 0}
    return {"points": [("plaintext", 64, "/plaintext", 1),
                       ("plaintext", 256, "/plaintext", 1),
                       ("json", 64, "/json", 1),
                       ("json", 256, "/json", 1),
                       (f"pipelined{SERVE_PIPELINE_DEPTH}", 256, "/plaintext",
                        SERVE_PIPELINE_DEPTH)] +
            [("conns", c, "/plaintext", 1) for c in SERVE_SWEEP],
            "idle": 10000, "idle_conns": 64, "runs": 3, "seconds": 5, "warmup": 1}


def serve_servers(ctx, server_cpu, scratch):
    """The servers that are installed, and a reason for each that is not."""
    found, missing = [], {}
    httpd = os.path.join(ctx.build, "bin", "eddy-httpd")
    if os.access(httpd, os.X_OK):
        found.append(Server(
            "eddy-async",
            lambda port, d: [httpd, "--port", str(port), "--threads", "1",
                             "--max-connections", "20000"],
            git("describe", "--always", "--dirty"), server_cpu, scratch,
            "--max-connections 20000: its default of 10,000 would pause accepting "
            "during the idle case"))
    else:
        missing["eddy-async"] = f"{rel(httpd)} is missing: build it with `make tools`"

    threaded = os.path.join(ctx.build, "bench", "threaded_httpd")
    if os.access(threaded, os.X_OK):
        found.append(Server(
            "threaded", lambda port, d: [threaded, "--port", str(port)],
            git("describe", "--always", "--dirty"), server_cpu, scratch,
            "bench/macro/threaded_httpd.c: one blocking thread per connection (256 KiB "
            "stacks), eddy's parser"))
    else:
        missing["threaded"] = f"{rel(threaded)} is missing: build it with `make bench-build`"

    srv, why = nginx_server(server_cpu, scratch)
    if srv:
        found.append(srv)
    else:
        missing["nginx"] = why

    h2o = shutil.which("h2o")
    if h2o:
        found.append(Server(
            "h2o", lambda port, d: [h2o, "-c", from_template("h2o.conf", port, d)],
            first_line([h2o, "--version"]), server_cpu, scratch,
            "num-threads 1, mruby handlers for /plaintext and /json"))
    else:
        missing["h2o"] = "h2o is not installed (Debian: h2o; `make deps-bench`)"

    script = os.path.join(PEERS_DIR, "aiohttp_server.py")
    for impl, mods, flags in (("aiohttp", "aiohttp", []),
                              ("aiohttp-uvloop", "aiohttp, uvloop", ["--uvloop"])):
        if not os.access(DEBIAN_PYTHON, os.X_OK):
            missing[impl] = f"{DEBIAN_PYTHON} is missing"
            continue
        probe = subprocess.run(
            [DEBIAN_PYTHON, "-c",
             f"import sys, {mods}; print(sys.version.split()[0], aiohttp.__version__, "
             f"{'uvloop.__version__' if 'uvloop' in mods else repr('')})"],
            capture_output=True, text=True)
        if probe.returncode != 0:
            pkg = "python3-aiohttp" + (" python3-uvloop" if "uvloop" in mods else "")
            missing[impl] = (f"{DEBIAN_PYTHON} cannot import {mods} (Debian: {pkg}; "
                             "`make deps-bench`)")
            continue
        words = probe.stdout.split()
        version = f"python {words[0]}, aiohttp {words[1]}" + \
            (f", uvloop {words[2]}" if len(words) > 2 else "")
        found.append(Server(
            impl, lambda port, d, flags=flags: [DEBIAN_PYTHON, script, str(port), *flags],
            version, server_cpu, scratch, "one process, access log off"))
    return found, missing


def serve_idle(srv, load_cpu, n_idle, conns, seconds, warmup):
    """Restarts srv, opens n_idle idle keep-alive connections from the
    holder (pinned beside wrk), then loads srv with wrk while they stay
    open. Adds rss_per_conn_bytes and the server's threads to the result."""
    srv.stop()
    srv.start()
    if warmup:
        run_wrk(load_cpu, srv.port, conns, warmup, "/plaintext", 1)
    rss0 = status_field(srv.proc.pid, "VmRSS")
    cmd = pinned(load_cpu, [sys.executable, os.path.join(MACRO_DIR, "idle_holder.py"),
                                  HOST, str(srv.port), str(n_idle)])
    holder = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              preexec_fn=die_with_parent)
    try:
        ready, _, _ = select.select([holder.stdout], [], [], SERVE_HOLDER_TIMEOUT_S)
        line = holder.stdout.readline().strip() if ready else ""
        if not line.startswith("ready"):
            raise ServerError(f"the idle holder failed against {srv.impl}: "
                             f"{line or f'no answer in {SERVE_HOLDER_TIMEOUT_S:.0f} s'}")
        open_s = float(line.split()[2])
        time.sleep(SERVE_SETTLE_S)
        rss1 = status_field(srv.proc.pid, "VmRSS")
        threads = status_field(srv.proc.pid, "Threads")
        res = measure(srv, load_cpu, conns, seconds, "/plaintext", 1)
        holder.stdin.write("\n")
        holder.stdin.flush()
        ready, _, _ = select.select([holder.stdout], [], [], 30)
        line = holder.stdout.readline().strip() if ready else ""
        still_open = int(line.split()[1]) if line.startswith("open ") else None
        holder.wait(30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    res.update({"rss_before_bytes": rss0, "rss_after_bytes": rss1,
                "rss_per_conn_bytes": (rss1 - rss0) / n_idle, "server_threads": threads,
                "idle_open_s": open_s, "idle_still_open": still_open,
                "holder_command": " ".join(shlex.quote(rel(a) if a.startswith(ROOT) else a)
                                           for a in cmd)})
    return res


SERVE_METRICS = [("rps", "1/s"), ("p99_ms", "ms"), ("rps_per_cpu_s", "1/cpu_s"),
                 ("server_cpu_util", "cores"), ("wrk_cpu_util", "cores"), ("errors", "count")]
SERVE_IDLE_METRICS = [("rss_per_conn_bytes", "bytes"), ("server_threads", "count")]
SERVE_SWEEP_METRICS = [("server_rss_bytes", "bytes"), ("server_threads_peak", "count")]


def run(ctx):
    if not shutil.which("wrk"):
        raise SuiteError("wrk is not installed (Debian: wrk; `make deps-bench`)")
    plan = serve_plan(ctx.smoke)
    if ctx.reps:
        plan["runs"] = ctx.reps
    if ctx.serve_cases is not None:
        plan["points"] = [pt for pt in plan["points"] if pt[0] in ctx.serve_cases]
    plan["runs_idle"] = plan["runs"] if ctx.serve_cases is None or "idle" in ctx.serve_cases \
        else 0
    allowed = sorted(os.sched_getaffinity(0))
    load_cpu = ctx.cpu
    others = [c for c in allowed if c != load_cpu]
    server_cpu = others[0] if others else load_cpu
    if server_cpu == load_cpu:
        say(f"serve: warning: only cpu {load_cpu} is allowed; server and wrk share it")

    # 10,000 idle connections need that many descriptors in the servers
    # and the holder, which inherit this limit.
    need = plan["idle"] + 1024
    limit = raise_nofile(need)
    n_idle = plan["idle"]
    notes = []
    if limit != resource.RLIM_INFINITY and limit < need:
        n_idle = max(100, (limit - 1024) // 1000 * 1000)
        notes.append(f"RLIMIT_NOFILE is {limit}: the idle case holds {n_idle} connections, "
                     f"not {plan['idle']}")
        say("serve: " + notes[-1])
    idle_case = f"idle{n_idle // 1000}k" if n_idle >= 1000 else f"idle{n_idle}"

    scratch = tempfile.mkdtemp(prefix="eddy-serve-")
    os.chmod(scratch, 0o755)
    servers, missing = serve_servers(ctx, server_cpu, scratch)
    only = os.environ.get("BENCH_SERVE_IMPLS")
    if only or ctx.serve_impls:
        keep = set(ctx.serve_impls or only.split(","))
        servers = [s for s in servers if s.impl in keep]
        missing = {k: v for k, v in missing.items() if k in keep}
    for impl, why in missing.items():
        say(f"serve: skipping {impl}: {why}")
    samples = {}   # (case, param, impl) -> list of result dicts
    commands = {}
    measurements = []  # every run with its raw figures, for serve.json
    try:
        live = []
        for srv in servers:
            try:
                srv.start()
                live.append(srv)
                say(f"serve: {srv.impl} ({srv.version}) answering on port {srv.port}, "
                    f"cpu {server_cpu}")
            except ServerError as e:
                missing[srv.impl] = str(e)
                say(f"serve: skipping {srv.impl}: {e}")
        if not live:
            raise SuiteError("no server could be started: "
                             + "; ".join(f"{k}: {v}" for k, v in missing.items()))
        per_run = plan["seconds"] + 0.5
        idle_run = plan["seconds"] + plan["warmup"] + 3.0 + n_idle / 4000
        total = (len(plan["points"]) * plan["runs"] + plan["runs_idle"]) * len(live)
        left_s = (len(plan["points"]) * per_run * plan["runs"] + idle_run * plan["runs_idle"]) * \
            len(live) + plan["warmup"] * len(live)
        say(f"serve: {len(live)} server(s) on cpu {server_cpu}, wrk -t1 on cpu {load_cpu}; "
            f"{total} runs of {plan['seconds']} s, about {left_s / 60:.1f} min")
        if plan["warmup"]:
            for srv in live:
                run_wrk(load_cpu, srv.port, 64, plan["warmup"], "/plaintext", 1)

        done = 0

        def record(case, param, srv, run, res):
            nonlocal done, left_s
            samples.setdefault((case, param, srv.impl), []).append(res)
            commands.setdefault(f"{case}/{param}", res["command"].replace(str(srv.port), "PORT"))
            if "holder_command" in res:
                commands.setdefault(f"{case}/{param} holder",
                                    res["holder_command"].replace(str(srv.port), "PORT"))
            measurements.append({"case": case, "param": param, "impl": srv.impl, "run": run + 1,
                                 **{k: v for k, v in res.items() if not k.endswith("command")}})
            per = res.get("rss_per_conn_bytes")
            extra = f", {per:,.0f} B/conn" if per is not None else ""
            rpc = res["rps_per_cpu_s"]
            p99 = "-" if res["p99_ms"] is None else f"{res['p99_ms']:.2f} ms"
            say(f"serve: [{done}/{total}] {case} c={param} run {run + 1}/{plan['runs']} "
                f"{srv.impl}: {res['rps']:,.0f} req/s, p99 {p99}, {rpc:,.0f} req/cpu-s "
                f"(cpu: server {res['server_cpu_util']:.0%}, wrk {res['wrk_cpu_util']:.0%})"
                f"{extra}{', %d errors' % res['errors'] if res['errors'] else ''}; "
                f"~{max(left_s, 0):.0f} s left")

        def drop(srv, e):
            missing[srv.impl] = str(e)
            say(f"serve: {srv.impl} failed, leaving it out from here on: {e}")
            srv.stop()

        for case, conns, path, depth in plan["points"]:
            for run in range(plan["runs"]):
                order = live[run % len(live):] + live[:run % len(live)]
                for srv in order:
                    if srv.impl in missing:
                        continue
                    done += 1
                    left_s -= per_run
                    try:
                        res = measure(srv, load_cpu, conns, plan["seconds"], path, depth)
                    except ServerError as e:
                        drop(srv, e)
                        continue
                    record(case, conns, srv, run, res)
        for run in range(plan["runs_idle"]):
            for srv in live:
                if srv.impl in missing:
                    continue
                done += 1
                left_s -= idle_run
                try:
                    res = serve_idle(srv, load_cpu, n_idle, plan["idle_conns"], plan["seconds"],
                                     plan["warmup"])
                except ServerError as e:
                    drop(srv, e)
                    continue
                if res["idle_still_open"] != n_idle:
                    notes.append(f"{srv.impl}: only {res['idle_still_open']} of {n_idle} idle "
                                 "connections were still open after the load")
                    say("serve: " + notes[-1])
                record(idle_case, plan["idle_conns"], srv, run, res)
    finally:
        for srv in servers:
            srv.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    rows = []
    for (case, param, impl), runs in samples.items():
        metrics = SERVE_METRICS + (SERVE_IDLE_METRICS if case.startswith("idle") else []) + \
            (SERVE_SWEEP_METRICS if case == "conns" else [])
        for metric, unit in metrics:
            values = [r[metric] for r in runs if r.get(metric) is not None]
            if values:
                rows.append(row("serve", case, impl, param, metric, values, unit))
    by_impl = {s.impl: s for s in servers}
    extra = {
        "server_cpu": server_cpu, "load_cpu": load_cpu,
        "plan": {"runs": plan["runs"], "seconds_per_run": plan["seconds"],
                 "warmup_seconds": plan["warmup"], "idle_connections": n_idle,
                 "idle_load_connections": plan["idle_conns"],
                 "pipeline_depth": SERVE_PIPELINE_DEPTH, "wrk_timeout": WRK_TIMEOUT},
        "wrk_version": first_line(["sh", "-c", "wrk -v 2>&1"]),
        "commands": commands,
        "servers": {impl: {"version": s.version, "note": s.note,
                           "command": " ".join(
                               shlex.quote(rel(a) if a.startswith(ROOT) else
                                           a.replace(scratch, "SCRATCH"))
                               for a in pinned(server_cpu, s.argv or [])
                           ).replace(str(s.port), "PORT"),
                           "plaintext_response_bytes": len(s.responses.get("/plaintext", b"")),
                           "json_response_bytes": len(s.responses.get("/json", b""))}
                    for impl, s in by_impl.items()},
        "missing": missing,
        "notes": notes,
        "measurements": measurements,
        "method": ("rps: wrk's Requests/sec; p99_ms: wrk --latency's 99th percentile (per "
                   "run; not recorded when pipelined, see measure); rps_per_cpu_s: requests / (utime+stime of the "
                   "server's process tree from /proc, after minus before the run); "
                   "rss_per_conn_bytes: (VmRSS with the idle connections open - VmRSS of the "
                   "freshly started and warmed server) / idle connections; each idle "
                   "connection made one request first"),
    }
    failed = None
    if "eddy-async" in missing:
        failed = "eddy-httpd: " + missing["eddy-async"]
    else:
        errs = [r for r in rows if r["impl"] == "eddy-async" and r["metric"] == "errors"
                and r["max"] > 0]
        if errs:
            failed = "wrk saw errors from eddy-httpd in " + ", ".join(
                f"{r['case']}/{r['param']}" for r in errs)
    command = "bench/run serve: servers on cpu %d, wrk -t1 on cpu %d (see commands)" % (
        server_cpu, load_cpu)
    return SuiteResult(rows, command, extra, failed)


def summary(result):
    table = {}
    for r in result.rows:
        table.setdefault((r["case"], r["param"]), {}).setdefault(r["impl"], {})[r["metric"]] = r
    runs = max((r["runs"] for r in result.rows), default=0)
    say(f"serve: medians of {runs} run(s) (min..max); cpu: the server's share of its core; "
        "ratios are to nginx in the same run")

    def ratio(a, b):
        return f"{a / b:.2f}x" if a is not None and b else "-"

    for (case, param), impls in table.items():
        idle = case.startswith("idle")
        say(f"  {case}, {param} wrk connections"
            f"{' beside the idle ones' if idle else ''}:")
        head = (f"    {'impl':15s} {'req/s':>22s} {'p99 ms':>8s} {'req/cpu-s':>10s} {'cpu':>4s} "
                f"{'x nginx req/s':>13s} {'x nginx req/cpu-s':>17s} {'x nginx p99':>11s}")
        if idle:
            head += f" {'B/conn':>8s} {'x nginx':>7s}"
        say(head)
        base = impls.get("nginx", {})
        for impl, m in impls.items():
            def v(key, ms=m):
                return ms[key]["value"] if key in ms else None
            b = {k: (base[k]["value"] if k in base else None)
                 for k in ("rps", "rps_per_cpu_s", "p99_ms", "rss_per_conn_bytes")}
            rps = m.get("rps")
            spread = f"{rps['value']:,.0f} ({rps['min']:,.0f}..{rps['max']:,.0f})" if rps else "-"
            p99 = "-" if v("p99_ms") is None else f"{v('p99_ms'):.2f}"
            line = (f"    {impl:15s} {spread:>22s} {p99:>8s} "
                    f"{v('rps_per_cpu_s') or 0:10,.0f} {v('server_cpu_util') or 0:4.0%} "
                    f"{ratio(v('rps'), b['rps']):>13s} "
                    f"{ratio(v('rps_per_cpu_s'), b['rps_per_cpu_s']):>17s} "
                    f"{ratio(v('p99_ms'), b['p99_ms']):>11s}")
            if idle:
                per = v("rss_per_conn_bytes")
                line += (f" {per if per is not None else 0:8,.0f} "
                         f"{ratio(per, b['rss_per_conn_bytes']):>7s}")
            errors = v("errors")
            if errors:
                line += f"  {errors:.0f} errors"
            say(line)
    for impl, why in result.extra.get("missing", {}).items():
        say(f"  {impl}: missing: {why}")
    for note in result.extra.get("notes", []):
        say(f"  note: {note}")
