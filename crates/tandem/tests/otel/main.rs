//! The OpenTelemetry layer over a real pool: one client span per call, whose ids are the
//! traceparent the Python handler receives; parents and error status as documented.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[path = "../support/mod.rs"]
mod support;

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tandem::otel::OtelLayer;
use tandem::process::Pool;
use tandem::{Payload, Request, Transport};
use tower::{Layer, ServiceExt};

const APP: &str = r#"
import tandem

app = tandem.App("otelsvc")


@app.handler("tp")
def tp(data, ctx):
    return ctx.traceparent


@app.handler("boom")
def boom(data):
    raise ValueError("no")
"#;

async fn pool(name: &str) -> Pool {
    let dir = support::test_dir(name);
    support::write_file(&dir, "otelsvc.py", APP);
    Pool::builder("otelsvc:app")
        .python(support::python())
        .cwd(dir)
        .workers(1)
        .build()
        .await
        .unwrap()
}

fn call(method: &str) -> Request {
    Request::new(method, Payload::json(&serde_json::json!(null)).unwrap())
}

#[tokio::test]
async fn each_call_is_a_client_span_whose_ids_reach_the_handler() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let pool = pool("otel-span").await;
    let svc = OtelLayer::new(&provider, Transport::Pool).layer(pool.clone());

    // A new trace: the handler sees exactly the span's ids.
    let seen: String = svc
        .clone()
        .oneshot(call("tp"))
        .await
        .unwrap()
        .decode()
        .unwrap();
    // A caller's context: the span is its child, in the same trace.
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let child: String = svc
        .clone()
        .oneshot(call("tp").with_traceparent(caller))
        .await
        .unwrap()
        .decode()
        .unwrap();
    // A failed call: status Error, with the error kind.
    let err = svc.clone().oneshot(call("boom")).await.unwrap_err();

    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 3, "{spans:?}");
    let ids = |i: usize| {
        let sc = &spans[i].span_context;
        format!("00-{}-{}-01", sc.trace_id(), sc.span_id())
    };
    assert_eq!(seen, ids(0));
    assert_eq!(spans[0].name, "pool tp");
    assert_eq!(spans[0].span_kind, SpanKind::Client);
    assert_eq!(spans[0].parent_span_id.to_string(), "0000000000000000");
    assert_eq!(child, ids(1));
    assert_eq!(
        spans[1].span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(spans[1].parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(
        matches!(&spans[2].status, Status::Error { description } if description.contains("ValueError")),
        "{:?} for {err}",
        spans[2].status
    );
    let kind = spans[2]
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "error.type")
        .map(|kv| kv.value.to_string());
    assert_eq!(kind.as_deref(), Some("remote"));
    pool.shutdown().await;
}
