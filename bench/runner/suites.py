"""bench/runner/suites.py: the registry, suite name -> module.

Each module has run(ctx) -> SuiteResult and may have summary(result),
which prints the figures after the files are written. A name mapped to
None is a suite that is planned but not written yet (bench/run reports it
as missing). alloc runs micro and serve again per allocator, so it comes
last. Adding a suite means writing bench/runner/NAME.py and putting it
here.
"""
from . import alloc, cpu, db, fetch, files, micro, serve

SUITES = {
    "micro": micro,
    "fetch": fetch,
    "serve": serve,
    "files": files,
    "cpu": cpu,
    "db": db,
    "alloc": alloc,
}
