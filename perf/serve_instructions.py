#!/usr/bin/env python3
"""Instructions per plaintext request served by eddy-httpd, under callgrind.

Starts build/bin/eddy-httpd under `valgrind --tool=callgrind`, sends N
GET /plaintext requests on one keep-alive connection (one at a time, or
DEPTH per write when pipelined), checks every response, stops the server
with SIGTERM (it exits 0 and callgrind writes its totals), and does this
for two N: (I(n2) - I(n1)) / (n2 - n1) leaves the cost of one request
served, start-up, accept and shutdown cancelling out.

The client waits GAP_S before each write so that the server has always
gone back to epoll_wait (its read found the socket empty) when the request
arrives: every request is then the same full round trip (wake, read, parse,
route, respond, write, read until EAGAIN, park). Without the gap, whether
the next request is already there when the server reads again depends on
timing, and the totals varied by 2% between identical runs. What remains
is the Date header, formatted again once per second of run time.

    perf/serve_instructions.py        print the figures
perf/instructions imports measure() and records them in
results/instructions.json beside the core runtime's.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HTTPD = os.path.join(ROOT, "build", "bin", "eddy-httpd")
# name: (requests per write, n1, n2), n counting requests.
MEASURES = {"serve_plaintext": (1, 1000, 3000),
            "serve_plaintext_pipelined16": (16, 1024, 4096)}
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60
EXPECTED_BODY = b"Hello, World!"
# Longer than the server takes to answer one batch under callgrind (about
# 0.2 ms), so that it is parked in epoll_wait when the next one arrives.
GAP_S = 0.002


class MeasureError(Exception):
    pass


def drive(port, n, depth):
    """Sends n requests, depth per write, and checks the n responses."""
    request = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        size = None  # every response has the same length (the Date is fixed-width)
        sent = 0
        while sent < n:
            k = min(depth, n - sent)
            if sent:
                time.sleep(GAP_S)
            s.sendall(request * k)
            sent += k
            want = None
            while want is None or len(buf) < want:
                data = s.recv(65536)
                if not data:
                    raise MeasureError(f"eddy-httpd closed the connection after "
                                       f"{sent - k} responses")
                buf += data
                if size is None and b"\r\n\r\n" in buf:
                    size = buf.index(b"\r\n\r\n") + 4 + len(EXPECTED_BODY)
                if size is not None:
                    want = k * size
            for i in range(k):
                one = buf[i * size:(i + 1) * size]
                if not one.startswith(b"HTTP/1.1 200 ") or not one.endswith(EXPECTED_BODY):
                    raise MeasureError(f"unexpected response: {one[:100]!r}")
            buf = buf[k * size:]
        if buf:
            raise MeasureError(f"{len(buf)} bytes beyond the last response")


def instructions(n, depth, httpd=HTTPD):
    """Total instructions of eddy-httpd serving n requests, depth per write."""
    if not os.access(httpd, os.X_OK):
        raise MeasureError(f"{os.path.relpath(httpd, ROOT)} is missing: build it with `make tools`")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        log = os.path.join(d, "valgrind.log")
        with open(log, "w") as err:
            proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                                     httpd, "--port", "0", "--threads", "1"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=err, text=True)
        try:
            line = proc.stdout.readline()  # "eddy-httpd listening on 127.0.0.1:PORT (1 thread)"
            words = line.split()
            if len(words) < 4 or words[1] != "listening":
                raise MeasureError("eddy-httpd under valgrind did not start: " + tail(log))
            port = int(words[3].rsplit(":", 1)[1])
            drive(port, n, depth)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(STOP_TIMEOUT_S)
            if rc != 0:
                raise MeasureError(f"eddy-httpd exited with {rc} on SIGTERM: " + tail(log))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        try:
            with open(out) as f:
                for line in f:
                    if line.startswith("summary:") or line.startswith("totals:"):
                        return int(line.split()[1])
        except OSError:
            pass
        raise MeasureError("no totals in callgrind's output: " + tail(log))


def tail(path, n=5):
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(lines[-n:]) or "(no log)"


def per_request(depth, n1, n2):
    return (instructions(n2, depth) - instructions(n1, depth)) / (n2 - n1)


def measure(show=print):
    """{name: instructions per request} for every entry of MEASURES."""
    figures = {}
    for name, (depth, n1, n2) in MEASURES.items():
        figures[name] = round(per_request(depth, n1, n2), 1)
        show(f"{name:18s} {figures[name]:8.1f} instructions/request")
    return figures


def main():
    try:
        measure(lambda s: print(s, flush=True))
    except (MeasureError, OSError, subprocess.SubprocessError) as e:
        print(f"serve_instructions: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
