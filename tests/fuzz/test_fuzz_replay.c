/*
 * tests/fuzz/test_fuzz_replay.c: the plain driver of the fuzz target. It
 * replays every file of tests/fuzz/corpus (the seeds) and
 * tests/fuzz/regression (inputs that once broke a rule) through
 * LLVMFuzzerTestOneInput, in the gcc-built test binary, so that `make
 * test`, `make asan` and `make valgrind` check them all. A broken rule
 * aborts with the rule and the file's name on stderr.
 *
 * The directories are found from the working directory (make runs the
 * tests from the repository's root), or under EDDY_FUZZ_DIR.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/test.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void eddy_fuzz_set_label(const char *name);

/* The seed corpus has at least this many files; fewer means the test
 * looked in the wrong place. */
#define MIN_SEEDS 24

/* Replays every regular file of dir; returns how many. */
static size_t replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s (run the tests from the repository root)", dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        cr_assert_eq(fseek(f, 0, SEEK_END), 0);
        long size = ftell(f);
        cr_assert_geq(size, 0);
        rewind(f);
        uint8_t *data = malloc((size_t)size + 1);
        cr_assert_not_null(data);
        cr_assert_eq(fread(data, 1, (size_t)size, f), (size_t)size, "%s", path);
        fclose(f);
        eddy_fuzz_set_label(path);
        LLVMFuzzerTestOneInput(data, (size_t)size);
        eddy_fuzz_set_label(NULL);
        free(data);
        n++;
    }
    closedir(d);
    return n;
}

static const char *fuzz_dir(void)
{
    const char *dir = getenv("EDDY_FUZZ_DIR");
    return dir ? dir : "tests/fuzz";
}

EDDY_TEST(fuzz, http_parse_seed_corpus_keeps_every_rule)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/corpus", fuzz_dir());
    size_t n = replay_dir(dir);
    cr_expect_geq(n, MIN_SEEDS, "only %zu seeds in %s", n, dir);
    cr_log_info("%zu seeds", n);
}

EDDY_TEST(fuzz, http_parse_regressions_keep_every_rule)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/regression", fuzz_dir());
    size_t n = replay_dir(dir);
    cr_log_info("%zu regressions", n);
}
