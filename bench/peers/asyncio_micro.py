"""asyncio (and asyncio on uvloop) as the micro suite's peer: the same
operations as eddy's BM_spawn_join, BM_lock_handoff, BM_queue_pingpong and
BM_gather_100k, timed the same way. Run with Debian's python3, which has
python3-uvloop:

    /usr/bin/python3 bench/peers/asyncio_micro.py [--loop asyncio|uvloop]
        [--case CASE ...] [--repetitions N] [--min-time S] [--progress]

It prints Google Benchmark's JSON shape on stdout (a "benchmarks" list of
iteration runs, per-op times in ns, and "eddy_meta:<name>" context entries
naming case and impl), so bench/run reads it with the code that reads
build/bench/micro. Names are BM_<case>_asyncio or BM_<case>_asyncio_uvloop;
impl is asyncio or asyncio-uvloop. --progress prints "eddy-bench: start
<name>" on stderr as each benchmark starts, as the binary does.

Timing, as in build/bench/micro: each repetition runs in a fresh event loop,
and only the loop of n operations is timed (wall clock and process CPU
time), not loop creation or the setup of the tasks taking part. n is chosen
once per case, growing until one run lasts --min-time, then each of the
--repetitions runs performs n operations. The garbage collector stays on, as
in a program. Cases (one operation each):

  spawn_join      t = asyncio.create_task(ret(1)); await t
  lock_handoff    one hand-off of an asyncio.Lock between two tasks (the
                  holder releases to the parked other task and waits on its
                  own acquire; asyncio.Lock does not let the releaser barge)
  queue_pingpong  one round trip: A puts into q1, B gets it and puts it into
                  q2, A gets it (unbounded asyncio.Queue, await put/get)
  gather_100k     await asyncio.gather(*(ret(i) for i in range(100000)));
                  the coroutine objects are made inside the timed region,
                  as eddy's spawn makes its coroutines
"""
import argparse
import asyncio
import json
import platform
import sys
import time

GATHER_TASKS = 100000


async def ret(x):
    return x


async def spawn_join(n):
    create_task = asyncio.create_task
    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
    for _ in range(n):
        t = create_task(ret(1))
        if await t != 1:
            raise RuntimeError("spawn_join: wrong result")
    return time.perf_counter_ns() - t0, time.process_time_ns() - c0


class Handoff:
    def __init__(self):
        self.lock = asyncio.Lock()
        self.stop = False


async def handoff_other(h):
    while True:
        await h.lock.acquire()
        stop = h.stop
        h.lock.release()
        if stop:
            return


# Each iteration of the main loop is two hand-offs (to the other task and
# back), so it runs n/2 times, like eddy's.
async def lock_handoff(n):
    h = Handoff()
    await h.lock.acquire()
    other = asyncio.create_task(handoff_other(h))
    await asyncio.sleep(0)  # the other task parks on the lock
    lock = h.lock
    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
    for _ in range(n // 2):
        lock.release()
        await lock.acquire()
    elapsed = time.perf_counter_ns() - t0, time.process_time_ns() - c0
    h.stop = True
    lock.release()
    await other
    return elapsed


async def pong(q1, q2):
    while True:
        item = await q1.get()
        if item is None:
            return
        await q2.put(item)


async def queue_pingpong(n):
    q1, q2 = asyncio.Queue(), asyncio.Queue()
    other = asyncio.create_task(pong(q1, q2))
    await asyncio.sleep(0)  # B parks on q1
    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
    for i in range(n):
        await q1.put(i)
        if await q2.get() != i:
            raise RuntimeError("queue_pingpong: wrong item")
    elapsed = time.perf_counter_ns() - t0, time.process_time_ns() - c0
    await q1.put(None)
    await other
    return elapsed


async def gather_100k(n):
    gather = asyncio.gather
    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
    for _ in range(n):
        results = await gather(*(ret(i) for i in range(GATHER_TASKS)))
    elapsed = time.perf_counter_ns() - t0, time.process_time_ns() - c0
    if len(results) != GATHER_TASKS or results[-1] != GATHER_TASKS - 1:
        raise RuntimeError("gather_100k: wrong results")
    return elapsed


CASES = {
    "spawn_join": spawn_join,
    "lock_handoff": lock_handoff,
    "queue_pingpong": queue_pingpong,
    "gather_100k": gather_100k,
}


def loop_factory(name):
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_once(factory, fn, n):
    """(wall ns, cpu ns) of n operations, in a fresh event loop."""
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(fn(n))


def calibrate(factory, fn, min_time_ns):
    """The operation count whose run lasts at least min_time_ns (as Google
    Benchmark grows its iteration count: at most 10x per step)."""
    n = 1
    while True:
        wall, _ = run_once(factory, fn, n)
        if wall >= min_time_ns or n >= 10**9:
            return n
        grow = 1.4 * min_time_ns / max(wall, 1)
        n = max(n + 1, int(n * min(grow, 10.0)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    ap.add_argument("--case", action="append", choices=list(CASES),
                    help="case to run (repeatable; default: all)")
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.5,
                    help="seconds one repetition lasts at least (default 0.5)")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    if args.repetitions < 1 or args.min_time <= 0:
        ap.error("--repetitions must be >= 1 and --min-time > 0")
    factory = loop_factory(args.loop)
    impl = "asyncio" if args.loop == "asyncio" else "asyncio-uvloop"
    suffix = "_asyncio" if args.loop == "asyncio" else "_asyncio_uvloop"

    context = {"python": sys.executable, "python_version": platform.python_version(),
               "event_loop": args.loop}
    if args.loop == "uvloop":
        import uvloop
        context["uvloop_version"] = uvloop.__version__
    benchmarks = []
    for case in args.case or list(CASES):
        name = "BM_" + case + suffix
        context["eddy_meta:" + name] = f"case={case};impl={impl}"
        if args.progress:
            print("eddy-bench: start " + name, file=sys.stderr, flush=True)
        fn = CASES[case]
        n = calibrate(factory, fn, int(args.min_time * 1e9))
        for rep in range(args.repetitions):
            wall, cpu = run_once(factory, fn, n)
            benchmarks.append({
                "name": name, "run_name": name, "run_type": "iteration",
                "repetitions": args.repetitions, "repetition_index": rep, "threads": 1,
                "iterations": n, "real_time": wall / n, "cpu_time": cpu / n,
                "time_unit": "ns",
            })
    json.dump({"context": context, "benchmarks": benchmarks}, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
