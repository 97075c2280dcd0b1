#!/usr/bin/env python3
"""bench/macro/idle_holder.py: opens N keep-alive connections to a server,
sends one request on each and reads its response (so the server has set up
whatever it keeps per live connection), then holds them all idle until its
stdin closes or gets a line. Used by bench/run's serve suite to measure a
server's memory per idle connection while wrk loads it.

    idle_holder.py HOST PORT N [PATH]

Protocol on stdout, one line each:
    ready N SECONDS     all N connections answered 200 and are idle
    error MESSAGE       could not get there (the exit status is then 1)
and, after stdin has closed or sent a line:
    open K              how many of the N were still open (not closed by
                        the server) when it was told to stop

Connects at most MAX_CONNECTING at a time so that a listen backlog of 128
(Python's asyncio default) does not overflow into SYN retransmits. Raises
RLIMIT_NOFILE's soft limit towards the hard one; needs N + 16 descriptors.
Only the standard library; runs with any python3.
"""
import errno
import os
import resource
import selectors
import socket
import sys
import time

MAX_CONNECTING = 200
TIMEOUT_S = 60.0


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise RuntimeError(f"RLIMIT_NOFILE hard limit {hard} < {need} descriptors needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def response_done(buf):
    """True once buf holds one complete response with a Content-Length."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = None
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise RuntimeError("response without Content-Length: %r" % buf[:200])
    return len(buf) >= end + 4 + length


def open_all(host, port, n, path):
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    socks, bufs = [], {}
    pending = 0  # connecting or waiting for the response
    started = 0
    done = 0
    deadline = time.monotonic() + TIMEOUT_S
    while done < n:
        while started < n and pending < MAX_CONNECTING:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rc = s.connect_ex((host, port))
            if rc not in (0, errno.EINPROGRESS):
                raise RuntimeError(f"connect #{started}: {os.strerror(rc)}")
            socks.append(s)
            bufs[s] = b""
            sel.register(s, selectors.EVENT_WRITE, "connecting")
            started += 1
            pending += 1
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out with {done} of {n} connections answered")
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            if key.data == "connecting":
                rc = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if rc != 0:
                    raise RuntimeError(f"connect #{len(socks)}: {os.strerror(rc)}")
                s.send(request)  # a few dozen bytes always fit an empty socket buffer
                sel.modify(s, selectors.EVENT_READ, "reading")
                continue
            data = s.recv(65536)
            if not data:
                raise RuntimeError(f"the server closed a connection before answering "
                                   f"({done} of {n} answered)")
            bufs[s] += data
            if response_done(bufs[s]):
                if not bufs[s].startswith(b"HTTP/1.1 200"):
                    raise RuntimeError("not a 200: %r" % bufs[s][:80])
                sel.unregister(s)
                del bufs[s]
                pending -= 1
                done += 1
    sel.close()
    return socks


def count_open(socks):
    """Connections the server has not closed: not readable, or readable
    with data (which would be a protocol error, counted as open)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    for key, _ in sel.select(timeout=0):
        try:
            if key.fileobj.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except OSError:
            closed += 1
    sel.close()
    return len(socks) - closed


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) == 5 else "/plaintext"
    t0 = time.monotonic()
    try:
        raise_nofile(n + 16)
        socks = open_all(host, port, n, path)
    except (RuntimeError, OSError) as e:
        print(f"error {e}", flush=True)
        return 1
    print(f"ready {n} {time.monotonic() - t0:.2f}", flush=True)
    sys.stdin.readline()
    print(f"open {count_open(socks)}", flush=True)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
