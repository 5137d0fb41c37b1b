//! Beyond go-plugin: crash restart, hot reload under load, kill, reattach.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tandem::plugin::Host;
use tandem::{Error, Payload, Request};

use crate::helpers::{assert_gone, echo, go_plugin};
use crate::support::{test_dir, wait_until};

fn raw(method: &str, data: &str) -> Request {
    Request::new(method, Payload::raw(data.as_bytes().to_vec()))
        .with_timeout(Duration::from_secs(20))
}

#[tokio::test(flavor = "multi_thread")]
async fn crashed_plugin_is_restarted_and_calls_wait_for_it() {
    let host = echo().start().await.unwrap();
    let first = host.pid().unwrap();
    let err = host.call(raw("crash", "")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    // A call made during the restart waits for the new instance (within its deadline).
    let reply = host.call(raw("echo", "after crash")).await.unwrap();
    assert_eq!(&reply.payload().bytes()[..], b"after crash");
    assert!(wait_until(Duration::from_secs(10), || host.restarts() == 1).await);
    let second = host.pid().unwrap();
    assert_ne!(first, second);
    assert_gone(first).await;
    host.kill().await;
    assert_gone(second).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_restart_a_crash_fails_calls_at_once() {
    let host = echo()
        .auto_mtls(false)
        .restart(false)
        .start()
        .await
        .unwrap();
    let pid = host.pid().unwrap();
    let _ = host.call(raw("crash", "")).await;
    assert_gone(pid).await;
    assert!(wait_until(Duration::from_secs(5), || host.pid().is_none()).await);
    let err = host.call(raw("echo", "x")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("restarts are off"), "{err}");
    host.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_under_load_fails_no_call() {
    let host = echo().start().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (host, stop, ok) = (host.clone(), Arc::clone(&stop), Arc::clone(&ok));
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match host.call(raw("sleep", "5")).await {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
            failures
        }));
    }
    let mut pids = vec![host.pid().unwrap()];
    for _ in 0..3 {
        let before = ok.load(Ordering::Relaxed);
        assert!(
            wait_until(Duration::from_secs(10), || ok.load(Ordering::Relaxed)
                > before + 10)
            .await
        );
        host.reload().await.expect("reload");
        pids.push(host.pid().unwrap());
    }
    let before = ok.load(Ordering::Relaxed);
    assert!(
        wait_until(Duration::from_secs(10), || ok.load(Ordering::Relaxed)
            > before + 10)
        .await
    );
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed calls: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok.load(Ordering::Relaxed) > 40);
    let last = *pids.last().unwrap();
    for pid in &pids[..pids.len() - 1] {
        assert_gone(*pid).await;
    }
    host.kill().await;
    assert_gone(last).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_is_idempotent_and_concurrent() {
    let host = echo().start().await.unwrap();
    let pid = host.pid().unwrap();
    let (a, b) = (host.clone(), host.clone());
    tokio::join!(a.kill(), b.kill());
    host.kill().await;
    assert_gone(pid).await;
    assert!(
        host.reload().await.is_err(),
        "a killed host does not reload"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reattach_to_a_running_plugin() {
    let original = echo()
        .auto_mtls(false)
        .restart(false)
        .start()
        .await
        .unwrap();
    let config = original.reattach_config().unwrap();
    let pid = config.pid;
    original.detach();
    drop(original);
    assert!(
        crate::support::alive(pid),
        "detach leaves the plugin running"
    );
    let host = Host::reattach(config.clone()).await.unwrap();
    assert_eq!(host.pid(), Some(pid));
    let reply = host.call(raw("echo", "reattached")).await.unwrap();
    assert_eq!(&reply.payload().bytes()[..], b"reattached");
    host.ping().await.unwrap();
    host.kill().await;
    assert_gone(pid).await;
    let err = Host::reattach(config).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("process not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_plugin_file_triggers_a_reload() {
    let dir = test_dir("watch");
    let path = dir.join("echo");
    std::fs::copy(go_plugin("echo"), &path).unwrap();
    let host = Host::builder(&path)
        .auto_mtls(false)
        .watch_file(Duration::from_millis(50))
        .start_timeout(Duration::from_secs(20))
        .start()
        .await
        .unwrap();
    let first = host.pid().unwrap();
    // Replace the file (a new inode, as a deploy would), with a different size.
    let tmp = dir.join("echo.new");
    let mut bytes = std::fs::read(go_plugin("echo")).unwrap();
    bytes.extend_from_slice(b"\0tandem");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || host
            .pid()
            .is_some_and(|p| p != first))
        .await
    );
    assert_gone(first).await;
    let second = host.pid().unwrap();
    host.call(raw("echo", "new")).await.unwrap();
    host.kill().await;
    assert_gone(second).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_when_asked() {
    let host = echo()
        .auto_mtls(false)
        .reload_on_sighup(true)
        .start()
        .await
        .unwrap();
    let first = host.pid().unwrap();
    // The handler is installed by `start`, so SIGHUP no longer terminates the test process.
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        wait_until(Duration::from_secs(20), || host
            .pid()
            .is_some_and(|p| p != first))
        .await
    );
    assert_gone(first).await;
    let second = host.pid().unwrap();
    host.kill().await;
    assert_gone(second).await;
}
