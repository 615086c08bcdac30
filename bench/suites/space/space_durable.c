/*
 * space_durable.c — the durable cases of `baton-bench space` (the published names and
 * targets are in space.c's header): what the write-ahead log costs.
 *
 * The workload keeps many operations in flight, as the log's group commit needs: 256 chains,
 * chain k owning channel c_k. A starter consumer (registered from the calling thread before the
 * clock starts) fires when one produce on its channel, made on a pool worker, takes place; it
 * produces the first datum on every c_k and consumes it again with the chain's continuation,
 * which, until its chain has done P pairs, produces the next datum on c_k and consumes it. The
 * time runs from that one produce until baton_space_quiesce returns and then baton_space_sync
 * (every change committed and synced). Everything after the first produce runs in
 * continuations, which never wait for the disk (include/baton/space.h, SYNC): their firings are
 * released once durable. The first produce runs on a worker (pool_install) while the calling
 * thread sleeps, and the calling thread's quiesce and sync only wait: the work runs on the
 * pool's 2 workers and on no other thread (made from the calling thread, the produce would run
 * continuations there too).
 *
 *   durable_none         baton_space_create: no log                          P = 2000 (--quick 200)
 *   durable_async        baton_space_open, BATON_DURABILITY_ASYNC             P = 2000 (200)
 *   durable_sync         baton_space_open, BATON_DURABILITY_SYNC (group       P = 200 (20)
 *                        commit)
 *   durable_sync_per_op  baton_space_open, BATON_DURABILITY_SYNC,             P = 4 (1)
 *                        .log_group_max = 1: every record committed alone,
 *                        the baseline the group commit is measured against
 * (P differs so that each run takes about a second: the metric is a rate.)
 * baton only, on a pool of 2 workers; the four cases are measured interleaved (A B C D A B C D
 * ...) so that the ratios compare runs made under the same conditions. Each run opens a fresh
 * directory under $TMPDIR (else /var/tmp) and deletes it afterwards; a note names the
 * filesystem. Checks: every chain took its data in order and did exactly P pairs (256 * P in
 * all), no continuation failed, and no datum and no waiting consumer is left on any channel.
 * Extras: log_records_per_pair (records the log appended, per pair; durable cases);
 * cpu_ns_per_pair (the whole process's CPU time over the timed span, per pair; median of the
 * runs) and, in the logged cases, writer_cpu_ns_per_pair (the part of it the log's writer thread
 * used, from baton_space_stats.log_writer_cpu_ns). On a machine whose every core runs a worker,
 * the writer's CPU comes out of the workers' and the rate falls with the sum; where the writer
 * has a core to itself, only the rest (the appends, on the workers) slows them.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/vfs.h>
#endif

#include "space.h"

#define DURABLE_CHAINS 256u
#define DURABLE_WORKERS 2u
#define DURABLE_N_CASES 4u
#define DIR_MAX 4096

typedef struct durable_case {
    const char *name;
    bool logged;
    baton_durability durability;
    size_t log_group_max;
    uint64_t per_chain; /* P */
    baton_pattern *int_pattern;
    double records_per_pair; /* the last run's, NaN when unknown */
    double *cpu_ns;          /* per run: the process's CPU time per pair */
    double *writer_ns;       /* per run: the writer thread's CPU time per pair */
    unsigned n_cpu, cap_cpu;
} durable_case;

typedef struct durable_run durable_run;

typedef struct durable_chain {
    durable_run *run;
    uint8_t chan[BENCH_SPACE_ENC_SIZE];
    uint64_t pairs;
    bool out_of_order;
} durable_chain;

struct durable_run {
    baton_space *space;
    baton_pattern *int_pattern;
    uint64_t per_chain;
    durable_chain chains[DURABLE_CHAINS];
    uint8_t start[BENCH_SPACE_ENC_SIZE];
};

static baton_value_view enc_view(const uint8_t *enc)
{
    return (baton_value_view){enc, BENCH_SPACE_ENC_SIZE};
}

/* ---- the chains ---- */

static int chain_fired(void *ctx, const baton_match *match);

/* One pair's first half: produce the chain's next datum, consume it (it fires at once). */
static int chain_step(durable_chain *c)
{
    durable_run *run = c->run;
    baton_value_view ch = enc_view(c->chan);
    uint8_t datum[BENCH_SPACE_ENC_SIZE];
    int rc;

    bench_space_encode_int(datum, (int64_t)c->pairs);
    if ((rc = baton_space_produce(run->space, ch, enc_view(datum), false)) != 0)
        return rc;
    return baton_space_consume(run->space, &ch, &run->int_pattern, 1, chain_fired, c, 0, NULL);
}

static int chain_fired(void *ctx, const baton_match *match)
{
    durable_chain *c = ctx;
    if (baton_view_int(match->data[0]) != (int64_t)c->pairs)
        c->out_of_order = true;
    c->pairs++;
    return c->pairs < c->run->per_chain ? chain_step(c) : 0;
}

static int starter_fired(void *ctx, const baton_match *match)
{
    durable_run *run = ctx;
    (void)match;
    for (unsigned k = 0; k < DURABLE_CHAINS; k++) {
        int rc = chain_step(&run->chains[k]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* On a worker (pool_install): the one produce that starts every chain. Made from the calling
 * thread, it would run continuations there as well (an outside caller works in its call,
 * baton/pool.h): a third thread beside the 2 workers. */
static int start_chains(void *ctx)
{
    durable_run *run = ctx;
    uint8_t zero[BENCH_SPACE_ENC_SIZE];
    bench_space_encode_int(zero, 0);
    return baton_space_produce(run->space, enc_view(run->start), enc_view(zero), false);
}

/* ---- directories ---- */

/* The filesystem type of `path` in words ("ext4/ext3/ext2", "tmpfs", ...). */
static const char *filesystem_name(const char *path)
{
#ifdef __linux__
    struct statfs sf;
    if (statfs(path, &sf) != 0)
        return "unknown";
    switch ((unsigned long)sf.f_type) {
    case 0xEF53ul:
        return "ext4/ext3/ext2 (disk)";
    case 0x01021994ul:
        return "tmpfs (memory: syncs cost nothing)";
    case 0x58465342ul:
        return "xfs (disk)";
    case 0x9123683Eul:
        return "btrfs (disk)";
    case 0x794C7630ul:
        return "overlayfs";
    case 0x2FC12FC1ul:
        return "zfs";
    default:
        return "another filesystem";
    }
#else
    (void)path;
    return "unknown";
#endif
}

/* ---- one run ---- */

static int measure_durable(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    durable_case *dc = ctx;
    baton_pool *pool = NULL;
    baton_space_config config;
    baton_space_stats stats;
    durable_run *run;
    baton_value_view start;
    char dir[DIR_MAX] = "";
    double t0, t1;
    double cpu0 = NAN, cpu1 = NAN;
    uint64_t writer0 = 0;
    bool correct = true;
    int rc, qrc = 0, src = 0;

    run = calloc(1, sizeof *run);
    if (run == NULL) {
        cmdline_errorf("bench space: out of memory");
        return -1;
    }
    if (cmdline_pool_create(workers, 0, &pool) != 0) {
        free(run);
        return -1;
    }
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.pool = pool;
    if (dc->logged) {
        config.durability = dc->durability;
        config.log_group_max = dc->log_group_max;
        if ((size_t)snprintf(dir, sizeof dir, "%s/baton-bench-space-XXXXXX", cmdline_temp_base()) >=
                sizeof dir ||
            mkdtemp(dir) == NULL) {
            cmdline_errorf("bench space: cannot make a directory under %s: %s", cmdline_temp_base(),
                           strerror(errno));
            rc = 0;
            cmdline_pool_destroy(pool, &rc);
            free(run);
            return -1;
        }
        rc = baton_space_open(&config, dir, &run->space);
    } else {
        rc = baton_space_create(&config, &run->space);
    }
    if (rc != 0) {
        cmdline_report_error(rc, dc->logged ? "baton_space_open" : "baton_space_create");
        if (dir[0] != '\0')
            (void)cmdline_remove_tree(dir);
        cmdline_pool_destroy(pool, &rc);
        free(run);
        return -1;
    }
    run->int_pattern = dc->int_pattern;
    run->per_chain = dc->per_chain;
    bench_space_encode_name(run->start, baton_space_fresh_name(run->space));
    for (unsigned k = 0; k < DURABLE_CHAINS; k++) {
        run->chains[k].run = run;
        bench_space_encode_name(run->chains[k].chan, baton_space_fresh_name(run->space));
    }
    start = enc_view(run->start);
    rc = baton_space_consume(run->space, &start, &run->int_pattern, 1, starter_fired, run, 0, NULL);
    if (rc == 0) {
        if (baton_space_get_stats(run->space, &stats) == 0)
            writer0 = stats.log_writer_cpu_ns;
        cpu0 = bench_process_cpu_s();
        t0 = cmdline_now_s();
        rc = pool_install(pool, start_chains, run);
        qrc = baton_space_quiesce(run->space);
        src = baton_space_sync(run->space);
        t1 = cmdline_now_s();
        cpu1 = bench_process_cpu_s();
        *out_value = (double)DURABLE_CHAINS * (double)dc->per_chain / (t1 - t0);
    }
    if (rc != 0)
        cmdline_report_error(rc, "bench space: the starting produce or consume");
    if (qrc != 0)
        cmdline_report_error(qrc, "bench space: baton_space_quiesce");
    if (src != 0)
        cmdline_report_error(src, "bench space: baton_space_sync");
    correct = rc == 0 && qrc == 0 && src == 0;
    for (unsigned k = 0; k < DURABLE_CHAINS && correct; k++) {
        size_t data, consumers;
        const durable_chain *c = &run->chains[k];
        correct =
            c->pairs == dc->per_chain && !c->out_of_order &&
            baton_space_channel_counts(run->space, enc_view(c->chan), &data, &consumers) == 0 &&
            data == 0 && consumers == 0;
    }
    if (correct && baton_space_get_stats(run->space, &stats) == 0) {
        correct = stats.data == 0 && stats.consumers == 0;
        double pairs = (double)DURABLE_CHAINS * (double)dc->per_chain;
        dc->records_per_pair = dc->logged ? (double)stats.log_appended / pairs : NAN;
        if (dc->n_cpu < dc->cap_cpu && cpu1 > cpu0) {
            dc->cpu_ns[dc->n_cpu] = (cpu1 - cpu0) * 1e9 / pairs;
            dc->writer_ns[dc->n_cpu++] = (double)(stats.log_writer_cpu_ns - writer0) / pairs;
        }
    }
    *out_correct = correct;
    baton_space_destroy(run->space);
    if (dir[0] != '\0' && cmdline_remove_tree(dir) != 0)
        cmdline_note("bench space: could not delete %s entirely", dir);
    free(run);
    rc = 0;
    cmdline_pool_destroy(pool, &rc);
    return rc != 0 ? -1 : 0;
}

static void free_cpu_samples(durable_case *cases)
{
    for (unsigned i = 0; i < DURABLE_N_CASES; i++) {
        free(cases[i].cpu_ns);
        free(cases[i].writer_ns);
    }
}

int bench_space_durable_run(const bench_options *options, bench_report *report,
                            baton_pattern *int_pattern)
{
    durable_case cases[DURABLE_N_CASES] = {
        {.name = "durable_none", .logged = false, .per_chain = 2000},
        {.name = "durable_async",
         .logged = true,
         .durability = BATON_DURABILITY_ASYNC,
         .per_chain = 2000},
        {.name = "durable_sync",
         .logged = true,
         .durability = BATON_DURABILITY_SYNC,
         .per_chain = 200},
        {.name = "durable_sync_per_op",
         .logged = true,
         .durability = BATON_DURABILITY_SYNC,
         .log_group_max = 1,
         .per_chain = 4},
    };
    bench_slot slots[DURABLE_N_CASES];
    size_t n = 0;

    for (unsigned i = 0; i < DURABLE_N_CASES; i++) {
        durable_case *dc = &cases[i];
        const bench_record tmpl = {.suite = BENCH_SPACE_SUITE,
                                   .case_name = dc->name,
                                   .metric = "pairs_per_s",
                                   .unit = "pairs/s",
                                   .higher_is_better = true};
        if (!bench_case_selected(options, dc->name))
            continue;
        dc->int_pattern = int_pattern;
        dc->records_per_pair = NAN;
        dc->cpu_ns = calloc(options->runs, sizeof *dc->cpu_ns);
        dc->writer_ns = calloc(options->runs, sizeof *dc->writer_ns);
        dc->cap_cpu = dc->cpu_ns != NULL && dc->writer_ns != NULL ? options->runs : 0;
        if (options->quick)
            dc->per_chain = dc->per_chain / 10 > 0 ? dc->per_chain / 10 : 1;
        bench_report_note(
            report, dc->name,
            "%u chains x %llu pairs, driven from continuations, on %u workers%s%s%s%s",
            DURABLE_CHAINS, (unsigned long long)dc->per_chain, DURABLE_WORKERS,
            dc->logged ? "; the log in a fresh directory under " : "",
            dc->logged ? cmdline_temp_base() : "", dc->logged ? ", on " : "",
            dc->logged ? filesystem_name(cmdline_temp_base()) : "");
        if (!bench_slots_add(slots, &n, DURABLE_N_CASES, report, options->runs, &tmpl, "baton",
                             DURABLE_WORKERS, measure_durable, dc)) {
            free_cpu_samples(cases);
            return -1;
        }
    }
    bench_run_slots("durable_*", slots, n, options->runs);
    for (size_t i = 0; i < n; i++) {
        const durable_case *dc = slots[i].ctx;
        if (!isnan(dc->records_per_pair))
            bench_record_set_extra(slots[i].record, "log_records_per_pair", dc->records_per_pair);
        if (dc->n_cpu > 0) {
            bench_record_set_extra(slots[i].record, "cpu_ns_per_pair",
                                   bench_median(dc->cpu_ns, dc->n_cpu));
            if (dc->logged)
                bench_record_set_extra(slots[i].record, "writer_cpu_ns_per_pair",
                                       bench_median(dc->writer_ns, dc->n_cpu));
        }
    }
    free_cpu_samples(cases);
    return 0;
}
