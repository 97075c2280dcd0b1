"""bench/runner/alloc.py: the alloc suite, eddy built with each allocator.

The Makefile builds eddy against jemalloc (build/), mimalloc
(build/alloc-mimalloc) or glibc's malloc (build/alloc-libc) with ALLOC=;
`make bench` builds all three. This suite runs, once per allocator, the
micro suite (one repetition, without the asyncio peers, which do not link
eddy) and the serve cases that allocate per connection (plaintext and the
idle connections, eddy-httpd and the threaded server only), and writes
results/alloc.csv: case "micro/CASE" or "serve/CASE/SERVER", impl the
allocator, and beside each figure of mimalloc and libc METRIC_ratio_vs_jemalloc
(the allocator's value over jemalloc's). An allocator whose build is
missing is marked missing, with the make command that builds it.
"""
import copy
import os

from . import micro, serve
from .common import ROOT, SuiteError, SuiteResult, rel, row, say

ALLOCATORS = [("jemalloc", "build", "-DEDDY_ALLOC_JEMALLOC=1"),
              ("mimalloc", os.path.join("build", "alloc-mimalloc"), "-DEDDY_ALLOC_MIMALLOC=1"),
              ("libc", os.path.join("build", "alloc-libc"), None)]
SERVE_CASES = {"plaintext", "idle"}
SERVE_IMPLS = ["eddy-async", "threaded"]
MICRO_METRICS = {"ns_per_op", "rss_bytes_per_coro", "create_ns_per_coro"}
SERVE_METRICS = {"rps", "p99_ms", "rps_per_cpu_s", "rss_per_conn_bytes"}


def estimate_s(ctx):
    return 3 * (60 if ctx.smoke else 400)


def check_build(build, flag):
    """None when build holds the binaries built with flag, else why not."""
    for binary in (os.path.join("bench", "micro"), os.path.join("bin", "eddy-httpd")):
        if not os.access(os.path.join(build, binary), os.X_OK):
            return f"{rel(os.path.join(build, binary))} is missing"
    try:
        with open(os.path.join(build, "flags.stamp")) as f:
            flags = f.read().split()
    except OSError:
        return f"{rel(build)}/flags.stamp is missing"
    have = [w for w in flags if w.startswith("-DEDDY_ALLOC_")]
    if (flag and flag not in have) or (not flag and have):
        return f"{rel(build)} was built with {' '.join(have) or 'libc'}, not {flag or 'libc'}"
    return None


def run(ctx):
    samples, missing, commands = {}, {}, {}
    for name, build_rel, flag in ALLOCATORS:
        build = os.path.join(ROOT, build_rel)
        why = check_build(build, flag)
        if why:
            alloc_arg = "" if name == "jemalloc" else f"ALLOC={name} "
            missing[name] = f"{why}: build it with `make {alloc_arg}bench-build tools`"
            say(f"alloc: skipping {name}: {missing[name]}")
            continue
        sub = copy.copy(ctx)
        sub.build = build
        sub.reps = 1
        sub.peers = False
        sub.serve_cases = SERVE_CASES
        sub.serve_impls = SERVE_IMPLS
        sub.filter = None
        say(f"alloc: {name} ({rel(build)}): micro, one repetition")
        try:
            res = micro.run(sub)
            commands[f"{name} micro"] = res.command
            for r in res.rows:
                if r["impl"] == "eddy" and r["metric"] in MICRO_METRICS:
                    key = (f"micro/{r['case']}", r["param"], r["metric"], r["unit"])
                    samples.setdefault(key, {})[name] = r["samples"]
            say(f"alloc: {name}: serve, {', '.join(sorted(SERVE_CASES))} cases, "
                f"{' and '.join(SERVE_IMPLS)}")
            res = serve.run(sub)
            commands[f"{name} serve"] = "; ".join(
                f"{k}: {v}" for k, v in res.extra.get("commands", {}).items())
            for r in res.rows:
                if r["metric"] in SERVE_METRICS:
                    key = (f"serve/{r['case']}/{r['impl']}", r["param"], r["metric"], r["unit"])
                    samples.setdefault(key, {})[name] = r["samples"]
        except SuiteError as e:
            missing[name] = f"failed: {e}"
            say(f"alloc: {name} FAILED: {e}")
    if not samples:
        raise SuiteError("no allocator could be measured: "
                         + "; ".join(f"{k}: {v}" for k, v in missing.items()))
    rows = []
    for (case, param, metric, unit), by_alloc in samples.items():
        for name, s in by_alloc.items():
            rows.append(row("alloc", case, name, param, metric, s, unit))
        base = by_alloc.get("jemalloc")
        for name, s in by_alloc.items():
            if name == "jemalloc" or not base:
                continue
            ratios = [a / b for a, b in zip(s, base) if b]
            if ratios:
                rows.append(row("alloc", case, name, param, metric + "_ratio_vs_jemalloc",
                                ratios, "x"))
    extra = {"allocators": {n: rel(os.path.join(ROOT, b)) for n, b, _ in ALLOCATORS},
             "serve_cases": sorted(SERVE_CASES), "serve_impls": SERVE_IMPLS,
             "commands": commands, "missing": missing,
             "method": "one pass per allocator (one repetition of micro, one run per serve "
                       "point), in turn on the same machine; a ratio is the allocator's value "
                       "over jemalloc's"}
    return SuiteResult(rows, "bench/run alloc (micro and serve per build directory)", extra)


def summary(result):
    say("alloc: figure per allocator (ratio to jemalloc)")
    table = {}
    for r in result.rows:
        table.setdefault((r["case"], r["param"], r["metric"].replace("_ratio_vs_jemalloc", "")),
                         {})[(r["impl"], r["metric"].endswith("_ratio_vs_jemalloc"))] = r["value"]
    for (case, param, metric), m in table.items():
        cells = []
        for name, _, _ in ALLOCATORS:
            if (name, False) in m:
                ratio = m.get((name, True))
                cells.append(f"{name} {m[(name, False)]:,.4g}"
                             + (f" ({ratio:.2f}x)" if ratio else ""))
        say(f"  {case}{'/' + str(param) if param else ''} {metric}: {'; '.join(cells)}")
    for name, why in result.extra.get("missing", {}).items():
        say(f"  {name}: missing: {why}")
