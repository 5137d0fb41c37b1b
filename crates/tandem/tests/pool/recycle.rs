//! Recycling after `max_requests` or past `max_memory`, make before break: no call fails.

use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

use crate::apps::{builder, call_json, finish, svc_dir, within};
use crate::support;

#[tokio::test]
async fn pool_recycles_after_max_requests_without_failed_calls() {
    let dir = svc_dir("recycle_requests");
    within(90, async {
        let pool = builder(&dir)
            .workers(2)
            .max_requests(Some(3))
            .build()
            .await
            .unwrap();
        let mut pids = HashSet::new();
        let mut round = 0;
        // Keep calling, four at a time, until two recycles completed; no call may fail.
        while pool.stats().recycled < 2 {
            round += 1;
            assert!(round < 2000, "never recycled: {:?}", pool.stats());
            let mut calls = Vec::new();
            for _ in 0..4 {
                let pool = pool.clone();
                calls.push(tokio::spawn(async move {
                    call_json(&pool, "pid", json!(null)).await
                }));
            }
            for c in calls {
                let pid = c
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
                pids.insert(pid.to_string());
            }
        }
        for _ in 0..4 {
            let pid = call_json(&pool, "pid", json!(null)).await.unwrap();
            pids.insert(pid.to_string());
        }
        assert!(
            pids.len() > 2,
            "only {} distinct workers served",
            pids.len()
        );
        assert_eq!(pool.stats().restarts, 0);
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_recycles_a_worker_past_max_memory() {
    let dir = svc_dir("recycle_memory");
    within(60, async {
        let pool = builder(&dir).max_memory(Some(1)).build().await.unwrap();
        let first = call_json(&pool, "pid", json!(null)).await.unwrap();
        assert!(support::wait_until(Duration::from_secs(20), || pool.stats().recycled >= 1).await);
        let second = call_json(&pool, "pid", json!(null)).await.unwrap();
        assert_ne!(first, second);
        finish(pool).await;
    })
    .await;
}
