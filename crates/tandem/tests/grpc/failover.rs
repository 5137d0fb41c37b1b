//! Several processes and endpoints: load spread, a killed process, drain, health transitions.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem::ErrorKind;

use crate::server::Server;
use crate::{client, json, pid_of, support};

/// Calls `sleep` (`s` seconds) from `concurrency` tasks until `stop`; records pids and errors.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    pids: Arc<Mutex<Vec<u32>>>,
    errors: Arc<Mutex<Vec<tandem::Error>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(c: &tandem::grpc::Client, concurrency: usize, s: f64) -> Load {
        Load::start_with(c, concurrency, s, false)
    }

    /// With `keyed`, every call carries an idempotency key (so it may be retried).
    fn start_with(c: &tandem::grpc::Client, concurrency: usize, s: f64, keyed: bool) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let pids = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..concurrency)
            .map(|_| {
                let (c, stop, ok, pids, errors) = (
                    c.clone(),
                    stop.clone(),
                    ok.clone(),
                    pids.clone(),
                    errors.clone(),
                );
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let mut req = json("sleep", serde_json::json!({"s": s}));
                        if keyed {
                            req = req.with_idempotency_key(format!("call-{n}"));
                        }
                        match c.invoke(req).await {
                            Ok(r) => {
                                pids.lock().unwrap().push(pid_of(&r.decode().unwrap()));
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => errors.lock().unwrap().push(e),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            pids,
            errors,
            tasks,
        }
    }

    /// Waits until `n` more calls succeeded.
    async fn advance(&self, n: usize) {
        let target = self.ok.load(Ordering::Relaxed) + n;
        let ok = self.ok.clone();
        assert!(
            support::wait_until(Duration::from_secs(60), || ok.load(Ordering::Relaxed)
                >= target)
            .await,
            "load stalled; errors: {:?}",
            self.errors.lock().unwrap()
        );
    }

    fn pids_since(&self, from: usize) -> BTreeSet<u32> {
        self.pids.lock().unwrap()[from..].iter().copied().collect()
    }

    fn answered(&self) -> usize {
        self.pids.lock().unwrap().len()
    }

    async fn stop(self) -> Vec<tandem::Error> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        std::mem::take(&mut *self.errors.lock().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_spreads_over_server_processes() {
    let server = Server::start("load_spreads", 2, &[]).await;
    let workers: BTreeSet<u32> = server.worker_pids().into_iter().collect();
    // 16 connections over 2 processes: all on one would take 2^-15 luck.
    let c = client(&[server.uri()], 16);
    c.wait_ready(Duration::from_secs(30)).await.unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        let r = c.invoke(json("pid", serde_json::json!({}))).await.unwrap();
        seen.insert(pid_of(&r.decode().unwrap()));
        if seen == workers {
            break;
        }
    }
    assert_eq!(seen, workers, "not every server process answered");
    server.stop().await;
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_process_fails_only_calls_in_flight() {
    let server = Server::start("killed_process", 2, &[]).await;
    let c = client(&[server.uri()], 16);
    c.wait_ready(Duration::from_secs(30)).await.unwrap();
    let concurrency = 8;
    let load = Load::start(&c, concurrency, 0.05);
    load.advance(40).await;

    let victim = server.worker_pids()[0];
    Server::signal(victim, "KILL");
    support::assert_exits(victim, Duration::from_secs(10)).await;
    // Later calls succeed, and none of them on the dead process.
    load.advance(20).await;
    let mark = load.answered();
    let failed_before_mark = load.errors.lock().unwrap().len();
    load.advance(60).await;
    assert_eq!(
        load.errors.lock().unwrap().len(),
        failed_before_mark,
        "calls failed after the client had recovered from the kill"
    );
    assert!(
        !load.pids_since(mark).contains(&victim),
        "a call was answered by a dead process"
    );
    let errors = load.stop().await;
    eprintln!(
        "{} calls failed when a process was killed: {errors:?}",
        errors.len()
    );
    // In flight = the calls running on the victim when it died, plus any call written to one of
    // its sockets in the instant before the client saw those connections close: at most one more
    // round of the load's callers.
    assert!(
        errors.len() <= 2 * concurrency,
        "{} calls failed, more than could have been in flight ({concurrency} callers): {errors:?}",
        errors.len()
    );
    for e in &errors {
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains("sleep at http://127.0.0.1"), "{e}");
    }
    server.stop().await;
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_calls_are_retried_on_another_process() {
    let server = Server::start("idempotent_retry", 2, &[]).await;
    let c = client(&[server.uri()], 16);
    let registry = tandem::metrics::Registry::new();
    c.instrument(registry.grpc_client("risk"));
    c.wait_ready(Duration::from_secs(30)).await.unwrap();
    let load = Load::start_with(&c, 8, 0.05, true);
    load.advance(40).await;
    assert_eq!((c.retries(), c.ejections()), (0, 0));
    let victim = server.worker_pids()[0];
    Server::signal(victim, "KILL");
    support::assert_exits(victim, Duration::from_secs(10)).await;
    load.advance(60).await;
    let errors = load.stop().await;
    assert!(
        errors.is_empty(),
        "idempotent calls failed despite retries: {errors:?}"
    );
    // The calls in flight on the victim were retried, and its connections left the rotation;
    // the instrumented counters saw every one of those events.
    let (retries, ejections) = (c.retries(), c.ejections());
    assert!(
        retries >= 1 && ejections >= 1,
        "{retries} retries, {ejections} ejections"
    );
    let text = registry.encode();
    for line in [
        format!("tandem_grpc_client_retries_total{{client=\"risk\"}} {retries}"),
        format!("tandem_grpc_client_ejections_total{{client=\"risk\"}} {ejections}"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in:\n{text}");
    }
    server.stop().await;
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_on_sigterm_fails_no_call() {
    let a = Server::start("drain_a", 1, &["--drain-delay", "1"]).await;
    let b = Server::start("drain_b", 1, &["--drain-delay", "1"]).await;
    let b_pids: BTreeSet<u32> = b.worker_pids().into_iter().collect();
    let c = client(&[a.uri(), b.uri()], 4);
    c.wait_ready(Duration::from_secs(30)).await.unwrap();
    let load = Load::start(&c, 8, 0.05);
    load.advance(40).await;

    a.stop().await; // SIGTERM: NOT_SERVING, 1 s of drain, in-flight calls finish
    let mark = load.answered();
    load.advance(40).await;
    assert!(
        load.pids_since(mark).is_subset(&b_pids),
        "calls still went to the stopped server"
    );
    let errors = load.stop().await;
    assert!(errors.is_empty(), "calls failed during a drain: {errors:?}");
    b.stop().await;
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_serving_endpoint_is_ejected_and_comes_back() {
    let a = Server::start("health_a", 1, &["--drain-delay", "3"]).await;
    let b = Server::start("health_b", 1, &[]).await;
    let b_pids: BTreeSet<u32> = b.worker_pids().into_iter().collect();
    let c = client(&[a.uri(), b.uri()], 2);
    c.wait_ready(Duration::from_secs(30)).await.unwrap();
    let (a_uri, b_uri) = (a.uri(), b.uri());
    let all_healthy = || {
        let s = c.health_summary();
        s.contains(&format!("{a_uri} 2/2")) && s.contains(&format!("{b_uri} 2/2"))
    };
    assert!(
        support::wait_until(Duration::from_secs(30), all_healthy).await,
        "{}",
        c.health_summary()
    );

    // SIGTERM one worker of A: it drains (NOT_SERVING but still answering) for 3 s.
    let old = a.worker_pids()[0];
    Server::signal(old, "TERM");
    let ejected = || c.health_summary().contains(&format!("{a_uri} 0/2"));
    assert!(
        support::wait_until(Duration::from_secs(10), ejected).await,
        "{}",
        c.health_summary()
    );
    assert!(
        c.health_summary().contains("NOT_SERVING"),
        "{}",
        c.health_summary()
    );
    for _ in 0..20 {
        let r = c.invoke(json("pid", serde_json::json!({}))).await.unwrap();
        assert!(
            b_pids.contains(&pid_of(&r.decode().unwrap())),
            "a call went to the ejected endpoint"
        );
    }

    // The supervisor restarts the worker; A's connections come back.
    support::assert_exits(old, Duration::from_secs(15)).await;
    let back = || c.health_summary().contains(&format!("{a_uri} 2/2"));
    assert!(
        support::wait_until(Duration::from_secs(30), back).await,
        "{}",
        c.health_summary()
    );
    let new_a: BTreeSet<u32> = a.wait_workers(1).await.into_iter().collect();
    let mut seen_a = false;
    for _ in 0..200 {
        let r = c.invoke(json("pid", serde_json::json!({}))).await.unwrap();
        if new_a.contains(&pid_of(&r.decode().unwrap())) {
            seen_a = true;
            break;
        }
    }
    assert!(seen_a, "the restarted endpoint got no calls");
    a.stop().await;
    b.stop().await;
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_fails_calls_at_once_not_at_their_deadline() {
    let server = Server::start("stopped_fails_fast", 1, &[]).await;
    let c = client(&[server.uri()], 2);
    c.wait_ready(Duration::from_secs(30)).await.unwrap();
    // Both connections must have been healthy: one that never was still counts as connecting.
    assert!(
        support::wait_until(Duration::from_secs(20), || c
            .health_summary()
            .contains("2/2 connections healthy"))
        .await,
        "both connections did not become healthy: {}",
        c.health_summary()
    );
    c.invoke(json("echo", serde_json::json!({}))).await.unwrap();
    server.stop().await;
    assert!(
        support::wait_until(Duration::from_secs(20), || c
            .health_summary()
            .contains("0/2 connections healthy"))
        .await,
        "the health watch did not eject the connections: {}",
        c.health_summary()
    );
    // A call with a 10-minute deadline comes back at once (the test's own 10 s limit), not
    // when the deadline passes: every connection has lost the server it was healthy with.
    let req = json("echo", serde_json::json!({})).with_timeout(Duration::from_secs(600));
    let err = tokio::time::timeout(Duration::from_secs(10), c.invoke(req))
        .await
        .expect("the call fails at once")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("no healthy endpoint"), "{err}");
    support::assert_no_zombies().await;
}
