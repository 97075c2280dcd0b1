/*
 * tests/examples/test_examples.c: runs each example program built by make
 * (EDDY_BUILD/examples/NAME; `make test` sets EDDY_BUILD) and compares its
 * whole output and exit status with what the example promises.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tests/support/test.h"

/* Runs the example, returns its stdout (malloc'd) and exit status. */
static char *run_example(const char *name, int *status)
{
    const char *build = getenv("EDDY_BUILD");
    cr_assert_not_null(build, "EDDY_BUILD is not set (run the tests through make test)");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s/examples/%s", build, name);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 64)
            out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static void check_example(const char *name, const char *expected)
{
    int status;
    char *out = run_example(name, &status);
    cr_expect_eq(status, 0, "%s exited with %d", name, status);
    cr_expect_str_eq(out, expected, "%s printed:\n%s", name, out);
    free(out);
}

EDDY_TEST(examples, gather_returns_results_in_call_order)
{
    check_example("gather", "B done\n"
                            "C done\n"
                            "A done\n"
                            "results in call order: A=4 B=9 C=16\n");
}

EDDY_TEST(examples, as_completed_prints_b_c_a)
{
    check_example("as_completed", "B (call 1)\n"
                                  "C (call 2)\n"
                                  "A (call 0)\n");
}

EDDY_TEST(examples, semaphore_lets_ten_tasks_through_three_at_a_time)
{
    char expected[2048] = "";
    for (int batch = 0; batch < 4; batch++) {
        int first = batch * 3, last = batch == 3 ? 9 : first + 2;
        for (int i = first; i <= last; i++)
            snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected),
                     "worker %d in (%d inside)\n", i, i - first + 1);
        for (int i = first; i <= last; i++)
            snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected),
                     "worker %d out\n", i);
    }
    strcat(expected, "at most 3 inside at once\n");
    check_example("semaphore", expected);
}

EDDY_TEST(examples, producer_consumer_ends_at_the_end_marker)
{
    check_example("producer_consumer", "put 1\n"
                                       "put 2\n"
                                       "got 1\n"
                                       "put 3\n"
                                       "got 2\n"
                                       "put 4\n"
                                       "got 3\n"
                                       "put 5\n"
                                       "got 4\n"
                                       "got 5\n"
                                       "end marker: done\n"
                                       "sum of items: 15\n");
}

EDDY_TEST(examples, retry_backs_off_until_the_flaky_operation_succeeds)
{
    check_example("retry", "attempt 1: connection reset\n"
                           "attempt 2: connection reset\n"
                           "attempt 3: connection reset\n"
                           "attempt 4: ok\n"
                           "fetched with status 200\n");
}

EDDY_TEST(examples, files_writes_reads_lines_gathers_lists_and_cleans_up)
{
    check_example("files", "wrote notes.txt (24 bytes)\n"
                           "line 1: apples 3\n"
                           "line 2: pears 5\n"
                           "line 3: plums 7 (no newline)\n"
                           "total fruit: 15\n"
                           "read part-1.txt: 100 bytes\n"
                           "read part-2.txt: 200 bytes\n"
                           "read part-3.txt: 300 bytes\n"
                           "directory: notes.txt part-1.txt part-2.txt part-3.txt\n"
                           "notes.txt: 24 bytes, a regular file\n"
                           "removed 4 files and the directory\n");
}
