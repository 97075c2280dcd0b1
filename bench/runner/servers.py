"""bench/runner/servers.py: servers under test and wrk, for the suites
that load a server (serve, cpu, fetch).

Server starts a process in its own session (killed as a group, and sent
SIGTERM by the kernel if bench/run dies), on a free port, and waits until
it answers the expected bodies. run_wrk() is one wrk run bounded in time;
measure() adds the server's CPU time around it. CPU time, RSS and threads
come from /proc, summed over the server's process tree.
"""
import ctypes
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from .common import ROOT, rel, say

HOST = "127.0.0.1"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
WRK_TIMEOUT = "5s"         # wrk's per-request timeout (a timeout is an error)
WRK_SLACK_S = 30.0         # wrk is killed this long after its -d
MACRO_DIR = os.path.join(ROOT, "bench", "macro")
PEERS_DIR = os.path.join(ROOT, "bench", "peers")
PLAINTEXT_BODY = b"Hello, World!"
JSON_BODY = {"message": "Hello, World!"}
SAMPLE_EVERY_S = 0.25      # RSS and threads of a server under load

# Every server started and not stopped yet, so that bench/run can stop them
# all when it is interrupted or a suite fails in an unexpected way.
LIVE = set()


def stop_all():
    """Stops every server still running (bench/run's last word)."""
    for srv in list(LIVE):
        srv.stop()


class ServerError(Exception):
    """A server, or one measurement of it, that failed."""


def die_with_parent():
    """preexec_fn: SIGTERM the child if bench/run dies without cleaning up
    (killed with SIGKILL, say). PR_SET_PDEATHSIG = 1."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def pinned(cpu, cmd):
    if cpu is None or not shutil.which("taskset"):
        return cmd
    return ["taskset", "-c", str(cpu)] + cmd


def http_get(port, path, timeout=2.0):
    """One keep-alive GET; returns (status, whole response bytes, body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head = buf[:end].decode("latin-1").split("\r\n")
                length = None
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    raise ServerError(f"GET {path}: response without Content-Length")
                if len(buf) >= end + 4 + length:
                    status = int(head[0].split()[1])
                    return status, buf[:end + 4 + length], buf[end + 4:end + 4 + length]
            data = s.recv(65536)
            if not data:
                raise ServerError(f"GET {path}: connection closed after {len(buf)} bytes")
            buf += data


def proc_tree(pid):
    """pid and its descendants (h2o and friends may fork helpers)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    tree, pending = [], [pid]
    while pending:
        p = pending.pop()
        tree.append(p)
        pending.extend(children.get(p, []))
    return tree


def cpu_seconds(pid):
    """utime+stime of the process (all its threads, live and exited) and of
    its descendants, in seconds."""
    ticks = 0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            if p == pid:
                raise ServerError("the server process is gone")
    return ticks / os.sysconf("SC_CLK_TCK")


def status_field(pid, field):
    """A number from /proc/PID/status (VmRSS in bytes, Threads as is),
    summed over the process tree."""
    total = 0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        words = line.split()
                        total += int(words[1]) * (1024 if words[-1] == "kB" else 1)
        except OSError:
            if p == pid:
                raise ServerError("the server process is gone")
    return total


class Server:
    """One server under test: how to start it, and the running process."""

    def __init__(self, impl, argv_fn, version, cpu, scratch, note=""):
        self.impl = impl
        self.argv_fn = argv_fn    # (port, dir) -> argv
        self.version = version
        self.cpu = cpu
        self.dir = os.path.join(scratch, impl)
        self.note = note
        self.proc = None
        self.port = None
        self.argv = None
        self.responses = {}
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)  # h2o drops to nobody when started as root
        self.log_path = os.path.join(self.dir, "server.log")

    def log_tail(self, n=5):
        """The last lines the server wrote, for error messages."""
        try:
            with open(self.log_path, errors="replace") as f:
                lines = [l.strip() for l in f if l.strip()]
        except OSError:
            lines = []
        return " | ".join(lines[-n:]) or "(it wrote nothing)"

    def exit_status(self):
        rc = self.proc.returncode if self.proc else None
        if rc is None:
            return "not started"
        return f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        """Starts the server on a free port and waits until /plaintext and
        /json answer with the expected bodies; two more ports if the first
        was taken meanwhile."""
        why = ""
        for _ in range(3):
            self.port = free_port()
            self.argv = self.argv_fn(self.port, self.dir)
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    pinned(self.cpu, self.argv), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True,
                    preexec_fn=die_with_parent)
            LIVE.add(self)
            deadline = time.monotonic() + READY_TIMEOUT_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    why = f"{self.exit_status()}: {self.log_tail()}"
                    break
                try:
                    self.check()
                    return
                except (OSError, ServerError) as e:
                    why = str(e)
                    time.sleep(0.1)
            else:
                why = f"not answering after {READY_TIMEOUT_S:.0f} s ({why}): {self.log_tail()}"
            self.stop()
            if "in use" not in why:
                break
        raise ServerError(f"{self.impl} did not start: {why}")

    def check(self):
        for path in ("/plaintext", "/json"):
            status, whole, body = http_get(self.port, path)
            if status != 200:
                raise ServerError(f"GET {path} answered {status}")
            ok = body == PLAINTEXT_BODY if path == "/plaintext" else json.loads(body) == JSON_BODY
            if not ok:
                raise ServerError(f"GET {path} answered an unexpected body {body[:60]!r}")
            self.responses[path] = whole

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                say(f"{self.impl} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s; "
                    "killing it")
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.proc = None
        LIVE.discard(self)



def from_template(name, port, d):
    """bench/peers/NAME.in with @PORT@ and @DIR@ filled, written to d/NAME."""
    with open(os.path.join(PEERS_DIR, name + ".in")) as f:
        text = f.read().replace("@PORT@", str(port)).replace("@DIR@", d)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def nginx_server(cpu, scratch):
    """(the nginx Server, None), or (None, why it is missing)."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                      else None)
    if not nginx:
        return None, "nginx is not installed (Debian: nginx-light; `make bench-deps`)"
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    return Server(
        "nginx",
        lambda port, d: [nginx, "-c", from_template("nginx.conf", port, d),
                         "-e", os.path.join(d, "error.log")],
        version, cpu, scratch, "one process (master_process off), access log off"), None


def raise_nofile(need):
    """Raises this process's descriptor soft limit (children inherit it) to
    the hard limit when it is below need; returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need and \
            (hard == resource.RLIM_INFINITY or hard > soft):
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (need if hard == resource.RLIM_INFINITY else hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(out):
    """requests, seconds, rps, p99 (ms) and errors from wrk --latency's text."""
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
    if not (m and rps and p99):
        raise ServerError("unexpected wrk output: " + " | ".join(out.strip().splitlines()[-4:]))
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    return {"requests": int(m.group(1)), "seconds": float(m.group(2)) * WRK_UNITS[m.group(3)] / 1e3,
            "rps": float(rps.group(1)), "p99_ms": float(p99.group(1)) * WRK_UNITS[p99.group(2)],
            "errors": errors}


def run_wrk(load_cpu, port, conns, seconds, path, depth):
    """One bounded wrk run; returns its parsed figures, wrk's own CPU
    seconds and the exact command."""
    url = f"http://{HOST}:{port}"
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", f"--timeout={WRK_TIMEOUT}",
           "--latency"]
    if depth > 1:
        cmd += ["-s", os.path.join(MACRO_DIR, "pipeline.lua"), url, "--", str(depth), path]
    else:
        cmd += [url + path]
    cmd = pinned(load_cpu, cmd)
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.monotonic() + seconds + WRK_SLACK_S
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    raise ServerError(f"wrk still running {WRK_SLACK_S:.0f} s after its "
                                     "duration; killed")
                time.sleep(0.05)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise ServerError(f"wrk exited with status {proc.returncode}: "
                         + " | ".join(text.strip().splitlines()[-3:]))
    res = parse_wrk(text)
    res["wrk_cpu_s"] = usage.ru_utime + usage.ru_stime
    res["command"] = " ".join(shlex.quote(rel(a) if a.startswith(ROOT) else a) for a in cmd)
    return res


class PeakSampler:
    """Samples a server's VmRSS and thread count every SAMPLE_EVERY_S on a
    thread while a load runs; keeps the peaks."""

    def __init__(self, pid):
        self.pid = pid
        self.rss = 0
        self.threads = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def sample(self):
        try:
            self.rss = max(self.rss, status_field(self.pid, "VmRSS"))
            self.threads = max(self.threads, status_field(self.pid, "Threads"))
        except ServerError:
            pass  # gone: measure() says so

    def loop(self):
        while not self.done.wait(SAMPLE_EVERY_S):
            self.sample()

    def __enter__(self):
        self.sample()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def measure(srv, load_cpu, conns, seconds, path, depth):
    """One wrk run against srv with the server's CPU time around it, and its
    peak RSS and threads during the run."""
    if not srv.alive():
        raise ServerError(f"{srv.impl} is not running ({srv.exit_status()}): {srv.log_tail()}")
    cpu0 = cpu_seconds(srv.proc.pid)
    with PeakSampler(srv.proc.pid) as peak:
        res = run_wrk(load_cpu, srv.port, conns, seconds, path, depth)
    cpu = cpu_seconds(srv.proc.pid) - cpu0
    res["server_rss_bytes"] = peak.rss
    res["server_threads_peak"] = peak.threads
    if not srv.alive():
        raise ServerError(f"{srv.impl} exited during the run ({srv.exit_status()}): "
                         + srv.log_tail())
    if depth > 1:
        # wrk 4.1 corrects for coordinated omission with an interval of
        # runtime / (responses per connection), 1/depth of the real round
        # trip when pipelining: the synthetic samples land below the minimum
        # and its percentiles read 0 or are skewed. Not recorded.
        res["p99_ms"] = None
    res["server_cpu_s"] = cpu
    res["rps_per_cpu_s"] = res["requests"] / cpu if cpu > 0 else None
    res["server_cpu_util"] = cpu / res["seconds"] if res["seconds"] > 0 else None
    res["wrk_cpu_util"] = res["wrk_cpu_s"] / res["seconds"] if res["seconds"] > 0 else None
    return res
