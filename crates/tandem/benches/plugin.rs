#![allow(
    missing_docs,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used
)]
//! Plugin transport latency: echo of 100 bytes, Rust host → Python plugin over a unix socket
//! (TLS off and on), against the floor: a bare grpcio server answering the same bytes over the
//! same kind of socket (`bench/grpc_floor.py`), called with the same tonic client.
//!
//! Run: `cargo bench -p tandem --all-features --bench plugin` (env `BENCH_CALLS`, default 3000
//! per variant, interleaved in rounds so machine noise hits all variants alike).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tandem::plugin::Host;
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

async fn plugin(dir: &Path, tls: bool) -> Host {
    std::fs::write(dir.join("bench_app.py"), APP).expect("write app");
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

    let mut floor = floor(&dir).await;
    let plain = plugin(&dir, false).await;
    let tls = plugin(&dir, true).await;

    // Warm up every path.
    let mut sink = Vec::new();
    time_floor(&floor.channel, 200, &mut sink).await;
    time_plugin(&plain, 200, &mut sink).await;
    time_plugin(&tls, 200, &mut sink).await;

    // The same tonic client as the floor, straight to the plugin's channel (no Host): splits
    // the gap into host-side and plugin-side overhead.
    let direct = plain.channel().expect("plugin channel");
    let (mut f, mut p, mut t, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        time_floor(&floor.channel, per_round, &mut f).await;
        time_plugin(&plain, per_round, &mut p).await;
        time_plugin(&tls, per_round, &mut t).await;
        time_floor(&direct, per_round, &mut d).await;
    }
    plain.kill().await;
    tls.kill().await;
    drop(floor.child.stdin.take());
    let _ = floor.child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    for v in [&mut f, &mut p, &mut t, &mut d] {
        v.sort();
    }
    let f50 = percentile(&f, 0.5);
    println!("plugin echo, {PAYLOAD} B, unix socket, {} sequential calls per variant ({ROUNDS} interleaved rounds)", f.len());
    println!();
    println!("| variant | p50 | p99 | p50 / floor |");
    println!("|---|---|---|---|");
    for (name, v) in [
        ("floor: bare grpcio (aio, generic handler)", &f),
        ("tandem plugin, TLS off", &p),
        ("tandem plugin, AutoMTLS on", &t),
        ("bare tonic client → Python plugin, TLS off (no Host)", &d),
    ] {
        let p50 = percentile(v, 0.5);
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.2}× |",
            p50.as_secs_f64() * 1e6,
            percentile(v, 0.99).as_secs_f64() * 1e6,
            p50.as_secs_f64() / f50.as_secs_f64()
        );
    }
    println!();
    println!("pool: skipped (tandem::process::Pool is not on main yet)");
}
