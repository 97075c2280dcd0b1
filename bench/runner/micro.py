"""bench/runner/micro.py: the micro suite, build/bench/micro (Google
Benchmark through the C wrapper), then the asyncio and uvloop peers
(bench/peers/asyncio_micro.py) of the cases it ran, and eddy's speedup over
them repetition by repetition. With --filter, the rows replace only the
matching benchmarks' rows in the existing micro.csv/json.
"""
import json
import os
import shlex
import subprocess
import tempfile
import threading
import time

from .common import (DEBIAN_PYTHON, ROOT, SuiteError, SuiteResult, first_line, fmt, rel, row,
                     say)

GBENCH_FIELDS = {"name", "family_index", "per_family_instance_index", "run_name", "run_type",
                 "repetitions", "repetition_index", "threads", "iterations", "real_time",
                 "cpu_time", "time_unit", "aggregate_name", "aggregate_unit", "label",
                 "error_occurred", "error_message"}
TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def counter_unit(name):
    if name.endswith("per_second"):
        return "1/s"
    if "bytes" in name:
        return "bytes"
    if name.endswith("_ns") or "_ns_" in name or name.startswith("ns_"):
        return "ns"
    return "count"


def split_run_name(run_name):
    """'BM_timer_add_cancel/1000000/iterations:1' -> ('BM_timer_add_cancel', '1000000')."""
    parts = run_name.split("/")
    args = [p for p in parts[1:] if p.lstrip("-").isdigit()]
    return parts[0], "/".join(args)


def run_benchmark_binary(ctx, cmd, names, timeout_s):
    """Runs cmd, showing progress from its --eddy_progress lines on stderr;
    returns its parsed JSON stdout."""
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        seen, t_prev, prev = 0, time.time(), None
        other_err = []
        try:
            for line in proc.stderr:
                line = line.rstrip("\n")
                if line.startswith("eddy-bench: start "):
                    name = line[len("eddy-bench: start "):]
                    now = time.time()
                    if prev:
                        say(f"micro:   {prev} done in {now - t_prev:.1f} s")
                    seen += 1
                    say(f"micro: [{seen}/{len(names)}] {name}")
                    prev, t_prev = name, now
                elif line:
                    other_err.append(line)
                    say("micro: (stderr) " + line)
            rc = proc.wait()
        finally:
            timer.cancel()
        if prev:
            say(f"micro:   {prev} done in {time.time() - t_prev:.1f} s")
        if rc != 0:
            why = "killed after %d s" % timeout_s if rc == -9 else "exit status %d" % rc
            raise SuiteError(f"the benchmark binary failed ({why}): " + " | ".join(other_err[-5:]))
        out.seek(0)
        try:
            return json.load(out)
        except ValueError as e:
            raise SuiteError(f"benchmark output is not JSON: {e}")


# The micro suite's Python peers (bench/peers/asyncio_micro.py): Debian's
# python3, which has python3-uvloop; a python3 earlier on PATH (pyenv, a
# venv) does not see Debian's packages. Each eddy benchmark named here gets
# the peer rows of the same case when it runs.
PEER_PYTHON = DEBIAN_PYTHON
PEER_SCRIPT = os.path.join("bench", "peers", "asyncio_micro.py")
PEER_CASES = ["spawn_join", "lock_handoff", "queue_pingpong", "gather_100k"]
PEER_LOOPS = [("asyncio", "asyncio"), ("uvloop", "asyncio-uvloop")]
# Issue 3's targets: eddy faster than asyncio (same run) by at least this much.
PEER_TARGETS = {"queue_pingpong": 200, "gather_100k": 100}


def gbench_rows(data, default_impl="eddy"):
    """Rows (ns_per_op, cpu_ns_per_op, ops_per_s and the user counters of
    each benchmark instance, over its repetitions) from Google Benchmark's
    JSON shape; also the errors it reports and its context."""
    context = data.get("context", {})
    meta = {}
    for key, value in context.items():
        if key.startswith("eddy_meta:"):
            fields = dict(kv.split("=", 1) for kv in value.split(";") if "=" in kv)
            meta[key[len("eddy_meta:"):]] = fields

    # Group the per-repetition runs by benchmark instance, in output order.
    groups, order, errors = {}, [], []
    for b in data.get("benchmarks", []):
        if b.get("run_type") != "iteration":
            continue
        if b.get("error_occurred"):
            errors.append({"name": b.get("run_name", b["name"]),
                           "message": b.get("error_message", "")})
            continue
        key = b.get("run_name", b["name"])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(b)

    rows = []
    for key in order:
        runs = groups[key]
        name, param = split_run_name(key)
        m = meta.get(name, {})
        case = m.get("case", name[3:] if name.startswith("BM_") else name)
        impl = m.get("impl", default_impl)
        scale = TO_NS[runs[0].get("time_unit", "ns")]
        real = [r["real_time"] * scale for r in runs]
        cpu = [r["cpu_time"] * scale for r in runs]
        ns = row("micro", case, impl, param, "ns_per_op", real, "ns")
        ns["iterations"] = [r["iterations"] for r in runs]
        rows.append(ns)
        rows.append(row("micro", case, impl, param, "cpu_ns_per_op", cpu, "ns"))
        rows.append(row("micro", case, impl, param, "ops_per_s", [1e9 / v for v in real], "1/s"))
        counters = [k for k in runs[0] if k not in GBENCH_FIELDS
                    and isinstance(runs[0][k], (int, float))]
        for c in counters:
            samples = [r[c] for r in runs if c in r]
            metric = "items_per_s" if c == "items_per_second" else c
            rows.append(row("micro", case, impl, param, metric, samples, counter_unit(c)))
    return rows, errors, context


def run_asyncio_peers(ctx, names):
    """Runs the asyncio peers of the eddy benchmarks in names (as listed by
    the binary), pinned like it; returns (rows, commands, info, failure).
    A missing interpreter or uvloop skips those peers with a message, no
    failure; a peer that fails costs only its own rows (failure says why)."""
    cases = [c for c in PEER_CASES if "BM_" + c in names]
    if not cases:
        return [], [], {}, None
    if not os.access(PEER_PYTHON, os.X_OK):
        say(f"micro: asyncio peers skipped: {PEER_PYTHON} is missing (Debian's python3)")
        return [], [], {"skipped": f"{PEER_PYTHON} is missing"}, None
    reps = ctx.repetitions()
    rows, commands, failures = [], [], []
    info = {"python": PEER_PYTHON, "python_version": first_line([PEER_PYTHON, "--version"])}
    for loop, impl in PEER_LOOPS:
        if loop == "uvloop" and subprocess.run([PEER_PYTHON, "-c", "import uvloop"],
                                               capture_output=True).returncode != 0:
            say(f"micro: {impl} peers skipped: {PEER_PYTHON} cannot import uvloop "
                "(Debian's python3-uvloop)")
            info["skipped_" + impl] = "uvloop is not importable"
            continue
        cmd = [PEER_PYTHON, PEER_SCRIPT, "--loop", loop, f"--repetitions={reps}",
               f"--min-time={0.05 if ctx.smoke else 0.5}", "--progress"]
        for c in cases:
            cmd += ["--case", c]
        cmd = ctx.pin(cmd)
        shown = " ".join(shlex.quote(a) for a in cmd)
        say(f"micro: {impl} peers, {len(cases)} case(s), {reps} repetition(s): {shown}")
        peer_names = ["BM_%s_%s" % (c, impl.replace("-", "_")) for c in cases]
        commands.append(shown)
        try:
            data = run_benchmark_binary(ctx, cmd, peer_names, timeout_s=1800)
        except SuiteError as e:
            say(f"micro: {impl} peers FAILED: {e}")
            failures.append(f"{impl} peers: {e}")
            continue
        peer_rows, _, context = gbench_rows(data, default_impl=impl)
        rows += peer_rows
        info[impl] = {k: v for k, v in context.items() if not k.startswith("eddy_meta:")}
    return rows, commands, info, "; ".join(failures) or None


def speedup_rows(rows):
    """For each peer row of ns_per_op whose case eddy also measured (same
    param): eddy_speedup = peer ns / eddy ns, repetition by repetition (the
    value is the median of those ratios), on the peer's impl."""
    eddy = {(r["case"], r["param"]): r for r in rows
            if r["impl"] == "eddy" and r["metric"] == "ns_per_op"}
    out = []
    for r in rows:
        if r["impl"] == "eddy" or r["metric"] != "ns_per_op":
            continue
        e = eddy.get((r["case"], r["param"]))
        if not e or r["case"] not in PEER_CASES:
            continue
        ratios = [p / q for p, q in zip(r["samples"], e["samples"]) if q > 0]
        if ratios:
            out.append(row("micro", r["case"], r["impl"], r["param"], "eddy_speedup", ratios, "x"))
    return out


def group_by_case(rows):
    """rows in order, but each case's rows together, in the order its cases
    first appear (the peers' rows right after eddy's of the same case)."""
    first = {}
    for i, r in enumerate(rows):
        first.setdefault(r["case"], i)
    return sorted(rows, key=lambda r: first[r["case"]])


def merge_previous_rows(ctx, rows):
    """A filtered run replaces only the benchmarks it measured: the rows of
    the previous micro.json for other (case, impl, param) are kept, each
    marked with the run it comes from, except the eddy_speedup rows of the
    eddy figures this run replaced. New rows take the place of the rows
    they replace; those of benchmarks new to the file follow. Returns
    (rows, how many were kept)."""
    path = os.path.join(ctx.out_dir, "micro.json")
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return rows, 0

    def key(r):
        return (r["case"], r["impl"], r["param"])

    new = {}
    for r in rows:
        new.setdefault(key(r), []).append(r)
    measured = set(new)
    origin = {"date": old.get("date"), "commit": old.get("git", {}).get("commit"),
              "runner_command": old.get("runner_command")}
    merged, replaced, kept = [], set(), 0
    for r in old.get("rows", []):
        k = key(r)
        if k in new:
            merged += new.pop(k)  # the first old row of k places all new ones
            replaced.add(k)
        elif r["metric"] == "eddy_speedup" and (r["case"], "eddy", r["param"]) in measured:
            continue  # a ratio to eddy figures that this run replaced
        elif k not in replaced:
            merged.append(dict(r, kept_from=r.get("kept_from", origin)))
            kept += 1
    for group in new.values():
        merged += group
    return merged, kept


def run(ctx):
    """build/bench/micro, then the asyncio peers of the cases it ran. With
    --filter, only the matching benchmarks (and their peers) run, and their
    rows replace the same benchmarks' rows in the existing micro.csv/json
    (merge_previous_rows) instead of the whole file."""
    binary = os.path.join(ctx.build, "bench", "micro")
    if not os.access(binary, os.X_OK):
        raise SuiteError(f"{rel(binary)} is missing: build it with `make bench-build`")
    base = [binary]
    if ctx.filter:
        base.append("--benchmark_filter=" + ctx.filter)
    listed = subprocess.run(base + ["--benchmark_list_tests=true"], capture_output=True,
                            text=True, cwd=ROOT)
    if listed.returncode != 0:
        raise SuiteError(f"{rel(binary)} refused to list its benchmarks: "
                         + (listed.stderr.strip() or listed.stdout.strip()))
    names = [l for l in listed.stdout.splitlines() if l.strip()]
    if not names:
        raise SuiteError("no benchmark matches the filter")
    reps = ctx.repetitions()
    cmd = base + ["--benchmark_format=json", f"--benchmark_repetitions={reps}", "--eddy_progress"]
    if ctx.smoke:
        cmd.append("--benchmark_min_time=0.05")
    cmd = ctx.pin(cmd)
    shown = " ".join(shlex.quote(rel(a) if a == binary else a) for a in cmd)
    say(f"micro: {len(names)} benchmarks, {reps} repetition(s): {shown}")
    data = run_benchmark_binary(ctx, cmd, names, timeout_s=900 if ctx.smoke else 3600)
    rows, errors, context = gbench_rows(data)

    peer_rows, peer_commands, peer_info, peer_failure = [], [], {}, None
    if ctx.peers:
        peer_rows, peer_commands, peer_info, peer_failure = run_asyncio_peers(ctx, names)
    rows = group_by_case(rows + peer_rows + speedup_rows(rows + peer_rows))
    if peer_commands:
        shown = "; ".join([shown] + peer_commands)

    for e in errors:
        say(f"micro: ERROR {e['name']}: {e['message']}")
    extra = {"allocator": context.get("eddy_alloc_backend", "unknown"),
             "gbench_context": context, "benchmark_errors": errors}
    if peer_info:
        extra["asyncio_peers"] = peer_info
    if context.get("library_build_type") == "debug":
        extra["note"] = ("the Google Benchmark library itself reports a debug build "
                         "(Debian's libbenchmark); it only affects the harness, not the "
                         "timed loops, which are eddy's release code")
    if ctx.filter:
        rows, kept = merge_previous_rows(ctx, rows)
        if kept:
            extra["merged"] = (f"filtered run (--filter {ctx.filter}): {kept} rows of other "
                               "benchmarks kept from the previous micro.json, each with "
                               "its kept_from")
            say(f"micro: kept {kept} rows of other benchmarks from the previous results")
    failed = [f"{len(errors)} benchmark(s) reported errors"] if errors else []
    if peer_failure:
        failed.append(peer_failure)
    return SuiteResult(rows, shown, extra, "; ".join(failed) or None)


def print_peer_ratios(result, wall):
    """The eddy_speedup rows: eddy against asyncio and asyncio on uvloop."""
    speedups = [r for r in result.rows if r["metric"] == "eddy_speedup"]
    if not speedups:
        return
    say("micro: eddy against the asyncio peers, median of the per-repetition ratios "
        "(peer ns / eddy ns):")
    for r in speedups:
        e = wall.get((r["case"], "eddy", r["param"]))
        p = wall.get((r["case"], r["impl"], r["param"]))
        target = PEER_TARGETS.get(r["case"])
        verdict = ""
        if target:
            verdict = f"; target >= {target}x: {'met' if r['value'] >= target else 'missed'}"
        old = " (from an earlier run)" if "kept_from" in r else ""
        say(f"  {r['case']:16s} eddy {fmt(e['value']) if e else '-':>10s} ns, {r['impl']:14s} "
            f"{fmt(p['value']) if p else '-':>12s} ns: eddy faster by {r['value']:.0f}x "
            f"({r['min']:.0f}..{r['max']:.0f}){verdict}{old}")


def summary(result):
    wall, cpu = {}, {}
    for r in result.rows:
        key = (r["case"], r["impl"], r["param"])
        if r["metric"] == "ns_per_op":
            wall[key] = r
        elif r["metric"] == "cpu_ns_per_op":
            cpu[key] = r
    runs = max((r["runs"] for r in result.rows), default=0)
    say(f"micro: median ns/op over {runs} run(s), wall clock (min..max) and CPU time:")
    noisy = []
    for key, r in wall.items():
        case, impl, param = key
        label = f"{case}{'/' + param if param else ''} [{impl}]"
        if "kept_from" in r:
            label += " (earlier run)"
        c = cpu.get(key)
        cpu_s = fmt(c["value"]) if c else "-"
        say(f"  {label:34s} {fmt(r['value']):>12s}  ({fmt(r['min'])}..{fmt(r['max'])})"
            f"  cpu {cpu_s}")
        if c and c["value"] > 0 and r["value"] > 1.1 * c["value"]:
            noisy.append(label)
    for r in result.rows:
        if r["metric"] not in ("ns_per_op", "cpu_ns_per_op", "ops_per_s", "eddy_speedup"):
            say(f"  {r['case']} [{r['impl']}] {r['metric']} = {fmt(r['value'])} {r['unit']}")
    print_peer_ratios(result, wall)
    if noisy:
        say("micro: warning: wall clock more than 10% above CPU time (the process was "
            "preempted, or waited on the kernel/host) for: " + ", ".join(noisy))
