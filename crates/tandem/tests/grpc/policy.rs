//! The guard `Policy` (breaker + timeout + bulkhead + fallback) over the real gRPC client.

use std::sync::Arc;
use std::time::Duration;

use tandem::guard::{BreakerConfig, BreakerState, Policy};
use tandem::metrics::Registry;
use tandem::{Error, Payload, Request, Response, Transport};
use tower::{Service, ServiceExt};

use crate::server::Server;
use crate::{client, json, support};

fn degraded(_: &Error, _: &Request) -> Option<Response> {
    Some(Response::new(Payload::raw("degraded")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_over_grpc_sends_the_deadline_then_falls_back_when_the_server_stops() {
    let server = Server::start("policy_over_grpc", 1, &[]).await;
    let registry = Registry::new();
    let policy = Policy::new("risk", Transport::Grpc)
        .timeout(Duration::from_secs(2))
        .max_concurrent(4)
        .breaker(
            BreakerConfig::new("risk")
                .request_volume_threshold(3)
                .window(Duration::from_secs(60), 6),
        )
        .no_retry()
        .fallback(degraded)
        .observer(Arc::new(registry.clone()));
    let layer = policy.layer();
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(client(&[server.uri()], 1));

    // The policy's timeout travels as the gRPC deadline: the handler sees it.
    let resp = svc
        .ready()
        .await
        .unwrap()
        .call(json("context", serde_json::json!({})))
        .await
        .unwrap();
    let seen = resp.payload().to_json_value().unwrap();
    let remaining = seen["remaining"].as_f64().expect("remaining in the answer");
    assert!(remaining > 0.0 && remaining <= 2.0, "{seen}");

    // Server gone: every call fails (the client keeps trying to reconnect until the policy's
    // timeout), the fallback answers, the breaker opens after the threshold and then answers
    // without calling.
    server.stop().await;
    for _ in 0..5 {
        let resp = svc
            .ready()
            .await
            .unwrap()
            .call(Request::new("echo", Payload::raw("x")))
            .await
            .unwrap();
        assert_eq!(resp.payload().bytes().as_ref(), b"degraded");
    }
    let text = registry.encode();
    assert_eq!(
        layer.breaker().unwrap().state(),
        BreakerState::Open,
        "{text}"
    );
    assert!(
        text.contains("tandem_fallbacks_total{name=\"risk\",kind=\"breaker_open\"}"),
        "{text}"
    );
    assert!(
        text.contains("python_call_total{method=\"context\",status=\"ok\",transport=\"grpc\"} 1"),
        "{text}"
    );
    support::assert_no_zombies().await;
}
