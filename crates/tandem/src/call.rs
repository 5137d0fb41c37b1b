//! The one call model: [`Request`], [`Response`] and the typed [`Error`].
//!
//! Every transport client is a `tower::Service<Request, Response = Response, Error = Error>`, so
//! the same guard and metrics layers wrap all four transports, and one Python `App` answers any
//! of them.
//!
//! ```
//! use std::time::Duration;
//! use tandem::{Payload, Request};
//!
//! let req = Request::new("score", Payload::json(&serde_json::json!({"amount": 12})).unwrap())
//!     .with_timeout(Duration::from_millis(50))
//!     .with_header("tenant", "acme");
//! assert_eq!(req.method(), "score");
//! assert!(req.metadata().remaining().unwrap() <= Duration::from_millis(50));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::codec::{CodecError, Payload};

/// A boxed error from a lower layer (io, tonic, redis), kept as an error's `source()`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which transport a call went through; the `transport` label of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// A persistent worker of a `process::Pool`.
    Pool,
    /// A one-shot `process::Script`.
    Script,
    /// A go-plugin plugin.
    Plugin,
    /// The gRPC client.
    Grpc,
    /// Redis Streams.
    Queue,
}

impl Transport {
    /// The transport's lowercase name (`pool`, `script`, `plugin`, `grpc`, `queue`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Pool => "pool",
            Transport::Script => "script",
            Transport::Plugin => "plugin",
            Transport::Grpc => "grpc",
            Transport::Queue => "queue",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What travels beside the payload: deadline, trace context, idempotency key, free headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// When the caller stops waiting. Transports send the remaining time to Python.
    pub deadline: Option<Instant>,
    /// W3C `traceparent` of the caller's span.
    pub traceparent: Option<String>,
    /// A key that makes retries of the same logical call recognisable.
    pub idempotency_key: Option<String>,
    /// Free-form headers, visible to the handler as `ctx.metadata`.
    pub headers: BTreeMap<String, String>,
}

impl Metadata {
    /// Time left before the deadline (zero once passed), or `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Sets the deadline to `timeout` from now, keeping an earlier deadline if there is one.
    pub fn tighten_deadline(&mut self, timeout: Duration) {
        let candidate = Instant::now() + timeout;
        self.deadline = Some(match self.deadline {
            Some(d) if d < candidate => d,
            _ => candidate,
        });
    }
}

/// One call: a method name, a payload and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    payload: Payload,
    metadata: Metadata,
}

impl Request {
    /// A call of `method` with `payload` and empty metadata.
    pub fn new(method: impl Into<String>, payload: Payload) -> Self {
        Self {
            method: method.into(),
            payload,
            metadata: Metadata::default(),
        }
    }

    /// Sets the deadline `timeout` from now (an earlier deadline already set wins).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.metadata.tighten_deadline(timeout);
        self
    }

    /// Sets the W3C `traceparent`.
    pub fn with_traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.metadata.traceparent = Some(traceparent.into());
        self
    }

    /// Sets the idempotency key.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.metadata.idempotency_key = Some(key.into());
        self
    }

    /// Adds a free header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.headers.insert(key.into(), value.into());
        self
    }

    /// The method name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The payload.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Splits the request into its parts.
    pub fn into_parts(self) -> (String, Payload, Metadata) {
        (self.method, self.payload, self.metadata)
    }

    /// Builds a request from its parts.
    pub fn from_parts(method: String, payload: Payload, metadata: Metadata) -> Self {
        Self {
            method,
            payload,
            metadata,
        }
    }
}

/// A successful answer: the handler's return value, encoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    payload: Payload,
    headers: BTreeMap<String, String>,
}

impl Response {
    /// A response carrying `payload`.
    pub fn new(payload: Payload) -> Self {
        Self {
            payload,
            headers: BTreeMap::new(),
        }
    }

    /// Adds a header (transports put facts about the call here, e.g. the worker pid).
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(key.into(), value.into());
        self
    }

    /// The payload.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// Consumes the response, returning the payload.
    pub fn into_payload(self) -> Payload {
        self.payload
    }

    /// Headers set by the transport.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
    }

    /// Decodes the payload into `T`.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the payload does not decode into `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, CodecError> {
        self.payload.decode()
    }
}

/// The kind of an [`Error`], without its details: the `status` label of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The deadline passed.
    Timeout,
    /// The worker, plugin or endpoint is gone or not ready.
    Unavailable,
    /// A queue or bulkhead is full.
    Overloaded,
    /// The circuit breaker is open.
    BreakerOpen,
    /// The Python handler raised.
    Remote,
    /// The caller sent something the peer cannot take (unknown method, bad payload).
    BadRequest,
    /// A peer broke the wire format.
    Protocol,
}

impl ErrorKind {
    /// The snake_case name used as the metrics `status` label and on every wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::BreakerOpen => "breaker_open",
            ErrorKind::Remote => "remote",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Protocol => "protocol",
        }
    }

    /// The kind named `s` on the wire, if any.
    pub fn parse(s: &str) -> Option<ErrorKind> {
        [
            ErrorKind::Timeout,
            ErrorKind::Unavailable,
            ErrorKind::Overloaded,
            ErrorKind::BreakerOpen,
            ErrorKind::Remote,
            ErrorKind::BadRequest,
            ErrorKind::Protocol,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call failed. Every message says what failed, where, and the detail; [`Error::hint`]
/// says what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The deadline passed before an answer came.
    #[error("{transport} call timed out: {target} (after {elapsed:?})")]
    Timeout {
        /// The transport.
        transport: Transport,
        /// Where the call went (method, worker pid, endpoint).
        target: String,
        /// How long the call ran before it was abandoned.
        elapsed: Duration,
    },
    /// The peer is gone or not ready: a crashed worker, a plugin restarting, an endpoint down.
    #[error("{transport} unavailable: {target} ({reason})")]
    Unavailable {
        /// The transport.
        transport: Transport,
        /// Where the call went.
        target: String,
        /// What happened (exit status, connection error, last stderr lines).
        reason: String,
        /// The lower-level cause, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A bounded queue or bulkhead is full; the call was rejected at once.
    #[error("{transport} overloaded: {target} (limit {limit})")]
    Overloaded {
        /// The transport, or the guard layer's transport.
        transport: Transport,
        /// Which queue or bulkhead.
        target: String,
        /// The limit that was reached.
        limit: usize,
    },
    /// The circuit breaker is open and rejects calls until its sleep window ends.
    #[error("circuit breaker open: {name} (retry in {retry_in:?})")]
    BreakerOpen {
        /// The breaker's (command's) name.
        name: String,
        /// Time until the breaker lets a trial call through.
        retry_in: Duration,
    },
    /// The Python handler raised an exception.
    #[error("python handler raised {exc_type}: {target} ({message})")]
    Remote {
        /// The transport.
        transport: Transport,
        /// Which method (and worker) raised.
        target: String,
        /// The exception's qualified type name, e.g. `ValueError`.
        exc_type: String,
        /// The exception's message.
        message: String,
        /// The formatted Python traceback.
        traceback: String,
    },
    /// The peer refused the call: unknown method, undecodable payload, payload too large.
    #[error("bad request: {target} ({reason})")]
    BadRequest {
        /// The transport.
        transport: Transport,
        /// Which method or endpoint.
        target: String,
        /// Why it was refused.
        reason: String,
    },
    /// A peer broke the wire format: garbage or truncated frames, a bad handshake.
    #[error("{transport} protocol error: {target} ({reason})")]
    Protocol {
        /// The transport.
        transport: Transport,
        /// Which peer.
        target: String,
        /// What was wrong with the bytes.
        reason: String,
        /// The lower-level cause, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// The error's kind, the `status` label of the metrics.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Overloaded { .. } => ErrorKind::Overloaded,
            Error::BreakerOpen { .. } => ErrorKind::BreakerOpen,
            Error::Remote { .. } => ErrorKind::Remote,
            Error::BadRequest { .. } => ErrorKind::BadRequest,
            Error::Protocol { .. } => ErrorKind::Protocol,
        }
    }

    /// The transport the error came from (`None` for a breaker, which sits above transports).
    pub fn transport(&self) -> Option<Transport> {
        match self {
            Error::Timeout { transport, .. }
            | Error::Unavailable { transport, .. }
            | Error::Overloaded { transport, .. }
            | Error::Remote { transport, .. }
            | Error::BadRequest { transport, .. }
            | Error::Protocol { transport, .. } => Some(*transport),
            Error::BreakerOpen { .. } => None,
        }
    }

    /// Whether retrying the same call later may succeed (the peer was not at fault for the input).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Timeout
                | ErrorKind::Unavailable
                | ErrorKind::Overloaded
                | ErrorKind::BreakerOpen
        )
    }

    /// The next step for the person reading the error, printed by the CLI as `hint: …`.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::Timeout { .. } => {
                "raise the timeout, or make the handler faster (the remote work was cancelled)"
            }
            Error::Unavailable { .. } => {
                "check that the Python side starts (its stderr is in the logs); it is restarted with backoff"
            }
            Error::Overloaded { .. } => {
                "add workers or concurrency, or slow the callers down; the call was not run"
            }
            Error::BreakerOpen { .. } => {
                "the Python dependency failed too often; the breaker lets a trial call through after its sleep window"
            }
            Error::Remote { .. } => "fix the handler; its Python traceback is in the error",
            Error::BadRequest { .. } => {
                "check the method name and the payload against the handler's registration"
            }
            Error::Protocol { .. } => {
                "the peer broke the wire format: check that both sides run the same tandem version"
            }
        }
    }

    /// A `Unavailable` error without a source.
    pub fn unavailable(
        transport: Transport,
        target: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Unavailable {
            transport,
            target: target.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// A `Protocol` error without a source.
    pub fn protocol(
        transport: Transport,
        target: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Protocol {
            transport,
            target: target.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// A `BadRequest` error.
    pub fn bad_request(
        transport: Transport,
        target: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::BadRequest {
            transport,
            target: target.into(),
            reason: reason.into(),
        }
    }

    /// Rebuilds an error from the portable form every Python side sends: its kind name, the
    /// exception type, message and traceback. Unknown kinds are read as `Protocol`.
    pub fn from_wire(
        transport: Transport,
        target: impl Into<String>,
        kind: &str,
        exc_type: &str,
        message: &str,
        traceback: &str,
    ) -> Self {
        let target = target.into();
        match ErrorKind::parse(kind) {
            Some(ErrorKind::Remote) => Error::Remote {
                transport,
                target,
                exc_type: exc_type.to_owned(),
                message: message.to_owned(),
                traceback: traceback.to_owned(),
            },
            Some(ErrorKind::BadRequest) => Error::bad_request(transport, target, message),
            Some(ErrorKind::Timeout) => Error::Timeout {
                transport,
                target,
                elapsed: Duration::ZERO,
            },
            Some(ErrorKind::Overloaded) => Error::Overloaded {
                transport,
                target,
                limit: 0,
            },
            Some(ErrorKind::Unavailable) => Error::unavailable(transport, target, message),
            Some(ErrorKind::BreakerOpen) => Error::BreakerOpen {
                name: target,
                retry_in: Duration::ZERO,
            },
            Some(ErrorKind::Protocol) => Error::protocol(transport, target, message),
            None => Error::protocol(
                transport,
                target,
                format!("peer sent unknown error kind {kind:?}: {exc_type}: {message}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Payload;

    #[test]
    fn messages_say_what_where_and_detail() {
        let e = Error::unavailable(Transport::Pool, "score on worker 42", "exited (signal 9)");
        assert_eq!(
            e.to_string(),
            "pool unavailable: score on worker 42 (exited (signal 9))"
        );
        assert_eq!(e.kind().as_str(), "unavailable");
        assert!(e.is_transient());
        assert!(!e.hint().is_empty());
    }

    #[test]
    fn wire_errors_round_trip_their_kind() {
        for kind in [
            "timeout",
            "unavailable",
            "overloaded",
            "breaker_open",
            "remote",
            "bad_request",
            "protocol",
        ] {
            let e = Error::from_wire(Transport::Plugin, "m", kind, "T", "msg", "tb");
            assert_eq!(e.kind().as_str(), kind);
        }
        let e = Error::from_wire(Transport::Grpc, "m", "nonsense", "T", "msg", "");
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.to_string().contains("nonsense"));
    }

    #[test]
    fn deadline_keeps_the_earlier_one() {
        let req = Request::new("m", Payload::raw("x"))
            .with_timeout(Duration::from_millis(10))
            .with_timeout(Duration::from_secs(10));
        assert!(req.metadata().remaining().unwrap() <= Duration::from_millis(10));
        assert!(!Request::new("m", Payload::raw("")).metadata().expired());
    }
}
