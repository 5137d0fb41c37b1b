//! Optional OpenTelemetry export (feature `otel`): a client span per call, whose ids are the
//! W3C `traceparent` the call carries to Python.
//!
//! [`OtelLayer`] opens a span of kind `Client` named `"<transport> <method>"` for every call,
//! as a child of the request's own `traceparent` or the task's [`trace::current`] context (else
//! a new trace), and puts that span's trace id and span id on the request as its
//! `traceparent`; so the Python handler's `ctx.traceparent`, and the Python span that
//! `tandem[otel]` opens from it, are children of this span. The span ends with the call:
//! status `Error` and an `error.type` attribute (the error kind) when it failed.
//!
//! [`init_otlp`] builds a tracer provider that exports over OTLP/gRPC in batches (to a
//! collector, Jaeger or Tempo). Put the layer outermost in the stack (outside the guard), so the
//! span covers retries and fallbacks:
//!
//! ```no_run
//! # async fn demo() -> Result<(), tandem::Error> {
//! use tandem::otel::{init_otlp, OtelLayer};
//! use tandem::process::Pool;
//! use tandem::Transport;
//! use tower::Layer;
//!
//! let provider = init_otlp("http://127.0.0.1:4317", "payments-core")?;
//! let pool = Pool::builder("service:app").build().await?;
//! let traced = OtelLayer::new(&provider, Transport::Pool).layer(pool);
//! // ... calls ...
//! let _ = provider.shutdown(); // flushes the last batch
//! # Ok(()) }
//! ```
//!
//! [`trace::current`]: crate::trace::current

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tower::{Layer, Service};

use crate::call::{Error, Request, Response, Transport};
use crate::trace;

/// A tracer provider exporting spans over OTLP/gRPC to `endpoint` (e.g.
/// `http://127.0.0.1:4317`) in batches, with `service.name` = `service_name`. Call
/// [`SdkTracerProvider::shutdown`] before exiting to send the last batch.
///
/// # Errors
///
/// `BadRequest` when the exporter cannot be built from `endpoint`.
pub fn init_otlp(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, Error> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| {
            Error::bad_request(
                Transport::Grpc,
                format!("OTLP exporter for {endpoint}"),
                format!("cannot build it: {e}"),
            )
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Opens an OpenTelemetry client span per call and sends its ids as the call's `traceparent`;
/// see the [module docs](self).
#[derive(Clone, Debug)]
pub struct OtelLayer {
    tracer: Arc<SdkTracer>,
    transport: Transport,
}

impl OtelLayer {
    /// Spans from `provider`'s tracer `tandem`, for calls through `transport`.
    pub fn new(provider: &SdkTracerProvider, transport: Transport) -> Self {
        OtelLayer {
            tracer: Arc::new(provider.tracer("tandem")),
            transport,
        }
    }
}

impl<S> Layer<S> for OtelLayer {
    type Service = Otel<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Otel {
            inner,
            tracer: self.tracer.clone(),
            transport: self.transport,
        }
    }
}

/// The service built by [`OtelLayer`].
#[derive(Clone, Debug)]
pub struct Otel<S> {
    inner: S,
    tracer: Arc<SdkTracer>,
    transport: Transport,
}

impl<S> Otel<S> {
    crate::guard::inner_accessors!();
}

/// The OpenTelemetry context of a remote parent `traceparent`, or an empty one.
fn parent_context(req: &Request) -> opentelemetry::Context {
    match trace::parent(req) {
        Some(tp) => opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes(tp.trace_id()),
            SpanId::from_bytes(tp.parent_id()),
            TraceFlags::new(tp.flags()),
            true,
            TraceState::default(),
        )),
        None => opentelemetry::Context::new(),
    }
}

impl<S> Service<Request> for Otel<S>
where
    S: Service<Request, Response = Response, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let transport = self.transport.as_str();
        let mut span = self
            .tracer
            .span_builder(format!("{transport} {}", req.method()))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("rpc.system", "tandem"),
                KeyValue::new("rpc.method", req.method().to_owned()),
                KeyValue::new("tandem.transport", transport),
            ])
            .start_with_context(self.tracer.as_ref(), &parent_context(&req));
        let sc = span.span_context();
        req.metadata_mut().traceparent = Some(format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        ));
        let call = self.inner.call(req);
        Box::pin(async move {
            let result = call.await;
            if let Err(e) = &result {
                span.set_attribute(KeyValue::new("error.type", e.kind().as_str()));
                span.set_status(Status::error(e.to_string()));
            }
            span.end();
            result
        })
    }
}
