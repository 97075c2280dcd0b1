/*
 * bench/micro/gbench.cc: the C++ glue behind bench/micro/gbench.h, and the
 * main() of build/bench/micro.
 *
 * Registration: the EDDY_BENCH constructors append to a plain static array
 * (zero-initialised, so it is usable before any C++ static constructor has
 * run). main() sorts it by (file, line) and registers each entry with
 * Google Benchmark, one instance per argument.
 *
 * Timing: for each run the glue calls State::KeepRunningBatch(max_iterations)
 * once (this starts the clock and grants every iteration at once), calls the
 * C function, which loops max_iterations times, then calls KeepRunningBatch
 * again, which stops the clock and ends the run. Pause/resume map onto
 * PauseTiming/ResumeTiming, made idempotent and safe after an error, since
 * Google Benchmark CHECK-fails on an unbalanced call.
 *
 * Refusal: benchmarks run only from a release build (STYLE.md section 10).
 * A binary compiled with EDDY_DEBUG_BUILD, a sanitizer or without
 * optimisation (known from predefined macros) refuses at start, and so does
 * one that sits in a debug, sanitizer or valgrind variant directory
 * (build/debug..., build/asan..., build/tsan..., build/valgrind...).
 * Running a release binary under valgrind (perf/ does, for instruction
 * counts) is allowed.
 */
#include "bench/micro/gbench.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#include <eddy/alloc.h>

#if defined(EDDY_DEBUG_BUILD)
#define EDDY_BENCH_REFUSE "a debug build (EDDY_DEBUG_BUILD)"
#elif defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define EDDY_BENCH_REFUSE "a sanitizer build"
#elif !defined(__OPTIMIZE__)
#define EDDY_BENCH_REFUSE "an unoptimised build"
#endif

struct eddy_bench {
    benchmark::State *st;
    int64_t arg;
    bool paused;
};

namespace {

constexpr size_t kMaxDefs = 256;
const eddy_bench_def *g_defs[kMaxDefs];
size_t g_ndefs;
bool g_overflow;
bool g_progress;
uint64_t g_forced_iterations;
std::string g_last_started;

void run_one(benchmark::State &st, const eddy_bench_def *def, const std::string &name, int64_t arg)
{
    if (g_progress && name != g_last_started) {
        std::fprintf(stderr, "eddy-bench: start %s\n", name.c_str());
        std::fflush(stderr);
        g_last_started = name;
    }
    eddy_bench b{&st, arg, false};
    while (st.KeepRunningBatch(st.max_iterations)) {
        def->fn(&b);
        // KeepRunningBatch ends the run with PauseTiming, which needs a
        // running clock.
        if (b.paused && !st.error_occurred())
            st.ResumeTiming();
        b.paused = false;
    }
}

std::string meta_of(const eddy_bench_def *def)
{
    std::string case_name = def->name;
    if (def->opts.case_name)
        case_name = def->opts.case_name;
    else if (case_name.rfind("BM_", 0) == 0)
        case_name.erase(0, 3);
    std::string impl = def->opts.impl ? def->opts.impl : "eddy";
    return "case=" + case_name + ";impl=" + impl;
}

void register_all()
{
    std::stable_sort(g_defs, g_defs + g_ndefs,
                     [](const eddy_bench_def *a, const eddy_bench_def *b) {
                         int c = std::strcmp(a->file, b->file);
                         return c != 0 ? c < 0 : a->line < b->line;
                     });
    for (size_t i = 0; i < g_ndefs; i++) {
        const eddy_bench_def *def = g_defs[i];
        unsigned nargs = def->opts.nargs;
        if (nargs > EDDY_BENCH_MAX_ARGS)
            nargs = EDDY_BENCH_MAX_ARGS;
        // One Google Benchmark family per definition; each argument is one
        // instance. The argument travels in the lambda rather than through
        // State::range so that families without arguments stay plain.
        for (unsigned k = 0; k < (nargs ? nargs : 1); k++) {
            int64_t arg = nargs ? def->opts.args[k] : 0;
            std::string name = def->name;
            if (nargs)
                name += "/" + std::to_string(arg);
            auto *bm =
                benchmark::RegisterBenchmark(name.c_str(), [def, name, arg](benchmark::State &st) {
                    run_one(st, def, name, arg);
                });
            if (def->opts.iterations)
                bm->Iterations(static_cast<benchmark::IterationCount>(def->opts.iterations));
            else if (g_forced_iterations)
                bm->Iterations(static_cast<benchmark::IterationCount>(g_forced_iterations));
        }
        benchmark::AddCustomContext("eddy_meta:" + std::string(def->name), meta_of(def));
    }
}

/* The variant directory a binary at `path` was built in, if it is one that
 * must not run benchmarks: build/<variant>[-alloc]/bench/micro. */
const char *refused_variant(const std::string &path)
{
    static const char *const bad[] = {"debug", "asan", "tsan", "valgrind"};
    size_t at = 0;
    while ((at = path.find("/build/", at)) != std::string::npos) {
        at += 7;
        for (const char *v : bad)
            if (path.compare(at, std::strlen(v), v) == 0)
                return v;
    }
    return nullptr;
}

bool take_flag(const char *arg, const char *flag, const char **value)
{
    size_t n = std::strlen(flag);
    if (std::strncmp(arg, flag, n) != 0)
        return false;
    if (arg[n] == '\0') {
        *value = nullptr;
        return true;
    }
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return true;
    }
    return false;
}

/* Removes --eddy_* flags from argv; returns false on a malformed one. */
bool parse_eddy_flags(int *argc, char **argv)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *v;
        if (take_flag(argv[i], "--eddy_progress", &v)) {
            g_progress = true;
        } else if (take_flag(argv[i], "--eddy_iterations", &v)) {
            char *end = nullptr;
            errno = 0;
            unsigned long long n = v ? std::strtoull(v, &end, 10) : 0;
            if (!v || *end || errno || n == 0) {
                std::fprintf(stderr, "micro: --eddy_iterations needs a positive count\n");
                return false;
            }
            g_forced_iterations = n;
        } else {
            argv[out++] = argv[i];
        }
    }
    argv[out] = nullptr;
    *argc = out;
    return true;
}

} // namespace

extern "C" {

void eddy_bench_register(const eddy_bench_def *def)
{
    if (g_ndefs == kMaxDefs) {
        g_overflow = true;
        return;
    }
    g_defs[g_ndefs++] = def;
}

uint64_t eddy_bench_iterations(const eddy_bench *b)
{
    return static_cast<uint64_t>(b->st->max_iterations);
}

int64_t eddy_bench_arg(const eddy_bench *b)
{
    return b->arg;
}

void eddy_bench_pause(eddy_bench *b)
{
    if (b->paused || b->st->error_occurred())
        return;
    b->st->PauseTiming();
    b->paused = true;
}

void eddy_bench_resume(eddy_bench *b)
{
    if (!b->paused || b->st->error_occurred())
        return;
    b->st->ResumeTiming();
    b->paused = false;
}

void eddy_bench_counter(eddy_bench *b, const char *name, double value)
{
    b->st->counters[name] = benchmark::Counter(value);
}

void eddy_bench_rate_counter(eddy_bench *b, const char *name, double value)
{
    b->st->counters[name] = benchmark::Counter(value, benchmark::Counter::kIsRate);
}

void eddy_bench_items_processed(eddy_bench *b, int64_t items)
{
    b->st->SetItemsProcessed(items);
}

void eddy_bench_fail(eddy_bench *b, const char *msg)
{
    if (!b->st->error_occurred())
        b->st->SkipWithError(msg);
}

bool eddy_bench_failed(const eddy_bench *b)
{
    return b->st->error_occurred();
}

} // extern "C"

int main(int argc, char **argv)
{
#ifdef EDDY_BENCH_REFUSE
    std::fprintf(stderr,
                 "micro: refusing to run benchmarks from %s; use the release build "
                 "(make bench-build)\n",
                 EDDY_BENCH_REFUSE);
    return 2;
#endif
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0) {
        exe[len] = '\0';
        if (const char *v = refused_variant(exe)) {
            std::fprintf(stderr,
                         "micro: refusing to run benchmarks from a %s build (%s); use the "
                         "release build (make bench-build)\n",
                         v, exe);
            return 2;
        }
    }
    if (g_overflow) {
        std::fprintf(stderr, "micro: more than %zu benchmarks registered; raise kMaxDefs\n",
                     kMaxDefs);
        return 2;
    }
    if (!parse_eddy_flags(&argc, argv))
        return 2;
    // Line-buffered stdout, so a reader of the JSON sees each run as it ends.
    std::setvbuf(stdout, nullptr, _IOLBF, 0);

    register_all();
    benchmark::AddCustomContext("eddy_alloc_backend", eddy_alloc_backend());
#ifdef NDEBUG
    benchmark::AddCustomContext("eddy_ndebug", "1");
#else
    benchmark::AddCustomContext("eddy_ndebug", "0");
#endif
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
