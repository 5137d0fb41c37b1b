//! Pool::observe feeds the registry's pool handle: busy and idle workers, restarts.

use std::time::Duration;

use serde_json::json;
use tandem::metrics::Registry;

use crate::apps::{back_to_size, builder, call_json, finish, svc_dir, within};
use crate::support;

fn sample(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains("pool=\"obs\"") && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn pool_observe_sets_worker_gauges_and_counts_restarts_once() {
    let dir = svc_dir("pool-observe");
    within(60, async {
        let registry = Registry::new();
        let metrics = registry.pool("obs");
        let pool = builder(&dir).workers(2).build().await.unwrap();
        let ready = support::wait_until(Duration::from_secs(20), || pool.stats().idle == 2);
        assert!(ready.await, "{:?}", pool.stats());
        pool.observe(&metrics);
        let text = registry.encode();
        assert_eq!(
            sample(&text, "tandem_pool_workers", "idle"),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "tandem_pool_workers", "busy"),
            Some(0.0),
            "{text}"
        );
        call_json(&pool, "exit", json!(3)).await.unwrap_err();
        back_to_size(&pool, 2).await;
        let restarts = pool.observe(&metrics).restarts;
        pool.observe(&metrics);
        assert!(restarts >= 1);
        let text = registry.encode();
        let counted = sample(&text, "tandem_pool_worker_restarts_total", "pool").unwrap();
        assert_eq!(counted, restarts as f64, "{text}");
        assert_eq!(
            call_json(&pool, "echo", json!("alive")).await.unwrap(),
            json!("alive")
        );
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn an_instrumented_pool_updates_its_gauges_at_each_event() {
    let dir = svc_dir("pool-instrument");
    within(60, async {
        let registry = Registry::new();
        let pool = builder(&dir).workers(2).build().await.unwrap();
        pool.instrument(registry.pool("obs"));
        // No observe() below: every value comes from the pool's own events.
        let gauges = || {
            let text = registry.encode();
            (
                sample(&text, "tandem_pool_workers", "busy"),
                sample(&text, "tandem_pool_workers", "idle"),
                sample(&text, "tandem_pool_worker_restarts_total", "pool"),
            )
        };
        let settled = |want| support::wait_until(Duration::from_secs(20), move || gauges() == want);
        assert!(
            settled((Some(0.0), Some(2.0), Some(0.0))).await,
            "{:?}",
            gauges()
        );
        let slow = {
            let pool = pool.clone();
            tokio::spawn(async move { call_json(&pool, "sleep", json!(1.0)).await })
        };
        assert!(
            settled((Some(1.0), Some(1.0), Some(0.0))).await,
            "{:?}",
            gauges()
        );
        slow.await.unwrap().unwrap();
        assert!(
            settled((Some(0.0), Some(2.0), Some(0.0))).await,
            "{:?}",
            gauges()
        );
        call_json(&pool, "exit", json!(3)).await.unwrap_err();
        back_to_size(&pool, 2).await;
        let restarts = pool.stats().restarts as f64;
        assert!(restarts >= 1.0);
        assert!(
            settled((Some(0.0), Some(2.0), Some(restarts))).await,
            "{:?}",
            gauges()
        );
        finish(pool).await;
    })
    .await;
}
