/*
 * bench/micro/gbench.h: a small C API over Google Benchmark, so that eddy's
 * microbenchmarks are written in C. The only C++ is bench/micro/gbench.cc
 * (the glue and main()) and the peer benchmarks that need a C++ library.
 *
 * A benchmark is a C function that runs its own loop:
 *
 *     static void BM_switch(struct eddy_bench *b)
 *     {
 *         eddy_bench_pause(b);
 *         ... setup, not timed ...
 *         eddy_bench_resume(b);
 *         uint64_t n = eddy_bench_iterations(b);
 *         for (uint64_t i = 0; i < n; i++)
 *             op();
 *         eddy_bench_pause(b);
 *         ... teardown, not timed ...
 *     }
 *     EDDY_BENCH(BM_switch);
 *
 * Why this shape: the loop stays in C, so an iteration costs the operation
 * and a loop counter, never a call across the C/C++ boundary. The glue
 * starts the timer, calls the function once with the iteration count that
 * Google Benchmark chose (State::KeepRunningBatch with max_iterations), and
 * stops the timer when it returns. The whole call is timed except what is
 * bracketed by pause/resume; pause and resume read clocks, so they belong
 * outside the loop.
 *
 * Registration: EDDY_BENCH / EDDY_BENCH_OPTS register at load time through a
 * constructor function. main() sorts what was registered by source file
 * name, then line, before handing it to Google Benchmark, so the order of
 * runs and output does not depend on link order or constructor order.
 *
 * Results metadata: each benchmark names the "case" it measures and the
 * "impl" measured (columns of results/SUITE.csv, DESIGN.md). By default the
 * case is the name without "BM_" and the impl is "eddy"; a peer sets both,
 * for example BM_switch_boost is case "switch", impl "boost". The binary
 * reports them in its JSON context as "eddy_meta:<name>" =
 * "case=...;impl=...", which bench/run reads.
 *
 * Extra flags of build/bench/micro (removed before Google Benchmark parses
 * the rest): --eddy_progress prints "eddy-bench: start <name>" on stderr as
 * each benchmark starts; --eddy_iterations=N forces N iterations on every
 * benchmark that does not fix its own count. Under callgrind, two runs
 * with two counts give exact instructions per operation by difference:
 *     valgrind --tool=callgrind build/bench/micro
 *         --benchmark_filter='^BM_switch(/|$)' --eddy_iterations=100000
 * then again with 200000; the result is (I2 - I1) / 100000.
 *
 * Thread rules: everything here runs on the benchmark thread only.
 */
#ifndef EDDY_BENCH_GBENCH_H
#define EDDY_BENCH_GBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One run of one benchmark: a Google Benchmark State behind an opaque
 * pointer. Valid only during the call of the benchmark function. */
struct eddy_bench;

typedef void eddy_bench_fn(struct eddy_bench *b);

#define EDDY_BENCH_MAX_ARGS 8

struct eddy_bench_opts {
    uint64_t iterations;               /* 0: Google Benchmark picks; N: exactly N per run */
    int64_t args[EDDY_BENCH_MAX_ARGS]; /* one instance per value: name/arg */
    unsigned nargs;                    /* how many of args are used */
    const char *case_name;             /* results "case"; NULL: the name without "BM_" */
    const char *impl;                  /* results "impl"; NULL: "eddy" */
};

/* What the registration macros build. Retained: it must be static. */
struct eddy_bench_def {
    const char *name;
    eddy_bench_fn *fn;
    struct eddy_bench_opts opts;
    const char *file;
    int line;
};

/* Queues def for main(). Called from constructors, before main.
 * def: retained for the life of the process. */
void eddy_bench_register(const struct eddy_bench_def *def);

/* The number of iterations this run must perform (> 0). */
uint64_t eddy_bench_iterations(const struct eddy_bench *b);

/* The argument of this instance (opts.args[i]); 0 when it has none. */
int64_t eddy_bench_arg(const struct eddy_bench *b);

/* Stops / restarts the clock. Idempotent, and no-ops after an error. Each
 * reads the wall and CPU clocks: call them outside the timed loop. If the
 * function returns while paused, the glue resumes the clock for it. */
void eddy_bench_pause(struct eddy_bench *b);
void eddy_bench_resume(struct eddy_bench *b);

/* Sets a user counter reported as is (for example rss_bytes_per_coro).
 * name: borrowed (copied). */
void eddy_bench_counter(struct eddy_bench *b, const char *name, double value);
/* Sets a user counter reported divided by the run's CPU time (per second). */
void eddy_bench_rate_counter(struct eddy_bench *b, const char *name, double value);
/* Items handled by the whole run; reported as items_per_second (CPU time).
 * For benchmarks where one iteration handles many items. */
void eddy_bench_items_processed(struct eddy_bench *b, int64_t items);

/* Marks the run failed with msg (borrowed, copied); the function should
 * return soon after. The run is reported with the error, not a time. */
void eddy_bench_fail(struct eddy_bench *b, const char *msg);
bool eddy_bench_failed(const struct eddy_bench *b);

/* Keeps the compiler from deleting a computation whose result is unused:
 * p is treated as escaping into unknown code that may read all memory. */
static inline void eddy_bench_escape(const void *p)
{
    __asm__ volatile("" : : "g"(p) : "memory");
}

/* Forces pending stores to memory (a compiler barrier, no instruction). */
static inline void eddy_bench_clobber(void)
{
    __asm__ volatile("" : : : "memory");
}

#ifdef __cplusplus
#define EDDY__BENCH_END(fn) static_assert(sizeof(#fn) > 1, #fn)
#else
#define EDDY__BENCH_END(fn) _Static_assert(sizeof(#fn) > 1, #fn)
#endif

/*
 * Registers fn (a static function of type eddy_bench_fn, defined before or
 * after the macro) with options, as designated initializers of
 * struct eddy_bench_opts:
 *     EDDY_BENCH_OPTS(BM_suspended_1m, .iterations = 1);
 *     EDDY_BENCH_OPTS(BM_malloc_free, .args = {65536}, .nargs = 1,
 *                     .case_name = "stack_alloc_free", .impl = "malloc");
 * In C++ files only EDDY_BENCH and initializers in declaration order work
 * (designated initializers are a GNU extension before C++20).
 */
#define EDDY_BENCH_OPTS(fn, ...)                                                                   \
    static eddy_bench_fn fn;                                                                       \
    __attribute__((constructor)) static void eddy__bench_register_##fn(void)                       \
    {                                                                                              \
        static const struct eddy_bench_def def = {#fn, fn, {__VA_ARGS__}, __FILE__, __LINE__};     \
        eddy_bench_register(&def);                                                                 \
    }                                                                                              \
    EDDY__BENCH_END(fn)

/* Registers fn with default options. */
#define EDDY_BENCH(fn) EDDY_BENCH_OPTS(fn, .iterations = 0)

#ifdef __cplusplus
}
#endif
#endif
