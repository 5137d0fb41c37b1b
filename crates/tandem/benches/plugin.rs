#![allow(
    missing_docs,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used
)]
//! Plugin transport latency: echo of 100 bytes, Rust host → Python plugin over a unix socket
//! (TLS off and on), against the floor: a bare grpcio server answering the same bytes over the
//! same kind of socket (`bench/grpc_floor.py`), called with the same tonic client. In the same
//! run: that floor loaded by the same `Host` as a plugin (TLS off, and AutoMTLS behind the SDK's
//! own TLS front: the TLS floor), and the process pool (1 worker) serving the same app.
//!
//! Run: `cargo bench -p tandem --all-features --bench plugin` (env `BENCH_CALLS`, default 3000
//! per variant, interleaved in rounds so machine noise hits all variants alike).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tandem::plugin::Host;
use tandem::process::Pool;
use tandem::proto::call::{call_client::CallClient, CallRequest};
use tandem::{Payload, Request};
use tonic::transport::{Channel, Endpoint, Uri};

const PAYLOAD: usize = 100;
const ROUNDS: usize = 10;

const APP: &str = r#"
import tandem

app = tandem.App("bench")


@app.handler("echo")
def echo(payload, ctx):
    return payload
"#;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    std::env::var_os("TANDEM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Floor {
    child: std::process::Child,
    channel: Channel,
}

async fn floor(dir: &Path) -> Floor {
    let sock = dir.join("floor.sock");
    let mut child = Command::new(python())
        .arg(repo_root().join("bench/grpc_floor.py"))
        .arg(&sock)
        .arg(PAYLOAD.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start bench/grpc_floor.py");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("floor ready line");
    assert_eq!(line.trim(), "ready", "floor did not start");
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                tokio::net::UnixStream::connect(sock)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await
        .expect("connect to floor");
    Floor { child, channel }
}

/// The floor as a go-plugin plugin (`grpc_floor.py --plugin`), loaded by the same `Host`.
async fn floor_plugin(dir: &Path, tls: bool) -> Host {
    Host::builder(python())
        .arg(repo_root().join("bench/grpc_floor.py"))
        .args(["--plugin", &PAYLOAD.to_string()])
        .current_dir(dir)
        .auto_mtls(tls)
        .start_timeout(Duration::from_secs(30))
        .start()
        .await
        .expect("start bench/grpc_floor.py --plugin")
}

async fn pool(dir: &Path) -> Pool {
    Pool::builder("bench_app:app")
        .workers(1)
        .python(python())
        .cwd(dir.to_path_buf())
        .env("PYTHONPATH", dir.display().to_string())
        .timeout(Duration::from_secs(5))
        .build()
        .await
        .expect("start the pool")
}

async fn time_pool(pool: &Pool, n: usize, out: &mut Vec<Duration>) {
    for _ in 0..n {
        let req = Request::new("echo", Payload::raw(vec![b'x'; PAYLOAD]))
            .with_timeout(Duration::from_secs(5));
        let t = Instant::now();
        let reply = pool.call(req).await.expect("pool call");
        out.push(t.elapsed());
        assert_eq!(reply.payload().len(), PAYLOAD);
    }
}

async fn plugin(dir: &Path, tls: bool) -> Host {
    Host::builder(python())
        .args(["-m", "tandem", "plugin", "bench_app:app"])
        .env("PYTHONPATH", dir)
        .current_dir(dir)
        .auto_mtls(tls)
        .start_timeout(Duration::from_secs(30))
        .start()
        .await
        .expect("start the Python plugin")
}

async fn time_floor(channel: &Channel, n: usize, out: &mut Vec<Duration>) {
    let mut client = CallClient::new(channel.clone());
    for _ in 0..n {
        let req = CallRequest {
            method: "echo".into(),
            payload: vec![b'x'; PAYLOAD],
            codec: "raw".into(),
            ..Default::default()
        };
        let t = Instant::now();
        let reply = client.invoke(req).await.expect("floor call");
        out.push(t.elapsed());
        std::hint::black_box(reply);
    }
}

async fn time_plugin(host: &Host, n: usize, out: &mut Vec<Duration>) {
    for _ in 0..n {
        let req = Request::new("echo", Payload::raw(vec![b'x'; PAYLOAD]))
            .with_timeout(Duration::from_secs(5));
        let t = Instant::now();
        let reply = host.call(req).await.expect("plugin call");
        out.push(t.elapsed());
        assert_eq!(reply.payload().len(), PAYLOAD);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let per_round = (calls / ROUNDS).max(1);
    let dir = std::env::temp_dir().join(format!("tandem-bench-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");

    std::fs::write(dir.join("bench_app.py"), APP).expect("write app");
    let mut floor = floor(&dir).await;
    let floor_host = floor_plugin(&dir, false).await;
    let floor_tls = floor_plugin(&dir, true).await;
    let plain = plugin(&dir, false).await;
    let tls = plugin(&dir, true).await;
    let pool = pool(&dir).await;

    // Warm up every path.
    let mut sink = Vec::new();
    time_floor(&floor.channel, 200, &mut sink).await;
    for host in [&floor_host, &floor_tls, &plain, &tls] {
        time_plugin(host, 200, &mut sink).await;
    }
    time_pool(&pool, 200, &mut sink).await;

    // The same tonic client as the floor, straight to the plugin's channel (no Host): splits
    // the gap into host-side and plugin-side overhead.
    let direct = plain.channel().expect("plugin channel");
    let mut v: [Vec<Duration>; 7] = Default::default();
    for _ in 0..ROUNDS {
        time_floor(&floor.channel, per_round, &mut v[0]).await;
        time_plugin(&floor_host, per_round, &mut v[1]).await;
        time_plugin(&floor_tls, per_round, &mut v[2]).await;
        time_plugin(&plain, per_round, &mut v[3]).await;
        time_plugin(&tls, per_round, &mut v[4]).await;
        time_floor(&direct, per_round, &mut v[5]).await;
        time_pool(&pool, per_round, &mut v[6]).await;
    }
    for host in [&floor_host, &floor_tls, &plain, &tls] {
        host.kill().await;
    }
    pool.shutdown().await;
    drop(floor.child.stdin.take());
    let _ = floor.child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    for x in &mut v {
        x.sort();
    }
    let p50 = |i: usize| percentile(&v[i], 0.5).as_secs_f64() * 1e6;
    println!("plugin echo, {PAYLOAD} B, unix socket, {} sequential calls per variant ({ROUNDS} interleaved rounds)", v[0].len());
    println!();
    println!("| variant | p50 | p99 | p50 / floor | p50 / same-TLS floor via Host |");
    println!("|---|---|---|---|---|");
    // (name, samples, the Host floor with the same TLS setup, if the row is a Host row)
    let rows: [(&str, usize, Option<usize>); 7] = [
        (
            "floor: bare grpcio (aio, generic handler), bare tonic client",
            0,
            None,
        ),
        ("floor via Host (floor as a plugin), TLS off", 1, Some(1)),
        ("floor via Host, AutoMTLS on (SDK's TLS front)", 2, Some(2)),
        ("tandem plugin, TLS off", 3, Some(1)),
        ("tandem plugin, AutoMTLS on", 4, Some(2)),
        (
            "bare tonic client → Python plugin, TLS off (no Host)",
            5,
            None,
        ),
        ("process pool, 1 worker (same app)", 6, None),
    ];
    for (name, i, same) in rows {
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.2}× | {} |",
            p50(i),
            percentile(&v[i], 0.99).as_secs_f64() * 1e6,
            p50(i) / p50(0),
            same.map_or("—".to_owned(), |j| format!("{:.2}×", p50(i) / p50(j)))
        );
    }
    println!();
    println!(
        "goal, plugin p50 within 1.2× the floor: TLS off {:.2}× the bare floor ({:.2}× the Host floor); \
         AutoMTLS {:.2}× the TLS floor via Host",
        p50(3) / p50(0),
        p50(3) / p50(1),
        p50(4) / p50(2)
    );
}
