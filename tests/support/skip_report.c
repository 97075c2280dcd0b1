/*
 * tests/support/skip_report.c: makes skipped tests visible. Criterion
 * prints a skipped test only with --verbose, and its summary line does not
 * count them, so a suite whose tests all skip (the db tests without a
 * PostgreSQL server) would look like a shorter run that passed. After the
 * run, this hook prints one line per reason ("[SKIP] 35 tests: reason"),
 * on stderr, for every test that skipped itself with cr_skip_test; tests
 * left out by --filter ("Test is disabled") are not listed.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#define MAX_REASONS 16

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    const char *reasons[MAX_REASONS];
    size_t counts[MAX_REASONS];
    size_t n = 0;
    for (struct criterion_suite_stats *s = stats->suites; s; s = s->next) {
        for (struct criterion_test_stats *t = s->tests; t; t = t->next) {
            if (t->test_status != CR_STATUS_SKIPPED || !t->message ||
                strcmp(t->message, "Test is disabled") == 0)
                continue;
            size_t i = 0;
            while (i < n && strcmp(reasons[i], t->message) != 0)
                i++;
            if (i == n && n < MAX_REASONS) {
                reasons[n] = t->message;
                counts[n++] = 0;
            }
            if (i < n)
                counts[i]++;
        }
    }
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "[SKIP] %zu test%s: %s\n", counts[i], counts[i] == 1 ? "" : "s",
                reasons[i]);
}
