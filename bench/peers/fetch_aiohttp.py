"""aiohttp as the fetch suite's async peer: N GETs of URL with C of them
in flight at once (C >= N: asyncio.gather of all N, the guides' "fetch many
URLs"), on one ClientSession whose connector allows C connections. Run with
Debian's python3 (python3-aiohttp, python3-uvloop for --uvloop):

    /usr/bin/python3 bench/peers/fetch_aiohttp.py -n N -c C [--uvloop] URL

C coroutines each take the next request until N were sent. Prints one JSON
object, the shape eddy-fetch --json prints: requests, errors, seconds, rps,
latency_ms {p50, p90, p99, max}. A failed request counts as an error and the
run goes on; the exit status is 1 when every request failed.
"""
import argparse
import asyncio
import json
import resource
import sys
import time

import aiohttp

TIMEOUT_S = 60.0


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


async def fetch_all(url, n, c):
    times, errors, left = [], 0, n
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=c, limit_per_host=c)

    async def worker(session):
        nonlocal errors, left
        while left > 0:
            left -= 1
            t = time.monotonic()
            try:
                async with session.get(url) as r:
                    await r.read()
                    if r.status == 200:
                        times.append((time.monotonic() - t) * 1e3)
                    else:
                        errors += 1
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                errors += 1

    t0 = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(min(c, n))))
    return times, errors, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, required=True)
    ap.add_argument("-c", type=int, required=True)
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("url")
    args = ap.parse_args()
    if args.n < 1 or args.c < 1:
        ap.error("-n and -c want at least 1")
    if args.uvloop:
        import uvloop
        uvloop.install()
    cpu0 = cpu_now()
    times, errors, seconds = asyncio.run(fetch_all(args.url, args.n, args.c))
    cpu_s = cpu_now() - cpu0
    json.dump({"requests": args.n, "errors": errors, "seconds": seconds,
               "rps": args.n / seconds if seconds > 0 else None,
               "latency_ms": percentiles(times), "cpu_s": cpu_s}, sys.stdout)
    print()
    return 1 if errors == args.n else 0


if __name__ == "__main__":
    sys.exit(main())
