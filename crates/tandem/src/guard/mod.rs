//! Guard layers for calls into Python: breaker, timeout, bulkhead, fallback, retry.
//!
//! Each is a `tower::Layer` over any `Service<Request, Response = Response, Error = Error>`
//! (every transport client) and returns that same service type, so errors stay
//! [`tandem::Error`](crate::Error) values (no `BoxError`, no downcasting):
//!
//! | layer | does | rejects with |
//! |---|---|---|
//! | [`BreakerLayer`] | stops calling a failing dependency for a while (hystrix semantics) | `BreakerOpen` |
//! | [`TimeoutLayer`] | sets the request's deadline (sent to Python) and enforces it | `Timeout` |
//! | [`BulkheadLayer`] | at most N calls at once, the rest rejected at once | `Overloaded` |
//! | [`FallbackLayer`] | a degraded answer in place of a failed call | — |
//! | [`RetryLayer`] | retries idempotent, transient failures within a budget and the deadline | — |
//! | [`ObserveLayer`] | reports every call to an [`Observer`] (metrics) | — |
//!
//! [`Policy`] bundles them like `hystrix.ConfigureCommand`, with the reference defaults
//! (timeout 1 s, 100 concurrent, trip at 50 % errors once 20 requests are in the window, try
//! again after 5 s) and builds them in the documented order:
//! fallback → observe → breaker → bulkhead → timeout → retry → transport.
//! `docs/resilience.md` in the repository explains the order and the gRPC status mapping
//! ([`classify_grpc_code`]).
//!
//! ```
//! use tandem::guard::Policy;
//! use tandem::{Payload, Request, Response, Transport};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let python = service_fn(|_req: Request| async { Ok::<_, tandem::Error>(Response::default()) });
//! let svc = Policy::new("report", Transport::Pool).layer().layer(python);
//! svc.oneshot(Request::new("report", Payload::raw(""))).await.unwrap();
//! # }
//! ```

/// `get_ref`, `get_mut` and `into_inner` for a wrapper whose inner service is `self.inner`.
macro_rules! inner_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes the wrapper, returning the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}
pub(crate) use inner_accessors;

/// Yields a rejection stored in a response future (once).
pub(crate) fn take_rejection(
    error: &mut Option<crate::Error>,
) -> std::task::Poll<Result<crate::Response, crate::Error>> {
    match error.take() {
        Some(e) => std::task::Poll::Ready(Err(e)),
        None => panic!("a guard ResponseFuture was polled after it completed"),
    }
}

pub mod breaker;
pub mod bulkhead;
mod classify;
mod clock;
pub mod fallback;
pub mod observe;
mod observer;
mod policy;
pub mod retry;
pub mod timeout;
mod window;

pub use breaker::{Breaker, BreakerConfig, BreakerHandle, BreakerLayer, BreakerState};
pub use bulkhead::{Bulkhead, BulkheadLayer};
pub use classify::{classify_grpc_code, default_classifier, Classifier, Outcome};
pub use clock::{Clock, ManualClock};
pub use fallback::{Fallback, FallbackFn, FallbackLayer, Triggers};
pub use observe::{Observe, ObserveLayer};
pub use observer::Observer;
pub use policy::{Guarded, Policy, PolicyLayer};
pub use retry::{Retry, RetryBudget, RetryLayer, RetryPolicy};
pub use timeout::{Timeout, TimeoutLayer};
