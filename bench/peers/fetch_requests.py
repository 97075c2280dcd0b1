"""Python requests as the fetch suite's sequential peer: N GETs of URL one
after the other on one requests.Session (keep-alive), as a plain script
does. Run with Debian's python3 (python3-requests):

    /usr/bin/python3 bench/peers/fetch_requests.py -n N URL

Prints one JSON object, the shape eddy-fetch --json prints: requests,
errors, seconds, rps, latency_ms {p50, p90, p99, max}, plus cpu_s: this
process's utime+stime over the timed part only (the interpreter's start and
imports are not the client's cost per request). A failed request
counts as an error and the run goes on; the exit status is 1 when every
request failed, 2 for bad arguments.
"""
import argparse
import json
import resource
import sys
import time

import requests

TIMEOUT_S = 30.0


def cpu_now():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentiles(times_ms):
    """p50, p90, p99 (nearest rank) and max of times_ms."""
    s = sorted(times_ms)
    if not s:
        return {"p50": None, "p90": None, "p99": None, "max": None}

    def q(f):
        return s[min(len(s) - 1, max(0, int(f * len(s) + 0.5) - 1))]

    return {"p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": s[-1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, required=True)
    ap.add_argument("url")
    args = ap.parse_args()
    if args.n < 1:
        ap.error("-n wants at least 1")
    times, errors = [], 0
    cpu0 = cpu_now()
    t0 = time.monotonic()
    with requests.Session() as session:
        for _ in range(args.n):
            t = time.monotonic()
            try:
                r = session.get(args.url, timeout=TIMEOUT_S)
                r.content  # the whole body, as the other clients read it
                if r.status_code == 200:
                    times.append((time.monotonic() - t) * 1e3)
                else:
                    errors += 1
            except requests.RequestException:
                errors += 1
    seconds = time.monotonic() - t0
    cpu_s = cpu_now() - cpu0
    json.dump({"requests": args.n, "errors": errors, "seconds": seconds,
               "rps": args.n / seconds if seconds > 0 else None,
               "latency_ms": percentiles(times), "cpu_s": cpu_s}, sys.stdout)
    print()
    return 1 if errors == args.n else 0


if __name__ == "__main__":
    sys.exit(main())
