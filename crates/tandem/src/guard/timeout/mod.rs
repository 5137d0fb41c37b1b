//! A deadline for every call: sent to the peer through `Metadata.deadline`, and enforced here.
//!
//! [`Timeout`] tightens the request's deadline to at most its duration from now (an earlier
//! deadline the caller set wins), so the transport tells the Python side how long it has and
//! cancels the remote work when it passes: the pool kills the worker, gRPC sends
//! `grpc-timeout`, the plugin call is cancelled. It also races the inner future against the
//! same deadline and answers [`Error::Timeout`] when it passes first. A request whose
//! deadline has already passed is not sent at all.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tandem::guard::TimeoutLayer;
//! use tandem::{Error, Payload, Request, Response, Transport};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let slow = service_fn(|req: Request| async move {
//!     assert!(req.metadata().deadline.is_some()); // the transport sees the deadline
//!     tokio::time::sleep(Duration::from_secs(60)).await;
//!     Ok::<_, Error>(Response::default())
//! });
//! let svc = TimeoutLayer::new(Transport::Pool, Duration::from_millis(10)).layer(slow);
//! let err = svc.oneshot(Request::new("report", Payload::raw(""))).await.unwrap_err();
//! assert!(matches!(err, Error::Timeout { .. }));
//! # }
//! ```

pub mod future;
mod layer;

pub use layer::TimeoutLayer;

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::Service;

use self::future::ResponseFuture;
use crate::call::{Error, Request, Response, Transport};

/// Bounds every call by a deadline; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
    transport: Transport,
}

// ===== impl Timeout =====

impl<S> Timeout<S> {
    /// Wraps `inner` so that each call gets at most `timeout`; errors name `transport`.
    pub fn new(inner: S, transport: Transport, timeout: Duration) -> Self {
        Timeout {
            inner,
            timeout,
            transport,
        }
    }

    /// The configured timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    inner_accessors!();
}

impl<S> Service<Request> for Timeout<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let now = Instant::now();
        let ours = now + self.timeout;
        let deadline = match req.metadata().deadline {
            Some(theirs) if theirs < ours => theirs,
            _ => ours,
        };
        req.metadata_mut().deadline = Some(deadline);
        let remaining = deadline.saturating_duration_since(now);
        let target = req.method().to_owned();
        if remaining.is_zero() {
            return ResponseFuture::expired(Error::Timeout {
                transport: self.transport,
                target,
                elapsed: Duration::ZERO,
            });
        }
        ResponseFuture::running(
            self.inner.call(req),
            deadline,
            remaining,
            self.transport,
            target,
        )
    }
}
