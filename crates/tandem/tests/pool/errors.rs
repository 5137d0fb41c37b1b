//! Handler errors and unknown methods.

use serde_json::json;
use tandem::{Error, ErrorKind};

use crate::apps::{assert_contains, builder, call_json, finish, svc_dir, within};

#[tokio::test]
async fn pool_reports_a_raising_handler_as_remote_with_traceback() {
    let dir = svc_dir("raises");
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        let err = call_json(&pool, "boom", json!("bad input"))
            .await
            .unwrap_err();
        match &err {
            Error::Remote {
                exc_type,
                message,
                traceback,
                target,
                ..
            } => {
                assert_eq!(exc_type, "ValueError");
                assert_contains(message, &["boom: bad input"]);
                assert_contains(traceback, &["Traceback", "svc.py", "ValueError"]);
                assert_contains(target, &["boom on worker"]);
            }
            other => panic!("expected Remote, got {other:?}"),
        }
        // The worker survives a raising handler.
        assert_eq!(call_json(&pool, "echo", json!(1)).await.unwrap(), json!(1));
        assert_eq!(pool.stats().restarts, 0);
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_rejects_an_unknown_method_as_bad_request() {
    let dir = svc_dir("unknown_method");
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        let err = call_json(&pool, "nope", json!(null)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
        assert_contains(&err.to_string(), &["nope", "registered", "echo"]);
        finish(pool).await;
    })
    .await;
}
