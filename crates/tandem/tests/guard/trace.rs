use std::sync::{Arc, Mutex};

use tandem::trace::{scope, TraceLayer, TraceParent};
use tower::{Layer, ServiceExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::stub::{req, Stub};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn sent(request: tandem::Request) -> TraceParent {
    let stub = Stub::new();
    TraceLayer::new()
        .layer(stub.clone())
        .oneshot(request)
        .await
        .unwrap();
    let seen = stub.last_seen();
    let raw = seen
        .metadata()
        .traceparent
        .as_deref()
        .expect("a traceparent");
    raw.parse().expect("a valid traceparent")
}

#[tokio::test]
async fn a_request_without_context_starts_a_trace() {
    let a = sent(req("ok")).await;
    let b = sent(req("ok")).await;
    assert_ne!(a.trace_id(), b.trace_id());
    assert!(a.sampled());
}

#[tokio::test]
async fn the_callers_traceparent_is_continued_with_a_new_parent_id() {
    let parent: TraceParent = PARENT.parse().unwrap();
    let tp = sent(req("ok").with_traceparent(PARENT)).await;
    assert_eq!(tp.trace_id(), parent.trace_id());
    assert_ne!(tp.parent_id(), parent.parent_id());
    assert_eq!(tp.flags(), parent.flags());
}

#[tokio::test]
async fn an_invalid_traceparent_is_replaced() {
    let tp = sent(req("ok").with_traceparent("00-nonsense")).await;
    assert_ne!(tp.trace_id_hex(), "00000000000000000000000000000000");
}

#[tokio::test]
async fn the_tasks_current_context_is_used() {
    let parent: TraceParent = PARENT.parse().unwrap();
    let tp = scope(parent, sent(req("ok"))).await;
    assert_eq!(tp.trace_id(), parent.trace_id());
}

/// A subscriber that keeps the `trace_id` field of every span created.
#[derive(Default, Clone)]
struct Spans(Arc<Mutex<Vec<(String, String)>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl Subscriber for Spans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = self.0.lock().unwrap();
        span.record(&mut Fields(&mut fields));
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn the_trace_id_is_on_the_call_span() {
    let spans = Spans::default();
    let _guard = tracing::subscriber::set_default(spans.clone());
    let tp = sent(req("ok").with_traceparent(PARENT)).await;
    let fields = spans.0.lock().unwrap().clone();
    assert!(
        fields.contains(&("trace_id".to_owned(), tp.trace_id_hex())),
        "{fields:?}"
    );
    assert!(fields.contains(&("span_id".to_owned(), tp.parent_id_hex())));
    assert!(fields.contains(&("method".to_owned(), "ok".to_owned())));
}
