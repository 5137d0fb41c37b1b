//! Worker output: stray prints and floods of stderr reach the logs and never block a call.

use serde_json::json;

use crate::apps::{builder, call_json, finish, logged, svc_dir, within};
use crate::support;

#[tokio::test]
async fn pool_forwards_a_handlers_print_to_logs_without_breaking_the_wire() {
    let dir = svc_dir("prints");
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        let pid = call_json(&pool, "pid", json!(null)).await.unwrap();
        let out = call_json(&pool, "print", json!("xyzzy")).await.unwrap();
        assert_eq!(out, json!("printed"));
        let pid = format!("pid={pid}");
        assert!(
            support::wait_until(std::time::Duration::from_secs(10), || logged(&[
                "stray print from the handler xyzzy",
                "stdout",
                &pid
            ]))
            .await,
            "the printed line never reached the logs"
        );
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_drains_more_than_a_pipe_buffer_of_stderr() {
    let dir = svc_dir("spew");
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        for _ in 0..2 {
            assert_eq!(
                call_json(&pool, "spew", json!(null)).await.unwrap(),
                json!("spewed")
            );
        }
        finish(pool).await;
    })
    .await;
}
