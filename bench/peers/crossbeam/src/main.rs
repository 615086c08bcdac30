// main.rs — the crossbeam contender of `baton-bench queue`: crossbeam_queue::ArrayQueue, a bounded
// lock-free multi-producer multi-consumer FIFO, with capacity QUEUE_RING_CAPACITY. ArrayQueue
// never waits: a full push and an empty pop retry after crossbeam_utils::Backoff::snooze (the same
// rule as queue_workloads.h's struct queue_backoff: spin 1, 2, ... 64 pauses, then yield),
// with a fresh Backoff per push or pop, so reset after every success. spsc (one queue per pair),
// mpsc and mpmc; the queue is FIFO across producers, so main's poison pills after the producers
// have joined come after every item.
//
// Protocol (identical to bench/peers/queue_peer_common.h, which the driver depends on):
//     baton-peer-crossbeam CASE THREADS ITEMS
//     CASE spsc | mpsc | mpmc; THREADS 2..64 (even for spsc and mpmc); ITEMS 1..10^10
// prints `time_s=<%.9g> check=<u64>` and exits 0; bad arguments or no threads: stderr, exit 2;
// a wrong result found by the checks: stderr, exit 3.
//
// Must build with Debian bookworm's rustc 1.63 and crossbeam-queue 0.3.8: no newer std APIs.

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::Backoff;
use std::io::Write;
use std::process;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

const EXIT_USAGE: i32 = 2;
const EXIT_WRONG: i32 = 3;

const PROG: &str = "baton-peer-crossbeam";

// ---------------------------------------------------------------------------------------------
// The queue workloads: a copy of bench/common/queue_workloads.h, which is the definition. Keep it
// bit-for-bit identical to that file; the driver compares checks across contenders, so any drift
// shows up as a wrong result.
// ---------------------------------------------------------------------------------------------

const QUEUE_RING_CAPACITY: usize = 1024;
const QUEUE_MAX_PRODUCERS: usize = 64;
const QUEUE_MIN_THREADS: u64 = 2;
const QUEUE_MAX_THREADS: u64 = 64;
const QUEUE_MAX_ITEMS: u64 = 10_000_000_000;
const QUEUE_POISON: u64 = 0;
const QUEUE_INDEX_BITS: u32 = 40;
const QUEUE_INDEX_MASK: u64 = (1u64 << QUEUE_INDEX_BITS) - 1;
const QUEUE_WARMUP_MIN_ITEMS: u64 = 1000;

fn queue_item_value(p: u32, k: u64) -> u64 {
    ((p as u64 + 1) << QUEUE_INDEX_BITS) | (k + 1)
}

// u64::MAX for the poison pill, out of every range.
fn queue_item_producer(v: u64) -> u64 {
    (v >> QUEUE_INDEX_BITS).wrapping_sub(1)
}

fn queue_item_index(v: u64) -> u64 {
    v & QUEUE_INDEX_MASK
}

fn queue_items_of(p: u32, producers: u32, total: u64) -> u64 {
    total / producers as u64 + if (p as u64) < total % producers as u64 { 1 } else { 0 }
}

fn queue_expected_check(producers: u32, total: u64) -> u64 {
    let mut sum = 0u64;
    for p in 0..producers {
        let n = queue_items_of(p, producers, total);
        let tri = if n % 2 == 0 {
            (n / 2).wrapping_mul(n + 1)
        } else {
            n.wrapping_mul((n + 1) / 2)
        };
        sum = sum
            .wrapping_add(n.wrapping_mul((p as u64 + 1) << QUEUE_INDEX_BITS))
            .wrapping_add(tri);
    }
    sum
}

fn queue_warmup_items(items: u64) -> u64 {
    std::cmp::max(items / 10, QUEUE_WARMUP_MIN_ITEMS)
}

// struct queue_order_check.
#[derive(Clone)]
struct OrderCheck {
    last: [u64; QUEUE_MAX_PRODUCERS],
    sum: u64,
    count: u64,
    first: u64,
    count_producers: u64,
    strict: bool,
}

impl OrderCheck {
    fn new_range(first: u32, count: u32, strict: bool) -> OrderCheck {
        OrderCheck {
            last: [0; QUEUE_MAX_PRODUCERS],
            sum: 0,
            count: 0,
            first: first as u64,
            count_producers: count as u64,
            strict,
        }
    }

    fn new(producers: u32, strict: bool) -> OrderCheck {
        OrderCheck::new_range(0, producers, strict)
    }

    fn observe(&mut self, v: u64) -> bool {
        let p = queue_item_producer(v);
        let k = queue_item_index(v);
        if p < self.first
            || p - self.first >= self.count_producers
            || p >= QUEUE_MAX_PRODUCERS as u64
        {
            return false;
        }
        let last = self.last[p as usize];
        if if self.strict { k != last + 1 } else { k <= last } {
            return false;
        }
        self.last[p as usize] = k;
        self.sum = self.sum.wrapping_add(v);
        self.count += 1;
        true
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Spsc,
    Mpsc,
    Mpmc,
}

// struct queue_layout.
struct Layout {
    kind: Kind,
    threads: u32,
    producers: u32,
    consumers: u32,
    queues: u32,
}

impl Layout {
    fn new(kind: Kind, threads: u64) -> Option<Layout> {
        if !(QUEUE_MIN_THREADS..=QUEUE_MAX_THREADS).contains(&threads) {
            return None;
        }
        if kind != Kind::Mpsc && threads % 2 != 0 {
            return None;
        }
        let t = threads as u32;
        let (producers, consumers, queues) = match kind {
            Kind::Spsc => (t / 2, t / 2, t / 2),
            Kind::Mpsc => (t - 1, 1, 1),
            Kind::Mpmc => (t / 2, t / 2, 1),
        };
        Some(Layout {
            kind,
            threads: t,
            producers,
            consumers,
            queues,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Command line and output: the same rules as bench/peers/queue_peer_common.h.
// ---------------------------------------------------------------------------------------------

fn usage(why: &str) -> ! {
    eprintln!("{}: {}", PROG, why);
    eprintln!("usage: {} CASE THREADS ITEMS", PROG);
    eprintln!("  CASE     spsc mpsc mpmc (the cases this peer supports)");
    eprintln!("  THREADS  2 to 64 producers and consumers in all, even for spsc and mpmc");
    eprintln!("  ITEMS    1 to 10000000000 items in all");
    process::exit(EXIT_USAGE);
}

fn wrong(msg: String) -> ! {
    eprintln!("{}: {}", PROG, msg);
    process::exit(EXIT_WRONG);
}

// Strict decimal: digits only (no sign, spaces or suffix), within [min, max].
fn parse_u64(s: &str, min: u64, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    match s.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Some(v),
        _ => None,
    }
}

// C's printf("%.9g"), so that all peers print their times the same way.
fn format_g9(x: f64) -> String {
    const P: i32 = 9;
    if x == 0.0 {
        return "0".to_string();
    }
    if !x.is_finite() {
        return format!("{}", x);
    }
    let sci = format!("{:.*e}", (P - 1) as usize, x);
    let epos = sci.find('e').unwrap();
    let exp: i32 = sci[epos + 1..].parse().unwrap();
    if !(-4..P).contains(&exp) {
        let mantissa = strip_zeros(&sci[..epos]);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", mantissa, sign, exp.abs())
    } else {
        let fixed = format!("{:.*}", (P - 1 - exp) as usize, x);
        strip_zeros(&fixed).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn print_result(time_s: f64, check: u64) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "time_s={} check={}", format_g9(time_s), check)
        .and_then(|_| out.flush())
        .unwrap_or_else(|e| {
            eprintln!("{}: cannot write the result: {}", PROG, e);
            process::exit(1);
        });
}

// ---------------------------------------------------------------------------------------------
// One run: the steps of queue_peer_run() in bench/peers/queue_peer_common.h.
// ---------------------------------------------------------------------------------------------

type Queue = ArrayQueue<u64>;

fn push(q: &Queue, v: u64) {
    let backoff = Backoff::new();
    let mut v = v;
    loop {
        match q.push(v) {
            Ok(()) => return,
            Err(back) => {
                v = back;
                backoff.snooze();
            }
        }
    }
}

fn pop(q: &Queue) -> u64 {
    let backoff = Backoff::new();
    loop {
        if let Some(v) = q.pop() {
            return v;
        }
        backoff.snooze();
    }
}

struct Start {
    ready: AtomicU32,
    go: AtomicBool,
}

fn wait_start(start: &Start) {
    let backoff = Backoff::new();
    start.ready.fetch_add(1, Ordering::AcqRel);
    while !start.go.load(Ordering::Acquire) {
        backoff.snooze();
    }
}

// What a consumer hands back: its check and the first value the check rejected, if any.
struct ConsumerResult {
    check: OrderCheck,
    rejected: Option<u64>,
}

fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::Builder::new().spawn(f).unwrap_or_else(|e| {
        // Threads already started wait at the start flag forever; exit ends them.
        eprintln!("{}: cannot create a thread: {}", PROG, e);
        process::exit(EXIT_USAGE);
    })
}

fn join<T>(h: thread::JoinHandle<T>) -> T {
    h.join().unwrap_or_else(|_| {
        eprintln!("{}: a thread panicked", PROG);
        process::exit(EXIT_USAGE);
    })
}

fn verify(l: &Layout, items: u64, results: &[ConsumerResult], run: &str) -> u64 {
    let mut sum = 0u64;
    let mut count = 0u64;
    for (c, r) in results.iter().enumerate() {
        if let Some(v) = r.rejected {
            wrong(format!(
                "{} run: consumer {} received 0x{:016x} (producer {}, index {}): {}",
                run,
                c,
                v,
                queue_item_producer(v),
                queue_item_index(v),
                if r.check.strict {
                    "not from a producer it serves, or not the next index"
                } else {
                    "not from a producer, or not after the last index seen"
                }
            ));
        }
        sum = sum.wrapping_add(r.check.sum);
        count += r.check.count;
    }
    for p in 0..l.producers {
        let n = queue_items_of(p, l.producers, items);
        let last = results
            .iter()
            .map(|r| r.check.last[p as usize])
            .max()
            .unwrap_or(0);
        if last != n {
            wrong(format!(
                "{} run: the last item received from producer {} has index {}, expected {}",
                run, p, last, n
            ));
        }
    }
    if count != items {
        wrong(format!(
            "{} run: the consumers received {} items, expected {}",
            run, count, items
        ));
    }
    let expected = queue_expected_check(l.producers, items);
    if sum != expected {
        wrong(format!(
            "{} run: check sum {}, expected {}",
            run, sum, expected
        ));
    }
    sum
}

// Returns (seconds, check); exits on a wrong result.
fn run(l: &Layout, items: u64, run: &str) -> (f64, u64) {
    let spsc = l.kind == Kind::Spsc;
    let main_pills = !spsc;
    let queues: Vec<Arc<Queue>> = (0..l.queues)
        .map(|_| Arc::new(ArrayQueue::new(QUEUE_RING_CAPACITY)))
        .collect();
    let start = Arc::new(Start {
        ready: AtomicU32::new(0),
        go: AtomicBool::new(false),
    });

    let mut consumers = Vec::with_capacity(l.consumers as usize);
    for c in 0..l.consumers {
        let q = Arc::clone(&queues[if spsc { c as usize } else { 0 }]);
        let start = Arc::clone(&start);
        let pills: u32 = 1;
        let mut check = if spsc {
            OrderCheck::new_range(c, 1, true)
        } else {
            OrderCheck::new(l.producers, l.kind == Kind::Mpsc)
        };
        consumers.push(spawn(move || {
            let mut rejected = None;
            let mut seen = 0u32;
            wait_start(&start);
            loop {
                let v = pop(&q);
                if v == QUEUE_POISON {
                    seen += 1;
                    if seen == pills {
                        break;
                    }
                    continue;
                }
                // Keep consuming after a rejected value: stopping would leave producers blocked.
                if !check.observe(v) && rejected.is_none() {
                    rejected = Some(v);
                }
            }
            ConsumerResult { check, rejected }
        }));
    }
    let mut producers = Vec::with_capacity(l.producers as usize);
    for p in 0..l.producers {
        let q = Arc::clone(&queues[if spsc { p as usize } else { 0 }]);
        let start = Arc::clone(&start);
        let n = queue_items_of(p, l.producers, items);
        let pills: u32 = if main_pills { 0 } else { 1 };
        producers.push(spawn(move || {
            wait_start(&start);
            for k in 0..n {
                push(&q, queue_item_value(p, k));
            }
            for _ in 0..pills {
                push(&q, QUEUE_POISON);
            }
        }));
    }
    {
        let backoff = Backoff::new();
        while start.ready.load(Ordering::Acquire) != l.threads {
            backoff.snooze();
        }
    }

    let t0 = Instant::now();
    start.go.store(true, Ordering::Release);
    for h in producers {
        join(h);
    }
    if main_pills {
        for _ in 0..l.consumers {
            push(&queues[0], QUEUE_POISON);
        }
    }
    let results: Vec<ConsumerResult> = consumers.into_iter().map(join).collect();
    let elapsed = t0.elapsed();

    let check = verify(l, items, &results, run);
    (elapsed.as_secs_f64(), check)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        usage("wrong number of arguments");
    }
    let kind = match args[1].as_str() {
        "spsc" => Kind::Spsc,
        "mpsc" => Kind::Mpsc,
        "mpmc" => Kind::Mpmc,
        _ => usage("unknown case"),
    };
    let layout = parse_u64(&args[2], QUEUE_MIN_THREADS, QUEUE_MAX_THREADS)
        .and_then(|t| Layout::new(kind, t))
        .unwrap_or_else(|| {
            usage(if kind == Kind::Mpsc {
                "THREADS must be an integer from 2 to 64"
            } else {
                "THREADS must be an even integer from 2 to 64"
            })
        });
    let items = parse_u64(&args[3], 1, QUEUE_MAX_ITEMS)
        .unwrap_or_else(|| usage("ITEMS must be an integer from 1 to 10000000000"));

    run(&layout, queue_warmup_items(items), "warm-up");
    let (time_s, check) = run(&layout, items, "timed");
    print_result(time_s, check);
}
