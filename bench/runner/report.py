"""bench/runner/report.py: results/REPORT.md from results/*.csv and .json.

    bench/report [--smoke] [--dir DIR]

One section per suite, in SUITE_ORDER: what it measures, one table per
case (rows: the point and the impl; columns: the suite's headline metrics,
the first with its min..max over the runs), the impls that were missing,
capped or failed (as words, never as numbers), the exact commands, and
plots (gnuplot, SVG and PNG, in DIR/plots/) where a suite sweeps a
parameter. The header names the machine, the build and the commit, and
says which run the figures come from: the committed results/ are the latest
full run on the development machine; --smoke reads results/smoke/.

The CSVs are the figures (DESIGN.md's format); the JSONs add the machine,
the commands and the reasons. Nothing is measured here.
"""
import csv
import json
import os
import shutil
import subprocess

from .common import ROOT, rel, say

SUITE_ORDER = ["fetch", "serve", "cpu", "files", "db", "alloc", "micro"]
TITLES = {
    "fetch": "fetch: N slow URLs, and client throughput",
    "serve": "serve: C concurrent clients",
    "cpu": "cpu: CPU-bound handlers, inline against offloaded",
    "files": "files: reading files",
    "db": "db: N queries",
    "alloc": "allocators: jemalloc, mimalloc, libc",
    "micro": "micro: one operation at a time",
}
ABOUT = {
    "fetch": "Client side. *slow*: N requests to eddy-httpd `/delay?ms=100`, wall time; sequential "
             "clients (sync, requests) are capped at N=100 and their speedup beyond is "
             "extrapolated (named so). *throughput*: 64 connections against nginx answering 13 "
             "bytes; requests per second and per client CPU second, wrk as the ceiling.",
    "serve": "Server side, each server pinned to one core and `wrk -t1` to the other. *conns*: "
             "C keep-alive connections, one request in flight each, with the server's peak RSS "
             "and threads; *idle*: RSS per idle connection; *pipelined16*: 16 requests per write. "
             "*threaded* is a blocking thread-per-connection server on eddy's parser.",
    "cpu": "A handler that hashes for ~0.8 ms. *eddy-inline* computes on the loop: requests "
           "queue behind each other and the server uses one core. *eddy-offload* moves the same "
           "work to the offload pool, *threaded* runs it on a thread per connection. "
           "probe: one `/plaintext` every 20 ms beside the load.",
    "files": "Reading a 1 GiB file and 1,000 x 4 KiB files from a warm page cache.",
    "db": "N queries with pg_sleep(0.01): sync libpq against the eddy pool.",
    "alloc": "eddy built with each allocator (ALLOC=), same machine, one pass each: the micro "
             "suite and the serve cases that allocate (plaintext, idle connections). Columns "
             "are allocators; ratio = mimalloc or libc over jemalloc.",
    "micro": "Google Benchmark, pinned to one core; peers (boost.context, asyncio, uvloop) in "
             "the same run.",
}
# Headline metrics per suite, in column order (others stay in the CSV).
METRICS = {
    "fetch": ["seconds", "speedup_vs_sync", "speedup_vs_sync_extrapolated",
              "speedup_vs_requests", "speedup_vs_requests_extrapolated", "rps",
              "rps_per_client_cpu_s", "p99_ms", "client_cpu_s", "errors"],
    "serve": ["rps", "p99_ms", "rps_per_cpu_s", "server_rss_bytes", "server_threads_peak",
              "rss_per_conn_bytes", "server_threads", "errors"],
    "cpu": ["rps", "rps_vs_inline", "server_cpu_util", "p99_ms", "probe_p99_ms", "errors"],
    "files": ["MBps", "ratio_vs_sync", "ratio_vs_aiofiles"],
    "db": None,
    "micro": ["ns_per_op", "cpu_ns_per_op", "eddy_speedup", "rss_bytes_per_coro"],
}
# (suite, case, metric, x label, y label, log x, log y, file name, title)
PLOTS = [
    ("serve", "conns", "rps", "keep-alive connections", "requests/s", True, False,
     "serve_rps_vs_conns", "serve: throughput against concurrency"),
    ("serve", "conns", "p99_ms", "keep-alive connections", "p99 latency (ms)", True, True,
     "serve_p99_vs_conns", "serve: p99 latency against concurrency"),
    ("serve", "conns", "server_rss_bytes", "keep-alive connections", "server RSS (bytes)", True,
     True, "serve_rss_vs_conns", "serve: server memory against concurrency"),
    ("fetch", "slow", "seconds", "N requests of 100 ms", "wall time (s)", True, True,
     "fetch_time_vs_n", "fetch: time to fetch N slow URLs"),
    ("cpu", "cpu", "rps", "concurrent connections", "requests/s", True, False,
     "cpu_rps_vs_conns", "cpu: throughput of a CPU-bound handler"),
    ("cpu", "cpu", "probe_p99_ms", "concurrent connections", "/plaintext p99 beside it (ms)",
     True, True, "cpu_probe_vs_conns", "cpu: latency of other requests"),
]


def load(out_dir):
    """{suite: (rows from the CSV, the JSON or {})} for the suites that have a CSV."""
    data = {}
    for name in sorted(os.listdir(out_dir)):
        if not name.endswith(".csv"):
            continue
        suite = name[:-4]
        with open(os.path.join(out_dir, name), newline="") as f:
            rows = list(csv.DictReader(f))
        meta = {}
        try:
            with open(os.path.join(out_dir, suite + ".json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            pass
        data[suite] = (rows, meta)
    return data


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def param_key(p):
    v = num(p)
    return (0, v, "") if v is not None else (1, 0, p)


def cell(r, spread):
    v = num(r["value"])
    if v is None:
        return r["value"]
    text = fmt_human(v)
    if spread and int(r.get("runs") or 1) > 1 and r["min"] != r["max"]:
        text += f" ({fmt_human(num(r['min']))}..{fmt_human(num(r['max']))})"
    return text


def fmt_human(v):
    """A figure for a reader: thousands separated, three or so significant digits."""
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a >= 0.01 or a == 0:
        return f"{v:.3f}".rstrip("0").rstrip(".") if a == 0 else f"{v:.3f}"
    return f"{v:.3g}"


def md_table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return out


def case_tables(suite, rows, meta):
    """Markdown lines: one table per case, rows (param, impl), columns the
    suite's headline metrics that the case has."""
    out = []
    cases = []
    for r in rows:
        if r["case"] not in cases:
            cases.append(r["case"])
    wanted = METRICS.get(suite)
    for case in cases:
        crow = [r for r in rows if r["case"] == case]
        have = []
        for r in crow:
            if r["metric"] not in have:
                have.append(r["metric"])
        cols = [m for m in wanted if m in have] if wanted else have
        if not cols:
            cols = have
        units = {r["metric"]: r["unit"] for r in crow}
        table, order = {}, []
        for r in crow:
            key = (r["param"], r["impl"])
            if key not in table:
                table[key] = {}
                order.append(key)
            table[key][r["metric"]] = r
        order.sort(key=lambda k: param_key(k[0]))
        header = ["param", "impl"] + [f"{m} ({units[m]})" for m in cols]
        lines = []
        for key in order:
            m = table[key]
            lines.append([key[0] or "-", key[1]] +
                         [cell(m[c], i == 0) if c in m else "" for i, c in enumerate(cols)])
        # Impls that could not be measured get a line that says so in words.
        for impl in (meta.get("missing") or {}):
            if not any(k[1] == impl for k in order):
                lines.append(["-", impl, "missing (see below)"] + [""] * (len(cols) - 1))
        out += [f"**{case}**", ""] + md_table(header, lines) + [""]
    return out


def words(meta):
    """The missing, capped and failed entries of a suite's JSON, as lines."""
    out = []
    for key, label in (("missing", "missing"), ("capped", "not run (capped)"),
                       ("failed_points", "failed")):
        entries = meta.get(key) or {}
        for impl, why in entries.items():
            out.append(f"- {label}: **{impl}**: {why}")
    for note in meta.get("notes") or []:
        out.append(f"- note: {note}")
    if meta.get("not_measured"):
        out.append(f"- not measured: {meta['not_measured']}")
    return out


def commands(meta):
    out = []
    if meta.get("runner_command"):
        out.append(meta["runner_command"])
    if meta.get("command") and meta.get("command") not in out:
        out.append(meta["command"])
    for k, v in (meta.get("commands") or {}).items():
        out.append(f"{k}: {v}")
    if isinstance(meta.get("servers"), dict):
        for impl, s in meta["servers"].items():
            if isinstance(s, dict) and s.get("command"):
                out.append(f"server {impl}: {s['command']}")
    return out


def plot(out_dir, rows, spec, gnuplot):
    """Writes plots/NAME.dat, .gp, .svg and .png; returns the relative PNG
    and SVG paths, or None when the case has no data."""
    suite, case, metric, xlabel, ylabel, logx, logy, name, title = spec
    series = {}
    for r in rows:
        if r["case"] == case and r["metric"] == metric and num(r["value"]) is not None \
                and num(r["param"]) is not None:
            series.setdefault(r["impl"], []).append((num(r["param"]), num(r["value"])))
    if not series:
        return None
    plots = os.path.join(out_dir, "plots")
    os.makedirs(plots, exist_ok=True)
    dat = os.path.join(plots, name + ".dat")
    with open(dat, "w") as f:
        for impl, pts in series.items():
            f.write(f"# {impl}\n")
            for x, y in sorted(pts):
                f.write(f"{x:g} {y:g}\n")
            f.write("\n\n")
    plot_lines = ", ".join(f"'{name}.dat' index {i} using 1:2 with linespoints lw 2 "
                           f"title '{impl}'" for i, impl in enumerate(series))
    script = [f"set title '{title}'", f"set xlabel '{xlabel}'", f"set ylabel '{ylabel}'",
              "set key outside right", "set grid"]
    if logx:
        script.append("set logscale x 10")
    if logy:
        script.append("set logscale y 10")
    else:
        script.append("set yrange [0:*]")
    gp = os.path.join(plots, name + ".gp")
    with open(gp, "w") as f:
        f.write("\n".join(script) + "\n")
        f.write(f"set terminal svg size 800,450 dynamic\nset output '{name}.svg'\n")
        f.write(f"plot {plot_lines}\n")
        f.write(f"set terminal pngcairo size 800,450\nset output '{name}.png'\n")
        f.write(f"plot {plot_lines}\n")
    if not gnuplot:
        return None
    res = subprocess.run([gnuplot, name + ".gp"], cwd=plots, capture_output=True, text=True,
                         timeout=60)
    if res.returncode != 0:
        say(f"report: gnuplot failed for {name}: {res.stderr.strip()[:200]}")
        return None
    return f"plots/{name}.png", f"plots/{name}.svg"


def machine_lines(data):
    for suite in SUITE_ORDER + sorted(data):
        meta = data.get(suite, ([], {}))[1]
        if meta.get("machine"):
            m, b, g = meta["machine"], meta.get("build", {}), meta.get("git", {})
            mem = m.get("memory_bytes")
            return [
                f"- CPU: {m.get('cpu_model')}, {m.get('cores_online')} cores online "
                f"(allowed {m.get('cores_allowed')}), hypervisor {m.get('hypervisor') or 'none'}",
                f"- memory: {mem / 2**30:.1f} GiB" if mem else "- memory: ?",
                f"- kernel {m.get('kernel')}, {m.get('os')}",
                f"- compiler: {b.get('cc_version')}; flags in each suite's JSON (`build.flags`)",
                f"- allocator: {b.get('allocator_flag', 'libc (no -DEDDY_ALLOC_*)')}",
                f"- commit: {g.get('describe') or g.get('commit')}",
            ]
    return ["- (no suite JSON found)"]


def status_lines(out_dir, data):
    try:
        with open(os.path.join(out_dir, "run.json")) as f:
            run = json.load(f)
    except (OSError, ValueError):
        run = {}
    suites = run.get("suites", {})
    lines = []
    for suite in SUITE_ORDER + sorted(set(suites) - set(SUITE_ORDER)):
        st = suites.get(suite)
        meta = data.get(suite, ([], {}))[1]
        machine = meta.get("machine") or {}
        loads = [machine.get("loadavg_at_start"), machine.get("loadavg_at_end")]
        load = " / ".join(f"{x[0]:.1f}" for x in loads if x) if suite in data else ""
        if st:
            lines.append([suite, st.get("status"), st.get("date", ""), load,
                          st.get("reason", "")])
        elif suite in data:
            lines.append([suite, "ok (no run.json entry)", meta.get("date", ""), load, ""])
        else:
            lines.append([suite, "missing", "", "", "never ran into this directory"])
    return md_table(["suite", "status", "date (UTC)", "load avg at start / end", "why"], lines)


def alloc_lines(rows):
    """The allocator table: one line per (case, param, metric), one column
    per allocator, then the ratios to jemalloc."""
    allocs = []
    for r in rows:
        if r["metric"] != "ratio_vs_jemalloc" and r["impl"] not in allocs:
            allocs.append(r["impl"])
    table, order = {}, []
    for r in rows:
        key = (r["case"], r["param"], r["metric"].replace("_ratio_vs_jemalloc", ""))
        if key not in table:
            table[key] = {}
            order.append(key)
        col = r["impl"] + (" / jemalloc" if r["metric"].endswith("_ratio_vs_jemalloc") else "")
        table[key][col] = r
    cols = allocs + [a + " / jemalloc" for a in allocs if a != "jemalloc"]
    lines = [[k[0], k[1] or "-", k[2]] + [cell(table[k][c], False) if c in table[k] else ""
                                          for c in cols] for k in order]
    return md_table(["case", "param", "metric"] + cols, lines)


def build(out_dir, smoke):
    data = load(out_dir)
    gnuplot = shutil.which("gnuplot")
    lines = ["# eddy benchmark report", ""]
    if smoke:
        lines += ["Smoke pass (`make bench-smoke`): every suite at its smallest point, one run. "
                  "These figures only show that the suites work; they are not results.", ""]
    else:
        lines += ["The latest full run on the development machine (`make bench`): the figures "
                  "below are medians over the runs (3 unless a table says otherwise), with the "
                  "spread of the first column as (min..max). Each suite's date is in the "
                  "status table (a suite can be re-run alone, so they may come from different "
                  "runs), with the load average at its start and end: the machine is shared, "
                  "and figures taken under load are noisy.", ""]
    lines += [f"Generated by `bench/report{' --smoke' if smoke else ''}` from "
              f"{rel(out_dir)}/*.csv (DESIGN.md's format) and *.json (machine, commands, "
              "reasons).", "", "## Machine", ""] + machine_lines(data) + [""]
    lines += ["## Suites", ""] + status_lines(out_dir, data) + [""]
    if not gnuplot:
        lines += ["Plots: gnuplot is not installed (Debian: gnuplot-nox; `make bench-deps`), "
                  "so none were drawn; their data and scripts are in plots/.", ""]
    for suite in SUITE_ORDER + sorted(set(data) - set(SUITE_ORDER)):
        lines += [f"## {TITLES.get(suite, suite)}", ""]
        if suite not in data:
            lines += ["No results in this directory: the suite did not run or failed "
                      "(see the status table for why).", ""]
            continue
        rows, meta = data[suite]
        if ABOUT.get(suite):
            lines += [ABOUT[suite], ""]
        when = meta.get("date", "?")
        lines += [f"Run {when} UTC, {meta.get('duration_s', '?')} s, commit "
                  f"{(meta.get('git') or {}).get('describe', '?')}.", ""]
        if suite == "alloc":
            lines += alloc_lines(rows) + [""]
        else:
            lines += case_tables(suite, rows, meta)
        w = words(meta)
        if w:
            lines += w + [""]
        for spec in PLOTS:
            if spec[0] != suite:
                continue
            made = plot(out_dir, rows, spec, gnuplot)
            if made:
                lines += [f"![{spec[8]}]({made[0]}) ([SVG]({made[1]}))", ""]
        cmds = commands(meta)
        if cmds:
            lines += ["Commands:", "", "```"] + cmds + ["```", ""]
        if meta.get("method"):
            lines += [f"Method: {meta['method']}", ""]
    instr = os.path.join(ROOT, "results", "instructions.json")
    try:
        with open(instr) as f:
            ins = json.load(f)
        lines += ["## Instructions per operation (the regression gate)", "",
                  "Callgrind counts, which do not drift with machine noise; `make perf-check` "
                  "fails when one grows by more than 5% over results/instructions.json "
                  f"(commit {ins.get('commit')}, {ins.get('date')}).", ""]
        lines += md_table(["operation", "instructions"],
                          [[k, f"{v:,.1f}"] for k, v in ins["instructions_per_op"].items()])
        lines += ["", f"Command: `{ins.get('command')}`", ""]
    except (OSError, ValueError, KeyError):
        pass
    path = os.path.join(out_dir, "REPORT.md")
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    return path
