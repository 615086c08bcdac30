/*
 * bench_space_durable.c — the durable cases of `baton bench space` (see bench_space.c's header).
 * Not measured yet: they wait for baton_space_open and baton_space_sync.
 */
#include "bench_space.h"

int bench_space_durable_run(const bench_options *options, bench_report *report,
                            baton_pattern *int_pattern)
{
    (void)report;
    (void)int_pattern;
    if (bench_case_selected(options, "durable_none"))
        cli_note("bench space: the durable cases are not measured yet");
    return 0;
}
