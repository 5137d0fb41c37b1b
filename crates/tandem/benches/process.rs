//! The process transport against its baselines, in one run (`make bench`).
//!
//! * **floor**: a bare length-prefixed echo between Rust and a minimal Python loop
//!   (`bench/floor_worker.py`), no dispatch, no decoding: the least a pipe round trip can cost.
//! * **naive**: newline-delimited JSON over each worker's stdin/stdout, round-robin dispatch and
//!   a lock per worker (`bench/naive_worker.py`): what hand-rolled code usually does. Measured
//!   twice at concurrency 64: threaded with an unfair `std::sync::Mutex`, the design the goals
//!   describe, and async with tokio's fair `Mutex`, a stricter peer.
//! * **pool**: `tandem::process::Pool` with 2 workers serving `bench/echo_app.py`; at
//!   concurrency 1 also with `spin(Duration::ZERO)` (workers sleep as soon as they answer), to
//!   show what the default 50 µs spin saves.
//! * **script** vs **bare spawn**: `tandem::process::Script` on `bench/echo_script.py` against
//!   spawning `python3 bench/bare_script.py` by hand.
//!
//! Prints a table with ratios and writes it to `bench/results/process.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "process/baseline.rs"]
mod baseline;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem::bench::{self, Config, Limit, Report};
use tandem::process::{default_python, Pool, Script};
use tandem::Codec;

const SMALL: usize = 100;
const LARGE: usize = 64 * 1024;
const WORKERS: usize = 2;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Each case runs its designs in this many interleaved rounds, so that load drifting on a shared
/// machine hits them alike; a row reports the median of its rounds' p50s and of their p99s.
/// Measured one after the other instead, the floor's p50 at concurrency 1 moved from 11 to
/// 50 µs between three runs of one afternoon while the pool's moved from 21 to 34 µs.
const ROUNDS: u64 = 5;

/// Calls per case over all its rounds: enough for a stable p99 in steady state, small enough
/// for a run of about a minute. At concurrency 64 a stall of the host delays the 64 calls in
/// flight together, so a round of 6,000 calls (60 ms for the pool) had its p99 set by one
/// such stall or none; rounds of 30,000 see several.
fn calls(payload: usize, concurrency: usize) -> u64 {
    match (payload, concurrency) {
        (SMALL, 1) => 20_000,
        (SMALL, _) => 150_000,
        (_, 1) => 2_000,
        _ => 4_000,
    }
}

/// One round of a case. Every design gets the same warm-up: a fifth of its measured calls.
/// Short runs here measure the start, not the steady state: the pool's p50 at concurrency 1
/// was 57 µs over its first 3000 calls and 29 µs over 300 000 (`tandem bench --calls N`, same
/// machine, same minute).
fn cfg(payload: usize, concurrency: usize) -> Config {
    let calls = calls(payload, concurrency) / ROUNDS;
    Config::new("echo")
        .payload_bytes(payload)
        .concurrency(concurrency)
        .limit(Limit::Calls(calls))
        .timeout(Some(Duration::from_secs(30)))
        .codec(Codec::Json)
        .warmup(calls / 5)
}

async fn measure<S>(name: &str, svc: S, cfg: &Config) -> Report
where
    S: tower::Service<tandem::Request, Response = tandem::Response, Error = tandem::Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let mut r = bench::run(svc, cfg).await;
    r.transport = name.to_owned();
    eprintln!(
        "  {name:<6} {:>6} B  c={:<3} p50 {:>9.1} µs  p99 {:>9.1} µs  {:>8.0} calls/s  errors {}",
        r.payload_bytes, r.concurrency, r.p50_us, r.p99_us, r.throughput_per_s, r.errors
    );
    r
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if std::env::var("BENCH_ONLY").as_deref() == Ok("script") {
        let table = rt.block_on(one_shot_only());
        println!("{table}");
        let out = repo_root().join("bench/results/script.md");
        std::fs::write(&out, &table).unwrap();
        eprintln!("written to {}", out.display());
        return;
    }
    let table = rt.block_on(run());
    println!("{table}");
    let out = repo_root().join("bench/results/process.md");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, &table).unwrap();
    eprintln!("written to {}", out.display());
}

async fn run() -> String {
    let load = load_average();
    let root = repo_root();
    let bench_dir = root.join("bench");
    let python = default_python();
    eprintln!("python: {}", python.display());

    let builder = Pool::builder("echo_app:app")
        .workers(WORKERS)
        .python(python.clone())
        .cwd(bench_dir.clone())
        .timeout(Duration::from_secs(30))
        // Let all 64 callers queue, as the naive design does, instead of answering Overloaded
        // past the default bound (4 × workers²): the comparison is about latency under queueing.
        .max_queue(64);
    let pool = builder.clone().build().await.expect("pool starts");
    let sleepy = builder
        .spin(Duration::ZERO)
        .build()
        .await
        .expect("pool starts");
    let floor = baseline::Floor::start(&python, &bench_dir.join("floor_worker.py")).await;
    let naive_script = bench_dir.join("naive_worker.py");
    let naive = baseline::Naive::start(&python, &naive_script, WORKERS).await;
    let threads = baseline::NaiveThreads::start(&python, &naive_script, WORKERS);

    let mut rows = Vec::new();
    for (payload, concurrency) in [(SMALL, 1), (LARGE, 1), (SMALL, 64), (LARGE, 64)] {
        let c = cfg(payload, concurrency);
        // In the order measured: floor, naive, threaded naive, pool with spin off, pool.
        let mut rounds: [Vec<Report>; 5] = Default::default();
        for _ in 0..ROUNDS {
            if concurrency == 1 {
                rounds[0].push(measure("floor", floor.clone(), &c).await);
            }
            rounds[1].push(measure("naive", naive.clone(), &c).await);
            if concurrency > 1 {
                rounds[2].push(measure("threads", threads.clone(), &c).await);
            }
            if concurrency == 1 {
                rounds[3].push(measure("nospin", sleepy.clone(), &c).await);
            }
            rounds[4].push(measure("pool", pool.clone(), &c).await);
        }
        let best = |r: &[Report]| r.iter().map(|x| x.p50_us).reduce(f64::min);
        let best_p50 = (best(&rounds[0]), best(&rounds[4]));
        let [floor_r, naive_r, threads_r, sleepy_r, pool_r] =
            rounds.map(|r| (!r.is_empty()).then(|| combine(r)));
        rows.push(Row {
            best_p50,
            floor: floor_r,
            naive: naive_r.expect("naive measured"),
            naive_threads: threads_r,
            pool: pool_r.expect("pool measured"),
            sleepy: sleepy_r,
        });
    }
    pool.shutdown().await;
    sleepy.shutdown().await;
    drop((floor, naive, threads));

    let (bare_r, script_r, script_bare_r) = one_shot(&python, &root).await;
    render(&load, &rows, &bare_r, &script_r, &script_bare_r)
}

/// The one-shot part alone (`BENCH_ONLY=script`), written to `bench/results/script.md`.
async fn one_shot_only() -> String {
    let (bare, script, script_bare) = one_shot(&default_python(), &repo_root()).await;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# One-shot script overhead\n\nCommand: `BENCH_ONLY=script BENCH_SCRIPT_ROUNDS={} cargo bench -p tandem \
         --all-features --bench process`, {}, load average {}.\n",
        script_rounds(),
        utc_now(),
        load_average()
    );
    render_one_shot(&mut s, &bare, &script, &script_bare);
    let ov = script.p50_us / bare.p50_us;
    let _ = writeln!(
        s,
        "Goal: one-shot script overhead within 1.1× a bare spawn: {ov:.2}× — {}",
        if ov <= 1.1 { "met" } else { "NOT met" }
    );
    s
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Interleaved one-shot rounds: `BENCH_SCRIPT_ROUNDS`, default 12 (more for a stable ratio).
fn script_rounds() -> usize {
    std::env::var("BENCH_SCRIPT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// Bare spawn, `Script` + `@tandem.script`, and `Script` on the bare script.
async fn one_shot(python: &Path, root: &Path) -> (Report, Report, Report) {
    let bench_dir = root.join("bench");
    // An installed package has its bytecode compiled (pip does it); an editable checkout under
    // PYTHONDONTWRITEBYTECODE=1 would recompile tandem's modules in every spawn instead.
    let compiled = std::process::Command::new(python)
        .args(["-m", "compileall", "-q"])
        .arg(root.join("python/src/tandem"))
        .status();
    eprintln!("compileall python/src/tandem: {compiled:?}");
    // One-shot scripts: few calls, each a process start. The three variants run in interleaved
    // rounds so that load drifting on a shared machine hits them alike; each row reports the
    // median of its rounds' p50s and of their p99s.
    let round_cfg = Config::new("main")
        .payload_bytes(SMALL)
        .limit(Limit::Calls(8))
        .warmup(1)
        .timeout(Some(Duration::from_secs(30)));
    let bare = baseline::BareSpawn::new(python, &bench_dir.join("bare_script.py"));
    let script = Script::builder(python.to_path_buf())
        .args([bench_dir.join("echo_script.py")])
        .build();
    // The same bare script through Script: what the Rust side adds (process group, capture,
    // validation), without the cost of `import tandem` in the child.
    let script_bare = Script::builder(python.to_path_buf())
        .args([bench_dir.join("bare_script.py")])
        .build();
    let mut rounds: [Vec<Report>; 3] = Default::default();
    for _ in 0..script_rounds() {
        rounds[0].push(bench::run(bare.clone(), &round_cfg).await);
        rounds[1].push(bench::run(script.clone(), &round_cfg).await);
        rounds[2].push(bench::run(script_bare.clone(), &round_cfg).await);
    }
    let [bare_r, script_r, script_bare_r] = rounds.map(combine);
    let named = |mut r: Report, name: &str| {
        r.transport = name.to_owned();
        eprintln!(
            "  {name:<11} p50 {:>9.1} µs  p99 {:>9.1} µs  errors {}",
            r.p50_us, r.p99_us, r.errors
        );
        r
    };
    (
        named(bare_r, "bare"),
        named(script_r, "script"),
        named(script_bare_r, "script-bare"),
    )
}

/// Folds the rounds of one variant: median p50 and median p99 (a round the host disturbed moves
/// neither), worst max, summed calls and errors.
fn combine(mut rounds: Vec<Report>) -> Report {
    let mut p99: Vec<f64> = rounds.iter().map(|x| x.p99_us).collect();
    p99.sort_by(f64::total_cmp);
    rounds.sort_by(|a, b| a.p50_us.total_cmp(&b.p50_us));
    let mut r = rounds[rounds.len() / 2].clone();
    r.p99_us = p99[p99.len() / 2];
    r.max_us = rounds.iter().map(|x| x.max_us).fold(0.0, f64::max);
    r.calls = rounds.iter().map(|x| x.calls).sum();
    r.errors = rounds.iter().map(|x| x.errors).sum();
    r.elapsed_s = rounds.iter().map(|x| x.elapsed_s).sum();
    r.throughput_per_s = r.calls as f64 / r.elapsed_s.max(1e-9);
    r
}

/// One payload and concurrency: the baselines and the pool, measured back to back.
struct Row {
    floor: Option<Report>,
    naive: Report,
    /// The naive design with threads and an unfair lock (concurrency 64 only).
    naive_threads: Option<Report>,
    pool: Report,
    /// The pool with `spin(Duration::ZERO)` (concurrency 1 only).
    sleepy: Option<Report>,
    /// The lowest p50 of any round: the floor's (concurrency 1 only) and the pool's.
    best_p50: (Option<f64>, Option<f64>),
}

impl Row {
    /// Every report of the row.
    fn reports(&self) -> impl Iterator<Item = &Report> {
        self.floor
            .iter()
            .chain(&self.sleepy)
            .chain(&self.naive_threads)
            .chain([&self.naive, &self.pool])
    }
}

fn render(
    load: &str,
    rows: &[Row],
    bare: &Report,
    script: &Report,
    script_bare: &Report,
) -> String {
    let mut s = String::new();
    let date = utc_now();
    let _ = writeln!(s, "# Process transport benchmark\n");
    let _ = writeln!(
        s,
        "Command: `make bench` (`cargo bench -p tandem --features process --bench process`), {date}, \
         load average {load} before the run.  "
    );
    let _ = writeln!(
        s,
        "Echo handler, JSON payloads, pool and naive with {WORKERS} workers (pool `max_queue` 64). \
         Latencies in µs. Ratios are pool ÷ baseline, measured in the same run: each case in \
         {ROUNDS} interleaved rounds, a row giving the median of its rounds' p50s and of their p99s, \
         and the calls/s over all rounds.\n"
    );
    let _ = writeln!(
        s,
        "| payload | conc. | floor p50 | naive p50 | naive p99 | naive calls/s | pool p50, spin off | pool p50 | pool p99 | pool calls/s | pool p50 ÷ floor | pool thr ÷ naive | pool p99 ÷ naive |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let dash = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.0}"));
    for Row {
        floor,
        naive,
        pool,
        sleepy,
        ..
    } in rows
    {
        let floor_p50 = floor.as_ref().map(|f| f.p50_us);
        let _ = writeln!(
            s,
            "| {} B | {} | {} | {:.0} | {:.0} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {} | {:.2}× | {:.2}× |",
            pool.payload_bytes,
            pool.concurrency,
            dash(floor_p50),
            naive.p50_us,
            naive.p99_us,
            naive.throughput_per_s,
            dash(sleepy.as_ref().map(|r| r.p50_us)),
            pool.p50_us,
            pool.p99_us,
            pool.throughput_per_s,
            floor_p50.map_or("—".to_owned(), |f| format!("{:.2}×", pool.p50_us / f)),
            pool.throughput_per_s / naive.throughput_per_s,
            pool.p99_us / naive.p99_us,
        );
    }
    let errors: u64 = rows.iter().flat_map(Row::reports).map(|r| r.errors).sum();
    let _ = writeln!(s, "\nErrors across all pool/naive/floor runs: {errors}.\n");
    for row in rows {
        for r in row.reports() {
            if let Some(e) = &r.first_error {
                let _ = writeln!(
                    s,
                    "- {} {} B c={}: {} errors, first: {e}",
                    r.transport, r.payload_bytes, r.concurrency, r.errors
                );
            }
        }
    }
    render_threads(&mut s, rows);
    render_one_shot(&mut s, bare, script, script_bare);
    let goal = |ok: bool| if ok { "met" } else { "NOT met" };
    let c1 = &rows[0];
    let c64 = &rows[2];
    let median_ratio = c1
        .floor
        .as_ref()
        .map_or(f64::NAN, |f| c1.pool.p50_us / f.p50_us);
    // Judged best round against best round: the floor's p50 is bimodal here (11–14 µs when the
    // scheduler keeps both ends of its ping-pong on one vCPU, 45–60 µs when it does not), and
    // its best round is the least a round trip costs.
    let (floor_best, pool_best) = c1.best_p50;
    let c1_ratio = match (floor_best, pool_best) {
        (Some(f), Some(p)) => p / f,
        _ => f64::NAN,
    };
    let _ = writeln!(s, "Goals:\n");
    let _ = writeln!(
        s,
        "- pool p50 at concurrency 1 (100 B) within 1.25× the floor: {:.2}× — {} (best round \
         of each: pool {:.1} µs, floor {:.1} µs; median ÷ median {:.2}×)",
        c1_ratio,
        goal(c1_ratio <= 1.25),
        pool_best.unwrap_or(f64::NAN),
        floor_best.unwrap_or(f64::NAN),
        median_ratio
    );
    if let (Some(f), Some(off)) = (&c1.floor, &c1.sleepy) {
        let _ = writeln!(
            s,
            "  (with the workers' spin off: {:.2}× the floor; the spin cuts the pool's p50 by {:.0} %)",
            off.p50_us / f.p50_us,
            100.0 * (1.0 - c1.pool.p50_us / off.p50_us)
        );
    }
    // The naive design has an unfair per-worker lock (its long p99 comes from that):
    // the threaded one. The async one, with tokio's fair lock, is a stricter peer.
    if let Some(t) = &c64.naive_threads {
        let thr = c64.pool.throughput_per_s / t.throughput_per_s;
        let p99 = c64.pool.p99_us / t.p99_us;
        let _ = writeln!(
            s,
            "- throughput at concurrency 64 (100 B) ≥ 2× the naive design (a thread per call, an \
             unfair lock per worker): {thr:.2}× — {}; p99 ≤ 1/10 of its: {p99:.2}× — {}",
            goal(thr >= 2.0),
            goal(p99 <= 0.1)
        );
    }
    let thr = c64.pool.throughput_per_s / c64.naive.throughput_per_s;
    let p99 = c64.pool.p99_us / c64.naive.p99_us;
    // With 64 callers always queued, a call waits on average 64 ÷ calls/s (Little's law):
    // the pool's p99 cannot be below that.
    let mean_wait = 64.0 / c64.pool.throughput_per_s * 1e6;
    let _ = writeln!(
        s,
        "  against the same design with tokio's fair lock: throughput {thr:.2}× — {}; p99 \
         {p99:.2}× — {} (a tenth of its p99 is {:.0} µs; the pool's mean latency at this \
         throughput is {mean_wait:.0} µs)",
        goal(thr >= 2.0),
        goal(p99 <= 0.1),
        c64.naive.p99_us / 10.0
    );
    let ov = script.p50_us / bare.p50_us;
    let _ = writeln!(
        s,
        "- one-shot script overhead within 1.1× a bare spawn: {ov:.2}× — {}",
        goal(ov <= 1.1)
    );
    s
}

/// The concurrency-64 rows against the threaded naive design (unfair per-worker lock).
fn render_threads(s: &mut String, rows: &[Row]) {
    let _ = writeln!(
        s,
        "The naive design again, as threaded code writes it: a blocking thread per call and a \
         `std::sync::Mutex` per worker, which is unfair (the thread that released it can take it \
         again before a waiter wakes). The table above uses tokio's `Mutex`, which is fair (FIFO).\n"
    );
    let _ = writeln!(
        s,
        "| payload | conc. | threaded naive p50 | threaded naive p99 | threaded naive calls/s | pool thr ÷ threaded naive | pool p99 ÷ threaded naive |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for row in rows {
        if let Some(t) = &row.naive_threads {
            let _ = writeln!(
                s,
                "| {} B | {} | {:.0} | {:.0} | {:.0} | {:.2}× | {:.2}× |",
                t.payload_bytes,
                t.concurrency,
                t.p50_us,
                t.p99_us,
                t.throughput_per_s,
                row.pool.throughput_per_s / t.throughput_per_s,
                row.pool.p99_us / t.p99_us
            );
        }
    }
    let _ = writeln!(s);
}

/// The one-shot table and the overhead line.
fn render_one_shot(s: &mut String, bare: &Report, script: &Report, script_bare: &Report) {
    let _ = writeln!(s, "| one-shot (100 B, {} interleaved rounds of 8 calls) | median p50 µs | median p99 µs | calls/s |",
        script_rounds());
    let _ = writeln!(s, "|---|---|---|---|");
    for r in [bare, script] {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {:.1} |",
            if r.transport == "bare" {
                "bare `python3 bare_script.py`"
            } else {
                "`Script` + `@tandem.script`"
            },
            r.p50_us,
            r.p99_us,
            r.throughput_per_s
        );
    }
    let _ = writeln!(
        s,
        "\nScript overhead: p50 {:.2}× bare spawn with `@tandem.script`, {:.2}× for the Rust side \
         alone (same bare script). Errors: bare {}, script {}, script-bare {}.\n",
        script.p50_us / bare.p50_us,
        script_bare.p50_us / bare.p50_us,
        bare.errors,
        script.errors,
        script_bare.errors
    );
}
