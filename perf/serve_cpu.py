#!/usr/bin/env python3
"""Keep-alive cost per request of HTTP servers, measured by hand-sized runs.

A small driver for comparing eddy-httpd builds with each other and with
nginx without the whole serve suite of bench/run. Each server runs pinned
to core 0 and `wrk -t1` to core 1; the servers take turns run after run so
that they share whatever else the machine does, and the figures are the
medians over the runs:

  req/s          wrk's requests per second
  req/cpu-s      requests divided by the server's utime+stime gained during
                 the run (/proc/PID/stat), the figure issue 5 counts
  sys/req        syscalls per request (only with --strace: strace -c -f on
                 the server, which slows it, so req/s are then meaningless)

With --idle N it instead opens N idle keep-alive connections
(bench/macro/idle_holder.py, one request each) on a freshly started server
and prints the VmRSS gained per connection.

    perf/serve_cpu.py [--runs 3] [--seconds 4] [-c 64] [--strace] [--idle N]
                      NAME=COMMAND... (COMMAND with {port}; "nginx" alone
                      means Debian's nginx with bench/peers/nginx.conf.in)

Example: perf/serve_cpu.py before="/tmp/httpd-old --port {port}"
         after="build/bin/eddy-httpd --port {port}" nginx
"""
import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_CPU = "0"
CLIENT_CPU = "1"
READY_TIMEOUT_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_command(port, scratch):
    with open(os.path.join(ROOT, "bench", "peers", "nginx.conf.in")) as f:
        text = f.read().replace("@PORT@", str(port)).replace("@DIR@", scratch)
    conf = os.path.join(scratch, "nginx.conf")
    with open(conf, "w") as f:
        f.write(text)
    return ["/usr/sbin/nginx", "-c", conf, "-e", os.path.join(scratch, "error.log")]


class Server:
    def __init__(self, name, command, use_strace):
        self.name, self.command, self.use_strace = name, command, use_strace
        self.proc = None

    def start(self):
        self.port = free_port()
        self.scratch = tempfile.mkdtemp(prefix="serve_cpu.")
        if self.command == "nginx":
            cmd = nginx_command(self.port, self.scratch)
        else:
            cmd = shlex.split(self.command.replace("{port}", str(self.port)))
        self.strace_out = os.path.join(self.scratch, "strace.txt")
        if self.use_strace:
            cmd = ["strace", "-c", "-f", "-o", self.strace_out] + cmd
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + cmd,
                                     stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start")

    def pid(self):
        """The server process (strace's child when traced)."""
        if not self.use_strace:
            return self.proc.pid
        kids = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
        return int(kids[0])

    def cpu_s(self):
        with open(f"/proc/{self.pid()}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_bytes(self):
        with open(f"/proc/{self.pid()}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024

    def stop(self):
        # The server itself, so that a tracing strace sees it exit and writes its counts.
        os.kill(self.pid(), signal.SIGTERM)
        self.proc.wait(timeout=30)
        syscalls = None
        if self.use_strace:
            with open(self.strace_out) as f:
                text = f.read()
            syscalls = {}
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    calls = int(parts[3])
                    errors = int(parts[4]) if len(parts) == 6 else 0
                    syscalls[parts[-1]] = (calls, errors)
        shutil.rmtree(self.scratch, ignore_errors=True)
        return syscalls


def wrk(port, conns, seconds, path):
    out = subprocess.run(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{conns}",
                          f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in", out)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errs:
        raise RuntimeError(f"wrk errors: {errs.group(0)}")
    return int(m.group(1))


def run_load(servers, args):
    results = {s.name: [] for s in servers}
    warm = {}
    for s in servers:
        s.start()
        warm[s.name] = wrk(s.port, args.c, 1, args.path)
    for _ in range(args.runs):
        for s in servers:
            before = s.cpu_s()
            t0 = time.monotonic()
            n = wrk(s.port, args.c, args.seconds, args.path)
            wall = time.monotonic() - t0
            cpu = s.cpu_s() - before
            results[s.name].append((n / wall, n / cpu if cpu else 0.0, n))
    # strace counts the warm-up's requests too.
    total = {s.name: warm[s.name] + sum(r[2] for r in results[s.name]) for s in servers}
    sys_per_req = {}
    for s in servers:
        calls = s.stop()
        if calls:
            sys_per_req[s.name] = calls
    for name, rows in results.items():
        rps = statistics.median(r[0] for r in rows)
        rpc = statistics.median(r[1] for r in rows)
        line = f"{name:10s} req/s {rps:9.0f}  req/cpu-s {rpc:9.0f}"
        line += "  runs " + " ".join(f"{r[1]:.0f}" for r in rows)
        print(line)
        if name in sys_per_req:
            n = total[name]
            parts = sorted(sys_per_req[name].items(), key=lambda kv: -kv[1][0])
            print(f"    syscalls per request ({n} requests):")
            for call, (k, e) in parts[:8]:
                print(f"      {call:14s} {k / n:6.3f}/req" + (f" ({e / n:.3f} errors)" if e else ""))
    if len(results) > 1:
        base = list(results)[-1]
        b = statistics.median(r[1] for r in results[base])
        for name, rows in results.items():
            print(f"{name:10s} {statistics.median(r[1] for r in rows) / b:5.2f}x {base} per cpu-s")


def run_idle(servers, args):
    holder = os.path.join(ROOT, "bench", "macro", "idle_holder.py")
    for s in servers:
        s.start()
        wrk(s.port, 64, 1, args.path)  # warm it the way the serve suite does
        before = s.rss_bytes()
        h = subprocess.Popen(["taskset", "-c", CLIENT_CPU, sys.executable, holder, "127.0.0.1",
                              str(s.port), str(args.idle), args.path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = h.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"idle_holder: {line}")
        time.sleep(0.5)
        after = s.rss_bytes()
        h.stdin.write("\n")
        h.stdin.flush()
        still = h.stdout.readline().strip()
        h.wait()
        s.stop()
        print(f"{s.name:10s} RSS per idle connection {(after - before) / args.idle:8.0f} B "
              f"({before} -> {after}, {still})")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("-c", type=int, default=64)
    ap.add_argument("--path", default="/plaintext")
    ap.add_argument("--strace", action="store_true")
    ap.add_argument("--idle", type=int, default=0)
    ap.add_argument("servers", nargs="+", help="NAME=COMMAND or nginx")
    args = ap.parse_args()
    servers = []
    for spec in args.servers:
        name, _, command = spec.partition("=")
        servers.append(Server(name, command or name, args.strace))
    try:
        if args.idle:
            run_idle(servers, args)
        else:
            run_load(servers, args)
    finally:
        for s in servers:
            if s.proc and s.proc.poll() is None:
                s.proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
