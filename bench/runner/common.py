"""bench/runner/common.py: the plumbing every suite shares.

A suite is a function run(ctx) -> SuiteResult; it raises SuiteError when
it cannot produce results at all. Rows are dicts with CSV_FIELDS (and
"samples"); row() makes one from a point's samples (median, min, max).
write_suite() writes results/SUITE.csv in the long format DESIGN.md fixes
and results/SUITE.json with the machine, the build and the commit;
record_run() keeps results/run.json, how each suite ended last time.

Only the Python standard library is used.
"""
import csv
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSV_FIELDS = ["suite", "case", "impl", "param", "metric", "value", "min", "max", "unit", "runs"]
DEBIAN_PYTHON = "/usr/bin/python3"  # Debian's aiohttp, uvloop, aiofiles, requests live there


class SuiteError(Exception):
    """A suite that could not produce its results."""


class SuiteResult:
    def __init__(self, rows, command, extra=None, failed=None):
        self.rows = rows          # list of dicts with CSV_FIELDS (+ "samples")
        self.command = command    # the exact command that produced them
        self.extra = extra or {}  # suite-specific fields for SUITE.json
        self.failed = failed      # why the suite counts as failed despite rows


class Context:
    def __init__(self, args):
        self.smoke = args.smoke
        self.build = os.path.join(ROOT, args.build)
        self.filter = args.filter
        self.cpu = args.cpu
        self.out_dir = os.path.join(ROOT, "results", "smoke") if args.smoke else \
            os.path.join(ROOT, "results")
        # Narrowed by the alloc suite, which reruns micro and serve per allocator.
        self.reps = None           # repetitions (default: 1 when smoke, else 3)
        self.peers = True          # micro: the asyncio peers
        self.serve_cases = None    # serve: only these case names (idle: the idle case)
        self.serve_impls = None    # serve: only these servers

    def repetitions(self):
        return self.reps or (1 if self.smoke else 3)

    def pin(self, cmd):
        """cmd pinned to the benchmark core with taskset (unpinned if missing)."""
        if self.cpu is None or not shutil.which("taskset"):
            return cmd
        return ["taskset", "-c", str(self.cpu)] + cmd


def say(msg):
    print(msg, flush=True)


def rel(path):
    return os.path.relpath(path, ROOT)


def fmt(v):
    """A number for the CSV: enough digits to compare, no float noise."""
    if v is None:
        return ""
    a = abs(v)
    if a >= 1000:
        return "%.0f" % v
    if a >= 10:
        return "%.2f" % v
    if a >= 0.01:
        return "%.4f" % v
    return "%.6g" % v


def row(suite, case, impl, param, metric, samples, unit):
    """One measured point: the median of samples, with their min and max."""
    return {"suite": suite, "case": case, "impl": impl, "param": param, "metric": metric,
            "value": statistics.median(samples), "min": min(samples), "max": max(samples),
            "unit": unit, "runs": len(samples), "samples": samples}


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip() if out else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.rstrip("\n")
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(ctx):
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    hypervisor = ""
    lscpu = first_line(["sh", "-c", "lscpu | grep -i '^Hypervisor vendor'"])
    if lscpu:
        hypervisor = lscpu.split(":", 1)[1].strip()
    return {
        "cpu_model": cpu_model,
        "cores_online": os.cpu_count(),
        "cores_allowed": sorted(os.sched_getaffinity(0)),
        "pinned_cpu": ctx.cpu,
        "hypervisor": hypervisor,
        "kernel": platform.release(),
        "os": first_line(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "memory_bytes": mem,
        "loadavg_at_start": list(os.getloadavg()),
    }


def build_info(ctx):
    """Compiler and flags of the build the binaries come from (its stamp)."""
    info = {"build_dir": rel(ctx.build)}
    stamp = os.path.join(ctx.build, "flags.stamp")
    try:
        with open(stamp) as f:
            flags = f.read().strip()
    except OSError:
        flags = ""
    info["flags"] = flags
    words = flags.split()
    cc, cxx = (words[0], words[1]) if len(words) >= 2 else ("cc", "c++")
    info["cc"] = cc
    info["cc_version"] = first_line([cc, "--version"])
    info["cxx"] = cxx
    info["cxx_version"] = first_line([cxx, "--version"])
    info["ndebug_in_flags"] = "-DNDEBUG" in words
    for w in words:
        if w.startswith("-DEDDY_ALLOC_"):
            info["allocator_flag"] = w
    return info


def git_info():
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"),
            "describe": git("describe", "--always", "--dirty"),
            "modified_tracked_files": [l[3:] for l in status.splitlines()]}


def write_suite(ctx, suite, result, started, machine):
    os.makedirs(ctx.out_dir, exist_ok=True)
    csv_path = os.path.join(ctx.out_dir, suite + ".csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_FIELDS)
        for r in result.rows:
            w.writerow([r["suite"], r["case"], r["impl"], r["param"], r["metric"], fmt(r["value"]),
                        fmt(r["min"]), fmt(r["max"]), r["unit"], r["runs"]])
    machine = dict(machine, loadavg_at_end=list(os.getloadavg()))
    record = {
        "suite": suite,
        "smoke": ctx.smoke,
        "date": started.isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started.timestamp(), 1),
        "runner_command": " ".join(shlex.quote(a) for a in ["bench/run"] + sys.argv[1:]),
        "command": result.command,
        "git": git_info(),
        "machine": machine,
        "build": build_info(ctx),
        **result.extra,
        "rows": result.rows,
    }
    json_path = os.path.join(ctx.out_dir, suite + ".json")
    with open(json_path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    return csv_path, json_path


def record_run(ctx, statuses, known_suites):
    """results/run.json: how each suite ended the last time it was asked for."""
    path = os.path.join(ctx.out_dir, "run.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    data.setdefault("suites", {}).update(statuses)
    data["last_command"] = " ".join(shlex.quote(a) for a in ["bench/run"] + sys.argv[1:])
    data["known_suites"] = list(known_suites)
    os.makedirs(ctx.out_dir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
