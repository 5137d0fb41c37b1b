//! A lean load generator for `inference.InferenceService/Predict`: `concurrency` tasks on one
//! thread (tokio current-thread runtime) spread over `connections` HTTP/2 connections (each a
//! bare tonic `Channel`, so SO_REUSEPORT can place them on different server processes), each
//! task calling Predict back to back with the next input of a JSON-lines file. Each call goes
//! to the connection with the fewest calls in flight, as `tandem::grpc`'s balancer does: the
//! kernel's hash may put five of eight connections on one server process, and a static split
//! would load that process more.
//!
//! It exists so `bench/grpc_bench.py` measures the server, not its client: a Python grpc.aio
//! client spends 0.3–0.45 ms CPU per call on the cores the server needs; this one a few µs.
//!
//! ```sh
//! cargo build --release -p tandem --all-features --example grpc_load
//! $CARGO_TARGET_DIR/release/examples/grpc_load --target 127.0.0.1:50051 --inputs payments.jsonl \
//!     [--concurrency 64] [--connections 8] [--warmup 1.5] [--duration 5] [--model risk]
//! ```
//!
//! Prints one JSON object: `latencies_ms` summary (`p50`, `p99`, `n` measured calls), `errors`
//! (failed calls in the measured window, with the first status seen), `total` calls made
//! (warm-up included), `mean_batch` (the mean `tandem-batch-size` trailer of measured calls:
//! the size of the batch a call was served in; 0 from a server that does not send it),
//! `cpu_s` (this process's user + system CPU seconds) and `duration`.
#![allow(clippy::print_stdout, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem::proto::inference::inference_service_client::InferenceServiceClient;
use tandem::proto::inference::PredictRequest;
use tonic::transport::{Channel, Endpoint};

mod support;

use support::BoxError;

#[derive(Debug)]
struct Args {
    target: String,
    inputs: String,
    model: String,
    concurrency: usize,
    connections: usize,
    warmup: f64,
    duration: f64,
}

fn parse_args() -> Result<Args, BoxError> {
    let map = support::options()?;
    let take = |name: &str, default: Option<&str>| -> Result<String, BoxError> {
        map.get(name)
            .cloned()
            .or_else(|| default.map(str::to_owned))
            .ok_or_else(|| format!("missing required option --{name}").into())
    };
    Ok(Args {
        target: take("target", None)?,
        inputs: take("inputs", None)?,
        model: take("model", Some("risk"))?,
        concurrency: take("concurrency", Some("64"))?.parse()?,
        connections: take("connections", Some("8"))?.parse()?,
        warmup: take("warmup", Some("1.5"))?.parse()?,
        duration: take("duration", Some("5"))?.parse()?,
    })
}

#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<f64>,
    errors: u64,
    total: u64,
    first_error: Option<String>,
    /// Sum of the `tandem-batch-size` trailers of measured calls (0 when the server sends none).
    batch_sum: u64,
}

async fn user(
    conns: Arc<Conns>,
    model: String,
    inputs: Arc<Vec<Vec<u8>>>,
    start: usize,
    step: usize,
    measure_from: Instant,
    stop_at: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut k = start;
    loop {
        let t0 = Instant::now();
        if t0 >= stop_at {
            return tally;
        }
        let mut req = tonic::Request::new(PredictRequest {
            model_name: model.clone(),
            input_data: inputs[k % inputs.len()].clone(),
            parameters: HashMap::new(),
        });
        req.set_timeout(Duration::from_secs(10));
        let conn = conns.least_loaded(k);
        k += step;
        let mut client = conns.clients[conn].clone();
        conns.in_flight[conn].fetch_add(1, Ordering::Relaxed);
        let outcome = client.predict(req).await;
        conns.in_flight[conn].fetch_sub(1, Ordering::Relaxed);
        let t1 = Instant::now();
        tally.total += 1;
        if t0 < measure_from || t1 > stop_at {
            continue;
        }
        match outcome {
            Ok(reply) => {
                tally.latencies.push((t1 - t0).as_secs_f64() * 1000.0);
                tally.batch_sum += reply
                    .metadata()
                    .get("tandem-batch-size")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            Err(status) => {
                tally.errors += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(format!("{:?}: {}", status.code(), status.message()));
                }
            }
        }
    }
}

/// The connections and the calls in flight on each.
struct Conns {
    clients: Vec<InferenceServiceClient<Channel>>,
    in_flight: Vec<AtomicUsize>,
}

impl Conns {
    /// The connection with the fewest calls in flight; ties go round from `salt`.
    fn least_loaded(&self, salt: usize) -> usize {
        let n = self.clients.len();
        (0..n)
            .map(|i| (salt + i) % n)
            .min_by_key(|&i| self.in_flight[i].load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

async fn run(args: Args) -> Result<serde_json::Value, BoxError> {
    let inputs: Vec<Vec<u8>> = std::fs::read_to_string(&args.inputs)
        .map_err(|e| format!("cannot read --inputs {}: {e}", args.inputs))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if inputs.is_empty() {
        return Err(format!("--inputs {} holds no JSON lines", args.inputs).into());
    }
    let inputs = Arc::new(inputs);
    let endpoint = Endpoint::from_shared(format!("http://{}", args.target))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let mut clients = Vec::new();
    for _ in 0..args.connections.max(1) {
        // One connect() per Channel: a separate HTTP/2 connection each.
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {}: {e} (is the server up?)", args.target))?;
        clients.push(
            InferenceServiceClient::new(channel)
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
        );
    }
    let conns = Arc::new(Conns {
        in_flight: clients.iter().map(|_| AtomicUsize::new(0)).collect(),
        clients,
    });
    let cpu0 = support::cpu_seconds();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let stop_at = measure_from + Duration::from_secs_f64(args.duration);
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|i| {
            tokio::spawn(user(
                conns.clone(),
                args.model.clone(),
                inputs.clone(),
                i,
                args.concurrency,
                measure_from,
                stop_at,
            ))
        })
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await?;
        all.latencies.extend(t.latencies);
        all.errors += t.errors;
        all.total += t.total;
        all.batch_sum += t.batch_sum;
        all.first_error = all.first_error.or(t.first_error);
    }
    let cpu = support::cpu_seconds() - cpu0;
    all.latencies.sort_by(f64::total_cmp);
    Ok(serde_json::json!({
        "n": all.latencies.len(),
        "p50": pct(&all.latencies, 0.50),
        "p99": pct(&all.latencies, 0.99),
        "errors": all.errors,
        "first_error": all.first_error,
        "total": all.total,
        "mean_batch": all.batch_sum as f64 / all.latencies.len().max(1) as f64,
        "cpu_s": cpu,
        "duration": args.duration,
    }))
}

fn main() -> std::process::ExitCode {
    let outcome = parse_args().and_then(|args| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(run(args))
    });
    match outcome {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("grpc_load: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
