use std::process::Stdio;
use std::time::Duration;

use tandem::metrics::{serve, MetricsLayer, Registry};
use tandem::{Error, Payload, Request, Response, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::{service_fn, Layer, ServiceExt};

use crate::support;
use crate::values::{scrape, value};

/// One HTTP/1.1 request over a fresh connection; returns (status line, headers, body).
async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (String, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_owned(), headers.to_lowercase(), body.to_owned())
}

#[tokio::test]
async fn metrics_are_served_over_http_and_parse() {
    let registry = Registry::new();
    let svc =
        MetricsLayer::new(&registry, Transport::Grpc).layer(service_fn(|r: Request| async move {
            if r.method() == "score" {
                Ok(Response::default())
            } else {
                Err(Error::bad_request(
                    Transport::Grpc,
                    r.method(),
                    "unknown method",
                ))
            }
        }));
    for method in ["score", "score", "nope"] {
        let _ = svc
            .clone()
            .oneshot(Request::new(method, Payload::raw("")))
            .await;
    }
    registry.pool("risk").set_busy(2);

    let server = serve("127.0.0.1:0".parse().unwrap(), registry.clone())
        .await
        .unwrap();
    let addr = server.local_addr();
    let (status, headers, body) =
        tokio::time::timeout(Duration::from_secs(10), http(addr, "GET", "/metrics"))
            .await
            .expect("the endpoint answers");
    assert!(status.contains("200"), "{status}");
    assert!(
        headers.contains("content-type: application/openmetrics-text"),
        "{headers}"
    );
    assert!(body.ends_with("# EOF\n"));

    let s = scrape(&body);
    assert_eq!(
        value(
            &s,
            "python_call_total",
            &[("method", "score"), ("status", "ok"), ("transport", "grpc")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &s,
            "python_call_total",
            &[("method", "nope"), ("status", "bad_request")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "tandem_pool_workers",
            &[("pool", "risk"), ("state", "busy")]
        ),
        Some(2.0)
    );

    // The strict OpenMetrics parser of the official Python client accepts it as well.
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
calls = families["python_call"]
assert calls.type == "counter", calls.type
ok = [s for s in calls.samples if s.name == "python_call_total" and s.labels["method"] == "score"]
assert ok[0].value == 2.0, ok
hist = families["python_call_duration_seconds"]
assert hist.type == "histogram" and hist.unit == "seconds", (hist.type, hist.unit)
print(len(families))
"#;
    let mut child = tokio::process::Command::new(support::python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(body.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("python finishes")
        .unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, _, body) = http(addr, "GET", "/nope").await;
    assert!(status.contains("404"), "{status}");
    assert!(body.contains("metrics are at /metrics"));
    let (status, _, _) = http(addr, "POST", "/metrics").await;
    assert!(status.contains("405"), "{status}");
    server.shutdown();
}

#[tokio::test]
async fn serving_on_a_taken_port_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = serve(addr, Registry::new()).await.unwrap_err();
    assert!(err.to_string().contains("cannot listen on"), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
