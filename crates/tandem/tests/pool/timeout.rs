//! The pool owns each call's deadline: a hanging handler is killed and replaced.

use std::time::Duration;

use serde_json::json;
use tandem::Error;

use crate::support;

use crate::apps::{
    assert_contains, back_to_size, builder, call_json, finish, json, svc_dir, within,
};

#[tokio::test]
async fn pool_kills_a_hanging_worker_at_the_deadline_and_refills() {
    let dir = svc_dir("hang");
    within(60, async {
        let pool = builder(&dir).workers(2).build().await.unwrap();
        let req = json("sleep", json!(60)).with_timeout(Duration::from_millis(300));
        let err = pool.call(req).await.unwrap_err();
        match &err {
            Error::Timeout { target, .. } => assert_contains(target, &["sleep"]),
            other => panic!("expected Timeout, got {other:?}"),
        }
        back_to_size(&pool, 2).await;
        assert!(pool.stats().restarts >= 1);
        assert_eq!(
            call_json(&pool, "echo", json!("after")).await.unwrap(),
            json!("after")
        );
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_applies_its_default_timeout_when_the_request_has_none() {
    let dir = svc_dir("default_timeout");
    within(60, async {
        let pool = builder(&dir)
            .timeout(Duration::from_millis(300))
            .build()
            .await
            .unwrap();
        let err = call_json(&pool, "sleep", json!(60)).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        back_to_size(&pool, 1).await;
        finish(pool).await;
    })
    .await;
}

async fn grandchild_dies_with_its_worker(test: &str, then: &str, timeout: Duration) {
    let dir = svc_dir(test);
    let path = dir.join("grandchild.pid");
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        let arg = json!({"path": path.display().to_string(), "then": then});
        let err = pool
            .call(json("spawn_child", arg).with_timeout(timeout))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Timeout { .. } | Error::Unavailable { .. }),
            "{err:?}"
        );
        let pid: u32 = std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        support::assert_exits(pid, Duration::from_secs(10)).await;
        back_to_size(&pool, 1).await;
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_timeout_kills_the_handlers_own_children() {
    grandchild_dies_with_its_worker("grandchild_timeout", "hang", Duration::from_secs(3)).await;
}

#[tokio::test]
async fn pool_crash_cleans_up_the_handlers_own_children() {
    grandchild_dies_with_its_worker("grandchild_crash", "exit", Duration::from_secs(30)).await;
}
