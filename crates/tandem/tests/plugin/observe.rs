//! Host::observe feeds the registry's plugin restart counter.

use std::time::Duration;

use tandem::metrics::Registry;
use tandem::{Payload, Request};

use crate::helpers::{assert_gone, echo};
use crate::support::wait_until;

#[tokio::test(flavor = "multi_thread")]
async fn host_observe_counts_each_restart_once() {
    let registry = Registry::new();
    let metrics = registry.plugin("echo");
    let host = echo().start().await.unwrap();
    assert_eq!(host.observe(&metrics), 0);
    let crash =
        Request::new("crash", Payload::raw(Vec::new())).with_timeout(Duration::from_secs(20));
    host.call(crash).await.unwrap_err();
    assert!(wait_until(Duration::from_secs(10), || host.restarts() == 1).await);
    host.observe(&metrics);
    host.observe(&metrics);
    let text = registry.encode();
    assert!(
        text.contains("tandem_plugin_restarts_total{plugin=\"echo\"} 1"),
        "{text}"
    );
    let pid = host.pid().unwrap();
    host.kill().await;
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instrumented_host_counts_restarts_and_reloads_as_they_happen() {
    let registry = Registry::new();
    let host = echo().start().await.unwrap();
    host.instrument(registry.plugin("fx"));
    let counts = || {
        let text = registry.encode();
        (
            text.contains("tandem_plugin_restarts_total{plugin=\"fx\"} 1"),
            text.contains("tandem_plugin_reloads_total{plugin=\"fx\"} 1"),
        )
    };
    let crash =
        Request::new("crash", Payload::raw(Vec::new())).with_timeout(Duration::from_secs(20));
    host.call(crash).await.unwrap_err();
    // No observe(): the supervisor updates the counter when the new instance is up.
    assert!(
        wait_until(Duration::from_secs(10), || counts().0).await,
        "{}",
        registry.encode()
    );
    host.reload().await.unwrap();
    assert_eq!(counts(), (true, true), "{}", registry.encode());
    assert_eq!((host.restarts(), host.reloads()), (1, 1));
    let pid = host.pid().unwrap();
    host.kill().await;
    assert_gone(pid).await;
}
