//! The guard `Policy` (breaker + timeout + bulkhead + fallback) over a real worker pool.

use std::time::Duration;

use serde_json::json;
use tandem::guard::{BreakerConfig, BreakerState, Policy};
use tandem::{Error, Payload, Request, Response, Transport};
use tower::{Service, ServiceExt};

use crate::apps::{builder, finish, json, svc_dir, within};

fn degraded(_: &Error, _: &Request) -> Option<Response> {
    Some(Response::new(Payload::raw("degraded")))
}

#[tokio::test]
async fn policy_over_pool_times_out_hung_calls_falls_back_and_opens() {
    let dir = svc_dir("pool-policy");
    within(60, async {
        let pool = builder(&dir).workers(2).build().await.unwrap();
        let policy = Policy::new("score", Transport::Pool)
            .timeout(Duration::from_millis(300))
            .max_concurrent(4)
            .breaker(
                BreakerConfig::new("score")
                    .request_volume_threshold(3)
                    .window(Duration::from_secs(60), 6),
            )
            .no_retry()
            .fallback(degraded);
        let layer = policy.layer();
        let mut svc = tower::ServiceBuilder::new()
            .layer(layer.clone())
            .service(pool.clone());
        // The policy's deadline reaches ctx.remaining().
        let resp = svc
            .ready()
            .await
            .unwrap()
            .call(json("ctx", json!(null)))
            .await;
        let ctx = resp.unwrap().payload().to_json_value().unwrap();
        let remaining = ctx["remaining"].as_f64().expect("remaining in the answer");
        assert!(remaining > 0.0 && remaining <= 0.3, "{ctx}");
        // Calls that outlive the timeout get the fallback; the breaker opens.
        for _ in 0..4 {
            let resp = svc
                .ready()
                .await
                .unwrap()
                .call(json("sleep", json!(5.0)))
                .await
                .unwrap();
            assert_eq!(resp.payload().bytes().as_ref(), b"degraded");
        }
        assert_eq!(layer.breaker().unwrap().state(), BreakerState::Open);
        finish(pool).await;
    })
    .await;
}
