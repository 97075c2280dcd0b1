"""bench/runner/files.py: the files suite, reading 1 GiB and 1,000 x 4 KiB
files with build/bench/files (sync, eddy-async) and bench/macro/files.py
(python, aiofiles) from a warm page cache.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from .common import DEBIAN_PYTHON, ROOT, SuiteError, SuiteResult, first_line, fmt, rel, row, say

FILES_IMPLS = ["sync", "eddy-async", "python", "aiofiles"]
FILES_SMALL_COUNT = 1000
FILES_SMALL_BYTES = 4096
FILES_CHUNKS = [65536, 1 << 20]


def files_python():
    """The interpreter for the python and aiofiles impls: Debian's, where
    python3-aiofiles installs (a python3 earlier on PATH, from pyenv or a
    venv, does not see Debian's packages), else the one running bench/run."""
    for cand in (DEBIAN_PYTHON, sys.executable):
        if cand and os.access(cand, os.X_OK):
            return cand
    return "python3"


def files_make_data(root, big_bytes):
    """root/big (big_bytes of random-looking bytes) and root/small/0..999
    (4 KiB each), written once per suite run."""
    block = os.urandom(1 << 20)
    with open(os.path.join(root, "big"), "wb") as f:
        left = big_bytes
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    small = os.path.join(root, "small")
    os.mkdir(small)
    for i in range(FILES_SMALL_COUNT):
        with open(os.path.join(small, str(i)), "wb") as f:
            f.write(os.urandom(FILES_SMALL_BYTES))


def files_warm(root):
    """Reads every file once, so that every impl reads from a warm page cache."""
    paths = [os.path.join(root, "big")]
    small = os.path.join(root, "small")
    paths += [os.path.join(small, str(i)) for i in range(FILES_SMALL_COUNT)]
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.read(1 << 20):
                pass


def files_run_one(cmd):
    """Runs one driver; returns (bytes, seconds)."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    except subprocess.TimeoutExpired:
        raise SuiteError("timed out after 600 s: " + " ".join(cmd))
    if out.returncode != 0:
        raise SuiteError(f"{' '.join(cmd)} failed ({out.returncode}): "
                         + (out.stderr.strip() or out.stdout.strip()))
    fields = dict(kv.split("=", 1) for kv in out.stdout.split() if "=" in kv)
    return int(fields["bytes"]), float(fields["seconds"])


def run(ctx):
    binary = os.path.join(ctx.build, "bench", "files")
    if not os.access(binary, os.X_OK):
        raise SuiteError(f"{rel(binary)} is missing: build it with `make bench-build`")
    script = os.path.join(ROOT, "bench", "macro", "files.py")
    py = files_python()
    py_version = first_line([py, "--version"])
    impls = list(FILES_IMPLS)
    aiofiles_version = subprocess.run(
        [py, "-c", "import aiofiles, importlib.metadata as m; print(m.version('aiofiles'))"],
        capture_output=True, text=True).stdout.strip()
    if not aiofiles_version:
        impls.remove("aiofiles")
        say(f"files: impl aiofiles skipped: {py} cannot import aiofiles "
            "(Debian's python3-aiofiles; `scripts/deps.sh bench` installs it)")
    runs = 1 if ctx.smoke else 3
    big_bytes = (64 << 20) if ctx.smoke else (1 << 30)

    root = tempfile.mkdtemp(prefix="eddy-bench-files-")
    try:
        vfs = os.statvfs(root)
        need = big_bytes + FILES_SMALL_COUNT * FILES_SMALL_BYTES * 2 + (256 << 20)
        cases = ["big", "small"]
        if vfs.f_bavail * vfs.f_frsize < need:
            cases = ["small"]
            say(f"files: case big skipped: {root} has "
                f"{vfs.f_bavail * vfs.f_frsize >> 20} MiB free, it needs {need >> 20} MiB")
        say(f"files: writing the data under {root} (big: {big_bytes >> 20} MiB, small: "
            f"{FILES_SMALL_COUNT} x {FILES_SMALL_BYTES} bytes)")
        files_make_data(root, big_bytes if "big" in cases else 0)
        # Written back before measuring: the kernel's writeback of a fresh
        # 1 GiB would otherwise compete with the first runs.
        os.sync()
        files_warm(root)

        points = []  # (case, param, driver arguments)
        if "big" in cases:
            for chunk in FILES_CHUNKS:
                points.append(("big", str(chunk),
                               ["--case", "big", "--path", os.path.join(root, "big"),
                                "--chunk", str(chunk)]))
        points.append(("small", f"{FILES_SMALL_COUNT}x{FILES_SMALL_BYTES}",
                       ["--case", "small", "--path", os.path.join(root, "small"),
                        "--files", str(FILES_SMALL_COUNT)]))

        def command(impl, args):
            if impl in ("sync", "eddy-async"):
                return [binary, "--impl", impl] + args
            return [py, script, "--impl", impl] + args

        # Runs interleave the impls, so that a noisy moment of the machine
        # hits all of them instead of one.
        samples = {}
        total, done, t0 = len(points) * runs * len(impls), 0, time.monotonic()
        for case, param, args in points:
            for r in range(runs):
                for impl in impls:
                    nbytes, secs = files_run_one(command(impl, args))
                    mbps = nbytes / secs / 1e6
                    samples.setdefault((case, param, impl), []).append(mbps)
                    done += 1
                    left = (time.monotonic() - t0) / done * (total - done)
                    say(f"files: [{done}/{total}] {case}/{param} run {r + 1}/{runs} {impl:10s} "
                        f"{mbps:9.1f} MB/s; ~{left:.0f} s left")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    rows = []
    for case, param, _ in points:
        base = samples.get((case, param, "sync"))
        for impl in impls:
            s = samples[(case, param, impl)]
            rows.append(row("files", case, impl, param, "MBps", s, "MB/s"))
        # Ratios run by run (the runs are interleaved), against sync and,
        # for small, against aiofiles with gather.
        for impl in impls:
            s = samples[(case, param, impl)]
            if impl != "sync":
                rows.append(row("files", case, impl, param, "ratio_vs_sync",
                                [a / b for a, b in zip(s, base)], "x"))
            if impl != "aiofiles" and "aiofiles" in impls:
                ref = samples[(case, param, "aiofiles")]
                rows.append(row("files", case, impl, param, "ratio_vs_aiofiles",
                                [a / b for a, b in zip(s, ref)], "x"))

    shown = (f"{rel(binary)} --impl sync|eddy-async --case big --path BIG --chunk "
             f"{'|'.join(map(str, FILES_CHUNKS))}; {rel(binary)} --impl sync|eddy-async --case "
             f"small --path DIR --files {FILES_SMALL_COUNT}; {py} bench/macro/files.py --impl "
             "python|aiofiles (same arguments)")
    extra = {
        "settings": {
            "big_bytes": big_bytes if "big" in cases else None,
            "small_files": FILES_SMALL_COUNT, "small_file_bytes": FILES_SMALL_BYTES,
            "chunks": FILES_CHUNKS, "runs": runs, "cases": cases,
            "page_cache": "warm: every file is read once before the first run, and the "
                          "data fits in memory, so every impl reads from the page cache",
            "pinning": "none: eddy-async and aiofiles run their reads on worker threads, "
                       "so every impl may use all allowed cores",
            "eddy_offload_threads": os.environ.get("EDDY_OFFLOAD_THREADS", "4 (default)"),
            "data_dir": "a fresh directory from tempfile.mkdtemp (TMPDIR, else /tmp), removed "
                        "afterwards",
        },
        "python": {"interpreter": py, "version": py_version,
                   "aiofiles": aiofiles_version or "not installed"},
        "impls": impls,
    }
    return SuiteResult(rows, shown, extra)


def summary(result):
    say("files: median MB/s (min..max), and the ratio to sync run by run:")
    ratios = {(r["case"], r["param"], r["impl"]): r for r in result.rows
              if r["metric"] == "ratio_vs_sync"}
    for r in result.rows:
        if r["metric"] != "MBps":
            continue
        q = ratios.get((r["case"], r["param"], r["impl"]))
        ratio = f"  {q['value']:.2f}x sync" if q else ""
        say(f"  {r['case']:5s} {r['param']:>9s} {r['impl']:10s} {fmt(r['value']):>9s} "
            f"({fmt(r['min'])}..{fmt(r['max'])}){ratio}")
