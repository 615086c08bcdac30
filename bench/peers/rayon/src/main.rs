// main.rs — the rayon contender of `baton-bench pool`: fork-join fib with rayon::join, the
// 16-item parallel loop injected into the pool from main, and the motion ticks over par_chunks_mut.
//
// Protocol (identical to bench/peers/peer_common.h, which the driver depends on):
//     baton-peer-rayon CASE WORKERS ARG1 [ARG2]
//     fib N | pfor16_hot SAMPLES | pfor16_after_idle SAMPLES | motion ENTITIES TICKS
// prints `time_s=<%.9g> check=<u64>` and exits 0; bad arguments: stderr, exit 2; a wrong result
// found by the self-check: stderr, exit 3.
//
// Must build with Debian bookworm's rustc 1.63 and rayon 1.6: no newer std APIs.

use rayon::prelude::*;
use std::io::Write;
use std::process;
use std::time::{Duration, Instant};

const EXIT_USAGE: i32 = 2;
const EXIT_WRONG: i32 = 3;

const MAX_WORKERS: u64 = 4096;
const MAX_FIB_N: u64 = 93;
const MAX_SAMPLES: u64 = 100_000_000;
const MAX_ENTITIES: u64 = 1 << 36;
const WARMUP_FIB_N: u32 = 20;
const PFOR_WARMUP_LOOPS: u32 = 200;
const IDLE_SLEEP: Duration = Duration::from_millis(5);

// ---------------------------------------------------------------------------------------------
// Workloads: a copy of bench/common/workloads.h. Keep it bit-for-bit identical to that file;
// the driver compares checksums across contenders, so any drift shows up as a wrong result.
// ---------------------------------------------------------------------------------------------

const MOTION_PAYLOAD_BYTES: usize = 48;

fn motion_load_le(p: &[u8]) -> i64 {
    let mut v: u64 = 0;
    for i in (0..8).rev() {
        v = (v << 8) | p[i] as u64;
    }
    v as i64
}

fn motion_store_le(p: &mut [u8], value: i64) {
    let mut v = value as u64;
    for byte in p.iter_mut().take(8) {
        *byte = (v & 0xff) as u8;
        v >>= 8;
    }
}

fn motion_saturating_add(a: i64, b: i64) -> i64 {
    match a.checked_add(b) {
        Some(r) => r,
        None => {
            if b > 0 {
                i64::MAX
            } else {
                i64::MIN
            }
        }
    }
}

fn motion_update(payload: &mut [u8]) {
    for axis in 0..3 {
        let pos = motion_load_le(&payload[8 * axis..]);
        let vel = motion_load_le(&payload[24 + 8 * axis..]);
        motion_store_le(&mut payload[8 * axis..], motion_saturating_add(pos, vel));
    }
}

fn motion_splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

fn motion_init_entity(payload: &mut [u8], i: u64) {
    for axis in 0..3u64 {
        let r = motion_splitmix(i.wrapping_mul(6).wrapping_add(axis));
        let s = motion_splitmix(i.wrapping_mul(6).wrapping_add(3).wrapping_add(axis));
        let mut pos = (r >> 11) as i64 - (1i64 << 52);
        let mut vel = (s >> 24) as i64 - (1i64 << 39);
        if i % 1024 == 0 {
            pos = if axis & 1 != 0 {
                i64::MIN + 5
            } else {
                i64::MAX - 5
            };
            vel = if axis & 1 != 0 {
                -(1i64 << 32)
            } else {
                1i64 << 32
            };
        }
        let a = axis as usize;
        motion_store_le(&mut payload[8 * a..], pos);
        motion_store_le(&mut payload[24 + 8 * a..], vel);
    }
}

fn motion_init(payloads: &mut [u8]) {
    for (i, payload) in payloads.chunks_mut(MOTION_PAYLOAD_BYTES).enumerate() {
        motion_init_entity(payload, i as u64);
    }
}

fn motion_checksum(payloads: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for word in payloads.chunks(8) {
        h ^= motion_load_le(word) as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn fib_expected(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        let t = a.wrapping_add(b);
        a = b;
        b = t;
    }
    a
}

const PFOR_ITEMS: usize = 16;
const PFOR_ITEM_ROUNDS: u32 = 256;

fn pfor_item_work(item: u64) -> u64 {
    let mut x = item.wrapping_add(1);
    for _ in 0..PFOR_ITEM_ROUNDS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

fn pfor_expected_sum() -> u64 {
    (0..PFOR_ITEMS as u64).fold(0u64, |sum, i| sum.wrapping_add(pfor_item_work(i)))
}

// ---------------------------------------------------------------------------------------------
// Command line, timing and output: the same rules as bench/peers/peer_common.h.
// ---------------------------------------------------------------------------------------------

const PROG: &str = "baton-peer-rayon";

fn usage(why: &str) -> ! {
    eprintln!("{}: {}", PROG, why);
    eprintln!("usage: {} CASE WORKERS ARG1 [ARG2]", PROG);
    eprintln!("  fib N | pfor16_hot SAMPLES | pfor16_after_idle SAMPLES | motion ENTITIES TICKS");
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

fn elapsed_ns(t0: Instant) -> u64 {
    let d = t0.elapsed();
    d.as_secs() * 1_000_000_000 + d.subsec_nanos() as u64
}

// Median in nanoseconds; even count: mean of the two middle samples, as peer_common.h does.
fn median_ns(samples: &mut [u64]) -> f64 {
    samples.sort_unstable();
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2] as f64
    } else {
        (samples[n / 2 - 1] as f64 + samples[n / 2] as f64) / 2.0
    }
}

// ---------------------------------------------------------------------------------------------
// The cases.
// ---------------------------------------------------------------------------------------------

fn fib(n: u32) -> u64 {
    if n < 2 {
        return n as u64;
    }
    let (x, y) = rayon::join(|| fib(n - 1), || fib(n - 2));
    x + y
}

fn run_fib(pool: &rayon::ThreadPool, n: u32) {
    let warm = pool.install(|| fib(WARMUP_FIB_N));
    if warm != fib_expected(WARMUP_FIB_N) {
        wrong(format!(
            "warm-up fib({}) = {}, expected {}",
            WARMUP_FIB_N,
            warm,
            fib_expected(WARMUP_FIB_N)
        ));
    }
    let t0 = Instant::now();
    let result = pool.install(|| fib(n));
    let ns = elapsed_ns(t0);
    if result != fib_expected(n) {
        wrong(format!(
            "fib({}) = {}, expected {}",
            n,
            result,
            fib_expected(n)
        ));
    }
    print_result(ns as f64 / 1e9, result);
}

// Called from main, which is not a pool thread, so every loop takes rayon's injection path.
fn pfor16(pool: &rayon::ThreadPool, out: &mut [u64; PFOR_ITEMS]) {
    pool.install(|| {
        out.par_iter_mut()
            .enumerate()
            .for_each(|(i, o)| *o = pfor_item_work(i as u64))
    });
}

fn run_pfor16(pool: &rayon::ThreadPool, samples: u64, after_idle: bool) {
    let expected = pfor_expected_sum();
    let sum = |out: &[u64; PFOR_ITEMS]| out.iter().fold(0u64, |s, &v| s.wrapping_add(v));
    let mut out = [0u64; PFOR_ITEMS];
    for i in 0..PFOR_WARMUP_LOOPS {
        out.fill(0);
        pfor16(pool, &mut out);
        if sum(&out) != expected {
            wrong(format!(
                "warm-up loop {} summed to {}, expected {}",
                i,
                sum(&out),
                expected
            ));
        }
    }
    let mut lat = Vec::with_capacity(samples as usize);
    let mut check = 0u64;
    for _ in 0..samples {
        // Cleared so that a loop that skips items cannot reuse the previous loop's values.
        out.fill(0);
        if after_idle {
            std::thread::sleep(IDLE_SLEEP);
        }
        let t0 = Instant::now();
        pfor16(pool, &mut out);
        lat.push(elapsed_ns(t0));
        check = check.wrapping_add(sum(&out));
    }
    let median = median_ns(&mut lat);
    if check != samples.wrapping_mul(expected) {
        wrong(format!(
            "{} loops summed to {}, expected {}",
            samples,
            check,
            samples.wrapping_mul(expected)
        ));
    }
    print_result(median / 1e9, check);
}

fn run_motion(pool: &rayon::ThreadPool, entities: u64, ticks: u64) {
    let mut payloads = vec![0u8; entities as usize * MOTION_PAYLOAD_BYTES];
    motion_init(&mut payloads);
    let t0 = Instant::now();
    for _ in 0..ticks {
        pool.install(|| {
            payloads
                .par_chunks_mut(MOTION_PAYLOAD_BYTES)
                .for_each(motion_update)
        });
    }
    let ns = elapsed_ns(t0);
    // No self-check: a serial reference would double the memory; the driver checks the sum.
    print_result(ns as f64 / 1e9, motion_checksum(&payloads));
}

enum Case {
    Fib(u32),
    Pfor16 { samples: u64, after_idle: bool },
    Motion { entities: u64, ticks: u64 },
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 || args.len() > 5 {
        usage("wrong number of arguments");
    }
    let workers = parse_u64(&args[2], 1, MAX_WORKERS)
        .unwrap_or_else(|| usage("WORKERS must be an integer from 1 to 4096"));
    let case = match args[1].as_str() {
        "fib" => {
            if args.len() != 4 {
                usage("fib takes one argument, N");
            }
            let n = parse_u64(&args[3], 0, MAX_FIB_N)
                .unwrap_or_else(|| usage("N must be an integer from 0 to 93"));
            Case::Fib(n as u32)
        }
        which @ ("pfor16_hot" | "pfor16_after_idle") => {
            if args.len() != 4 {
                usage("pfor16 cases take one argument, SAMPLES");
            }
            let samples = parse_u64(&args[3], 1, MAX_SAMPLES)
                .unwrap_or_else(|| usage("SAMPLES must be an integer from 1 to 100000000"));
            Case::Pfor16 {
                samples,
                after_idle: which == "pfor16_after_idle",
            }
        }
        "motion" => {
            if args.len() != 5 {
                usage("motion takes two arguments, ENTITIES and TICKS");
            }
            let entities = parse_u64(&args[3], 1, MAX_ENTITIES)
                .unwrap_or_else(|| usage("ENTITIES must be an integer from 1 to 2^36"));
            let ticks = parse_u64(&args[4], 1, u32::MAX as u64)
                .unwrap_or_else(|| usage("TICKS must be an integer from 1 to 2^32-1"));
            Case::Motion { entities, ticks }
        }
        _ => usage("unknown case"),
    };

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers as usize)
        .build()
        .unwrap_or_else(|e| {
            eprintln!(
                "{}: cannot build a pool of {} threads: {}",
                PROG, workers, e
            );
            process::exit(EXIT_USAGE);
        });
    match case {
        Case::Fib(n) => run_fib(&pool, n),
        Case::Pfor16 {
            samples,
            after_idle,
        } => run_pfor16(&pool, samples, after_idle),
        Case::Motion { entities, ticks } => run_motion(&pool, entities, ticks),
    }
}
