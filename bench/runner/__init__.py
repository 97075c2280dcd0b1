"""bench/runner: the suites and plumbing of bench/run (see bench/run)."""
