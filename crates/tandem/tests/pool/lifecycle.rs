//! Context propagation, the tower::Service impl, graceful shutdown and drop.

use std::time::Duration;

use serde_json::json;
use tandem::{Error, Payload, Request};
use tower::{Service, ServiceExt};

use crate::apps::{assert_contains, builder, call_json, finish, json, svc_dir, within};
use crate::support;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn pool_carries_traceparent_deadline_and_metadata_to_ctx() {
    let dir = svc_dir("ctx");
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        let req = json("ctx", json!(null))
            .with_traceparent(TRACEPARENT)
            .with_idempotency_key("order-42")
            .with_header("tenant", "acme")
            .with_timeout(Duration::from_secs(5));
        let resp = pool.call(req).await.unwrap();
        assert!(resp.headers().contains_key("worker-pid"));
        let ctx: serde_json::Value = resp.decode().unwrap();
        assert_eq!(ctx["traceparent"], TRACEPARENT);
        assert_eq!(ctx["idempotency_key"], "order-42");
        assert_eq!(ctx["metadata"], json!({"tenant": "acme"}));
        assert_eq!(ctx["transport"], "pool");
        let remaining = ctx["remaining"].as_f64().unwrap();
        assert!(remaining > 0.0 && remaining <= 5.0, "remaining {remaining}");
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_is_a_tower_service() {
    let dir = svc_dir("tower");
    within(60, async {
        let mut pool = builder(&dir).build().await.unwrap();
        let resp = pool
            .ready()
            .await
            .unwrap()
            .call(Request::new("echo", Payload::json(&json!([1, 2])).unwrap()))
            .await
            .unwrap();
        assert_eq!(resp.decode::<serde_json::Value>().unwrap(), json!([1, 2]));
        let stats = pool.stats();
        assert_eq!(
            (stats.workers, stats.busy, stats.idle, stats.queued),
            (1, 0, 1, 0)
        );
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_shutdown_drains_in_flight_calls_then_stops_workers() {
    let dir = svc_dir("shutdown_drains");
    let gate = dir.join("gate-open");
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        let pid = call_json(&pool, "pid", json!(null))
            .await
            .unwrap()
            .as_u64()
            .unwrap() as u32;
        let in_flight = {
            let (pool, gate) = (pool.clone(), gate.display().to_string());
            tokio::spawn(async move { call_json(&pool, "gate", json!(gate)).await })
        };
        assert!(support::wait_until(Duration::from_secs(10), || pool.stats().busy == 1).await);
        let stopping = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.shutdown().await })
        };
        // New calls are refused once shutdown began.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let probe = pool.call(json("echo", json!(0)));
            if let Ok(Err(Error::Unavailable { .. })) =
                tokio::time::timeout(Duration::from_millis(50), probe).await
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "shutdown never refused new calls"
            );
        }
        std::fs::write(&gate, b"").unwrap();
        assert_eq!(in_flight.await.unwrap().unwrap(), json!("opened"));
        stopping.await.unwrap();
        support::assert_exits(pid, Duration::from_secs(10)).await;
        let err = call_json(&pool, "echo", json!(1)).await.unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        assert_contains(&err.to_string(), &["shut down"]);
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_drop_kills_and_reaps_every_worker() {
    let dir = svc_dir("drop_kills");
    within(60, async {
        let pool = builder(&dir).workers(2).build().await.unwrap();
        let gate = dir.join("never");
        let mut pids = Vec::new();
        for _ in 0..2 {
            pids.push(
                call_json(&pool, "pid", json!(null))
                    .await
                    .unwrap()
                    .as_u64()
                    .unwrap() as u32,
            );
        }
        // One worker is busy with a call that never ends when the pool is dropped.
        let stuck = {
            let (pool, gate) = (pool.clone(), gate.display().to_string());
            tokio::spawn(async move { call_json(&pool, "gate", json!(gate)).await })
        };
        assert!(support::wait_until(Duration::from_secs(10), || pool.stats().busy == 1).await);
        stuck.abort();
        let _ = stuck.await;
        drop(pool);
        for pid in pids {
            support::assert_exits(pid, Duration::from_secs(10)).await;
        }
        support::assert_no_zombies().await;
    })
    .await;
}

#[tokio::test]
async fn pool_workers_inherit_no_fd_but_their_own_wire() {
    let dir = svc_dir("fd_leaks");
    within(60, async {
        let pool = builder(&dir).workers(3).build().await.unwrap();
        for _ in 0..3 {
            let fds = call_json(&pool, "fds", json!(null)).await.unwrap();
            let fds = fds.as_object().unwrap();
            assert!(fds["3"].as_str().unwrap().starts_with("socket:"), "{fds:?}");
            for (fd, target) in fds {
                let target = target.as_str().unwrap();
                let shared = target.starts_with("socket:") || target.starts_with("pipe:");
                assert!(
                    ["0", "1", "2", "3"].contains(&fd.as_str()) || !shared,
                    "worker inherited fd {fd} -> {target}: {fds:?}"
                );
            }
        }
        finish(pool).await;
    })
    .await;
}
