//! Calls go to idle workers only, and a full queue answers `Overloaded`.

use std::time::Duration;

use serde_json::json;
use tandem::Error;

use crate::apps::{builder, call_json, finish, svc_dir, within};
use crate::support;

#[tokio::test]
async fn pool_runs_a_fast_call_while_a_slow_one_blocks_another_worker() {
    let dir = svc_dir("no_hol");
    let gate = dir.join("gate-open");
    within(60, async {
        let pool = builder(&dir).workers(2).build().await.unwrap();
        let slow = {
            let pool = pool.clone();
            let gate = gate.display().to_string();
            tokio::spawn(async move { call_json(&pool, "gate", json!(gate)).await })
        };
        assert!(support::wait_until(Duration::from_secs(10), || pool.stats().busy == 1).await);
        for i in 0..5 {
            assert_eq!(call_json(&pool, "echo", json!(i)).await.unwrap(), json!(i));
        }
        assert!(
            !slow.is_finished(),
            "the slow call finished before its gate opened"
        );
        std::fs::write(&gate, b"").unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), json!("opened"));
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_answers_overloaded_when_the_queue_is_full() {
    let dir = svc_dir("overloaded");
    let gate = dir.join("gate-open");
    within(60, async {
        let pool = builder(&dir).workers(1).max_queue(1).build().await.unwrap();
        let gate_arg = json!(gate.display().to_string());
        let running = {
            let (pool, arg) = (pool.clone(), gate_arg.clone());
            tokio::spawn(async move { call_json(&pool, "gate", arg).await })
        };
        assert!(support::wait_until(Duration::from_secs(10), || pool.stats().busy == 1).await);
        let queued = {
            let (pool, arg) = (pool.clone(), gate_arg.clone());
            tokio::spawn(async move { call_json(&pool, "gate", arg).await })
        };
        assert!(support::wait_until(Duration::from_secs(10), || pool.stats().queued == 1).await);
        let err = call_json(&pool, "echo", json!(1)).await.unwrap_err();
        match &err {
            Error::Overloaded { limit, .. } => assert_eq!(*limit, 1),
            other => panic!("expected Overloaded, got {other:?}"),
        }
        std::fs::write(&gate, b"").unwrap();
        assert_eq!(running.await.unwrap().unwrap(), json!("opened"));
        assert_eq!(queued.await.unwrap().unwrap(), json!("opened"));
        finish(pool).await;
    })
    .await;
}
