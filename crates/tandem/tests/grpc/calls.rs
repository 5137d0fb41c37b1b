//! The generic call (`tandem.v1.Call/Invoke`): answers, error mapping, deadline, metadata.

use std::time::{Duration, Instant};

use tandem::{ErrorKind, Payload, Request};
use tower::{Service, ServiceExt};

use crate::server::Server;
use crate::{client, json, support};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_answers_and_maps_every_error() {
    let server = Server::start("invoke_answers", 2, &[]).await;
    let mut c = client(&[server.uri()], 2);

    // tower::Service: echo round-trips a raw payload and names the endpoint.
    let resp = ServiceExt::<Request>::ready(&mut c)
        .await
        .unwrap()
        .call(Request::new("echo", Payload::raw("hello")))
        .await
        .unwrap();
    assert_eq!(resp.payload().bytes().as_ref(), b"hello");
    assert_eq!(resp.headers().get("endpoint"), Some(&server.uri()));

    // A handler that raises: Remote with type and traceback.
    let err = c
        .invoke(json("boom", serde_json::json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote, "{err}");
    match &err {
        tandem::Error::Remote {
            exc_type,
            message,
            traceback,
            target,
            ..
        } => {
            assert!(exc_type.contains("ValueError"), "{exc_type}");
            assert!(message.contains("boom on purpose"), "{message}");
            assert!(traceback.contains("boom"), "{traceback}");
            assert!(target.contains("boom at http://127.0.0.1"), "{target}");
        }
        other => panic!("expected Remote, got {other:?}"),
    }

    // Unknown method and undecodable payload: BadRequest.
    let err = c
        .invoke(json("nope", serde_json::json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
    let bad = Request::new("echo", Payload::new(tandem::Codec::Json, "{not json"));
    let err = c.invoke(bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");

    // A handler slower than the deadline: Timeout, and it comes back near the deadline.
    let started = Instant::now();
    let err = c
        .invoke(json("sleep", serde_json::json!({"s": 5})).with_timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("sleep at http://127.0.0.1"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the deadline was not enforced"
    );

    // Oversized: refused before sending, with the limit in the message.
    let small = tandem::grpc::Client::builder()
        .endpoint(server.uri())
        .max_message_size(1024)
        .build()
        .unwrap();
    let err = small
        .invoke(Request::new("echo", Payload::raw(vec![0u8; 4096])))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    assert!(
        err.to_string().contains("exceeds the 1024 byte limit"),
        "{err}"
    );

    server.stop().await;
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_trace_and_headers_reach_the_handler() {
    let server = Server::start("deadline_reaches", 1, &["--max-message-bytes", "100000"]).await;
    let c = client(&[server.uri()], 1);
    let timeout = Duration::from_millis(1500);
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let resp = c
        .invoke(
            json("context", serde_json::json!({}))
                .with_timeout(timeout)
                .with_traceparent(tp)
                .with_header("tenant", "acme")
                .with_idempotency_key("k-1"),
        )
        .await
        .unwrap();
    let v: serde_json::Value = resp.decode().unwrap();
    let remaining = v["remaining"].as_f64().expect("the handler saw a deadline");
    assert!(
        remaining > 0.0 && remaining <= timeout.as_secs_f64(),
        "remaining {remaining}"
    );
    assert_eq!(v["traceparent"], tp);
    assert_eq!(v["metadata"]["tenant"], "acme");
    assert_eq!(v["idempotency_key"], "k-1");

    // Without a deadline the client's default timeout is sent.
    let short = tandem::grpc::Client::builder()
        .endpoint(server.uri())
        .default_timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let v: serde_json::Value = short
        .invoke(json("context", serde_json::json!({})))
        .await
        .unwrap()
        .decode()
        .unwrap();
    let remaining = v["remaining"]
        .as_f64()
        .expect("the default deadline was sent");
    assert!(remaining > 0.0 && remaining <= 0.8, "remaining {remaining}");

    server.stop().await;
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_unix_sockets_work() {
    let server = Server::start("gzip_unix", 1, &["--gzip", "--unix", "grpc.sock"]).await;
    let sock = server.dir.join("grpc.sock");
    let c = tandem::grpc::Client::builder()
        .endpoint(format!("unix://{}", sock.display()))
        .gzip(true)
        .build()
        .unwrap();
    let big = vec![b'a'; 256 * 1024];
    let resp = c
        .invoke(Request::new("echo", Payload::raw(big.clone())))
        .await
        .unwrap();
    assert_eq!(resp.payload().bytes().as_ref(), &big[..]);

    // A health service the server does not know: every connection ejected, and the call says why.
    let wrong = tandem::grpc::Client::builder()
        .endpoint(server.uri())
        .health_service("no.such.Service")
        .build()
        .unwrap();
    let err = wrong
        .invoke(Request::new("echo", Payload::raw("x")).with_timeout(Duration::from_millis(1500)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("SERVICE_UNKNOWN"), "{err}");

    let tcp = tandem::grpc::Client::from_uri(&format!("grpc://127.0.0.1:{}", server.port)).unwrap();
    let resp = tcp
        .invoke(Request::new("echo", Payload::raw("x")))
        .await
        .unwrap();
    assert_eq!(resp.payload().bytes().as_ref(), b"x");

    server.stop().await;
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_healthy_endpoint_is_unavailable_with_reason() {
    let port = crate::support::free_port();
    let c = tandem::grpc::Client::builder()
        .endpoint(format!("http://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = c
        .invoke(Request::new("echo", Payload::raw("x")).with_timeout(Duration::from_millis(700)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let text = err.to_string();
    assert!(text.contains("no healthy endpoint"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");

    let err = tandem::grpc::Client::from_uri("ftp://x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert!(err.to_string().contains("grpc://HOST:PORT"), "{err}");
}
