# eddy: the single entry point. `make help` lists the targets.
#
# Variants build into their own directories, so switching never forces a clean:
#   release (default) build/            -O2 -g -DNDEBUG
#   debug             build/debug/      -O0 -g3, poisoning and owner asserts
#   asan              build/asan/       ASan+UBSan, halt on first error
#   tsan              build/tsan/       ThreadSanitizer
#   valgrind          build/valgrind/   -O1 -g, tests run under valgrind
# Sanitizer and valgrind variants use the libc allocator, because jemalloc
# and mimalloc would hide allocations from the tools.

VARIANT ?= release
ALLOC ?= jemalloc
WERROR ?= 0
CC ?= cc
CXX ?= c++

ifneq ($(filter $(VARIANT),asan tsan valgrind),)
  ALLOC := libc
endif

ifeq ($(VARIANT),release)
  BUILD := build$(if $(filter-out jemalloc,$(ALLOC)),/alloc-$(ALLOC))
  OPT := -O2 -g -DNDEBUG
else
  BUILD := build/$(VARIANT)$(if $(filter-out libc,$(ALLOC)),-$(ALLOC))
  ifeq ($(VARIANT),debug)
    OPT := -O0 -g3 -DEDDY_DEBUG_BUILD=1
  else ifeq ($(VARIANT),asan)
    OPT := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all
  else ifeq ($(VARIANT),tsan)
    OPT := -O1 -g -fsanitize=thread
  else ifeq ($(VARIANT),valgrind)
    OPT := -O1 -g
  else
    $(error unknown VARIANT=$(VARIANT): release, debug, asan, tsan, valgrind)
  endif
endif

ARCH ?= $(shell uname -m)
ifeq ($(ARCH),x86_64)
  SWITCH_SRC := coro/switch_x86_64.S
else ifeq ($(ARCH),aarch64)
  SWITCH_SRC := coro/switch_aarch64.S
else
  $(error eddy has a context switch for x86_64 and aarch64, not $(ARCH))
endif

ALLOC_DEF_jemalloc := -DEDDY_ALLOC_JEMALLOC=1
ALLOC_LIB_jemalloc := -ljemalloc
ALLOC_DEF_mimalloc := -DEDDY_ALLOC_MIMALLOC=1
ALLOC_LIB_mimalloc := -lmimalloc
ALLOC_DEF_libc :=
ALLOC_LIB_libc :=
ifeq ($(filter $(ALLOC),jemalloc mimalloc libc),)
  $(error unknown ALLOC=$(ALLOC): jemalloc, mimalloc or libc)
endif

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
        -Wformat=2 -Wundef -Wvla -Wimplicit-fallthrough
ifeq ($(WERROR),1)
  WARN += -Werror
endif
# libpq (db/): Debian's libpq-dev puts libpq-fe.h in /usr/include/postgresql.
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
PQ_LIBS := $(shell pkg-config --libs libpq 2>/dev/null || echo -lpq)
CPPFLAGS_ALL := -D_GNU_SOURCE -Iinclude -I. $(PQ_CFLAGS) $(ALLOC_DEF_$(ALLOC)) $(CPPFLAGS)
CFLAGS_ALL := -std=c11 $(OPT) $(WARN) -fno-omit-frame-pointer -fvisibility=hidden -fPIC \
              -fstack-clash-protection \
              -MMD -MP $(CFLAGS)
CXXFLAGS_ALL := -std=c++17 $(OPT) -Wall -Wextra -fno-omit-frame-pointer -MMD -MP $(CXXFLAGS)
LDLIBS_ALL := $(ALLOC_LIB_$(ALLOC)) $(PQ_LIBS) -lz -lpthread $(LDLIBS)
LDFLAGS_ALL := $(filter -fsanitize=%,$(OPT)) $(LDFLAGS)

LIB_DIRS := alloc coro reactor sync io http db
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)) $(SWITCH_SRC)
LIB_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB_A := $(BUILD)/lib/libeddy.a
LIB_SO := $(BUILD)/lib/libeddy.so

# tests/tsan/ is not Criterion: it builds into a driver of its own (TSAN_BIN).
TEST_SRCS := $(filter-out tests/tsan/%,$(wildcard tests/*/test_*.c)) \
             $(filter-out tests/fuzz/%,$(wildcard tests/support/*.c))
TEST_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(TEST_SRCS))
TEST_BIN := $(BUILD)/tests/eddy-tests

# ---- http parser fuzzing (tests/fuzz/) -------------------------------------------
# The fuzz target is linked into the Criterion binary too: there
# tests/fuzz/test_fuzz_replay.c replays tests/fuzz/corpus and
# tests/fuzz/regression on every `make test` (and asan, valgrind).
# `make fuzz FUZZ_SECONDS=60` builds the same target with clang's libFuzzer
# and ASan+UBSan from the parser's sources alone, and runs it: new inputs go
# to build/fuzz/corpus, a crashing input to build/fuzz/crash-* (copy it into
# tests/fuzz/regression so that every later `make test` replays it).
TEST_SRCS += tests/fuzz/fuzz_http_parse.c
TEST_OBJS += $(BUILD)/obj/tests/fuzz/fuzz_http_parse.c.o
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_BIN := build/fuzz/fuzz_http_parse
FUZZ_SRCS := $(wildcard http/parse*.c http/scan_*.c) tests/fuzz/fuzz_http_parse.c
FUZZ_CFLAGS := -std=c11 -O1 -g -D_GNU_SOURCE -Iinclude -I. -fno-omit-frame-pointer \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
.PHONY: fuzz
$(FUZZ_BIN): $(FUZZ_SRCS) http/internal.h include/eddy/http.h include/eddy/common.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS)
fuzz:
	@scripts/deps.sh fuzz
	$(MAKE) $(FUZZ_BIN)
	@mkdir -p build/fuzz/corpus
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -timeout=10 -artifact_prefix=build/fuzz/ \
	  build/fuzz/corpus tests/fuzz/corpus tests/fuzz/regression
# ---- end of http parser fuzzing ----------------------------------------------------

# The cross-thread cases under ThreadSanitizer, a standalone TAP driver,
# because Criterion cannot start under TSan (Snaipe/Criterion issue #274).
TSAN_SRCS := $(wildcard tests/tsan/*.c)
TSAN_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(TSAN_SRCS))
TSAN_BIN := $(BUILD)/tests/tsan-cross-thread
# A race ends the case's child at once, with a status the driver names.
# known_races.supp lists the races found in eddy and not fixed yet; each
# suppression that matched is printed, so none goes unnoticed.
TSAN_RUN_OPTIONS := halt_on_error=1:exitcode=66:print_suppressions=1 \
                    suppressions=$(CURDIR)/tests/tsan/known_races.supp

BENCH_SRCS := $(wildcard bench/micro/*.c bench/micro/*.cc)
BENCH_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(BENCH_SRCS))
BENCH_BIN := $(BUILD)/bench/micro

PERF_BIN := $(BUILD)/perf/workloads

# The public programs (DESIGN.md): tools/NAME.c becomes build/bin/NAME.
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_BINS := $(patsubst tools/%.c,$(BUILD)/bin/%,$(TOOL_SRCS))

EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRCS))

# A change of flags rebuilds everything in this variant.
STAMP := $(BUILD)/flags.stamp
FLAGS_NOW := $(CC) $(CXX) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(CXXFLAGS_ALL) $(LDFLAGS_ALL) $(LDLIBS_ALL)
$(shell mkdir -p $(BUILD) && { [ -f $(STAMP) ] && [ "$$(cat $(STAMP))" = "$(FLAGS_NOW)" ] || echo "$(FLAGS_NOW)" > $(STAMP); })

TEST_ARGS ?=

.PHONY: all lib deps deps-test deps-bench bench-deps test test-build asan tsan tsan-run debug valgrind \
        bench-build bench bench-smoke bench-report bench-alloc-build tools examples check-aarch64 perf-check perf-baseline install uninstall format format-check clean help
.DEFAULT_GOAL := all

all: deps-bench lib tools examples bench-build
	@echo "built: $(LIB_A) $(LIB_SO) $(BENCH_BIN)"

lib: $(LIB_A) $(LIB_SO)

deps:
	@scripts/deps.sh build $(ALLOC)
deps-test:
	@scripts/deps.sh build $(ALLOC) test
deps-bench:
	@scripts/deps.sh build $(ALLOC) bench
# The peers of the macro suites (nginx, h2o, aiohttp, wrk...); a suite skips
# a peer that is missing, with a line saying so.
bench-deps:
	@scripts/deps.sh build $(ALLOC) bench peers

$(BUILD)/obj/%.c.o: %.c $(STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/%.S.o: %.S $(STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/%.cc.o: %.cc $(STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS_ALL) $(CXXFLAGS_ALL) -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIB_SO): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -Wl,-soname,libeddy.so.0 -o $@ $^ $(LDLIBS_ALL)

$(TEST_BIN): $(TEST_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(TEST_OBJS) $(LIB_A) -lcriterion $(LDLIBS_ALL)

$(TSAN_BIN): $(TSAN_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(TSAN_OBJS) $(LIB_A) $(LDLIBS_ALL)

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.c.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB_A) $(LDLIBS_ALL)

tools: $(TOOL_BINS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.c.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB_A) $(LDLIBS_ALL)

$(PERF_BIN): $(BUILD)/obj/perf/workloads.c.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB_A) $(LDLIBS_ALL)

$(BENCH_BIN): $(BENCH_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS_ALL) -o $@ $(BENCH_OBJS) $(LIB_A) -lbenchmark -lboost_context $(LDLIBS_ALL)

# bench/macro/NAME.c: one driver program per macro suite (build/bench/NAME),
# run by bench/run; built with the benchmarks.
MACRO_SRCS := $(wildcard bench/macro/*.c)
MACRO_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(MACRO_SRCS))
MACRO_BINS := $(patsubst bench/macro/%.c,$(BUILD)/bench/%,$(MACRO_SRCS))
$(MACRO_BINS): $(BUILD)/bench/%: $(BUILD)/obj/bench/macro/%.c.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB_A) $(LDLIBS_ALL)
bench-build: $(MACRO_BINS)
-include $(MACRO_OBJS:.o=.d)

examples: $(EXAMPLE_BINS)

test-build: deps-test $(TEST_BIN) tools examples

# Runs the whole suite: Criterion forks every test into its own process with
# a timeout and ends with its summary line. tests/db/pg_server.sh starts one
# throwaway PostgreSQL around the run (and always stops it); without one
# the db tests report themselves skipped, with the reason.
PG_SERVER := tests/db/pg_server.sh run
test: test-build
	EDDY_BUILD=$(BUILD) $(PG_SERVER) $(TEST_BIN) --jobs=2 $(TEST_ARGS)

debug:
	$(MAKE) VARIANT=debug test
asan:
	$(MAKE) VARIANT=asan test
# Builds build/tsan/tests/tsan-cross-thread and runs it: one forked child
# per case, TAP lines, "# tsan: N passed, M failed", non-zero on any failure
# or ThreadSanitizer report. TEST_ARGS selects cases by substring.
tsan:
	$(MAKE) VARIANT=tsan tsan-run
tsan-run: $(TSAN_BIN)
	@if [ "$(VARIANT)" != tsan ]; then echo "tsan-run needs VARIANT=tsan (use make tsan)"; exit 1; fi
	TSAN_OPTIONS="$(TSAN_RUN_OPTIONS) $$TSAN_OPTIONS" $(TSAN_BIN) $(TEST_ARGS)
# Programs eddy did not write that the tests run as peers: valgrind checks
# eddy's processes (the tests, the examples, eddy-httpd), not these.
# PostgreSQL (started by tests/db/pg_server.sh, also for the spare cluster
# the fault tests stop and start) is one of them.
VALGRIND_UNTRACED := *python3*,*/curl,*/wrk,*/nginx,*/h2o,*/cat,*/dd,*/head,*/sleep,*/true,*/false
VALGRIND_UNTRACED := $(VALGRIND_UNTRACED),*pg_server.sh,*/runuser,*/pg_ctl,*/postgres,*/psql
valgrind:
	$(MAKE) VARIANT=valgrind test-build
	EDDY_BUILD=build/valgrind EDDY_UNDER_VALGRIND=1 $(PG_SERVER) valgrind --quiet --error-exitcode=99 \
	  --leak-check=full --errors-for-leak-kinds=definite --trace-children=yes \
	  --trace-children-skip='$(VALGRIND_UNTRACED)' --suppressions=tests/valgrind.supp \
	  --track-fds=no build/valgrind/tests/eddy-tests --jobs=2 $(TEST_ARGS)

bench-build: $(BENCH_BIN)
	@if [ "$(VARIANT)" != release ]; then echo "benchmarks refuse a $(VARIANT) build"; exit 1; fi

# make bench: every suite (SUITES= picks some), then results/REPORT.md, even
# when a suite failed (the report says which); the exit status is bench/run's.
# The alloc suite needs eddy built with each allocator: bench-alloc-build.
bench: bench-deps bench-build tools bench-alloc-build
	bench/run $(SUITES); rc=$$?; bench/report; exit $$rc
bench-smoke: deps-bench bench-build tools
	bench/run --smoke $(SUITES); rc=$$?; bench/report --smoke; exit $$rc
bench-report:
	bench/report
bench-alloc-build:
	@scripts/deps.sh build mimalloc libc bench
	$(MAKE) ALLOC=mimalloc bench-build tools
	$(MAKE) ALLOC=libc bench-build tools

# The aarch64 switch, cross-built and run under qemu-user: the basics
# example exercises spawn, join, cancel, timeouts and fd waits. Only it is
# linked, and without libpq and zlib, which have no aarch64 packages
# installed here (basics pulls in neither db/ nor the HTTP client).
check-aarch64: examples
	@scripts/deps.sh cross
	$(MAKE) ARCH=aarch64 CC=aarch64-linux-gnu-gcc ALLOC=libc BUILD=build/aarch64 \
	  LDLIBS_ALL=-lpthread build/aarch64/examples/basics
	qemu-aarch64 -L /usr/aarch64-linux-gnu build/aarch64/examples/basics > build/aarch64/basics.out
	$(BUILD)/examples/basics | diff - build/aarch64/basics.out && echo "aarch64: basics output matches x86-64"

# Instructions per operation under callgrind, against the committed baseline.
perf-check: deps-bench $(PERF_BIN) $(BUILD)/bin/eddy-httpd
	perf/instructions --check
perf-baseline: deps-bench $(PERF_BIN) $(BUILD)/bin/eddy-httpd
	perf/instructions

PREFIX ?= /usr/local
install: lib
	install -d $(DESTDIR)$(PREFIX)/include/eddy $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/eddy/*.h $(DESTDIR)$(PREFIX)/include/eddy/
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/libeddy.so.0
	ln -sf libeddy.so.0 $(DESTDIR)$(PREFIX)/lib/libeddy.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBS@|$(ALLOC_LIB_$(ALLOC)) $(PQ_LIBS) -lz -lpthread|' \
	  scripts/eddy.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/eddy.pc
uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/eddy $(DESTDIR)$(PREFIX)/lib/libeddy.* \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/eddy.pc

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' '*.cc')
format:
	@scripts/deps.sh format
	clang-format -i $(FORMAT_SRCS)
format-check:
	@scripts/deps.sh format
	clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf build

help:
	@echo "make                 library, build/bin tools (eddy-httpd), examples, build/bench/micro (installs Debian deps as root)"
	@echo "make tools           build/bin/eddy-httpd and the other public programs"
	@echo "make test            the test suite (Criterion), release build, with a throwaway PostgreSQL"
	@echo "make asan|debug      the test suite under that variant"
	@echo "make tsan            the cross-thread cases under ThreadSanitizer (tests/tsan/)"
	@echo "make valgrind        the test suite under valgrind"
	@echo "make bench           every benchmark suite, writes results/ and results/REPORT.md"
	@echo "make bench-smoke     the short benchmark pass (results/smoke/, with its REPORT.md)"
	@echo "make bench-report    results/REPORT.md and results/plots/ from the committed results"
	@echo "make bench-alloc-build  build/alloc-mimalloc and build/alloc-libc for the alloc suite"
	@echo "make bench-deps      install the peers the suites compare against (nginx, h2o, aiohttp, wrk)"
	@echo "make check-aarch64   cross-build for aarch64 and run the basics example under qemu"
	@echo "make perf-check      instructions per operation vs results/instructions.json (fails on +5%)"
	@echo "make perf-baseline   rewrite results/instructions.json"
	@echo "make install PREFIX=/usr/local DESTDIR="
	@echo "make fuzz FUZZ_SECONDS=60  libFuzzer run of the HTTP parser (clang); crashes go to build/fuzz/"
	@echo "make format | format-check | clean"
	@echo "variables: ALLOC=jemalloc|mimalloc|libc  VARIANT=release|debug|asan|tsan|valgrind  WERROR=1"

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(TSAN_OBJS:.o=.d) $(BENCH_OBJS:.o=.d)
