//! [`Client`]: the balanced, health-aware `tower::Service` for the generic call
//! (`tandem.v1.Call/Invoke`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use prost::Message as _;
use tokio::sync::watch;

use crate::call::{Error, Request, Response, Transport};
use crate::codec::{Codec, Payload};
use crate::proto::call::{call_client::CallClient, call_reply, CallReply, CallRequest};

use super::balance::{Balancer, Conn, InFlight};
use super::classify::{classify, is_connection_failure};
use super::config::{Builder, Settings};
use super::health::{self, Watcher};
use super::retry::Retry;

/// Applies the client's message limits and compression to a generated tonic client.
macro_rules! configure {
    ($client:expr, $settings:expr) => {{
        let s: &$crate::grpc::config::Settings = $settings;
        // gzip answers are always read: `serve --gzip` compresses whatever the client sends.
        let c = $client
            .max_decoding_message_size(s.max_message_size)
            .max_encoding_message_size(s.max_message_size)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        if s.gzip {
            c.send_compressed(tonic::codec::CompressionEncoding::Gzip)
        } else {
            c
        }
    }};
}
pub(crate) use configure;

/// A balanced, health-aware gRPC client for `python -m tandem serve`.
///
/// It keeps several HTTP/2 connections to every endpoint, watches each one's
/// `grpc.health.v1` status, sends every call to the less loaded of two healthy connections,
/// turns the request's deadline into the gRPC deadline, and retries idempotent calls inside it.
/// Cloning is cheap and shares the connections. It implements
/// `tower::Service<tandem::Request>` for the generic call; [`Client::inference`] gives the
/// typed `InferenceService` client on the same connections.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), tandem::Error> {
/// use std::time::Duration;
/// use tandem::{Payload, Request};
///
/// let client = tandem::grpc::Client::builder()
///     .endpoint("http://127.0.0.1:50051")
///     .build()?;
/// let req = Request::new("score", Payload::json(&serde_json::json!({"amount": 12})).unwrap())
///     .with_timeout(Duration::from_millis(100));
/// let resp = client.invoke(req).await?;
/// let score: serde_json::Value = resp.decode().unwrap();
/// # Ok(()) }
/// ```
///
/// # Caveats
///
/// The client must be built inside a tokio runtime: each connection has a health task, which
/// ends when the last clone of the client is dropped. Dropping a call's future cancels the
/// call (the server sees a CANCELLED stream).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) settings: Settings,
    pub(crate) balancer: Balancer,
    pub(crate) retry: Retry,
    /// Dropped with the last client: ends the health tasks.
    _shutdown: watch::Sender<()>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.settings.endpoints)
            .field("health", &self.inner.balancer.summary())
            .finish()
    }
}

/// How one logical call is made (the same for the generic call and the typed client).
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    /// The method, for error targets (`score`, `inference.InferenceService/Predict`).
    pub(crate) method: &'a str,
    pub(crate) deadline: Instant,
    pub(crate) idempotent: bool,
}

impl Client {
    /// Starts a [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A client with default settings for an endpoint string, as the CLI takes it:
    /// `grpc://HOST:PORT`, `http://HOST:PORT` or `unix:///path`, several separated by commas
    /// (`grpc://10.0.0.1:50051,10.0.0.2:50051`).
    ///
    /// # Errors
    ///
    /// `BadRequest` for an unsupported or malformed endpoint; `Unavailable` outside a tokio
    /// runtime.
    pub fn from_uri(uri: &str) -> Result<Client, Error> {
        let mut builder = Client::builder();
        let mut scheme = "";
        for part in uri.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((s, _)) = part.split_once("://") {
                scheme = s;
                builder = builder.endpoint(part);
            } else if !scheme.is_empty() {
                // `grpc://a:1,b:2`: later entries inherit the first one's scheme.
                builder = builder.endpoint(format!("{scheme}://{part}"));
            } else {
                builder = builder.endpoint(part);
            }
        }
        builder.build()
    }

    pub(crate) fn start(settings: Settings) -> Result<Client, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::unavailable(
                Transport::Grpc,
                "grpc client",
                "build() was called outside a tokio runtime; build the client inside one",
            )
        })?;
        let balancer = Balancer::new(&settings)?;
        let (tx, rx) = watch::channel(());
        let watcher = Watcher {
            service: settings.health_service.clone(),
            interval: settings.health_interval,
            shutdown: rx,
        };
        for conn in &balancer.conns {
            health::spawn(&handle, conn.clone(), watcher.clone());
        }
        let retry = Retry::new(settings.retry.clone());
        Ok(Client {
            inner: Arc::new(Inner {
                settings,
                balancer,
                retry,
                _shutdown: tx,
            }),
        })
    }

    /// A line per endpoint saying how many connections are healthy, and why others are not.
    pub fn health_summary(&self) -> String {
        self.inner.balancer.summary()
    }

    /// Attempts made again after a transient failure, over the client's life.
    pub fn retries(&self) -> u64 {
        self.inner.balancer.events.counts().0
    }

    /// Healthy connections taken out of rotation (NOT_SERVING, or a call saw the connection
    /// fail), over the client's life.
    pub fn ejections(&self) -> u64 {
        self.inner.balancer.events.counts().1
    }

    /// Keeps `metrics` (`tandem_grpc_client_retries_total` and
    /// `tandem_grpc_client_ejections_total`) up to date from now on, at each retry and
    /// ejection. Per-call latency and status come from [`crate::metrics::MetricsLayer`].
    ///
    /// ```no_run
    /// # fn demo(client: tandem::grpc::Client) {
    /// let registry = tandem::metrics::Registry::new();
    /// client.instrument(registry.grpc_client("risk"));
    /// # }
    /// ```
    #[cfg(feature = "metrics")]
    pub fn instrument(&self, metrics: crate::metrics::GrpcClientMetrics) {
        self.inner.balancer.events.instrument(metrics);
    }

    /// Waits until at least one connection is healthy, or `timeout` passes.
    ///
    /// # Errors
    ///
    /// `Unavailable` with every endpoint's state when none becomes healthy in time.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        self.inner
            .balancer
            .pick_until(&[], Instant::now() + timeout, "grpc client", false)
            .await
            .map(|_| ())
    }

    /// Calls a method of the served tandem App (`tandem.v1.Call/Invoke`).
    ///
    /// The request's deadline (or the default timeout) becomes the gRPC deadline; its
    /// traceparent travels as the `traceparent` metadata and in the message; its headers
    /// become the handler's `ctx.metadata`. The response carries the `endpoint` header.
    ///
    /// # Errors
    ///
    /// `Timeout` when the deadline passes, `Unavailable` when no endpoint is healthy or the
    /// connection broke, `Overloaded` when the server sheds load, `BadRequest` for an unknown
    /// method, an undecodable or oversized payload, `Remote` when the handler raised,
    /// `Protocol` when the reply is malformed.
    pub async fn invoke(&self, req: Request) -> Result<Response, Error> {
        let inner = &self.inner;
        let (method, payload, meta) = req.into_parts();
        let idempotent =
            meta.idempotency_key.is_some() || inner.settings.idempotent_methods.contains(&method);
        let deadline = meta
            .deadline
            .unwrap_or_else(|| Instant::now() + inner.settings.default_timeout);
        let traceparent = meta.traceparent.clone();
        let codec = payload.codec();
        let message = CallRequest {
            method: method.clone(),
            payload: payload.into_bytes().to_vec(),
            codec: codec.as_str().to_owned(),
            metadata: meta.headers.into_iter().collect(),
            traceparent: traceparent.clone().unwrap_or_default(),
            idempotency_key: meta.idempotency_key.unwrap_or_default(),
        };
        check_size(message.encoded_len(), &inner.settings, &method)?;
        let plan = Plan {
            method: &method,
            deadline,
            idempotent,
        };
        let (resp, guard) = self
            .run(&plan, |conn, remaining| {
                let mut client = configure!(CallClient::new(conn.channel.clone()), &inner.settings);
                let req = grpc_request(message.clone(), remaining, traceparent.as_deref());
                let target = format!("{method} at {}", conn.endpoint);
                let endpoint = conn.endpoint.clone();
                async move {
                    let reply = client.invoke(req).await?.into_inner();
                    reply_to_response(reply, target, &endpoint).map_err(Failure::Call)
                }
            })
            .await?;
        drop(guard);
        Ok(resp)
    }

    /// Runs one logical call: picks a healthy connection, makes the attempt inside the
    /// deadline, classifies a failure, ejects a broken connection, and retries when allowed.
    /// Returns the answer and the in-flight guard of the connection that gave it.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        plan: &Plan<'_>,
        mut attempt: F,
    ) -> Result<(T, InFlight), Error>
    where
        F: FnMut(&Arc<Conn>, Duration) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let inner = &self.inner;
        let started = Instant::now();
        let mut tried: Vec<usize> = Vec::new();
        inner.retry.first_attempt();
        let mut n = 0u32;
        loop {
            n += 1;
            let conn = inner
                .balancer
                .pick_until(&tried, plan.deadline, plan.method, true)
                .await?;
            let target = format!("{} at {}", plan.method, conn.endpoint);
            let remaining = plan.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::Timeout {
                    transport: Transport::Grpc,
                    target,
                    elapsed: started.elapsed(),
                });
            }
            let guard = conn.begin();
            let outcome =
                tokio::time::timeout_at(plan.deadline.into(), attempt(&conn, remaining)).await;
            let err = match outcome {
                Ok(Ok(value)) => return Ok((value, guard)),
                Ok(Err(Failure::Status(status))) => classify(&status, &target, started.elapsed()),
                Ok(Err(Failure::Call(err))) => err,
                Err(_) => Error::Timeout {
                    transport: Transport::Grpc,
                    target,
                    elapsed: started.elapsed(),
                },
            };
            drop(guard);
            if is_connection_failure(&err) {
                conn.eject(format!("a call failed: {err}"));
            }
            tried.push(conn.id);
            let remaining = plan.deadline.saturating_duration_since(Instant::now());
            if !inner
                .retry
                .should_retry(plan.idempotent, n, &err, remaining)
            {
                return Err(err);
            }
            inner.balancer.events.retried();
            tracing::debug!(method = plan.method, attempt = n, error = %err, "retrying grpc call");
            let pause = inner.retry.backoff(n, remaining, inner.balancer.jitter());
            tokio::time::sleep(pause).await;
        }
    }
}

/// Why an attempt failed: a gRPC status, or an error the server answered inside a reply.
#[derive(Debug)]
pub(crate) enum Failure {
    Status(tonic::Status),
    Call(Error),
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Failure::Status(status)
    }
}

/// Turns a `CallReply` into the handler's response or its error.
fn reply_to_response(reply: CallReply, target: String, endpoint: &str) -> Result<Response, Error> {
    match reply.result {
        Some(call_reply::Result::Ok(p)) => {
            let codec = p.codec.parse::<Codec>().map_err(|_| {
                Error::protocol(
                    Transport::Grpc,
                    target.clone(),
                    format!("reply has unknown codec {:?}", p.codec),
                )
            })?;
            Ok(Response::new(Payload::new(codec, p.data)).with_header("endpoint", endpoint))
        }
        Some(call_reply::Result::Error(e)) => Err(Error::from_wire(
            Transport::Grpc,
            target,
            &e.kind,
            &e.r#type,
            &e.message,
            &e.traceback,
        )),
        None => Err(Error::protocol(
            Transport::Grpc,
            target,
            "reply carries neither a result nor an error",
        )),
    }
}

/// A tonic request with the deadline and the trace context.
pub(crate) fn grpc_request<T>(
    message: T,
    remaining: Duration,
    traceparent: Option<&str>,
) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.set_timeout(remaining);
    if let Some(tp) = traceparent {
        if let Ok(value) = tp.parse() {
            req.metadata_mut().insert("traceparent", value);
        }
    }
    req
}

/// Refuses a message larger than the limit before it is sent.
pub(crate) fn check_size(len: usize, settings: &Settings, method: &str) -> Result<(), Error> {
    if len > settings.max_message_size {
        return Err(Error::bad_request(
            Transport::Grpc,
            method,
            format!(
                "message of {len} bytes exceeds the {} byte limit; send less, or raise max_message_size on both client and server",
                settings.max_message_size
            ),
        ));
    }
    Ok(())
}

/// The future of [`Client`]'s `Service::call`.
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl tower::Service<Request> for Client {
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Connections are picked per call; a call with no healthy one fails with Unavailable.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> ResponseFuture {
        let client = self.clone();
        ResponseFuture {
            inner: Box::pin(async move { client.invoke(req).await }),
        }
    }
}
