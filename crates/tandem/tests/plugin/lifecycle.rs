//! A Go go-plugin plugin loaded by the Rust host: call, ping, output, kill.

use std::collections::BTreeMap;
use std::time::Duration;

use tandem::plugin::{AdapterRequest, Channel, Level};
use tandem::{Error, Payload, Request};

use crate::helpers::{assert_gone, echo, Captured};
use crate::support::wait_until;

fn raw(method: &str, data: &str) -> Request {
    Request::new(method, Payload::raw(data.as_bytes().to_vec()))
        .with_timeout(Duration::from_secs(10))
}

async fn full_lifecycle(tls: bool) {
    let out = Captured::default();
    let host = out
        .attach(echo().auto_mtls(tls))
        .start()
        .await
        .expect("start echo plugin");
    let pid = host.pid().unwrap();
    assert_eq!(host.negotiated_version(), Some(1));
    host.ping().await.expect("ping");

    let reply = host.call(raw("echo", "hello")).await.unwrap();
    assert_eq!(&reply.payload().bytes()[..], b"hello");
    let json = Request::new("echo", Payload::json(&serde_json::json!({"a": 1})).unwrap());
    let reply = host.call(json).await.unwrap();
    assert_eq!(reply.payload().codec(), tandem::Codec::Json);
    assert_eq!(
        reply.decode::<serde_json::Value>().unwrap(),
        serde_json::json!({"a": 1})
    );

    // Output after the handshake comes over GRPCStdio; hclog JSON over stderr.
    host.call(raw("print", "via-stdio")).await.unwrap();
    host.call(raw("log", "via-hclog")).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || out
            .has_stdio(Channel::Stdout, "stdout: via-stdio"))
        .await
    );
    assert!(
        wait_until(Duration::from_secs(5), || out
            .has_stdio(Channel::Stderr, "stderr: via-stdio"))
        .await
    );
    assert!(
        wait_until(Duration::from_secs(5), || out
            .has_log(|r| r.level == Level::Warn
                && r.message == "via-hclog"
                && r.fields.iter().any(|(k, v)| k == "plugin" && v == "echo")))
        .await,
        "logs: {:?}",
        out.logs.lock().unwrap()
    );

    // Metadata: traceparent in the field and as gRPC metadata, deadline as the gRPC deadline.
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let reply = host
        .call(raw("meta", "").with_traceparent(tp))
        .await
        .unwrap();
    let text = String::from_utf8(reply.payload().bytes().to_vec()).unwrap();
    assert_eq!(text, format!("traceparent={tp};grpc={tp};deadline=yes"));

    // Errors come back typed.
    match host.call(raw("fail", "x")).await {
        Err(Error::Remote {
            exc_type,
            message,
            traceback,
            ..
        }) => {
            assert_eq!(exc_type, "ValueError");
            assert_eq!(message, "bad value: x");
            assert!(traceback.contains("echo.go"));
        }
        other => panic!("expected Remote, got {other:?}"),
    }
    let err = host.call(raw("nope", "")).await.unwrap_err();
    assert!(matches!(err, Error::BadRequest { .. }), "{err}");
    assert!(err.to_string().contains("unknown method"), "{err}");
    let err = host
        .call(
            Request::new("sleep", Payload::raw(&b"5000"[..]))
                .with_timeout(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");

    host.kill().await;
    assert_gone(pid).await;
    host.kill().await; // idempotent
    let err = host.call(raw("echo", "late")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("killed"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn go_plugin_round_trip_with_auto_mtls() {
    full_lifecycle(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn go_plugin_round_trip_without_tls() {
    full_lifecycle(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn adapter_client_calls_external_adapter_and_redacts_headers() {
    let host = echo().start().await.unwrap();
    let pid = host.pid().unwrap();
    let adapter = host.adapter();
    let (healthy, message) = adapter.health_check().await.unwrap();
    assert!(healthy);
    assert_eq!(message, "echo adapter ok");
    let mut headers = BTreeMap::new();
    headers.insert("Authorization".to_owned(), "Bearer top-secret".to_owned());
    let req = AdapterRequest {
        method: "charge".into(),
        endpoint: "/v1/charges".into(),
        payload: b"{}".to_vec(),
        headers,
        timeout: Some(Duration::from_secs(5)),
    };
    assert!(!format!("{req:?}").contains("top-secret"));
    let reply = adapter.call(req).await.unwrap();
    assert_eq!(reply.status_code, 200);
    assert_eq!(reply.data, b"charge /v1/charges {}");
    host.kill().await;
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_is_a_tower_service() {
    use tower::ServiceExt as _;
    let host = echo().auto_mtls(false).start().await.unwrap();
    let pid = host.pid().unwrap();
    let reply = host.clone().oneshot(raw("echo", "svc")).await.unwrap();
    assert_eq!(&reply.payload().bytes()[..], b"svc");
    host.kill().await;
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_host_kills_the_plugin_group() {
    let host = echo().auto_mtls(false).start().await.unwrap();
    let pid = host.pid().unwrap();
    drop(host);
    assert_gone(pid).await;
}
