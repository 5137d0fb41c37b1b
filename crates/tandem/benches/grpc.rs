//! Echo latency of the generic call over gRPC: `tandem::grpc::Client` beside a bare tonic
//! call (one `Channel`, no balancing, health or retries) to the same `python -m tandem serve`.
//!
//! Run: `CARGO_TARGET_DIR=/work/target cargo bench -p tandem --all-features --bench grpc`
//! (env `BENCH_SECONDS` per case, default 3; `BENCH_WORKERS` server processes, default 2).
//! Prints a Markdown table; the ratios are what to compare across machines.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem::proto::call::{call_client::CallClient, CallRequest};
use tandem::{Payload, Request};

const APP: &str = "import tandem\n\napp = tandem.App('bench')\n\n\n@app.handler('echo')\ndef echo(payload, ctx):\n    return payload\n";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn python() -> PathBuf {
    std::env::var_os("TANDEM_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"))
}

fn start_server(workers: usize) -> (Server, u16) {
    let dir = std::env::temp_dir().join(format!("tandem-bench-grpc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("benchapp.py"), APP).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(python());
    cmd.args([
        "-m",
        "tandem",
        "serve",
        "benchapp:app",
        "--host",
        "127.0.0.1",
    ])
    .args([
        "--port",
        &port.to_string(),
        "--workers",
        &workers.to_string(),
    ])
    .current_dir(&dir)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    (Server(cmd.spawn().expect("python -m tandem serve")), port)
}

/// Latencies of every call made by `concurrency` tasks for `secs`.
async fn measure<F, Fut>(concurrency: usize, secs: f64, call: F) -> (Vec<Duration>, f64)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let warm_end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < warm_end {
        call().await;
    }
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    call().await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (all, rate)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() {
    let secs: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let workers: usize = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let (_server, port) = start_server(workers);
    let uri = format!("http://127.0.0.1:{port}");
    let client = tandem::grpc::Client::builder()
        .endpoint(&uri)
        .connections_per_endpoint(4)
        .build()
        .unwrap();
    client
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("server ready");
    let channel = tonic::transport::Endpoint::from_shared(uri.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();

    println!("| path | concurrency | calls/s | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|");
    let mut rates = Vec::new();
    for concurrency in [1usize, 64] {
        let c = client.clone();
        let (lat, rate) = measure(concurrency, secs, move || {
            let c = c.clone();
            async move {
                c.invoke(Request::new("echo", Payload::raw(&b"ping"[..])))
                    .await
                    .expect("echo");
            }
        })
        .await;
        println!("| tandem::grpc::Client (4 conns, {workers} server procs) | {concurrency} | {rate:.0} | {:.0} | {:.0} |", pct(&lat, 0.5), pct(&lat, 0.99));
        let ch = channel.clone();
        let (blat, brate) = measure(concurrency, secs, move || {
            let mut raw = CallClient::new(ch.clone());
            async move {
                let mut req = tonic::Request::new(CallRequest {
                    method: "echo".into(),
                    payload: b"ping".to_vec(),
                    codec: "raw".into(),
                    ..Default::default()
                });
                req.set_timeout(Duration::from_secs(5));
                raw.invoke(req).await.expect("bare echo");
            }
        })
        .await;
        println!(
            "| bare tonic CallClient (1 channel) | {concurrency} | {brate:.0} | {:.0} | {:.0} |",
            pct(&blat, 0.5),
            pct(&blat, 0.99)
        );
        rates.push((concurrency, rate / brate, pct(&lat, 0.5) / pct(&blat, 0.5)));
    }
    println!();
    for (c, r, l) in rates {
        println!("concurrency {c}: tandem/bare throughput ratio {r:.2}, p50 latency ratio {l:.2}");
    }
}
