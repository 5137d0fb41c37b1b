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
