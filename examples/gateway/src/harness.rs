//! Shared by `gateway-load` and the end-to-end test: a tiny HTTP client and child processes
//! that live in their own process group and are killed as a group.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::os::unix::process::CommandExt;

/// A keep-alive HTTP/1 client.
pub(crate) type Http = Client<HttpConnector, Full<Bytes>>;

/// A new client.
pub(crate) fn http() -> Http {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http()
}

/// Sends a request; returns the status and the body.
pub(crate) async fn send(
    client: &Http,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, Bytes), String> {
    exchange(client, method, url, headers, body)
        .await
        .map(|(status, _, body)| (status, body))
}

/// Sends a request; returns the status, the response headers and the body.
pub(crate) async fn exchange(
    client: &Http,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, hyper::HeaderMap, Bytes), String> {
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, parts.headers, body))
}

/// Sends a request and parses a JSON answer.
pub(crate) async fn json(
    client: &Http,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, serde_json::Value), String> {
    let (status, body) = send(client, method, url, headers, body).await?;
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
    Ok((status, v))
}

/// Polls `cond` until it holds or `timeout` passes.
pub(crate) async fn wait_for<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A child in its own process group; killed (group-wide) and reaped on drop.
#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) name: String,
    child: Option<Child>,
}

impl Proc {
    /// Starts `program args` in `dir` with `env`, output appended to `log`.
    pub(crate) fn start(
        name: &str,
        program: &Path,
        args: &[&str],
        dir: &Path,
        env: &[(&str, String)],
        log: &Path,
    ) -> Result<Proc, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", program.display()))?;
        Ok(Proc {
            name: name.into(),
            child: Some(child),
        })
    }

    /// The process id (also its group id).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends `signal` to the group, waits up to `grace` for the leader, then SIGKILLs the
    /// group; returns whether it exited on its own.
    pub(crate) fn stop(&mut self, signal: &str, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args([signal, "--", &group]).status();
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &group])
                    .stderr(Stdio::null())
                    .status();
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = child.wait();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop("-TERM", Duration::from_secs(3));
    }
}

/// The repository root.
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free loopback port.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Starts `python -m tandem serve inference:app` on `port` (with an injected delay).
pub(crate) fn start_inference(
    python: &Path,
    port: u16,
    delay_ms: u64,
    log: &Path,
) -> Result<Proc, String> {
    let services = repo_root().join("examples/gateway/services");
    Proc::start(
        "inference",
        python,
        &[
            "-m",
            "tandem",
            "serve",
            "inference:app",
            "--port",
            &port.to_string(),
            "--workers",
            "2",
        ],
        &services,
        &[("GATEWAY_INFERENCE_DELAY_MS", delay_ms.to_string())],
        log,
    )
}

/// Waits until the inference service answers health checks.
pub(crate) async fn inference_ready(port: u16, timeout: Duration) -> bool {
    let Ok(client) = tandem::grpc::Client::from_uri(&format!("grpc://127.0.0.1:{port}")) else {
        return false;
    };
    client.wait_ready(timeout).await.is_ok()
}

/// Percentile `q` (0..1) of sorted `v`, in milliseconds.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// A realistic payment body number `i`.
pub(crate) fn payment_body(i: usize) -> Vec<u8> {
    const CATS: [&str; 5] = ["grocery", "fuel", "restaurant", "electronics", "travel"];
    const CUR: [&str; 3] = ["EUR", "USD", "GBP"];
    let amount = 500 + (i * 7919) % 250_000;
    let mismatch = i % 11 == 0;
    serde_json::json!({
        "amount_cents": amount,
        "currency": CUR[i % 3],
        "merchant_id": format!("m{}", i % 7),
        "merchant_category": CATS[i % 5],
        "card_hash": format!("c{:08x}", i * 2654435761usize % 0xffff_ffff),
        "card_country": "FR",
        "ip_country": if mismatch { "US" } else { "FR" },
    })
    .to_string()
    .into_bytes()
}
