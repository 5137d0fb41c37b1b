//! A degraded answer in place of a failed call: the breaker is open, the call timed out...
//!
//! [`Fallback`] calls the inner service and, when it fails with one of the trigger kinds,
//! asks the fallback function for an answer. The function sees the error and the request and
//! returns `Some(response)` to answer in the call's place, or `None` to let the error through.
//! By default every kind but `BadRequest` triggers it: a caller's mistake should surface,
//! everything else is the dependency's fault. (The design's principle: never a synchronous
//! Python call on the core path without a deadline *and a fallback*.)
//!
//! ```
//! use tandem::guard::FallbackLayer;
//! use tandem::{Error, Payload, Request, Response, Transport};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let down = service_fn(|_req: Request| async {
//!     Err::<Response, _>(Error::unavailable(Transport::Grpc, "score", "connection refused"))
//! });
//! let layer = FallbackLayer::new("score", |_err: &Error, _req: &Request| {
//!     Some(Response::new(Payload::json(&serde_json::json!({"risk": 0.5})).ok()?))
//! });
//! let svc = layer.layer(down);
//! let resp = svc.oneshot(Request::new("score", Payload::raw(""))).await.unwrap();
//! assert_eq!(resp.decode::<serde_json::Value>().unwrap()["risk"], 0.5);
//! # }
//! ```

pub mod future;
mod layer;

pub use layer::FallbackLayer;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

use self::future::ResponseFuture;
use super::observer::SharedObserver;
use crate::call::{Error, ErrorKind, Request, Response};

/// The function that produces a degraded answer: `Some(response)` answers in the failed
/// call's place, `None` lets the error through.
pub type FallbackFn = Arc<dyn Fn(&Error, &Request) -> Option<Response> + Send + Sync>;

/// Answers failed calls with a fallback; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Fallback<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// Which error kinds trigger a fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Triggers(u8);

pub(crate) struct Shared {
    name: String,
    function: Option<FallbackFn>,
    triggers: Triggers,
    observer: SharedObserver,
}

// ===== impl Triggers =====

impl Triggers {
    fn bit(kind: ErrorKind) -> u8 {
        1 << match kind {
            ErrorKind::Timeout => 0,
            ErrorKind::Unavailable => 1,
            ErrorKind::Overloaded => 2,
            ErrorKind::BreakerOpen => 3,
            ErrorKind::Remote => 4,
            ErrorKind::BadRequest => 5,
            ErrorKind::Protocol => 6,
        }
    }

    /// Exactly the given kinds.
    pub fn only(kinds: &[ErrorKind]) -> Self {
        Triggers(kinds.iter().fold(0, |acc, k| acc | Self::bit(*k)))
    }

    /// Whether `kind` triggers the fallback.
    pub fn contains(self, kind: ErrorKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }
}

impl Default for Triggers {
    /// Every kind except `BadRequest`.
    fn default() -> Self {
        Triggers(!Self::bit(ErrorKind::BadRequest))
    }
}

// ===== impl Shared =====

impl Shared {
    pub(crate) fn new(
        name: String,
        function: Option<FallbackFn>,
        triggers: Triggers,
        observer: SharedObserver,
    ) -> Arc<Self> {
        Arc::new(Shared {
            name,
            function,
            triggers,
            observer,
        })
    }

    /// The fallback's answer for `error`, if it has one.
    fn answer(&self, error: &Error, req: &Request) -> Option<Response> {
        let kind = error.kind();
        if !self.triggers.contains(kind) {
            return None;
        }
        let response = (self.function.as_ref()?)(error, req)?;
        tracing::debug!(fallback = %self.name, error = %error, "answered with the fallback");
        if let Some(o) = &self.observer {
            o.fallback_used(&self.name, kind);
        }
        Some(response)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("enabled", &self.function.is_some())
            .field("triggers", &self.triggers)
            .finish_non_exhaustive()
    }
}

// ===== impl Fallback =====

impl<S> Fallback<S> {
    /// Wraps `inner`, answering its failures (of the default trigger kinds) with `function`.
    pub fn new<F>(inner: S, name: impl Into<String>, function: F) -> Self
    where
        F: Fn(&Error, &Request) -> Option<Response> + Send + Sync + 'static,
    {
        Fallback {
            inner,
            shared: Shared::new(
                name.into(),
                Some(Arc::new(function)),
                Triggers::default(),
                None,
            ),
        }
    }

    pub(crate) fn with_shared(inner: S, shared: Arc<Shared>) -> Self {
        Fallback { inner, shared }
    }

    inner_accessors!();
}

impl<S> Service<Request> for Fallback<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if self.shared.function.is_none() {
            return ResponseFuture::new(self.inner.call(req), None);
        }
        // The fallback may need the request after the inner service consumed it.
        let kept = req.clone();
        ResponseFuture::new(self.inner.call(req), Some((kept, self.shared.clone())))
    }
}
