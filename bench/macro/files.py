#!/usr/bin/env python3
"""bench/macro/files.py: the Python side of the `files` suite of bench/run.

    files.py --impl python|aiofiles --case big --path FILE --chunk BYTES
    files.py --impl python|aiofiles --case small --path DIR --files N

The same work as build/bench/files (bench/macro/files.c), written the way a
Python program would:
  python   big: open(path, "rb") and f.read(chunk) until it returns b"";
           small: open(p, "rb").read() for each file in turn.
  aiofiles big: async with aiofiles.open(path, "rb") as f, await f.read(chunk)
           until b"" (each read is one run_in_executor round trip);
           small: asyncio.gather of one coroutine per file doing
           async with aiofiles.open(p, "rb") as f: await f.read()
           (the default executor: min(32, cpus + 4) threads).

As the C driver does, every impl does the work twice in one process and
times the second pass with time.perf_counter (for aiofiles both passes run
in one asyncio.run, so the event loop and the executor's threads are warm).
Prints `bytes=B seconds=S`. Exits non-zero when the bytes read differ from
the files' sizes.
"""
import argparse
import asyncio
import os
import sys
import time


def big_python(path, chunk):
    total = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            total += len(b)
    return total


def small_python(paths):
    total = 0
    for p in paths:
        with open(p, "rb") as f:
            total += len(f.read())
    return total


async def big_aiofiles(path, chunk):
    import aiofiles
    total = 0
    async with aiofiles.open(path, "rb") as f:
        while True:
            b = await f.read(chunk)
            if not b:
                break
            total += len(b)
    return total


async def read_one(p):
    import aiofiles
    async with aiofiles.open(p, "rb") as f:
        return len(await f.read())


async def small_aiofiles(paths):
    sizes = await asyncio.gather(*(read_one(p) for p in paths))
    return sum(sizes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", required=True, choices=["python", "aiofiles"])
    ap.add_argument("--case", required=True, choices=["big", "small"])
    ap.add_argument("--path", required=True)
    ap.add_argument("--chunk", type=int, default=1 << 20)
    ap.add_argument("--files", type=int, default=1000)
    a = ap.parse_args()
    if a.impl == "aiofiles":
        import aiofiles  # noqa: F401  (fail here, before timing, when missing)
    if a.case == "big":
        want = os.stat(a.path).st_size
    else:
        paths = [os.path.join(a.path, str(i)) for i in range(a.files)]
        want = sum(os.stat(p).st_size for p in paths)

    if a.impl == "python":
        work = (lambda: big_python(a.path, a.chunk)) if a.case == "big" else \
            (lambda: small_python(paths))
        work()
        t0 = time.perf_counter()
        total = work()
        seconds = time.perf_counter() - t0
    else:
        async def twice():
            work = (lambda: big_aiofiles(a.path, a.chunk)) if a.case == "big" else \
                (lambda: small_aiofiles(paths))
            await work()
            t0 = time.perf_counter()
            n = await work()
            return n, time.perf_counter() - t0
        total, seconds = asyncio.run(twice())

    if total != want:
        print(f"files.py: read {total} bytes, the files hold {want}", file=sys.stderr)
        return 1
    print(f"bytes={total} seconds={seconds:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
