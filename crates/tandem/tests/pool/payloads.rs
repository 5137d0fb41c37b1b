//! Payload sizes: empty, 1 MiB, and over the limit in each direction.

use serde_json::json;
use tandem::{Error, ErrorKind, Payload, Request};

use crate::apps::{assert_contains, builder, call_json, finish, svc_dir, within};

#[tokio::test]
async fn pool_carries_empty_and_one_mib_payloads() {
    let dir = svc_dir("payload_sizes");
    within(60, async {
        let pool = builder(&dir).build().await.unwrap();
        for size in [0usize, 1024 * 1024] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let resp = pool
                .call(Request::new("echo", Payload::raw(data.clone())))
                .await
                .unwrap();
            assert_eq!(
                resp.payload().bytes().as_ref(),
                data.as_slice(),
                "size {size}"
            );
        }
        let big = call_json(&pool, "blob", json!(1024 * 1024)).await.unwrap();
        assert_eq!(big.as_str().map(str::len), Some(1024 * 1024));
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_refuses_a_request_over_max_payload_before_sending() {
    let dir = svc_dir("payload_too_large");
    within(60, async {
        let pool = builder(&dir).max_payload(1024).build().await.unwrap();
        let err = pool
            .call(Request::new("echo", Payload::raw(vec![7u8; 2048])))
            .await
            .unwrap_err();
        match &err {
            Error::BadRequest { reason, .. } => {
                assert_contains(reason, &["2048 bytes", "max_payload", "1024"])
            }
            other => panic!("expected BadRequest, got {other:?}"),
        }
        // A reply over the limit is refused by the worker, which stays up.
        let err = call_json(&pool, "blob", json!(4096)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
        assert_contains(&err.to_string(), &["4096 bytes", "max_payload"]);
        assert_eq!(
            call_json(&pool, "echo", json!("ok")).await.unwrap(),
            json!("ok")
        );
        assert_eq!(pool.stats().restarts, 0);
        finish(pool).await;
    })
    .await;
}
