//! "Evil" handlers write garbage or a truncated frame onto the wire: that call fails with
//! `Protocol` and the worker is replaced.

use serde_json::json;
use tandem::Error;

use crate::apps::{
    assert_contains, back_to_size, builder, call_json, finish, logged, svc_dir, within,
};

async fn evil(test: &str, method: &str, expect: &[&str]) {
    let dir = svc_dir(test);
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        let before = call_json(&pool, "pid", json!(null)).await.unwrap();
        let err = call_json(&pool, method, json!(null)).await.unwrap_err();
        match &err {
            Error::Protocol { reason, .. } => assert_contains(reason, expect),
            other => panic!("expected Protocol, got {other:?}"),
        }
        assert_contains(&err.to_string(), &["replaced"]);
        back_to_size(&pool, 1).await;
        let after = call_json(&pool, "pid", json!(null)).await.unwrap();
        assert_ne!(before, after, "the worker was not replaced");
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_replaces_a_worker_that_sends_a_garbage_frame() {
    evil("garbage_frame", "garbage", &["bad magic"]).await;
}

#[tokio::test]
async fn pool_rejects_an_oversized_length_before_allocating() {
    evil("huge_length", "huge_length", &["exceeds the limit"]).await;
}

#[tokio::test]
async fn pool_replaces_a_worker_that_sends_a_truncated_frame() {
    evil("truncated_frame", "truncated", &["truncated frame"]).await;
}

#[tokio::test]
async fn pool_replaces_an_idle_worker_that_writes_unasked_without_failing_a_call() {
    let dir = svc_dir("stray_write");
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        let before = call_json(&pool, "pid", json!(null)).await.unwrap();
        assert_eq!(
            call_json(&pool, "stray_write", json!(null)).await.unwrap(),
            json!("returned")
        );
        // The stray bytes arrive while the worker is idle: it is replaced before any call.
        back_to_size(&pool, 1).await;
        let after = call_json(&pool, "pid", json!(null)).await.unwrap();
        assert_ne!(before, after);
        assert!(logged(&["nobody asked for"]));
        finish(pool).await;
    })
    .await;
}
